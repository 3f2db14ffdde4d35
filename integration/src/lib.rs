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
//! Tests that need a tool call [`missing_tool`]: a skip where it is absent, a failure under
//! `CI=true` (where scripts/setup installed it, so its absence is a broken install step).

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

/// Returns true (the caller skips, saying so on stderr) when `tool`, a command on PATH or an
/// absolute path, is absent; `package` is the Debian package that provides it. Under
/// `CI=true` an absent tool panics instead, so a missing install step cannot pass as green.
/// Use as `if missing_tool("podman", "podman") { return; }`.
pub fn missing_tool(tool: &str, package: &str) -> bool {
    skip_unless(tool_present(tool), tool, package)
}

/// [`missing_tool`] for a requirement the caller checks itself (a library, a python module):
/// `present` false is a skip, or a panic under `CI=true`.
pub fn skip_unless(present: bool, tool: &str, package: &str) -> bool {
    if present {
        return false;
    }
    match on_missing(std::env::var("CI").ok().as_deref(), tool, package) {
        Ok(skip) => {
            eprintln!("{skip}");
            true
        }
        Err(fail) => panic!("{fail}"),
    }
}

/// What an absent `tool` means given the value of `CI`: Ok(the skip message), or Err(the
/// failure message) under `CI=true`. Pure, so it is tested without touching the process's
/// environment (shared by every test thread).
pub fn on_missing(ci: Option<&str>, tool: &str, package: &str) -> Result<String, String> {
    if ci == Some("true") {
        Err(format!(
            "{tool} is missing under CI=true (install the Debian package {package}: \
             scripts/setup does)"
        ))
    } else {
        Ok(format!(
            "skipped: {tool} is missing (apt-get install {package})"
        ))
    }
}

/// True when `tool` exists: an absolute path as is, a bare name as an executable on PATH.
fn tool_present(tool: &str) -> bool {
    let exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if tool.contains('/') {
        return exec(Path::new(tool));
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| exec(&d.join(tool))))
        .unwrap_or(false)
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
mod viewserver;
pub use viewserver::*;
mod docker;
pub use docker::*;
pub mod ckpt;
pub mod conformance;
pub mod criu;
pub mod oracle;
pub mod rootless;
pub mod rootless_podman;
pub mod rootless_vm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_skips_outside_ci_and_fails_under_ci() {
        for ci in [None, Some(""), Some("false"), Some("1")] {
            let skip = on_missing(ci, "podman", "podman").unwrap();
            assert!(skip.starts_with("skipped: podman"), "{skip}");
        }
        let fail = on_missing(Some("true"), "dbus-daemon", "dbus-daemon").unwrap_err();
        assert!(
            fail.contains("dbus-daemon is missing") && fail.contains("package dbus-daemon"),
            "{fail}"
        );
    }

    #[test]
    fn tools_are_found_on_path_or_by_absolute_path() {
        assert!(tool_present("sh"));
        assert!(tool_present("/bin/sh"));
        assert!(!tool_present("husk-no-such-tool"));
        assert!(!tool_present("/nonexistent/husk-no-such-tool"));
        // Present tools never skip, whatever CI says.
        assert!(!skip_unless(true, "sh", "dash"));
    }
}
