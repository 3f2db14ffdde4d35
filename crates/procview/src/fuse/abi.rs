//! The FUSE kernel ABI: opcodes, flags, and the byte layout of the structs husk uses.

/// The protocol version we implement (7.40 added `FUSE_NOTIFY_RESEND`).
pub const KERNEL_VERSION: u32 = 7;
pub const KERNEL_MINOR_VERSION: u32 = 40;
pub const ROOT_ID: u64 = 1;

pub const IN_HEADER_LEN: usize = 40;
pub const OUT_HEADER_LEN: usize = 16;

/// Set by the kernel in the unique of a request re-queued by `FUSE_NOTIFY_RESEND`.
pub const UNIQUE_RESEND: u64 = 1 << 63;
/// `fuse_notify_code::FUSE_NOTIFY_RESEND`.
pub const NOTIFY_RESEND: i32 = 7;
/// `fuse_notify_code::FUSE_NOTIFY_STORE`: data into the kernel's page cache of an inode.
pub const NOTIFY_STORE: i32 = 4;

pub const FOPEN_DIRECT_IO: u32 = 1 << 0;

pub const FUSE_ASYNC_READ: u32 = 1 << 0;
pub const FUSE_CACHE_SYMLINKS: u32 = 1 << 23;

/// The smallest read buffer the kernel accepts.
pub const MIN_READ_BUFFER: usize = 8192;

/// Opcodes (`enum fuse_opcode`).
pub mod op {
    pub const LOOKUP: u32 = 1;
    pub const FORGET: u32 = 2;
    pub const GETATTR: u32 = 3;
    pub const SETATTR: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const OPEN: u32 = 14;
    pub const READ: u32 = 15;
    pub const STATFS: u32 = 17;
    pub const RELEASE: u32 = 18;
    pub const GETXATTR: u32 = 22;
    pub const LISTXATTR: u32 = 23;
    pub const FLUSH: u32 = 25;
    pub const INIT: u32 = 26;
    pub const OPENDIR: u32 = 27;
    pub const READDIR: u32 = 28;
    pub const RELEASEDIR: u32 = 29;
    pub const ACCESS: u32 = 34;
    pub const INTERRUPT: u32 = 36;
    pub const DESTROY: u32 = 38;
    pub const BATCH_FORGET: u32 = 42;
}

/// `struct fuse_in_header`.
#[derive(Clone, Copy, Debug)]
pub struct InHeader {
    pub len: u32,
    pub opcode: u32,
    pub unique: u64,
    pub nodeid: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

/// A little-endian cursor over request bytes; reads past the end yield an error.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A request shorter than its opcode's struct.
#[derive(Debug)]
pub struct Short;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos.checked_add(n).ok_or(Short)?;
        let s = self.buf.get(self.pos..end).ok_or(Short)?;
        self.pos = end;
        Ok(s)
    }
    pub fn u16(&mut self) -> Result<u16, Short> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Result<u32, Short> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, Short> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// The rest up to the first NUL (a name argument).
    pub fn cstr(&mut self) -> Result<&'a [u8], Short> {
        let rest = &self.buf[self.pos..];
        let n = rest.iter().position(|&b| b == 0).ok_or(Short)?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

impl InHeader {
    pub fn parse(r: &mut Reader) -> Result<InHeader, Short> {
        let h = InHeader {
            len: r.u32()?,
            opcode: r.u32()?,
            unique: r.u64()?,
            nodeid: r.u64()?,
            uid: r.u32()?,
            gid: r.u32()?,
            pid: r.u32()?,
        };
        let _total_extlen = r.u16()?;
        let _padding = r.u16()?;
        Ok(h)
    }
}

/// A little-endian reply builder.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }
}

/// `struct fuse_attr`, the fields husk sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub mtime: u64,
    pub mtime_nsec: u32,
    pub mode: u32,
    pub nlink: u32,
    pub rdev: u32,
}

impl Attr {
    /// Encodes `struct fuse_attr` (88 bytes); atime and ctime are the mtime, uid/gid are 0.
    pub fn write(&self, w: &mut Writer) {
        w.u64(self.ino).u64(self.size).u64(self.blocks);
        w.u64(self.mtime).u64(self.mtime).u64(self.mtime);
        w.u32(self.mtime_nsec)
            .u32(self.mtime_nsec)
            .u32(self.mtime_nsec);
        w.u32(self.mode)
            .u32(self.nlink)
            .u32(0)
            .u32(0)
            .u32(self.rdev);
        w.u32(4096).u32(0);
    }
}

/// `struct fuse_entry_out` (128 bytes).
pub fn entry_out(nodeid: u64, attr: &Attr, valid_secs: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(nodeid)
        .u64(0)
        .u64(valid_secs)
        .u64(valid_secs)
        .u32(0)
        .u32(0);
    attr.write(&mut w);
    w.buf
}

/// `struct fuse_attr_out` (104 bytes).
pub fn attr_out(attr: &Attr, valid_secs: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(valid_secs).u32(0).u32(0);
    attr.write(&mut w);
    w.buf
}

/// `struct fuse_open_out` (16 bytes).
pub fn open_out(fh: u64, open_flags: u32) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(fh).u32(open_flags).u32(0);
    w.buf
}

/// `struct fuse_kstatfs` as `fuse_statfs_out` (80 bytes).
pub fn statfs_out(namelen: u32) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(0).u64(0).u64(0).u64(0).u64(0);
    w.u32(4096).u32(namelen).u32(4096).u32(0).zeros(24);
    w.buf
}

/// Appends one `struct fuse_dirent` (padded to 8 bytes) unless it would pass `max`; returns
/// whether it fit.
pub fn push_dirent(
    out: &mut Vec<u8>,
    max: usize,
    ino: u64,
    off: u64,
    typ: u32,
    name: &[u8],
) -> bool {
    let len = 24 + name.len();
    let padded = (len + 7) & !7;
    if out.len() + padded > max {
        return false;
    }
    let mut w = Writer::default();
    w.u64(ino)
        .u64(off)
        .u32(name.len() as u32)
        .u32(typ)
        .bytes(name);
    w.zeros(padded - len);
    out.extend_from_slice(&w.buf);
    true
}

/// `struct fuse_init_in` (the fields husk reads).
#[derive(Clone, Copy, Debug)]
pub struct InitIn {
    pub major: u32,
    pub minor: u32,
    pub max_readahead: u32,
    pub flags: u32,
}

impl InitIn {
    pub fn parse(r: &mut Reader) -> Result<InitIn, Short> {
        Ok(InitIn {
            major: r.u32()?,
            minor: r.u32()?,
            max_readahead: r.u32()?,
            flags: r.u32()?,
        })
    }
}

/// The negotiated parameters, kept so a later worker knows them without seeing INIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitParams {
    pub minor: u32,
    pub max_readahead: u32,
    pub max_write: u32,
    pub flags: u32,
}

impl InitParams {
    /// `struct fuse_init_out` (64 bytes: the 7.23+ size).
    pub fn init_out(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(KERNEL_VERSION)
            .u32(self.minor)
            .u32(self.max_readahead)
            .u32(self.flags);
        w.u16(16).u16(12).u32(self.max_write).u32(1);
        w.u16(0).u16(0).u32(0).u32(0).zeros(24);
        w.buf
    }

    /// `minor=.. max_readahead=.. max_write=.. flags=..` (the file `<dir>/init`).
    pub fn to_line(&self) -> String {
        format!(
            "minor={} max_readahead={} max_write={} flags={:#x}\n",
            self.minor, self.max_readahead, self.max_write, self.flags
        )
    }

    pub fn from_line(s: &str) -> Option<InitParams> {
        let mut p = InitParams {
            minor: 0,
            max_readahead: 0,
            max_write: 0,
            flags: 0,
        };
        let mut seen = 0;
        for kv in s.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            let n = match v.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => v.parse().ok()?,
            };
            match k {
                "minor" => p.minor = n,
                "max_readahead" => p.max_readahead = n,
                "max_write" => p.max_write = n,
                "flags" => p.flags = n,
                _ => continue,
            }
            seen += 1;
        }
        (seen == 4).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_kernel_structs() {
        assert_eq!(entry_out(2, &Attr::default(), 1).len(), 128);
        assert_eq!(attr_out(&Attr::default(), 1).len(), 104);
        assert_eq!(open_out(1, 0).len(), 16);
        assert_eq!(statfs_out(255).len(), 80);
        let p = InitParams {
            minor: 40,
            max_readahead: 1 << 17,
            max_write: 4096,
            flags: 1,
        };
        assert_eq!(p.init_out().len(), 64);
        assert_eq!(InitParams::from_line(&p.to_line()), Some(p));
        let mut d = Vec::new();
        assert!(push_dirent(&mut d, 4096, 5, 1, 4, b"cpu0"));
        assert_eq!(d.len(), 32);
        assert!(!push_dirent(&mut d, 40, 6, 2, 4, b"cpu1"));
    }

    #[test]
    fn header_parses_little_endian() {
        let mut b = Vec::new();
        let mut w = Writer::default();
        w.u32(40)
            .u32(op::LOOKUP)
            .u64(UNIQUE_RESEND | 9)
            .u64(1)
            .u32(0)
            .u32(0)
            .u32(77)
            .u16(0)
            .u16(0);
        b.extend_from_slice(&w.buf);
        let h = InHeader::parse(&mut Reader::new(&b)).unwrap();
        assert_eq!(
            (h.opcode, h.unique & !UNIQUE_RESEND, h.pid),
            (op::LOOKUP, 9, 77)
        );
        assert!(InHeader::parse(&mut Reader::new(&b[..39])).is_err());
    }
}
