//! `run` in the foreground with a terminal and no console socket: copy between husk's own
//! stdio and the container's pty, as runc does.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use crate::{Error, Result};

/// Copies stdin → pty master and pty master → stdout on two threads until the pty closes.
pub(crate) struct Proxy {
    _out: std::thread::JoinHandle<()>,
}

impl Proxy {
    pub(crate) fn start(master: &OwnedFd) -> Result<Proxy> {
        let mut r = std::fs::File::from(master.try_clone().map_err(|e| Error::io("dup pty", e))?);
        let mut w = std::fs::File::from(master.try_clone().map_err(|e| Error::io("dup pty", e))?);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut w);
        });
        let out = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut stdout = std::io::stdout();
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        });
        Ok(Proxy { _out: out })
    }
}

/// Waits for the init to exit, forwarding the signals `run` receives meanwhile (SIGINT,
/// SIGTERM, ...) to it, as runc does. The signals are blocked in the calling thread only and
/// the mask is restored afterwards.
pub(crate) fn wait_forwarding(pidfd: &crate::Pidfd) -> Result<i32> {
    use crate::sys::proc;
    use std::os::fd::AsRawFd;
    let (sfd, old) =
        proc::signalfd_for(proc::FORWARDED).map_err(|e| Error::errno("signalfd", e))?;
    let sfd = crate::sys::adopt(sfd);
    let result = loop {
        match proc::poll_two(pidfd.as_raw_fd(), sfd.as_raw_fd()) {
            Err(e) => break Err(Error::errno("waiting for the container", e)),
            Ok((true, _)) => {
                break proc::wait_pidfd(pidfd.as_raw_fd())
                    .map_err(|e| Error::errno("waiting for the container", e))
            }
            Ok((false, true)) => {
                if let Ok(sig) = proc::read_signal(sfd.as_raw_fd()) {
                    let _ = proc::signal_pidfd(pidfd.as_raw_fd(), sig);
                }
            }
            Ok((false, false)) => {}
        }
    };
    proc::restore_mask(&old);
    result
}
