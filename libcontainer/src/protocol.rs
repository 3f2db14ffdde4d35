//! The one parent/child protocol: a typed message with fds attached, over one SOCK_SEQPACKET
//! socketpair (and, for `start`, over the connection to start.sock). docs/protocol.md has the
//! table. Encoding is a fixed 16-byte frame so the child never allocates.

use std::os::fd::RawFd;

use crate::fail::{Fail, Step};
use crate::sys::sock;

/// Every message exchanged between husk and the container's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Msg {
    /// parent → child: what the child waited for is done (cgroups joined, maps written, hooks
    /// run); go on.
    Proceed,
    /// child → parent: I created a user and/or time namespace; write my uid/gid maps and time
    /// offsets, then send `Proceed`.
    WriteIdMaps,
    /// first child → parent, fd: pidfd. The init forked into the new pid/time namespace
    /// (a child of the parent through CLONE_PARENT); `pid` is as the parent sees it.
    InitForked { pid: i32 },
    /// init → parent: mounts are done, before pivot_root; run prestart and createRuntime hooks,
    /// then send `Proceed`, fd: the state JSON (memfd) for createContainer hooks.
    RuntimeHooks,
    /// init → parent, fd: the pty master (`process.terminal`).
    Console,
    /// init → parent: set-up done; the init waits for `start`.
    Created,
    /// start → init (on start.sock), fd: the state JSON (memfd) for startContainer hooks.
    Start,
    /// child → parent (or init → start): a step failed; the parent describes it from the plan.
    Failed(Fail),
    /// init → start (or exec process → exec), fd: the seccomp NOTIFY listener; the parent
    /// hands it to the agent at linux.seccomp.listenerPath.
    SeccompListener,
}

const LEN: usize = 16;

impl Msg {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        let (tag, a, code, idx, val): (u8, u8, u16, u32, i32) = match *self {
            Msg::Proceed => (1, 0, 0, 0, 0),
            Msg::WriteIdMaps => (2, 0, 0, 0, 0),
            Msg::InitForked { pid } => (3, 0, 0, 0, pid),
            Msg::RuntimeHooks => (4, 0, 0, 0, 0),
            Msg::Console => (5, 0, 0, 0, 0),
            Msg::Created => (6, 0, 0, 0, 0),
            Msg::Start => (7, 0, 0, 0, 0),
            Msg::Failed(f) => {
                let (area, code) = f.step.encode();
                (8, area, code, f.idx, f.errno)
            }
            Msg::SeccompListener => (9, 0, 0, 0, 0),
        };
        b[0] = tag;
        b[1] = a;
        b[2..4].copy_from_slice(&code.to_le_bytes());
        b[4..8].copy_from_slice(&idx.to_le_bytes());
        b[8..12].copy_from_slice(&val.to_le_bytes());
        b
    }

    fn decode(b: &[u8; LEN]) -> Option<Msg> {
        let code = u16::from_le_bytes([b[2], b[3]]);
        let idx = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let val = i32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        Some(match b[0] {
            1 => Msg::Proceed,
            2 => Msg::WriteIdMaps,
            3 => Msg::InitForked { pid: val },
            4 => Msg::RuntimeHooks,
            5 => Msg::Console,
            6 => Msg::Created,
            7 => Msg::Start,
            8 => Msg::Failed(Fail::new(Step::decode(b[1], code)?, idx, val)),
            9 => Msg::SeccompListener,
            _ => return None,
        })
    }
}

/// Fds that arrived with a message (close-on-exec; the receiver owns them).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fds {
    fds: [RawFd; sock::MAX_FDS],
    n: usize,
}

impl Fds {
    /// The first fd, if any.
    pub(crate) fn first(&self) -> Option<RawFd> {
        (self.n > 0).then_some(self.fds[0])
    }

    /// The fd at `i`, if that many came.
    pub(crate) fn get(&self, i: usize) -> Option<RawFd> {
        (i < self.n).then(|| self.fds[i])
    }

    /// Closes every fd (for messages whose fds are not wanted).
    pub(crate) fn close_all(&self) {
        for &fd in &self.fds[..self.n] {
            crate::sys::close(fd);
        }
    }
}

/// One end of a protocol channel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chan(pub RawFd);

/// What `recv` can return besides a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// The peer closed its end (exited, exec'd or was killed).
    Closed,
    /// A frame that is not a message of this protocol.
    Garbled,
    /// The system call failed.
    Errno(i32),
}

impl Chan {
    pub(crate) fn send(&self, msg: Msg, fds: &[RawFd]) -> Result<(), i32> {
        sock::send(self.0, &msg.encode(), fds)
    }

    pub(crate) fn recv(&self) -> Result<(Msg, Fds), RecvError> {
        let mut buf = [0u8; LEN];
        let mut fds = Fds::default();
        let (n, nfds) = sock::recv(self.0, &mut buf, &mut fds.fds).map_err(RecvError::Errno)?;
        fds.n = nfds;
        if n == 0 {
            fds.close_all();
            return Err(RecvError::Closed);
        }
        match (n == LEN).then(|| Msg::decode(&buf)).flatten() {
            Some(m) => Ok((m, fds)),
            None => {
                fds.close_all();
                Err(RecvError::Garbled)
            }
        }
    }

    /// Child side: sends a failure (best effort: if the parent is gone there is no one to tell).
    pub(crate) fn fail(&self, f: Fail) {
        let _ = self.send(Msg::Failed(f), &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fd() {
        let (a, b) = sock::seqpacket_pair().unwrap();
        let (a, b) = (Chan(a), Chan(b));
        let msgs = [
            Msg::Proceed,
            Msg::WriteIdMaps,
            Msg::InitForked { pid: 4242 },
            Msg::RuntimeHooks,
            Msg::Console,
            Msg::Created,
            Msg::Start,
            Msg::Failed(Fail::new(crate::rootfs::Code::Propagation, 3, libc::EPERM)),
            Msg::SeccompListener,
        ];
        for m in msgs {
            a.send(m, &[]).unwrap();
            assert_eq!(b.recv().unwrap().0, m);
        }
        let memfd = crate::sys::proc::memfd_with(c"t", b"hello").unwrap();
        a.send(Msg::Start, &[memfd]).unwrap();
        let (m, fds) = b.recv().unwrap();
        assert_eq!(m, Msg::Start);
        let got = fds.first().unwrap();
        assert_ne!(got, memfd);
        let mut buf = [0u8; 5];
        assert_eq!(crate::sys::read(got, &mut buf), Ok(5));
        assert_eq!(&buf, b"hello");
        crate::sys::close(a.0);
        assert_eq!(b.recv().unwrap_err(), RecvError::Closed);
    }
}
