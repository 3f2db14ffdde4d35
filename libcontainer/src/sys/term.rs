//! Terminal and I/O-multiplexing calls for the foreground terminal proxy (tty.rs): termios,
//! window sizes, non-blocking mode, dup and eventfd.

use std::os::fd::{OwnedFd, RawFd};

use super::{cvt, retry};

/// True when `fd` is a terminal (TCGETS succeeds).
pub(crate) fn is_terminal(fd: RawFd) -> bool {
    get_termios(fd).is_ok()
}

/// tcgetattr(3).
pub(crate) fn get_termios(fd: RawFd) -> Result<libc::termios, i32> {
    // SAFETY: termios is plain data; zeroed is a valid value that tcgetattr overwrites.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: t is a valid out-pointer for the call.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(t)
}

/// tcsetattr(3) with TCSANOW, retried on EINTR.
pub(crate) fn set_termios(fd: RawFd, t: &libc::termios) -> Result<(), i32> {
    // SAFETY: t points to a valid termios that tcsetattr only reads.
    retry(|| cvt(unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) })).map(drop)
}

/// `t` in raw mode, as cfmakeraw(3) makes it: no input or output processing, no echo, no
/// line editing, no signals from the keyboard (^C is a byte), 8-bit characters, reads return
/// as soon as one byte is there.
pub(crate) fn raw(t: &libc::termios) -> libc::termios {
    let mut r = *t;
    r.c_iflag &= !(libc::IGNBRK
        | libc::BRKINT
        | libc::PARMRK
        | libc::ISTRIP
        | libc::INLCR
        | libc::IGNCR
        | libc::ICRNL
        | libc::IXON);
    r.c_oflag &= !libc::OPOST;
    r.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
    r.c_cflag &= !(libc::CSIZE | libc::PARENB);
    r.c_cflag |= libc::CS8;
    r.c_cc[libc::VMIN] = 1;
    r.c_cc[libc::VTIME] = 0;
    r
}

/// A terminal's window size: (rows, columns).
pub(crate) fn get_winsize(fd: RawFd) -> Result<(u16, u16), i32> {
    // SAFETY: winsize is plain data; zeroed is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the valid pointer.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Sets O_NONBLOCK on an fd's open file description.
pub(crate) fn set_nonblocking(fd: RawFd) -> Result<(), i32> {
    // SAFETY: fcntl with integer arguments.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

/// A close-on-exec duplicate of `fd` (which the caller need not own: fds 0-2).
pub(crate) fn dup(fd: RawFd) -> Result<OwnedFd, i32> {
    // SAFETY: fcntl with integer arguments; the new fd is ours alone.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) }).map(super::adopt)
}

/// A non-blocking, close-on-exec eventfd; a write of 1 makes it readable for good (nobody
/// reads it), which is how the waiter tells the proxy threads to end.
pub(crate) fn eventfd() -> Result<RawFd, i32> {
    // SAFETY: eventfd with integer arguments.
    cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A fresh pty pair (master, slave) for tests.
    pub(crate) fn openpty() -> (OwnedFd, OwnedFd) {
        let (mut m, mut s) = (-1, -1);
        // SAFETY: m and s are valid out-pointers; the name, termios and winsize are null.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: errno {}", crate::sys::errno());
        (crate::sys::adopt(m), crate::sys::adopt(s))
    }

    /// A pipe (read end, write end) for tests, owned.
    pub(crate) fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = crate::sys::proc::pipe().unwrap();
        (crate::sys::adopt(r), crate::sys::adopt(w))
    }

    #[test]
    fn raw_clears_what_cfmakeraw_clears() {
        let (_m, s) = openpty();
        let cooked = get_termios(s.as_raw_fd()).unwrap();
        assert_ne!(cooked.c_lflag & libc::ICANON, 0);
        set_termios(s.as_raw_fd(), &raw(&cooked)).unwrap();
        let now = get_termios(s.as_raw_fd()).unwrap();
        let mut expect = cooked;
        // SAFETY: cfmakeraw only writes the termios it is given.
        unsafe { libc::cfmakeraw(&mut expect) };
        assert_eq!(now.c_iflag, expect.c_iflag);
        assert_eq!(now.c_oflag, expect.c_oflag);
        assert_eq!(now.c_lflag, expect.c_lflag);
        assert_eq!(now.c_cflag, expect.c_cflag);
        assert_eq!(now.c_cc[libc::VMIN], 1);
    }

    #[test]
    fn winsize_round_trip_and_terminal_test() {
        let (m, s) = openpty();
        crate::sys::proc::set_winsize(m.as_raw_fd(), 31, 97).unwrap();
        assert_eq!(get_winsize(s.as_raw_fd()).unwrap(), (31, 97));
        assert!(is_terminal(s.as_raw_fd()));
        let (r, _w) = pipe();
        assert!(!is_terminal(r.as_raw_fd()));
    }
}
