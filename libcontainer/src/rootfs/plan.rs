//! Parent side: config.json's root, mounts, devices, masked/readonly paths and sysctls turned
//! into a plan whose every string is already a `CString`, so the child only makes system calls.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::options::{self, Attr, Param, Propagation};
use super::RootfsOptions;
use crate::oci_spec::runtime::{LinuxNamespaceType, Spec};
use crate::{Error, Result};

/// A path inside the container's root, pre-split for a walk with openat2.
#[derive(Debug)]
pub(crate) struct Target {
    /// "a", "a/b", "a/b/c": each prefix, resolved in the root.
    pub prefixes: Vec<CString>,
    /// "a", "b", "c": the component created when its prefix is missing.
    pub names: Vec<CString>,
    /// The whole relative path ("." for the root itself).
    pub rel: CString,
}

impl Target {
    /// Lexically cleans an absolute container path ("/a/../b/./c" is "b/c").
    pub(crate) fn new(path: &Path) -> Result<Target> {
        let mut parts: Vec<&OsStr> = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => parts.push(n),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        let mut prefixes = Vec::new();
        let mut names = Vec::new();
        let mut acc: Vec<u8> = Vec::new();
        for p in &parts {
            if !acc.is_empty() {
                acc.push(b'/');
            }
            acc.extend_from_slice(p.as_bytes());
            prefixes.push(cstr(&acc)?);
            names.push(cstr(p.as_bytes())?);
        }
        let rel = if acc.is_empty() {
            c".".to_owned()
        } else {
            cstr(&acc)?
        };
        Ok(Target {
            prefixes,
            names,
            rel,
        })
    }

    /// The container path, for messages.
    pub(crate) fn display(&self) -> String {
        format!("/{}", self.rel.to_string_lossy().trim_start_matches('.'))
    }
}

/// An `Error::Io` (its message reads the errno as Go does, which engines match on).
pub(crate) fn io_err(what: String, e: std::io::Error) -> Error {
    Error::io(what, e)
}

pub(crate) fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| {
        Error::config(
            "mounts",
            format!("{:?} contains a NUL byte", String::from_utf8_lossy(b)),
        )
    })
}

pub(crate) fn path_cstr(p: &Path) -> Result<CString> {
    cstr(p.as_os_str().as_bytes())
}

/// How a mount step gets its mount.
#[derive(Debug)]
pub(crate) enum Kind {
    /// open_tree of a host path; `remount`: a config bind whose options name mount flags
    /// (its `attr` is then the whole set, as runc applies it).
    Bind {
        source: CString,
        recursive: bool,
        remount: Option<options::Remount>,
    },
    /// fsopen/fsconfig/fsmount, or mount(2) as the fallback.
    Fs {
        fstype: CString,
        source: CString,
        params: Vec<Param>,
        data: CString,
        ms_flags: libc::c_ulong,
    },
    /// A symlink at the target (cgroup v1 co-mounted controllers).
    Symlink { to: CString },
    /// mount_setattr on an existing mount (a v1 cgroup tmpfs made read-only at the end).
    Setattr,
}

/// One mount operation of `mount_all`.
#[derive(Debug)]
pub(crate) struct MountStep {
    /// "mount proc onto /proc (mounts[1])", for `describe`.
    pub desc: String,
    /// The `mounts` entry this step is (part of).
    pub index: usize,
    pub target: Target,
    /// The target is created as an empty file (the bind source is not a directory).
    pub is_file: bool,
    pub kind: Kind,
    pub attr: Attr,
    pub rattr: Attr,
    pub fsmount_attr: u64,
    pub propagation: Vec<Propagation>,
    /// tmpfs with `tmpcopyup`: copy the target's contents into it.
    pub copyup: bool,
    /// A read-only tmpfs (or /dev): mounted rw, made read-only by `enter` once the mounts,
    /// devices and console beneath it are in (runc's finalizeRootfs).
    pub ro_late: bool,
    /// A bind in a user namespace whose root cannot reach the source: Some(tree made by the
    /// parent, -1 until `prepare`), used when the child's own open_tree fails.
    pub host_tree: Option<std::os::fd::RawFd>,
    /// An id-mapped bind: the tree is made by the parent (`idmap::prepare`, which needs the
    /// host's privileges) and moved into place by the child.
    pub idmap: Option<super::idmap::IdMap>,
}

/// One device node (or, in a user namespace, a bind of the host's node).
#[derive(Debug)]
pub(crate) struct DeviceStep {
    pub desc: String,
    pub target: Target,
    /// S_IF* | permission bits.
    pub mode: u32,
    pub dev: u64,
    pub uid: u32,
    pub gid: u32,
    /// The host's node of the same path, bound when mknod is not possible.
    pub host: CString,
}

#[derive(Debug)]
pub(crate) struct LinkStep {
    pub target: Target,
    pub to: CString,
    /// Remove what is there first (/dev/ptmx).
    pub replace: bool,
}

#[derive(Debug)]
pub(crate) struct Sysctl {
    pub key: String,
    /// "sys/kernel/domainname", relative to a procfs root.
    pub path: CString,
    pub value: CString,
}

/// The whole plan.
#[derive(Debug)]
pub(crate) struct Plan {
    pub root: CString,
    pub root_display: PathBuf,
    pub readonly: bool,
    /// Applied to / of the new mount namespace before anything (MS_SLAVE or MS_PRIVATE).
    pub ns_propagation: u64,
    /// linux.rootfsPropagation, applied to the root after pivot.
    pub root_propagation: Option<Propagation>,
    pub mounts: Vec<MountStep>,
    pub devices: Vec<DeviceStep>,
    pub links: Vec<LinkStep>,
    pub cwd: Option<Target>,
    pub console: Target,
    pub masked: Vec<CString>,
    pub readonly_paths: Vec<CString>,
    pub sysctls: Vec<Sysctl>,
    pub no_pivot: bool,
    /// With `no_pivot`: the host's full proc and sysfs mounts to hide before the move.
    pub exposed: Vec<CString>,
    pub userns: bool,
    /// linux.mountLabel: `context=` of the filesystems that take it, masks' tmpfs included.
    pub mount_label: Option<CString>,
    /// Steps whose new mount gets the label as an xattr instead (mqueue: its superblock is
    /// the IPC namespace's, made before any mount options could reach it).
    pub label_xattr: Vec<usize>,
    /// Bind sources to relabel (`z`: shared, `Z`: private) before the clone.
    pub relabel: Vec<(PathBuf, bool)>,
    /// No mount namespace (neither new nor joined): the root is a detached clone of the
    /// rootfs that is never attached to the host's tree, entered with chroot. The host sees
    /// none of the container's mounts, and they go away with its last process.
    pub detached: bool,
    /// The root's tree, cloned by the parent (-1 until then) when the container's root could
    /// not search the directories on the way to root.path (a user namespace, and a rootfs
    /// husk made under a 0700 state root): the child attaches it without a path lookup.
    pub root_tree: Option<std::os::fd::RawFd>,
    /// An overlay the child mounts on the root before anything (its mount data).
    pub root_overlay: Option<CString>,
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t))
}

/// Whether the config asks for a new namespace of type `t` (listed without a path).
pub(crate) fn new_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t && n.path().is_none()))
}

/// What may go beneath /proc besides procfs itself: the files lxcfs-style emulators replace
/// (runc's list).
const PROC_FILES: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// /proc only as a proc filesystem, and beneath it only those files or a source that is itself
/// procfs: anything else there could stand in for the kernel's files that the runtime and the
/// LSMs trust (CVE-2019-16884, as runc rules it since).
fn check_proc_mount(
    i: usize,
    shown: &str,
    typ: &str,
    is_bind: bool,
    source: Option<&Path>,
    bundle: &Path,
) -> Result<()> {
    if (shown != "/proc" && !shown.starts_with("/proc/")) || PROC_FILES.contains(&shown) {
        return Ok(());
    }
    if !is_bind && typ == "proc" && shown == "/proc" {
        return Ok(());
    }
    if is_bind {
        if let Some(src) = source {
            let src = bundle.join(src);
            let on_proc = std::fs::File::open(&src)
                .ok()
                .and_then(|f| crate::sys::mount::fs_type(std::os::fd::AsRawFd::as_raw_fd(&f)).ok())
                .is_some_and(|t| t == libc::PROC_SUPER_MAGIC);
            if on_proc {
                return Ok(());
            }
        }
    }
    Err(Error::config(
        format!("mounts[{i}]"),
        format!(
        "mounts[{i}] ({shown}): only a proc filesystem may be mounted on /proc, and beneath it \
         only procfs sources or {} (what lxcfs provides)",
        PROC_FILES.join(", ")
    ),
    ))
}

pub(crate) fn build(spec: &Spec, bundle: &Path, opts: &RootfsOptions) -> Result<Plan> {
    let root_cfg = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "root: missing"))?;
    let root_path = if root_cfg.path().is_absolute() {
        root_cfg.path().clone()
    } else {
        bundle.join(root_cfg.path())
    };
    let meta = std::fs::metadata(&root_path)
        .map_err(|e| io_err(format!("rootfs {}", root_path.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::config(
            "root.path",
            format!("root.path {}: not a directory", root_path.display()),
        ));
    }
    // An unprivileged caller's container root is the caller: what it cannot read, the
    // container cannot either (root passes the check whatever the mode).
    if !crate::sys::searchable(&root_path) {
        return Err(Error::config(
            "root.path",
            format!(
                "root.path {}: permission denied: the rootfs must be readable and searchable by \
                 the user running the runtime (uid {})",
                root_path.display(),
                crate::sys::geteuid()
            ),
        ));
    }
    let root_path = root_path
        .canonicalize()
        .map_err(|e| io_err(format!("rootfs {}", root_path.display()), e))?;
    // A /dev that is a symlink is refused outright (the 2026 /dev-symlink escapes): every
    // mount below is resolved inside the root anyway, but nothing legitimate needs it.
    if let Ok(to) = std::fs::read_link(root_path.join("dev")) {
        return Err(Error::config(
            "root.path",
            format!(
                "the rootfs's /dev is a symlink (to {}): refused",
                to.display()
            ),
        ));
    }
    let linux = spec.linux().as_ref();

    let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => None,
        Some(p) => Some(options::root_propagation(p).ok_or_else(|| {
            Error::config(
                "linux.rootfsPropagation",
                format!("linux.rootfsPropagation: unknown value {p:?}"),
            )
        })?),
    };
    let ns_propagation = match root_propagation {
        Some(p) if p.flag == crate::sys::mount::PROP_PRIVATE => crate::sys::mount::PROP_PRIVATE,
        _ => crate::sys::mount::PROP_SLAVE,
    };

    let mut plan = Plan {
        root: path_cstr(&root_path)?,
        root_display: root_path.clone(),
        readonly: root_cfg.readonly().unwrap_or(false),
        ns_propagation,
        root_propagation,
        mounts: Vec::new(),
        devices: Vec::new(),
        links: Vec::new(),
        cwd: None,
        console: Target::new(Path::new("/dev/console"))?,
        masked: Vec::new(),
        readonly_paths: Vec::new(),
        sysctls: Vec::new(),
        no_pivot: opts.no_pivot,
        exposed: if opts.no_pivot && new_ns(spec, LinuxNamespaceType::Mount) {
            let mi = std::fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| io_err("reading /proc/self/mountinfo".into(), e))?;
            super::nopivot::exposed(&mi, &root_path)
        } else {
            Vec::new()
        },
        userns: opts.userns,
        mount_label: crate::lsm::mount_label(spec)?,
        label_xattr: Vec::new(),
        relabel: Vec::new(),
        detached: !has_ns(spec, LinuxNamespaceType::Mount),
        root_overlay: None,
        root_tree: (opts.userns && super::hostsrc::unreachable(spec, &root_path)).then_some(-1),
    };

    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let cgroupns = has_ns(spec, LinuxNamespaceType::Cgroup);
    let netns = new_ns(spec, LinuxNamespaceType::Network);
    let mut dev_is_bind = false;
    let mut has_pts = false;
    for (i, m) in mounts.iter().enumerate() {
        // A relative destination is taken from / (runc accepts it, with a deprecation warning).
        let target = Target::new(m.destination())?;
        let shown = target.display();
        // An empty destination, "/" or one that cleans to it would cover the root itself.
        if target.names.is_empty() {
            return Err(Error::config(
                format!("mounts[{i}]"),
                format!(
                    "mounts[{i}]: destination {:?}: mountpoint is on the top of rootfs",
                    m.destination()
                ),
            ));
        }
        let opts_list = m.options().as_deref().unwrap_or(&[]);
        let parsed = options::parse(opts_list).map_err(|e| {
            Error::config(
                format!("mounts[{i}]"),
                format!("mounts[{i}] ({shown}): {e}"),
            )
        })?;
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = parsed.bind || typ == "bind";
        if parsed.copyup && (is_bind || typ != "tmpfs") {
            return Err(Error::config(
                format!("mounts[{i}]"),
                format!("mounts[{i}] ({shown}): option \"tmpcopyup\" is only for tmpfs mounts"),
            ));
        }
        check_proc_mount(i, &shown, typ, is_bind, m.source().as_deref(), bundle)?;
        if is_bind && shown == "/dev" {
            dev_is_bind = true;
        }
        if shown == "/dev/pts" {
            has_pts = true;
        }
        let mapped = m.uid_mappings().is_some() || m.gid_mappings().is_some();
        // Filesystem options on a bind (`mode=755`, `size=1k`: runtime-tools' mounts test puts
        // them there) are ignored, as the kernel ignores them, runc 1.1 and crun; runc 1.5
        // refuses the config (docs/oracle.md).
        if !is_bind && (mapped || parsed.idmap.is_some()) {
            return Err(Error::config(
                format!("mounts[{i}]"),
                format!(
                    "mounts[{i}] ({shown}): id-mapped mounts are only supported for bind mounts"
                ),
            ));
        }
        if is_bind {
            let src = m.source().as_ref().ok_or_else(|| {
                Error::config(
                    format!("mounts[{i}]"),
                    format!("mounts[{i}] ({shown}): bind mount without a source"),
                )
            })?;
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.join(src)
            };
            let (z, big_z) = (
                opts_list.iter().any(|o| o == "z"),
                opts_list.iter().any(|o| o == "Z"),
            );
            if z && big_z {
                return Err(Error::config(
                    format!("mounts[{i}]"),
                    format!("mounts[{i}] ({shown}): options \"z\" and \"Z\" exclude each other"),
                ));
            }
            // Without a mount label there is nothing to relabel to (go-selinux's Relabel).
            if (z || big_z) && plan.mount_label.is_some() {
                plan.relabel.push((src.clone(), z));
            }
            // Whether the source is a file is seen by the child: earlier mounts may make it.
            let (attr, remount) = match options::bind_attr(opts_list) {
                Some((a, r)) => (a, Some(r)),
                None => (Attr::default(), None),
            };
            plan.mounts.push(MountStep {
                index: i,
                desc: format!("bind {} onto {shown} (mounts[{i}])", src.display()),
                target,
                is_file: false,
                kind: Kind::Bind {
                    source: path_cstr(&src)?,
                    recursive: parsed.rbind,
                    remount,
                },
                attr,
                rattr: parsed.rattr,
                fsmount_attr: 0,
                propagation: parsed.propagation,
                copyup: false,
                ro_late: false,
                host_tree: (opts.userns && super::hostsrc::unreachable(spec, &src)).then_some(-1),
                // Mappings on the mount id-map it even without the `idmap` option.
                idmap: match parsed.idmap.or(mapped.then_some(false)) {
                    Some(recursive) => Some(super::idmap::IdMap::for_mount(
                        i, &shown, m, spec, recursive,
                    )?),
                    None => None,
                },
            });
            continue;
        }
        if typ.is_empty() {
            return Err(Error::config(
                format!("mounts[{i}]"),
                format!("mounts[{i}] ({shown}): no type and no bind option"),
            ));
        }
        if typ == "cgroup" || typ == "cgroup2" {
            super::cgroup::plan(&mut plan, i, target, &parsed, cgroupns, opts)?;
            continue;
        }
        if typ == "sysfs" && opts.userns && !netns {
            // A user namespace may not mount sysfs for a network namespace it does not own.
            plan.mounts.push(MountStep {
                index: i,
                desc: format!(
                    "bind /sys onto {shown} (mounts[{i}], sysfs without a net namespace)"
                ),
                target,
                is_file: false,
                kind: Kind::Bind {
                    source: c"/sys".to_owned(),
                    recursive: true,
                    remount: None,
                },
                attr: parsed.attr,
                rattr: parsed.rattr,
                fsmount_attr: 0,
                propagation: parsed.propagation,
                copyup: false,
                ro_late: false,
                host_tree: None,
                idmap: None,
            });
            continue;
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| path_cstr(s))
            .transpose()?
            .unwrap_or(cstr(typ.as_bytes())?);
        let mut parsed = parsed;
        // Not in a detached tree, where only the tree's root takes attribute changes.
        let ro_late = !plan.detached
            && (typ == "tmpfs" || shown == "/dev")
            && parsed.attr.set & crate::sys::mount::MOUNT_ATTR_RDONLY != 0;
        if ro_late {
            parsed.attr.set &= !crate::sys::mount::MOUNT_ATTR_RDONLY;
        }
        let fsmount_attr = parsed.fsmount_attr();
        let ms_flags = parsed.legacy_flags();
        let mut params = parsed.params;
        let data = match &plan.mount_label {
            Some(l) if crate::lsm::takes_context(typ) => {
                params.push(Param {
                    key: c"context".to_owned(),
                    value: Some(l.clone()),
                });
                cstr(crate::lsm::context_data(&parsed.data, l).as_bytes())?
            }
            Some(_) if typ == "mqueue" => {
                plan.label_xattr.push(plan.mounts.len());
                cstr(parsed.data.as_bytes())?
            }
            _ => cstr(parsed.data.as_bytes())?,
        };
        if parsed.attr.set & crate::sys::mount::MOUNT_ATTR_RDONLY != 0 {
            // As mount(2) with MS_RDONLY does: a new superblock is read-only too.
            params.insert(
                0,
                Param {
                    key: c"ro".to_owned(),
                    value: None,
                },
            );
        }
        plan.mounts.push(MountStep {
            index: i,
            desc: format!("mount {typ} onto {shown} (mounts[{i}])"),
            target,
            is_file: false,
            kind: Kind::Fs {
                fstype: cstr(typ.as_bytes())?,
                source,
                data,
                params,
                ms_flags,
            },
            attr: parsed.attr,
            rattr: parsed.rattr,
            fsmount_attr,
            propagation: parsed.propagation,
            copyup: parsed.copyup,
            ro_late,
            host_tree: None,
            idmap: None,
        });
    }

    if !dev_is_bind {
        super::devices::plan(&mut plan, spec, has_pts)?;
    }

    let cwd = opts
        .cwd
        .as_deref()
        .or(spec.process().as_ref().map(|p| p.cwd().as_path()));
    if let Some(cwd) = cwd {
        if !cwd.is_absolute() {
            return Err(Error::config(
                "process.cwd",
                format!("process.cwd {cwd:?} must be absolute"),
            ));
        }
        let t = Target::new(cwd)?;
        if !t.prefixes.is_empty() {
            plan.cwd = Some(t);
        }
    }

    if let Some(l) = linux {
        for p in l.masked_paths().as_deref().unwrap_or(&[]) {
            plan.masked.push(abs_cstr(p)?);
        }
        for p in l.readonly_paths().as_deref().unwrap_or(&[]) {
            plan.readonly_paths.push(abs_cstr(p)?);
        }
        if let Some(s) = l.sysctl() {
            let ns = super::sysctl::Namespaces {
                net: has_ns(spec, LinuxNamespaceType::Network),
                ipc: has_ns(spec, LinuxNamespaceType::Ipc),
                uts: has_ns(spec, LinuxNamespaceType::Uts),
            };
            super::sysctl::plan(&mut plan, s, ns)?;
        }
    }
    // The kernel changes attributes of a detached tree's root only, not of a mount inside it
    // (the v1 cgroup tmpfs is made read-only once its binds are in).
    if plan.detached {
        if let Some(s) = plan.mounts.iter().find(|s| matches!(s.kind, Kind::Setattr)) {
            return Err(Error::config(
                "linux.namespaces",
                format!(
                    "{}: a read-only cgroup v1 tree needs a mount namespace (add one to \
                 linux.namespaces, or make the cgroup mount rw)",
                    s.desc
                ),
            ));
        }
    }
    Ok(plan)
}

/// A masked or read-only path, lexically cleaned: runc opens a relative one from / (the cwd
/// after pivot).
fn abs_cstr(p: &str) -> Result<CString> {
    cstr(Target::new(Path::new(p))?.display().as_bytes())
}
