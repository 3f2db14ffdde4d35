//! The systemd cgroup driver (`--systemd-cgroup`, cgroupsPath `slice:prefix:name`), driven as
//! containerd and podman drive runc with it. They need systemd as init on pure cgroup v2: the
//! systemd lane (`scripts/vm-lane systemd-test`) runs them; elsewhere each says why it skips.
//! Every test checks what systemd reports (`systemctl show`) and what the kernel shows.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use integration::*;

fn systemd_only(test: &str) -> bool {
    if Path::new("/run/systemd/system").is_dir() && is_pure_v2() {
        return false;
    }
    eprintln!(
        "{test}: skipped: needs systemd as init on pure cgroup v2 (scripts/vm-lane systemd-test)"
    );
    true
}

/// `systemctl show UNIT -p PROP` → the value (bounded: a stuck systemctl fails the test).
fn show(unit: &str, prop: &str) -> String {
    let mut c = Command::new("systemctl");
    c.args(["show", unit, "-p", prop, "--value"]);
    bounded(c, std::time::Duration::from_secs(30))
        .stdout
        .trim()
        .to_string()
}

fn unit(id: &str) -> String {
    format!("husk-{id}.scope")
}

fn scope_dir(id: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/system.slice").join(unit(id))
}

fn read(id: &str, file: &str) -> String {
    let p = scope_dir(id).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A bundle running `script` in `system.slice:husk:<id>` with `resources` merged in.
fn bundle(id: &str, script: &str, resources: serde_json::Value) -> Bundle {
    cgroup_bundle(script, &format!("system.slice:husk:{id}"), resources)
}

fn sd(rt: &Runtime, args: &[&str]) -> Output {
    let mut a = vec!["--systemd-cgroup"];
    a.extend_from_slice(args);
    rt.exec(&a)
}

/// The unit and its cgroup are gone, and nothing else of the container remains. systemd
/// unloads a stopped transient unit on its next garbage collection, so that is waited for
/// (bounded), not assumed instant.
fn gone(rt: &Runtime, id: &str, b: &Bundle) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while show(&unit(id), "LoadState") != "not-found" && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        show(&unit(id), "LoadState"),
        "not-found",
        "unit {} left: {}",
        unit(id),
        show(&unit(id), "ActiveState")
    );
    assert!(!scope_dir(id).exists(), "{} left", scope_dir(id).display());
    assert_nothing_remains(rt, id, Some(b.path()));
}

/// Waits (bounded) until the container's rootfs has `file`: its script got that far.
fn wait_file(b: &Bundle, file: &str) {
    let p = b.path().join("rootfs").join(file);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !p.exists() {
        assert!(
            std::time::Instant::now() < end,
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn scope_is_created_with_the_init_and_removed_on_delete() {
    if systemd_only("scope_is_created_with_the_init_and_removed_on_delete") {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let b = bundle(&id, "sleep 100", json!({}));
    sd(&rt, &["create", "--bundle", &b.path_str(), &id]).expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{}", unit(&id)));
    assert_eq!(show(&unit(&id), "ActiveState"), "active");
    assert_eq!(show(&unit(&id), "Delegate"), "yes");
    assert_eq!(show(&unit(&id), "Slice"), "system.slice");
    assert!(read(&id, "cgroup.procs").lines().any(|l| l == pid));
    sd(&rt, &["start", &id]).expect_ok();
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
}

#[test]
fn memory_limit_as_property_and_by_effect() {
    if systemd_only("memory_limit_as_property_and_by_effect") {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let mib32 = 32 * 1024 * 1024;
    let hog = "head -c 67108864 /dev/zero | tail > /dev/null";
    let limits = json!({"memory": {"limit": mib32, "swap": mib32, "reservation": mib32 / 2}});
    let b = bundle(&id, hog, limits.clone());
    sd(&rt, &["create", "--bundle", &b.path_str(), &id]).expect_ok();
    assert_eq!(show(&unit(&id), "MemoryMax"), "33554432");
    assert_eq!(show(&unit(&id), "MemoryLow"), "16777216");
    assert_eq!(read(&id, "memory.max"), "33554432");
    assert_eq!(read(&id, "memory.low"), "16777216");
    assert_eq!(read(&id, "memory.swap.max"), "0");
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
    // By effect: the pipeline is OOM-killed (137) and the unit goes with the container.
    let id = rt.id();
    let b = bundle(&id, hog, limits);
    let o = sd(&rt, &["run", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.code(), 137, "{o}");
    gone(&rt, &id, &b);
}

#[test]
fn pids_and_cpu_limits() {
    if systemd_only("pids_and_cpu_limits") {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let mut b = bundle(
        &id,
        // ash exits when a fork fails, so the loop runs in a subshell; the shell then blocks
        // on a FIFO nobody writes (builtins only), keeping the unit alive to be looked at.
        "(for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do sleep 100 & echo $i >> /forked; done); \
         echo > /done; read x < /hold",
        json!({"pids": {"limit": 10}, "cpu": {"shares": 512, "quota": 20000, "period": 100000}}),
    );
    // The script reports through files in its root (builtins only: forks are what fail).
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let fifo = std::ffi::CString::new(b.rootfs().join("hold").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    sd(&rt, &["run", "--detach", "--bundle", &b.path_str(), &id]).expect_ok();
    wait_file(&b, "done");
    let forked = fs::read_to_string(b.path().join("rootfs/forked"))
        .unwrap()
        .lines()
        .count();
    assert!(
        (5..=9).contains(&forked),
        "{forked} forks under TasksMax 10"
    );
    assert_eq!(show(&unit(&id), "TasksMax"), "10");
    assert_eq!(read(&id, "pids.max"), "10");
    assert!(counter(&read(&id, "pids.events"), "max") >= 1);
    assert_eq!(show(&unit(&id), "CPUWeight"), "20");
    assert_eq!(read(&id, "cpu.weight"), "20");
    assert_eq!(show(&unit(&id), "CPUQuotaPerSecUSec"), "200ms");
    assert_eq!(read(&id, "cpu.max"), "20000 100000");
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
}

#[test]
fn devices_strict_policy_and_effect() {
    if systemd_only("devices_strict_policy_and_effect") {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let mut b = bundle(
        &id,
        "cat /dev/null && echo null-ok; head -c1 /dev/myfuse 2>&1; echo rc=$?",
        json!({"devices": [{"allow": false, "access": "rwm"}]}),
    );
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/myfuse", "type": "c", "major": 10,
                                        "minor": 229, "fileMode": 438}]);
    });
    sd(&rt, &["create", "--bundle", &b.path_str(), &id]).expect_ok();
    assert_eq!(show(&unit(&id), "DevicePolicy"), "strict");
    let allow = show(&unit(&id), "DeviceAllow");
    assert!(allow.contains("/dev/char/1:3 rwm"), "{allow}");
    assert!(!allow.contains("10:229"), "{allow}");
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
    // The same bundle in the foreground, for its output.
    let id2 = rt.id();
    let mut b2 = bundle(
        &id2,
        "cat /dev/null && echo null-ok; head -c1 /dev/myfuse 2>&1; echo rc=$?",
        json!({"devices": [{"allow": false, "access": "rwm"}]}),
    );
    b2.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/myfuse", "type": "c", "major": 10,
                                        "minor": 229, "fileMode": 438}]);
    });
    let o = sd(&rt, &["run", "--bundle", &b2.path_str(), &id2]);
    assert!(o.stdout.contains("null-ok"), "{o}");
    assert!(o.stdout.contains("Operation not permitted"), "{o}");
    assert!(!o.stdout.contains("rc=0"), "{o}");
    gone(&rt, &id2, &b2);
}

#[test]
fn update_sets_the_property_and_the_file() {
    if systemd_only("update_sets_the_property_and_the_file") {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let b = bundle(&id, "sleep 100", json!({"memory": {"limit": 33554432}}));
    sd(&rt, &["run", "--detach", "--bundle", &b.path_str(), &id]).expect_ok();
    sd(
        &rt,
        &["update", "--memory", "67108864", "--pids-limit", "50", &id],
    )
    .expect_ok();
    assert_eq!(show(&unit(&id), "MemoryMax"), "67108864");
    assert_eq!(read(&id, "memory.max"), "67108864");
    assert_eq!(show(&unit(&id), "TasksMax"), "50");
    assert_eq!(read(&id, "pids.max"), "50");
    // A bad value changes nothing.
    sd(&rt, &["update", "--memory", "lots", &id]).expect_err();
    assert_eq!(show(&unit(&id), "MemoryMax"), "67108864");
    sd(&rt, &["pause", &id]).expect_ok();
    assert_eq!(read(&id, "cgroup.freeze"), "1");
    sd(&rt, &["resume", &id]).expect_ok();
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
}

#[test]
fn bad_paths_and_failed_creates_leave_nothing() {
    if systemd_only("bad_paths_and_failed_creates_leave_nothing")
        || skip_for_runc("runc's wording differs")
    {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let mut b = bundle(&id, "true", json!({}));
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("noColons"));
    sd(&rt, &["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("slice:prefix:name");
    gone(&rt, &id, &b);
    // The unit is started, then the executable is missing: unit and cgroup go with the rest.
    let mut b = bundle(&id, "true", json!({}));
    b.edit(|c| c["process"]["args"] = json!(["/no/such/binary"]));
    sd(&rt, &["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("/no/such/binary");
    gone(&rt, &id, &b);
    let o = Command::new("systemctl")
        .args(["list-units", "--all", "--no-legend", "husk-*"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(!listed.contains(&unit(&id)), "{listed}");
}

#[test]
fn default_path_is_system_slice_husk_id() {
    if systemd_only("default_path_is_system_slice_husk_id")
        || skip_for_runc("runc's default prefix is runc")
    {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    sd(&rt, &["create", "--bundle", &b.path_str(), &id]).expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{}", unit(&id)));
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
}

/// Checkpoint and restore under the systemd driver: the restored container gets a new scope
/// with its limits, and its processes are in it.
#[test]
fn checkpoint_and_restore_into_a_new_scope() {
    if systemd_only("checkpoint_and_restore_into_a_new_scope") {
        return;
    }
    // scripts/vm-lane systemd-test passes scripts/criu's CRIU.
    let criu = std::env::var("HUSK_CRIU").expect("HUSK_CRIU (scripts/vm-lane passes it)");
    let rt = Runtime::new();
    let id = rt.id();
    let mut b = bundle(
        &id,
        integration::ckpt::SHM_COUNTER,
        json!({"memory": {"limit": 67108864}}),
    );
    b.edit(|c| c["root"]["readonly"] = json!(true));
    let count = |rt: &Runtime, id: &str| -> u64 {
        let o = rt.exec(&["exec", id, "cat", "/dev/shm/cnt"]);
        o.stdout.trim().parse().unwrap_or(0)
    };
    let log = rt.work().join("log");
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    let run = |args: &[&str]| {
        let mut a = vec!["--criu", &criu, "--systemd-cgroup"];
        a.extend_from_slice(args);
        rt.cmd(&a).fd(fd, 1).fd(fd, 2).run()
    };
    let o = run(&["run", "-d", "--bundle", &b.path_str(), &id]);
    assert!(
        o.ok(),
        "run: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count(&rt, &id) < 3 && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let img = rt.work().join("images");
    let o = run(&["checkpoint", "--image-path", img.to_str().unwrap(), &id]);
    assert!(
        o.ok(),
        "checkpoint: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while show(&unit(&id), "LoadState") != "not-found" && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        show(&unit(&id), "LoadState"),
        "not-found",
        "scope left after checkpoint"
    );
    let o = run(&[
        "restore",
        "-d",
        "--bundle",
        &b.path_str(),
        "--image-path",
        img.to_str().unwrap(),
        &id,
    ]);
    assert!(
        o.ok(),
        "restore: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(show(&unit(&id), "ActiveState"), "active");
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::/system.slice/{}", unit(&id)));
    assert_eq!(read(&id, "memory.max"), "67108864");
    let v = count(&rt, &id);
    assert!(v >= 3, "counter restarted: {v}");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count(&rt, &id) <= v && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(count(&rt, &id) > v, "restored counter does not advance");
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
}

#[test]
fn resource_view_from_the_scopes_cgroup() {
    if systemd_only("resource_view_from_the_scopes_cgroup") || skip_for_runc("husk's view") {
        return;
    }
    let rt = Runtime::new();
    let id = rt.id();
    let mut b = bundle(
        &id,
        "head -1 /proc/meminfo; cat /sys/devices/system/cpu/online; \
         grep -c fuse.husk-procview /proc/self/mountinfo",
        json!({"memory": {"limit": 256 * 1024 * 1024},
               "cpu": {"quota": 50000, "period": 100000}}),
    );
    b.edit(|c| c["annotations"]["io.github.husk.resource-view"] = json!("on"));
    let o = sd(&rt, &["run", "--bundle", &b.path_str(), &id]).expect_ok();
    // The scope's limits (systemd's MemoryMax and CPUQuota=50%), 8 files of the view.
    assert_eq!(o.stdout, "MemTotal:         262144 kB\n0\n8\n", "{o}");
    sd(&rt, &["delete", "--force", &id]).expect_ok();
    gone(&rt, &id, &b);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rt.root().join(".procview").exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !rt.root().join(".procview").exists(),
        "the server outlived its last container"
    );
}
