//! The ZFS source: a clone of a snapshot, mounted on the state dir's `rootfs`, with an
//! optional `quota`. Through the `zfs` command (libzfs has no stable ABI); the mount itself
//! is mount(2), the clone being made with `mountpoint=legacy` so ZFS never mounts it
//! anywhere else.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::{Deserialize, Serialize};

use super::{cstr, Made, Undo};
use crate::sys::mount as m;
use crate::{Error, Result};

/// A ZFS clone rootfs: `dataset` is cloned from `snapshot` at create, destroyed at delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZfsSource {
    /// The image: a snapshot (`pool/images/alpine@v1`), left untouched.
    pub snapshot: String,
    /// The clone to make (`pool/containers/c1`); must not exist.
    pub dataset: String,
    /// A limit, in bytes, on what the container writes (the clone's `quota` property).
    pub quota: Option<u64>,
}

fn bad(name: &str, why: &str) -> Error {
    Error::config("annotations", format!("rootfs source: zfs: {name}: {why}"))
}

/// Where `zfs` is: PATH first, then the sbin directories (engines may run the runtime with
/// a PATH without them).
pub(crate) fn zfs_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join("zfs"))
        .find(|p| p.is_file())
}

/// Runs `zfs ARGS`; Err names what failed. Ok carries the output whatever the exit status.
fn zfs(args: &[&str]) -> Result<Output> {
    let bin = zfs_bin().ok_or_else(|| {
        Error::config(
            "annotations",
            "rootfs source: zfs: the zfs command is not on PATH nor in /usr/sbin or /sbin \
             (install zfsutils-linux)",
        )
    })?;
    Command::new(&bin)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| Error::io(format!("running {} {}", bin.display(), args.join(" ")), e))
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

/// Whether `name` (a dataset or snapshot) exists; the zfs command's other failures (no
/// module loaded, no permission) are errors.
fn exists(name: &str, kind: &str) -> Result<bool> {
    let o = zfs(&["list", "-H", "-o", "name", "-t", kind, name])?;
    if o.status.success() {
        return Ok(true);
    }
    let err = stderr_of(&o);
    if err.contains("does not exist") {
        return Ok(false);
    }
    Err(bad(name, &format!("`zfs list` failed: {err}")))
}

/// Refuses names the zfs command would take for an option, and anything outside ZFS's
/// component characters.
fn valid_name(name: &str, snapshot: bool) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(['-', '/', '@'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c))
        && name.matches('@').count() == usize::from(snapshot);
    if !ok {
        let want = if snapshot {
            "a snapshot name (pool/dataset@snapshot)"
        } else {
            "a dataset name (pool/dataset, no '@')"
        };
        return Err(bad(name, &format!("not {want}")));
    }
    Ok(())
}

fn pool_of(name: &str) -> &str {
    name.split(['/', '@']).next().unwrap_or(name)
}

impl ZfsSource {
    /// Refuses a snapshot that does not exist and a dataset that does (and names that are
    /// not ZFS names, or in different pools: a clone lives in its origin's pool).
    pub(crate) fn validate(&self) -> Result<()> {
        valid_name(&self.snapshot, true)?;
        valid_name(&self.dataset, false)?;
        if pool_of(&self.snapshot) != pool_of(&self.dataset) {
            return Err(bad(
                &self.dataset,
                &format!(
                    "a clone must be in its snapshot's pool ({})",
                    pool_of(&self.snapshot)
                ),
            ));
        }
        if !exists(&self.snapshot, "snapshot")? {
            return Err(bad(&self.snapshot, "the snapshot does not exist"));
        }
        if exists(&self.dataset, "all")? {
            return Err(bad(&self.dataset, "the dataset exists already"));
        }
        Ok(())
    }

    /// The undo steps: the dataset, the mountpoint and its mount.
    pub(crate) fn plan(&self, mountpoint: &Path) -> Result<Made> {
        Ok(Made {
            mountpoint: mountpoint.to_path_buf(),
            undo: vec![
                Undo::ZfsDataset(self.dataset.clone()),
                Undo::Mountpoint(mountpoint.to_path_buf()),
                Undo::Unmount(mountpoint.to_path_buf()),
            ],
        })
    }

    /// `zfs clone -o mountpoint=legacy [-o quota=N] SNAPSHOT DATASET`, then mount(2) of type
    /// zfs on the mountpoint.
    pub(crate) fn make(&self, made: &Made) -> Result<()> {
        let quota = self.quota.map(|b| format!("quota={b}"));
        let mut args = vec!["clone", "-o", "mountpoint=legacy"];
        if let Some(q) = &quota {
            args.extend(["-o", q]);
        }
        args.extend([self.snapshot.as_str(), self.dataset.as_str()]);
        let o = zfs(&args)?;
        if !o.status.success() {
            return Err(Error::io(
                format!("zfs clone {} {}", self.snapshot, self.dataset),
                std::io::Error::other(stderr_of(&o)),
            ));
        }
        std::fs::create_dir_all(&made.mountpoint)
            .map_err(|e| Error::io(format!("creating {}", made.mountpoint.display()), e))?;
        let src = std::ffi::CString::new(self.dataset.as_str())
            .map_err(|_| bad(&self.dataset, "a NUL byte"))?;
        m::mount(Some(&src), &cstr(&made.mountpoint)?, Some(c"zfs"), 0, None).map_err(|e| {
            Error::errno(
                format!(
                    "mounting the ZFS dataset {} on {}",
                    self.dataset,
                    made.mountpoint.display()
                ),
                e,
            )
        })
    }
}

/// `zfs destroy DATASET`; a dataset that does not exist is fine. A dataset still busy (a
/// detached mount the kernel has not let go of yet) is retried for a few seconds.
pub(crate) fn destroy(dataset: &str) -> Result<()> {
    let mut last = String::new();
    for i in 0..50 {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let o = zfs(&["destroy", dataset])?;
        if o.status.success() {
            return Ok(());
        }
        last = stderr_of(&o);
        if last.contains("does not exist") {
            return Ok(());
        }
        if !last.contains("busy") {
            break;
        }
    }
    Err(Error::io(
        format!("zfs destroy {dataset}"),
        std::io::Error::other(last),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        valid_name("tank/img@v1", true).unwrap();
        valid_name("tank/c/c1", false).unwrap();
        for (n, snap) in [
            ("tank/img", true),
            ("tank/c1@x", false),
            ("-o/x@y", true),
            ("tank/a b@c", true),
            ("", false),
            ("t@a@b", true),
        ] {
            let e = valid_name(n, snap).unwrap_err().to_string();
            assert!(e.contains("rootfs source: zfs"), "{n}: {e}");
        }
        assert_eq!(pool_of("tank/img@v1"), "tank");
        assert_eq!(pool_of("tank@v1"), "tank");
    }
}
