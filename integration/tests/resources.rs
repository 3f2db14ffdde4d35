//! linux.resources on this hybrid host (v1 controllers + a unified hierarchy with hugetlb only):
//! each test asserts what the kernel shows (cgroup files, counters, what the container could
//! do), and that nothing remains after delete. Pure v2 runs only in the QEMU lane.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use integration::*;

const HIERARCHIES: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "unified",
];

/// A parent cgroup `/NAME` made (by husk) in every hierarchy; removed (best effort) on drop.
/// Declared before the `Runtime`, so the containers are deleted (Runtime's drop) first.
struct Parent(String);

impl Parent {
    fn new(tag: &str) -> Parent {
        Parent(format!("husk-it-rs-{tag}-{}", std::process::id()))
    }
    /// A fresh absolute cgroupsPath below the parent.
    fn child(&self) -> String {
        format!("/{}/c{}", self.0, unique())
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let mut all: Vec<&str> = HIERARCHIES.to_vec();
        if Path::new("/sys/fs/cgroup/systemd").exists() {
            all.push("systemd");
        }
        for h in all {
            let dir = Path::new("/sys/fs/cgroup").join(h).join(&self.0);
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
}

/// The container's directory in hierarchy `h` ("memory", ..., "unified").
fn dir(h: &str, cgroups_path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(h)
        .join(cgroups_path.trim_start_matches('/'))
}

fn read(h: &str, cgroups_path: &str, file: &str) -> String {
    let p = dir(h, cgroups_path).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Deletes `id` and checks that no state, cgroup, process or mount is left.
fn finish(rt: &Runtime, id: &str, b: &Bundle, path: &str) {
    rt.exec(&["delete", "--force", id]).expect_ok();
    for h in HIERARCHIES {
        assert!(!dir(h, path).exists(), "{h}{path} left after delete");
    }
    assert_nothing_remains(rt, id, Some(b.path()));
}

/// `create` must fail mentioning each of `words`, leaving nothing behind.
fn create_fails(resources: Value, words: &[&str]) {
    let parent = Parent::new(&format!("bad{}", unique()));
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle("true", &path, resources);
    let id = rt.id();
    let mut o = rt
        .exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err();
    for w in words {
        o = o.expect_msg(w);
    }
    for h in HIERARCHIES {
        assert!(
            !dir(h, &path).exists(),
            "{h}{path} left after a failed create"
        );
    }
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn memory_limit_oom_kills() {
    let parent = Parent::new("mem");
    let rt = Runtime::new();
    let path = parent.child();
    let mib32 = 32 * 1024 * 1024;
    // One process, so one OOM kill: with a `head | tail` pipeline the kernel sometimes
    // killed both (oom_kill 2 under load in CI). tail -c buffers the last 64 MiB of an endless
    // /dev/zero and so grows past the 32 MiB limit.
    let b = cgroup_bundle(
        "tail -c 67108864 /dev/zero > /dev/null",
        &path,
        json!({"memory": {"limit": mib32, "swap": mib32, "reservation": mib32 / 2}}),
    );
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.code(), 137, "the pipeline should be OOM-killed: {o}");
    assert_eq!(read("memory", &path, "memory.limit_in_bytes"), "33554432");
    assert_eq!(
        read("memory", &path, "memory.memsw.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(
        read("memory", &path, "memory.soft_limit_in_bytes"),
        "16777216"
    );
    let oom = read("memory", &path, "memory.oom_control");
    assert_eq!(counter(&oom, "oom_kill"), 1, "{oom}");
    assert_eq!(counter(&oom, "oom_kill_disable"), 0, "{oom}");
    finish(&rt, &id, &b, &path);
}

#[test]
fn memory_swap_above_limit_and_swappiness() {
    let parent = Parent::new("swap");
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle(
        "sleep 100",
        &path,
        json!({"memory": {"limit": 33554432, "swap": 67108864, "swappiness": 7,
                          "disableOOMKiller": true, "kernel": 16777216}}),
    );
    let id = rt.id();
    rt.create(&b, &id);
    assert_eq!(read("memory", &path, "memory.limit_in_bytes"), "33554432");
    assert_eq!(
        read("memory", &path, "memory.memsw.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(read("memory", &path, "memory.swappiness"), "7");
    let oom = read("memory", &path, "memory.oom_control");
    assert_eq!(counter(&oom, "oom_kill_disable"), 1, "{oom}");
    finish(&rt, &id, &b, &path);
}

#[test]
fn pids_limit_caps_forks() {
    let parent = Parent::new("pids");
    let rt = Runtime::new();
    let path = parent.child();
    // Each successful fork prints a line; the shell itself is one of the 10.
    let b = cgroup_bundle(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
         sleep 100 & echo forked $i; done",
        &path,
        json!({"pids": {"limit": 10}}),
    );
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    let forked = o.stdout.lines().filter(|l| l.starts_with("forked")).count();
    assert!(
        forked <= 9,
        "{forked} forks succeeded with pids.max 10: {o}"
    );
    assert!(forked >= 5, "only {forked} forks succeeded: {o}");
    assert_eq!(read("pids", &path, "pids.max"), "10");
    let events = read("pids", &path, "pids.events");
    assert!(counter(&events, "max") >= 1, "no refused fork in {events}");
    finish(&rt, &id, &b, &path);
}

#[test]
fn pids_zero_is_one_and_minus_one_is_max() {
    // runtime-spec 1.3: 0 is a limit (runc 1.5 writes 1, as systemd's TasksMax cannot be 0).
    let parent = Parent::new("pids0");
    let rt = Runtime::new();
    for (limit, want) in [(0, "1"), (-1, "max")] {
        let path = parent.child();
        let b = cgroup_bundle("sleep 100", &path, json!({"pids": {"limit": limit}}));
        let id = rt.id();
        rt.create(&b, &id);
        assert_eq!(read("pids", &path, "pids.max"), want, "limit {limit}");
        finish(&rt, &id, &b, &path);
    }
}

#[test]
fn cpu_shares_quota_cpuset() {
    let parent = Parent::new("cpu");
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle(
        "grep Cpus_allowed_list /proc/self/status; while :; do :; done",
        &path,
        json!({"cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 1000,
                       "cpus": "0", "mems": "0"}}),
    );
    let id = rt.id();
    let out = rt.work().join("cpu.out");
    rt.create_to(&b, &id, &out);
    rt.exec(&["start", &id]).expect_ok();
    assert_eq!(read("cpu", &path, "cpu.shares"), "512");
    assert_eq!(read("cpu", &path, "cpu.cfs_quota_us"), "20000");
    assert_eq!(read("cpu", &path, "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", &path, "cpu.cfs_burst_us"), "1000");
    assert_eq!(read("cpuset", &path, "cpuset.cpus"), "0");
    assert_eq!(read("cpuset", &path, "cpuset.mems"), "0");
    // A busy loop at 20% of a CPU is throttled within a few periods.
    let mut throttled = 0;
    for _ in 0..100 {
        throttled = counter(&read("cpu", &path, "cpu.stat"), "nr_throttled");
        if throttled > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(throttled > 0, "never throttled with quota 20000/100000");
    let seen = fs::read_to_string(&out).unwrap();
    assert!(
        seen.lines()
            .any(|l| l.split_whitespace().eq(["Cpus_allowed_list:", "0"])),
        "{seen:?}"
    );
    finish(&rt, &id, &b, &path);
}

/// The spec's rules decide (deny all, then allow /dev/null); runc's default nodes stay usable;
/// a node made from linux.devices but not allowed is refused with EPERM.
#[test]
fn devices_deny_all_allow_listed() {
    let script = "echo x > /dev/null && echo null-ok; \
                  if true < /dev/myfuse; then echo fuse-open; else echo fuse-denied; fi 2>&1";
    let run = |allow_fuse: bool| {
        let parent = Parent::new(&format!("dev{}", unique()));
        let rt = Runtime::new();
        let path = parent.child();
        let mut rules = vec![
            json!({"allow": false, "access": "rwm"}),
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
        ];
        if allow_fuse {
            rules.push(
                json!({"allow": true, "type": "c", "major": 10, "minor": 229,
                              "access": "rw"}),
            );
        }
        let mut b = cgroup_bundle(script, &path, json!({"devices": rules}));
        b.edit(|c| {
            c["linux"]["devices"] = json!([{"path": "/dev/myfuse", "type": "c",
                "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}]);
        });
        let id = rt.id();
        let o = rt
            .exec(&["run", "--keep", "--bundle", &b.path_str(), &id])
            .expect_ok();
        let list = read("devices", &path, "devices.list");
        assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
        assert!(!list.lines().any(|l| l == "a *:* rwm"), "{list}");
        assert_eq!(
            list.lines().any(|l| l == "c 10:229 rw"),
            allow_fuse,
            "{list}"
        );
        finish(&rt, &id, &b, &path);
        o.stdout
    };
    let denied = run(false);
    assert!(denied.contains("null-ok"), "{denied}");
    assert!(denied.contains("fuse-denied"), "{denied}");
    assert!(denied.contains("Operation not permitted"), "{denied}");
    let allowed = run(true);
    assert!(allowed.contains("null-ok"), "{allowed}");
    assert!(allowed.contains("fuse-open"), "{allowed}");
}

#[test]
fn blkio_throttle_on_root_disk() {
    let dev = fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let parent = Parent::new("blkio");
    let rt = Runtime::new();
    let path = parent.child();
    let t = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    let b = cgroup_bundle(
        "sleep 100",
        &path,
        json!({"blockIO": {"throttleReadBpsDevice": t(1048576),
                           "throttleWriteBpsDevice": t(2097152),
                           "throttleReadIOPSDevice": t(100),
                           "throttleWriteIOPSDevice": t(200)}}),
    );
    let id = rt.id();
    rt.create(&b, &id);
    let d = format!("{major}:{minor}");
    for (f, v) in [
        ("read_bps_device", 1048576),
        ("write_bps_device", 2097152),
        ("read_iops_device", 100),
        ("write_iops_device", 200),
    ] {
        assert_eq!(
            read("blkio", &path, &format!("blkio.throttle.{f}")),
            format!("{d} {v}")
        );
    }
    finish(&rt, &id, &b, &path);
}

/// blkio.weight (CFQ) is gone on this kernel: the weight goes to blkio.bfq.weight, which
/// exists only while the bfq scheduler is loaded. Without it, create fails naming both files.
#[test]
fn blkio_weight_falls_back_to_bfq() {
    let parent = Parent::new("bfq");
    let probe = dir("blkio", &parent.child());
    fs::create_dir_all(&probe).unwrap();
    let (cfq, bfq) = (
        probe.join("blkio.weight").exists(),
        probe.join("blkio.bfq.weight").exists(),
    );
    fs::remove_dir(&probe).unwrap();
    let weight = json!({"blockIO": {"weight": 500}});
    if !cfq && !bfq {
        eprintln!(
            "blkio_weight_falls_back_to_bfq: no weight file here (bfq not loaded): the error path"
        );
        create_fails(
            weight,
            &[
                "linux.resources.blockIO.weight",
                "blkio.weight",
                "blkio.bfq.weight",
            ],
        );
        return;
    }
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle("sleep 100", &path, weight);
    let id = rt.id();
    rt.create(&b, &id);
    if cfq {
        assert_eq!(read("blkio", &path, "blkio.weight"), "500");
    } else {
        let w = read("blkio", &path, "blkio.bfq.weight");
        assert!(w.split_whitespace().any(|x| x == "500"), "{w}");
    }
    finish(&rt, &id, &b, &path);
}

/// A field whose file this kernel lacks is an error naming the field and the file.
#[test]
fn blkio_leaf_weight_missing_file_is_an_error() {
    let probe = format!(
        "/sys/fs/cgroup/blkio/husk-it-rs-probe-{}",
        std::process::id()
    );
    fs::create_dir(&probe).unwrap();
    let has = Path::new(&probe).join("blkio.leaf_weight").exists();
    fs::remove_dir(&probe).unwrap();
    if has {
        eprintln!("SKIPPED: this kernel has blkio.leaf_weight");
        return;
    }
    create_fails(
        json!({"blockIO": {"leafWeight": 500}}),
        &["blockIO.leafWeight", "blkio.leaf_weight", "does not exist"],
    );
}

#[test]
fn net_cls_not_mounted_is_an_error() {
    if Path::new("/sys/fs/cgroup/net_cls").exists() {
        eprintln!("SKIPPED: net_cls is mounted here");
        return;
    }
    create_fails(
        json!({"network": {"classID": 1048577}}),
        &["network.classID", "net_cls", "not mounted"],
    );
}

#[test]
fn unified_key_of_a_v1_controller_is_refused() {
    create_fails(
        json!({"unified": {"memory.max": "33554432"}}),
        &["unified", "memory.max", "not in the unified hierarchy"],
    );
}

/// Serialises the tests that switch hugetlb on in the unified root's subtree_control.
static HUGETLB: Mutex<()> = Mutex::new(());

/// hugepageLimits and a `unified` hugetlb key go to the unified hierarchy (v1 hugetlb is not
/// mounted here). husk enables hugetlb in the ancestors' cgroup.subtree_control as runc does;
/// the test switches it off again in the unified root if it was off before.
#[test]
fn hugetlb_in_unified_hierarchy() {
    let _l = HUGETLB.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new("/sys/fs/cgroup/unified");
    let ctl = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if Path::new("/sys/fs/cgroup/hugetlb").exists()
        || !ctl.split_whitespace().any(|c| c == "hugetlb")
    {
        eprintln!("SKIPPED: needs hugetlb in the unified hierarchy and not in v1");
        return;
    }
    let sc = root.join("cgroup.subtree_control");
    let was_on = fs::read_to_string(&sc)
        .unwrap()
        .split_whitespace()
        .any(|c| c == "hugetlb");
    let _restore = HugetlbOff(!was_on, sc);
    {
        let parent = Parent::new("huge");
        let rt = Runtime::new();
        let path = parent.child();
        let b = cgroup_bundle(
            "sleep 100",
            &path,
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                   "unified": {"hugetlb.1GB.max": "1073741824"}}),
        );
        let id = rt.id();
        rt.create(&b, &id);
        assert_eq!(read("unified", &path, "hugetlb.2MB.max"), "4194304");
        assert_eq!(read("unified", &path, "hugetlb.1GB.max"), "1073741824");
        if dir("unified", &path).join("hugetlb.2MB.rsvd.max").exists() {
            assert_eq!(read("unified", &path, "hugetlb.2MB.rsvd.max"), "4194304");
        }
        finish(&rt, &id, &b, &path);
    }
}

/// Switches hugetlb off again in the unified root's subtree_control (when `.0`), also when
/// the test fails; dropped after the test's containers and parent cgroup are gone.
struct HugetlbOff(bool, PathBuf);

impl Drop for HugetlbOff {
    fn drop(&mut self) {
        if self.0 {
            if let Err(e) = fs::write(&self.1, "-hugetlb") {
                eprintln!("could not switch hugetlb off in {}: {e}", self.1.display());
            }
        }
    }
}

#[test]
fn cpu_idle_and_realtime_period() {
    let parent = Parent::new("idle");
    let rt = Runtime::new();
    let path = parent.child();
    let b = cgroup_bundle(
        "sleep 100",
        &path,
        json!({"cpu": {"idle": 1, "realtimePeriod": 500000, "realtimeRuntime": 0}}),
    );
    let id = rt.id();
    rt.create(&b, &id);
    assert_eq!(read("cpu", &path, "cpu.idle"), "1");
    assert_eq!(read("cpu", &path, "cpu.rt_period_us"), "500000");
    assert_eq!(read("cpu", &path, "cpu.rt_runtime_us"), "0");
    finish(&rt, &id, &b, &path);
}

#[test]
fn rdma_without_controller_is_an_error() {
    let ctl = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    if Path::new("/sys/fs/cgroup/rdma").exists() || ctl.split_whitespace().any(|c| c == "rdma") {
        eprintln!("SKIPPED: this host has an rdma controller");
        return;
    }
    create_fails(
        json!({"rdma": {"mlx5_1": {"hcaHandles": 3}}}),
        &["rdma", "not mounted"],
    );
}

#[test]
fn network_priorities_without_net_prio_is_an_error() {
    if Path::new("/sys/fs/cgroup/net_prio").exists() {
        eprintln!("SKIPPED: net_prio is mounted here");
        return;
    }
    create_fails(
        json!({"network": {"priorities": [{"name": "eth0", "priority": 5}]}}),
        &["network.priorities[0]", "net_prio", "not mounted"],
    );
}
