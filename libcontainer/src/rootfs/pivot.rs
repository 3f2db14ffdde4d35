//! Child side of `enter`: the switch to the new root, then what must happen inside it.

use std::os::fd::RawFd;

use super::mount::Guard;
use super::plan::Plan;
use super::{fail, mask, sysctl, Code};
use crate::fail::Fail;
use crate::sys::mount as m;

fn switch_root(plan: &Plan, root: RawFd) -> Result<(), Fail> {
    if plan.detached {
        // The host's mount namespace: pivot_root would swap the host's root.
        m::fchdir(root).map_err(|e| fail(Code::MoveRoot, 0, e))?;
        m::chroot(c".").map_err(|e| fail(Code::MoveRoot, 0, e))?;
    } else if plan.no_pivot {
        super::nopivot::hide(&plan.exposed)?;
        m::fchdir(root).map_err(|e| fail(Code::MoveRoot, 0, e))?;
        // Without pivot_root (e.g. a ramfs root): move the root mount onto / and chroot
        // (a root tree from the parent is there already).
        if !plan.root_tree.is_some_and(|t| t >= 0) {
            m::move_mount(root, c"", libc::AT_FDCWD, c"/", m::MOVE_MOUNT_F_EMPTY_PATH)
                .map_err(|e| fail(Code::MoveRoot, 0, e))?;
        }
        m::chroot(c".").map_err(|e| fail(Code::MoveRoot, 0, e))?;
    } else {
        let old = Guard(
            m::openat(
                libc::AT_FDCWD,
                c"/",
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
            )
            .map_err(|e| fail(Code::Pivot, 0, e))?,
        );
        m::fchdir(root).map_err(|e| fail(Code::Pivot, 0, e))?;
        // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
        // only the new root, with no directory needed for the old one.
        m::pivot_root(c".", c".").map_err(|e| fail(Code::Pivot, 0, e))?;
        // Work on the old root explicitly: "." after pivot_root is not guaranteed to be it,
        // and making the new root's tree a slave would undo the mounts' own propagation.
        m::fchdir(old.0).map_err(|e| fail(Code::OldRoot, 0, e))?;
        // The unmount must not propagate to the host's mounts.
        m::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
            .map_err(|e| fail(Code::OldRoot, 0, e))?;
        m::umount2(c".", libc::MNT_DETACH).map_err(|e| fail(Code::OldRoot, 0, e))?;
    }
    m::chdir(c"/").map_err(|e| fail(Code::Pivot, 0, e))
}

pub(super) fn enter(plan: &Plan, root: RawFd) -> Result<(), Fail> {
    switch_root(plan, root)?;
    if let Some(p) = plan.root_propagation {
        let a = m::MountAttr {
            propagation: p.flag,
            ..Default::default()
        };
        let flags = if p.recursive { m::AT_RECURSIVE } else { 0 };
        m::mount_setattr(libc::AT_FDCWD, c"/", flags, &a)
            .map_err(|e| fail(Code::RootPropagation, 0, e))?;
    }
    // Read-only tmpfs mounts and /dev, once what goes beneath them is in (runc's order).
    for (i, s) in plan.mounts.iter().enumerate().filter(|(_, s)| s.ro_late) {
        let fd = Guard(
            super::mount::open_in(root, &s.target.rel, libc::O_PATH)
                .map_err(|e| fail(Code::RoLate, i, e))?,
        );
        let a = m::MountAttr {
            attr_set: m::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        m::mount_setattr(fd.0, c"", m::AT_EMPTY_PATH, &a).map_err(|e| fail(Code::RoLate, i, e))?;
    }
    // Before masking: a new procfs is refused in a user namespace once /proc is partly hidden.
    let proc_fd = if plan.sysctls.is_empty() {
        None
    } else {
        Some(Guard(sysctl::open_procfs()?))
    };
    mask::mask(plan)?;
    mask::readonly(plan)?;
    if let Some(p) = &proc_fd {
        sysctl::apply(plan, p.0)?;
    }
    drop(proc_fd);
    if plan.readonly {
        let a = m::MountAttr {
            attr_set: m::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        m::mount_setattr(libc::AT_FDCWD, c"/", 0, &a).map_err(|e| fail(Code::RootRo, 0, e))?;
    }
    Ok(())
}
