//! The public lifecycle API: `Runtime` (a state directory) and `Container`.

use std::path::PathBuf;

use crate::state::State;
use crate::{Error, Result};

/// A state directory holding containers; the CLI's `--root`.
#[derive(Clone, Debug)]
pub struct Runtime {
    root: PathBuf,
}

/// Options of `create` and `run` beyond the bundle's config.json.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The bundle directory holding config.json.
    pub bundle: PathBuf,
    /// A unix socket to receive the pty master (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// How many fds after stdio (3, 4, ...) the container inherits, besides LISTEN_FDS.
    pub preserve_fds: u32,
    /// Move the root onto / and chroot instead of pivot_root (initramfs hosts).
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    pub no_new_keyring: bool,
}

impl CreateOptions {
    /// Options for a bundle with everything else at its default.
    pub fn new(bundle: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            bundle: bundle.into(),
            ..Default::default()
        }
    }
}

/// How `Runtime::run` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// `detach`: the container is running and was left to the caller.
    Detached,
    /// The container exited: its status, or 128+N when killed by signal N.
    Exited(i32),
}

/// One container in a `Runtime`'s state directory.
#[derive(Debug)]
pub struct Container {
    runtime: Runtime,
    id: String,
}

impl Runtime {
    /// A runtime over the state directory `root` (created on first use, mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    /// The state directory.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// Creates container `id` from a bundle; returns once its init waits for `start`.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container> {
        let _ = opts;
        Err(Error::NotFound(id.into()))
    }

    /// create + start + wait (or, with `detach`, create + start).
    pub fn run(&self, id: &str, opts: &CreateOptions, detach: bool) -> Result<RunOutcome> {
        let _ = (opts, detach);
        Err(Error::NotFound(id.into()))
    }

    /// An existing container.
    pub fn container(&self, id: &str) -> Result<Container> {
        Err(Error::NotFound(id.into()))
    }

    /// The state of every container, sorted by id.
    pub fn list(&self) -> Result<Vec<State>> {
        Ok(Vec::new())
    }
}

impl Container {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its current state (status read from the live process).
    pub fn state(&self) -> Result<State> {
        let _ = &self.runtime;
        Err(Error::NotFound(self.id.clone()))
    }

    /// Releases a created container's init to exec the process, then runs poststart hooks.
    pub fn start(&self) -> Result<()> {
        Err(Error::NotFound(self.id.clone()))
    }

    /// Sends `signal` to the init (`all`: to every process of the container).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let _ = (signal, all);
        Err(Error::NotFound(self.id.clone()))
    }

    /// Deletes a stopped container (`force`: kills it first, whatever its state).
    pub fn delete(self, force: bool) -> Result<()> {
        let _ = force;
        Err(Error::NotFound(self.id.clone()))
    }
}
