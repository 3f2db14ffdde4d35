//! linux.sysctl: validated in the parent, written in the child through a private procfs.

use std::collections::HashMap;
use std::os::fd::RawFd;

use super::plan::{cstr, Plan, Sysctl};
use super::{code, fail};
use crate::fail::Fail;
use crate::sys::{self, mount as m};
use crate::{Error, Result};

pub(super) fn plan(plan: &mut Plan, sysctls: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    for key in keys {
        let bad = key.is_empty()
            || key.contains('/')
            || key.split('.').any(|c| c.is_empty() || c == "..");
        if bad {
            return Err(Error::InvalidConfig(format!(
                "linux.sysctl: invalid key {key:?}"
            )));
        }
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
    let fs = m::fsopen(c"proc", m::FSOPEN_CLOEXEC).map_err(|e| fail(code::PROCFS, 0, e))?;
    let r = m::fsconfig(fs, m::FSCONFIG_CMD_CREATE, None, None).and_then(|_| {
        m::fsmount(
            fs,
            m::FSMOUNT_CLOEXEC,
            m::MOUNT_ATTR_NOSUID | m::MOUNT_ATTR_NODEV | m::MOUNT_ATTR_NOEXEC,
        )
    });
    sys::close(fs);
    r.map_err(|e| fail(code::PROCFS, 0, e))
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
        .map_err(|e| fail(code::SYSCTL, i, e))?;
        let r = sys::write_all(fd, s.value.as_bytes());
        sys::close(fd);
        r.map_err(|e| fail(code::SYSCTL, i, e))?;
    }
    Ok(())
}
