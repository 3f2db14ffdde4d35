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
        let mask = term::block_signals(proc::FORWARDED)
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
            term::pollfd(input, libc::POLLIN),
            term::pollfd(done, libc::POLLIN),
        ];
        if term::poll(&mut fds, -1).is_err()
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
/// master has nothing more to read.
fn copy_out(output: RawFd, s: &Shared) {
    let (master, done) = (s.master.as_raw_fd(), s.done.as_raw_fd());
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [
            term::pollfd(master, libc::POLLIN),
            term::pollfd(done, libc::POLLIN),
        ];
        if term::poll(&mut fds, -1).is_err() {
            return;
        }
        let ending = fds[1].revents != 0;
        // A read of the master first flushes what the slave wrote into the pty's buffer, so
        // once the container has exited, EAGAIN means all of its output has been copied.
        loop {
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
        match term::write(fd, buf) {
            Ok(0) => return false,
            Ok(n) => buf = &buf[n..],
            Err(libc::EAGAIN) => {
                let mut fds = [
                    term::pollfd(fd, libc::POLLOUT),
                    term::pollfd(done.unwrap_or(-1), libc::POLLIN),
                ];
                if term::poll(&mut fds, -1).is_err() || fds[1].revents != 0 {
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
