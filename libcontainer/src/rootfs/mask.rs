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

/// A fresh read-only tmpfs that can hold nothing (runc's: ro, size=4k, nr_inodes=1).
fn empty_tmpfs(label: Option<&CStr>) -> Result<Guard, i32> {
    let make = |inodes: &CStr| -> Result<Guard, i32> {
        let fs = Guard(m::fsopen(c"tmpfs", m::FSOPEN_CLOEXEC)?);
        if let Some(l) = label {
            m::fsconfig(fs.0, m::FSCONFIG_SET_STRING, Some(c"context"), Some(l))?;
        }
        m::fsconfig(fs.0, m::FSCONFIG_SET_STRING, Some(c"nr_blocks"), Some(c"1"))?;
        m::fsconfig(
            fs.0,
            m::FSCONFIG_SET_STRING,
            Some(c"nr_inodes"),
            Some(inodes),
        )?;
        m::fsconfig(fs.0, m::FSCONFIG_SET_FLAG, Some(c"ro"), None)?;
        m::fsconfig(fs.0, m::FSCONFIG_CMD_CREATE, None, None)?;
        Ok(Guard(m::fsmount(
            fs.0,
            m::FSMOUNT_CLOEXEC,
            m::MOUNT_ATTR_RDONLY,
        )?))
    };
    // Some kernels (Ubuntu 20.04's 5.4) refuse nr_inodes below 2.
    make(c"1").or_else(|_| make(c"2"))
}

/// Masks one directory: a bind of the first masked directory's tmpfs (one superblock for
/// all, as runc does), or a tmpfs of its own for the first one or when the bind fails.
fn mask_dir(fd: RawFd, shared: &mut Option<Guard>, label: Option<&CStr>) -> Result<(), i32> {
    if let Some(s) = shared.as_ref() {
        let bound = m::open_tree(
            s.0,
            c"",
            m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH,
        )
        .map(Guard)
        .and_then(|t| m::move_mount(t.0, c"", fd, c"", MOVE_EMPTY));
        if bound.is_ok() {
            return Ok(());
        }
    }
    let tree = empty_tmpfs(label)?;
    m::move_mount(tree.0, c"", fd, c"", MOVE_EMPTY)?;
    if shared.is_none() {
        // The fd stays the (now attached) mount: later directories bind it.
        *shared = Some(tree);
    }
    Ok(())
}

pub(super) fn mask(plan: &Plan) -> Result<(), Fail> {
    if plan.masked.is_empty() {
        return Ok(());
    }
    let null = Guard(null_device()?);
    let mut shared = None;
    for (i, p) in plan.masked.iter().enumerate() {
        // A path listed twice is masked once (the paths are lexically clean).
        if plan.masked[..i].iter().any(|q| q == p) {
            continue;
        }
        let Some(fd) = open_path(p).map_err(|e| fail(Code::Mask, i, e))? else {
            continue;
        };
        let fd = Guard(fd);
        let r = match m::fstat(fd.0) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                mask_dir(fd.0, &mut shared, plan.mount_label.as_deref())
            }
            Ok(_) => m::open_tree(
                null.0,
                c"",
                m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH,
            )
            .map(Guard)
            .and_then(|t| m::move_mount(t.0, c"", fd.0, c"", MOVE_EMPTY)),
            Err(e) => Err(e),
        };
        r.map_err(|e| fail(Code::Mask, i, e))?;
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
