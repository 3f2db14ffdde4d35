//! husk's library core: create, start, signal, inspect and delete OCI containers.
//!
//! A [`Runtime`] owns a state directory (`/run/husk` by default). [`Runtime::create`] builds a
//! container from an OCI bundle and leaves its init waiting; [`Container::start`] releases it;
//! [`Runtime::run`] does create, start, wait and delete in one call. The config is the
//! bundle's config.json or a spec built in memory ([`CreateOptions::from_spec`]); the
//! container's stdio is the caller's, pipes it gets back, fds it owns or /dev/null
//! ([`Stdio`]), or a pty whose master goes where [`Console`] says; the init and exec'd
//! processes come back as [`Process`]es with a [`Pidfd`] an event loop can wait on. Errors are
//! typed [`Error`]s that name their cause; warnings and events go to the handler of each
//! [`Runtime`] ([`Runtime::with_handler`]). The library may be called from a multi-threaded
//! program, tokio's included (see docs/design.md for why that is safe).
//!
//! The guide is docs/library.md (its examples run as doctests). Complete, runnable programs
//! (as root, with busybox-static installed) are `libcontainer/examples/run.rs` and
//! `concurrent.rs` (100 containers from tokio tasks): `cargo run -p libcontainer --example
//! run`. In short:
//!
//! ```no_run
//! use libcontainer::{CreateOptions, Runtime};
//!
//! # fn main() -> libcontainer::Result<()> {
//! let runtime = Runtime::new("/run/husk");
//! let opts = CreateOptions::new("/path/to/bundle");
//! let container = runtime.create("web-1", &opts)?;
//! container.start()?;
//! println!("{:?}", container.state()?.status);
//! container.kill(libc::SIGKILL, false)?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub use cgroups;
pub use oci_spec;

mod attrs;
mod caps;
mod container;
pub mod cowfs;
mod create;
mod criu;
mod env;
mod error;
mod exec;
mod fail;
mod features;
mod gojson;
mod hooks;
mod init;
mod io;
mod lsm;
mod namespaces;
mod notice;
mod notify;
mod oom;
mod ops;
mod plan;
mod process;
mod protocol;
mod rootfs;
mod rootless;
mod sealexe;
mod seccomp;
mod signal;
mod spawn;
mod spec;
mod state;
mod sys;
mod tty;
mod view;

/// docs/library.md, the guide: its examples run as doctests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/library.md")]
pub struct LibraryGuide;

pub use caps::{CAPABILITIES, RLIMITS};
pub use container::{CgroupDriver, Container, RunOptions, RunOutcome, Runtime};
pub use cowfs::RootfsSource;
pub use create::{parse_config, parse_process, CreateOptions};
pub use criu::{CgroupsMode, CheckpointOptions, RestoreOptions, MIN_CRIU_VERSION};
pub use error::{Error, HookFailure, HookKind, Result};
pub use exec::{ExecOptions, ExecOutcome};
pub use features::features;
pub use io::{Console, Pidfd, Process, Stdio};
pub use notice::Notice;
pub use oom::OomWatch;
pub use ops::{Event, Stats};
pub use rootless::Rootless;
pub use sealexe::seal_exe;
pub use signal::parse_signal;
pub use spec::default_spec;
pub use state::{rfc3339_now, State, Status, OCI_VERSION};
pub use view::{ResourceView, ViewEntry};
