//! A process's stdio from the paths containerd gives (FIFOs it reads and writes, `file://`
//! paths, or nothing). The process gets pipes, as with runc's shim: CRIU can checkpoint a
//! process whose stdio are pipes, not one holding a FIFO of the host's /run. Between a pipe and
//! a FIFO the copy is a task of the shim's runtime (no thread per stream): stdin from the
//! FIFO, opened without waiting, which epoll reports only once containerd's writer has come
//! (data) or gone (the end, which ends the pipe; so does CloseIO); stdout and stderr to theirs.
//! A `file://` output, and a terminal's two directions, are copied by a small thread each. A
//! process's exit is reported once its output is copied.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};

use libcontainer::Stdio;
use std::os::unix::fs::FileTypeExt;
use tokio::net::unix::pipe;

/// A process's stdin copy, which CloseIO or the exit ends.
pub enum StdinPipe {
    /// A thread's (a terminal's): the master it writes, taken away to end it, and the FIFO
    /// it may still be waiting to open.
    Thread(Arc<Mutex<Option<File>>>, String),
    /// A task's: aborting it drops the pipe's write end.
    Task(tokio::task::AbortHandle),
}

/// What a process's streams became.
#[derive(Default)]
pub struct Opened {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    stdin_path: Option<String>,
    tty_out: Option<File>,
    out: Option<File>,
    err: Option<File>,
}

/// What the shim keeps of a started process's streams.
#[derive(Default)]
pub struct Attached {
    pub stdin: Option<StdinPipe>,
    /// Disconnected when the output is all copied (every copy thread holds a sender).
    pub out_done: Option<Receiver<()>>,
}

/// Opens an output: a FIFO read-write (the open never waits for containerd's reader, and a
/// reader that goes away gives no SIGPIPE), or a `file://` path appended to.
fn open_out(uri: &str) -> Result<File, String> {
    if let Some(p) = uri.strip_prefix("file://") {
        return OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(p)
            .map_err(|e| format!("opening log file {p}: {e}"));
    }
    if uri.starts_with("binary://") {
        return Err(format!(
            "{uri}: logging binaries are not supported by containerd-shim-husk-v2 \
             (use the FIFOs containerd makes, or file://)"
        ));
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(uri)
        .map_err(|e| format!("opening {uri}: {e}"))
}

/// Opens the streams; with `terminal` the library gets none (the pty is the process's
/// stdio) and they are kept for the copy.
pub fn open(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Result<Opened, String> {
    let mut o = Opened::default();
    if !stdin.is_empty() {
        o.stdin_path = Some(stdin.to_string());
    }
    if terminal {
        if !stdout.is_empty() {
            o.tty_out = Some(open_out(stdout)?);
        }
        return Ok(o);
    }
    o.stdin = if stdin.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    };
    o.stdout = if stdout.is_empty() {
        Stdio::null()
    } else {
        o.out = Some(open_out(stdout)?);
        Stdio::piped()
    };
    o.stderr = if stderr.is_empty() {
        Stdio::null()
    } else {
        o.err = Some(open_out(stderr)?);
        Stdio::piped()
    };
    Ok(o)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 * 1024)
        .spawn(f)
        .map(drop)
        .map_err(|e| format!("starting the {name} copy: {e}"))
}

/// Copies the stdin FIFO into `to` until containerd's writer goes or `to` is taken away.
fn feed_stdin(path: String, to: Arc<Mutex<Option<File>>>) -> Result<(), String> {
    spawn("stdin", move || {
        // Blocks until containerd's writer is there.
        let Ok(mut fifo) = File::open(&path) else {
            return;
        };
        let mut buf = [0u8; 8192];
        while let Ok(n) = fifo.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut w = to.lock().unwrap_or_else(|p| p.into_inner());
            let ok = match w.as_mut() {
                Some(f) => f.write_all(&buf[..n]).is_ok(),
                None => false,
            };
            if !ok {
                break;
            }
        }
        // The end of the FIFO is the end of the process's stdin.
        to.lock().unwrap_or_else(|p| p.into_inner()).take();
    })
}

/// Ends a process's stdin: its pipe's write end is closed. A thread still waiting in its
/// FIFO's open for containerd's writer is woken by a writer that comes and goes.
pub fn close_stdin(p: &StdinPipe) {
    match p {
        StdinPipe::Thread(m, path) => {
            drop(m.lock().unwrap_or_else(|p| p.into_inner()).take());
            let _ = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path);
        }
        StdinPipe::Task(a) => a.abort(),
    }
}

/// Connects the started process's streams: the stdin thread, or the terminal copy.
pub fn attach(o: &mut Opened, process: &mut libcontainer::Process) -> Result<Attached, String> {
    let mut a = Attached::default();
    if let Some(master) = process.pty.as_ref() {
        let dup = || {
            master
                .try_clone()
                .map(File::from)
                .map_err(|e| format!("duplicating the pty master: {e}"))
        };
        if let Some(path) = o.stdin_path.take() {
            let m = Arc::new(Mutex::new(Some(dup()?)));
            feed_stdin(path.clone(), m.clone())?;
            a.stdin = Some(StdinPipe::Thread(m, path));
        }
        let (tx, rx) = channel();
        let mut out = o.tty_out.take();
        let mut m = dup()?;
        spawn("tty-out", move || {
            let mut buf = [0u8; 8192];
            // EIO once every holder of the pty's other side has closed it.
            while let Ok(n) = m.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(f) = out.as_mut() {
                    if f.write_all(&buf[..n]).is_err() {
                        out = None;
                    }
                }
            }
            drop(out);
            drop(tx);
        })?;
        a.out_done = Some(rx);
        return Ok(a);
    }
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| format!("no runtime for the stdio copy: {e}"))?;
    let _in_rt = rt.enter();
    if let (Some(path), Some(w)) = (o.stdin_path.take(), process.stdin.take()) {
        // Opened without waiting for a writer: epoll says nothing until one comes.
        let fifo = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| format!("opening stdin {path}: {e}"))?;
        let mut from = pipe::Receiver::from_file(fifo).map_err(|e| format!("stdin {path}: {e}"))?;
        let mut to = pipe::Sender::from_file(w).map_err(|e| format!("the stdin pipe: {e}"))?;
        let task = rt.spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
        });
        a.stdin = Some(StdinPipe::Task(task.abort_handle()));
    }
    let (tx, rx) = channel::<()>();
    for (name, from, to) in [
        ("stdout", process.stdout.take(), o.out.take()),
        ("stderr", process.stderr.take(), o.err.take()),
    ] {
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        let tx = tx.clone();
        let is_fifo = to.metadata().is_ok_and(|m| m.file_type().is_fifo());
        if !is_fifo {
            // A file:// log: regular files have no readiness to wait for.
            let (mut from, mut to) = (from, to);
            spawn(name, move || {
                let _ = std::io::copy(&mut from, &mut to);
                drop(tx);
            })?;
            continue;
        }
        let mut from = pipe::Receiver::from_file(from).map_err(|e| format!("{name} pipe: {e}"))?;
        let mut to = pipe::Sender::from_file(to).map_err(|e| format!("{name} FIFO: {e}"))?;
        // Ends when every writer of the pipe (the process and its children) is gone.
        rt.spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            drop(tx);
        });
    }
    a.out_done = Some(rx);
    Ok(a)
}

/// The pty master kept for ResizePty.
pub fn pty_of(process: &libcontainer::Process) -> Result<Option<Arc<OwnedFd>>, String> {
    process
        .pty
        .as_ref()
        .map(|m| m.try_clone().map(Arc::new).map_err(|e| format!("pty: {e}")))
        .transpose()
}
