//! Every `unsafe` block of the library lives under this module, each with a SAFETY comment.
//!
//! Functions here are thin wrappers over system calls. Those used by the container's child
//! processes (after clone, before exec) must not allocate: they take `&CStr` or raw fds and
//! return `Result<_, i32>` with the errno. Submodules are split by concern:
//! - `proc`: clone3, pidfds, waiting, signals, process attributes.
//! - `sock`: the socketpair and SCM_RIGHTS.
//! - `mount`: the new mount API, openat2, pivot_root and other filesystem calls.
//! - `creds`: uid/gid switching, capabilities, rlimits, prctl.

pub(crate) mod creds;
pub(crate) mod mount;
pub(crate) mod proc;
pub(crate) mod sock;

use std::os::fd::RawFd;

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

/// write(2) of a whole buffer.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = retry(|| cvt_long(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } as _))?;
        if n == 0 {
            return Err(libc::EIO);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// _exit(2): leaves the child without running atexit handlers or destructors.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}
