//! A process's stdio, its terminal, and the handle the caller gets back: [`Stdio`] says where
//! the container's (or an exec'd process's) stdin, stdout and stderr go, [`Console`] where the
//! pty master goes with `process.terminal`, and [`Process`] is what `create` and
//! [`Container::spawn_exec`](crate::Container::spawn_exec) return: a [`Pidfd`] to wait on (from
//! any event loop: it is pollable) and the caller's ends of the pipes it asked for.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::sys;
use crate::{Error, Result};

/// Where one of a process's standard streams goes.
///
/// ```
/// use libcontainer::Stdio;
/// # let path = std::env::temp_dir().join(format!("husk-doc-stdio-{}.log", std::process::id()));
/// let log = std::fs::File::create(&path).unwrap();
/// let out = Stdio::from(log); // the container writes to this file
/// let input = Stdio::piped(); // the caller gets the pipe's other end back
/// # let _ = (out, input);
/// # std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Stdio {
    /// The caller's own (its fd 0, 1 or 2), as runc does.
    #[default]
    Inherit,
    /// /dev/null (of the host, opened by the runtime).
    Null,
    /// A new pipe; the caller gets its other end ([`Process::stdin`] and the others).
    Piped,
    /// This fd (a file, a socket, one end of the caller's own pipe...). Shared: the runtime
    /// duplicates it for the process and keeps no copy.
    Fd(Arc<OwnedFd>),
}

impl Stdio {
    /// The caller's own stream.
    pub fn inherit() -> Stdio {
        Stdio::Inherit
    }

    /// /dev/null.
    pub fn null() -> Stdio {
        Stdio::Null
    }

    /// A pipe whose other end is returned.
    pub fn piped() -> Stdio {
        Stdio::Piped
    }

    fn is_inherit(&self) -> bool {
        matches!(self, Stdio::Inherit)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(Arc::new(fd))
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::from(OwnedFd::from(f))
    }
}

/// Where the pty master goes when the process has a terminal (`process.terminal`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Console {
    /// Handed to the caller in [`Process::pty`] (by `Runtime::create` and
    /// `Container::spawn_exec`; `run` and `exec`, which return no `Process`, refuse it).
    #[default]
    Return,
    /// Sent over this unix socket (runc's `--console-socket`), as an SCM_RIGHTS message.
    Socket(PathBuf),
    /// Copied to and from the calling process's own stdin and stdout while
    /// [`Runtime::run`](crate::Runtime::run) or [`Container::exec`](crate::Container::exec)
    /// waits, as runc's foreground `-t` does. Refused, with runc's message, where nothing
    /// waits (`create`, `detach`).
    Proxy,
}

/// The three streams of a process to be created.
pub(crate) struct StdioSet<'a>(pub [&'a Stdio; 3]);

impl StdioSet<'_> {
    pub(crate) fn all_inherit(&self) -> bool {
        self.0.iter().all(|s| s.is_inherit())
    }

    /// Parent side, before the clone: the child's fds (numbered 3 or above, so the child's
    /// dup2 onto 0-2 never overwrites one it still has to copy) and the caller's pipe ends.
    pub(crate) fn prepare(&self) -> Result<(ChildStdio, [Option<File>; 3])> {
        let mut child = ChildStdio {
            fds: [-1; 3],
            owned: Vec::new(),
        };
        let mut ours: [Option<File>; 3] = [None, None, None];
        for (i, s) in self.0.into_iter().enumerate() {
            let fd = match s {
                Stdio::Inherit => continue,
                Stdio::Null => {
                    let f = std::fs::OpenOptions::new()
                        .read(i == 0)
                        .write(i != 0)
                        .open("/dev/null")
                        .map_err(|e| Error::io("opening /dev/null", e))?;
                    above_stdio(OwnedFd::from(f))?
                }
                Stdio::Piped => {
                    let (r, w) =
                        sys::proc::pipe().map_err(|e| Error::errno("creating a stdio pipe", e))?;
                    let (r, w) = (sys::adopt(r), sys::adopt(w));
                    let (theirs, mine) = if i == 0 { (r, w) } else { (w, r) };
                    ours[i] = Some(File::from(mine));
                    above_stdio(theirs)?
                }
                Stdio::Fd(fd) => fd
                    .try_clone()
                    .map_err(|e| Error::io(format!("duplicating the fd for stdio {i}"), e))?,
            };
            child.fds[i] = fd.as_raw_fd();
            child.owned.push(fd);
        }
        Ok((child, ours))
    }
}

/// An fd numbered 3 or above (`try_clone` is F_DUPFD_CLOEXEC from 3).
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    fd.try_clone()
        .map_err(|e| Error::io("duplicating a stdio fd", e))
}

/// The child's stdio fds: -1 keeps the inherited one. Kept open by the parent until the
/// clone, closed right after (the child has its copies).
pub(crate) struct ChildStdio {
    pub fds: [RawFd; 3],
    owned: Vec<OwnedFd>,
}

impl ChildStdio {
    /// The fds to keep open until the child is cloned.
    pub(crate) fn into_owned(self) -> Vec<OwnedFd> {
        self.owned
    }
}

/// A pidfd: a handle on one process that cannot be confused with a later process of the same
/// pid. It becomes readable when the process exits, so an event loop can wait on it (tokio's
/// `AsyncFd`, epoll, poll) without a thread per process.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// A pidfd of process `pid` (as this process's pid namespace sees it).
    pub fn open(pid: i32) -> Result<Pidfd> {
        let fd =
            sys::proc::pidfd_open(pid).map_err(|e| Error::errno(format!("pidfd_open {pid}"), e))?;
        Ok(Pidfd::from_parts(sys::adopt(fd), pid))
    }

    pub(crate) fn from_parts(fd: OwnedFd, pid: i32) -> Pidfd {
        Pidfd { fd, pid }
    }

    /// The process's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to the process (never to a later process of the same pid).
    pub fn send_signal(&self, signal: i32) -> Result<()> {
        match sys::proc::pidfd_send_signal(self.fd.as_raw_fd(), signal) {
            Ok(()) => Ok(()),
            Err(libc::ESRCH) => Err(Error::NotRunning),
            Err(e) => Err(Error::errno(
                format!("sending signal {signal} to {}", self.pid),
                e,
            )),
        }
    }

    /// Its exit status (the code, or 128+N when killed by signal N) if it has exited, reaping
    /// it; `None` while it runs. Only the process's parent can reap it: husk makes the
    /// container's init and exec'd processes children of the calling process.
    pub fn try_wait(&self) -> Result<Option<i32>> {
        sys::proc::try_wait_pidfd(self.fd.as_raw_fd())
            .map_err(|e| Error::errno(format!("waiting for process {}", self.pid), e))
    }

    /// Blocks until the process exits; its exit status as for [`Pidfd::try_wait`].
    pub fn wait(&self) -> Result<i32> {
        sys::proc::wait_pidfd(self.fd.as_raw_fd())
            .map_err(|e| Error::errno(format!("waiting for process {}", self.pid), e))
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<Pidfd> for OwnedFd {
    fn from(p: Pidfd) -> OwnedFd {
        p.fd
    }
}

/// A process husk started for the caller: a container's init (from
/// [`Container::take_process`](crate::Container::take_process) after `create`) or an exec'd
/// process ([`Container::spawn_exec`](crate::Container::spawn_exec)).
#[derive(Debug)]
pub struct Process {
    pidfd: Pidfd,
    /// The write end of its stdin, with [`Stdio::Piped`].
    pub stdin: Option<File>,
    /// The read end of its stdout, with [`Stdio::Piped`].
    pub stdout: Option<File>,
    /// The read end of its stderr, with [`Stdio::Piped`].
    pub stderr: Option<File>,
    /// The pty master, with a terminal and [`Console::Return`].
    pub pty: Option<OwnedFd>,
}

impl Process {
    pub(crate) fn new(pidfd: Pidfd, pipes: [Option<File>; 3], pty: Option<OwnedFd>) -> Process {
        let [stdin, stdout, stderr] = pipes;
        Process {
            pidfd,
            stdin,
            stdout,
            stderr,
            pty,
        }
    }

    /// Its pid, in the calling process's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pidfd.pid
    }

    /// Its pidfd (register it with an event loop to learn when it exits).
    pub fn pidfd(&self) -> &Pidfd {
        &self.pidfd
    }

    /// Blocks until it exits: the exit status, or 128+N when killed by signal N.
    pub fn wait(&self) -> Result<i32> {
        self.pidfd.wait()
    }

    /// Its exit status if it has exited, without blocking.
    pub fn try_wait(&self) -> Result<Option<i32>> {
        self.pidfd.try_wait()
    }

    /// The pidfd alone (the pipes and pty, if not taken, are closed).
    pub fn into_pidfd(self) -> Pidfd {
        self.pidfd
    }
}
