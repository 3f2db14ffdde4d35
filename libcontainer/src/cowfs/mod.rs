//! Copy-on-write root filesystems made by husk (docs/rootfs-sources.md): an overlay of
//! read-only layers with a writable upper, a btrfs snapshot of a subvolume, or a ZFS clone of
//! a snapshot, each with an optional size quota. Made at create before the mount plan (so
//! pivot_root goes over it) and removed at delete.
//!
//! Every step that makes something is recorded in the state directory (as an undo step)
//! *before* it is made, so `delete --force` after a SIGKILL at any point, or a failed create,
//! undoes exactly what exists; each undo step is idempotent.

mod btrfs;
mod overlay;
mod prjquota;
mod probe;
mod zfs;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use btrfs::BtrfsSource;
pub use overlay::{OverlayOptions, OverlaySource};
pub use probe::{probe, Support};
pub use zfs::ZfsSource;

use crate::{Error, Result};

/// A root filesystem husk makes for the container (and removes at delete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RootfsSource {
    /// An overlay of read-only layers with a writable upper.
    Overlay(OverlaySource),
    /// A writable snapshot of a btrfs subvolume.
    Btrfs(BtrfsSource),
    /// A ZFS clone of a snapshot.
    Zfs(ZfsSource),
}

/// The annotation naming the source: `overlay`, `btrfs` or `zfs`. Its parameters are
/// annotations named `ANNOTATION.<key>`; docs/rootfs-sources.md lists them.
pub const ANNOTATION: &str = "io.github.husk.rootfs";

/// Whether husk lacks the host's root: it cannot mount in the host's mount namespace then.
pub(crate) fn unprivileged() -> bool {
    crate::sys::geteuid() != 0
}

pub(crate) fn bad(path: &Path, why: &str) -> Error {
    Error::config(
        "annotations",
        format!("rootfs source: {}: {why}", path.display()),
    )
}

fn cfg(msg: String) -> Error {
    Error::config("annotations", msg)
}

/// A size: bytes, or a number with a binary suffix (`K`, `M`, `G`, `T`, optionally followed
/// by `i`, `iB` or `B`): `64M`, `64MiB` and `67108864` are the same.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches(['i', 'B']) {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift).filter(|&b| b > 0)
}

impl RootfsSource {
    /// The source a config asks for through its annotations, if any.
    ///
    /// ```
    /// use libcontainer::RootfsSource;
    /// let mut spec = libcontainer::default_spec(false);
    /// spec.set_annotations(Some([
    ///     ("io.github.husk.rootfs".to_string(), "overlay".to_string()),
    ///     ("io.github.husk.rootfs.layers".into(), "/img/top:/img/base".into()),
    ///     ("io.github.husk.rootfs.upper".into(), "/var/lib/c1/upper".into()),
    ///     ("io.github.husk.rootfs.work".into(), "/var/lib/c1/work".into()),
    ///     ("io.github.husk.rootfs.quota".into(), "64M".into()),
    /// ].into_iter().collect()));
    /// let Some(RootfsSource::Overlay(o)) = RootfsSource::from_annotations(&spec)? else {
    ///     panic!("an overlay")
    /// };
    /// assert_eq!(o.layers.len(), 2);
    /// assert_eq!(o.quota, Some(64 << 20));
    /// # Ok::<(), libcontainer::Error>(())
    /// ```
    pub fn from_annotations(spec: &oci_spec::runtime::Spec) -> Result<Option<RootfsSource>> {
        let a = spec.annotations().clone().unwrap_or_default();
        let Some(kind) = a.get(ANNOTATION) else {
            return Ok(None);
        };
        let known: &[&str] = match kind.as_str() {
            "overlay" => &["layers", "upper", "work", "options", "quota", "idmap"],
            "btrfs" => &["subvolume", "snapshot", "quota"],
            "zfs" => &["snapshot", "dataset", "quota"],
            other => {
                return Err(cfg(format!(
                    "annotation {ANNOTATION}: unknown rootfs source {other:?} (overlay, btrfs, zfs)"
                )))
            }
        };
        // A misspelt parameter would otherwise be ignored silently.
        let prefix = format!("{ANNOTATION}.");
        for k in a.keys().filter_map(|k| k.strip_prefix(&prefix)) {
            if !known.contains(&k) {
                return Err(cfg(format!(
                    "annotation {prefix}{k}: not a parameter of a {kind} rootfs ({})",
                    known.join(", ")
                )));
            }
        }
        let get = |k: &str| a.get(&format!("{prefix}{k}")).cloned();
        let need = |k: &str| {
            get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
                cfg(format!(
                    "annotation {prefix}{k} is needed for a {kind} rootfs"
                ))
            })
        };
        let quota = match get("quota") {
            None => None,
            Some(q) => Some(parse_size(&q).ok_or_else(|| {
                cfg(format!(
                    "annotation {prefix}quota: {q:?} is not a size (bytes, or a number with K, M, G or T)"
                ))
            })?),
        };
        let flag = |k: &str| -> Result<bool> {
            match get(k).as_deref() {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(v) => Err(cfg(format!(
                    "annotation {prefix}{k}: {v:?} is neither true nor false"
                ))),
            }
        };
        Ok(Some(match kind.as_str() {
            "overlay" => RootfsSource::Overlay(OverlaySource {
                layers: need("layers")?.split(':').map(PathBuf::from).collect(),
                upper: need("upper")?.into(),
                work: need("work")?.into(),
                options: OverlayOptions::parse(&get("options").unwrap_or_default())?,
                quota,
                idmap: flag("idmap")?,
            }),
            "btrfs" => RootfsSource::Btrfs(BtrfsSource {
                subvolume: need("subvolume")?.into(),
                snapshot: need("snapshot")?.into(),
                quota,
            }),
            _ => RootfsSource::Zfs(ZfsSource {
                snapshot: need("snapshot")?,
                dataset: need("dataset")?,
                quota,
            }),
        }))
    }

    /// Checks the source against the host before anything is made: each problem is a
    /// config error naming the path (or dataset).
    pub(crate) fn validate(&self, spec: &oci_spec::runtime::Spec) -> Result<()> {
        match self {
            RootfsSource::Overlay(o) => o.validate(spec),
            // Deleting a subvolume by id, and the zfs command, need the host's root.
            RootfsSource::Btrfs(_) | RootfsSource::Zfs(_) if unprivileged() => Err(cfg(format!(
                "rootfs source: a {} rootfs needs root (husk runs as uid {}); an unprivileged \
                 caller can use an overlay",
                self.kind(),
                crate::sys::geteuid()
            ))),
            RootfsSource::Btrfs(b) => b.validate(),
            RootfsSource::Zfs(z) => z.validate(),
        }
    }

    /// For an overlay: the topmost of its upper and layers that has /etc/passwd (the file
    /// the merged root would show).
    pub(crate) fn passwd_root(&self) -> Option<PathBuf> {
        let RootfsSource::Overlay(o) = self else {
            return None;
        };
        std::iter::once(&o.upper)
            .chain(&o.layers)
            .find(|d| std::fs::symlink_metadata(d.join("etc/passwd")).is_ok())
            .cloned()
    }

    fn kind(&self) -> &'static str {
        match self {
            RootfsSource::Overlay(_) => "overlay",
            RootfsSource::Btrfs(_) => "btrfs",
            RootfsSource::Zfs(_) => "zfs",
        }
    }

    /// What `make` will do, as undo steps: recorded before anything is made.
    pub(crate) fn plan(&self, state: &Path) -> Result<Made> {
        let mountpoint = state.join("rootfs");
        match self {
            RootfsSource::Overlay(o) => o.plan(state, &mountpoint),
            RootfsSource::Btrfs(b) => b.plan(&mountpoint),
            RootfsSource::Zfs(z) => z.plan(&mountpoint),
        }
    }

    /// Makes it; `made` is the recorded plan. On an error the caller removes `made`. Returns
    /// the mount data of an overlay the container's child must mount itself (an unprivileged
    /// caller may mount one only in the container's own user and mount namespaces).
    pub(crate) fn make(
        &self,
        made: &Made,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<CString>> {
        match self {
            RootfsSource::Overlay(o) => o.make(made, spec),
            RootfsSource::Btrfs(b) => b.make(made).map(|()| None),
            RootfsSource::Zfs(z) => z.make(made).map(|()| None),
        }
    }
}

/// One thing create makes, and how to take it away again. Each is idempotent: a step whose
/// thing does not exist (never made, or already removed) succeeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Undo {
    /// A directory tree husk created (removed with everything in it).
    Dir(PathBuf),
    /// An empty directory that is (or was) a mountpoint: only rmdir, never a walk.
    Mountpoint(PathBuf),
    /// A mount (detached).
    Unmount(PathBuf),
    /// A btrfs subvolume (snapshot) husk created, and its qgroup.
    BtrfsSubvolume(PathBuf),
    /// A project quota limit set on the filesystem holding `fs` (cleared).
    ProjectQuota {
        /// A directory on the filesystem (existing when the limit was planned).
        fs: PathBuf,
        /// The project id.
        projid: u32,
    },
    /// A ZFS dataset (clone) husk created.
    ZfsDataset(String),
}

/// What was (or is about to be) made for a container: kept in its state directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Made {
    /// Where the root filesystem is mounted or made (the container's root.path).
    pub mountpoint: PathBuf,
    /// The steps, in the order make takes them; undone in reverse.
    pub undo: Vec<Undo>,
}

/// The topmost missing ancestor of `d` (what create_dir_all makes), if any.
pub(crate) fn topmost_missing(d: &Path) -> Option<PathBuf> {
    let mut top = None;
    let mut cur = Some(d);
    while let Some(p) = cur.filter(|p| std::fs::symlink_metadata(p).is_err()) {
        top = Some(p.to_path_buf());
        cur = p.parent();
    }
    top
}

/// The nearest existing ancestor of `d` (or `d`).
pub(crate) fn existing_ancestor(d: &Path) -> PathBuf {
    let mut cur = d;
    while std::fs::symlink_metadata(cur).is_err() {
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    cur.to_path_buf()
}

pub(crate) fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| cfg(format!("rootfs source: {}: a NUL byte", p.display())))
}

fn unmount(p: &Path) {
    if let Ok(c) = CString::new(p.as_os_str().as_bytes()) {
        let _ = crate::sys::mount::umount2(&c, libc::MNT_DETACH);
    }
}

/// Whether something is mounted on `p` (or below it): never walk into such a tree.
fn mounted_under(p: &Path) -> bool {
    let shown = p.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|t| Path::new(t).starts_with(&shown))
            })
        })
        .unwrap_or(true)
}

fn gone(r: std::io::Result<()>, what: &Path) -> Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", what.display()), e))
        }
        _ => Ok(()),
    }
}

/// remove_dir_all, after opening up directories an unprivileged owner cannot walk: overlay's
/// work dir keeps a mode-000 `work/work` (root passes such modes, a user does not).
fn remove_tree(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            open_up(p);
            std::fs::remove_dir_all(p)
        }
        r => r,
    }
}

fn open_up(d: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let is_dir = std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return;
    }
    let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700));
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        open_up(&e.path());
    }
}

/// Undoes `make` (or the part of it that happened), last step first. Idempotent.
pub(crate) fn remove(made: &Made) -> Result<()> {
    for step in made.undo.iter().rev() {
        match step {
            Undo::Unmount(p) => unmount(p),
            Undo::Mountpoint(p) => gone(std::fs::remove_dir(p), p)?,
            Undo::Dir(p) => {
                if mounted_under(p) {
                    return Err(Error::io(
                        format!("removing {}: something is still mounted there", p.display()),
                        std::io::Error::from_raw_os_error(libc::EBUSY),
                    ));
                }
                gone(remove_tree(p), p)?
            }
            Undo::BtrfsSubvolume(p) => btrfs::destroy(p)?,
            Undo::ProjectQuota { fs, projid } => prjquota::clear(fs, *projid)?,
            Undo::ZfsDataset(d) => zfs::destroy(d)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("67108864"), Some(64 << 20));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("64MB"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("64X"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn annotations_are_checked() {
        let spec_with = |kv: &[(&str, &str)]| {
            let mut spec = crate::default_spec(false);
            spec.set_annotations(Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ));
            spec
        };
        let e = RootfsSource::from_annotations(&spec_with(&[
            (ANNOTATION, "btrfs"),
            ("io.github.husk.rootfs.subvolume", "/b/img"),
            ("io.github.husk.rootfs.snapshot", "/b/c1"),
            ("io.github.husk.rootfs.quotaa", "1G"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("rootfs.quotaa: not a parameter"), "{e}");
        let e = RootfsSource::from_annotations(&spec_with(&[
            (ANNOTATION, "zfs"),
            ("io.github.husk.rootfs.snapshot", "p/img@s"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("rootfs.dataset is needed"), "{e}");
        let s = RootfsSource::from_annotations(&spec_with(&[
            (ANNOTATION, "zfs"),
            ("io.github.husk.rootfs.snapshot", "p/img@s"),
            ("io.github.husk.rootfs.dataset", "p/c1"),
            ("io.github.husk.rootfs.quota", "64M"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            s,
            RootfsSource::Zfs(ZfsSource {
                snapshot: "p/img@s".into(),
                dataset: "p/c1".into(),
                quota: Some(64 << 20)
            })
        );
        let e = RootfsSource::from_annotations(&spec_with(&[(ANNOTATION, "nfs")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown rootfs source \"nfs\""), "{e}");
    }
}
