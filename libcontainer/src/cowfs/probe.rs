//! What this host supports, probed rather than assumed: overlay and each of its options by a
//! test mount on a private tmpfs, id-mapped layers by id-mapping a tree there, btrfs from
//! /proc/filesystems, ZFS from /dev/zfs and the `zfs` command (where create looks for it), project quotas from
//! quotactl_fd(2). `husk features` reports it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::cstr;
use super::overlay::OPTIONS;
use crate::sys::{self, mount as m};

/// The rootfs sources and options this host supports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Support {
    /// Sources that work here: `overlay`, `btrfs`, `zfs`.
    pub sources: Vec<&'static str>,
    /// The overlay options (annotation names) the kernel accepts.
    pub overlay_options: Vec<&'static str>,
    /// Whether overlay layers can be id-mapped.
    pub idmapped_layers: bool,
    /// Quota mechanisms the kernel has: `btrfs` (qgroups), `zfs`, `ext4-project`,
    /// `xfs-project` (whether a given filesystem has project quotas on is checked at create).
    pub quotas: Vec<&'static str>,
}

/// A private tmpfs in a fresh temporary directory, unmounted and removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Option<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!("husk-probe-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&p).ok()?;
        let s = Scratch(p);
        m::mount(
            Some(c"tmpfs"),
            &cstr(&s.0).ok()?,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=700,size=1m"),
        )
        .ok()?;
        Some(s)
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        let _ = std::fs::create_dir(&d);
        d
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(c) = cstr(&self.0) {
            let _ = m::umount2(&c, libc::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Whether the kernel mounts an overlay with all of `opts` together (mount options).
pub(crate) fn overlay_takes(opts: &[&str]) -> bool {
    Scratch::new().is_some_and(|s| try_overlay(&s, 0, Some(&opts.join(","))))
}

fn try_overlay(s: &Scratch, n: usize, opt: Option<&str>) -> bool {
    let (l, u, w, t) = (
        s.dir("l"),
        s.dir(&format!("u{n}")),
        s.dir(&format!("w{n}")),
        s.dir(&format!("m{n}")),
    );
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={}",
        l.display(),
        u.display(),
        w.display()
    );
    if let Some(o) = opt {
        data = format!("{data},{o}");
    }
    let (Ok(data), Ok(target)) = (std::ffi::CString::new(data), cstr(&t)) else {
        return false;
    };
    let ok = m::mount(Some(c"overlay"), &target, Some(c"overlay"), 0, Some(&data)).is_ok();
    if ok {
        let _ = m::umount2(&target, libc::MNT_DETACH);
    }
    ok
}

fn try_idmap(s: &Scratch) -> bool {
    let Ok(userns) = crate::rootfs::idmap::userns_with("0 100000 1\n", "0 100000 1\n") else {
        return false;
    };
    let Ok(l) = cstr(&s.dir("l")) else {
        return false;
    };
    let Ok(tree) = m::open_tree(
        libc::AT_FDCWD,
        &l,
        m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC,
    ) else {
        return false;
    };
    let tree = sys::adopt(tree);
    let attr = m::MountAttr {
        attr_set: crate::rootfs::idmap::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    m::mount_setattr(tree.as_raw_fd(), c"", m::AT_EMPTY_PATH, &attr).is_ok()
}

/// Each overlay option (annotation name) and whether the kernel takes it; all false when
/// overlay cannot be probed (not root, or no overlay).
pub(crate) fn overlay_options() -> Vec<(&'static str, bool)> {
    let s = Scratch::new();
    OPTIONS
        .iter()
        .enumerate()
        .map(|(i, (name, opt))| {
            (
                *name,
                s.as_ref().is_some_and(|s| try_overlay(s, i + 1, Some(opt))),
            )
        })
        .collect()
}

fn filesystem(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|f| f.lines().any(|l| l.split_whitespace().last() == Some(name)))
}

/// Whether a kernel module is loaded, built in, or installed for the running kernel.
fn kernel_module(name: &str) -> bool {
    if Path::new("/sys/module").join(name).exists() {
        return true;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let dir = Path::new("/lib/modules").join(release.trim());
    let ko = format!("/{name}.ko");
    ["modules.builtin", "modules.dep"].iter().any(|f| {
        std::fs::read_to_string(dir.join(f)).is_ok_and(|t| {
            t.lines()
                .any(|l| l.split(':').next().is_some_and(|m| m.contains(&ko)))
        })
    })
}

/// Probes the host (needs root for overlay and id-mapping: otherwise they are reported
/// missing). Takes a few milliseconds: a tmpfs and a handful of overlay mounts.
///
/// ```
/// let s = libcontainer::cowfs::probe();
/// // btrfs is listed exactly when this kernel knows the filesystem.
/// let fs = std::fs::read_to_string("/proc/filesystems")?;
/// assert_eq!(s.sources.contains(&"btrfs"), fs.contains("\tbtrfs"));
/// println!("sources {:?}, quotas {:?}", s.sources, s.quotas);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn probe() -> Support {
    let mut sup = Support::default();
    if let Some(s) = Scratch::new() {
        if try_overlay(&s, 0, None) {
            sup.sources.push("overlay");
            for (i, (name, opt)) in OPTIONS.iter().enumerate() {
                if try_overlay(&s, i + 1, Some(opt)) {
                    sup.overlay_options.push(name);
                }
            }
            sup.idmapped_layers = try_idmap(&s);
        }
    }
    if filesystem("btrfs") {
        sup.sources.push("btrfs");
        sup.quotas.push("btrfs");
    }
    if Path::new("/dev/zfs").exists() && super::zfs::zfs_bin().is_some() {
        sup.sources.push("zfs");
        sup.quotas.push("zfs");
    }
    // The kernel's side only: a filesystem must also be mounted with prjquota (create
    // checks the upper's).
    if kernel_module("quota_v2") {
        sup.quotas.push("ext4-project");
    }
    if Path::new("/proc/fs/xfs/xqmstat").exists() {
        sup.quotas.push("xfs-project");
    }
    sup
}
