//! The shim's only `unsafe`: thin wrappers over the system calls std does not offer (epoll,
//! the pty window size, mount and unmount, fd flags). Each returns `std::io::Result` with the
//! errno of the call; callers add what the call was about.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of an inherited descriptor number (the listening socket `start` hands the
/// serving shim) after checking that it is open.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor table; no memory is involved.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process to own by
    // its parent; nothing else in this process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets or clears FD_CLOEXEC.
pub fn set_cloexec(fd: &impl AsRawFd, on: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller owns; integer arguments only.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, new) })?;
    Ok(())
}

/// Clears O_NONBLOCK (a FIFO opened non-blocking so the open does not wait for a peer).
pub fn set_blocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor the caller owns; integer arguments only.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) })?;
    Ok(())
}

/// SIGPIPE ignored: a FIFO whose reader went away (containerd restarted) must give EPIPE to
/// the copy that writes it, not kill the shim.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN is a valid disposition and no handler code is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// An epoll instance (close-on-exec).
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the new descriptor is owned by nobody else.
    let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: just created above.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `fd` to `ep`, reporting readability with `key`.
pub fn epoll_add(ep: &OwnedFd, fd: RawFd, key: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: key,
    };
    // SAFETY: `ev` is a valid epoll_event that outlives the call.
    check(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    Ok(())
}

/// Removes `fd` from `ep`.
pub fn epoll_del(ep: &OwnedFd, fd: RawFd) -> io::Result<()> {
    // SAFETY: a null event is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
    check(unsafe {
        libc::epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            std::ptr::null_mut(),
        )
    })?;
    Ok(())
}

/// Waits up to `timeout_ms` (-1: for good) and returns the keys of the ready descriptors.
pub fn epoll_wait(ep: &OwnedFd, timeout_ms: i32) -> io::Result<Vec<u64>> {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 32];
    // SAFETY: the buffer holds 32 events and we pass 32 as its length.
    let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), evs.as_mut_ptr(), 32, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(Vec::new());
        }
        return Err(e);
    }
    Ok(evs[..n as usize].iter().map(|e| e.u64).collect())
}

/// Sets a pty's window size (TIOCSWINSZ).
pub fn set_winsize(fd: &impl AsRawFd, cols: u16, rows: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct, which lives for the whole call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// mount(2) with the flags and data string of one containerd rootfs mount.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let (s, t, f, d) = (
        cstr(source.as_bytes())?,
        cstr(target.as_os_str().as_bytes())?,
        cstr(fstype.as_bytes())?,
        cstr(data.as_bytes())?,
    );
    let dp = if data.is_empty() {
        std::ptr::null()
    } else {
        d.as_ptr() as *const libc::c_void
    };
    // SAFETY: every pointer is a NUL-terminated string (or null data) alive for the call.
    check(unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, dp) })?;
    Ok(())
}

/// umount2(2).
pub fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let t = cstr(target.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path alive for the call.
    check(unsafe { libc::umount2(t.as_ptr(), flags) })?;
    Ok(())
}

/// `dup2(fd, to)` (the new descriptor is not close-on-exec).
pub fn dup2(fd: &impl AsRawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptors of this process; `to` is replaced atomically by design.
    check(unsafe { libc::dup2(fd.as_raw_fd(), to) })?;
    Ok(())
}
