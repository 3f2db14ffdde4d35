//! linux.resources on a pure cgroup v2 host, where every controller is in the unified
//! hierarchy: these run in the QEMU lane (`scripts/vm-lane test`) and skip, saying so, on a
//! hybrid or v1 host (resources.rs covers those). Each asserts what the kernel shows.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use integration::*;

/// Skips (with a message) unless the host is pure cgroup v2.
fn v2_only(test: &str) -> bool {
    if is_pure_v2() {
        return false;
    }
    eprintln!("{test}: skipped: not a pure cgroup v2 host (scripts/vm-lane test runs it)");
    true
}

/// A parent cgroup `/NAME`, removed (best effort) on drop; declared before the `Runtime` so the
/// containers go first.
struct Parent(String);

impl Parent {
    fn new(tag: &str) -> Parent {
        Parent(format!("husk-it-v2-{tag}-{}", std::process::id()))
    }
    fn child(&self) -> String {
        format!("/{}/c{}", self.0, unique())
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let dir = Path::new("/sys/fs/cgroup").join(&self.0);
        for _ in 0..50 {
            match fs::remove_dir(&dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
    }
}

fn dir(path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
}

fn read(path: &str, file: &str) -> String {
    let p = dir(path).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn finish(rt: &Runtime, id: &str, b: &Bundle, path: &str) {
    rt.exec(&["delete", "--force", id]).expect_ok();
    assert!(!dir(path).exists(), "{path} left after delete");
    assert_nothing_remains(rt, id, Some(b.path()));
}

#[test]
fn v2_memory_max_oom_kills() {
    if v2_only("v2_memory_max_oom_kills") {
        return;
    }
    let parent = Parent::new("mem");
    let rt = Runtime::new();
    let path = parent.child();
    let mib32 = 32 * 1024 * 1024;
    let b = cgroup_bundle(
        "head -c 67108864 /dev/zero | tail > /dev/null",
        &path,
        json!({"memory": {"limit": mib32, "swap": mib32, "reservation": mib32 / 2}}),
    );
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.code(), 137, "the pipeline should be OOM-killed: {o}");
    assert_eq!(read(&path, "memory.max"), "33554432");
    // v2 counts swap apart from memory: swap - limit.
    assert_eq!(read(&path, "memory.swap.max"), "0");
    assert_eq!(read(&path, "memory.low"), "16777216");
    let events = read(&path, "memory.events");
    assert!(counter(&events, "oom_kill") >= 1, "{events}");
    finish(&rt, &id, &b, &path);
}

#[test]
fn v2_pids_cpu_and_cpuset() {
    if v2_only("v2_pids_cpu_and_cpuset") {
        return;
    }
    let parent = Parent::new("cpu");
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
         sleep 100 & echo forked $i; done",
        &path,
        json!({"pids": {"limit": 10},
               "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"}}),
    );
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    let forked = o.stdout.lines().filter(|l| l.starts_with("forked")).count();
    assert!(
        (5..=9).contains(&forked),
        "{forked} forks with pids.max 10: {o}"
    );
    assert_eq!(read(&path, "pids.max"), "10");
    assert!(counter(&read(&path, "pids.events"), "max") >= 1);
    // runc's conversion: 1 + (shares - 2) * 9999 / 262142.
    assert_eq!(read(&path, "cpu.weight"), "20");
    assert_eq!(read(&path, "cpu.max"), "20000 100000");
    assert_eq!(read(&path, "cpuset.cpus"), "0");
    assert_eq!(read(&path, "cpuset.mems"), "0");
    eprintln!("v2_pids_cpu_and_cpuset: ran on pure v2 ({forked} forks)");
    finish(&rt, &id, &b, &path);
}

#[test]
fn v2_device_program_denies() {
    if v2_only("v2_device_program_denies") {
        return;
    }
    let parent = Parent::new("dev");
    let rt = Runtime::new();
    let path = parent.child();
    // /dev/myfuse exists in the container but no rule allows it: opening it must fail.
    let mut b = cgroup_bundle(
        "cat /dev/null && echo null-ok; head -c1 /dev/myfuse 2>&1; echo rc=$?",
        &path,
        json!({}),
    );
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/myfuse", "type": "c", "major": 10,
                                        "minor": 229, "fileMode": 438}]);
    });
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    assert!(o.stdout.contains("null-ok"), "{o}");
    assert!(o.stdout.contains("Operation not permitted"), "{o}");
    assert!(!o.stdout.contains("rc=0"), "{o}");
    finish(&rt, &id, &b, &path);
}
