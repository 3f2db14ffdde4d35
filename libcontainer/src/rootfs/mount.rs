//! Child side of `mount_all` (no allocation): targets resolved inside the root with openat2,
//! binds with open_tree, filesystems with fsopen/fsmount (mount(2) as the fallback).

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::plan::{Kind, MountStep, Plan};
use super::{fail, Code};
use crate::fail::Fail;
use crate::sys::{self, mount as m};

/// Symlinks inside the root stay inside it; /proc magic links are refused.
pub(super) const RESOLVE: u64 = m::RESOLVE_IN_ROOT | m::RESOLVE_NO_MAGICLINKS;
const EMPTY: &CStr = c"";
const MOVE_EMPTY: u32 = m::MOVE_MOUNT_F_EMPTY_PATH | m::MOVE_MOUNT_T_EMPTY_PATH;

/// Opens a path inside the root (O_CLOEXEC always added).
pub(super) fn open_in(root: RawFd, path: &CStr, flags: i32) -> Result<RawFd, i32> {
    m::openat2(root, path, flags | libc::O_CLOEXEC, 0, RESOLVE)
}

pub(super) use super::walk::{make, make_parent};

/// "/proc/self/fd/N" in a stack buffer.
pub(super) fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> &CStr {
    const PRE: &[u8] = b"/proc/self/fd/";
    buf[..PRE.len()].copy_from_slice(PRE);
    let mut digits = [0u8; 12];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for j in 0..len {
        buf[PRE.len() + j] = digits[len - 1 - j];
    }
    buf[PRE.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/")
}

fn setattr(fd: RawFd, recursive: bool, attr: &m::MountAttr) -> Result<(), i32> {
    let flags = m::AT_EMPTY_PATH | if recursive { m::AT_RECURSIVE } else { 0 };
    m::mount_setattr(fd, EMPTY, flags, attr)
}

fn attr(a: super::options::Attr) -> m::MountAttr {
    m::MountAttr {
        attr_set: a.set,
        attr_clr: a.clr,
        ..Default::default()
    }
}

/// Runs on every exit path: closes the fds it holds.
struct Fds<const N: usize>([RawFd; N]);

impl<const N: usize> Drop for Fds<N> {
    fn drop(&mut self) {
        for fd in self.0 {
            sys::close(fd);
        }
    }
}

/// "0755": a mode's four octal digits, NUL-terminated.
fn octal(mode: u32, buf: &mut [u8; 5]) -> &CStr {
    for (k, shift) in [9, 6, 3, 0].into_iter().enumerate() {
        buf[k] = b'0' + ((mode >> shift) & 7) as u8;
    }
    buf[4] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"0755")
}

/// "mode=0NNN,DATA" in `buf` (the kernel reads one page of mount data at most); None when it
/// does not fit.
fn data_with_mode<'a>(mode: &CStr, data: &CStr, buf: &'a mut [u8; 4096]) -> Option<&'a CStr> {
    let (m, d) = (mode.to_bytes(), data.to_bytes());
    let len = 5 + m.len() + if d.is_empty() { 0 } else { 1 + d.len() };
    if len >= buf.len() {
        return None;
    }
    buf[..5].copy_from_slice(b"mode=");
    buf[5..5 + m.len()].copy_from_slice(m);
    if !d.is_empty() {
        buf[5 + m.len()] = b',';
        buf[6 + m.len()..len].copy_from_slice(d);
    }
    buf[len] = 0;
    CStr::from_bytes_until_nul(&buf[..=len]).ok()
}

/// A new filesystem through the new mount API, moved onto `target`; `mode` goes first (the
/// options' own mode= wins).
fn fs_new_api(step: &MountStep, target: RawFd, mode: Option<&CStr>) -> Result<(), i32> {
    let Kind::Fs {
        fstype,
        source,
        params,
        ..
    } = &step.kind
    else {
        return Err(libc::EINVAL);
    };
    let fs = Fds([m::fsopen(fstype, m::FSOPEN_CLOEXEC)?]);
    m::fsconfig(
        fs.0[0],
        m::FSCONFIG_SET_STRING,
        Some(c"source"),
        Some(source),
    )?;
    if let Some(mode) = mode {
        m::fsconfig(fs.0[0], m::FSCONFIG_SET_STRING, Some(c"mode"), Some(mode))?;
    }
    for p in params {
        match &p.value {
            Some(v) => m::fsconfig(fs.0[0], m::FSCONFIG_SET_STRING, Some(&p.key), Some(v))?,
            None => m::fsconfig(fs.0[0], m::FSCONFIG_SET_FLAG, Some(&p.key), None)?,
        }
    }
    m::fsconfig(fs.0[0], m::FSCONFIG_CMD_CREATE, None, None)?;
    let mnt = Fds([m::fsmount(fs.0[0], m::FSMOUNT_CLOEXEC, step.fsmount_attr)?]);
    m::move_mount(mnt.0[0], EMPTY, target, EMPTY, MOVE_EMPTY)
}

/// A bind's flags refused (EPERM: a less privileged mount namespace locked some of the
/// source's): applied again with the source's locked flags kept, unless the options clear one
/// or name another atime (runc's "mount --bind -o remount" fallback).
fn keep_locked(
    tree: RawFd,
    a: super::options::Attr,
    r: &super::options::Remount,
) -> Result<(), i32> {
    let st = m::mount_flags(tree)?;
    let mut src = 0;
    for (f, bit) in [
        (libc::ST_RDONLY, m::MOUNT_ATTR_RDONLY),
        (libc::ST_NOSUID, m::MOUNT_ATTR_NOSUID),
        (libc::ST_NODEV, m::MOUNT_ATTR_NODEV),
        (libc::ST_NOEXEC, m::MOUNT_ATTR_NOEXEC),
    ] {
        if st & f != 0 {
            src |= bit;
        }
    }
    let src_atime = if st & libc::ST_NOATIME != 0 {
        m::MOUNT_ATTR_NOATIME
    } else if st & libc::ST_RELATIME != 0 {
        m::MOUNT_ATTR_RELATIME
    } else {
        m::MOUNT_ATTR_STRICTATIME
    };
    if src & r.cleared != 0 || r.atime.is_some_and(|t| t != src_atime) {
        return Err(libc::EPERM);
    }
    let kept = super::options::Attr {
        set: a.set | src,
        clr: a.clr & !src,
    };
    setattr(tree, false, &attr(kept))
}

/// proc and sysfs go on a directory, never through a symlink or onto a file there (runc's
/// check, against redirected procfs mounts).
fn not_on_dir(root: RawFd, i: usize, step: &MountStep) -> Result<(), Fail> {
    let t = &step.target;
    let n = t.prefixes.len();
    if n == 0 {
        return Ok(());
    }
    let parent = if n == 1 {
        open_in(root, c".", libc::O_PATH | libc::O_DIRECTORY)
    } else {
        open_in(root, &t.prefixes[n - 2], libc::O_PATH | libc::O_DIRECTORY)
    };
    let parent = match parent {
        Ok(fd) => Fds([fd]),
        Err(_) => return Ok(()),
    };
    match m::lstatat(parent.0[0], &t.names[n - 1]) {
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => {
            Err(fail(Code::NotDir, i, libc::ENOTDIR))
        }
        _ => Ok(()),
    }
}

fn one(root: RawFd, i: usize, step: &MountStep) -> Result<(), Fail> {
    let t = &step.target;
    match &step.kind {
        Kind::Symlink { to } => {
            let (parent, name) = make_parent(root, t).map_err(|e| fail(Code::Target, i, e))?;
            let _p = Fds([parent]);
            return match m::symlinkat(to, parent, name) {
                Ok(()) | Err(libc::EEXIST) => Ok(()),
                Err(e) => Err(fail(Code::Mount, i, e)),
            };
        }
        Kind::Setattr => {
            let fd =
                Fds(
                    [
                        open_in(root, &t.rel, libc::O_PATH)
                            .map_err(|e| fail(Code::Target, i, e))?,
                    ],
                );
            return setattr(fd.0[0], false, &attr(step.attr))
                .map_err(|e| fail(Code::Setattr, i, e));
        }
        Kind::Bind {
            source,
            recursive,
            remount,
        } => {
            let flags = m::OPEN_TREE_CLONE
                | m::OPEN_TREE_CLOEXEC
                | if *recursive { m::AT_RECURSIVE } else { 0 };
            // An id-mapped bind's tree was made by the parent; the child only moves it.
            let tree = match step.idmap.as_ref().map(|x| x.tree).filter(|fd| *fd >= 0) {
                Some(fd) => Fds([fd]),
                None => match m::open_tree(libc::AT_FDCWD, source, flags) {
                    Ok(fd) => Fds([fd]),
                    // The host's tree of a source the container's root cannot reach.
                    Err(_) if step.host_tree.is_some_and(|fd| fd >= 0) => {
                        Fds([step.host_tree.unwrap_or(-1)])
                    }
                    Err(e) => return Err(fail(Code::Mount, i, e)),
                },
            };
            // The source is opened in the container's mount namespace (earlier mounts may
            // have made it): what it is decides the mount point's kind.
            let st = m::fstat(tree.0[0]).map_err(|e| fail(Code::Mount, i, e))?;
            let is_file = step.is_file || st.st_mode & libc::S_IFMT != libc::S_IFDIR;
            let target = Fds([make(root, t, is_file).map_err(|e| fail(Code::Target, i, e))?]);
            if !step.attr.is_empty() {
                match (setattr(tree.0[0], false, &attr(step.attr)), remount) {
                    (Err(libc::EPERM), Some(r)) => keep_locked(tree.0[0], step.attr, r),
                    (r, _) => r,
                }
                .map_err(|e| fail(Code::Setattr, i, e))?;
            }
            if !step.rattr.is_empty() {
                setattr(tree.0[0], true, &attr(step.rattr))
                    .map_err(|e| fail(Code::Setattr, i, e))?;
            }
            m::move_mount(tree.0[0], EMPTY, target.0[0], EMPTY, MOVE_EMPTY)
                .map_err(|e| fail(Code::Mount, i, e))?;
        }
        Kind::Fs {
            fstype,
            source,
            data,
            ms_flags,
            ..
        } => {
            if fstype.as_c_str() == c"proc" || fstype.as_c_str() == c"sysfs" {
                not_on_dir(root, i, step)?;
            }
            let (target, existed) = super::walk::make_path(root, &t.rel, false)
                .map_err(|e| fail(Code::Target, i, e))?;
            let target = Fds([target]);
            // A tmpfs over a directory takes its mode (runc's; a new directory's tmpfs is 1777).
            let mut mode_buf = [0u8; 5];
            let mode = if existed && fstype.as_c_str() == c"tmpfs" {
                let st = m::fstat(target.0[0]).map_err(|e| fail(Code::Target, i, e))?;
                Some(octal(st.st_mode & 0o7777, &mut mode_buf))
            } else {
                None
            };
            // tmpcopyup: the old contents stay reachable through this fd once covered.
            let below = if step.copyup {
                let f = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
                Some(Fds([
                    m::openat(target.0[0], c".", f, 0).map_err(|e| fail(Code::Copyup, i, e))?
                ]))
            } else {
                None
            };
            if fs_new_api(step, target.0[0], mode).is_err() {
                // Some filesystems or options only work through the old call.
                let mut buf = [0u8; 32];
                let path = fd_path(target.0[0], &mut buf);
                let mut with_mode = [0u8; 4096];
                let d = match mode.and_then(|md| data_with_mode(md, data, &mut with_mode)) {
                    Some(d) => Some(d),
                    None if data.is_empty() => None,
                    None => Some(data.as_c_str()),
                };
                m::mount(Some(source), path, Some(fstype), *ms_flags, d)
                    .map_err(|e| fail(Code::Mount, i, e))?;
            }
            if let Some(below) = below {
                let new = Fds([open_in(root, &t.rel, libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(|e| fail(Code::Copyup, i, e))?]);
                super::copyup::copy_tree(below.0[0], new.0[0], 0)
                    .map_err(|e| fail(Code::Copyup, i, e))?;
            }
        }
    }
    let fs_rattr = matches!(step.kind, Kind::Fs { .. }) && !step.rattr.is_empty();
    if fs_rattr || !step.propagation.is_empty() {
        // Re-resolve: the path now leads to the new mount.
        let fd = Fds([open_in(root, &t.rel, libc::O_PATH).map_err(|e| fail(Code::Target, i, e))?]);
        if fs_rattr {
            setattr(fd.0[0], true, &attr(step.rattr)).map_err(|e| fail(Code::Setattr, i, e))?;
        }
        for p in &step.propagation {
            let a = m::MountAttr {
                propagation: p.flag,
                ..Default::default()
            };
            setattr(fd.0[0], p.recursive, &a).map_err(|e| fail(Code::Propagation, i, e))?;
        }
    }
    Ok(())
}

/// Step 1 of the child: returns the O_PATH fd of the (bound) root.
pub(super) fn mount_all(plan: &Plan) -> Result<RawFd, Fail> {
    // The root becomes a mount of its own (pivot_root needs one) that later binds cannot escape.
    let clone = || {
        m::open_tree(
            libc::AT_FDCWD,
            &plan.root,
            m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_RECURSIVE,
        )
        .map_err(|e| fail(Code::BindRoot, 0, e))
    };
    let root = if let Some(tree) = plan.root_tree.filter(|t| *t >= 0 && !plan.detached) {
        // The parent's clone of a root this child cannot look up (see Plan::root_tree):
        // stacked on / of the new namespace, it is a mount of its own, entered by fd.
        let a = m::MountAttr {
            propagation: plan.ns_propagation,
            ..Default::default()
        };
        m::mount_setattr(libc::AT_FDCWD, c"/", m::AT_RECURSIVE, &a)
            .map_err(|e| fail(Code::NsPropagation, 0, e))?;
        m::move_mount(
            tree,
            EMPTY,
            libc::AT_FDCWD,
            c"/",
            m::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| fail(Code::BindRoot, 0, e))?;
        m::openat(
            tree,
            c".",
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| fail(Code::OpenRoot, 0, e))?
    } else if plan.detached {
        // In the host's mount namespace nothing is attached: the mounts go onto the detached
        // copy itself (the kernel allows mounting onto detached trees since 6.15).
        clone()?
    } else {
        let a = m::MountAttr {
            propagation: plan.ns_propagation,
            ..Default::default()
        };
        m::mount_setattr(libc::AT_FDCWD, c"/", m::AT_RECURSIVE, &a)
            .map_err(|e| fail(Code::NsPropagation, 0, e))?;
        if let Some(data) = &plan.root_overlay {
            m::mount(
                Some(c"overlay"),
                &plan.root,
                Some(c"overlay"),
                0,
                Some(data),
            )
            .map_err(|e| fail(Code::RootOverlay, 0, e))?;
        }
        let tree = Fds([clone()?]);
        m::move_mount(
            tree.0[0],
            EMPTY,
            libc::AT_FDCWD,
            &plan.root,
            m::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| fail(Code::BindRoot, 0, e))?;
        drop(tree);
        m::openat(
            libc::AT_FDCWD,
            &plan.root,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| fail(Code::OpenRoot, 0, e))?
    };
    let r = mount_rest(plan, root);
    if r.is_err() {
        sys::close(root);
    }
    r.map(|()| root)
}

fn mount_rest(plan: &Plan, root: RawFd) -> Result<(), Fail> {
    for (i, step) in plan.mounts.iter().enumerate() {
        one(root, i, step)?;
        if let (Some(l), true) = (&plan.mount_label, plan.label_xattr.contains(&i)) {
            let t = &step.target;
            let fd = Fds([open_in(root, &t.rel, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| fail(Code::Target, i, e))?]);
            m::fsetxattr(fd.0[0], crate::lsm::XATTR, l.as_bytes())
                .map_err(|e| fail(Code::Label, i, e))?;
        }
    }
    super::devices::create(plan, root)?;
    for (i, l) in plan.links.iter().enumerate() {
        let (parent, name) = make_parent(root, &l.target).map_err(|e| fail(Code::Link, i, e))?;
        let _p = Fds([parent]);
        if l.replace {
            match m::unlinkat(parent, name, 0) {
                Ok(()) | Err(libc::ENOENT) => {}
                Err(e) => return Err(fail(Code::Link, i, e)),
            }
        }
        match m::symlinkat(&l.to, parent, name) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err(fail(Code::Link, i, e)),
        }
    }
    if let Some(cwd) = &plan.cwd {
        let fd = make(root, cwd, false).map_err(|e| fail(Code::Cwd, 0, e))?;
        sys::close(fd);
    }
    Ok(())
}

/// Closes an fd when dropped (for the other child-side modules).
pub(super) struct Guard(pub RawFd);

impl Drop for Guard {
    fn drop(&mut self) {
        sys::close(self.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rootfs_fd_path() {
        let mut b = [0u8; 32];
        assert_eq!(
            super::fd_path(1234, &mut b).to_str().unwrap(),
            "/proc/self/fd/1234"
        );
        assert_eq!(
            super::fd_path(0, &mut b).to_str().unwrap(),
            "/proc/self/fd/0"
        );
    }
}
