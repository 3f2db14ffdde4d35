//! The btrfs source: a writable snapshot of an image's subvolume, with an optional qgroup
//! limit on what the container writes. Also the subvolume an overlay's upper becomes when it
//! has a quota on btrfs. Through the kernel's ioctls (sys::btrfs), not btrfs-progs: no
//! process per create, and the destroy names the subvolume by id.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{bad, cstr, Made, Undo};
use crate::sys::{self, btrfs as b, mount as m};
use crate::{Error, Result};

/// A btrfs snapshot rootfs: `snapshot` is made from `subvolume` at create, removed at delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtrfsSource {
    /// The image: a btrfs subvolume (left untouched).
    pub subvolume: PathBuf,
    /// Where the container's snapshot is made (must not exist; its parent must, on the same
    /// btrfs filesystem). It is the container's root.path.
    pub snapshot: PathBuf,
    /// A limit, in bytes, on what the container writes (the snapshot's exclusive bytes, a
    /// qgroup limit; quotas must be enabled on the filesystem).
    pub quota: Option<u64>,
}

fn open_dir(p: &Path) -> std::io::Result<OwnedFd> {
    let fd = m::openat(
        libc::AT_FDCWD,
        &cstr(p).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    )
    .map_err(std::io::Error::from_raw_os_error)?;
    Ok(sys::adopt(fd))
}

/// Whether the open directory is the root of a btrfs subvolume.
fn is_subvolume(fd: &OwnedFd) -> bool {
    let f = std::fs::File::from(fd.try_clone().expect("dup"));
    m::fs_type(fd.as_raw_fd()) == Ok(b::SUPER_MAGIC)
        && f.metadata()
            .is_ok_and(|md| md.ino() == b::FIRST_FREE_OBJECTID)
}

fn name_of(p: &Path) -> Result<std::ffi::CString> {
    let n = p
        .file_name()
        .ok_or_else(|| bad(p, "needs a final path component"))?;
    cstr(Path::new(n))
}

fn parent_of(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

fn limit(p: &Path, fd: &OwnedFd, bytes: u64) -> Result<()> {
    let id = b::subvolume_id(fd.as_raw_fd())
        .map_err(|e| Error::errno(format!("btrfs: the subvolume id of {}", p.display()), e))?;
    b::limit_exclusive(fd.as_raw_fd(), id, bytes).map_err(|e| match e {
        libc::ENOTCONN => bad(
            p,
            "a quota needs quotas enabled on its btrfs filesystem (`btrfs quota enable \
             MOUNTPOINT`)",
        ),
        e => Error::errno(format!("btrfs: limiting the qgroup of {}", p.display()), e),
    })
}

impl BtrfsSource {
    /// Refuses a relative path, a subvolume that does not exist or is not a btrfs
    /// subvolume, and a snapshot path that exists or whose parent does not.
    pub(crate) fn validate(&self) -> Result<()> {
        for p in [&self.subvolume, &self.snapshot] {
            if !p.is_absolute() {
                return Err(bad(p, "must be an absolute path"));
            }
        }
        let fd = open_dir(&self.subvolume).map_err(|e| {
            bad(
                &self.subvolume,
                &format!("the btrfs subvolume: {}", crate::fail::io_text(&e)),
            )
        })?;
        if !is_subvolume(&fd) {
            return Err(bad(&self.subvolume, "not a btrfs subvolume"));
        }
        if std::fs::symlink_metadata(&self.snapshot).is_ok() {
            return Err(bad(&self.snapshot, "the snapshot path exists already"));
        }
        let parent = parent_of(&self.snapshot);
        let pfd = open_dir(parent).map_err(|e| {
            bad(
                parent,
                &format!(
                    "the snapshot's parent directory: {}",
                    crate::fail::io_text(&e)
                ),
            )
        })?;
        if m::fs_type(pfd.as_raw_fd()) != Ok(b::SUPER_MAGIC) {
            return Err(bad(
                parent,
                "the snapshot's parent directory is not on btrfs",
            ));
        }
        Ok(())
    }

    pub(crate) fn plan(&self, _mountpoint: &Path) -> Result<Made> {
        Ok(Made {
            mountpoint: self.snapshot.clone(),
            undo: vec![Undo::BtrfsSubvolume(self.snapshot.clone())],
        })
    }

    pub(crate) fn make(&self, made: &Made) -> Result<()> {
        let src = open_dir(&self.subvolume)
            .map_err(|e| Error::io(format!("opening {}", self.subvolume.display()), e))?;
        let parent = parent_of(&made.mountpoint);
        let dir =
            open_dir(parent).map_err(|e| Error::io(format!("opening {}", parent.display()), e))?;
        b::snapshot(
            src.as_raw_fd(),
            dir.as_raw_fd(),
            &name_of(&made.mountpoint)?,
        )
        .map_err(|e| {
            let why = if e == libc::EXDEV {
                " (the snapshot must be on the subvolume's filesystem)".to_string()
            } else {
                String::new()
            };
            Error::errno(
                format!(
                    "btrfs: snapshotting {} as {}{why}",
                    self.subvolume.display(),
                    made.mountpoint.display()
                ),
                e,
            )
        })?;
        if let Some(bytes) = self.quota {
            let fd = open_dir(&made.mountpoint)
                .map_err(|e| Error::io(format!("opening {}", made.mountpoint.display()), e))?;
            limit(&made.mountpoint, &fd, bytes)?;
        }
        Ok(())
    }
}

/// Makes `p` an empty subvolume with an exclusive-bytes limit (0: none). Its parent exists.
pub(crate) fn make_subvolume(p: &Path, bytes: u64) -> Result<()> {
    let parent = parent_of(p);
    let dir =
        open_dir(parent).map_err(|e| Error::io(format!("opening {}", parent.display()), e))?;
    b::create_subvolume(dir.as_raw_fd(), &name_of(p)?)
        .map_err(|e| Error::errno(format!("btrfs: creating the subvolume {}", p.display()), e))?;
    if bytes > 0 {
        let fd = open_dir(p).map_err(|e| Error::io(format!("opening {}", p.display()), e))?;
        limit(p, &fd, bytes)?;
    }
    Ok(())
}

/// Deletes the subvolume at `p` (by its id) and its qgroup; nothing there is fine. A
/// directory there that is not a subvolume is left alone (and named).
pub(crate) fn destroy(p: &Path) -> Result<()> {
    let fd = match open_dir(p) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io(format!("opening {}", p.display()), e)),
    };
    if !is_subvolume(&fd) {
        return Err(Error::io(
            format!("removing {}: not a btrfs subvolume", p.display()),
            std::io::Error::from_raw_os_error(libc::EINVAL),
        ));
    }
    let id = b::subvolume_id(fd.as_raw_fd())
        .map_err(|e| Error::errno(format!("btrfs: the subvolume id of {}", p.display()), e))?;
    let parent = parent_of(p);
    let dir =
        open_dir(parent).map_err(|e| Error::io(format!("opening {}", parent.display()), e))?;
    drop(fd);
    b::destroy_subvolume(dir.as_raw_fd(), id)
        .map_err(|e| Error::errno(format!("btrfs: deleting the subvolume {}", p.display()), e))?;
    // EBUSY until the cleaner has dropped the subvolume; the kernel then drops the stale
    // qgroup itself. ENOTCONN: quotas are off, there is none.
    let _ = b::destroy_qgroup(dir.as_raw_fd(), id);
    Ok(())
}
