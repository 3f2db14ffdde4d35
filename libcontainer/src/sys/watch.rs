//! Notifications of cgroup files changing: inotify (cgroup v2's `memory.events`) and a
//! blocking-free eventfd (cgroup v1's `cgroup.event_control` registrations).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{adopt, cvt};

/// A non-blocking, close-on-exec inotify instance watching `path` for modification.
pub(crate) fn inotify_modify(path: &CStr) -> Result<OwnedFd, i32> {
    // SAFETY: inotify_init1 with integer flags; the new fd is ours alone.
    let fd = adopt(cvt(unsafe {
        libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK)
    })?);
    // SAFETY: a NUL-terminated path alive for the call, on an fd we own.
    cvt(unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) })?;
    Ok(fd)
}

/// A non-blocking, close-on-exec eventfd.
pub(crate) fn eventfd() -> Result<OwnedFd, i32> {
    // SAFETY: eventfd with integer arguments; the new fd is ours alone.
    cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }).map(adopt)
}

/// Reads (and so clears) whatever is pending on a non-blocking fd.
pub(crate) fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: the buffer is valid for its length for the whole call.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}
