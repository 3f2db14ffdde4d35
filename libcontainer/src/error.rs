//! The library's one error type. Each variant names the cause; the CLI prints it once.

use std::path::PathBuf;

/// Errors returned by every public call of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is not usable as a directory name or is over-long.
    #[error("invalid container id {id:?}: {why}")]
    InvalidId { id: String, why: &'static str },
    /// A container with this id is already in the state directory.
    #[error("container with id {0} already exists")]
    AlreadyExists(String),
    /// No container with this id exists.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The operation needs the container in another state.
    #[error("container {id} is {status}: {why}")]
    WrongState {
        id: String,
        status: crate::Status,
        why: &'static str,
    },
    /// `kill` of a container whose init has exited.
    #[error("container not running")]
    NotRunning,
    /// config.json is missing, unreadable or not valid JSON of the spec's shape.
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// A command-line argument the library refuses (an unknown signal name, say).
    #[error("{0}")]
    InvalidArgument(String),
    /// A config value the runtime refuses (with the field named in `msg`).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A system call or file operation failed; `what` says what husk was doing.
    #[error("{what}: {}", crate::fail::io_text(.source))]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A hook failed or timed out.
    #[error("{0}")]
    Hook(String),
    /// The container's own processes failed while setting up; the message names the step.
    #[error("{0}")]
    Container(String),
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    /// A feature this host or this build cannot provide.
    #[error("{0}")]
    Unsupported(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `Io` error from the current errno-style `std::io::Error`.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// An `Io` error from a raw errno.
    pub(crate) fn errno(what: impl Into<String>, errno: i32) -> Error {
        Error::io(what, std::io::Error::from_raw_os_error(errno))
    }
}

/// Adds "what husk was doing" to an `io::Result`.
pub(crate) trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
