//! The library's one error type. Each variant names the cause; the CLI prints it once.
//!
//! Variants carry the facts a caller matches on (the id, the hook, the mount, the errno...)
//! and the message the CLI prints, worded as runc words it. The enum is `#[non_exhaustive]`:
//! new causes get new variants without breaking callers.

use std::path::PathBuf;

pub use crate::hooks::Kind as HookKind;

/// How a hook failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookFailure {
    /// It exited with this non-zero status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// It ran longer than its `timeout` (seconds) and was killed.
    TimedOut(i64),
    /// It could not be started; the errno, when known.
    CouldNotRun(Option<i32>),
}

/// Errors returned by every public call of the library.
///
/// ```
/// use libcontainer::{Error, Runtime};
/// let runtime = Runtime::new(std::env::temp_dir().join("husk-doc-error"));
/// match runtime.container("no-such-container") {
///     Err(Error::NotFound(id)) => assert_eq!(id, "no-such-container"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container id is not usable as a directory name or is over-long.
    #[error("invalid container id {id:?}: {why}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A container with this id is already in the state directory.
    #[error("container with id {0} already exists")]
    AlreadyExists(String),
    /// No container with this id exists.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The operation needs the container in another state.
    #[error("container {id} is {status}: {why}")]
    WrongState {
        /// The container.
        id: String,
        /// Its status when the operation was refused.
        status: crate::Status,
        /// Why that status does not allow the operation.
        why: &'static str,
    },
    /// A signal for (or an operation that needs) a running process, whose init has exited.
    #[error("container not running")]
    NotRunning,
    /// config.json is missing, unreadable or not valid JSON of the spec's shape.
    #[error("{path}: {msg}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The JSON field at fault (`process.args`), when the file parsed that far.
        field: Option<String>,
        /// What is wrong.
        msg: String,
    },
    /// An argument the library refuses (an unknown signal name, an exec without a command).
    #[error("{0}")]
    InvalidArgument(String),
    /// A config value the runtime refuses.
    #[error("invalid configuration: {msg}")]
    InvalidConfig {
        /// The spec field at fault, as a JSON path (`process.cwd`, `mounts[2]`,
        /// `linux.namespaces`).
        field: String,
        /// The whole message, naming the field.
        msg: String,
    },
    /// A feature this host or this build cannot provide.
    #[error("{msg}")]
    Unsupported {
        /// The spec field or feature (`linux.intelRdt`, `process.apparmorProfile`).
        feature: String,
        /// The whole message.
        msg: String,
    },
    /// The container's program was not found (`$PATH` lookup, or a path that does not exist).
    #[error("{msg}")]
    ExecutableNotFound {
        /// `args[0]` as configured.
        name: String,
        /// The whole message (runc's wording).
        msg: String,
    },
    /// The container's program exists but cannot be executed (not a regular file, no execute
    /// permission, a bad binary format...).
    #[error("{msg}")]
    NotExecutable {
        /// The path that was tried.
        path: String,
        /// The kernel's errno (EACCES, ENOEXEC...).
        errno: i32,
        /// The whole message.
        msg: String,
    },
    /// A hook failed or timed out.
    #[error("{msg}")]
    Hook {
        /// Which list it is in.
        kind: HookKind,
        /// Its index in that list.
        index: usize,
        /// Its `path`.
        path: PathBuf,
        /// What happened.
        failure: HookFailure,
        /// The whole message, with the hook's own output when it printed any.
        msg: String,
    },
    /// A mount of the container's root filesystem failed (a `mounts` entry, the rootfs bind).
    #[error("{msg}")]
    Mount {
        /// The mount's destination inside the container ("/" for the root itself).
        destination: PathBuf,
        /// Its index in `mounts`, for an entry of the config.
        index: Option<usize>,
        /// The kernel's errno.
        errno: i32,
        /// The whole message.
        msg: String,
    },
    /// Another step of the container's own processes failed while setting up (namespaces,
    /// devices, credentials, the terminal...): the message names the step.
    #[error("{msg}")]
    Setup {
        /// The kernel's errno, when the step was a system call.
        errno: Option<i32>,
        /// The whole message.
        msg: String,
    },
    /// A system call or file operation of the runtime itself failed; `what` says what husk
    /// was doing.
    #[error("{what}: {}", crate::fail::io_text(.source))]
    Io {
        /// What husk was doing.
        what: String,
        /// The error, with its errno.
        #[source]
        source: std::io::Error,
    },
    /// CRIU failed to checkpoint or restore: the message quotes the line of its log that
    /// says why.
    #[error("{msg}")]
    Criu {
        /// The whole message.
        msg: String,
        /// CRIU's log, kept under the work path (or the image path).
        log: Option<PathBuf>,
    },
    /// The user namespace's ID mappings could not be written: an unprivileged caller mapped
    /// more than its own ID without newuidmap/newgidmap, or they refused the mapping (outside
    /// the caller's /etc/subuid or /etc/subgid ranges).
    #[error("{msg}")]
    IdMapping {
        /// The whole message, naming the map and the tool.
        msg: String,
    },
    /// A cgroup operation failed; [`cgroups::Error`] names the file or directory.
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    /// The resource view's server could not be started or reached (see [`crate::ResourceView`]).
    #[error(transparent)]
    ResourceView(#[from] procview::Error),
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

    /// An `InvalidConfig` for `field`, whose message names it.
    pub(crate) fn config(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::InvalidConfig {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// An `Unsupported` for `feature`, whose message names it.
    pub(crate) fn unsupported(feature: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Unsupported {
            feature: feature.into(),
            msg: msg.into(),
        }
    }

    /// A `Setup` failure without an errno (a protocol violation, a missing fd).
    pub(crate) fn setup(msg: impl Into<String>) -> Error {
        Error::Setup {
            errno: None,
            msg: msg.into(),
        }
    }

    /// The kernel's errno behind this error, when there is one (a failed system call of the
    /// runtime, of the container's set-up, a mount, a cgroup file).
    ///
    /// ```
    /// let e = libcontainer::Runtime::new("/proc/version/not-a-dir").list().unwrap_err();
    /// assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            Error::NotExecutable { errno, .. } | Error::Mount { errno, .. } => Some(*errno),
            Error::Setup { errno, .. } => *errno,
            Error::Hook {
                failure: HookFailure::CouldNotRun(errno),
                ..
            } => *errno,
            Error::Cgroup(
                cgroups::Error::Io { source, .. }
                | cgroups::Error::ResourceIo { source, .. }
                | cgroups::Error::Kill { source, .. },
            ) => source.raw_os_error(),
            _ => None,
        }
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
