//! Filesystem and mount system calls (see sys/mod.rs): the new mount API, openat2, pivot_root,
//! and the *at calls used to build the container's root. None of these allocate.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::{cvt, cvt_long, retry};

// The uapi constants, spelled out so the build does not depend on how new the libc crate is.
pub(crate) const OPEN_TREE_CLONE: u32 = 0x1;
pub(crate) const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub(crate) const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub(crate) const FSOPEN_CLOEXEC: u32 = 0x1;
pub(crate) const FSMOUNT_CLOEXEC: u32 = 0x1;
pub(crate) const FSCONFIG_SET_FLAG: u32 = 0;
pub(crate) const FSCONFIG_SET_STRING: u32 = 1;
pub(crate) const FSCONFIG_CMD_CREATE: u32 = 6;

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub(crate) const MOUNT_ATTR__ATIME: u64 = 0x70;
pub(crate) const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub(crate) const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub(crate) const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub(crate) const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Propagation types for `MountAttr::propagation` (the MS_* values, as u64 on every arch).
pub(crate) const PROP_UNBINDABLE: u64 = 1 << 17;
pub(crate) const PROP_PRIVATE: u64 = 1 << 18;
pub(crate) const PROP_SLAVE: u64 = 1 << 19;
pub(crate) const PROP_SHARED: u64 = 1 << 20;

pub(crate) const AT_RECURSIVE: u32 = 0x8000;
pub(crate) const AT_EMPTY_PATH: u32 = libc::AT_EMPTY_PATH as u32;

pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub(crate) const RESOLVE_BENEATH: u64 = 0x08;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// `struct open_how`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2); the returned fd is the caller's to close.
pub(crate) fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<RawFd, i32> {
    let how = OpenHow {
        flags: flags as u64,
        mode: mode as u64,
        resolve,
    };
    // EAGAIN: with RESOLVE_IN_ROOT/BENEATH the kernel refuses a ".." it could not check
    // because a mount or rename happened anywhere meanwhile (openat2(2) says retry); seen
    // when other containers mount at the same time. Bounded, so an attacker racing on purpose
    // gets an error, not a hang.
    let mut tries = 0;
    loop {
        let r = retry(|| {
            // SAFETY: path is NUL-terminated, how is a valid open_how of the size passed.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dirfd,
                    path.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            cvt_long(r).map(|fd| fd as RawFd)
        });
        match r {
            Err(libc::EAGAIN) if tries < 128 => tries += 1,
            r => return r,
        }
    }
}

/// openat(2).
pub(crate) fn openat(dirfd: RawFd, path: &CStr, flags: i32, mode: u32) -> Result<RawFd, i32> {
    // SAFETY: path is NUL-terminated.
    retry(|| cvt(unsafe { libc::openat(dirfd, path.as_ptr(), flags, mode as libc::c_uint) }))
}

/// open_tree(2).
pub(crate) fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> Result<RawFd, i32> {
    // SAFETY: path is NUL-terminated; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) };
    cvt_long(r).map(|fd| fd as RawFd)
}

/// move_mount(2).
pub(crate) fn move_mount(
    from_dirfd: RawFd,
    from_path: &CStr,
    to_dirfd: RawFd,
    to_path: &CStr,
    flags: u32,
) -> Result<(), i32> {
    // SAFETY: both paths are NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from_dirfd,
            from_path.as_ptr(),
            to_dirfd,
            to_path.as_ptr(),
            flags,
        )
    };
    cvt_long(r).map(drop)
}

/// fsopen(2).
pub(crate) fn fsopen(fstype: &CStr, flags: u32) -> Result<RawFd, i32> {
    // SAFETY: fstype is NUL-terminated.
    let r = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), flags) };
    cvt_long(r).map(|fd| fd as RawFd)
}

/// fsconfig(2) with an optional key and string value (aux is always 0 here).
pub(crate) fn fsconfig(
    fd: RawFd,
    cmd: u32,
    key: Option<&CStr>,
    value: Option<&CStr>,
) -> Result<(), i32> {
    let k = key.map_or(std::ptr::null(), CStr::as_ptr);
    let v = value.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: key and value are NUL-terminated or null, as fsconfig allows for these commands.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fd, cmd, k, v, 0) };
    cvt_long(r).map(drop)
}

/// fsmount(2).
pub(crate) fn fsmount(fd: RawFd, flags: u32, attr_flags: u64) -> Result<RawFd, i32> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fd, flags, attr_flags as libc::c_uint) };
    cvt_long(r).map(|fd| fd as RawFd)
}

/// mount_setattr(2).
pub(crate) fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: u32,
    attr: &MountAttr,
) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated; attr is a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    cvt_long(r).map(drop)
}

/// mount(2), the classic call (used as the fallback and for propagation of the old root).
pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let s = source.map_or(std::ptr::null(), CStr::as_ptr);
    let t = fstype.map_or(std::ptr::null(), CStr::as_ptr);
    let d = data.map_or(std::ptr::null(), |d| d.as_ptr().cast());
    // SAFETY: every pointer is NUL-terminated or null, which mount(2) accepts for them.
    cvt(unsafe { libc::mount(s, target.as_ptr(), t, flags, d) }).map(drop)
}

/// umount2(2).
pub(crate) fn umount2(target: &CStr, flags: i32) -> Result<(), i32> {
    // SAFETY: target is NUL-terminated.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// pivot_root(2).
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
    // SAFETY: both paths are NUL-terminated.
    let r = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    cvt_long(r).map(drop)
}

/// chroot(2).
pub(crate) fn chroot(path: &CStr) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { libc::chroot(path.as_ptr()) }).map(drop)
}

/// chdir(2).
pub(crate) fn chdir(path: &CStr) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// fchdir(2).
pub(crate) fn fchdir(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain integer argument.
    cvt(unsafe { libc::fchdir(fd) }).map(drop)
}

/// mkdirat(2).
pub(crate) fn mkdirat(dirfd: RawFd, path: &CStr, mode: u32) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) }).map(drop)
}

/// mknodat(2).
pub(crate) fn mknodat(dirfd: RawFd, path: &CStr, mode: u32, dev: u64) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { libc::mknodat(dirfd, path.as_ptr(), mode, dev) }).map(drop)
}

/// fchownat(2).
pub(crate) fn fchownat(
    dirfd: RawFd,
    path: &CStr,
    uid: u32,
    gid: u32,
    flags: i32,
) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { libc::fchownat(dirfd, path.as_ptr(), uid, gid, flags) }).map(drop)
}

/// symlinkat(2): creates `linkpath` (relative to dirfd) pointing to `target`.
pub(crate) fn symlinkat(target: &CStr, dirfd: RawFd, linkpath: &CStr) -> Result<(), i32> {
    // SAFETY: both paths are NUL-terminated.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dirfd, linkpath.as_ptr()) }).map(drop)
}

/// unlinkat(2).
pub(crate) fn unlinkat(dirfd: RawFd, path: &CStr, flags: i32) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated.
    cvt(unsafe { libc::unlinkat(dirfd, path.as_ptr(), flags) }).map(drop)
}

/// fstat(2).
pub(crate) fn fstat(fd: RawFd) -> Result<libc::stat, i32> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat buffer.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// fstatfs(2): the filesystem type (`f_type`) of an open file.
pub(crate) fn fs_type(fd: RawFd) -> Result<i64, i32> {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable statfs buffer.
    cvt(unsafe { libc::fstatfs(fd, &mut st) })?;
    Ok(st.f_type as i64)
}

/// Whether the mount an open file lives on is read-only (fstatvfs f_flag & ST_RDONLY).
pub(crate) fn on_readonly_mount(fd: RawFd) -> Result<bool, i32> {
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable statvfs buffer.
    cvt(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok(st.f_flag & libc::ST_RDONLY != 0)
}

/// The mount flags (ST_*) of the mount an open file lives on (fstatvfs f_flag).
pub(crate) fn mount_flags(fd: RawFd) -> Result<u64, i32> {
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable statvfs buffer.
    cvt(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok(st.f_flag as u64)
}

/// umask(2); returns the previous mask.
pub(crate) fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) }
}
/// getdents64(2) into `buf`: the number of bytes of `linux_dirent64` records, 0 at the end.
pub(crate) fn getdents64(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
    cvt_long(n).map(|n| n as usize)
}

/// fstatat(2) without following a final symlink.
pub(crate) fn lstatat(dirfd: RawFd, name: &CStr) -> Result<libc::stat, i32> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated and st writable.
    cvt(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// readlinkat(2) into `buf`: the target's length (not NUL-terminated).
pub(crate) fn readlinkat(dirfd: RawFd, name: &CStr, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: name is NUL-terminated, buf writable for its length.
    let n = unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    cvt_long(n as libc::c_long).map(|n| n as usize)
}

/// sendfile(2) of up to `count` bytes from `from`'s offset to `to`.
pub(crate) fn sendfile(to: RawFd, from: RawFd, count: usize) -> Result<usize, i32> {
    // SAFETY: a null offset pointer means "use and advance the file offset".
    let n = unsafe { libc::sendfile(to, from, std::ptr::null_mut(), count) };
    cvt_long(n as libc::c_long).map(|n| n as usize)
}

/// fchmodat(2) (follows nothing: callers pass plain names of non-links).
pub(crate) fn fchmodat(dirfd: RawFd, name: &CStr, mode: u32) -> Result<(), i32> {
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { libc::fchmodat(dirfd, name.as_ptr(), mode, 0) }).map(drop)
}

/// fsetxattr(2) on an open fd (an SELinux label: "security.selinux").
pub(crate) fn fsetxattr(fd: RawFd, name: &CStr, value: &[u8]) -> Result<(), i32> {
    // SAFETY: name is NUL-terminated and value is a valid buffer of value.len() bytes.
    cvt(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
        .map(drop)
}

/// lsetxattr(2): the entry itself, a symlink not followed.
pub(crate) fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> Result<(), i32> {
    // SAFETY: path and name are NUL-terminated; value is valid for value.len() bytes.
    cvt(unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(drop)
}

/// Process plumbing for the rootfs tests (fork a child into new namespaces).
#[cfg(test)]
pub(crate) mod testing {
    use super::super::cvt;

    /// read(2) into `buf`, once.
    pub(crate) fn read(fd: i32, buf: &mut [u8]) -> Result<usize, i32> {
        // SAFETY: buf is a valid writable slice of its length.
        super::retry(|| {
            super::cvt_long(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } as _)
        })
        .map(|n| n as usize)
    }

    /// fork(2); glibc's fork keeps malloc usable in the child.
    pub(crate) fn fork() -> Result<i32, i32> {
        // SAFETY: the test child only runs plain code and exits with _exit.
        cvt(unsafe { libc::fork() })
    }

    pub(crate) fn unshare(flags: i32) -> Result<(), i32> {
        // SAFETY: plain integer argument.
        cvt(unsafe { libc::unshare(flags) }).map(drop)
    }

    /// waitpid(2): the exit status, or 128 + signal.
    pub(crate) fn wait(pid: i32) -> Result<i32, i32> {
        let mut st = 0;
        // SAFETY: st is a valid int to write to.
        super::retry(|| cvt(unsafe { libc::waitpid(pid, &mut st, 0) }))?;
        Ok(if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            128 + libc::WTERMSIG(st)
        })
    }

    pub(crate) fn pipe() -> Result<(i32, i32), i32> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
        Ok((fds[0], fds[1]))
    }

    /// Unlocks a pty master and opens its peer (the slave).
    pub(crate) fn pty_peer(master: i32) -> Result<i32, i32> {
        let zero: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
        cvt(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &zero) })?;
        // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
        cvt(unsafe {
            libc::ioctl(
                master,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        })
    }
}
