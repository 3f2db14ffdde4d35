//! Rootless: the runtime run by the unprivileged test user (scripts/setup's `huskrl`), state
//! under its own XDG_RUNTIME_DIR. The same file runs against runc (HUSK_BIN=runc in
//! scripts/test): where runc behaves otherwise on purpose the test says so and skips for it.

use integration::rootless::{has_line, Rootless};
use integration::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn run_with_a_single_id_mapping_needs_no_newuidmap() {
    let Some(rl) = Rootless::new() else { return };
    let b = rl.bundle(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; echo setgroups=$(cat /proc/self/setgroups); id -u",
    ]);
    let id = rl.id();
    // No newuidmap on PATH: the single line mapping the user's own ID is written directly.
    let o = rl
        .cmd(&["run", "--bundle", &b.path_str(), &id])
        .env("PATH", "/nonexistent")
        .run()
        .expect_ok();
    let uid = rl.user.uid;
    assert!(has_line(&o.stdout, &format!("0 {uid} 1")), "{o}");
    assert!(has_line(&o.stdout, &format!("0 {} 1", rl.user.gid)), "{o}");
    // The kernel allows the direct gid_map write only once setgroups is denied.
    assert!(o.stdout.contains("setgroups=deny"), "{o}");
    assert_eq!(o.stdout.lines().last(), Some("0"), "{o}");
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn a_65536_id_mapping_goes_through_newuidmap() {
    let Some(rl) = Rootless::new() else { return };
    let shared = rl.dir().join("shared");
    std::fs::create_dir(&shared).unwrap();
    rl.give(&shared);
    let mut b = rl.bundle(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; touch /shared/f; chown 1000:2000 /shared/f && echo chowned",
    ]);
    let (uids, gids) = rl.ranged_maps();
    b.edit(|c| {
        c["linux"]["uidMappings"] = uids;
        c["linux"]["gidMappings"] = gids;
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_CHOWN"));
        }
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "bind",
            "source": shared.to_str().unwrap(), "options": ["rbind", "rw"]}));
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_ok();
    let (su, sg) = (rl.user.subuid.0, rl.user.subgid.0);
    assert!(has_line(&o.stdout, &format!("1 {su} 65536")), "{o}");
    assert!(has_line(&o.stdout, &format!("1 {sg} 65536")), "{o}");
    assert!(o.stdout.contains("chowned"), "{o}");
    // Container uid 1000 is the 1000th subordinate ID on the host.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(shared.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (su + 999, sg + 1999));
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn lifecycle_create_start_exec_kill_delete() {
    let Some(rl) = Rootless::new() else { return };
    let b = rl.bundle(&["sleep", "600"]);
    let id = rl.id();
    rl.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let state = |rl: &Rootless| -> Value {
        serde_json::from_str(&rl.exec(&["state", &id]).expect_ok().stdout).unwrap()
    };
    let st = state(&rl);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap() as i32;
    // State lives under the user's runtime dir, owned by the user.
    use std::os::unix::fs::MetadataExt;
    let sd = rl.state_root().join(&id);
    assert_eq!(std::fs::metadata(&sd).unwrap().uid(), rl.user.uid);
    // The init runs as the user on the host.
    let host_uid = std::fs::metadata(format!("/proc/{pid}")).unwrap().uid();
    assert_eq!(host_uid, rl.user.uid);
    rl.exec(&["start", &id]).expect_ok();
    assert_eq!(state(&rl)["status"], "running");
    let o = rl
        .exec(&[
            "exec",
            &id,
            "sh",
            "-c",
            "id -u; cat /proc/1/cmdline | tr '\\0' ' '",
        ])
        .expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["0", "sleep 600 "],
        "{o}"
    );
    let list = rl.exec(&["list", "-q"]).expect_ok();
    assert_eq!(list.stdout.trim(), id);
    rl.exec(&["kill", &id, "KILL"]).expect_ok();
    let t0 = std::time::Instant::now();
    while state(&rl)["status"] != "stopped" {
        assert!(t0.elapsed().as_secs() < 10, "not stopped: {}", state(&rl));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    rl.exec(&["delete", &id]).expect_ok();
    assert_eq!(rl.leftovers(&[pid]), Vec::<String>::new());
}

#[test]
fn spec_rootless_runs_as_generated() {
    let Some(rl) = Rootless::new() else { return };
    let dir = rl.dir().join("gen");
    std::fs::create_dir(&dir).unwrap();
    make_rootfs(&dir.join("rootfs"));
    rl.give_tree(&dir);
    rl.exec(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
        .expect_ok();
    let c: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    // The mapping is the caller's own IDs, taken from the caller.
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": rl.user.uid, "size": 1}])
    );
    assert_eq!(
        c["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": rl.user.gid, "size": 1}])
    );
    // Run as generated: a terminal and `sh`, fed from a pty.
    let id = rl.id();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        &format!("--reuid={}", rl.user.uid),
        &format!("--regid={}", rl.user.gid),
        "--init-groups",
        "--",
        &husk_bin().to_string_lossy(),
        "run",
        "--bundle",
        dir.to_str().unwrap(),
        &id,
    ])
    .env("XDG_RUNTIME_DIR", rl.runtime_dir())
    .env("HOME", rl.dir());
    let o = in_pty_input(
        &cmd,
        "echo uid=$(id -u) map=$(cat /proc/self/uid_map); exit 7\n",
    );
    assert_eq!(o.status.code(), Some(7), "{}", o.stdout);
    let want = format!("map= 0 {} 1", rl.user.uid);
    let seen: String = o.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        seen.contains("uid=0") && seen.contains(&want),
        "{}",
        o.stdout
    );
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn a_mapping_outside_the_subordinate_ranges_is_refused() {
    let Some(rl) = Rootless::new() else { return };
    let mut b = rl.bundle(&["true"]);
    let (su, n) = rl.user.subuid;
    let outside = su + n; // the first ID after the user's range
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": rl.user.uid, "size": 1},
            {"containerID": 1, "hostID": outside, "size": 10}]);
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_err();
    if !is_runc() {
        o.expect_msg("newuidmap refused uid_map")
            .expect_msg(&format!("1 {outside} 10"))
            .expect_msg("/etc/subuid");
    }
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn a_range_without_newuidmap_is_a_clear_error() {
    let Some(rl) = Rootless::new() else { return };
    let mut b = rl.bundle(&["true"]);
    let (uids, gids) = rl.ranged_maps();
    b.edit(|c| {
        c["linux"]["uidMappings"] = uids;
        c["linux"]["gidMappings"] = gids;
    });
    let id = rl.id();
    let o = rl
        .cmd(&["run", "--bundle", &b.path_str(), &id])
        .env("PATH", "/nonexistent")
        .run()
        .expect_err();
    if !is_runc() {
        o.expect_msg("needs newuidmap").expect_msg("not on $PATH");
    }
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn a_rootfs_the_user_cannot_read_is_refused() {
    let Some(rl) = Rootless::new() else { return };
    let b = rl.bundle(&["true"]);
    // root's, mode 0700: the user cannot enter it.
    host("chown", &["0:0", b.rootfs().to_str().unwrap()]);
    std::fs::set_permissions(b.rootfs(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let id = rl.id();
    let o = rl.run(&b, &id).expect_err();
    if is_runc() {
        o.expect_msg("permission denied");
    } else {
        o.expect_msg("root.path").expect_msg("permission denied");
    }
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn no_user_namespace_is_refused() {
    let Some(rl) = Rootless::new() else { return };
    let mut b = rl.bundle(&["true"]);
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        let l = c["linux"].as_object_mut().unwrap();
        l.remove("uidMappings");
        l.remove("gidMappings");
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_err();
    if !is_runc() {
        o.expect_msg("an unprivileged user can run a container only in a user namespace");
    } else {
        o.expect_msg("rootless container requires user namespaces");
    }
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn additional_gids_on_an_own_gid_mapping_are_refused() {
    let Some(rl) = Rootless::new() else { return };
    let mut b = rl.bundle(&["true"]);
    b.edit(|c| c["process"]["user"]["additionalGids"] = json!([5]));
    let id = rl.id();
    let o = rl.run(&b, &id).expect_err();
    if !is_runc() {
        o.expect_msg("process.user.additionalGids [5]")
            .expect_msg("setgroups is denied");
    }
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn a_read_only_bind_from_the_users_home() {
    let Some(rl) = Rootless::new() else { return };
    let home = rl.dir().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("note"), "from-home\n").unwrap();
    rl.give_tree(&home);
    let mut b = rl.bundle(&[
        "sh",
        "-c",
        "cat /data/note; touch /data/x 2>&1; grep ' /data ' /proc/self/mountinfo",
    ]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind",
            "source": home.to_str().unwrap(), "options": ["rbind", "ro"]}));
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_ok();
    assert!(o.stdout.starts_with("from-home\n"), "{o}");
    assert!(o.stdout.contains("Read-only file system"), "{o}");
    let line = o.stdout.lines().find(|l| l.contains(" /data ")).unwrap();
    let opts = line.split(' ').nth(5).unwrap();
    assert!(opts.split(',').any(|o| o == "ro"), "{line}");
    assert!(!home.join("x").exists());
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn tmpfs_devices_and_masked_paths() {
    let Some(rl) = Rootless::new() else { return };
    let mut b = rl.bundle(&[
        "sh",
        "-c",
        "grep ' /scratch ' /proc/self/mountinfo; echo x > /dev/null && echo null-ok; \
         stat -c 'null=%t,%T' /dev/null; head -c 4 /dev/zero | od -An -tx1; \
         stat -c 'keys=%t,%T' /proc/keys; ls /proc/acpi | wc -l; stat -c 'fuse=%t,%T' /dev/fuse",
    ]);
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "size=1m", "mode=1777"]}));
        // A device from the config: bound from the host (mknod is not allowed).
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10,
                                        "minor": 229, "fileMode": 438}]);
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let scratch = lines[0];
    assert!(
        scratch.contains(" - tmpfs ") && scratch.contains("size=1024k"),
        "{o}"
    );
    assert_eq!(lines[1], "null-ok", "{o}");
    assert_eq!(lines[2], "null=1,3", "{o}");
    assert_eq!(lines[3].trim(), "00 00 00 00", "{o}");
    // maskedPaths: /proc/keys is /dev/null bound over it, /proc/acpi an empty tmpfs.
    assert_eq!(lines[4], "keys=1,3", "{o}");
    assert_eq!(lines[5].trim(), "0", "{o}");
    assert_eq!(lines[6], "fuse=a,e5", "{o}");
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn seccomp_applies() {
    let Some(rl) = Rootless::new() else { return };
    let mut b = rl.bundle(&[
        "sh",
        "-c",
        "mkdir /tmp/d 2>&1; echo mkdir=$?; grep Seccomp: /proc/self/status",
    ]);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 13}]});
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_ok();
    assert!(o.stdout.contains("Permission denied"), "{o}");
    assert!(o.stdout.contains("mkdir=1"), "{o}");
    assert!(has_line(&o.stdout, "Seccomp: 2"), "{o}");
    assert!(!b.rootfs().join("tmp/d").exists());
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn limits_without_a_delegated_cgroup_warn_once_and_run() {
    let Some(rl) = Rootless::new() else { return };
    // runc (1.1 and 1.5) fails such a config ("cannot set memory limit: container could not
    // join or create cgroup"); husk runs it without the limits and says so (docs/rootless.md).
    if skip_for_runc("runc refuses limits without a cgroup") {
        return;
    }
    if std::path::Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists() {
        eprintln!("skipped: a cgroup v2 host; the systemd lane covers delegation");
        return;
    }
    let mut b = rl.bundle(&["sh", "-c", "echo ran"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    });
    let id = rl.id();
    let o = rl.run(&b, &id).expect_ok();
    assert_eq!(o.stdout, "ran\n", "{o}");
    let warnings: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.contains("rootless: no permission to create the cgroup"))
        .collect();
    assert_eq!(warnings.len(), 1, "{o}");
    assert!(
        warnings[0].contains(r#"[\"memory\", \"pids\"] not applied"#),
        "{o}"
    );
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn ps_kill_all_and_pause_without_a_cgroup() {
    let Some(rl) = Rootless::new() else { return };
    // runc 1.1 fails `kill --all` without a cgroup ("lstat : no such file or directory").
    if skip_for_runc("runc signals all processes only through a cgroup") {
        return;
    }
    if std::path::Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists() {
        eprintln!("skipped: a cgroup v2 host; the systemd lane covers delegation");
        return;
    }
    let b = rl.bundle(&["sh", "-c", "sleep 600 & sleep 600 & wait"]);
    let id = rl.id();
    rl.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let st: Value = serde_json::from_str(&rl.exec(&["state", &id]).expect_ok().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    // Without a cgroup, the processes of the container's pid namespace.
    let mut pids = Vec::new();
    let t0 = std::time::Instant::now();
    while pids.len() < 3 && t0.elapsed().as_secs() < 10 {
        let o = rl.exec(&["ps", "--format", "json", &id]).expect_ok();
        pids = serde_json::from_str::<Vec<i32>>(&o.stdout).unwrap();
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&pid));
    rl.exec(&["pause", &id])
        .expect_err()
        .expect_msg("rootless without permission to create one");
    rl.exec(&["kill", "--all", &id, "KILL"]).expect_ok();
    let t0 = std::time::Instant::now();
    while !rl.leftovers(&pids).iter().all(|l| l.starts_with("state")) {
        assert!(t0.elapsed().as_secs() < 10, "{:?}", rl.leftovers(&pids));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    rl.exec(&["delete", &id]).expect_ok();
    assert_eq!(rl.leftovers(&pids), Vec::<String>::new());
}

#[test]
fn joins_the_network_namespace_an_engine_made() {
    let Some(rl) = Rootless::new() else { return };
    // runc 1.1 wants uidMappings even for a joined user namespace (runc 1.2 reads them from
    // it); husk, like runc 1.2, refuses mappings for a namespace it does not create.
    if skip_for_runc("runc 1.1 needs mappings for a joined user namespace") {
        return;
    }
    // What rootless podman does: a user namespace with a network namespace (slirp4netns or
    // pasta would plumb it), held by a process; the container joins both by path.
    let holder = rl
        .cmd_as(
            "unshare",
            &[
                "--user",
                "--map-root-user",
                "--net",
                "sh",
                "-c",
                "ip link set lo up 2>/dev/null; echo ready; sleep 600",
            ],
        )
        .timeout(std::time::Duration::from_secs(5));
    let (mut child, _argv, out, _err) = holder.spawn();
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&out).unwrap_or_default().trim() != "ready" {
        assert!(t0.elapsed().as_secs() < 10, "the holder did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let hpid = child.id();
    // setpriv execs unshare, which forks nothing: the holder is the child itself, in its
    // namespaces once "ready" is written (by sh, the same process after exec).
    let netns = std::fs::read_link(format!("/proc/{hpid}/ns/net")).unwrap();
    let mut b = rl.bundle(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; cat /proc/net/dev | wc -l",
    ]);
    b.edit(|c| {
        set_ns(c, "user", Some(&format!("/proc/{hpid}/ns/user")));
        set_ns(c, "network", Some(&format!("/proc/{hpid}/ns/net")));
        let l = c["linux"].as_object_mut().unwrap();
        l.remove("uidMappings");
        l.remove("gidMappings");
    });
    let id = rl.id();
    let o = rl.run(&b, &id);
    let _ = child.kill();
    let _ = child.wait();
    let o = o.expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], netns.to_str().unwrap(), "{o}");
    // Two header lines and lo only.
    assert_eq!(lines[1].trim(), "3", "{o}");
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn the_library_from_an_unprivileged_program() {
    let Some(rl) = Rootless::new() else { return };
    if skip_for_runc("the library is husk's") {
        return;
    }
    // The `rootless` example of libcontainer, built with the tests (cargo builds examples).
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    let example = target.join("debug/examples/rootless");
    assert!(
        example.exists(),
        "{} missing: cargo build --examples",
        example.display()
    );
    let b = rl.bundle(&["sh", "-c", "echo lib-ran uid=$(id -u); exit 3"]);
    let o = rl
        .cmd_as(
            &example.to_string_lossy(),
            &[&rl.state_root().to_string_lossy(), &b.path_str()],
        )
        .run();
    assert_eq!(o.code(), 0, "{o}");
    assert!(o.stdout.contains("lib-ran uid=0"), "{o}");
    assert!(o.stdout.contains("exit code 3"), "{o}");
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn without_xdg_runtime_dir_the_error_says_what_to_do() {
    let Some(rl) = Rootless::new() else { return };
    let b = rl.bundle(&["true"]);
    let id = rl.id();
    // The default root is then root's (/run/husk, /run/runc), which the user cannot write.
    let o = rl
        .cmd(&["run", "--bundle", &b.path_str(), &id])
        .env("XDG_RUNTIME_DIR", "")
        .run()
        .expect_err()
        .expect_msg("permission denied");
    if !is_runc() {
        o.expect_msg(
            "/run/husk is root's: an unprivileged user sets XDG_RUNTIME_DIR or gives --root",
        );
    }
    assert!(!std::path::Path::new("/run/husk").join(&id).exists());
}

#[test]
fn rootless_false_makes_a_missing_cgroup_an_error() {
    let Some(rl) = Rootless::new() else { return };
    if std::path::Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists() {
        eprintln!("skipped: a cgroup v2 host; the systemd lane covers delegation");
        return;
    }
    let mut b = rl.bundle(&["true"]);
    b.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 50}}));
    let id = rl.id();
    let o = rl
        .exec(&["--rootless", "false", "run", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("permission denied");
    if !is_runc() {
        o.expect_msg("cgroup /sys/fs/cgroup/");
    }
    assert_eq!(rl.state_entries(), Vec::<String>::new());
    assert!(
        cgroup_dirs_for(&id).is_empty(),
        "{:?}",
        cgroup_dirs_for(&id)
    );
}

#[test]
fn a_binary_the_user_owns_runs_from_a_sealed_copy() {
    let Some(rl) = Rootless::new() else { return };
    if skip_for_runc("husk's own sealing") {
        return;
    }
    // The user's own copy of the binary: a container of the user could write it, so husk
    // re-executes from a sealed memfd (it cannot mount a read-only bind unprivileged).
    let own = rl.dir().join("husk-copy");
    std::fs::copy(husk_bin(), &own).unwrap();
    rl.give(&own);
    let b = rl.bundle(&["true"]);
    let id = rl.id();
    rl.cmd_as(
        &own.to_string_lossy(),
        &["create", "--bundle", &b.path_str(), &id],
    )
    .run()
    .expect_ok();
    let st: Value = serde_json::from_str(&rl.exec(&["state", &id]).expect_ok().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    // The init still runs husk's image (it waits for `start`).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:husk-exe"),
        "{exe:?}"
    );
    rl.exec(&["delete", "--force", &id]).expect_ok();
    // The root-owned binary under test needs no copy.
    let id = rl.id();
    rl.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let st: Value = serde_json::from_str(&rl.exec(&["state", &id]).expect_ok().stdout).unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", st["pid"])).unwrap();
    assert_eq!(exe, husk_bin().canonicalize().unwrap());
    rl.exec(&["delete", "--force", &id]).expect_ok();
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}
