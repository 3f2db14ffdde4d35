//! ext4 and XFS project quotas on an overlay's upper directory: the upper and work dirs get a
//! project id of their own (inherited by everything made in them) and the project a block
//! hard limit. Through quotactl_fd(2) and the fsxattr ioctls (sys::quota), not xfs_quota or
//! setquota: no process per create, and no block device path needed.

use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::bad;
use crate::sys::{self, quota as q};
use crate::{Error, Result};

const EXT4: i64 = 0xEF53;
const XFS: i64 = 0x5846_5342;

/// The first project id husk picks from: below it are the ids admins hand out by hand
/// (/etc/projid).
const FIRST: u32 = 1 << 20;
/// How many ids husk picks among.
const SPAN: u32 = 1 << 30;
/// How many ids after the preferred one are tried before giving up.
const TRIES: u32 = 4096;

fn open(fs: &Path) -> Result<std::fs::File> {
    std::fs::File::open(fs).map_err(|e| Error::io(format!("opening {}", fs.display()), e))
}

/// The filesystem's name in messages, and whether it is XFS; an error for any other.
fn kind(fs: &Path, f: &std::fs::File) -> Result<(&'static str, bool)> {
    match sys::mount::fs_type(f.as_raw_fd()) {
        Ok(EXT4) => Ok(("ext4", false)),
        Ok(XFS) => Ok(("XFS", true)),
        Ok(other) => Err(bad(
            fs,
            &format!("project quotas need ext4 or XFS; this is a filesystem of type {other:#x}"),
        )),
        Err(e) => Err(Error::errno(format!("statfs {}", fs.display()), e)),
    }
}

/// Refuses a filesystem (the one holding `fs`) without project quotas enforced.
pub(crate) fn check(fs: &Path) -> Result<()> {
    let f = open(fs)?;
    let (name, _) = kind(fs, &f)?;
    let enforced = q::state_flags(f.as_raw_fd()).is_ok_and(|fl| fl & q::PDQ_ENFD != 0);
    if !enforced {
        let how = if name == "XFS" {
            "mount it with -o prjquota"
        } else {
            "mount it with -o prjquota (the filesystem needs the quota and project features: \
             `mkfs.ext4 -O quota,project`, or `tune2fs -O quota,project` unmounted)"
        };
        return Err(bad(
            fs,
            &format!(
                "a quota needs project quotas enforced on this {name} filesystem, and they are \
                 not: {how}"
            ),
        ));
    }
    Ok(())
}

/// The id husk prefers for `key`: the same upper path gets the same id (so a leftover limit
/// is recognisable), spread over [FIRST, FIRST + SPAN).
fn preferred(key: &Path) -> u32 {
    // FNV-1a: small, stable across builds and platforms (std's hasher is not).
    let h = key
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
    FIRST + (h % SPAN as u64) as u32
}

/// A project id for the upper `key` on the filesystem holding `fs`, unused there (no blocks,
/// no inodes, no limit).
pub(crate) fn choose_projid(fs: &Path, key: &Path) -> Result<u32> {
    let f = open(fs)?;
    let start = preferred(key);
    for i in 0..TRIES {
        let id = FIRST + (start - FIRST + i) % SPAN;
        let used = q::project_usage(f.as_raw_fd(), id).map_err(|e| {
            Error::errno(
                format!("quotactl: the usage of project {id} on {}", fs.display()),
                e,
            )
        })?;
        if used == (0, 0, 0) {
            return Ok(id);
        }
    }
    Err(bad(
        fs,
        &format!("no unused project id among {TRIES} tried from {start}"),
    ))
}

/// Gives `dirs` (the empty upper and work dirs) the project `projid` (inherited by what is
/// made in them) and the project a hard limit of `bytes`.
pub(crate) fn set(dirs: &[&Path], fs: &Path, projid: u32, bytes: u64) -> Result<()> {
    let f = open(fs)?;
    let (name, xfs) = kind(fs, &f)?;
    let r = if xfs {
        q::xfs_set_block_limit(f.as_raw_fd(), projid, bytes)
    } else {
        q::set_block_limit(f.as_raw_fd(), projid, bytes)
    };
    r.map_err(|e| {
        Error::errno(
            format!(
                "quotactl: limiting project {projid} to {bytes} bytes on the {name} filesystem \
                 holding {}",
                fs.display()
            ),
            e,
        )
    })?;
    for d in dirs {
        let df = open(d)?;
        q::set_projid_inherit(df.as_raw_fd(), projid).map_err(|e| {
            Error::errno(format!("giving {} the project id {projid}", d.display()), e)
        })?;
    }
    Ok(())
}

/// Removes the project's limit (its files went with the upper). Idempotent: a filesystem
/// gone or without quotas any more has nothing to clear.
pub(crate) fn clear(fs: &Path, projid: u32) -> Result<()> {
    let f = match std::fs::File::open(fs) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("opening {}", fs.display()), e)),
    };
    let xfs = match sys::mount::fs_type(f.as_raw_fd()) {
        Ok(XFS) => true,
        Ok(EXT4) => false,
        _ => return Ok(()),
    };
    let r = if xfs {
        q::xfs_set_block_limit(f.as_raw_fd(), projid, 0)
    } else {
        q::set_block_limit(f.as_raw_fd(), projid, 0)
    };
    match r {
        Ok(()) | Err(libc::ESRCH | libc::ENOSYS | libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::errno(
            format!(
                "quotactl: clearing the limit of project {projid} on {}",
                fs.display()
            ),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferred_ids_are_stable_and_in_range() {
        let a = preferred(Path::new("/var/lib/c1/upper"));
        assert_eq!(a, preferred(Path::new("/var/lib/c1/upper")));
        assert_ne!(a, preferred(Path::new("/var/lib/c2/upper")));
        for p in ["/", "/a", "/var/lib/c1/upper", "/x/y/z"] {
            let id = preferred(Path::new(p));
            assert!((FIRST..FIRST + SPAN).contains(&id), "{p}: {id}");
        }
    }

    #[test]
    fn a_filesystem_without_project_quotas_is_named() {
        // /proc: neither ext4 nor XFS.
        let e = check(Path::new("/proc")).unwrap_err().to_string();
        assert!(e.contains("/proc") && e.contains("ext4 or XFS"), "{e}");
        // clearing there is a no-op, not an error (idempotent undo)
        clear(Path::new("/proc"), FIRST).unwrap();
        clear(Path::new("/nonexistent/husk"), FIRST).unwrap();
    }
}
