//! Copy-on-write root filesystems made by husk (docs/rootfs-sources.md): an overlay of
//! read-only layers with a writable upper, made at create before the mount plan (so
//! pivot_root goes over it) and removed at delete. What will be made is recorded in the state
//! directory *before* it is made, so `delete --force` after a SIGKILL at any point finds and
//! removes it.
//!
//! Not yet: btrfs snapshots and ZFS clones, quotas, idmapped layers, features probing.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Overlay options a user may ask for; each is refused when the kernel lacks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayOptions {
    /// `volatile`: no syncs of the upper (a crash loses the container's writes).
    pub volatile: bool,
    /// `metacopy=on`: metadata-only copy-up.
    pub metacopy: bool,
    /// `index=on`.
    pub index: bool,
    /// `redirect_dir=on`.
    pub redirect_dir: bool,
    /// `userxattr`: trusted.* xattrs unavailable (an unprivileged caller).
    pub userxattr: bool,
}

/// An overlay rootfs: `layers` read-only (top first), the container's writes in `upper`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlaySource {
    /// The read-only layers, the topmost first (overlay's `lowerdir` order).
    pub layers: Vec<PathBuf>,
    /// The writable layer (made if missing, and then removed at delete).
    pub upper: PathBuf,
    /// overlay's work directory, on the same filesystem as `upper` (made if missing).
    pub work: PathBuf,
    /// The overlay options asked for.
    pub options: OverlayOptions,
}

/// A root filesystem husk makes for the container (and removes at delete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RootfsSource {
    /// An overlay of read-only layers with a writable upper.
    Overlay(OverlaySource),
}

/// The annotation naming the source (`overlay`); its parameters are `ANNOTATION.layers`
/// (top first, `:`-separated), `.upper`, `.work` and `.options` (`,`-separated:
/// `volatile`, `metacopy`, `index`, `redirect_dir`, `userxattr`).
pub const ANNOTATION: &str = "io.github.husk.rootfs";

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
    /// ].into_iter().collect()));
    /// let Some(RootfsSource::Overlay(o)) = RootfsSource::from_annotations(&spec)? else {
    ///     panic!("an overlay")
    /// };
    /// assert_eq!(o.layers.len(), 2);
    /// # Ok::<(), libcontainer::Error>(())
    /// ```
    pub fn from_annotations(spec: &oci_spec::runtime::Spec) -> Result<Option<RootfsSource>> {
        let a = spec.annotations().clone().unwrap_or_default();
        let Some(kind) = a.get(ANNOTATION) else {
            return Ok(None);
        };
        let get = |k: &str| a.get(&format!("{ANNOTATION}.{k}")).cloned();
        let need = |k: &str| {
            get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
                Error::config(
                    "annotations",
                    format!("annotation {ANNOTATION}.{k} is needed for a {kind} rootfs"),
                )
            })
        };
        match kind.as_str() {
            "overlay" => {
                let mut options = OverlayOptions::default();
                for o in get("options")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|o| !o.is_empty())
                {
                    match o {
                        "volatile" => options.volatile = true,
                        "metacopy" => options.metacopy = true,
                        "index" => options.index = true,
                        "redirect_dir" => options.redirect_dir = true,
                        "userxattr" => options.userxattr = true,
                        other => {
                            return Err(Error::config(
                                "annotations",
                                format!(
                                    "annotation {ANNOTATION}.options: unknown overlay option \
                                     {other:?} (volatile, metacopy, index, redirect_dir, userxattr)"
                                ),
                            ))
                        }
                    }
                }
                Ok(Some(RootfsSource::Overlay(OverlaySource {
                    layers: need("layers")?.split(':').map(PathBuf::from).collect(),
                    upper: need("upper")?.into(),
                    work: need("work")?.into(),
                    options,
                })))
            }
            other => Err(Error::config(
                "annotations",
                format!("annotation {ANNOTATION}: unknown rootfs source {other:?} (overlay)"),
            )),
        }
    }
}

/// What was (or is about to be) made for a container: kept in its state directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Made {
    /// Where the merged tree is mounted (the container's root.path).
    pub mountpoint: PathBuf,
    /// Directories husk created (removed at delete, deepest first).
    pub created: Vec<PathBuf>,
}

fn bad(path: &Path, why: &str) -> Error {
    Error::config(
        "annotations",
        format!("rootfs source: {}: {why}", path.display()),
    )
}

impl OverlaySource {
    /// Refuses a missing layer, one that is a symlink or not a directory, a relative path, and
    /// an upper or work directory inside a layer (its writes would show through).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::config(
                "annotations",
                "rootfs source: an overlay needs at least one layer",
            ));
        }
        for l in &self.layers {
            if !l.is_absolute() {
                return Err(bad(l, "a layer must be an absolute path"));
            }
            let m = std::fs::symlink_metadata(l).map_err(|e| {
                Error::config(
                    "annotations",
                    format!(
                        "rootfs source: layer {}: {}",
                        l.display(),
                        crate::fail::io_text(&e)
                    ),
                )
            })?;
            if m.file_type().is_symlink() {
                return Err(bad(l, "a layer is a symlink (refused: name the directory)"));
            }
            if !m.is_dir() {
                return Err(bad(l, "a layer is not a directory"));
            }
        }
        for (what, d) in [("upper", &self.upper), ("work", &self.work)] {
            if !d.is_absolute() {
                return Err(bad(
                    d,
                    &format!("the {what} directory must be an absolute path"),
                ));
            }
            if let Some(l) = self.layers.iter().find(|l| d.starts_with(l)) {
                return Err(bad(
                    d,
                    &format!("the {what} directory is inside the layer {}", l.display()),
                ));
            }
        }
        Ok(())
    }

    /// The mount data: `lowerdir=...,upperdir=...,workdir=...` plus the options. Paths with
    /// `,` or `:` cannot be named there and are refused.
    pub(crate) fn mount_data(&self) -> Result<String> {
        let name = |p: &Path| -> Result<String> {
            let s = p.to_string_lossy().into_owned();
            if s.contains(',') || s.contains(':') || s.contains('\\') {
                return Err(bad(
                    p,
                    "a path with ',', ':' or '\\' cannot be an overlay layer",
                ));
            }
            Ok(s)
        };
        let lower = self
            .layers
            .iter()
            .map(|l| name(l))
            .collect::<Result<Vec<_>>>()?
            .join(":");
        let mut data = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            name(&self.upper)?,
            name(&self.work)?
        );
        let o = &self.options;
        for (on, opt) in [
            (o.volatile, "volatile"),
            (o.metacopy, "metacopy=on"),
            (o.index, "index=on"),
            (o.redirect_dir, "redirect_dir=on"),
            (o.userxattr, "userxattr"),
        ] {
            if on {
                data.push(',');
                data.push_str(opt);
            }
        }
        Ok(data)
    }

    /// What `make` will create for `mountpoint`: recorded before anything is made.
    pub(crate) fn plan(&self, mountpoint: &Path) -> Made {
        // The topmost missing ancestor of each: create_dir_all makes it, delete removes it.
        let topmost_missing = |d: &Path| {
            let mut top = None;
            let mut cur = Some(d);
            while let Some(p) = cur.filter(|p| !p.exists()) {
                top = Some(p.to_path_buf());
                cur = p.parent();
            }
            top
        };
        let mut created: Vec<PathBuf> = Vec::new();
        for d in [&self.upper, &self.work] {
            if let Some(t) = topmost_missing(d).filter(|t| !created.contains(t)) {
                created.push(t);
            }
        }
        created.push(mountpoint.to_path_buf());
        Made {
            mountpoint: mountpoint.to_path_buf(),
            created,
        }
    }

    /// Makes the directories `made` lists and mounts the overlay on its mountpoint (the
    /// source was validated by the caller).
    pub(crate) fn make(&self, made: &Made) -> Result<()> {
        for d in [&self.upper, &self.work, &made.mountpoint] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let data = CString::new(self.mount_data()?)
            .map_err(|_| Error::config("annotations", "rootfs source: a path has a NUL byte"))?;
        let target = CString::new(made.mountpoint.as_os_str().as_bytes())
            .map_err(|_| Error::config("annotations", "rootfs source: a path has a NUL byte"))?;
        crate::sys::mount::mount(Some(c"overlay"), &target, Some(c"overlay"), 0, Some(&data))
            .map_err(|e| {
                Error::errno(
                    format!(
                        "mounting the overlay rootfs on {} ({})",
                        made.mountpoint.display(),
                        data.to_string_lossy()
                    ),
                    e,
                )
            })
    }
}

/// Undoes `make` (or a part of it): detaches the mount, then removes what husk created,
/// deepest first, never walking into a tree that is still mounted. Idempotent.
pub(crate) fn remove(made: &Made) -> Result<()> {
    if let Ok(c) = CString::new(made.mountpoint.as_os_str().as_bytes()) {
        let _ = crate::sys::mount::umount2(&c, libc::MNT_DETACH);
    }
    let mut dirs = made.created.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let r = if d == made.mountpoint {
            std::fs::remove_dir(&d)
        } else {
            std::fs::remove_dir_all(&d)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", d.display()), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(layers: &[&str]) -> OverlaySource {
        OverlaySource {
            layers: layers.iter().map(PathBuf::from).collect(),
            upper: "/var/lib/c1/upper".into(),
            work: "/var/lib/c1/work".into(),
            options: OverlayOptions::default(),
        }
    }

    #[test]
    fn mount_data_orders_layers_and_options() {
        let mut s = src(&["/l/top", "/l/base"]);
        s.options.volatile = true;
        s.options.index = true;
        assert_eq!(
            s.mount_data().unwrap(),
            "lowerdir=/l/top:/l/base,upperdir=/var/lib/c1/upper,workdir=/var/lib/c1/work,volatile,index=on"
        );
        let s = src(&["/l/a,b"]);
        assert!(s.mount_data().is_err());
    }

    #[test]
    fn an_upper_inside_a_layer_is_refused() {
        let dir = std::env::temp_dir().join(format!("husk-cowfs-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("layer")).unwrap();
        let mut s = src(&[dir.join("layer").to_str().unwrap()]);
        s.upper = dir.join("layer/upper");
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("inside the layer"), "{e}");
        s.upper = dir.join("upper");
        s.work = dir.join("work");
        s.validate().unwrap();
        std::os::unix::fs::symlink(dir.join("layer"), dir.join("link")).unwrap();
        s.layers = vec![dir.join("link")];
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        s.layers = vec![dir.join("missing")];
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn make_and_remove_leave_nothing() {
        if crate::sys::geteuid() != 0 {
            return;
        }
        let dir = std::env::temp_dir().join(format!("husk-cowfs-mk-{}", std::process::id()));
        for l in ["l1", "l2"] {
            std::fs::create_dir_all(dir.join(l)).unwrap();
            std::fs::write(dir.join(l).join(l), l).unwrap();
        }
        let s = OverlaySource {
            layers: vec![dir.join("l2"), dir.join("l1")],
            upper: dir.join("c/upper"),
            work: dir.join("c/work"),
            options: OverlayOptions::default(),
        };
        std::fs::create_dir_all(dir.join("m")).unwrap();
        let made = s.plan(&dir.join("m/rootfs"));
        assert_eq!(made.created, [dir.join("c"), dir.join("m/rootfs")]);
        s.make(&made).unwrap();
        let m = &made.mountpoint;
        assert_eq!(std::fs::read_to_string(m.join("l1")).unwrap(), "l1");
        assert_eq!(std::fs::read_to_string(m.join("l2")).unwrap(), "l2");
        std::fs::write(m.join("new"), "w").unwrap();
        // The write lands in the upper, not in a layer.
        assert!(dir.join("c/upper/new").exists());
        assert!(!dir.join("l1/new").exists() && !dir.join("l2/new").exists());
        remove(&made).unwrap();
        remove(&made).unwrap();
        assert!(!dir.join("c").exists());
        assert!(dir.join("l1/l1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
