//! Rootless podman (Debian's 4.3, as scripts/setup's `huskrl` user) with the runtime under
//! test registered as `husk`, each test with its own podman configuration, storage and
//! XDG_RUNTIME_DIR (`integration::rootless_podman::RlPodman`). Podman runs the runtime inside
//! its own user namespace (the user's ID and its /etc/subuid range), as root there, and passes
//! no --root: the runtime's state goes to its default root, $XDG_RUNTIME_DIR/husk (runc:
//! /runc), which every test asserts is empty at the end, as it asserts that no process is left
//! in podman's user namespace. The same file runs against runc (HUSK_BIN=/usr/sbin/runc in
//! scripts/test).

use integration::rootless_podman::{RlPodman, RL_IMAGE};
use integration::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// A line of `text` split into fields equals `want`'s fields (uid_map lines are padded).
fn has_line(text: &str, want: &str) -> bool {
    let want: Vec<&str> = want.split_whitespace().collect();
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

#[test]
fn run_rm_output_exit_code_and_podmans_user_namespace() {
    let Some(p) = RlPodman::new() else { return };
    let info = p
        .run(&["info", "--format", "{{.Host.OCIRuntime.Path}}"])
        .expect_ok();
    assert_eq!(info.stdout.trim(), husk_bin().to_string_lossy());
    let o = p.run_image(
        &[],
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; cat /proc/self/uid_map /proc/self/gid_map; id -u; \
             echo x > /dev/null && echo null-ok; grep -c ' /dev/null ' /proc/self/mountinfo; \
             exit 7",
        ],
    );
    assert_eq!(o.code(), 7, "{o}");
    assert!(o.stdout.starts_with("out\n"), "{o}");
    assert!(o.stderr.contains("err"), "{o}");
    let u = &p.rl.user;
    // The container is in podman's user namespace: 0 is the user, 1.. its subordinate range.
    for line in [
        format!("0 {} 1", u.uid),
        format!("1 {} {}", u.subuid.0, u.subuid.1),
        format!("0 {} 1", u.gid),
        format!("1 {} {}", u.subgid.0, u.subgid.1),
    ] {
        assert!(has_line(&o.stdout, &line), "no `{line}`: {o}");
    }
    let tail: Vec<&str> = o.stdout.lines().rev().take(3).collect();
    // Root in the container; /dev/null usable and bind-mounted from the host (a user
    // namespace cannot mknod).
    assert_eq!(tail, ["1", "null-ok", "0"], "{o}");
    p.assert_clean();
}

#[test]
fn detached_exec_tty_stop_escalates_and_rm() {
    let Some(p) = RlPodman::new() else { return };
    p.run(&[
        "run",
        "-d",
        "--name",
        "d1",
        RL_IMAGE,
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 0.1; done",
    ])
    .expect_ok();
    assert_eq!(p.inspect("d1", "{{.State.Status}}"), "running");
    // conmon and the container live in podman's user namespace (the leftovers check relies
    // on it).
    let pids = p.inspect("d1", "{{.State.Pid}} {{.State.ConmonPid}}");
    let pids: Vec<i32> = pids
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let procs = p.processes();
    for pid in &pids {
        assert!(procs.contains(pid), "{pid} not in {procs:?}");
    }
    let o = p
        .run(&[
            "exec",
            "d1",
            "sh",
            "-c",
            "echo exec-ok; id -u; cat /proc/1/cmdline",
        ])
        .expect_ok();
    assert!(o.stdout.starts_with("exec-ok\n0\nsh"), "{o}");
    let o = p.run(&["exec", "d1", "sh", "-c", "exit 4"]);
    assert_eq!(o.code(), 4, "{o}");
    // An interactive shell on a terminal, typed into.
    let o = in_pty_input(
        &p.command(&["exec", "-it", "d1", "sh"]),
        "tty; [ -t 0 ] && echo in-a-tty\necho typed-$((6*7))\nexit\n",
    );
    assert_eq!(o.code(), 0, "{o}");
    assert!(o.stdout.contains("/dev/pts/"), "{o}");
    assert!(o.stdout.contains("in-a-tty"), "{o}");
    assert!(o.stdout.contains("typed-42"), "{o}");
    // TERM is ignored: after 1 s podman kills.
    let o = p.run(&["stop", "-t", "1", "d1"]).expect_ok();
    assert!(o.stderr.contains("resorting to SIGKILL"), "{o}");
    assert_eq!(
        p.inspect("d1", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    for pid in pids {
        assert!(!pid_alive(pid as i64), "{pid} outlived podman stop");
    }
    p.run(&["rm", "d1"]).expect_ok();
    p.assert_clean();
}

#[test]
fn a_memory_limit_is_ignored_with_podmans_warning_on_v1() {
    if is_pure_v2() {
        eprintln!(
            "skipped: a cgroup v2 host; rootless limits need a delegated user slice, \
             tested in the systemd lane"
        );
        return;
    }
    let Some(p) = RlPodman::new() else { return };
    let o = p
        .run_image(&["--memory", "64m"], &["sh", "-c", "echo ran-$((1+1))"])
        .expect_ok();
    assert_eq!(o.stdout, "ran-2\n", "{o}");
    assert!(
        o.stderr.contains(
            "Resource limits are not supported and ignored on cgroups V1 rootless systems"
        ),
        "{o}"
    );
    p.assert_clean();
}

#[test]
fn a_read_only_bind_from_the_users_directory() {
    let Some(p) = RlPodman::new() else { return };
    let data = p.rl.dir().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("f"), "from-the-user\n").unwrap();
    p.rl.give_tree(&data);
    let v = format!("{}:/data:ro", data.display());
    let o = p.run_image(
        &["-v", &v],
        &[
            "sh",
            "-c",
            "cat /data/f; stat -c '%u:%g' /data/f; touch /data/new 2>&1; echo rc=$?",
        ],
    );
    assert_eq!(o.code(), 0, "{o}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    // The user's file is root's in podman's namespace.
    assert_eq!(lines[..2], ["from-the-user", "0:0"], "{o}");
    assert!(
        o.stdout.contains("Read-only file system") && o.stdout.contains("rc=1"),
        "{o}"
    );
    assert!(!data.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("f")).unwrap(),
        "from-the-user\n"
    );
    p.assert_clean();
}

#[test]
fn the_runtime_under_test_ran_as_root_in_podmans_user_namespace() {
    let Some(p) = RlPodman::with_wrapper() else {
        return;
    };
    let info = p
        .run(&["info", "--format", "{{.Host.OCIRuntime.Path}}"])
        .expect_ok();
    assert_eq!(info.stdout.trim(), p.runtime.to_string_lossy());
    p.run(&["run", "-d", "--name", "w1", RL_IMAGE, "sleep", "1000"])
        .expect_ok();
    let id = p.inspect("w1", "{{.OCIRuntime}} {{.Id}}");
    let (runtime, id) = id.split_once(' ').unwrap();
    assert_eq!(runtime, "husk");
    // Its state is in its default root under the test's XDG_RUNTIME_DIR.
    assert!(
        p.rl.state_root().join(id).join("state.json").is_file(),
        "no state for {id} in {}",
        p.rl.state_root().display()
    );
    assert_eq!(p.rl.state_entries(), [id]);
    p.run(&["rm", "--force", "--time", "0", "w1"]).expect_ok();
    let calls = p.calls();
    let ns = p.userns().expect("podman's pause process");
    let u = &p.rl.user;
    let map = format!("0:{}:1,1:{}:{},", u.uid, u.subuid.0, u.subuid.1);
    for verb in ["create", "start", "delete"] {
        let call = calls
            .iter()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.contains(&verb) && w.last() == Some(&id)
            })
            .unwrap_or_else(|| panic!("no `{verb} ... {id}` call: {calls:#?}"));
        // Root in podman's namespace, and no --root: the default state root.
        assert!(
            call.starts_with(&format!("euid=0 ns={ns} map={map} | ")),
            "{call}"
        );
        assert!(!call.contains("--root"), "{call}");
    }
    p.assert_clean();
}

#[test]
fn uidmap_nests_a_user_namespace_inside_podmans() {
    let Some(p) = RlPodman::new() else { return };
    let shared = p.rl.dir().join("shared");
    std::fs::create_dir(&shared).unwrap();
    // Container root is podman's uid 1, not the directory's owner.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let v = format!("{}:/shared", shared.display());
    let o = p
        .run_image(
            &["--uidmap", "0:1:1000", "--gidmap", "0:1:1000", "-v", &v],
            &[
                "sh",
                "-c",
                "cat /proc/self/uid_map /proc/self/gid_map; touch /shared/f && id -u",
            ],
        )
        .expect_ok();
    // The maps are relative to podman's namespace: its 1 is the first subordinate ID.
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "1000", "0", "1", "1000", "0"],
        "{o}"
    );
    let m = std::fs::metadata(shared.join("f")).unwrap();
    let u = &p.rl.user;
    assert_eq!((m.uid(), m.gid()), (u.subuid.0, u.subgid.0));
    p.assert_clean();
}
