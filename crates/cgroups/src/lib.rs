//! husk's cgroup manager: places a container's processes in its cgroup on cgroup v1, v2 and
//! hybrid hosts, and removes the cgroup on delete.
//!
//! - [`hierarchy`]: which hierarchies the host has (`/proc/self/mountinfo`), and the [`Layout`];
//! - [`path`]: `linux.cgroupsPath` to one directory per hierarchy;
//! - `manager`: creating, joining, listing and destroying (the [`Manager`] methods);
//! - [`stats`]: resource usage in runc's `events --stats` shape.

pub use stats::Stats;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub mod bpf;
pub mod dbus;
mod fs;
pub mod hierarchy;
mod manager;
mod ops;
pub mod path;
pub mod resources;
pub mod stats;
mod sys;
pub mod systemd;
pub mod systemd_user;
pub mod v1;
pub mod v2;

/// Errors of this crate; each names the cgroup file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup: {0}")]
    Invalid(String),
    /// A kernel file did not have the expected format.
    #[error("cgroup: cannot parse {path}: {what}")]
    Parse { path: PathBuf, what: String },
    /// `destroy` could not SIGKILL a process of the cgroup.
    #[error("cgroup: killing pid {pid}: {source}")]
    Kill {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    /// `destroy` could not remove a directory in time: processes are still in it.
    #[error("cgroup {path}: still busy after killing its processes (pids {pids:?})")]
    Busy { path: PathBuf, pids: Vec<i32> },
    /// A call to systemd (the systemd driver) failed.
    #[error("cgroup: {what}: {source}")]
    Systemd {
        what: String,
        #[source]
        source: dbus::DbusError,
    },
    /// A `linux.resources` field cannot be applied on this host (`field` as in the spec:
    /// `memory.limit`, `network.classID`, `unified["memory.max"]`).
    #[error("cgroup: linux.resources.{field}: {what}")]
    Resource { field: String, what: String },
    /// Writing a `linux.resources` field's value to its cgroup file failed.
    #[error("cgroup: linux.resources.{field}: writing {value:?} to {path}: {source}")]
    ResourceIo {
        field: String,
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which cgroup hierarchies the host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified (v2) hierarchy at /sys/fs/cgroup.
    V2,
    /// v1 controllers plus a v2 hierarchy (usually /sys/fs/cgroup/unified).
    Hybrid,
}

/// What `Manager` needs to find a container's cgroups again in a later command; stored in the
/// container's state.json.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub layout: Layout,
    /// Absolute directory of the container's cgroup in each hierarchy it uses.
    pub dirs: Vec<PathBuf>,
    /// The v2 directory (also in `dirs`), if any.
    pub unified: Option<PathBuf>,
    /// The v1 directories (also in `dirs`) with their hierarchy's controllers, so that later
    /// commands find e.g. the freezer or memory directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub v1: Vec<V1Dir>,
    /// The systemd scope holding the cgroup, with the systemd driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

/// The container's directory in one v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct V1Dir {
    /// The hierarchy's controllers, sorted (`["cpu", "cpuacct"]`, `["name=systemd"]`).
    pub controllers: Vec<String>,
    pub dir: PathBuf,
}

impl Saved {
    /// The container's directory in the v1 hierarchy carrying `controller`, if any.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.dir.as_path())
    }
}

/// The cgroups of one container.
#[derive(Clone, Debug)]
pub struct Manager {
    saved: Saved,
    /// With the systemd driver, the limits to start the unit with (see `add`).
    resources: Option<oci_spec::runtime::LinuxResources>,
}

impl Manager {
    /// Resolves a spec's `linux.cgroupsPath` on this host: absolute paths are taken from each
    /// hierarchy's root, relative ones from the calling process's own cgroup, and `None` means
    /// `default_name` relative to the caller's cgroup. Nothing is created yet. Paths with `..`
    /// components, or naming no cgroup below the start (`/`, `.`), are refused.
    pub fn new(cgroups_path: Option<&Path>, default_name: &str) -> Result<Manager> {
        manager::resolve(cgroups_path, default_name).map(Manager::from_saved)
    }

    /// The systemd driver: `cgroups_path` is `slice:prefix:name` (`None`: `system.slice`,
    /// prefix `husk`, name `default_name`). Refused unless systemd runs on a pure v2 host.
    pub fn new_systemd(cgroups_path: Option<&str>, default_name: &str) -> Result<Manager> {
        systemd::resolve(cgroups_path, default_name).map(Manager::from_saved)
    }

    /// The systemd driver with the calling user's own systemd instance (`systemd --user`,
    /// `user@UID.service`), for rootless containers: `cgroups_path` as for
    /// [`Manager::new_systemd`], but the slice defaults to `user.slice` (podman passes
    /// `user.slice:libpod:<id>`). The manager is reached on `$DBUS_SESSION_BUS_ADDRESS`,
    /// `$XDG_RUNTIME_DIR/bus` or `$XDG_RUNTIME_DIR/systemd/private`, and asked where its cgroup
    /// is: the unit's lies below it. Refused (naming the cause) when no user instance answers
    /// or the host is not pure v2. Later commands reach the same manager (the saved unit
    /// records the uid).
    pub fn new_systemd_user(cgroups_path: Option<&str>, default_name: &str) -> Result<Manager> {
        systemd::resolve_user(cgroups_path, default_name).map(Manager::from_saved)
    }

    /// No cgroup at all (`--cgroup-manager disabled`): every method is a no-op, and
    /// `saved().dirs` is empty.
    pub fn disabled() -> Manager {
        Manager::from_saved(Saved {
            layout: Layout::V2,
            dirs: Vec::new(),
            unified: None,
            v1: Vec::new(),
            systemd: None,
        })
    }

    /// Whether `create` should be followed by `apply`: not with the systemd driver (`add`
    /// applies once the unit exists), nor without a cgroup.
    pub fn applies_on_create(&self) -> bool {
        !self.is_systemd() && !self.saved.dirs.is_empty()
    }

    /// Whether the systemd driver manages these cgroups: then `create` does nothing and `add`
    /// starts the unit (and applies what `set_start_resources` gave).
    pub fn is_systemd(&self) -> bool {
        self.saved.systemd.is_some()
    }

    /// The limits the systemd unit is started with, then written as files (systemd driver).
    pub fn set_start_resources(&mut self, r: Option<oci_spec::runtime::LinuxResources>) {
        self.resources = r;
    }

    /// A manager for cgroups created earlier, from what `saved()` returned.
    pub fn from_saved(saved: Saved) -> Manager {
        Manager {
            saved,
            resources: None,
        }
    }

    /// What to store to find these cgroups again.
    pub fn saved(&self) -> &Saved {
        &self.saved
    }

    /// Before `create`: refuses existing directories that hold processes (someone else's) or
    /// are frozen.
    pub fn check_existing(&self) -> Result<()> {
        manager::check_existing(&self.saved)
    }

    /// Creates the directories (mkdir -p) in every hierarchy (v1 cpuset levels get their
    /// parent's `cpuset.cpus`/`cpuset.mems`).
    pub fn create(&self) -> Result<()> {
        if self.is_systemd() {
            return Ok(());
        }
        manager::create(&self.saved)
    }

    /// An O_PATH|O_DIRECTORY fd of the v2 directory, for clone3's CLONE_INTO_CGROUP.
    /// `None` with the systemd driver: the unit does not exist before `add`.
    pub fn unified_fd(&self) -> Result<Option<OwnedFd>> {
        if self.is_systemd() {
            return Ok(None);
        }
        manager::unified_fd(&self.saved)
    }

    /// Moves `pid` into the container's cgroup in every hierarchy (`skip_unified`: the process
    /// was already cloned into the v2 one; `skip_v1`: it joins the v1 ones itself through
    /// [`Manager::v1_tasks`]).
    /// With the systemd driver: starts the unit with `pid` and waits for it, then writes the
    /// limits (see `set_start_resources`) to its cgroup files.
    pub fn add(&self, pid: i32, skip_unified: bool, skip_v1: bool) -> Result<()> {
        if self.is_systemd() {
            systemd::start(&self.saved, pid, self.resources.as_ref())?;
            if let Some(r) = &self.resources {
                self.apply(r)?;
            }
            return Ok(());
        }
        manager::add(&self.saved, pid, skip_unified, skip_v1)
    }

    /// The `tasks` file of every v1 hierarchy, opened for writing; empty with the systemd
    /// driver or on pure v2. A process that writes "0" to each joins its cgroups as a single
    /// thread, which the kernel does without the global threadgroup lock, and so without the
    /// RCU grace period a cgroup.procs write can wait for (8-25 ms on the bench machine). The
    /// opener's credentials are checked, so the writer may already be in a user namespace.
    pub fn v1_tasks(&self) -> Result<Vec<OwnedFd>> {
        if self.is_systemd() {
            return Ok(Vec::new());
        }
        manager::v1_tasks(&self.saved)
    }

    /// Pids of every process in the container's cgroup (and cgroups below it), sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        manager::pids(&self.saved)
    }

    /// Removes every directory, killing with SIGKILL whatever still runs in them first.
    /// Idempotent: directories already gone are fine.
    /// Sets `r` as the systemd unit's properties (systemd driver only; `update`).
    pub fn set_properties(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        systemd::set_properties(&self.saved, r)
    }

    /// With the systemd driver, the unit is stopped and reset as well.
    pub fn destroy(&self) -> Result<()> {
        if self.is_systemd() {
            manager::kill_all(&self.saved)?;
            systemd::stop(&self.saved)?;
        }
        manager::destroy(&self.saved)
    }
}

/// The `tasks` file of each v1 cgroup directory in `dirs`, opened for writing, for a process
/// that joins them by writing "0" (see [`Manager::v1_tasks`]; `exec` names its own dirs).
pub fn open_tasks<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<Vec<OwnedFd>> {
    manager::open_tasks(dirs)
}
