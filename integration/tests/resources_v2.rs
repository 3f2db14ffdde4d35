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
        "grep Cpus_allowed_list /proc/self/status; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; \
         for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
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
    // By effect: the busy loop ran under 20 ms per 100 ms, and only on cpu 0.
    assert!(counter(&read(&path, "cpu.stat"), "nr_throttled") >= 1);
    assert!(
        o.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Cpus_allowed_list:", "0"]),
        "{o}"
    );
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

/// Tests that need what `scripts/vm/tests` sets up in the throw-away guest only (the loop
/// module, huge pages): they say why they skip anywhere else, so no host setting is touched.
fn lane_only(test: &str) -> bool {
    if v2_only(test) {
        return true;
    }
    if std::env::var_os("HUSK_LANE").is_none() {
        eprintln!("{test}: skipped: needs the v2 lane's guest set-up (scripts/vm-lane test)");
        return true;
    }
    false
}

/// Seconds from /proc/uptime lines the container printed as `TAG <uptime> <idle>`.
fn uptime_of(out: &str, tag: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(tag)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {tag} line in {out}"))
}

/// A loop device over a file on the guest's tmpfs, detached on drop.
struct Loop {
    dev: String,
    file: PathBuf,
}

impl Loop {
    fn new() -> Loop {
        let file =
            std::env::temp_dir().join(format!("husk-io-{}-{}.img", std::process::id(), unique()));
        fs::File::create(&file).unwrap().set_len(32 << 20).unwrap();
        let o = std::process::Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Loop {
            dev: String::from_utf8_lossy(&o.stdout).trim().to_string(),
            file,
        }
    }
    fn major_minor(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let r = fs::metadata(&self.dev).unwrap().rdev();
        ((r >> 8) & 0xfff, (r & 0xff) | ((r >> 12) & 0xfff00))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
        let _ = fs::remove_file(&self.file);
    }
}

#[test]
fn v2_io_max_throttles_direct_io() {
    if lane_only("v2_io_max_throttles_direct_io") {
        return;
    }
    let lo = Loop::new();
    let (maj, min) = lo.major_minor();
    let parent = Parent::new("io");
    let rt = Runtime::new();
    let path = parent.child();
    // 8 MiB read at 4 MiB/s, then 40 direct 4 KiB writes at 20 per second: each about 2 s.
    let mut b = cgroup_bundle(
        "echo T0 $(cat /proc/uptime); \
         dd if=/dev/tloop of=/dev/null bs=1M count=8 iflag=direct 2>/dev/null; \
         echo T1 $(cat /proc/uptime); \
         dd if=/dev/zero of=/dev/tloop bs=4k count=40 oflag=direct 2>/dev/null; \
         echo T2 $(cat /proc/uptime)",
        &path,
        json!({"blockIO": {
                 "throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 4194304}],
                 "throttleWriteIOPSDevice": [{"major": maj, "minor": min, "rate": 20}]},
               "devices": [{"allow": false, "access": "rwm"},
                           {"allow": true, "type": "b", "major": maj, "minor": min, "access": "rw"}]}),
    );
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/tloop", "type": "b", "major": maj,
                                        "minor": min, "fileMode": 432}]);
    });
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.code(), 0, "{o}");
    let (t0, t1, t2) = (
        uptime_of(&o.stdout, "T0 "),
        uptime_of(&o.stdout, "T1 "),
        uptime_of(&o.stdout, "T2 "),
    );
    assert_eq!(
        read(&path, "io.max"),
        format!("{maj}:{min} rbps=4194304 wbps=max riops=max wiops=20")
    );
    let stat = read(&path, "io.stat");
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("{maj}:{min} ")))
        .unwrap_or_else(|| panic!("no {maj}:{min} in io.stat: {stat}"));
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
            .unwrap()
    };
    assert!(field("rbytes") >= 8 << 20, "{line}");
    assert!(field("wios") >= 40, "{line}");
    // The throttle's effect: the kernel lets a short burst through, hence 0.7 of the ideal.
    eprintln!("v2_io_max: read {:.2}s, writes {:.2}s", t1 - t0, t2 - t1);
    assert!(t1 - t0 >= 1.4, "8 MiB at 4 MiB/s took {:.2}s", t1 - t0);
    assert!(t2 - t1 >= 1.4, "40 writes at 20/s took {:.2}s", t2 - t1);
    finish(&rt, &id, &b, &path);
}

#[test]
fn v2_hugetlb_limit_fails_the_second_page() {
    if lane_only("v2_hugetlb_limit_fails_the_second_page") {
        return;
    }
    let parent = Parent::new("huge");
    let rt = Runtime::new();
    let path = parent.child();
    let mut b = cgroup_bundle(
        "fallocate -l 2097152 /huge/a && echo one-ok; fallocate -l 2097152 /huge/b; echo rc=$?",
        &path,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
    );
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/huge",
            "type": "hugetlbfs", "source": "hugetlbfs", "options": ["pagesize=2M"]}));
    });
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    assert!(o.stdout.contains("one-ok"), "{o}");
    assert!(
        o.stdout.contains("rc=") && !o.stdout.contains("rc=0"),
        "{o}"
    );
    assert_eq!(read(&path, "hugetlb.2MB.max"), "2097152");
    assert!(counter(&read(&path, "hugetlb.2MB.events"), "max") >= 1);
    finish(&rt, &id, &b, &path);
}

#[test]
fn v2_unified_keys_written_and_effective() {
    if v2_only("v2_unified_keys_written_and_effective") {
        return;
    }
    let parent = Parent::new("uni");
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 100 & echo forked $i; done",
        &path,
        json!({"unified": {"pids.max": "7", "memory.high": "50003968"}}),
    );
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    let forked = o.stdout.lines().filter(|l| l.starts_with("forked")).count();
    assert!(
        (2..=6).contains(&forked),
        "{forked} forks with pids.max 7: {o}"
    );
    assert_eq!(read(&path, "pids.max"), "7");
    assert_eq!(read(&path, "memory.high"), "50003968");
    finish(&rt, &id, &b, &path);
    // A key no controller provides is refused by name, leaving nothing.
    let path = parent.child();
    let b = cgroup_bundle("true", &path, json!({"unified": {"nosuch.max": "1"}}));
    let id = rt.id();
    rt.exec(&["run", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("nosuch.max");
    assert!(!dir(&path).exists());
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn v2_rdma_for_an_absent_device_is_an_error() {
    if v2_only("v2_rdma_for_an_absent_device_is_an_error") {
        return;
    }
    let parent = Parent::new("rdma");
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle(
        "true",
        &path,
        json!({"rdma": {"mlx5_9": {"hcaHandles": 2}}}),
    );
    let id = rt.id();
    rt.exec(&["run", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("rdma")
        .expect_msg("mlx5_9");
    assert!(!dir(&path).exists());
    assert_nothing_remains(&rt, &id, Some(b.path()));
}
