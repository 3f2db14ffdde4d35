//! Child side (no allocation): mkdir -p inside the root. Every lookup is resolved in the root
//! (openat2 RESOLVE_IN_ROOT); a dangling symlink on the way is followed inside the root and
//! its target created there, as runc's MkdirAllInRoot does, never outside.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::mount::open_in;
use super::plan::Target;
use crate::sys::{self, mount as m};

/// The kernel's PATH_MAX: the longest path a followed symlink may make.
const PATH_MAX: usize = 4096;
/// Dangling symlinks followed for one path (the kernel's own limit is 40 per lookup).
const MAX_HOPS: usize = 40;

/// What one walk over the path ended with.
enum Walk {
    /// The O_PATH fd of the whole path.
    Done(RawFd),
    /// A dangling symlink was replaced by its target: walk the new path of this length.
    Again(usize),
}

/// Runs `f` with `buf[..end]` as a C string (the byte at `end` is swapped for NUL meanwhile).
fn with_prefix<T>(buf: &mut [u8; PATH_MAX], end: usize, f: impl FnOnce(&CStr) -> T) -> T {
    let saved = buf[end];
    buf[end] = 0;
    let r = match CStr::from_bytes_until_nul(&buf[..=end]) {
        Ok(c) => f(c),
        Err(_) => f(c"."),
    };
    buf[end] = saved;
    r
}

/// Opens `buf[..end]` in the root ("." when empty).
fn open_prefix(
    root: RawFd,
    buf: &mut [u8; PATH_MAX],
    end: usize,
    flags: i32,
) -> Result<RawFd, i32> {
    if end == 0 {
        return open_in(root, c".", flags);
    }
    with_prefix(buf, end, |p| open_in(root, p, flags))
}

/// One pass: opens each prefix, creates the first missing component and goes on; stops at a
/// dangling symlink, which it splices into `buf`.
fn walk(root: RawFd, buf: &mut [u8; PATH_MAX], len: usize, is_file: bool) -> Result<Walk, i32> {
    let mut start = 0;
    let mut parent_end = 0;
    loop {
        while start < len && buf[start] == b'/' {
            start += 1;
        }
        if start >= len {
            return open_prefix(root, buf, parent_end, libc::O_PATH).map(Walk::Done);
        }
        let mut end = start;
        while end < len && buf[end] != b'/' {
            end += 1;
        }
        let last = buf[end..len].iter().all(|b| *b == b'/');
        match open_prefix(root, buf, end, libc::O_PATH) {
            Ok(fd) if last => return Ok(Walk::Done(fd)),
            Ok(fd) => {
                sys::close(fd);
                parent_end = end;
                start = end;
                continue;
            }
            Err(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // The parent was resolved in the root and the name is one component, so what is
        // created cannot land outside it (O_EXCL and mkdirat do not follow a final symlink).
        let parent = super::mount::Guard(open_prefix(
            root,
            buf,
            parent_end,
            libc::O_PATH | libc::O_DIRECTORY,
        )?);
        let mut link = [0u8; PATH_MAX];
        let created = with_prefix(buf, end, |path| {
            let name = CStr::from_bytes_with_nul(&path.to_bytes_with_nul()[start..])
                .map_err(|_| libc::EINVAL)?;
            let r = if last && is_file {
                m::openat(
                    parent.0,
                    name,
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                )
                .map(sys::close)
            } else {
                m::mkdirat(parent.0, name, 0o755)
            };
            match r {
                Ok(()) => Ok(None),
                // There but not resolvable: a dangling symlink, followed inside the root. Not
                // in procfs, whose links name the caller's own fds and tasks (the reopen
                // below refuses those, RESOLVE_NO_MAGICLINKS).
                Err(libc::EEXIST) => {
                    let dangling = open_in(root, path, libc::O_PATH)
                        .map(sys::close)
                        .is_err_and(|e| e == libc::ENOENT);
                    let in_proc = m::fs_type(parent.0).is_ok_and(|t| t == libc::PROC_SUPER_MAGIC);
                    if !dangling || in_proc {
                        return Ok(None);
                    }
                    match m::readlinkat(parent.0, name, &mut link) {
                        Ok(n) if n < PATH_MAX => Ok(Some(n)),
                        Ok(_) => Err(libc::ENAMETOOLONG),
                        Err(libc::EINVAL) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        })?;
        if let Some(n) = created {
            // parent + "/" + target + rest (an absolute target starts again from the root).
            let mut next = [0u8; PATH_MAX];
            let mut k = 0;
            let mut push = |b: &[u8]| -> Result<(), i32> {
                if k + b.len() >= PATH_MAX {
                    return Err(libc::ENAMETOOLONG);
                }
                next[k..k + b.len()].copy_from_slice(b);
                k += b.len();
                Ok(())
            };
            if link[0] != b'/' {
                push(&buf[..parent_end])?;
                push(b"/")?;
            }
            push(&link[..n])?;
            push(&buf[end..len])?;
            buf[..k].copy_from_slice(&next[..k]);
            return Ok(Walk::Again(k));
        }
        let fd = open_prefix(root, buf, end, libc::O_PATH)?;
        if last {
            return Ok(Walk::Done(fd));
        }
        sys::close(fd);
        parent_end = end;
        start = end;
    }
}

/// mkdir -p of `rel` inside the root, its last component an empty file when `is_file`:
/// an O_PATH fd of it, and whether it was there already.
pub(super) fn make_path(root: RawFd, rel: &CStr, is_file: bool) -> Result<(RawFd, bool), i32> {
    match open_in(root, rel, libc::O_PATH) {
        Ok(fd) => return Ok((fd, true)),
        Err(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let bytes = rel.to_bytes();
    if bytes.len() >= PATH_MAX {
        return Err(libc::ENAMETOOLONG);
    }
    let mut buf = [0u8; PATH_MAX];
    buf[..bytes.len()].copy_from_slice(bytes);
    let mut len = bytes.len();
    for _ in 0..MAX_HOPS {
        match walk(root, &mut buf, len, is_file)? {
            Walk::Done(fd) => return Ok((fd, false)),
            Walk::Again(n) => len = n,
        }
    }
    Err(libc::ELOOP)
}

/// `make_path` of a planned target (the root itself when it has no components).
pub(super) fn make(root: RawFd, t: &Target, is_file: bool) -> Result<RawFd, i32> {
    if t.prefixes.is_empty() {
        return open_in(root, c".", libc::O_PATH | libc::O_DIRECTORY);
    }
    make_path(root, &t.rel, is_file).map(|(fd, _)| fd)
}

/// An O_PATH fd of the target's parent directory (created if missing) and its last name.
pub(super) fn make_parent(root: RawFd, t: &Target) -> Result<(RawFd, &CStr), i32> {
    let n = t.prefixes.len();
    if n == 0 {
        return Err(libc::EINVAL);
    }
    let fd = if n == 1 {
        open_in(root, c".", libc::O_PATH | libc::O_DIRECTORY)?
    } else {
        make_path(root, &t.prefixes[n - 2], false)?.0
    };
    Ok((fd, &t.names[n - 1]))
}
