//! Every `unsafe` block of the library lives under this module, each with a SAFETY comment.
//!
//! Functions here are thin wrappers over system calls. Those used by the container's child
//! processes (after clone, before exec) must not allocate: they take `&CStr` or raw fds and
//! return `Result<_, i32>` with the errno. Submodules are split by concern:
//! - `proc`: clone3, pidfds, waiting, signals, process attributes.
//! - `sock`: the socketpair and SCM_RIGHTS.
//! - `mount`: the new mount API, openat2, pivot_root and other filesystem calls.
//! - `creds`: uid/gid switching, capabilities, rlimits, prctl.
//! - `term`: termios, window sizes and eventfd for the foreground terminal proxy.
//! - `btrfs`: snapshot, subvolume and qgroup ioctls (the btrfs rootfs source).
//! - `quota`: quotactl_fd and the project id ioctls (ext4/XFS project quotas).
//! - `watch`: inotify and eventfd for watching cgroup files (OOM notifications).

pub(crate) mod btrfs;
pub(crate) mod creds;
pub(crate) mod mount;
pub(crate) mod proc;
pub(crate) mod quota;
pub(crate) mod sock;
pub(crate) mod term;
pub(crate) mod watch;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The calling thread's errno.
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Turns a `-1` return into `Err(errno)`.
pub(crate) fn cvt(ret: libc::c_int) -> Result<libc::c_int, i32> {
    if ret == -1 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// Turns a `-1` from `syscall(2)` into `Err(errno)`.
pub(crate) fn cvt_long(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret == -1 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// Retries a call interrupted by a signal.
pub(crate) fn retry<T>(mut f: impl FnMut() -> Result<T, i32>) -> Result<T, i32> {
    loop {
        match f() {
            Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// close(2), ignoring errors (nothing useful can be done about them).
pub(crate) fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: closing an fd we own; a bad fd only gives EBADF.
        unsafe { libc::close(fd) };
    }
}

/// One write(2), retried on EINTR; returns how much was written.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> Result<usize, i32> {
    // SAFETY: buf is a valid slice for its length.
    retry(|| cvt_long(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } as _))
        .map(|n| n as usize)
}

/// write(2) of a whole buffer.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(libc::EIO);
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// A pollfd for `fd` and `events`.
pub(crate) fn pollfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// poll(2) with a timeout in milliseconds (-1: none), retried on EINTR; returns how many fds
/// have events.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, i32> {
    // SAFETY: fds is a valid slice of pollfds for its length.
    retry(|| cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout_ms) }))
        .map(|n| n as usize)
}

/// renameat2(2) with RENAME_EXCHANGE: swaps two existing names atomically.
pub(crate) fn exchange(a: &std::ffi::CStr, b: &std::ffi::CStr) -> Result<(), i32> {
    // SAFETY: both are valid NUL-terminated paths; renameat2 only reads them.
    cvt(unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    })
    .map(drop)
}

/// _exit(2): leaves the child without running atexit handlers or destructors.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// fstatat(2) following symlinks; returns st_mode.
pub(crate) fn stat_mode(dirfd: RawFd, path: &std::ffi::CStr) -> Result<u32, i32> {
    // SAFETY: stat is plain data; zeroed is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: path is a valid C string and st a valid out-pointer.
    cvt(unsafe { libc::fstatat(dirfd, path.as_ptr(), &mut st, 0) })?;
    Ok(st.st_mode)
}

/// read(2) into `buf`; returns the byte count (0 at end of file).
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: buf is valid for writes of its length.
    retry(|| cvt_long(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } as _))
        .map(|n| n as usize)
}

/// The text of an errno value in Go's style ("no such file or directory"), which engines
/// match on (podman and docker map it to exit code 127).
pub(crate) fn strerror(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; the XSI strerror_r writes a NUL-terminated string.
    let ok = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return format!("errno {errno}");
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let mut s = String::from_utf8_lossy(&buf[..end]).into_owned();
    if let Some(first) = s.get(0..1) {
        s.replace_range(0..1, &first.to_lowercase());
    }
    s
}

/// Takes ownership of an fd that a call in this module just returned (and that nothing else
/// owns), so it is closed on drop.
pub(crate) fn adopt(fd: RawFd) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: by this function's contract the fd is open and has no other owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// flock(2), retried on EINTR.
pub(crate) fn flock(fd: RawFd, how: libc::c_int) -> Result<(), i32> {
    // SAFETY: flock with integer arguments.
    retry(|| cvt(unsafe { libc::flock(fd, how) })).map(drop)
}

/// The effective uid.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid always succeeds.
    unsafe { libc::geteuid() }
}

/// Whether this process may write `path` (access(2) with the effective IDs).
pub(crate) fn writable(path: &std::path::Path) -> bool {
    access(path, libc::W_OK)
}

/// Whether this process may read and search the directory `path` (access(2), effective IDs).
pub(crate) fn searchable(path: &std::path::Path) -> bool {
    access(path, libc::R_OK | libc::X_OK)
}

fn access(path: &std::path::Path, mode: i32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a NUL-terminated path.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

/// The effective gid.
pub(crate) fn getegid() -> u32 {
    // SAFETY: getegid always succeeds.
    unsafe { libc::getegid() }
}

/// Opens `path` for reading below `dir` as if `dir` were the root (symlinks and ".." cannot
/// leave it; no magic links), without blocking on a FIFO: for files of a container's root.
pub(crate) fn open_in_root(
    dir: &impl std::os::fd::AsRawFd,
    path: &std::ffi::CStr,
) -> std::io::Result<std::fs::File> {
    let fd = mount::openat2(
        dir.as_raw_fd(),
        path,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK,
        0,
        mount::RESOLVE_IN_ROOT | mount::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(std::io::Error::from_raw_os_error)?;
    Ok(std::fs::File::from(adopt(fd)))
}
