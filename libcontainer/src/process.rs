//! The container's process: argv, env, executable lookup, cwd, user, capabilities, rlimits,
//! no_new_privs, fds. Planned in the parent; applied by the init without allocating.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::caps;
use crate::fail::{errno_text, Area, Fail};
use crate::oci_spec::runtime::{Capabilities, Spec};
use crate::sys::{self, creds::CapSets};
use crate::{Error, Result};

/// Child failure codes of the Process area.
pub(crate) mod code {
    pub const CWD: u16 = 1;
    pub const CWD_ESCAPE: u16 = 2;
    pub const FDS: u16 = 3;
    pub const BOUNDING: u16 = 4;
    pub const GROUPS: u16 = 5;
    pub const GID: u16 = 6;
    pub const UID: u16 = 7;
    pub const CAPS: u16 = 8;
    pub const NNP: u16 = 9;
    pub const KEEPCAPS: u16 = 10;
    pub const KEYRING: u16 = 11;
}

/// Child failure codes of the Exec area.
pub(crate) mod exec_code {
    pub const NOT_FOUND: u16 = 1;
    pub const STAT: u16 = 2;
    pub const EXEC: u16 = 3;
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A NULL-terminated array of pointers into `strings`, for execve.
pub(crate) struct CArray {
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CArray {
    pub(crate) fn new(strings: Vec<CString>) -> CArray {
        let mut ptrs: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CArray { strings, ptrs }
    }

    pub(crate) fn ptrs(&self) -> &[*const libc::c_char] {
        &self.ptrs
    }

    pub(crate) fn strings(&self) -> &[CString] {
        &self.strings
    }
}

/// The planned container process.
pub(crate) struct ProcPlan {
    pub args: CArray,
    pub env: CArray,
    /// Paths to try for args[0], in order.
    pub candidates: Vec<CString>,
    /// args[0] names a path (has a '/') rather than a $PATH lookup.
    pub arg0_is_path: bool,
    /// Index into `candidates` found by `find_executable`.
    pub found: usize,
    pub cwd: CString,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub umask: Option<u32>,
    pub caps: CapSets,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub terminal: bool,
    /// fds 3 .. 3+inherit_fds reach the container (LISTEN_FDS and --preserve-fds).
    pub inherit_fds: u32,
    /// (resource, soft, hard), applied by the parent with prlimit.
    pub rlimits: Vec<(u32, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    /// Join a new session keyring (unless `--no-new-keyring`).
    pub new_keyring: bool,
    /// Scheduler, I/O priority, personality, CPU affinity, memory policy.
    pub attrs: crate::attrs::Attrs,
    /// linux.seccomp, compiled.
    pub seccomp: Option<crate::seccomp::Compiled>,
}

fn cstr(field: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidConfig(format!("{field} contains a NUL byte")))
}

fn cap_mask(field: &str, set: &Option<Capabilities>) -> Result<u64> {
    let mut mask = 0u64;
    for cap in set.iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let n = caps::capability_number(&name).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "process.capabilities.{field}: unknown capability {name}"
            ))
        })?;
        mask |= 1 << n;
    }
    Ok(mask)
}

/// AppArmor and SELinux are not applied yet: a config asking for either gets a clear error
/// rather than a container without it (this host has neither LSM).
fn check_lsm(p: &crate::oci_spec::runtime::Process) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        return Err(Error::Unsupported(if enabled {
            format!("process.apparmorProfile {profile:?}: applying AppArmor profiles is not supported yet")
        } else {
            format!("process.apparmorProfile {profile:?}: AppArmor is not enabled on this host")
        }));
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        let enabled = std::path::Path::new("/sys/fs/selinux/enforce").exists();
        return Err(Error::Unsupported(if enabled {
            format!("process.selinuxLabel {label:?}: applying SELinux labels is not supported yet")
        } else {
            format!("process.selinuxLabel {label:?}: SELinux is not enabled on this host")
        }));
    }
    Ok(())
}

impl ProcPlan {
    /// Plans the process. `listen_fds` is the LISTEN_FDS count passed through (0 if none).
    pub(crate) fn build(
        spec: &Spec,
        preserve_fds: u32,
        listen_fds: u32,
        new_keyring: bool,
    ) -> Result<ProcPlan> {
        let p = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::InvalidConfig("process is required".into()))?;
        check_lsm(p)?;
        let args = p.args().clone().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            return Err(Error::InvalidConfig(
                "process.args must not be empty".into(),
            ));
        }
        let mut env: Vec<String> = p.env().clone().unwrap_or_default();
        if listen_fds > 0 {
            env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={listen_fds}"));
            env.push("LISTEN_PID=1".into());
        }
        let cwd = p.cwd();
        if !cwd.is_absolute() {
            return Err(Error::InvalidConfig(format!(
                "process.cwd {} must be an absolute path",
                cwd.display()
            )));
        }
        if cwd.components().any(|c| c == Component::ParentDir) {
            return Err(Error::InvalidConfig(format!(
                "process.cwd {} must not contain '..': it must stay inside the container's root",
                cwd.display()
            )));
        }
        let arg0 = &args[0];
        let arg0_is_path = arg0.contains('/');
        let candidates = if arg0_is_path {
            vec![cstr("process.args[0]", arg0.as_bytes())?]
        } else {
            let path = env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    cstr("PATH", Path::new(dir).join(arg0).as_os_str().as_bytes())
                })
                .collect::<Result<_>>()?
        };
        let user = p.user();
        let c = p.capabilities().as_ref();
        let caps = match c {
            None => CapSets::default(),
            Some(c) => CapSets {
                bounding: cap_mask("bounding", c.bounding())?,
                effective: cap_mask("effective", c.effective())?,
                permitted: cap_mask("permitted", c.permitted())?,
                inheritable: cap_mask("inheritable", c.inheritable())?,
                ambient: cap_mask("ambient", c.ambient())?,
            },
        };
        let mut rlimits = Vec::new();
        for r in p.rlimits().iter().flatten() {
            let name = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let res = caps::RLIMITS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    Error::InvalidConfig(format!("process.rlimits: unknown type {name}"))
                })?;
            if rlimits.iter().any(|(x, _, _)| *x == res) {
                return Err(Error::InvalidConfig(format!(
                    "process.rlimits: {name} given twice"
                )));
            }
            if r.soft() > r.hard() {
                return Err(Error::InvalidConfig(format!(
                    "process.rlimits: {name} soft limit {} exceeds hard limit {}",
                    r.soft(),
                    r.hard()
                )));
            }
            rlimits.push((res, r.soft(), r.hard()));
        }
        Ok(ProcPlan {
            args: CArray::new(
                args.iter()
                    .map(|a| cstr("process.args", a.as_bytes()))
                    .collect::<Result<_>>()?,
            ),
            env: CArray::new(
                env.iter()
                    .map(|e| cstr("process.env", e.as_bytes()))
                    .collect::<Result<_>>()?,
            ),
            candidates,
            arg0_is_path,
            found: 0,
            cwd: cstr("process.cwd", cwd.as_os_str().as_bytes())?,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            caps,
            last_cap: caps::last_cap(),
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            terminal: p.terminal().unwrap_or(false),
            inherit_fds: preserve_fds + listen_fds,
            rlimits,
            oom_score_adj: p.oom_score_adj(),
            new_keyring,
            attrs: crate::attrs::Attrs::build(spec)?,
            seccomp: crate::seccomp::build(spec)?,
        })
    }

    /// Child side, after pivot_root: enters the cwd (checking it is reachable from the root)
    /// and finds the executable, as `create` must fail for a missing one.
    pub(crate) fn prepare(&mut self) -> Result<(), Fail> {
        sys::creds::chdir(&self.cwd).map_err(|e| Fail::new(Area::Process, code::CWD, 0, e))?;
        if !sys::creds::cwd_inside_root() {
            return Err(Fail::new(Area::Process, code::CWD_ESCAPE, 0, libc::EPERM));
        }
        for (i, c) in self.candidates.iter().enumerate() {
            match sys::stat_mode(libc::AT_FDCWD, c) {
                Ok(mode) if mode & libc::S_IFMT == libc::S_IFREG && mode & 0o111 != 0 => {
                    self.found = i;
                    return Ok(());
                }
                Ok(_) if self.arg0_is_path => {
                    return Err(Fail::new(Area::Exec, exec_code::STAT, 0, libc::EACCES))
                }
                Err(e) if self.arg0_is_path => {
                    return Err(Fail::new(Area::Exec, exec_code::STAT, 0, e))
                }
                _ => {}
            }
        }
        Err(Fail::new(Area::Exec, exec_code::NOT_FOUND, 0, libc::ENOENT))
    }

    /// Child side, just before exec: fds, user, capabilities, no_new_privs, umask.
    /// `report` reaches the parent: a seccomp NOTIFY listener fd goes there.
    pub(crate) fn apply(&self, report: crate::protocol::Chan) -> Result<(), Fail> {
        let f = |c, e| Fail::new(Area::Process, c, 0, e);
        self.attrs.apply()?;
        if self.new_keyring {
            // In a user namespace the keyring may be refused; runc ignores that too.
            match sys::creds::new_session_keyring() {
                Ok(()) | Err(libc::ENOSYS | libc::EPERM | libc::EACCES) => {}
                Err(e) => return Err(f(code::KEYRING, e)),
            }
        }
        for fd in 3..3 + self.inherit_fds as i32 {
            sys::proc::set_cloexec(fd, false)
                .map_err(|e| Fail::new(Area::Process, code::FDS, fd as u32, e))?;
        }
        sys::proc::cloexec_from(3 + self.inherit_fds).map_err(|e| f(code::FDS, e))?;
        // Without no_new_privs installing needs CAP_SYS_ADMIN: before the uid switch.
        if let Some(s) = self.seccomp.as_ref().filter(|_| !self.no_new_privs) {
            s.install(report)?;
        }
        sys::creds::drop_bounding(self.caps.bounding, self.last_cap)
            .map_err(|e| f(code::BOUNDING, e))?;
        sys::creds::set_keepcaps(true).map_err(|e| f(code::KEEPCAPS, e))?;
        sys::creds::setgroups_raw(&self.groups).map_err(|e| f(code::GROUPS, e))?;
        sys::creds::setresgid(self.gid).map_err(|e| f(code::GID, e))?;
        sys::creds::setresuid(self.uid).map_err(|e| f(code::UID, e))?;
        sys::creds::set_keepcaps(false).map_err(|e| f(code::KEEPCAPS, e))?;
        sys::creds::apply_caps(&self.caps, self.last_cap).map_err(|e| f(code::CAPS, e))?;
        if self.no_new_privs {
            sys::creds::set_no_new_privs().map_err(|e| f(code::NNP, e))?;
        }
        if let Some(m) = self.umask {
            sys::creds::umask(m);
        }
        sys::proc::reset_signals();
        // With no_new_privs, as late as possible: only execve runs under the filter.
        if let Some(s) = self.seccomp.as_ref().filter(|_| self.no_new_privs) {
            s.install(report)?;
        }
        Ok(())
    }

    /// Child side: execve; returns only with the failure.
    pub(crate) fn exec(&self) -> Fail {
        let path: &CStr = &self.candidates[self.found];
        let e = sys::proc::execve(path, self.args.ptrs(), self.env.ptrs());
        Fail::new(Area::Exec, exec_code::EXEC, 0, e)
    }

    /// Parent side: the message for a child failure in the Process or Exec area.
    pub(crate) fn describe(&self, f: &Fail) -> String {
        if let Some(m) = crate::attrs::Attrs::describe(f).filter(|_| f.area == Area::Process) {
            return m;
        }
        let e = errno_text(f.errno);
        let arg0 = self.args.strings()[0].to_string_lossy();
        let cwd = self.cwd.to_string_lossy();
        if f.area == Area::Exec {
            return match f.code {
                exec_code::NOT_FOUND => {
                    format!("exec: {arg0:?}: executable file not found in $PATH")
                }
                exec_code::STAT => format!("exec: {arg0:?}: stat {arg0}: {e}"),
                _ => format!(
                    "exec {}: {e}",
                    self.candidates
                        .get(self.found)
                        .map(|c| c.to_string_lossy())
                        .unwrap_or_default()
                ),
            };
        }
        if let Some(m) = crate::seccomp::Compiled::describe(f) {
            return m;
        }
        match f.code {
            code::CWD => format!("chdir to cwd ({cwd:?}) set in config.json failed: {e}"),
            code::CWD_ESCAPE => format!("cwd {cwd:?} is not inside the container's root"),
            code::FDS => format!("preparing inherited fd {}: {e}", f.idx),
            code::BOUNDING => format!("dropping the capability bounding set: {e}"),
            code::GROUPS => format!("setting additional gids {:?}: {e}", self.groups),
            code::GID => format!("setting gid {}: {e}", self.gid),
            code::UID => format!("setting uid {}: {e}", self.uid),
            code::CAPS => format!("setting capabilities: {e}"),
            code::NNP => format!("setting no_new_privs: {e}"),
            code::KEEPCAPS => format!("setting keepcaps: {e}"),
            code::KEYRING => format!("joining a new session keyring: {e}"),
            _ => format!("process set-up: {e}"),
        }
    }
}
