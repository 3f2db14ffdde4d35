//! A process's stdio from the paths containerd gives (FIFOs it reads and writes, `file://`
//! paths, or nothing). Without a terminal the FIFOs themselves become the process's fds: no
//! copy thread and no pipe, so a shim costs nothing per stream. With a terminal, two threads
//! copy between the FIFOs and the pty master.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

use libcontainer::Stdio;

use crate::sys;

/// What a process's streams became.
#[derive(Default)]
pub struct Opened {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// A writer on the stdin FIFO held by the shim, so the process reads no end of file before
    /// containerd's writer comes and after it goes; dropped by CloseIO, or at exit.
    pub stdin_hold: Option<File>,
    /// The FIFOs for the terminal copy (stdin reader, stdout writer).
    tty_in: Option<File>,
    tty_out: Option<File>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opened")
    }
}

/// Opens the stdin FIFO without waiting for a writer, plus the shim's own writer on it.
fn open_stdin(path: &str) -> Result<(File, File), String> {
    let r = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("opening stdin {path}: {e}"))?;
    let hold = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("opening stdin {path} for writing: {e}"))?;
    sys::set_blocking(&r).map_err(|e| format!("stdin {path}: {e}"))?;
    Ok((r, hold))
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

/// Opens the three streams; `terminal`: they are kept for the pty copy instead.
pub fn open(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Result<Opened, String> {
    let mut o = Opened {
        stdin: Stdio::null(),
        stdout: Stdio::null(),
        stderr: Stdio::null(),
        ..Default::default()
    };
    if !stdin.is_empty() {
        let (r, hold) = open_stdin(stdin)?;
        o.stdin_hold = Some(hold);
        if terminal {
            o.tty_in = Some(r);
        } else {
            o.stdin = Stdio::from(r);
        }
    }
    if !stdout.is_empty() {
        let f = open_out(stdout)?;
        if terminal {
            o.tty_out = Some(f);
        } else {
            o.stdout = Stdio::from(f);
        }
    }
    // With a terminal stderr is the pty too; containerd gives no stderr FIFO then.
    if !stderr.is_empty() && !terminal {
        o.stderr = Stdio::from(open_out(stderr)?);
    }
    Ok(o)
}

/// Starts the terminal copy: stdin FIFO to the master, master to the stdout FIFO. The receiver
/// gets a message when all output is copied (the pty's last holder closed it).
pub fn copy_tty(o: &mut Opened, master: &Arc<OwnedFd>) -> Result<Receiver<()>, String> {
    let (tx, rx) = channel();
    let dup = || {
        master
            .try_clone()
            .map(File::from)
            .map_err(|e| format!("duplicating the pty master: {e}"))
    };
    if let Some(mut input) = o.tty_in.take() {
        let mut m = dup()?;
        std::thread::Builder::new()
            .name("tty-in".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = std::io::copy(&mut input, &mut m);
            })
            .map_err(|e| format!("starting the terminal copy: {e}"))?;
    }
    let out = o.tty_out.take();
    let mut m = dup()?;
    std::thread::Builder::new()
        .name("tty-out".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut out = out;
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
            let _ = tx.send(());
        })
        .map_err(|e| format!("starting the terminal copy: {e}"))?;
    Ok(rx)
}
