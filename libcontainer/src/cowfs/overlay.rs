//! The overlay source: read-only layers, a writable upper and work dir, mounted at create on
//! the state dir's `rootfs`. Optionally a quota on the upper (a btrfs subvolume with a qgroup,
//! or an ext4/XFS project quota) and layers id-mapped to the container's user namespace.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{bad, cfg, cstr, existing_ancestor, topmost_missing, Made, Undo};
use crate::sys::{self, mount as m};
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
    /// `userxattr`: overlay's own xattrs in the user.* namespace (an unprivileged mounter).
    pub userxattr: bool,
}

/// The options by their annotation names, with their mount option.
pub(crate) const OPTIONS: [(&str, &str); 5] = [
    ("volatile", "volatile"),
    ("metacopy", "metacopy=on"),
    ("index", "index=on"),
    ("redirect_dir", "redirect_dir=on"),
    ("userxattr", "userxattr"),
];

impl OverlayOptions {
    fn flags(&self) -> [bool; 5] {
        [
            self.volatile,
            self.metacopy,
            self.index,
            self.redirect_dir,
            self.userxattr,
        ]
    }

    /// The options named in a `,`-separated list (the annotation's value).
    pub(crate) fn parse(list: &str) -> Result<OverlayOptions> {
        let mut o = OverlayOptions::default();
        for name in list.split(',').filter(|o| !o.is_empty()) {
            let flag = match name {
                "volatile" => &mut o.volatile,
                "metacopy" => &mut o.metacopy,
                "index" => &mut o.index,
                "redirect_dir" => &mut o.redirect_dir,
                "userxattr" => &mut o.userxattr,
                other => {
                    return Err(cfg(format!(
                        "annotation {}.options: unknown overlay option {other:?} ({})",
                        super::ANNOTATION,
                        OPTIONS.map(|(n, _)| n).join(", ")
                    )))
                }
            };
            *flag = true;
        }
        Ok(o)
    }

    /// The mount options asked for.
    pub(crate) fn mount_options(&self) -> Vec<&'static str> {
        OPTIONS
            .iter()
            .zip(self.flags())
            .filter(|(_, on)| *on)
            .map(|((_, opt), _)| *opt)
            .collect()
    }
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
    /// A limit, in bytes, on what the container writes (its upper): the upper is made as a
    /// btrfs subvolume with a qgroup limit, or gets an ext4/XFS project quota.
    pub quota: Option<u64>,
    /// Mount each layer id-mapped to the container's user namespace mappings, so files the
    /// image owns as 0 are root's inside the container and stay owned by 0 on disk.
    pub idmap: bool,
}

/// How a quota on the upper is kept, by the filesystem under it.
enum QuotaBy {
    Btrfs,
    Project,
}

fn quota_by(upper: &Path) -> Result<QuotaBy> {
    let at = existing_ancestor(upper);
    let f =
        std::fs::File::open(&at).map_err(|e| Error::io(format!("opening {}", at.display()), e))?;
    let ty = m::fs_type(f.as_raw_fd())
        .map_err(|e| Error::errno(format!("statfs {}", at.display()), e))?;
    match ty {
        sys::btrfs::SUPER_MAGIC => Ok(QuotaBy::Btrfs),
        0xEF53 | 0x5846_5342 => Ok(QuotaBy::Project),
        other => Err(bad(
            upper,
            &format!(
                "a quota needs the upper directory on btrfs, or on ext4 or XFS with project \
                 quotas; {} is on a filesystem of type {other:#x}",
                at.display()
            ),
        )),
    }
}

/// The container's uid and gid mappings, as uid_map/gid_map text.
fn mappings(spec: &oci_spec::runtime::Spec) -> Option<(String, String)> {
    let l = spec.linux().as_ref()?;
    let (u, g) = (l.uid_mappings().clone()?, l.gid_mappings().clone()?);
    if u.is_empty() || g.is_empty() {
        return None;
    }
    Some((
        crate::rootfs::idmap::map_text(&u),
        crate::rootfs::idmap::map_text(&g),
    ))
}

/// The host uid and gid of the container's root, when it has a user namespace.
fn root_ids(spec: &oci_spec::runtime::Spec) -> Option<(u32, u32)> {
    let l = spec.linux().as_ref()?;
    let host0 = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_ref()?
            .iter()
            .find(|m| m.container_id() == 0 && m.size() > 0)
            .map(|m| m.host_id())
    };
    Some((host0(l.uid_mappings())?, host0(l.gid_mappings())?))
}

/// An empty upper (made by husk, or handed over empty) becomes the container root's: the
/// overlay's root directory is the upper's, and a root in a user namespace could not write
/// to a directory owned by an unmapped id. An upper with files in it is left as it is.
fn own_upper(upper: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let Some((uid, gid)) = root_ids(spec) else {
        return Ok(());
    };
    let empty = std::fs::read_dir(upper).is_ok_and(|mut d| d.next().is_none());
    if empty {
        std::os::unix::fs::chown(upper, Some(uid), Some(gid))
            .map_err(|e| Error::io(format!("giving {} to {uid}:{gid}", upper.display()), e))?;
    }
    Ok(())
}

impl OverlaySource {
    /// Refuses a missing layer, one that is a symlink or not a directory, a relative path, an
    /// upper or work directory inside a layer (its writes would show through), a quota where
    /// the filesystem cannot keep one, and `idmap` without user namespace mappings.
    pub(crate) fn validate(&self, spec: &oci_spec::runtime::Spec) -> Result<()> {
        if self.layers.is_empty() {
            return Err(cfg(
                "rootfs source: an overlay needs at least one layer".into()
            ));
        }
        for l in &self.layers {
            if !l.is_absolute() {
                return Err(bad(l, "a layer must be an absolute path"));
            }
            let md = std::fs::symlink_metadata(l).map_err(|e| {
                cfg(format!(
                    "rootfs source: layer {}: {}",
                    l.display(),
                    crate::fail::io_text(&e)
                ))
            })?;
            if md.file_type().is_symlink() {
                return Err(bad(l, "a layer is a symlink (refused: name the directory)"));
            }
            if !md.is_dir() {
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
        if super::unprivileged() {
            let why = if self.quota.is_some() {
                Some("a quota")
            } else if self.idmap {
                Some("idmap (id-mapped layers)")
            } else {
                None
            };
            if let Some(what) = why {
                return Err(cfg(format!(
                    "rootfs source: {what} on an overlay needs root (husk runs as uid {})",
                    sys::geteuid()
                )));
            }
            let own_mntns = spec.linux().as_ref().is_some_and(|l| {
                l.namespaces().as_ref().is_some_and(|ns| {
                    ns.iter().any(|n| {
                        n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount
                            && n.path().is_none()
                    })
                })
            });
            if !own_mntns {
                return Err(cfg(
                    "rootfs source: an unprivileged overlay is mounted in the container's own \
                     mount namespace: the config needs a new one (linux.namespaces \"mount\" \
                     without a path)"
                        .into(),
                ));
            }
        }
        if self.idmap && mappings(spec).is_none() {
            return Err(cfg(
                "rootfs source: idmap needs linux.uidMappings and linux.gidMappings (a user \
                 namespace)"
                    .into(),
            ));
        }
        if let Some(_bytes) = self.quota {
            let nonempty = std::fs::read_dir(&self.upper).is_ok_and(|mut d| d.next().is_some());
            match quota_by(&self.upper)? {
                QuotaBy::Btrfs => {
                    if std::fs::symlink_metadata(&self.upper).is_ok() {
                        return Err(bad(
                            &self.upper,
                            "with a quota on btrfs husk makes the upper as a subvolume: it must \
                             not exist yet",
                        ));
                    }
                }
                QuotaBy::Project => {
                    if nonempty {
                        return Err(bad(
                            &self.upper,
                            "with a project quota the upper must be empty (files already in it \
                             would not count)",
                        ));
                    }
                    super::prjquota::check(&existing_ancestor(&self.upper))?;
                }
            }
        }
        Ok(())
    }

    /// The mount data: `lowerdir=...,upperdir=...,workdir=...` plus the options. Paths with
    /// `,` or `:` cannot be named there and are refused.
    pub(crate) fn mount_data(&self, lowers: &[PathBuf]) -> Result<String> {
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
        let lower = lowers
            .iter()
            .map(|l| name(l))
            .collect::<Result<Vec<_>>>()?
            .join(":");
        let mut data = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            name(&self.upper)?,
            name(&self.work)?
        );
        for opt in self.options.mount_options() {
            data.push(',');
            data.push_str(opt);
        }
        Ok(data)
    }

    /// Where each id-mapped layer is mounted for a moment (the overlay keeps its own clones).
    fn idmapped(&self, state: &Path) -> Vec<PathBuf> {
        let dir = state.join("lower");
        (0..self.layers.len())
            .map(|i| dir.join(i.to_string()))
            .collect()
    }

    /// What `make` will do, as undo steps (recorded before anything is made).
    pub(crate) fn plan(&self, state: &Path, mountpoint: &Path) -> Result<Made> {
        let mut undo = Vec::new();
        for d in [&self.upper, &self.work] {
            if let Some(t) = topmost_missing(d) {
                let t = Undo::Dir(t);
                if !undo.contains(&t) {
                    undo.push(t);
                }
            }
        }
        if self.quota.is_some() {
            match quota_by(&self.upper)? {
                QuotaBy::Btrfs => undo.push(Undo::BtrfsSubvolume(self.upper.clone())),
                QuotaBy::Project => {
                    let fs = existing_ancestor(&self.upper);
                    let projid = super::prjquota::choose_projid(&fs, &self.upper)?;
                    undo.push(Undo::ProjectQuota { fs, projid });
                }
            }
        }
        if self.idmap {
            undo.push(Undo::Dir(state.join("lower")));
            for p in self.idmapped(state) {
                undo.push(Undo::Unmount(p));
            }
        }
        undo.push(Undo::Mountpoint(mountpoint.to_path_buf()));
        undo.push(Undo::Unmount(mountpoint.to_path_buf()));
        Ok(Made {
            mountpoint: mountpoint.to_path_buf(),
            undo,
        })
    }

    /// Makes the upper and work dirs (with the quota), the id-mapped layers, and mounts the
    /// overlay on the mountpoint.
    pub(crate) fn make(
        &self,
        made: &Made,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<Option<std::ffi::CString>> {
        let mkdir = |d: &Path| {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(format!("creating {}", d.display()), e))
        };
        for u in &made.undo {
            match u {
                Undo::BtrfsSubvolume(p) => {
                    mkdir(p.parent().unwrap_or(Path::new("/")))?;
                    super::btrfs::make_subvolume(p, self.quota.unwrap_or(0))?;
                }
                Undo::ProjectQuota { fs, projid } => {
                    mkdir(&self.upper)?;
                    mkdir(&self.work)?;
                    super::prjquota::set(
                        &[&self.upper, &self.work],
                        fs,
                        *projid,
                        self.quota.unwrap_or(0),
                    )?;
                }
                _ => {}
            }
        }
        mkdir(&self.upper)?;
        mkdir(&self.work)?;
        mkdir(&made.mountpoint)?;
        if super::unprivileged() {
            // The container's child mounts it, in its own namespaces.
            return std::ffi::CString::new(self.mount_data(&self.layers)?)
                .map(Some)
                .map_err(|_| cfg("rootfs source: a path has a NUL byte".into()));
        }
        own_upper(&self.upper, spec)?;
        let state = made.mountpoint.parent().unwrap_or(Path::new("/"));
        let lowers = if self.idmap {
            self.map_layers(state, spec)?
        } else {
            self.layers.clone()
        };
        let data = std::ffi::CString::new(self.mount_data(&lowers)?)
            .map_err(|_| cfg("rootfs source: a path has a NUL byte".into()))?;
        let r = m::mount(
            Some(c"overlay"),
            &cstr(&made.mountpoint)?,
            Some(c"overlay"),
            0,
            Some(&data),
        );
        if self.idmap {
            // overlay took private clones of its layers: the temporary mounts can go now.
            for p in &lowers {
                let _ = m::umount2(&cstr(p)?, libc::MNT_DETACH);
            }
        }
        r.map_err(|e| {
            let mut what = format!(
                "mounting the overlay rootfs on {} ({})",
                made.mountpoint.display(),
                data.to_string_lossy()
            );
            if e == libc::EINVAL {
                let asked = self.options.flags();
                let lacking: Vec<&str> = super::probe::overlay_options()
                    .into_iter()
                    .zip(asked)
                    .filter(|((_, ok), asked)| *asked && !ok)
                    .map(|((n, _), _)| n)
                    .collect();
                let opts = self.options.mount_options();
                if !lacking.is_empty() {
                    what = format!("{what}: this kernel's overlay lacks {}", lacking.join(", "));
                } else if opts.len() > 1 && !super::probe::overlay_takes(&opts) {
                    what = format!(
                        "{what}: this kernel's overlay refuses the options {} together",
                        opts.join(", ")
                    );
                }
            }
            Error::errno(what, e)
        })?;
        Ok(None)
    }

    /// Mounts each layer id-mapped (open_tree, mount_setattr with a user namespace holding the
    /// container's mappings, move_mount) under `state/lower`; returns their paths.
    fn map_layers(&self, state: &Path, spec: &oci_spec::runtime::Spec) -> Result<Vec<PathBuf>> {
        let (uid_map, gid_map) = mappings(spec)
            .ok_or_else(|| cfg("rootfs source: idmap needs user namespace mappings".into()))?;
        let userns = crate::rootfs::idmap::userns_with(&uid_map, &gid_map)
            .map_err(|e| Error::setup(format!("rootfs source: id-mapping the layers: {e}")))?;
        let to = self.idmapped(state);
        for (layer, dst) in self.layers.iter().zip(&to) {
            let what = format!("rootfs source: id-mapping the layer {}", layer.display());
            let tree = sys::adopt(
                m::open_tree(
                    libc::AT_FDCWD,
                    &cstr(layer)?,
                    m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC,
                )
                .map_err(|e| Error::errno(format!("{what}: open_tree"), e))?,
            );
            let attr = m::MountAttr {
                attr_set: crate::rootfs::idmap::MOUNT_ATTR_IDMAP,
                attr_clr: 0,
                propagation: 0,
                userns_fd: userns.as_raw_fd() as u64,
            };
            m::mount_setattr(tree.as_raw_fd(), c"", m::AT_EMPTY_PATH, &attr).map_err(|e| {
                Error::errno(
                    format!("{what} (mount_setattr: the layer's filesystem may not support id-mapped mounts)"),
                    e,
                )
            })?;
            std::fs::create_dir_all(dst)
                .map_err(|e| Error::io(format!("creating {}", dst.display()), e))?;
            m::move_mount(
                tree.as_raw_fd(),
                c"",
                libc::AT_FDCWD,
                &cstr(dst)?,
                m::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .map_err(|e| Error::errno(format!("{what}: move_mount"), e))?;
        }
        Ok(to)
    }
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
            quota: None,
            idmap: false,
        }
    }

    #[test]
    fn mount_data_orders_layers_and_options() {
        let mut s = src(&["/l/top", "/l/base"]);
        s.options.volatile = true;
        s.options.index = true;
        assert_eq!(
            s.mount_data(&s.layers).unwrap(),
            "lowerdir=/l/top:/l/base,upperdir=/var/lib/c1/upper,workdir=/var/lib/c1/work,volatile,index=on"
        );
        let s = src(&["/l/a,b"]);
        assert!(s.mount_data(&s.layers).is_err());
    }

    #[test]
    fn an_upper_inside_a_layer_is_refused() {
        let dir = std::env::temp_dir().join(format!("husk-cowfs-unit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("layer")).unwrap();
        let spec = crate::default_spec(false);
        let mut s = src(&[dir.join("layer").to_str().unwrap()]);
        s.upper = dir.join("layer/upper");
        let e = s.validate(&spec).unwrap_err().to_string();
        assert!(e.contains("inside the layer"), "{e}");
        s.upper = dir.join("upper");
        s.work = dir.join("work");
        s.validate(&spec).unwrap();
        std::os::unix::fs::symlink(dir.join("layer"), dir.join("link")).unwrap();
        s.layers = vec![dir.join("link")];
        let e = s.validate(&spec).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        s.layers = vec![dir.join("missing")];
        let e = s.validate(&spec).unwrap_err().to_string();
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
            quota: None,
            idmap: false,
        };
        std::fs::create_dir_all(dir.join("m")).unwrap();
        let made = s.plan(&dir.join("m"), &dir.join("m/rootfs")).unwrap();
        assert_eq!(
            made.undo,
            [
                Undo::Dir(dir.join("c")),
                Undo::Mountpoint(dir.join("m/rootfs")),
                Undo::Unmount(dir.join("m/rootfs"))
            ]
        );
        s.make(&made, &crate::default_spec(false)).unwrap();
        let m = &made.mountpoint;
        assert_eq!(std::fs::read_to_string(m.join("l1")).unwrap(), "l1");
        assert_eq!(std::fs::read_to_string(m.join("l2")).unwrap(), "l2");
        std::fs::write(m.join("new"), "w").unwrap();
        // The write lands in the upper, not in a layer.
        assert!(dir.join("c/upper/new").exists());
        assert!(!dir.join("l1/new").exists() && !dir.join("l2/new").exists());
        super::super::remove(&made).unwrap();
        super::super::remove(&made).unwrap();
        assert!(!dir.join("c").exists());
        assert!(dir.join("l1/l1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
