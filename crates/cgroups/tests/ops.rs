//! Freezing and statistics against the real kernel; must run as root. Every test uses its own
//! cgroup names and removes what it creates.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use cgroups::{Layout, Manager, Saved};
use common::*;

/// A shell spinning in a busy loop (after `delay` seconds, so that it is moved into the cgroup
/// before it allocates and runs: memory and cpu are charged to the new cgroup).
fn spinner(delay: &str) -> Child {
    Command::new("sh")
        .args([
            "-c",
            &format!("sleep {delay}; exec sh -c 'while :; do :; done'"),
        ])
        .spawn()
        .unwrap()
}

/// utime + stime (clock ticks) of `pid`, from /proc/PID/stat.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3; utime and stime are fields 14 and 15.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Total cpu ticks of every process in the cgroup.
fn group_ticks(m: &Manager) -> u64 {
    m.pids().unwrap().into_iter().map(cpu_ticks).sum()
}

fn advances(m: &Manager) -> bool {
    let before = group_ticks(m);
    std::thread::sleep(Duration::from_millis(300));
    group_ticks(m) > before
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

fn kill_wait(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn v1_freezer_stops_and_restarts_a_busy_loop() {
    let name = unique("freeze1");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    assert_eq!(m.saved().layout, Layout::Hybrid, "this host is hybrid");
    m.create().unwrap();
    let child = spinner("0");
    let pid = child.id() as i32;
    m.add(pid, false, false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(advances(&m), "the spinner does not run");
    assert!(!m.is_frozen());

    let state = m.saved().v1_dir("freezer").unwrap().join("freezer.state");
    m.freeze(true).unwrap();
    assert_eq!(read(&state), "FROZEN");
    assert!(m.is_frozen());
    assert!(!advances(&m), "a frozen process used cpu");
    // Freezing twice is fine.
    m.freeze(true).unwrap();

    m.freeze(false).unwrap();
    assert_eq!(read(&state), "THAWED");
    assert!(!m.is_frozen());
    assert!(advances(&m), "the thawed spinner does not run");

    // destroy of a frozen cgroup works: it thaws to kill.
    m.freeze(true).unwrap();
    m.destroy().unwrap();
    kill_wait(child);
}

#[test]
fn v2_cgroup_freeze_stops_and_restarts_a_busy_loop() {
    let name = unique("freeze2");
    let dir = Path::new("/sys/fs/cgroup/unified").join(&name);
    let m = Manager::from_saved(Saved {
        layout: Layout::V2,
        dirs: vec![dir.clone()],
        unified: Some(dir.clone()),
        v1: Vec::new(),
        systemd: None,
    });
    let _c = Cleanup(&m, vec![]);
    m.create().unwrap();
    let child = spinner("0");
    let pid = child.id() as i32;
    m.add(pid, false, false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(advances(&m));

    m.freeze(true).unwrap();
    assert!(read(&dir.join("cgroup.events")).contains("frozen 1"));
    assert_eq!(read(&dir.join("cgroup.freeze")), "1");
    assert!(m.is_frozen());
    assert!(!advances(&m), "a frozen process used cpu");

    m.freeze(false).unwrap();
    assert!(read(&dir.join("cgroup.events")).contains("frozen 0"));
    assert!(!m.is_frozen());
    assert!(advances(&m));
    m.destroy().unwrap();
    kill_wait(child);
}

#[test]
fn freeze_of_a_missing_cgroup_fails_and_is_not_frozen() {
    let name = unique("nofreeze");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    assert!(m.freeze(true).is_err());
    assert!(!m.is_frozen());
}

#[test]
fn stats_of_a_busy_cgroup() {
    let name = unique("stats");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    m.create().unwrap();
    let child = spinner("0.2");
    m.add(child.id() as i32, false, false).unwrap();
    std::thread::sleep(Duration::from_millis(600));

    let s = m.stats().unwrap();
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert_eq!(s.cpu.usage.percpu.len(), num_cpus(), "{s:?}");
    assert!(s.cpu.usage.user + s.cpu.usage.kernel > 0, "{s:?}");
    assert!(s.memory.usage.usage > 0, "{s:?}");
    assert!(s.memory.usage.limit > 0, "{s:?}");
    assert!(!s.memory.raw.is_empty(), "{s:?}");
    assert!(s.pids.current >= 1, "{s:?}");
    assert_eq!(s.pids.limit, 0, "no pids limit set");
    // hugetlb is on the unified hierarchy here, not enabled in its subtree_control: no files.

    // A pids limit shows up.
    let pids_dir = m.saved().v1_dir("pids").unwrap();
    std::fs::write(pids_dir.join("pids.max"), "50").unwrap();
    assert_eq!(m.stats().unwrap().pids.limit, 50);

    // runc's JSON field names.
    let v = serde_json::to_value(&s).unwrap();
    for key in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert!(v["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(v["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(v["pids"]["current"].as_u64().unwrap() >= 1);
    m.destroy().unwrap();
    kill_wait(child);
}

fn num_cpus() -> usize {
    let s = std::fs::read_to_string("/sys/fs/cgroup/cpuacct/cpuacct.usage_percpu").unwrap();
    s.split_whitespace().count()
}
