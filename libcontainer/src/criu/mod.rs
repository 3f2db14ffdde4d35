//! Checkpoint and restore through CRIU's RPC (`criu swrk`): the options, finding CRIU and
//! checking its version, and CRIU's failures quoted from its log. The dump is in `dump.rs`,
//! the restore in `restore.rs`, the transport in `swrk.rs`.

mod dump;
mod restore;
mod swrk;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rust_criu::rust_criu_protobuf::rpc::{
    Criu_cg_mode, Criu_features, Criu_opts, Criu_req, Criu_req_type,
};

use crate::error::Context;
use crate::oci_spec::runtime::LinuxNamespaceType;
use crate::{Error, Result};

pub use restore::RestoreOptions;

/// The oldest CRIU husk drives: 3.x fails on current kernels (Debian 12's 3.17 cannot even
/// `check` on 6.x), and 4.0 is the first release with every RPC field husk sets.
pub const MIN_CRIU_VERSION: u32 = 40000;

/// How CRIU treats the container's cgroups (runc's `--manage-cgroups-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CgroupsMode {
    /// CRIU's default (soft on dump and restore).
    #[default]
    Default,
    /// Restore the cgroup tree and its properties only where they do not exist.
    Soft,
    /// Restore every property of every cgroup.
    Full,
    /// As full, and fail when a cgroup exists with other properties.
    Strict,
    /// Neither dump nor restore cgroups: the tasks stay where the caller put them.
    Ignore,
}

impl CgroupsMode {
    /// Parses runc's values: `soft`, `full`, `strict`, `ignore` (and `""` for the default).
    pub fn parse(s: &str) -> Result<CgroupsMode> {
        Ok(match s {
            "" => CgroupsMode::Default,
            "soft" => CgroupsMode::Soft,
            "full" => CgroupsMode::Full,
            "strict" => CgroupsMode::Strict,
            "ignore" => CgroupsMode::Ignore,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "invalid manage-cgroups-mode value {s:?}: use soft, full, strict or ignore"
                )))
            }
        })
    }

    fn rpc(self) -> Criu_cg_mode {
        match self {
            CgroupsMode::Default => Criu_cg_mode::DEFAULT,
            CgroupsMode::Soft => Criu_cg_mode::SOFT,
            CgroupsMode::Full => Criu_cg_mode::FULL,
            CgroupsMode::Strict => Criu_cg_mode::STRICT,
            CgroupsMode::Ignore => Criu_cg_mode::IGNORE,
        }
    }
}

/// Options of [`Container::checkpoint`](crate::Container::checkpoint), runc's `checkpoint`
/// flags.
///
/// ```
/// let mut opts = libcontainer::CheckpointOptions::new("/var/lib/ckpt/web-1");
/// opts.leave_running = true;
/// opts.tcp_established = true;
/// ```
#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    /// The CRIU binary; `None`: `criu` found on `$PATH`.
    pub criu: Option<PathBuf>,
    /// Where the images go (created 0700 if missing).
    pub image_path: PathBuf,
    /// Where CRIU writes its log and temporary files (default: the image path).
    pub work_path: Option<PathBuf>,
    /// The images of an earlier pre-dump, relative to `image_path` or absolute.
    pub parent_path: Option<PathBuf>,
    /// Keep the container running after the dump.
    pub leave_running: bool,
    /// Dump established TCP connections.
    pub tcp_established: bool,
    /// Skip connections still being set up.
    pub tcp_skip_in_flight: bool,
    /// Allow unix sockets connected to peers outside the container.
    pub ext_unix_sk: bool,
    /// The container runs in the caller's session (a terminal it did not allocate).
    pub shell_job: bool,
    /// Dump file locks.
    pub file_locks: bool,
    /// Only dump memory (an iteration of a live migration); the container keeps running.
    pub pre_dump: bool,
    /// Serve memory on demand to a lazy restore instead of writing it.
    pub lazy_pages: bool,
    /// With `lazy_pages`: a writable fd that gets a `\0` once the lazy-pages server listens.
    pub status_fd: Option<std::sync::Arc<OwnedFd>>,
    /// Send memory to a CRIU page server at this address and port.
    pub page_server: Option<(String, i32)>,
    /// How CRIU treats the cgroups.
    pub manage_cgroups_mode: CgroupsMode,
    /// Namespaces made empty on restore instead of restored (CRIU's `--empty-ns`; only the
    /// network namespace is supported, as in runc).
    pub empty_ns: Vec<LinuxNamespaceType>,
    /// Deduplicate the images against their parent as it goes.
    pub auto_dedup: bool,
    /// Remap unlinked files that are still open.
    pub link_remap: bool,
}

impl CheckpointOptions {
    /// Options writing images to `image_path`, everything else at its default.
    pub fn new(image_path: impl Into<PathBuf>) -> CheckpointOptions {
        CheckpointOptions {
            image_path: image_path.into(),
            ..Default::default()
        }
    }
}

/// The CRIU binary to run: `given`, or `criu` on `$PATH`; with its version checked.
pub(crate) struct Criu {
    pub path: PathBuf,
}

impl Criu {
    pub(crate) fn find(given: Option<&Path>) -> Result<Criu> {
        let path = match given {
            Some(p) => {
                if !p.is_file() {
                    return Err(Error::unsupported(
                        "criu",
                        format!("CRIU binary {} does not exist", p.display()),
                    ));
                }
                p.to_path_buf()
            }
            None => std::env::var_os("PATH")
                .and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join("criu"))
                        .find(|p| p.is_file())
                })
                .ok_or_else(|| {
                    Error::unsupported(
                        "criu",
                        "criu not found on $PATH: checkpoint and restore need CRIU 4.0 or newer (install it or pass --criu PATH)",
                    )
                })?,
        };
        let mut s = swrk::Swrk::start(&path, [-1; 3], &[])?;
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::VERSION);
        let resp = s.request(&req, None, |_| Ok(()))?;
        s.wait();
        let v = resp.version.as_ref().ok_or_else(|| {
            Error::unsupported(
                "criu",
                format!("{} did not report its version", path.display()),
            )
        })?;
        let version = (v.major_number() * 10000 + v.minor_number() * 100 + v.sublevel()) as u32;
        if version < MIN_CRIU_VERSION {
            return Err(Error::unsupported(
                "criu",
                format!(
                    "CRIU {}.{}.{} found at {}; husk needs CRIU 4.0 or newer",
                    v.major_number(),
                    v.minor_number(),
                    v.sublevel(),
                    path.display()
                ),
            ));
        }
        Ok(Criu { path })
    }

    /// Asks CRIU whether it has `want` (FEATURE_CHECK): the names of those it lacks.
    pub(crate) fn missing(&self, want: &Criu_features) -> Result<Vec<&'static str>> {
        let mut s = swrk::Swrk::start(&self.path, [-1; 3], &[])?;
        let mut req = Criu_req::new();
        req.set_type(Criu_req_type::FEATURE_CHECK);
        req.features = protobuf::MessageField::some(want.clone());
        let resp = s.request(&req, None, |_| Ok(()))?;
        s.wait();
        let have = resp.features.as_ref().cloned().unwrap_or_default();
        let mut out = Vec::new();
        if want.mem_track() && !have.mem_track() {
            out.push("memory tracking (soft-dirty bits)");
        }
        if want.lazy_pages() && !have.lazy_pages() {
            out.push("lazy pages (userfaultfd)");
        }
        Ok(out)
    }
}

/// The options both directions share.
fn base_opts(images: &OwnedFd, work: Option<&OwnedFd>, log: &str) -> Criu_opts {
    let mut o = Criu_opts::new();
    o.set_images_dir_fd(images.as_raw_fd());
    if let Some(w) = work {
        o.set_work_dir_fd(w.as_raw_fd());
    }
    o.set_log_level(4);
    o.set_log_file(log.into());
    o.set_notify_scripts(true);
    o.set_orphan_pts_master(true);
    o.set_manage_cgroups(true);
    o
}

/// The config file CRIU reads on top of the RPC options: the `org.criu.config` annotation
/// (empty: none), else /etc/criu/runc.conf, as runc does, so one file serves both runtimes.
fn config_file(spec: &crate::oci_spec::runtime::Spec) -> Option<String> {
    match spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.criu.config"))
    {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

/// Opens `dir` (made 0700 when `create`) for CRIU, which reopens it through /proc.
fn open_dir(dir: &Path, create: bool, what: &str) -> Result<OwnedFd> {
    if create {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("creating {what} {}", dir.display()), e)),
        }
    }
    let f = std::fs::File::open(dir).ctx(|| format!("opening {what} {}", dir.display()))?;
    if !f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Error::InvalidArgument(format!(
            "{what} {} is not a directory",
            dir.display()
        )));
    }
    Ok(f.into())
}

/// CRIU's failure: `msg`, the first line of its log that says why, and where the log is.
pub(crate) fn failure(msg: &str, log: Option<&Path>) -> Error {
    let line = log.and_then(|l| reason(&std::fs::read_to_string(l).ok()?));
    Error::Criu {
        msg: match (&line, log) {
            (Some(line), Some(l)) => format!("{msg}: {line} (log: {})", l.display()),
            (None, Some(l)) => format!("{msg} (log: {})", l.display()),
            (_, None) => msg.to_string(),
        },
        log: log.map(Path::to_path_buf),
    }
}

/// The first `Error` line of a CRIU log, without its prefix. The RLIMIT_NOFILE complaint CRIU
/// logs on every run where it cannot raise its own limit is not a reason.
fn reason(log: &str) -> Option<String> {
    log.lines()
        .filter(|l| l.contains("Error (") && !l.contains("RLIMIT_NOFILE"))
        .map(|l| match l.split_once("): ") {
            Some((_, why)) => why.trim().to_string(),
            None => l.trim().to_string(),
        })
        .next()
}

/// CRIU's namespace flags for `--empty-ns` (only the network, as runc).
fn empty_ns_flags(list: &[LinuxNamespaceType]) -> Result<u32> {
    let mut flags = 0u32;
    for ns in list {
        match ns {
            LinuxNamespaceType::Network => flags |= libc::CLONE_NEWNET as u32,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "--empty-ns {}: only the network namespace can be left empty",
                    crate::namespaces::name(*other)
                )))
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_skips_the_rlimit_line() {
        let log = "(00.000) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n\
                   (00.010) Warn  (x.c:1): something\n\
                   (00.020) Error (criu/files-reg.c:1789): Can't lookup mount=30 for fd=1 path=/tmp/log\n\
                   (00.030) Error (criu/cr-dump.c:1): Dumping FAILED.\n";
        assert_eq!(
            reason(log).as_deref(),
            Some("Can't lookup mount=30 for fd=1 path=/tmp/log")
        );
        assert_eq!(reason("(0) Error (a.c:1): rlimit: RLIMIT_NOFILE\n"), None);
    }

    #[test]
    fn cgroups_modes_parse_as_runc() {
        assert_eq!(CgroupsMode::parse("soft").unwrap(), CgroupsMode::Soft);
        assert_eq!(CgroupsMode::parse("").unwrap(), CgroupsMode::Default);
        let e = CgroupsMode::parse("hard").unwrap_err().to_string();
        assert!(
            e.contains("hard") && e.contains("soft, full, strict or ignore"),
            "{e}"
        );
    }

    #[test]
    fn only_the_network_namespace_can_be_empty() {
        assert_eq!(
            empty_ns_flags(&[LinuxNamespaceType::Network]).unwrap(),
            libc::CLONE_NEWNET as u32
        );
        let e = empty_ns_flags(&[LinuxNamespaceType::Pid])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--empty-ns pid"), "{e}");
    }
}
