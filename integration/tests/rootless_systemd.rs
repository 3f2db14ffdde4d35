//! Rootless containers with the systemd cgroup driver: the user's own systemd instance
//! (`user@1001.service`) starts each container's scope in its delegated subtree. They need
//! the systemd lane's guest (`scripts/vm-lane rootless-test`): run as root there, they make
//! every runtime and engine call as the unprivileged user `huskrl` (integration::rootless_vm);
//! elsewhere each says why it skips. Each runs with the runtime under test (`HUSK_BIN`) and
//! with Debian's runc, so that they check behaviour, not husk's wording, and each asserts what
//! the user manager, the kernel and the container report.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use integration::rootless_vm::*;
use integration::*;

const MEM: &str = "67108864"; // 64 MiB

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Waits (bounded) until `p` exists and is not empty, and returns its contents.
fn wait_file(p: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    while fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true) {
        assert!(Instant::now() < end, "{} never written", p.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    read(p)
}

/// A bundle as `runc spec --rootless` shapes it (a user namespace mapping root to the user
/// alone, no network namespace, /sys bound from the host, no uid=/gid= mount options), plus a
/// cgroup namespace and the limits, in the user manager's `user.slice` as unit
/// `husk-<id>.scope`. The rootfs is writable and owned by the user (root in the container).
fn rootless_bundle(id: &str, script: &str, pids: i64) -> Bundle {
    let mut b = Bundle::sh(script);
    let id = id.to_string();
    b.edit(move |c| {
        c["root"]["readonly"] = json!(false);
        remove_ns(c, "network");
        set_ns(c, "user", None);
        set_ns(c, "cgroup", None);
        let m = json!([{"containerID": 0, "hostID": UID, "size": 1}]);
        c["linux"]["uidMappings"] = m.clone();
        c["linux"]["gidMappings"] = m;
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if let Some(o) = m["options"].as_array_mut() {
                o.retain(|o| {
                    let o = o.as_str().unwrap_or("");
                    !o.starts_with("uid=") && !o.starts_with("gid=")
                });
            }
        }
        c["linux"]["cgroupsPath"] = json!(format!("user.slice:husk:{id}"));
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": pids});
    });
    chown_user(b.path());
    b
}

/// `runtime --systemd-cgroup --root ROOT ARGS...` as the user.
fn rt(runtime: &Path, root: &Path, args: &[&str]) -> Output {
    let (runtime, root) = (runtime.to_string_lossy(), root.to_string_lossy());
    let mut a = vec!["--systemd-cgroup", "--root", &root];
    a.extend_from_slice(args);
    as_user(&runtime, &a)
}

/// Deletes the container (as the user) when a test fails half-way.
struct Cleanup<'a>(&'a Path, &'a Path, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = rt(self.0, self.1, &["delete", "--force", &self.2]);
    }
}

/// (a) `run -d` as the user: the scope exists in the user manager with the limits as its
/// properties and in its cgroup files, the init is in it, the container reads its own limits
/// through its cgroup namespace; `update` changes property and file, `pause`/`resume` freeze
/// and thaw; after kill and `delete`, scope and cgroup are gone.
fn direct(runtime: &Path) {
    let id = format!("rl{}-{}", std::process::id(), unique());
    let root = user_root();
    let b = rootless_bundle(
        &id,
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max > /seen; exec sleep 1000",
        32,
    );
    let _c = Cleanup(runtime, root.path(), id.clone());
    rt(
        runtime,
        root.path(),
        &["run", "-d", "--bundle", &b.path_str(), &id],
    )
    .expect_ok();
    let unit = format!("husk-{id}.scope");
    let dir = user_manager_cgroup().join("user.slice").join(&unit);
    assert_eq!(user_unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(user_unit_prop(&unit, "MemoryMax"), MEM);
    assert_eq!(user_unit_prop(&unit, "TasksMax"), "32");
    assert_eq!(read(&dir.join("memory.max")), MEM);
    assert_eq!(read(&dir.join("pids.max")), "32");
    let st: Value =
        serde_json::from_str(&rt(runtime, root.path(), &["state", &id]).expect_ok().stdout)
            .unwrap();
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert_eq!(
        Path::new("/sys/fs/cgroup").join(own.trim_start_matches("0::/")),
        dir,
        "the init's cgroup"
    );
    // The init runs as the user on the host.
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["Uid:", "1001", "1001", "1001", "1001"]),
        "{status}"
    );
    assert_eq!(
        wait_file(&b.rootfs().join("seen")),
        format!("{MEM}\n32"),
        "what the container reads from its own cgroup"
    );
    // update: the user manager's property and the file (SetUnitProperties on the user bus).
    rt(
        runtime,
        root.path(),
        &["update", "--memory", "33554432", &id],
    )
    .expect_ok();
    assert_eq!(user_unit_prop(&unit, "MemoryMax"), "33554432");
    assert_eq!(read(&dir.join("memory.max")), "33554432");
    // pause and resume: the delegated cgroup's freezer.
    rt(runtime, root.path(), &["pause", &id]).expect_ok();
    assert_eq!(read(&dir.join("cgroup.freeze")), "1");
    let o = rt(runtime, root.path(), &["state", &id]).expect_ok();
    assert!(o.stdout.contains("\"paused\""), "{o}");
    rt(runtime, root.path(), &["resume", &id]).expect_ok();
    assert_eq!(read(&dir.join("cgroup.freeze")), "0");
    rt(runtime, root.path(), &["kill", &id, "KILL"]).expect_ok();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let o = rt(runtime, root.path(), &["state", &id]).expect_ok();
        if o.stdout.contains("\"stopped\"") {
            break;
        }
        assert!(Instant::now() < end, "never stopped: {o}");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt(runtime, root.path(), &["delete", &id]).expect_ok();
    assert!(user_unit_gone(&unit), "{unit} left in the user manager");
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(!root.path().join(&id).exists(), "state of {id} left");
    let o = rt(runtime, root.path(), &["state", &id]);
    assert!(!o.ok(), "{o}");
}

#[test]
fn husk_run_in_a_user_scope() {
    if rootless_lane("husk_run_in_a_user_scope") {
        return;
    }
    direct(&husk_bin());
}

#[test]
fn runc_run_in_a_user_scope() {
    if rootless_lane("runc_run_in_a_user_scope")
        || missing_tool(&runc_bin().to_string_lossy(), "runc")
    {
        return;
    }
    direct(&runc_bin());
}

/// The cgroupfs driver in the delegated subtree: the runtime, started by the user inside its
/// own manager's subtree (`systemd-run --user --scope`, so that moving the init stays within
/// what was delegated), makes the cgroup at an absolute cgroupsPath below user@UID.service,
/// applies the limit there, and removes it at delete.
fn cgroupfs_delegated(runtime: &Path) {
    let id = format!("rlfs{}-{}", std::process::id(), unique());
    let root = user_root();
    let rel = format!("user.slice/user-{UID}.slice/user@{UID}.service/{id}");
    let mut b = rootless_bundle(
        &id,
        "cat /sys/fs/cgroup/memory.max > /seen; exec sleep 1000",
        16,
    );
    let rel2 = rel.clone();
    b.edit(move |c| c["linux"]["cgroupsPath"] = json!(format!("/{rel2}")));
    chown_user(b.path());
    let _c = CleanupFs(runtime, root.path(), id.clone());
    let (rts, roots) = (runtime.to_string_lossy(), root.path().to_string_lossy());
    as_user(
        "systemd-run",
        &[
            "--user",
            "--scope",
            "--quiet",
            &rts,
            "--root",
            &roots,
            "run",
            "-d",
            "--bundle",
            &b.path_str(),
            &id,
        ],
    )
    .expect_ok();
    let dir = Path::new("/sys/fs/cgroup").join(&rel);
    assert_eq!(read(&dir.join("memory.max")), MEM);
    assert_eq!(read(&dir.join("pids.max")), "16");
    assert_eq!(
        wait_file(&b.rootfs().join("seen")),
        MEM,
        "what the container reads"
    );
    let st: Value = serde_json::from_str(
        &as_user(&rts, &["--root", &roots, "state", &id])
            .expect_ok()
            .stdout,
    )
    .unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert_eq!(own, format!("0::/{rel}"), "the init's cgroup");
    as_user(&rts, &["--root", &roots, "delete", "--force", &id]).expect_ok();
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(!root.path().join(&id).exists(), "state of {id} left");
}

/// Deletes a cgroupfs container (as the user) when a test fails half-way.
struct CleanupFs<'a>(&'a Path, &'a Path, String);

impl Drop for CleanupFs<'_> {
    fn drop(&mut self) {
        let (rts, roots) = (self.0.to_string_lossy(), self.1.to_string_lossy());
        let _ = as_user(&rts, &["--root", &roots, "delete", "--force", &self.2]);
    }
}

#[test]
fn husk_cgroupfs_in_the_delegated_subtree() {
    if rootless_lane("husk_cgroupfs_in_the_delegated_subtree") {
        return;
    }
    cgroupfs_delegated(&husk_bin());
}

#[test]
fn runc_cgroupfs_in_the_delegated_subtree() {
    if rootless_lane("runc_cgroupfs_in_the_delegated_subtree")
        || missing_tool(&runc_bin().to_string_lossy(), "runc")
    {
        return;
    }
    cgroupfs_delegated(&runc_bin());
}

/// (b), (c) rootless podman with `runtime`: `run --rm` with limits reads its own memory.max
/// and pids.max; a detached container runs in `libpod-<id>.scope` of the user manager with
/// the limit set, under the runtime given (its state in its default rootless root), takes
/// `exec`, and stops on `stop` (a TERM trap: exit 0, no escalation); `rm` removes the scope.
fn podman(runtime: &Path) {
    let p = UserPodman::new(runtime);
    let o = p
        .run(&[
            "run",
            "--rm",
            "--memory",
            "64m",
            "--pids-limit",
            "40",
            USER_IMAGE,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /proc/self/cgroup",
        ])
        .expect_ok();
    assert_eq!(o.stdout, format!("{MEM}\n40\n0::/\n"), "{o}");
    let o = p
        .run(&[
            "run",
            "-d",
            "--name",
            "rl1",
            "--memory",
            "64m",
            USER_IMAGE,
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        ])
        .expect_ok();
    let id = o.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{o}");
    let o = p
        .run(&["inspect", "--format", "{{.OCIRuntime}}", "rl1"])
        .expect_ok();
    assert_eq!(o.stdout.trim(), runtime.to_string_lossy());
    let state = Path::new(RUNTIME_DIR)
        .join(p.runtime_name())
        .join(&id)
        .join("state.json");
    assert!(state.exists(), "{} missing", state.display());
    let unit = format!("libpod-{id}.scope");
    let dir = user_manager_cgroup().join("user.slice").join(&unit);
    assert_eq!(user_unit_prop(&unit, "ActiveState"), "active");
    assert_eq!(read(&dir.join("memory.max")), MEM);
    let o = p
        .run(&["exec", "rl1", "cat", "/sys/fs/cgroup/memory.max"])
        .expect_ok();
    assert_eq!(o.stdout.trim(), MEM);
    let o = p.run(&["exec", "rl1", "sh", "-c", "exit 4"]);
    assert_eq!(o.code(), 4, "{o}");
    let o = p.run(&["stop", "-t", "20", "rl1"]).expect_ok();
    assert!(!o.stderr.contains("resorting to SIGKILL"), "{o}");
    let o = p
        .run(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "rl1",
        ])
        .expect_ok();
    assert_eq!(o.stdout.trim(), "exited 0");
    p.run(&["rm", "rl1"]).expect_ok();
    assert!(user_unit_gone(&unit), "{unit} left in the user manager");
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(!state.exists(), "{} left", state.display());
}

#[test]
fn husk_under_rootless_podman() {
    if rootless_lane("husk_under_rootless_podman") {
        return;
    }
    podman(&husk_bin());
}

#[test]
fn runc_under_rootless_podman() {
    if rootless_lane("runc_under_rootless_podman")
        || missing_tool(&runc_bin().to_string_lossy(), "runc")
    {
        return;
    }
    podman(&runc_bin());
}
