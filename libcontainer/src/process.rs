//! The container's process: argv, env, executable lookup, cwd, user, capabilities, rlimits,
//! no_new_privs, fds. Planned in the parent; applied by the init without allocating.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::caps;
use crate::fail::{errno_text, Fail, Step};
use crate::oci_spec::runtime::{Capabilities, Spec};
use crate::sys::{self, creds::CapSets};
use crate::{Error, Result};

crate::fail::codes! {
    /// Child failure codes of `Step::Process`: this module's, attrs.rs's and seccomp.rs's.
    pub(crate) enum Code {
        Cwd,
        CwdEscape,
        /// idx: the fd.
        Fds,
        /// idx: the fd (0-2).
        StdioOwner,
        Bounding,
        Groups,
        Gid,
        Uid,
        Caps,
        Nnp,
        Keepcaps,
        Keyring,
        KeyringPerm,
        Personality,
        Ioprio,
        Sched,
        Mempolicy,
        Affinity,
        SeccompInstall,
        SeccompListener,
        /// lsm.rs: the AppArmor profile, the SELinux exec and keyring labels.
        Apparmor,
        SelinuxExec,
        KeyLabel,
    }
}

/// Child side, still privileged: stdio (a pty, pipes, files; not /dev/null) is given to the
/// process's uid, so a non-root process can use its own terminal, as runc does (its
/// fixStdioPermissions). A file the uid cannot be given (EPERM: an owner unmapped in a user
/// namespace; EROFS; EINVAL: the uid unmapped, where runc fails) is left as it is.
fn own_stdio(uid: u32) -> Result<(), Fail> {
    for fd in 0..3 {
        let Ok(st) = sys::mount::fstat(fd) else {
            continue;
        };
        let dev_null =
            st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3);
        if st.st_uid == uid || dev_null {
            continue;
        }
        match sys::mount::fchownat(fd, c"", uid, u32::MAX, libc::AT_EMPTY_PATH) {
            Ok(()) | Err(libc::EPERM | libc::EROFS | libc::EINVAL) => {}
            Err(e) => return Err(Fail::new(Code::StdioOwner, fd as u32, e)),
        }
    }
    Ok(())
}

crate::fail::codes! {
    /// Child failure codes of `Step::Exec`.
    pub(crate) enum ExecCode {
        /// No candidate of the $PATH lookup is an executable file.
        NotFound,
        /// args[0] (a path) is missing or not an executable file.
        Stat,
        /// execve itself failed.
        Exec,
    }
}

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
    /// None: `process.capabilities` absent, the capabilities stay as husk had them (runc).
    pub caps: Option<CapSets>,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub terminal: bool,
    /// fds 3 .. 3+inherit_fds reach the container (LISTEN_FDS and --preserve-fds).
    pub inherit_fds: u32,
    /// (resource, soft, hard), applied by the parent with prlimit.
    pub rlimits: Vec<(u32, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    /// The container's session keyring to join (None with `--no-new-keyring`).
    pub keyring: Option<SessionKeyring>,
    /// Scheduler, I/O priority, personality, CPU affinity, memory policy.
    pub attrs: crate::attrs::Attrs,
    /// linux.seccomp, compiled.
    pub seccomp: Option<crate::seccomp::Compiled>,
    /// Warnings of the planning, for the caller's handler.
    pub warnings: Vec<String>,
    /// fds (3 or above) the child puts on 0, 1 and 2 first; -1 keeps what it inherited.
    pub stdio: [libc::c_int; 3],
    /// AppArmor profile and SELinux labels.
    pub lsm: crate::lsm::Lsm,
}

/// The session keyring of a container: `_ses.ID`, as runc names it.
pub(crate) struct SessionKeyring {
    name: CString,
    /// Set by the init, which makes the keyring, so that exec's processes find it by name.
    perm: Option<u32>,
}

impl SessionKeyring {
    /// For the init (`init`), made with its possessor's rights, view, read and link for its
    /// owner, and search for its owner (for others in a user namespace, where exec's process
    /// is not the owner); for exec's processes, joined by name rather than keeping their
    /// caller's keyring.
    pub(crate) fn new(id: &str, init: bool, userns: bool) -> Result<SessionKeyring> {
        // KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_LINK, what the kernel gives a
        // new session keyring, plus the search bit.
        const BASE: u32 = 0x3f13_0000;
        Ok(SessionKeyring {
            name: cstr("container id", format!("_ses.{id}").as_bytes())?,
            perm: init.then_some(BASE | if userns { 0x08 } else { 0x0008_0000 }),
        })
    }
}

fn cstr(field: &str, s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| Error::config(field, format!("{field} contains a NUL byte")))
}

/// The mask of a capability set; names this kernel does not have go to `unknown` (runc
/// ignores them; config files have had unknown names dropped already, see gojson.rs).
fn cap_mask(set: &Option<Capabilities>, last_cap: u32, unknown: &mut Vec<String>) -> u64 {
    let mut mask = 0u64;
    for cap in set.iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match caps::capability_number(&name).filter(|n| *n <= last_cap) {
            Some(n) => mask |= 1 << n,
            None if !unknown.contains(&name) => unknown.push(name),
            None => {}
        }
    }
    mask
}

/// The capability sets of `p` (None when absent), with runc's warnings: names this kernel
/// lacks, and ambient capabilities the kernel will refuse to raise (not both permitted and
/// inheritable), which runc skips.
fn cap_sets(
    p: &crate::oci_spec::runtime::Process,
    last_cap: u32,
    warnings: &mut Vec<String>,
) -> Option<CapSets> {
    let c = p.capabilities().as_ref()?;
    let mut unknown = Vec::new();
    let sets = CapSets {
        bounding: cap_mask(c.bounding(), last_cap, &mut unknown),
        effective: cap_mask(c.effective(), last_cap, &mut unknown),
        permitted: cap_mask(c.permitted(), last_cap, &mut unknown),
        inheritable: cap_mask(c.inheritable(), last_cap, &mut unknown),
        ambient: cap_mask(c.ambient(), last_cap, &mut unknown),
    };
    warnings.extend(caps::ignored_warning(unknown));
    let refused = sets.ambient & !(sets.permitted & sets.inheritable);
    for (n, name) in caps::CAPABILITIES.iter().enumerate() {
        if refused & (1 << n) != 0 {
            warnings.push(format!(
                "can't raise ambient capability {name}: operation not permitted"
            ));
        }
    }
    Some(sets)
}

impl ProcPlan {
    /// Plans the process. `listen_fds` is the LISTEN_FDS count passed through (0 if none);
    /// `root`: the container's root directory as the caller sees it, for HOME from its
    /// /etc/passwd (`None`: HOME=/ when the env lacks it).
    pub(crate) fn build(
        spec: &Spec,
        preserve_fds: u32,
        listen_fds: u32,
        keyring: Option<SessionKeyring>,
        root: Option<&Path>,
    ) -> Result<ProcPlan> {
        let p = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "process is required"))?;
        let lsm = crate::lsm::Lsm::build(p, keyring.is_some())?;
        let args = p.args().clone().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            return Err(Error::config(
                "process.args",
                "process.args must not be empty",
            ));
        }
        let mut env = p.env().clone();
        if listen_fds > 0 {
            let env = env.get_or_insert_with(Vec::new);
            env.push(format!("LISTEN_FDS={listen_fds}"));
            env.push("LISTEN_PID=1".into());
        }
        let user = p.user();
        let env = crate::env::prepare(env.as_deref(), user.uid(), root)?;
        let cwd = p.cwd();
        if cwd.as_os_str().is_empty() {
            return Err(Error::config(
                "process.cwd",
                "Cwd property must not be empty",
            ));
        }
        if !cwd.is_absolute() {
            return Err(Error::config(
                "process.cwd",
                format!("process.cwd {} must be an absolute path", cwd.display()),
            ));
        }
        if cwd.components().any(|c| c == Component::ParentDir) {
            return Err(Error::config(
                "process.cwd",
                format!(
                "process.cwd {} must not contain '..': it must stay inside the container's root",
                cwd.display()
            ),
            ));
        }
        let arg0 = &args[0];
        let arg0_is_path = arg0.contains('/');
        let candidates = if arg0_is_path {
            vec![cstr("process.args[0]", arg0.as_bytes())?]
        } else {
            // No PATH: nothing to search (runc's exec.LookPath), not a default list.
            let path = env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or_default();
            path.split(':')
                .filter(|_| !path.is_empty())
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    cstr("PATH", Path::new(dir).join(arg0).as_os_str().as_bytes())
                })
                .collect::<Result<_>>()?
        };
        let last_cap = caps::last_cap();
        let mut warnings = Vec::new();
        let caps = cap_sets(p, last_cap, &mut warnings);
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
                    Error::config(
                        "process.rlimits",
                        format!("process.rlimits: unknown type {name}"),
                    )
                })?;
            if rlimits.iter().any(|(x, _, _)| *x == res) {
                return Err(Error::config(
                    "process.rlimits",
                    format!("process.rlimits: {name} given twice"),
                ));
            }
            if r.soft() > r.hard() {
                return Err(Error::config(
                    "process.rlimits",
                    format!(
                        "process.rlimits: {name} soft limit {} exceeds hard limit {}",
                        r.soft(),
                        r.hard()
                    ),
                ));
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
            last_cap,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            terminal: p.terminal().unwrap_or(false),
            inherit_fds: preserve_fds + listen_fds,
            rlimits,
            oom_score_adj: p.oom_score_adj(),
            keyring,
            attrs: crate::attrs::Attrs::build(spec)?,
            seccomp: crate::seccomp::build(spec)?,
            warnings,
            stdio: [-1; 3],
            lsm,
        })
    }

    /// Child side, after pivot_root: enters the cwd (checking it is reachable from the root)
    /// and finds the executable, as `create` must fail for a missing one.
    pub(crate) fn prepare(&mut self) -> Result<(), Fail> {
        sys::creds::chdir(&self.cwd).map_err(|e| Fail::new(Code::Cwd, 0, e))?;
        if !sys::creds::cwd_inside_root() {
            return Err(Fail::new(Code::CwdEscape, 0, libc::EPERM));
        }
        for (i, c) in self.candidates.iter().enumerate() {
            match sys::stat_mode(libc::AT_FDCWD, c) {
                Ok(mode) if mode & libc::S_IFMT == libc::S_IFREG && mode & 0o111 != 0 => {
                    self.found = i;
                    return Ok(());
                }
                Ok(_) if self.arg0_is_path => {
                    return Err(Fail::new(ExecCode::Stat, 0, libc::EACCES))
                }
                Err(e) if self.arg0_is_path => return Err(Fail::new(ExecCode::Stat, 0, e)),
                _ => {}
            }
        }
        Err(Fail::new(ExecCode::NotFound, 0, libc::ENOENT))
    }

    /// Child side, before `apply`: a new session keyring (with the SELinux label) and the
    /// AppArmor profile and SELinux label execve will enter. The init does this before it
    /// reports `Created`, so a profile that is not loaded fails `create`, as runc's does.
    pub(crate) fn apply_lsm(&self) -> Result<(), Fail> {
        if let Some(k) = &self.keyring {
            self.lsm.apply_keyring_label()?;
            // In a user namespace the keyring may be refused; runc ignores that too.
            match sys::creds::join_session_keyring(&k.name) {
                Ok(serial) => {
                    if let Some(perm) = k.perm {
                        sys::creds::set_key_perm(serial, perm)
                            .map_err(|e| Fail::new(Code::KeyringPerm, 0, e))?;
                    }
                }
                Err(libc::ENOSYS | libc::EPERM | libc::EACCES) => {}
                Err(e) => return Err(Fail::new(Code::Keyring, 0, e)),
            }
        }
        self.lsm.apply_exec()
    }

    /// Child side, just before exec: fds, user, capabilities, no_new_privs, umask.
    /// `report` reaches the parent: a seccomp NOTIFY listener fd goes there.
    pub(crate) fn apply(&self, report: crate::protocol::Chan) -> Result<(), Fail> {
        let f = |c: Code, e| Fail::new(c, 0, e);
        self.attrs.apply()?;
        for fd in 3..3 + self.inherit_fds as i32 {
            sys::proc::set_cloexec(fd, false).map_err(|e| Fail::new(Code::Fds, fd as u32, e))?;
        }
        sys::proc::cloexec_from(3 + self.inherit_fds).map_err(|e| f(Code::Fds, e))?;
        // Without no_new_privs installing needs CAP_SYS_ADMIN: before the uid switch.
        if let Some(s) = self.seccomp.as_ref().filter(|_| !self.no_new_privs) {
            s.install(report)?;
        }
        if let Some(c) = &self.caps {
            sys::creds::drop_bounding(c.bounding, self.last_cap)
                .map_err(|e| f(Code::Bounding, e))?;
        }
        sys::creds::set_keepcaps(true).map_err(|e| f(Code::Keepcaps, e))?;
        own_stdio(self.uid)?;
        match sys::creds::setgroups_raw(&self.groups) {
            // setgroups denied (a rootless user namespace mapping only the caller's gid): with
            // none asked for, the inherited groups stay, as with runc.
            Err(libc::EPERM) if self.groups.is_empty() => {}
            r => r.map_err(|e| f(Code::Groups, e))?,
        }
        sys::creds::setresgid(self.gid).map_err(|e| f(Code::Gid, e))?;
        sys::creds::setresuid(self.uid).map_err(|e| f(Code::Uid, e))?;
        sys::creds::set_keepcaps(false).map_err(|e| f(Code::Keepcaps, e))?;
        if let Some(c) = &self.caps {
            sys::creds::apply_caps(c, self.last_cap).map_err(|e| f(Code::Caps, e))?;
        }
        if self.no_new_privs {
            sys::creds::set_no_new_privs().map_err(|e| f(Code::Nnp, e))?;
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
        // The index names the binary in the parent's message: its copy of `found` is stale.
        Fail::new(ExecCode::Exec, self.found as u32, e)
    }

    /// The path execve was given (the candidate the child's lookup found, `f.idx`).
    pub(crate) fn exec_path(&self, f: &Fail) -> String {
        self.candidates
            .get(f.idx as usize)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// args[0] as configured.
    pub(crate) fn arg0(&self) -> String {
        self.args.strings()[0].to_string_lossy().into_owned()
    }

    /// Parent side: the typed error for a child failure in the Process or Exec area.
    pub(crate) fn error(&self, f: &Fail) -> Error {
        let msg = self.describe(f);
        match f.step {
            Step::Exec(ExecCode::NotFound) => Error::ExecutableNotFound {
                name: self.arg0(),
                msg,
            },
            Step::Exec(ExecCode::Stat) if matches!(f.errno, libc::ENOENT | libc::ENOTDIR) => {
                Error::ExecutableNotFound {
                    name: self.arg0(),
                    msg,
                }
            }
            Step::Exec(_) => Error::NotExecutable {
                path: self.exec_path(f),
                errno: f.errno,
                msg,
            },
            _ => crate::fail::setup_error(f, msg),
        }
    }

    /// Parent side: the message for a child failure in the Process or Exec area.
    pub(crate) fn describe(&self, f: &Fail) -> String {
        let e = errno_text(f.errno);
        let arg0 = self.arg0();
        let code = match f.step {
            Step::Exec(ExecCode::NotFound) => {
                return format!("exec: {arg0:?}: executable file not found in $PATH")
            }
            Step::Exec(ExecCode::Stat) => return format!("exec: {arg0:?}: stat {arg0}: {e}"),
            Step::Exec(ExecCode::Exec) => return format!("exec {}: {e}", self.exec_path(f)),
            Step::Process(c) => c,
            _ => return format!("process set-up: {e}"),
        };
        if let Some(m) = crate::attrs::Attrs::describe(code, f.errno) {
            return m;
        }
        if let Some(m) = crate::seccomp::Compiled::describe(code, f.errno) {
            return m;
        }
        if let Some(m) = self.lsm.describe(code, f.errno) {
            return m;
        }
        let cwd = self.cwd.to_string_lossy();
        let keyring = self
            .keyring
            .as_ref()
            .map(|k| k.name.to_string_lossy())
            .unwrap_or_default();
        match code {
            Code::Cwd => format!("chdir to cwd ({cwd:?}) set in config.json failed: {e}"),
            Code::CwdEscape => format!("cwd {cwd:?} is not inside the container's root"),
            Code::Fds => format!("preparing inherited fd {}: {e}", f.idx),
            Code::Bounding => format!("dropping the capability bounding set: {e}"),
            Code::StdioOwner => format!("giving stdio fd {} to uid {}: {e}", f.idx, self.uid),
            Code::Groups => format!("setting additional gids {:?}: {e}", self.groups),
            Code::Gid => format!("setting gid {}: {e}", self.gid),
            Code::Uid => format!("setting uid {}: {e}", self.uid),
            Code::Caps => format!("setting capabilities: {e}"),
            Code::Nnp => format!("setting no_new_privs: {e}"),
            Code::Keepcaps => format!("setting keepcaps: {e}"),
            Code::Keyring => format!("joining the session keyring {keyring:?}: {e}"),
            Code::KeyringPerm => {
                format!("setting the permissions of the session keyring {keyring:?}: {e}")
            }
            _ => format!("process set-up: {e}"),
        }
    }
}
