//! `tmpcopyup`: a new tmpfs gets a copy of what its mount point held (runc's and crun's option,
//! which podman puts on `--read-only`'s and `--tmpfs`'s mounts). Runs in the child, so no
//! allocation: fixed stack buffers and a bounded recursion. Owners, modes, directories, files
//! and symlinks are copied; device nodes, sockets and fifos are skipped.

use std::ffi::CStr;
use std::os::fd::RawFd;

use crate::sys::{self, mount as m};

/// How deep the copy descends (a tmpfs mount point rarely holds more than a few levels).
const MAX_DEPTH: u32 = 16;

struct Fd(RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        sys::close(self.0);
    }
}

fn open_dir(dirfd: RawFd, name: &CStr) -> Result<Fd, i32> {
    m::openat(
        dirfd,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    )
    .map(Fd)
}

/// Copies the tree below directory `src` into directory `dst`.
pub(super) fn copy_tree(src: RawFd, dst: RawFd, depth: u32) -> Result<(), i32> {
    let mut buf = [0u8; 2048];
    loop {
        let n = m::getdents64(src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off < n {
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name[].
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let rec = &buf[off + 19..off + reclen];
            off += reclen;
            let Ok(name) = CStr::from_bytes_until_nul(rec) else {
                return Err(libc::EINVAL);
            };
            if name == c"." || name == c".." {
                continue;
            }
            copy_one(src, dst, name, depth)?;
        }
    }
}

fn copy_one(src: RawFd, dst: RawFd, name: &CStr, depth: u32) -> Result<(), i32> {
    let st = m::lstatat(src, name)?;
    let perm = st.st_mode & 0o7777;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            match m::mkdirat(dst, name, 0o700) {
                Ok(()) | Err(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
            if depth < MAX_DEPTH {
                let (s, d) = (open_dir(src, name)?, open_dir(dst, name)?);
                copy_tree(s.0, d.0, depth + 1)?;
            }
        }
        libc::S_IFREG => {
            let s = Fd(m::openat(
                src,
                name,
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            )?);
            let d = Fd(m::openat(
                dst,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )?);
            let mut left = st.st_size as usize;
            while left > 0 {
                match m::sendfile(d.0, s.0, left.min(1 << 30))? {
                    0 => break,
                    k => left -= k,
                }
            }
        }
        libc::S_IFLNK => {
            let mut target = [0u8; 4096];
            let len = m::readlinkat(src, name, &mut target[..4095])?;
            target[len] = 0;
            let t = CStr::from_bytes_until_nul(&target).map_err(|_| libc::EINVAL)?;
            m::symlinkat(t, dst, name)?;
            return m::fchownat(dst, name, st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW);
        }
        _ => return Ok(()),
    }
    m::fchownat(dst, name, st.st_uid, st.st_gid, libc::AT_SYMLINK_NOFOLLOW)?;
    m::fchmodat(dst, name, perm)
}
