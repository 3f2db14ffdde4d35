//! `checkpoint`: a running container dumped by CRIU into an image directory, with what a
//! restore needs besides CRIU's images (husk.json: the stdio the init had and the config the
//! images belong to).

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rust_criu::rust_criu_protobuf::rpc::{
    Criu_features, Criu_page_server_info, Criu_req, Criu_req_type, Ext_mount_map,
};
use serde::{Deserialize, Serialize};

use super::{
    base_opts, config_file, empty_ns_flags, open_dir, swrk::Swrk, CheckpointOptions, Criu,
};
use crate::oci_spec::runtime::{LinuxNamespaceType, Spec};
use crate::state::{Lock, Status};
use crate::{Container, Error, Result};

/// husk's own file in the image directory.
pub(crate) const MANIFEST: &str = "husk.json";
/// runc's list of the init's stdio targets ("pipe:[123]", "/dev/null"), kept for tools that
/// read it.
const DESCRIPTORS: &str = "descriptors.json";

/// What `restore` needs to know about a checkpoint besides CRIU's images.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The container the images come from.
    pub id: String,
    /// The key under which CRIU expects each of the init's fds 0-2 back through
    /// `inherit_fd` (a pipe's "pipe:[ino]", a host file's "file[mnt:ino]"); None: CRIU
    /// restores it by itself (a file inside the container, the pty).
    pub stdio: Vec<Option<String>>,
    /// The config's parts the images depend on, compared at restore.
    pub fingerprint: Fingerprint,
}

/// The parts of a config a restore must match: CRIU's images hold the mounts, namespaces and
/// process tree these describe.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub args: Vec<String>,
    pub terminal: bool,
    pub namespaces: Vec<String>,
    pub mounts: Vec<String>,
}

impl Fingerprint {
    pub(crate) fn of(spec: &Spec) -> Fingerprint {
        let p = spec.process().as_ref();
        let mut namespaces: Vec<String> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            // CRIU restores into a time namespace of its own, which a restored container's
            // config then lists: not a difference.
            .filter(|n| n.typ() != LinuxNamespaceType::Time)
            .map(|n| crate::namespaces::name(n.typ()).to_string())
            .collect();
        namespaces.sort();
        Fingerprint {
            args: p.and_then(|p| p.args().clone()).unwrap_or_default(),
            terminal: p.and_then(|p| p.terminal()).unwrap_or(false),
            namespaces,
            // Sorted: podman rebuilds an imported container's spec with the same mounts in
            // another order.
            mounts: {
                let mut m: Vec<String> = spec
                    .mounts()
                    .iter()
                    .flatten()
                    .map(|m| m.destination().display().to_string())
                    .collect();
                m.sort();
                m
            },
        }
    }

    /// What differs, worded for an error; None when they match.
    pub(crate) fn differs(&self, other: &Fingerprint) -> Option<String> {
        if self.args != other.args {
            return Some(format!(
                "process.args {:?}, the bundle's {:?}",
                self.args, other.args
            ));
        }
        if self.terminal != other.terminal {
            return Some(format!(
                "process.terminal {}, the bundle's {}",
                self.terminal, other.terminal
            ));
        }
        if self.namespaces != other.namespaces {
            return Some(format!(
                "namespaces {:?}, the bundle's {:?}",
                self.namespaces, other.namespaces
            ));
        }
        if self.mounts != other.mounts {
            return Some(format!(
                "mounts {:?}, the bundle's {:?}",
                self.mounts, other.mounts
            ));
        }
        None
    }
}

/// The rootfs plan of a config, for its host bind mounts.
pub(crate) fn rootfs_of(
    spec: &Spec,
    bundle: &Path,
    cgroup_dirs: Vec<PathBuf>,
) -> Result<crate::rootfs::Rootfs> {
    let userns = crate::rootfs::new_ns(spec, LinuxNamespaceType::User)
        || ns_path(spec, LinuxNamespaceType::User).is_some();
    crate::rootfs::Rootfs::plan(
        spec,
        bundle,
        &crate::rootfs::RootfsOptions {
            userns,
            cgroup_dirs,
            ..Default::default()
        },
    )
}

/// The path of a namespace the config joins.
pub(crate) fn ns_path(spec: &Spec, t: LinuxNamespaceType) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == t)?
        .path()
        .clone()
}

/// CRIU's key for a namespace the container joins (runc's names, so images cross runtimes).
pub(crate) fn ext_ns_key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "extRootPidNS",
        _ => "extRootNetNS",
    }
}

/// CRIU's key for each of the init's fds 0-2 that must come back from outside: a pipe, or a
/// file of a mount the container does not have (the host's /dev/null, a log file).
fn stdio_keys(pid: i32) -> (Vec<Option<String>>, Vec<String>, Vec<String>) {
    let mounts: Vec<u64> = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    let (mut keys, mut links, mut external) = (Vec::new(), Vec::new(), Vec::new());
    for fd in 0..3 {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let key = if link.starts_with("pipe:") {
            Some(link.clone())
        } else if link.starts_with('/') {
            let info =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
            let mnt: Option<u64> = info
                .lines()
                .find_map(|l| l.strip_prefix("mnt_id:"))
                .and_then(|v| v.trim().parse().ok());
            let meta = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok();
            let is_file = meta
                .as_ref()
                .is_some_and(|m| m.is_file() || m.file_type().is_dir() || is_null(m));
            let ino = meta.as_ref().map(|m| m.ino());
            match (mnt, ino) {
                (Some(mnt), Some(ino)) if is_file && !mounts.contains(&mnt) => {
                    let key = format!("file[{mnt:x}:{ino:x}]");
                    external.push(key.clone());
                    Some(key)
                }
                _ => None,
            }
        } else {
            None
        };
        keys.push(key);
        links.push(link);
    }
    (keys, links, external)
}

/// A character device CRIU dumps as a regular file (mem devices: /dev/null, zero...), not a tty.
fn is_null(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device() && libc::major(m.rdev()) == 1
}

impl Container {
    /// Checkpoints the running container with CRIU into `opts.image_path`. Unless
    /// `leave_running` or `pre_dump`, the container is then gone (its processes ended by CRIU,
    /// its cgroups and state removed, poststop hooks run), as with runc.
    ///
    /// ```no_run
    /// # fn main() -> libcontainer::Result<()> {
    /// let runtime = libcontainer::Runtime::new("/run/husk");
    /// let mut opts = libcontainer::CheckpointOptions::new("/var/lib/ckpt/web-1");
    /// opts.leave_running = true;
    /// runtime.container("web-1")?.checkpoint(&opts)?;
    /// # Ok(()) }
    /// ```
    pub fn checkpoint(&self, opts: &CheckpointOptions) -> Result<()> {
        let (dir, rec) = self.open(Lock::Exclusive)?;
        let status = rec.status();
        // A paused one too, as runc: containerd's shim pauses a container before it
        // checkpoints it (CRIU dumps the frozen cgroup and, left running, leaves it frozen).
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(Error::WrongState {
                id: self.id().into(),
                status,
                why: "only a running or paused container can be checkpointed",
            });
        }
        if dir.path.join(procview::REGISTRATION).exists() {
            return Err(Error::unsupported(
                "checkpoint",
                "the container has a resource view: its FUSE binds over /proc and /sys cannot be dumped by CRIU yet (docs/resource-view.md)",
            ));
        }
        let criu = Criu::find(opts.criu.as_deref())?;
        let empty_ns = empty_ns_flags(&opts.empty_ns)?;
        let kind = if opts.pre_dump {
            Criu_req_type::PRE_DUMP
        } else {
            Criu_req_type::DUMP
        };
        let mut want = Criu_features::new();
        if opts.pre_dump || opts.parent_path.is_some() {
            want.set_mem_track(true);
        }
        if opts.lazy_pages {
            want.set_lazy_pages(true);
        }
        if opts.lazy_pages {
            lazy_pages_possible()?;
        }
        if want.has_mem_track() || want.has_lazy_pages() {
            let missing = criu.missing(&want)?;
            if !missing.is_empty() {
                return Err(Error::unsupported(
                    "criu",
                    format!(
                        "CRIU cannot do {} on this host: {}",
                        if opts.lazy_pages {
                            "lazy pages"
                        } else {
                            "a pre-dump"
                        },
                        missing.join(", ")
                    ),
                ));
            }
        }
        let images = open_dir(&opts.image_path, true, "image path")?;
        let work = match &opts.work_path {
            Some(w) => Some(open_dir(w, true, "work path")?),
            None => None,
        };
        let log_name = if opts.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        };
        let log = opts
            .work_path
            .as_deref()
            .unwrap_or(&opts.image_path)
            .join(log_name);
        let pid = rec.pid.unwrap_or(0);
        let mut o = base_opts(&images, work.as_ref(), log_name);
        o.set_pid(pid);
        o.set_root(rec.rootfs.display().to_string());
        o.manage_cgroups_mode = Some(protobuf::EnumOrUnknown::new(opts.manage_cgroups_mode.rpc()));
        o.set_shell_job(opts.shell_job);
        o.set_leave_running(opts.leave_running);
        o.set_tcp_established(opts.tcp_established);
        o.set_tcp_skip_in_flight(opts.tcp_skip_in_flight);
        o.set_link_remap(opts.link_remap);
        o.set_ext_unix_sk(opts.ext_unix_sk);
        o.set_file_locks(opts.file_locks);
        o.set_empty_ns(empty_ns);
        o.set_auto_dedup(opts.auto_dedup);
        o.set_lazy_pages(opts.lazy_pages);
        if let Some(f) = config_file(&rec.config) {
            o.set_config_file(f);
        }
        for t in [LinuxNamespaceType::Network, LinuxNamespaceType::Pid] {
            if let Some(p) = ns_path(&rec.config, t) {
                let m = std::fs::metadata(&p)
                    .map_err(|e| Error::io(format!("namespace {}", p.display()), e))?;
                let name = if t == LinuxNamespaceType::Pid {
                    "pid"
                } else {
                    "net"
                };
                o.external
                    .push(format!("{name}[{}]:{}", m.ino(), ext_ns_key(t)));
            }
        }
        if let Some(saved) = &rec.cgroup {
            let freezer = match saved.layout {
                cgroups::Layout::V2 => saved.unified.clone(),
                _ => saved.v1_dir("freezer").map(Path::to_path_buf),
            };
            if let Some(f) = freezer {
                o.set_freeze_cgroup(f.display().to_string());
            }
        }
        if let Some((addr, port)) = &opts.page_server {
            let mut ps = Criu_page_server_info::new();
            ps.set_address(addr.clone());
            ps.set_port(*port);
            o.ps = protobuf::MessageField::some(ps);
        }
        if let Some(parent) = &opts.parent_path {
            o.set_parent_img(parent.display().to_string());
            o.set_track_mem(true);
        }
        if opts.pre_dump {
            o.set_track_mem(true);
        }
        if !opts.pre_dump {
            let dirs = rec
                .cgroup
                .as_ref()
                .map(|c| c.dirs.clone())
                .unwrap_or_default();
            let rootfs = rootfs_of(&rec.config, &rec.bundle, dirs)?;
            for (dest, _) in rootfs.host_binds() {
                o.ext_mnt.push(ext_mount(&dest, &dest));
            }
            // A masked file is the container's /dev/null bound over it: declared so, and
            // bound from the host's /dev/null on restore (runc does the same).
            for p in rootfs.masked_paths() {
                let inside = format!("/proc/{pid}/root{}", p.display());
                if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
                    o.ext_mnt.push(ext_mount(&p, Path::new("/dev/null")));
                }
            }
            let (keys, links, external) = stdio_keys(pid);
            o.external.extend(external);
            let manifest = Manifest {
                id: self.id().into(),
                stdio: keys,
                fingerprint: Fingerprint::of(&rec.config),
            };
            write_json(&opts.image_path.join(DESCRIPTORS), &links)?;
            write_json(&opts.image_path.join(MANIFEST), &manifest)?;
        }
        let mut req = Criu_req::new();
        req.set_type(kind);
        req.opts = protobuf::MessageField::some(o);
        let mut s = Swrk::start(&criu.path, [-1; 3], &[])?;
        let status_fd = opts.status_fd.clone();
        s.request(&req, Some(&log), |n| {
            if n.script == "status-ready" {
                if let Some(fd) = &status_fd {
                    let _ = crate::sys::write_all(fd.as_raw_fd(), b"\0");
                }
            }
            Ok(())
        })?;
        s.wait();
        drop(dir);
        if !opts.leave_running && !opts.pre_dump {
            // CRIU ended the processes; the container is removed as runc destroys it.
            let c = self.runtime().container(self.id())?;
            c.delete(true)?;
        }
        Ok(())
    }
}

/// CRIU serves lazy pages through pipes it grows to 819 pages (3.3 MB); beyond
/// fs.pipe-max-size that needs CAP_SYS_RESOURCE. Without it CRIU fails only once a restore
/// asks for pages (`splice: Bad file descriptor`), leaving that restore waiting: refused here.
fn lazy_pages_possible() -> Result<()> {
    const CAP_SYS_RESOURCE: u32 = 24;
    const CRIU_PIPE_BYTES: u64 = 819 * 4096;
    let max: u64 = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    if max < CRIU_PIPE_BYTES && eff & (1 << CAP_SYS_RESOURCE) == 0 {
        return Err(Error::unsupported(
            "criu",
            format!(
                "--lazy-pages: CRIU grows its page pipes to {CRIU_PIPE_BYTES} bytes, beyond \
                 fs.pipe-max-size ({max}), which needs CAP_SYS_RESOURCE, and this process lacks it"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn ext_mount(key: &Path, val: &Path) -> Ext_mount_map {
    let mut m = Ext_mount_map::new();
    m.set_key(key.display().to_string());
    m.set_val(val.display().to_string());
    m
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let data = serde_json::to_vec(v)
        .map_err(|e| Error::setup(format!("encoding {}: {e}", path.display())))?;
    std::fs::write(path, data).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Reads the manifest of an image directory (None: images made by another runtime).
pub(crate) fn read_manifest(images: &Path) -> Result<Option<Manifest>> {
    match std::fs::read(images.join(MANIFEST)) {
        Ok(d) => serde_json::from_slice(&d).map(Some).map_err(|e| {
            Error::InvalidArgument(format!(
                "image path {}: {MANIFEST} is corrupt ({e})",
                images.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(
            format!("reading {}", images.join(MANIFEST).display()),
            e,
        )),
    }
}
