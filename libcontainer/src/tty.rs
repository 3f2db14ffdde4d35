//! `run` and `exec` in the foreground with a terminal and no console socket: copy between
//! husk's own stdio and the container's pty, as runc does.
//!
//! The calling terminal (the first of stderr, stdout and stdin that is one, as runc finds it)
//! is put in raw mode for the duration, so that keys reach the container as bytes: ^C is
//! turned into SIGINT by the container's pty, for the container's foreground process, and
//! husk itself is not interrupted. Its window size is copied to the pty at start and again on
//! each SIGWINCH (see [`wait_forwarding`]). When husk's stdout is not a terminal the pty's
//! ONLCR is cleared, so that `husk run ... | cmd` gets the container's "\n" as they are
//! (see `Proxy::start_with` for the terminal case, where husk differs from runc on purpose).

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::sys::{self, proc, term};
use crate::{Error, Result};

/// The calling terminal in raw mode. Its settings come back on drop, whatever the exit path:
/// the container's end, an error, a panic unwinding through the caller.
struct RawMode {
    fd: OwnedFd,
    saved: libc::termios,
}

impl RawMode {
    /// `keep_opost`: leave output processing on (ONLCR), for a terminal that gets other
    /// programs' output but not the container's.
    fn enter(fd: OwnedFd, keep_opost: bool) -> Result<RawMode> {
        let saved = term::get_termios(fd.as_raw_fd())
            .map_err(|e| Error::errno("reading the terminal's settings", e))?;
        let mut raw = term::raw(&saved);
        if keep_opost {
            raw.c_oflag |= saved.c_oflag & libc::OPOST;
        }
        term::set_termios(fd.as_raw_fd(), &raw)
            .map_err(|e| Error::errno("putting the terminal in raw mode", e))?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = term::set_termios(self.fd.as_raw_fd(), &self.saved);
    }
}

/// The calling terminal: the first of stderr, stdout and stdin that is a terminal. Unlike
/// runc, husk does not fall back to /dev/tty when all three are redirected: nobody would
/// read that terminal, so in raw mode it could not even interrupt husk.
fn host_console() -> Option<OwnedFd> {
    [2, 1, 0]
        .into_iter()
        .find(|&fd| term::is_terminal(fd))
        .and_then(|fd| term::dup(fd).ok())
}

/// The calling terminal's size (rows, columns), if there is one and its size is set: for a
/// pty that must have it before the process starts (exec).
pub(crate) fn host_size() -> Option<(u16, u16)> {
    let fd = host_console()?;
    term::get_winsize(fd.as_raw_fd())
        .ok()
        .filter(|&(rows, cols)| rows > 0 && cols > 0)
}

/// What the copying threads share: the pty master (non-blocking) and the eventfd that says
/// the container has exited.
struct Shared {
    master: OwnedFd,
    done: OwnedFd,
}

/// Copies stdin → pty master and pty master → stdout on two threads, with the calling
/// terminal in raw mode. Dropping it (after the wait) ends both threads, the output one once
/// it has copied what the container wrote, then restores the terminal and the signal mask.
///
/// The signals `run` forwards are blocked in the creating thread from `start` to the drop,
/// and in the two threads for good: a SIGTERM or SIGWINCH meant for husk is then always left
/// to the waiter's signalfd, never delivered (and lost, or fatal) elsewhere.
pub(crate) struct Proxy {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    host: Option<RawMode>,
    mask: Option<libc::sigset_t>,
    /// The mask restored on drop is the creating thread's: the proxy stays on that thread.
    _thread: PhantomData<*const ()>,
}

impl Proxy {
    /// Starts the proxy for `master` on husk's own stdin and stdout.
    pub(crate) fn start(master: &OwnedFd) -> Result<Proxy> {
        Proxy::start_with(master, 0, 1, host_console())
    }

    fn start_with(
        master: &OwnedFd,
        input: RawFd,
        output: RawFd,
        host: Option<OwnedFd>,
    ) -> Result<Proxy> {
        let master = master.try_clone().map_err(|e| Error::io("dup pty", e))?;
        let fd = master.as_raw_fd();
        // Non-blocking, so that neither thread can be stuck on the master once the
        // container is gone (the pty is husk's alone in this mode).
        term::set_nonblocking(fd).map_err(|e| Error::errno("setting the pty non-blocking", e))?;
        // Output to a terminal passes through byte for byte (the calling terminal is fully
        // raw, the pty keeps its ONLCR), as over ssh: a full-screen program in the container
        // that turns off output processing gets exactly what it writes. Output to a pipe or
        // file gets no "\r" added (the pty's ONLCR cleared, as runc clears it), and the
        // calling terminal keeps its output processing for the programs that do write to it.
        let to_terminal = term::is_terminal(output);
        if !to_terminal {
            clear_onlcr(fd).map_err(|e| Error::errno("clearing ONLCR on the pty", e))?;
        }
        let done = sys::adopt(
            term::eventfd().map_err(|e| Error::errno("creating the proxy's eventfd", e))?,
        );
        let mask = proc::block_signals(proc::FORWARDED)
            .map_err(|e| Error::errno("blocking signals", e))?;
        let mut p = Proxy {
            shared: Arc::new(Shared { master, done }),
            threads: Vec::new(),
            host: None,
            mask: Some(mask),
            _thread: PhantomData,
        };
        if let Some(h) = host {
            // Before the container's process starts (run), so that it never sees 0x0; a
            // host that reports no size leaves the config's consoleSize.
            if let Ok((rows, cols)) = term::get_winsize(h.as_raw_fd()) {
                if rows > 0 && cols > 0 {
                    let _ = proc::set_winsize(fd, rows, cols);
                }
            }
            p.host = Some(RawMode::enter(h, !to_terminal)?);
        }
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| Error::io("starting the terminal proxy", e))
        };
        let s = p.shared.clone();
        p.threads
            .push(spawn("husk-tty-in", Box::new(move || copy_in(input, &s)))?);
        let s = p.shared.clone();
        p.threads.push(spawn(
            "husk-tty-out",
            Box::new(move || copy_out(output, &s)),
        )?);
        Ok(p)
    }

    /// Copies the calling terminal's size to the pty (on SIGWINCH). The kernel then sends
    /// SIGWINCH to the container's foreground process group itself.
    pub(crate) fn resize(&self) {
        if let Some(h) = &self.host {
            if let Ok((rows, cols)) = term::get_winsize(h.fd.as_raw_fd()) {
                let _ = proc::set_winsize(self.shared.master.as_raw_fd(), rows, cols);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = sys::write_all(self.shared.done.as_raw_fd(), &1u64.to_ne_bytes());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // After the output thread has written the last of the container's output.
        self.host.take();
        if let Some(m) = self.mask.take() {
            proc::restore_mask(&m);
        }
    }
}

/// Clears ONLCR on the pty (the master's termios calls act on the slave's settings).
fn clear_onlcr(master: RawFd) -> std::result::Result<(), i32> {
    let mut t = term::get_termios(master)?;
    t.c_oflag &= !libc::ONLCR;
    term::set_termios(master, &t)
}

/// stdin → master, until stdin ends or the container has exited. It reads stdin only when
/// poll says it is readable, so it is never left blocked in that read.
fn copy_in(input: RawFd, s: &Shared) {
    let (master, done) = (s.master.as_raw_fd(), s.done.as_raw_fd());
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            sys::pollfd(input, libc::POLLIN),
            sys::pollfd(done, libc::POLLIN),
        ];
        if sys::poll(&mut fds, -1).is_err()
            || fds[1].revents != 0
            || fds[0].revents & libc::POLLNVAL != 0
        {
            return;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let n = match sys::read(input, &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(libc::EAGAIN) => continue,
            Err(_) => return,
        };
        if !write_all(master, &buf[..n], Some(done)) {
            return;
        }
    }
}

/// master → stdout, until every slave fd is closed or, once the container has exited, the
/// master has nothing more to read (or 8 MiB more have been copied).
fn copy_out(output: RawFd, s: &Shared) {
    let (master, done) = (s.master.as_raw_fd(), s.done.as_raw_fd());
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [
            sys::pollfd(master, libc::POLLIN),
            sys::pollfd(done, libc::POLLIN),
        ];
        if sys::poll(&mut fds, -1).is_err() {
            return;
        }
        let ending = fds[1].revents != 0;
        // A read of the master first flushes what the slave wrote into the pty's buffer, so
        // once the container has exited, EAGAIN means all of its output has been copied.
        // Bounded, for a process that outlives the waited one and writes without end (no
        // PID namespace): back to poll, or at the end to the drop, instead of copying forever.
        for _ in 0..if ending { 1024 } else { 16 } {
            match sys::read(master, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if !write_all(output, &buf[..n], None) {
                        return;
                    }
                }
                Err(libc::EAGAIN) => break,
                // EIO: every slave fd is closed.
                Err(_) => return,
            }
        }
        if ending {
            return;
        }
    }
}

/// Writes all of `buf` to `fd`, waiting with poll when it is full; false when it cannot
/// (an error, or `done` became readable meanwhile).
fn write_all(fd: RawFd, mut buf: &[u8], done: Option<RawFd>) -> bool {
    while !buf.is_empty() {
        match sys::write(fd, buf) {
            Ok(0) => return false,
            Ok(n) => buf = &buf[n..],
            Err(libc::EAGAIN) => {
                let mut fds = [
                    sys::pollfd(fd, libc::POLLOUT),
                    sys::pollfd(done.unwrap_or(-1), libc::POLLIN),
                ];
                if sys::poll(&mut fds, -1).is_err() || fds[1].revents != 0 {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// Waits for the process to exit, forwarding the signals `run` receives meanwhile (SIGINT,
/// SIGTERM, ...) to it, as runc does. With a terminal `proxy`, SIGWINCH resizes the pty
/// instead (runc's behaviour too). The signals are blocked in the calling thread only and the
/// mask is restored afterwards.
pub(crate) fn wait_forwarding(pidfd: &crate::Pidfd, proxy: Option<&Proxy>) -> Result<i32> {
    let (sfd, old) =
        proc::signalfd_for(proc::FORWARDED).map_err(|e| Error::errno("signalfd", e))?;
    let sfd = sys::adopt(sfd);
    let result = loop {
        match proc::poll_two(pidfd.as_raw_fd(), sfd.as_raw_fd()) {
            Err(e) => break Err(Error::errno("waiting for the container", e)),
            Ok((true, _)) => {
                break proc::wait_pidfd(pidfd.as_raw_fd())
                    .map_err(|e| Error::errno("waiting for the container", e))
            }
            Ok((false, true)) => match (proc::read_signal(sfd.as_raw_fd()), proxy) {
                (Ok(libc::SIGWINCH), Some(p)) => p.resize(),
                (Ok(sig), _) => {
                    let _ = proc::signal_pidfd(pidfd.as_raw_fd(), sig);
                }
                (Err(_), _) => {}
            },
            Ok((false, false)) => {}
        }
    };
    proc::restore_mask(&old);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::term::tests::{openpty, pipe};
    use std::time::{Duration, Instant};

    /// Reads `fd` until `want` has been read or 20 s have passed (a failure bound only).
    fn read_until(fd: RawFd, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&out).contains(want) && Instant::now() < deadline {
            let mut fds = [sys::pollfd(fd, libc::POLLIN)];
            if sys::poll(&mut fds, 100).unwrap() == 0 {
                continue;
            }
            match sys::read(fd, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn modes(t: &libc::termios) -> (u32, u32, u32, u32, [u8; 32]) {
        (t.c_iflag, t.c_oflag, t.c_lflag, t.c_cflag, t.c_cc)
    }

    #[test]
    fn raw_mode_restored_when_a_panic_unwinds() {
        let (_m, s) = openpty();
        let before = term::get_termios(s.as_raw_fd()).unwrap();
        let fd = term::dup(s.as_raw_fd()).unwrap();
        let r = std::panic::catch_unwind(move || {
            let _raw = RawMode::enter(fd, false).unwrap();
            panic!("an error path");
        });
        assert!(r.is_err());
        let after = term::get_termios(s.as_raw_fd()).unwrap();
        assert_eq!(modes(&after), modes(&before));
    }

    /// The proxy copies both ways, puts the host terminal in raw mode (keeping OPOST, since
    /// the output is a pipe), copies its size, and on drop ends both threads even though its
    /// input never ends, then restores the host terminal.
    #[test]
    fn proxy_copies_resizes_and_ends() {
        let (master, slave) = openpty();
        let (host_m, host_s) = openpty();
        proc::set_winsize(host_m.as_raw_fd(), 27, 91).unwrap();
        let host_before = term::get_termios(host_s.as_raw_fd()).unwrap();
        // The input's write end stays open and silent: a blocking read of it never returns.
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let (tx, rx) = std::sync::mpsc::channel();
        let (slave_fd, host_fd) = (slave.as_raw_fd(), host_s.as_raw_fd());
        let (in_fd, out_fd) = (in_r.as_raw_fd(), out_w.as_raw_fd());
        let host = term::dup(host_fd).unwrap();
        let master2 = master.try_clone().unwrap();
        // The proxy stays on the thread that made it; the test waits for that thread with a
        // bound, so a proxy that does not end fails the test instead of hanging it.
        let (resize_tx, resize_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let p = Proxy::start_with(&master2, in_fd, out_fd, Some(host)).unwrap();
            tx.send("started").unwrap();
            resize_rx.recv().unwrap();
            p.resize();
            tx.send("resized").unwrap();
            resize_rx.recv().unwrap();
            drop(p);
            tx.send("dropped").unwrap();
        });
        let bound = Duration::from_secs(20);
        assert_eq!(rx.recv_timeout(bound).unwrap(), "started");
        assert_eq!(term::get_winsize(slave_fd).unwrap(), (27, 91));
        let raw = term::get_termios(host_fd).unwrap();
        assert_eq!(raw.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
        assert_ne!(raw.c_oflag & libc::OPOST, 0, "OPOST kept: stdout is a pipe");
        let onlcr = term::get_termios(slave_fd).unwrap().c_oflag & libc::ONLCR;
        assert_eq!(onlcr, 0, "ONLCR cleared: stdout is a pipe");

        sys::write_all(in_w.as_raw_fd(), b"ping\n").unwrap();
        assert_eq!(read_until(slave_fd, "\n"), "ping\n");
        proc::set_winsize(host_m.as_raw_fd(), 40, 120).unwrap();
        resize_tx.send(()).unwrap();
        assert_eq!(rx.recv_timeout(bound).unwrap(), "resized");
        assert_eq!(term::get_winsize(slave_fd).unwrap(), (40, 120));

        sys::write_all(slave_fd, b"hello\n").unwrap();
        resize_tx.send(()).unwrap();
        assert_eq!(rx.recv_timeout(bound).unwrap(), "dropped");
        t.join().unwrap();
        drop(out_w);
        // The echo of "ping" and what the "container" wrote, without "\r".
        assert_eq!(read_until(out_r.as_raw_fd(), "\0"), "ping\nhello\n");
        let after = term::get_termios(host_fd).unwrap();
        assert_eq!(modes(&after), modes(&host_before));
        drop((in_w, in_r, master, slave));
    }
}
