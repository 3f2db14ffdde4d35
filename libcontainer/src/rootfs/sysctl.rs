//! linux.sysctl: validated in the parent, written in the child through a private procfs.

use std::collections::HashMap;
use std::os::fd::RawFd;

use super::plan::{cstr, Plan, Sysctl};
use super::{fail, Code};
use crate::fail::Fail;
use crate::sys::{self, mount as m};
use crate::{Error, Result};

/// Which of the namespaces a sysctl can belong to the container has of its own.
pub(super) struct Namespaces {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// Refuses, as runc does, a sysctl that would change the host: only keys of a namespace the
/// container has are allowed.
fn check_namespace(key: &str, ns: &Namespaces) -> Result<()> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let need = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        ("ipc", ns.ipc)
    } else if key.starts_with("net.") {
        ("network", ns.net)
    } else if key == "kernel.domainname" {
        ("uts", ns.uts)
    } else if key == "kernel.hostname" {
        return Err(Error::config(
            "linux.sysctl",
            "linux.sysctl: kernel.hostname conflicts with the hostname field",
        ));
    } else {
        return Err(Error::config(
            "linux.sysctl",
            format!("linux.sysctl: {key} is not in a separate kernel namespace"),
        ));
    };
    if !need.1 {
        return Err(Error::config(
            "linux.sysctl",
            format!(
                "linux.sysctl: {key} needs a {} namespace of the container's own",
                need.0
            ),
        ));
    }
    Ok(())
}

pub(super) fn plan(
    plan: &mut Plan,
    sysctls: &HashMap<String, String>,
    ns: Namespaces,
) -> Result<()> {
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let bad = key.is_empty()
            || key.contains('/')
            || key.split('.').any(|c| c.is_empty() || c == "..");
        if bad {
            return Err(Error::config(
                "linux.sysctl",
                format!("linux.sysctl: invalid key {key:?}"),
            ));
        }
        check_namespace(key, &ns)?;
        let path = format!("sys/{}", key.replace('.', "/"));
        plan.sysctls.push(Sysctl {
            key: key.clone(),
            path: cstr(path.as_bytes())?,
            value: cstr(sysctls[key].as_bytes())?,
        });
    }
    Ok(())
}

/// A detached procfs instance of the caller's pid namespace (closed by the caller). Made
/// before the masked paths hide parts of /proc, which would make a new procfs "too revealing"
/// in a user namespace.
pub(super) fn open_procfs() -> Result<RawFd, Fail> {
    let fs = m::fsopen(c"proc", m::FSOPEN_CLOEXEC).map_err(|e| fail(Code::Procfs, 0, e))?;
    let r = m::fsconfig(fs, m::FSCONFIG_CMD_CREATE, None, None).and_then(|_| {
        m::fsmount(
            fs,
            m::FSMOUNT_CLOEXEC,
            m::MOUNT_ATTR_NOSUID | m::MOUNT_ATTR_NODEV | m::MOUNT_ATTR_NOEXEC,
        )
    });
    sys::close(fs);
    r.map_err(|e| fail(Code::Procfs, 0, e))
}

pub(super) fn apply(plan: &Plan, proc_fd: RawFd) -> Result<(), Fail> {
    for (i, s) in plan.sysctls.iter().enumerate() {
        let fd = m::openat2(
            proc_fd,
            &s.path,
            libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0,
            m::RESOLVE_IN_ROOT | m::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| fail(Code::Sysctl, i, e))?;
        let r = sys::write_all(fd, s.value.as_bytes());
        sys::close(fd);
        r.map_err(|e| fail(Code::Sysctl, i, e))?;
    }
    Ok(())
}
