//! husk's cgroup manager: places a container's processes in its cgroup on cgroup v1, v2 and
//! hybrid hosts, and removes the cgroup on delete. (Interface fixed; bodies by the cgroups work.)

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

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
}

/// The cgroups of one container.
#[derive(Clone, Debug)]
pub struct Manager {
    saved: Saved,
}

impl Manager {
    /// Resolves a spec's `linux.cgroupsPath` on this host: absolute paths are taken from each
    /// hierarchy's root, relative ones from the calling process's own cgroup, and `None` means
    /// `default_name` relative to the caller's cgroup. Nothing is created yet.
    pub fn new(cgroups_path: Option<&Path>, default_name: &str) -> Result<Manager> {
        let _ = (cgroups_path, default_name);
        Err(Error::Invalid("not implemented yet".into()))
    }

    /// A manager for cgroups created earlier, from what `saved()` returned.
    pub fn from_saved(saved: Saved) -> Manager {
        Manager { saved }
    }

    /// What to store to find these cgroups again.
    pub fn saved(&self) -> &Saved {
        &self.saved
    }

    /// Creates the directories (mkdir -p) in every hierarchy.
    pub fn create(&self) -> Result<()> {
        Err(Error::Invalid("not implemented yet".into()))
    }

    /// An O_PATH|O_DIRECTORY fd of the v2 directory, for clone3's CLONE_INTO_CGROUP.
    pub fn unified_fd(&self) -> Result<Option<OwnedFd>> {
        Ok(None)
    }

    /// Moves `pid` into the container's cgroup in every hierarchy (`skip_unified`: the process
    /// was already cloned into the v2 one).
    pub fn add(&self, pid: i32, skip_unified: bool) -> Result<()> {
        let _ = (pid, skip_unified);
        Err(Error::Invalid("not implemented yet".into()))
    }

    /// Pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }

    /// Removes every directory, killing with SIGKILL whatever still runs in them first.
    pub fn destroy(&self) -> Result<()> {
        Err(Error::Invalid("not implemented yet".into()))
    }
}
