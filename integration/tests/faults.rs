//! Faults an operator meets: a full state disk at `start`, a corrupt state.json, fds named by
//! `--preserve-fds` that the caller did not pass, a memory limit below what the init needs.

use std::fs;
use std::process::Command;
use std::time::Duration;

use integration::*;

/// A `--root` on a 256 KiB tmpfs of its own (unmounted with the temp dir).
fn small_root(rt: &Runtime) -> std::path::PathBuf {
    let root = rt.work().join("small-root");
    fs::create_dir_all(&root).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&root)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount a tmpfs at {}", root.display());
    root
}

/// Fills the filesystem of `dir` with one file (removed by the caller to make room again).
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let filler = dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    filler
}

#[test]
fn start_with_a_full_state_disk_fails_before_the_process_runs() {
    if skip_for_runc(
        "runc writes the state after the exec: its start fails with the process running",
    ) {
        return;
    }
    let rt = Runtime::new();
    let root = small_root(&rt);
    let root_s = root.to_string_lossy().to_string();
    let b = Bundle::sh("echo started; sleep 100");
    let id = rt.id();
    let out = rt.work().join("out");
    let husk = |args: &[&str]| {
        let mut all = vec!["--root", &root_s];
        all.extend_from_slice(args);
        rt.cmd_noroot(&all)
            .stdout_to(&rt.work().join("cmd.out"))
            .run()
    };
    rt.cmd_noroot(&["--root", &root_s, "create", "--bundle", &b.path_str(), &id])
        .stdout_to(&out)
        .run()
        .expect_ok();
    let filler = fill(&root);
    let o = husk(&["start", &id]).expect_err();
    assert!(o.stderr.contains("no space left on device"), "{o}");
    let state: Value = serde_json::from_str(&husk(&["state", &id]).expect_ok().stdout).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fs::read_to_string(&out).unwrap(), "", "the process ran");

    // Room again: the same container starts.
    fs::remove_file(filler).unwrap();
    husk(&["start", &id]).expect_ok();
    let state: Value = serde_json::from_str(&husk(&["state", &id]).expect_ok().stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    husk(&["delete", "--force", &id]).expect_ok();
    assert!(processes_for(&id).is_empty());
    assert!(cgroup_dirs_for(&id).is_empty());
}

#[test]
fn a_corrupt_state_is_warned_about_and_delete_force_still_ends_the_container() {
    if skip_for_runc("runc 1.5.1 fails delete --force of a container whose state.json is corrupt") {
        return;
    }
    let rt = Runtime::new();
    // A shared pid namespace: the init's child survives the init unless the cgroup is killed.
    let mut b = Bundle::sh("sleep 100 & sleep 100");
    b.edit(|c| remove_ns(c, "pid"));
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(processes_for(&id).len(), 2, "{:?}", processes_for(&id));
    fs::write(rt.root().join(&id).join("state.json"), "{corrupt").unwrap();

    let o = rt.exec(&["list", "-q"]).expect_ok();
    assert_eq!(o.stdout, "", "{o}");
    assert!(
        o.stderr.contains(&format!("skipping container {id}")),
        "{o}"
    );

    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, None);
}

#[test]
fn preserved_fds_must_be_open() {
    let rt = Runtime::new();
    let b = Bundle::sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    let id = rt.id();
    if !is_runc() {
        // runc 1.5.1 accepts it and gives the container its own internal fds in their place.
        rt.exec(&["run", "--preserve-fds", "2", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg("--preserve-fds 2: fd 3 is not open");
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
    let a = fs::File::open("/dev/null").unwrap();
    let c = fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let id = rt.id();
    let o = rt
        .cmd(&["run", "--preserve-fds", "2", "--bundle", &b.path_str(), &id])
        .fd(a.as_raw_fd(), 3)
        .fd(c.as_raw_fd(), 4)
        .run()
        .expect_ok();
    // 0-2, the two preserved, and ls's own directory fd.
    assert_eq!(o.stdout.trim(), "0 1 2 3 4 5", "{o}");

    // exec: the same check; the running container gets no process.
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    if !is_runc() {
        rt.exec(&["exec", "--preserve-fds", "2", &id, "true"])
            .expect_err()
            .expect_msg("--preserve-fds 2: fd 3 is not open");
        assert_eq!(processes_for(&id).len(), 1, "{:?}", processes_for(&id));
    }
    let o = rt
        .cmd(&["exec", "--preserve-fds", "2", &id, "ls", "/proc/self/fd"])
        .fd(a.as_raw_fd(), 3)
        .fd(c.as_raw_fd(), 4)
        .run()
        .expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3", "4", "5"],
        "{o}"
    );
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

#[test]
fn a_memory_limit_below_the_init_usage_is_named() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 4096}));
    let id = rt.id();
    // runc: "unable to set memory limit to 4096 (current usage: ...)"; husk: the init was
    // OOM-killed under "memory limit 4096".
    rt.run(&b, &id).expect_err().expect_msg("memory limit");
    let o = rt.run(&b, &rt.id()).expect_err();
    assert!(o.stderr.contains("4096"), "{o}");
}

/// Makes `/<name>` in every v1 hierarchy and the unified one (cpuset filled in).
fn precreate_cgroup(name: &str) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    for h in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = h.path().join(name);
        if h.path().join("cgroup.procs").exists() && fs::create_dir(&d).is_ok() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(h.path().join(f)) {
                    fs::write(d.join(f), v.trim()).unwrap();
                }
            }
            dirs.push(d);
        }
    }
    dirs
}

#[test]
fn a_pre_existing_cgroup_with_processes_is_refused_and_left_alone() {
    if skip_for_runc("runc 1.5.1 runs in it on a v1 host and leaves the cgroup behind") {
        return;
    }
    let rt = Runtime::new();
    let name = format!("husk-it-busy-{}-{}", std::process::id(), unique());
    let dirs = precreate_cgroup(&name);
    let pids_dir = dirs
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/pids"))
        .unwrap();
    let mut foreign = Command::new("sleep").arg("100").spawn().unwrap();
    fs::write(pids_dir.join("cgroup.procs"), foreign.id().to_string()).unwrap();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{name}")));
    let id = rt.id();
    rt.run(&b, &id)
        .expect_err()
        .expect_msg("invalid configuration: container's cgroup is not empty: 1 process(es)");
    // The other process is untouched, in its cgroup, which is still there.
    assert!(
        foreign.try_wait().unwrap().is_none(),
        "the foreign process was killed"
    );
    let procs = fs::read_to_string(pids_dir.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), foreign.id().to_string());
    assert!(!rt.root().join(&id).exists());
    foreign.kill().unwrap();
    foreign.wait().unwrap();
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}

#[test]
fn a_pre_existing_frozen_cgroup_does_not_hang_run() {
    let rt = Runtime::new();
    let name = format!("husk-it-frozen-{}-{}", std::process::id(), unique());
    let dirs = precreate_cgroup(&name);
    let freezer = dirs
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/freezer"))
        .unwrap();
    fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    let mut b = Bundle::sh("echo ran");
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/{name}")));
    let id = rt.id();
    // Refused, as runc refuses it (it used to hang: the init froze before it could report).
    rt.cmd(&["run", "--bundle", &b.path_str(), &id])
        .timeout(Duration::from_secs(20))
        .run()
        .expect_err()
        .expect_msg("container's cgroup unexpectedly frozen");
    assert!(!rt.root().join(&id).exists());
    let state = fs::read_to_string(freezer.join("freezer.state")).unwrap();
    assert_eq!(state.trim(), "FROZEN");
    fs::write(freezer.join("freezer.state"), "THAWED").unwrap();
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}

#[test]
fn a_created_container_killed_through_its_pidfd_reaches_stopped() {
    if skip_for_runc("runc 1.1.5 has no --pidfd-socket") {
        return;
    }
    use std::os::fd::AsRawFd;
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.id();
    let (sock, h) = fd_socket(&rt, "pidfd.sock");
    let sock = sock.to_string_lossy().to_string();
    rt.exec(&[
        "create",
        "--pidfd-socket",
        &sock,
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .expect_ok();
    let fd = h.join().unwrap().expect("no pidfd received");
    // SAFETY: plain syscall on a pidfd we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_eq!(rt.state(&id)["pid"], 0);
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}
