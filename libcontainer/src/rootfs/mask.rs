//! linux.maskedPaths and linux.readonlyPaths, applied after pivot (paths are the container's).

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::mount::Guard;
use super::plan::Plan;
use super::{fail, Code};
use crate::fail::Fail;
use crate::sys::mount as m;

const MOVE_EMPTY: u32 = m::MOVE_MOUNT_F_EMPTY_PATH | m::MOVE_MOUNT_T_EMPTY_PATH;

/// Opens a container path from the (new) root; None when it does not exist.
fn open_path(path: &CStr) -> Result<Option<RawFd>, i32> {
    match m::openat2(
        libc::AT_FDCWD,
        path,
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        m::RESOLVE_IN_ROOT | m::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The container's /dev/null, checked to be the real null device before files are hidden
/// behind it (a rootfs could ship a regular file there).
fn null_device() -> Result<RawFd, Fail> {
    let fd = open_path(c"/dev/null")
        .map_err(|e| fail(Code::Null, 0, e))?
        .ok_or(fail(Code::Null, 0, libc::ENOENT))?;
    let st = m::fstat(fd).map_err(|e| fail(Code::Null, 0, e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        crate::sys::close(fd);
        return Err(fail(Code::Null, 0, libc::ENODEV));
    }
    Ok(fd)
}

fn mask_one(fd: RawFd, null: RawFd) -> Result<(), i32> {
    let st = m::fstat(fd)?;
    let tree = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let fs = Guard(m::fsopen(c"tmpfs", m::FSOPEN_CLOEXEC)?);
        m::fsconfig(fs.0, m::FSCONFIG_CMD_CREATE, None, None)?;
        let ro = m::MOUNT_ATTR_RDONLY
            | m::MOUNT_ATTR_NOSUID
            | m::MOUNT_ATTR_NODEV
            | m::MOUNT_ATTR_NOEXEC;
        Guard(m::fsmount(fs.0, m::FSMOUNT_CLOEXEC, ro)?)
    } else {
        Guard(m::open_tree(
            null,
            c"",
            m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH,
        )?)
    };
    m::move_mount(tree.0, c"", fd, c"", MOVE_EMPTY)
}

pub(super) fn mask(plan: &Plan) -> Result<(), Fail> {
    if plan.masked.is_empty() {
        return Ok(());
    }
    let null = Guard(null_device()?);
    for (i, p) in plan.masked.iter().enumerate() {
        let Some(fd) = open_path(p).map_err(|e| fail(Code::Mask, i, e))? else {
            continue;
        };
        let fd = Guard(fd);
        mask_one(fd.0, null.0).map_err(|e| fail(Code::Mask, i, e))?;
    }
    Ok(())
}

pub(super) fn readonly(plan: &Plan) -> Result<(), Fail> {
    for (i, p) in plan.readonly_paths.iter().enumerate() {
        let Some(fd) = open_path(p).map_err(|e| fail(Code::Readonly, i, e))? else {
            continue;
        };
        let fd = Guard(fd);
        let r = (|| {
            let tree = Guard(m::open_tree(
                fd.0,
                c"",
                m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH | m::AT_RECURSIVE,
            )?);
            let a = m::MountAttr {
                attr_set: m::MOUNT_ATTR_RDONLY,
                ..Default::default()
            };
            m::mount_setattr(tree.0, c"", m::AT_EMPTY_PATH | m::AT_RECURSIVE, &a)?;
            m::move_mount(tree.0, c"", fd.0, c"", MOVE_EMPTY)
        })();
        r.map_err(|e| fail(Code::Readonly, i, e))?;
    }
    Ok(())
}
