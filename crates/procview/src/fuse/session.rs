//! The `/dev/fuse` connection: opening it, reading requests and writing replies and notices.
//!
//! The descriptor is opened non-blocking: several workers may poll the same connection during
//! a graceful replacement, and one that loses the race for a request must not block in read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use super::abi::{self, Writer};
use crate::{Error, Result};

/// Where the FUSE device is.
pub const DEVICE: &str = "/dev/fuse";

/// Checks that `/dev/fuse` is the FUSE character device (10:229), with an error naming the fix.
pub fn check_device() -> Result<()> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "{DEVICE}: {why}: this host has no FUSE (load the fuse module)"
        ))
    };
    let md = match std::fs::metadata(DEVICE) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(bad("no such device")),
        Err(e) => {
            return Err(Error::Io {
                what: DEVICE.into(),
                source: e,
            })
        }
    };
    let rdev = md.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    if !md.file_type().is_char_device() || (major, minor) != (10, 229) {
        return Err(bad(&format!(
            "not the FUSE character device 10:229 (found {major}:{minor})"
        )));
    }
    Ok(())
}

/// Opens `/dev/fuse` (non-blocking, close-on-exec) after [`check_device`].
pub fn open_device() -> Result<OwnedFd> {
    check_device()?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(DEVICE)
        .map_err(|e| Error::Io {
            what: format!("open {DEVICE}"),
            source: e,
        })?;
    Ok(f.into())
}

/// What reading the device gave.
pub enum Got {
    /// A request of this many bytes is in the buffer.
    Request(usize),
    /// Nothing (yet): another reader took it, or it was interrupted.
    Nothing,
    /// The filesystem was unmounted or the connection aborted.
    Gone,
}

/// One process's handle on the connection.
pub struct Session {
    dev: File,
}

impl Session {
    pub fn new(fd: OwnedFd) -> Session {
        Session { dev: fd.into() }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }

    /// Reads one request into `buf` (at least `MIN_READ_BUFFER` + max_write bytes).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Got> {
        match self.dev.read(buf) {
            Ok(0) => Ok(Got::Gone),
            Ok(n) => Ok(Got::Request(n)),
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ENOENT) => Ok(Got::Nothing),
                Some(libc::ENODEV) => Ok(Got::Gone),
                _ => Err(e),
            },
        }
    }

    /// Writes a reply: `error` is 0 or a positive errno (sent negated).
    pub fn reply(&mut self, unique: u64, error: i32, payload: &[u8]) -> io::Result<()> {
        let body = if error == 0 { payload } else { &[][..] };
        let mut w = Writer::default();
        w.u32((abi::OUT_HEADER_LEN + body.len()) as u32)
            .u32((-error) as u32)
            .u64(unique)
            .bytes(body);
        match self.dev.write(&w.buf) {
            Ok(_) => Ok(()),
            // The request was interrupted, or already answered (requeued by a resend and
            // answered by another worker): nothing waits for this reply.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `FUSE_NOTIFY_STORE`: puts `data` at offset 0 of node `nodeid`'s page cache, which also
    /// raises the inode's size to at least `data.len()`. Why: a file opened with direct I/O is
    /// still spliced (sendfile, busybox `cat`) through the page cache up to the inode's size;
    /// with procfs's size 0 that reads nothing.
    pub fn notify_store(&mut self, nodeid: u64, data: &[u8]) -> io::Result<()> {
        let mut w = Writer::default();
        w.u32((abi::OUT_HEADER_LEN + 24 + data.len()) as u32)
            .u32(abi::NOTIFY_STORE as u32)
            .u64(0)
            .u64(nodeid)
            .u64(0)
            .u32(data.len() as u32)
            .u32(0)
            .bytes(data);
        self.dev.write(&w.buf).map(|_| ())
    }

    /// `FUSE_NOTIFY_RESEND`: the kernel queues again every request read but not answered on
    /// this connection (by a worker that died). Kernels before 6.9 answer EINVAL or ENOSYS.
    pub fn notify_resend(&mut self) -> io::Result<()> {
        let mut w = Writer::default();
        w.u32(abi::OUT_HEADER_LEN as u32)
            .u32(abi::NOTIFY_RESEND as u32)
            .u64(0);
        self.dev.write(&w.buf).map(|_| ())
    }
}
