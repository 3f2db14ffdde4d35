//! AppArmor and SELinux: `process.apparmorProfile`, `process.selinuxLabel` (and exec's
//! `--apparmor`, `--process-label`), `linux.mountLabel`. Checked and planned in the parent;
//! the process writes its own attributes (the init before it reports `Created`, as runc's
//! does; the kernel applies them at execve) through a procfs instance the parent made: the
//! container's /proc could be anything by then (a rootfs can mount over it: CVE-2019-16884),
//! and this one is the host pid namespace's, where every descendant has a `thread-self`.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::fail::{errno_text, Fail};
use crate::oci_spec::runtime::Spec;
use crate::process::Code;
use crate::sys::{self, mount as m};
use crate::{Error, Result};

/// AppArmor is the host's active LSM (runc's test: the module says "Y").
pub(crate) fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// SELinux is active with a policy: selinuxfs is there to say so (go-selinux's test).
pub(crate) fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// One write of a `/proc/thread-self/attr/...` file.
struct AttrWrite {
    /// Relative to the procfs root: "thread-self/attr/apparmor/exec".
    path: &'static CStr,
    value: CString,
}

/// The planned LSM attributes of one process.
#[derive(Default)]
pub(crate) struct Lsm {
    procfs: Option<OwnedFd>,
    /// SELinux: the label of keys the process creates (its session keyring).
    keycreate: Option<AttrWrite>,
    apparmor: Option<AttrWrite>,
    selinux: Option<AttrWrite>,
    profile: String,
    label: String,
}

impl std::fmt::Debug for Lsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lsm")
            .field("profile", &self.profile)
            .field("label", &self.label)
            .finish()
    }
}

fn cstring(field: &str, s: String) -> Result<CString> {
    CString::new(s).map_err(|_| Error::config(field, format!("{field} contains a NUL byte")))
}

/// A detached procfs of husk's pid namespace (the host's /proc when that is refused, as in
/// a container without CAP_SYS_ADMIN over its pid namespace).
fn private_procfs() -> Result<OwnedFd> {
    let fresh = m::fsopen(c"proc", m::FSOPEN_CLOEXEC).and_then(|fs| {
        let fs = sys::adopt(fs);
        m::fsconfig(fs.as_raw_fd(), m::FSCONFIG_CMD_CREATE, None, None)?;
        m::fsmount(
            fs.as_raw_fd(),
            m::FSMOUNT_CLOEXEC,
            m::MOUNT_ATTR_NOSUID | m::MOUNT_ATTR_NODEV | m::MOUNT_ATTR_NOEXEC,
        )
    });
    let fd = fresh
        .or_else(|_| {
            m::openat(
                libc::AT_FDCWD,
                c"/proc",
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
            )
        })
        .map_err(|e| Error::errno("opening a procfs for the LSM attributes", e))?;
    Ok(sys::adopt(fd))
}

impl Lsm {
    /// Plans the attributes of `p` (apparmorProfile, selinuxLabel); a profile or label the
    /// host cannot apply is refused here, before anything is created. `keyring`: the process
    /// joins a new session keyring, which gets the SELinux label too (runc's SetKeyLabel).
    pub(crate) fn build(p: &crate::oci_spec::runtime::Process, keyring: bool) -> Result<Lsm> {
        let profile = p.apparmor_profile().clone().unwrap_or_default();
        let label = p.selinux_label().clone().unwrap_or_default();
        let mut lsm = Lsm {
            profile: profile.clone(),
            label: label.clone(),
            ..Lsm::default()
        };
        if !profile.is_empty() {
            if !apparmor_enabled() {
                return Err(Error::unsupported(
                    "process.apparmorProfile",
                    format!(
                        "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
                    ),
                ));
            }
            // Kernels since 5.8 have a directory per LSM; the old file is shared.
            let path = if Path::new("/proc/self/attr/apparmor/exec").exists() {
                c"thread-self/attr/apparmor/exec"
            } else {
                c"thread-self/attr/exec"
            };
            lsm.apparmor = Some(AttrWrite {
                path,
                value: cstring("process.apparmorProfile", format!("exec {profile}"))?,
            });
        }
        if !label.is_empty() {
            if !selinux_enabled() {
                return Err(Error::unsupported(
                    "process.selinuxLabel",
                    format!("process.selinuxLabel {label:?}: SELinux is not enabled on this host"),
                ));
            }
            let value = cstring("process.selinuxLabel", label.clone())?;
            if keyring {
                lsm.keycreate = Some(AttrWrite {
                    path: c"thread-self/attr/keycreate",
                    value: value.clone(),
                });
            }
            lsm.selinux = Some(AttrWrite {
                path: c"thread-self/attr/exec",
                value,
            });
        }
        if lsm.apparmor.is_some() || lsm.selinux.is_some() {
            lsm.procfs = Some(private_procfs()?);
        }
        Ok(lsm)
    }

    /// The procfs fd the child keeps (it is closed with everything else otherwise).
    pub(crate) fn child_fd(&self) -> Option<RawFd> {
        self.procfs.as_ref().map(|f| f.as_raw_fd())
    }

    fn write(&self, a: &Option<AttrWrite>, code: Code) -> Result<(), Fail> {
        let (Some(a), Some(proc)) = (a, &self.procfs) else {
            return Ok(());
        };
        let fd = m::openat2(
            proc.as_raw_fd(),
            a.path,
            libc::O_WRONLY | libc::O_CLOEXEC,
            0,
            m::RESOLVE_BENEATH | m::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| Fail::new(code, 0, e))?;
        let r = sys::write_all(fd, a.value.as_bytes());
        sys::close(fd);
        r.map_err(|e| Fail::new(code, 0, e))
    }

    /// Child side, before the session keyring is made.
    pub(crate) fn apply_keyring_label(&self) -> Result<(), Fail> {
        self.write(&self.keycreate, Code::KeyLabel)
    }

    /// Child side, before the credentials change: the profile and label the exec enters.
    /// startContainer hooks, run after this, run under them too (as runc's do).
    pub(crate) fn apply_exec(&self) -> Result<(), Fail> {
        self.write(&self.apparmor, Code::Apparmor)?;
        self.write(&self.selinux, Code::SelinuxExec)
    }

    /// Parent side: the message for this module's failure codes.
    pub(crate) fn describe(&self, code: Code, errno: i32) -> Option<String> {
        let e = errno_text(errno);
        Some(match code {
            Code::Apparmor if errno == libc::ENOENT => format!(
                "applying AppArmor profile {:?}: no profile of that name is loaded ({e}; \
                 load it with apparmor_parser)",
                self.profile
            ),
            Code::Apparmor => format!("applying AppArmor profile {:?}: {e}", self.profile),
            Code::SelinuxExec if errno == libc::EINVAL => format!(
                "setting SELinux process label {:?}: {e} (not a valid context in the loaded \
                 policy)",
                self.label
            ),
            Code::SelinuxExec => format!("setting SELinux process label {:?}: {e}", self.label),
            Code::KeyLabel if errno == libc::EINVAL => format!(
                "setting SELinux keyring label {:?}: {e} (not a valid context in the loaded \
                 policy)",
                self.label
            ),
            Code::KeyLabel => format!("setting SELinux keyring label {:?}: {e}", self.label),
            _ => return None,
        })
    }
}

/// `linux.mountLabel`, checked: a label asked for on a host without SELinux is refused (a
/// mount with `context=` would fail later, and runc's does, with EINVAL from the kernel).
pub(crate) fn mount_label(spec: &Spec) -> Result<Option<CString>> {
    let Some(label) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().clone())
        .filter(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    if !selinux_enabled() {
        return Err(Error::unsupported(
            "linux.mountLabel",
            format!("linux.mountLabel {label:?}: SELinux is not enabled on this host"),
        ));
    }
    cstring("linux.mountLabel", label).map(Some)
}

/// The `context=` mount data for `label`, quoted: MCS categories hold commas.
pub(crate) fn context_data(data: &str, label: &CStr) -> String {
    let l = label.to_string_lossy();
    if data.is_empty() {
        format!("context=\"{l}\"")
    } else {
        format!("{data},context=\"{l}\"")
    }
}

/// Whether `typ` takes the mount label as `context=` (runc's list: every filesystem but
/// proc, sysfs, mqueue, which gets an xattr, and cgroups).
pub(crate) fn takes_context(typ: &str) -> bool {
    !matches!(
        typ,
        "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" | "bind"
    )
}

/// The xattr an SELinux label is stored in.
pub(crate) const XATTR: &CStr = c"security.selinux";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_quoted_and_appended() {
        let l = c"system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            context_data("", l),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            context_data("size=1k", l),
            "size=1k,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert!(takes_context("tmpfs") && takes_context("devpts"));
        assert!(!takes_context("proc") && !takes_context("mqueue"));
    }
}

/// The label a `z` (shared) relabel gives: the mount label at level s0, without the MCS
/// categories that keep containers apart (go-selinux's shared label).
fn shared_label(label: &str) -> String {
    let parts: Vec<&str> = label.splitn(4, ':').collect();
    if parts.len() == 4 {
        format!("{}:{}:{}:s0", parts[0], parts[1], parts[2])
    } else {
        label.to_owned()
    }
}

/// A bind mount's `z` or `Z` option: its source relabelled to the mount label before the
/// container starts (`Z` private to this container, `z` shared), the source itself last.
/// Symlinks are labelled, not followed. Parent side, on host paths the config names.
pub(crate) fn relabel(path: &Path, label: &CStr, shared: bool) -> Result<()> {
    let l = label.to_string_lossy();
    let value = if shared {
        shared_label(&l)
    } else {
        l.into_owned()
    };
    fn walk(p: &Path, value: &[u8]) -> std::io::Result<()> {
        let md = std::fs::symlink_metadata(p)?;
        if md.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), value)?;
            }
        }
        let c = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        m::lsetxattr(&c, XATTR, value).map_err(std::io::Error::from_raw_os_error)
    }
    walk(path, value.as_bytes())
        .map_err(|e| Error::io(format!("relabelling {} to {value:?}", path.display()), e))
}

#[cfg(test)]
mod label_tests {
    #[test]
    fn shared_label_drops_categories() {
        assert_eq!(
            super::shared_label("system_u:object_r:container_file_t:s0:c1,c2"),
            "system_u:object_r:container_file_t:s0"
        );
        assert_eq!(super::shared_label("a:b:c"), "a:b:c");
    }
}
