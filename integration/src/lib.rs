//! Shared helpers for the integration tests: they drive a runtime binary (husk, or runc as a
//! reference) with runc's command line, as root, against the real kernel.
//!
//! * [`husk_bin`]: the binary under test, from `HUSK_BIN` (default `<workspace>/target/debug/husk`).
//! * [`Bundle`]: a busybox rootfs in a temp dir plus a `runc spec`-like config.json.
//! * [`Runtime`]: runs the binary with its own `--root`, hands out unique ids, and on drop
//!   `delete --force`s every id it handed out.
//! * [`assert_nothing_remains`]: no state dir, cgroup dir, process or mount left for an id.
//!
//! Tests where runc 1.1.5 (the reference) deviates from what husk promises call
//! [`skip_for_runc`] with the reason; they are skipped only when `HUSK_BIN` names runc.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number unique in this test process.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// The runtime binary under test.
pub fn husk_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HUSK_BIN") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    target.join("debug").join("husk")
}

/// True when the binary under test is runc (the reference implementation).
pub fn is_runc() -> bool {
    husk_bin()
        .file_name()
        .map(|n| n.to_string_lossy().contains("runc"))
        .unwrap_or(false)
}

/// Returns true (and says why on stderr) when the test must be skipped because runc, the
/// reference, is known to deviate from what husk promises. Use as
/// `if skip_for_runc("why") { return; }`.
pub fn skip_for_runc(why: &str) -> bool {
    if is_runc() {
        eprintln!("SKIPPED for runc: {why}");
        true
    } else {
        false
    }
}

/// Path to the static busybox used for every rootfs.
pub fn busybox() -> PathBuf {
    std::env::var_os("BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/busybox"))
}

mod tempdir;
pub use tempdir::*;
mod bundle;
pub use bundle::*;
mod runner;
pub use runner::*;
mod leftovers;
pub use leftovers::*;
mod hostproc;
pub use hostproc::*;
mod fds;
pub use fds::*;
mod layout;
pub use layout::*;
mod engines;
pub use engines::*;
mod enginekit;
pub use enginekit::*;
mod containerd;
pub use containerd::*;
mod docker;
pub use docker::*;
pub mod conformance;
