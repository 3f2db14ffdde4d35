//! Helpers for the root-only, real-kernel cgroup tests.
#![allow(dead_code)]

pub mod sys;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cgroups::Manager;

/// A name no other test (or test run) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "husk-test-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Destroys the manager's cgroups when dropped, so a failing test leaves nothing behind.
pub struct Cleanup<'a>(pub &'a Manager, pub Vec<PathBuf>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.destroy();
        for d in &self.1 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// (hierarchy id, controllers, path) of each line of a /proc/<pid>/cgroup.
pub fn proc_cgroup(pid: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, ':');
            (
                f.next().unwrap().to_owned(),
                f.next().unwrap().to_owned(),
                f.next().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Asserts `pid` is listed in every directory's cgroup.procs, and that /proc/<pid>/cgroup shows,
/// for each hierarchy the test process is in (incl. the unified `0::` line), the path
/// `expected(own path of the test process)`.
pub fn assert_member(m: &Manager, pid: i32, expected: impl Fn(&str) -> String) {
    for d in &m.saved().dirs {
        assert!(procs(d).contains(&pid), "{pid} not in {}", d.display());
    }
    let mine = proc_cgroup("self");
    let theirs = proc_cgroup(&pid.to_string());
    assert_eq!(mine.len(), theirs.len());
    assert_eq!(m.saved().dirs.len(), mine.len(), "one dir per hierarchy");
    for (id, ctl, own) in &mine {
        let (_, _, got) = theirs
            .iter()
            .find(|(i, c, _)| i == id && c == ctl)
            .unwrap_or_else(|| panic!("no line {id}:{ctl} for {pid}"));
        assert_eq!(*got, expected(own), "hierarchy {id}:{ctl}");
    }
}

/// `own/name`, as a cgroup path.
pub fn below(own: &str, name: &str) -> String {
    if own == "/" {
        format!("/{name}")
    } else {
        format!("{own}/{name}")
    }
}
