//! ext4 and XFS project quotas on an overlay's upper directory. (STUB on branch cow:
//! helper-12 implements it on branch cowvm, with the syscalls in sys/quota.rs.)

use std::path::Path;

use crate::{Error, Result};

/// Refuses a filesystem (the one holding `fs`) without project quotas turned on.
pub(crate) fn check(fs: &Path) -> Result<()> {
    Err(Error::config(
        "annotations",
        format!(
            "rootfs source: {}: project quotas are not implemented yet",
            fs.display()
        ),
    ))
}

/// A project id for the upper `key` on the filesystem holding `fs`, unused there.
pub(crate) fn choose_projid(_fs: &Path, _key: &Path) -> Result<u32> {
    Err(check(_fs).unwrap_err())
}

/// Gives `dirs` (the empty upper and work dirs) the project `projid` (inherited by what is
/// made in them) and the project a hard limit of `bytes`.
pub(crate) fn set(_dirs: &[&Path], fs: &Path, _projid: u32, _bytes: u64) -> Result<()> {
    check(fs)
}

/// Removes the project's limit (its files went with the upper).
pub(crate) fn clear(_fs: &Path, _projid: u32) -> Result<()> {
    Ok(())
}
