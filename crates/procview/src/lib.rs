//! husk's resource view: one FUSE server per state root that gives each container a
//! `/proc/meminfo`, `/proc/cpuinfo`, `/proc/stat`, `/proc/uptime`, `/proc/loadavg`,
//! `/proc/diskstats`, `/proc/swaps` and `/sys/devices/system/cpu` computed from the container's
//! own cgroup at the time of the read.
//!
//! The pieces, and who uses them:
//! - [`Layout`]: where a state root keeps the server's files (`<root>/.procview/`), and where
//!   the FUSE filesystem serves one container's files (`<root>/.procview/mnt/<id>/<entry>`);
//! - [`Registration`]: what husk writes to `<root>/<id>/procview.json` at create so the server
//!   knows a container's cgroups (the file goes with the state dir at delete);
//! - [`Entry`]: the files of the view and where each is mounted in the container;
//! - [`ensure_server`]: starts the server for a state root unless it runs (libcontainer calls it
//!   during create);
//! - the `husk-procview` binary: the server itself (keeper and worker processes), also the
//!   seccomp agent answering `sysinfo(2)` for the containers ([`agent`]).

use std::path::{Path, PathBuf};

pub mod view;

/// Errors of this crate; each names the file or process involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("resource view: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("resource view: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The state root's directory for the server. Container ids never start with `.`, so it
/// cannot collide with a container's state dir, and `husk list` skips it.
pub const DIR: &str = ".procview";

/// The file in a container's state dir that registers it with the server.
pub const REGISTRATION: &str = "procview.json";

/// The name of the server binary (looked up next to the husk binary, then on `$PATH`).
pub const BINARY: &str = "husk-procview";

/// The FUSE filesystem type as it shows in mountinfo (`fuse.husk-procview`).
pub const FSNAME: &str = "husk-procview";

/// Paths of one state root's server.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The container state root (`--root`).
    pub root: PathBuf,
    /// `<root>/.procview`.
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(state_root: &Path) -> Layout {
        Layout {
            root: state_root.to_path_buf(),
            dir: state_root.join(DIR),
        }
    }
    /// Where the FUSE filesystem is mounted.
    pub fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }
    /// Held (flock) while a server is started or stops, and by creators while they register.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
    pub fn keeper_pid(&self) -> PathBuf {
        self.dir.join("keeper.pid")
    }
    pub fn worker_pid(&self) -> PathBuf {
        self.dir.join("worker.pid")
    }
    /// The seccomp agent's socket (`linux.seccomp.listenerPath` of containers with the view):
    /// see [`agent`].
    pub fn notify_socket(&self) -> PathBuf {
        self.dir.join("notify.sock")
    }
    /// The server's log (its stderr).
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }
    /// A container's directory in the FUSE filesystem.
    pub fn container(&self, id: &str) -> PathBuf {
        self.mnt().join(id)
    }
    /// A container's registration.
    pub fn registration(&self, id: &str) -> PathBuf {
        self.root.join(id).join(REGISTRATION)
    }
}

/// What the server needs to know of a container, written by husk before the container's
/// first process exists.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// The container's cgroups (as in its state.json).
    pub cgroup: cgroups::Saved,
    /// CLOCK_BOOTTIME at create, in nanoseconds: `/proc/uptime` counts from here.
    pub created_boottime_ns: u64,
}

/// One file (or, for `SysCpu`, directory) of the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    Meminfo,
    Cpuinfo,
    Stat,
    Uptime,
    Loadavg,
    Diskstats,
    Swaps,
    /// `/sys/devices/system/cpu`: `online` computed, `cpuN` only for the visible CPUs, the
    /// rest passed through from the host.
    SysCpu,
}

impl Entry {
    pub const ALL: [Entry; 8] = [
        Entry::Meminfo,
        Entry::Cpuinfo,
        Entry::Stat,
        Entry::Uptime,
        Entry::Loadavg,
        Entry::Diskstats,
        Entry::Swaps,
        Entry::SysCpu,
    ];

    /// The name in the FUSE filesystem (`mnt/<id>/<name>`) and in the annotation's list.
    pub fn name(self) -> &'static str {
        match self {
            Entry::Meminfo => "meminfo",
            Entry::Cpuinfo => "cpuinfo",
            Entry::Stat => "stat",
            Entry::Uptime => "uptime",
            Entry::Loadavg => "loadavg",
            Entry::Diskstats => "diskstats",
            Entry::Swaps => "swaps",
            Entry::SysCpu => "cpu",
        }
    }

    /// Where it is mounted in the container.
    pub fn target(self) -> &'static str {
        match self {
            Entry::Meminfo => "/proc/meminfo",
            Entry::Cpuinfo => "/proc/cpuinfo",
            Entry::Stat => "/proc/stat",
            Entry::Uptime => "/proc/uptime",
            Entry::Loadavg => "/proc/loadavg",
            Entry::Diskstats => "/proc/diskstats",
            Entry::Swaps => "/proc/swaps",
            Entry::SysCpu => "/sys/devices/system/cpu",
        }
    }

    pub fn from_name(name: &str) -> Option<Entry> {
        Entry::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn is_dir(self) -> bool {
        self == Entry::SysCpu
    }
}

pub mod agent;
pub mod fs;
pub mod fuse;
pub mod keeper;
pub mod nodes;
pub mod server;
pub mod spawn;
mod sys;

pub use spawn::{ServerGuard, Status};

/// Ensures the resource view server of `layout`'s state root runs, starting it (detached, as
/// `husk-procview serve`) if it does not, and returns holding the state root's lock shared:
/// keep the guard until the container's registration is written, so the server cannot take
/// its idle exit in between.
///
/// `binary` is the server binary; without it, `husk-procview` next to the running executable,
/// else on `$PATH`.
///
/// ```no_run
/// use procview::{ensure_server, Layout};
/// let layout = Layout::new(std::path::Path::new("/run/husk"));
/// let guard = ensure_server(&layout, None)?;
/// // write <root>/<id>/procview.json here, then:
/// drop(guard);
/// # Ok::<(), procview::Error>(())
/// ```
pub fn ensure_server(layout: &Layout, binary: Option<&Path>) -> Result<ServerGuard> {
    spawn::ensure_server(layout, binary)
}

/// Replaces the server's worker with one started from the binary now on disk (SIGHUP to the
/// keeper) and waits until the new worker is ready. Containers keep their mounts.
///
/// ```no_run
/// procview::restart(&procview::Layout::new(std::path::Path::new("/run/husk")))?;
/// # Ok::<(), procview::Error>(())
/// ```
pub fn restart(layout: &Layout) -> Result<()> {
    spawn::restart(layout)
}

/// Asks the server to exit if no container of the state root is registered any more (husk
/// delete calls it after removing the container's state dir). Does not wait.
///
/// ```no_run
/// procview::stop_if_idle(&procview::Layout::new(std::path::Path::new("/run/husk")))?;
/// # Ok::<(), procview::Error>(())
/// ```
pub fn stop_if_idle(layout: &Layout) -> Result<()> {
    spawn::stop_if_idle(layout)
}

/// The keeper and worker pids, whether the mount answers, and the registered containers.
///
/// ```
/// let s = procview::status(&procview::Layout::new(std::path::Path::new("/nonexistent")));
/// assert!(s.keeper.is_none() && s.containers.is_empty());
/// ```
pub fn status(layout: &Layout) -> Status {
    spawn::status(layout)
}
