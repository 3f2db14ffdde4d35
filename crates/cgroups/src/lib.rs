//! husk's cgroup manager: places a container's processes in its cgroup on cgroup v1, v2 and
//! hybrid hosts, and removes the cgroup on delete.
//!
//! On hybrid hosts (v1 controllers plus a unified hierarchy) the container gets the same path
//! in every v1 hierarchy and in the unified one, as runc does. docs/cgroups.md has the rules.

pub mod bpf;
pub mod hierarchy;
mod manager;
mod ops;
pub mod path;
mod resources;
mod sys;

use std::path::PathBuf;

pub use manager::Manager;

/// Errors of this crate; each names the cgroup file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    Parse { path: PathBuf, what: String },
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
    /// The directory in the v1 hierarchy with the cpuset controller, if any.
    #[serde(default)]
    pub cpuset: Option<PathBuf>,
    /// The directory in the v1 hierarchy with the freezer controller, if any.
    #[serde(default)]
    pub freezer: Option<PathBuf>,
    /// The container's cgroup as /proc/PID/cgroup shows it (in the unified hierarchy, or the
    /// first v1 one).
    #[serde(default)]
    pub path: PathBuf,
}
