//! One `criu swrk` session: CRIU started with a SOCK_SEQPACKET socket as its fd 3, one request
//! sent, notifications answered until the final response. CRIU is always reaped.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc::{Criu_req, Criu_req_type, Criu_resp};

use crate::process::CArray;
use crate::sys;
use crate::{Error, Result};

/// A notification CRIU sends while it works (`--action-script` events over RPC).
pub(crate) struct Notify {
    /// "setup-namespaces", "post-restore", "orphan-pts-master", "post-dump"...
    pub script: String,
    /// The root task's pid, where the event has one.
    pub pid: i32,
    /// An fd attached (the pty master of "orphan-pts-master").
    pub fd: Option<OwnedFd>,
}

/// A running `criu swrk`.
pub(crate) struct Swrk {
    pid: i32,
    pidfd: Option<OwnedFd>,
    sock: Option<OwnedFd>,
}

impl Swrk {
    /// Starts `criu swrk 3`: `stdio` become its 0-2 and `extra` its 4, 5, ... (the fds named
    /// by `inherit_fd` entries).
    pub(crate) fn start(criu: &Path, stdio: [RawFd; 3], extra: &[RawFd]) -> Result<Swrk> {
        let err =
            |what: &str, e| Error::errno(format!("starting {} swrk: {what}", criu.display()), e);
        let (ours, theirs) = sys::sock::seqpacket_pair().map_err(|e| err("socketpair", e))?;
        let ours = sys::adopt(ours);
        let theirs = sys::adopt(theirs);
        let path = CString::new(criu.as_os_str().as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("criu path {criu:?} contains NUL")))?;
        let argv = CArray::new(vec![path.clone(), c"swrk".into(), c"3".into()]);
        let env = CArray::new(
            std::env::vars_os()
                .filter_map(|(k, v)| {
                    let mut kv = k.as_bytes().to_vec();
                    kv.push(b'=');
                    kv.extend_from_slice(v.as_bytes());
                    CString::new(kv).ok()
                })
                .collect(),
        );
        // Every source moved above the numbers the child dup2s onto, so no dup2 clobbers a
        // source not yet placed. A stdio fd of -1 stays the caller's.
        let mut sources: Vec<(RawFd, RawFd)> = Vec::new();
        for (i, &fd) in stdio.iter().enumerate() {
            if fd >= 0 {
                sources.push((fd, i as RawFd));
            }
        }
        sources.push((theirs.as_raw_fd(), 3));
        for (i, &fd) in extra.iter().enumerate() {
            sources.push((fd, 4 + i as RawFd));
        }
        let top = 4 + extra.len() as RawFd;
        let mut moved = Vec::with_capacity(sources.len());
        let mut targets = Vec::with_capacity(sources.len());
        for &(fd, to) in &sources {
            let m = sys::adopt(sys::proc::dup_above(fd, top).map_err(|e| err("dup", e))?);
            targets.push((m.as_raw_fd(), to));
            moved.push(m);
        }
        // The child only makes async-signal-safe calls: the caller may be multi-threaded.
        let (pid, pidfd) = match sys::proc::clone3(0, None).map_err(|e| err("clone3", e))? {
            sys::proc::Cloned::Child => {
                for &(from, to) in &targets {
                    if sys::proc::dup2(from, to).is_err() {
                        sys::exit(126);
                    }
                }
                let _ = sys::proc::cloexec_from(top as u32);
                sys::proc::reset_signals();
                sys::proc::execve(&path, argv.ptrs(), env.ptrs());
                sys::exit(127);
            }
            sys::proc::Cloned::Parent { pid, pidfd } => (pid, sys::adopt(pidfd)),
        };
        drop(moved);
        drop(theirs);
        Ok(Swrk {
            pid,
            pidfd: Some(pidfd),
            sock: Some(ours),
        })
    }

    /// CRIU's pid (restore moves it into the container's cgroups first, as runc does).
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `req` and answers every notification with `on_notify` until CRIU's final
    /// response, which must report success. `log` names CRIU's log for the error.
    pub(crate) fn request(
        &mut self,
        req: &Criu_req,
        log: Option<&Path>,
        mut on_notify: impl FnMut(Notify) -> Result<()>,
    ) -> Result<Criu_resp> {
        let sock = self.sock.as_ref().map(|s| s.as_raw_fd()).unwrap_or(-1);
        let kind = req.type_();
        let data = req
            .write_to_bytes()
            .map_err(|e| Error::setup(format!("encoding the CRIU request: {e}")))?;
        sys::sock::send(sock, &data, &[])
            .map_err(|e| Error::errno("sending the CRIU request", e))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut fds = [-1; sys::sock::MAX_FDS];
            let (n, nfds) = sys::sock::recv(sock, &mut buf, &mut fds)
                .map_err(|e| Error::errno("reading CRIU's response", e))?;
            let mut fds: Vec<OwnedFd> = fds[..nfds].iter().map(|&f| sys::adopt(f)).collect();
            if n == 0 {
                let status = self.wait();
                return Err(super::failure(
                    &format!("{} ended without answering ({status})", self.what(kind)),
                    log,
                ));
            }
            let resp = Criu_resp::parse_from_bytes(&buf[..n])
                .map_err(|e| Error::setup(format!("decoding CRIU's response: {e}")))?;
            if !resp.success() {
                let mut msg = format!("{} failed", self.what(resp.type_()));
                if resp.cr_errno() != 0 {
                    msg += &format!(" ({})", sys::strerror(resp.cr_errno()));
                }
                // CRIU's message is its first error line, often the RLIMIT_NOFILE complaint it
                // logs on every run here: then the log is quoted instead.
                if !resp.cr_errmsg().is_empty() && !resp.cr_errmsg().contains("RLIMIT_NOFILE") {
                    msg += &format!(": {}", resp.cr_errmsg());
                }
                return Err(super::failure(&msg, log));
            }
            if resp.type_() != Criu_req_type::NOTIFY {
                return Ok(resp);
            }
            let n = resp.notify.as_ref();
            on_notify(Notify {
                script: n.map(|n| n.script().to_string()).unwrap_or_default(),
                pid: n.map(|n| n.pid()).unwrap_or(0),
                fd: fds.pop(),
            })?;
            let mut ack = Criu_req::new();
            ack.set_type(Criu_req_type::NOTIFY);
            ack.set_notify_success(true);
            let data = ack
                .write_to_bytes()
                .map_err(|e| Error::setup(format!("encoding the CRIU request: {e}")))?;
            sys::sock::send(sock, &data, &[])
                .map_err(|e| Error::errno("answering a CRIU notification", e))?;
        }
    }

    fn what(&self, kind: Criu_req_type) -> String {
        let k = match kind {
            Criu_req_type::DUMP => "dump",
            Criu_req_type::PRE_DUMP => "pre-dump",
            Criu_req_type::RESTORE => "restore",
            Criu_req_type::VERSION => "version query",
            Criu_req_type::FEATURE_CHECK => "feature check",
            Criu_req_type::CHECK => "check",
            _ => "request",
        };
        format!("criu {k}")
    }

    /// Closes the socket (CRIU exits on EOF) and reaps CRIU: its exit status as a text.
    pub(crate) fn wait(&mut self) -> String {
        self.sock = None;
        match self.pidfd.take() {
            Some(fd) => match sys::proc::wait_pidfd(fd.as_raw_fd()) {
                Ok(0) => "exit status 0".into(),
                Ok(s) if s > 128 => format!("killed by signal {}", s - 128),
                Ok(s) => format!("exit status {s}"),
                Err(e) => format!("wait: {}", sys::strerror(e)),
            },
            None => "already reaped".into(),
        }
    }
}

impl Drop for Swrk {
    fn drop(&mut self) {
        if self.pidfd.is_some() {
            self.wait();
        }
    }
}
