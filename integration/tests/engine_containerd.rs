//! containerd 1.6 (Debian's) through ctr, with the runtime under test as the runc shim's
//! binary (`integration::Containerd`: a private daemon, namespace and wrapper per test).
//! Every test checks that the wrapper, so the runtime under test, was called for its
//! containers, what the containers saw, and that nothing is left afterwards.
//! Scripts whose whole output is checked end with a short sleep: ctr 1.6 can stop copying
//! a container's stdout when the exit event arrives first (seen once under load, with output
//! cut after the third line and exit status 0).
//! ctr 1.6 has no `update` command: containerd's update path (the shim's `update --resources
//! -`) is driven by docker's test (engine_docker.rs), which runs through containerd.

use std::path::Path;
use std::time::Duration;

use integration::*;

fn husk_state(c: &Containerd, id: &str) {
    if is_runc() {
        return;
    }
    let st = std::fs::read_to_string(c.runtime_root().join(id).join("state.json"))
        .unwrap_or_else(|e| panic!("no runtime state for {id}: {e}"));
    assert!(st.contains("\"phase\""), "not husk's state.json: {st}");
}

/// A spec for `ctr run --config`: the runc-spec-like default over a fresh busybox rootfs (an
/// absolute root, as ctr then mounts no snapshot), in the namespace's cgroup.
fn spec_file(c: &Containerd, id: &str, edit: impl FnOnce(&mut Value)) -> String {
    let rootfs = c.dir.join(format!("rootfs-{id}"));
    make_rootfs(&rootfs);
    let mut v = default_config(&["true"]);
    v["root"] = json!({"path": rootfs, "readonly": true});
    v["linux"]["cgroupsPath"] = json!(c.cgroup(id));
    edit(&mut v);
    let p = c.dir.join(format!("spec-{id}.json"));
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn output_exit_codes_and_missing_executable() {
    let Some(c) = Containerd::new() else { return };
    let id = format!("out{}", unique());
    let o = c.run(
        &["--rm"],
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(o.code(), 3, "{o}");
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{o}");
    c.wrapper.assert_called("create", &id);
    // The runtime's JSON-log message is what ctr shows.
    let id2 = format!("missing{}", unique());
    let o = c.run(&["--rm"], &id2, &["/no/such/binary"]);
    assert_ne!(o.code(), 0, "{o}");
    // husk's line follows "OCI runtime create failed: " verbatim (runc adds its own prefix).
    let msg = "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory";
    let want = if is_runc() {
        msg.to_string()
    } else {
        format!("OCI runtime create failed: {msg}")
    };
    assert!(o.stderr.contains(&want), "{o}");
    c.wrapper.assert_called("create", &id2);
    // ctr keeps the container record of a failed task; removing it is ctr's part.
    let _ = c.ctr(&["containers", "delete", &id2]);
    c.assert_clean();
}

#[test]
fn detached_exec_ps_signal_pause_and_kill() {
    let Some(c) = Containerd::new() else { return };
    let id = format!("d{}", unique());
    c.run(
        &["--detach"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1 > /tmp/sig' USR1; while :; do sleep 0.1; done",
        ],
    )
    .expect_ok();
    husk_state(&c, &id);
    let line = c.wait_status(&id, "RUNNING");
    let pid = line.split_whitespace().nth(1).unwrap().to_string();
    let o = c
        .ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            &id,
            "sh",
            "-c",
            "echo exec-ok; cat /proc/1/cmdline",
        ])
        .expect_ok();
    assert!(o.stdout.starts_with("exec-ok\nsh"), "{o}");
    let o = c.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e2",
        &id,
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(o.code(), 4, "{o}");
    c.wrapper.assert_called("exec", &id);
    let o = in_pty(&c.ctr_cmd(&["tasks", "exec", "--tty", "--exec-id", "e3", &id, "tty"]));
    assert!(o.stdout.contains("/dev/pts/"), "{o}");
    let o = c.ctr(&["tasks", "ps", &id]).expect_ok();
    assert!(
        o.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid)),
        "{o}"
    );
    c.wrapper.assert_called("ps", &id);
    c.ctr(&["tasks", "kill", "--signal", "SIGUSR1", &id])
        .expect_ok();
    let mut got = String::new();
    for _ in 0..50 {
        got = c
            .ctr(&["tasks", "exec", "--exec-id", "cat", &id, "cat", "/tmp/sig"])
            .stdout;
        if got.contains("got-usr1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.trim(), "got-usr1");
    c.ctr(&["tasks", "pause", &id]).expect_ok();
    c.wait_status(&id, "PAUSED");
    c.wrapper.assert_called("pause", &id);
    c.ctr(&["tasks", "resume", &id]).expect_ok();
    c.wait_status(&id, "RUNNING");
    // SIGTERM: pid 1 has no handler, so the kernel drops it; SIGKILL then ends it.
    c.ctr(&["tasks", "kill", &id]).expect_ok();
    std::thread::sleep(Duration::from_millis(500));
    c.wait_status(&id, "RUNNING");
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .expect_ok();
    c.wait_status(&id, "STOPPED");
    let o = c.ctr(&["tasks", "delete", &id]).expect_ok();
    assert!(o.stdout.contains("137") || o.stderr.contains("137"), "{o}");
    c.wrapper.assert_called("delete", &id);
    c.ctr(&["containers", "delete", &id]).expect_ok();
    c.assert_clean();
}

#[test]
fn limits_in_the_cgroup_and_by_effect() {
    let Some(c) = Containerd::new() else { return };
    let id = format!("oom{}", unique());
    let o = c.run(
        &["--rm", "--memory-limit", "33554432"],
        &id,
        &["sh", "-c", "head -c 67108864 /dev/zero | tail > /dev/null"],
    );
    assert_eq!(o.code(), 137, "{o}");
    c.wrapper.assert_called("create", &id);
    let id = format!("cpu{}", unique());
    c.run(
        &[
            "--detach",
            "--memory-limit",
            "50331648",
            "--cpu-shares",
            "512",
            "--cpu-quota",
            "20000",
            "--cpu-period",
            "100000",
        ],
        &id,
        &["sh", "-c", "while :; do :; done"],
    )
    .expect_ok();
    let cg = c.cgroup(&id);
    let read = |h: &str, f: &str| {
        let p = format!("/sys/fs/cgroup/{h}{cg}/{f}");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .to_string()
    };
    if !is_pure_v2() {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "50331648");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "20000");
        // By effect: the busy loop is held to 20% of a cpu.
        wait_throttled(Path::new(&format!("/sys/fs/cgroup/cpu{cg}/cpu.stat")));
    }
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .expect_ok();
    c.wait_status(&id, "STOPPED");
    c.ctr(&["tasks", "delete", &id]).expect_ok();
    c.ctr(&["containers", "delete", &id]).expect_ok();
    // pids: ctr has no flag, so a spec with linux.resources.pids.
    let id = format!("pids{}", unique());
    let spec = spec_file(&c, &id, |v| {
        v["process"]["args"] = json!(["sh", "-c",
            "cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & echo forked $i; done"]);
        v["linux"]["resources"] = json!({"pids": {"limit": 10}});
    });
    let o = c.ctr(&["run", "--rm", "--config", &spec, &id]);
    let forked = o.stdout.lines().filter(|l| l.starts_with("forked")).count();
    assert!(
        (5..=9).contains(&forked),
        "{forked} forks under pids 10: {o}"
    );
    if !is_pure_v2() {
        assert_eq!(o.stdout.lines().next(), Some("10"), "{o}");
    }
    c.wrapper.assert_called("create", &id);
    c.assert_clean();
}

#[test]
fn process_and_filesystem_options() {
    let Some(c) = Containerd::new() else { return };
    let host_dir = c.dir.join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from-host\n").unwrap();
    let bind = format!(
        "type=bind,src={},dst=/host,options=rbind:ro",
        host_dir.display()
    );
    let id = format!("fs{}", unique());
    let o = c
        .run(
            &[
                "--rm",
                "--env",
                "FOO=bar",
                "--cwd",
                "/tmp",
                "--read-only",
                "--mount",
                "type=tmpfs,src=tmpfs,dst=/t,options=size=1m",
                "--mount",
                &bind,
            ],
            &id,
            &[
                "sh",
                "-c",
                "echo $FOO; pwd; touch /x 2>/dev/null || echo root-ro; touch /t/y && echo tmpfs-rw; \
                 cat /host/f; touch /host/z 2>/dev/null || echo bind-ro; \
                 head -c 10 /proc/timer_list | wc -c; ls /sys/firmware | wc -l; sleep 0.2",
            ],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        // masked: /proc/timer_list is /dev/null, /sys/firmware an empty tmpfs
        [
            "bar",
            "/tmp",
            "root-ro",
            "tmpfs-rw",
            "from-host",
            "bind-ro",
            "0",
            "0"
        ],
        "{o}"
    );
    c.wrapper.assert_called("create", &id);
    // What ctr has no flags for comes in a spec: user, hostname, sysctl, rlimits.
    let id = format!("spec{}", unique());
    let spec = spec_file(&c, &id, |v| {
        v["process"]["args"] =
                json!(["sh", "-c",
            "id -u; id -g; hostname; cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn; sleep 0.2"]);
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 333, "hard": 444}]);
        v["hostname"] = json!("ctrh");
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    let o = c.ctr(&["run", "--rm", "--config", &spec, &id]).expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["1000", "1000", "ctrh", "1", "333", "444"],
        "{o}"
    );
    c.wrapper.assert_called("create", &id);
    // A terminal for run: the shim passes --console-socket.
    let id = format!("tty{}", unique());
    let w = c.wrapper.path.to_string_lossy().into_owned();
    let o = in_pty(&c.ctr_cmd(&[
        "run",
        "--rm",
        "--tty",
        "--runc-binary",
        &w,
        CTR_IMAGE,
        &id,
        "tty",
    ]));
    assert!(o.stdout.contains("/dev/pts/0"), "{o}");
    assert!(c
        .wrapper
        .assert_called("create", &id)
        .contains("--console-socket"));
    c.assert_clean();
}

#[test]
fn user_namespace() {
    let Some(c) = Containerd::new() else { return };
    let id = format!("userns{}", unique());
    // ctr drops --runc-binary here: the shim finds the wrapper as `runc` on PATH.
    let o = c
        .run(
            &[
                "--rm",
                "--uidmap",
                "0:100000:65536",
                "--gidmap",
                "0:100000:65536",
            ],
            &id,
            &[
                "sh",
                "-c",
                "cat /proc/self/uid_map /proc/self/gid_map; id -u",
            ],
        )
        .expect_ok();
    let lines: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0", "100000", "65536"],
            vec!["0", "100000", "65536"],
            vec!["0"]
        ],
        "{o}"
    );
    c.wrapper.assert_called("create", &id);
    c.assert_clean();
}

#[test]
fn fifty_containers_in_parallel() {
    let Some(c) = Containerd::new() else { return };
    let base = unique();
    let w = c.wrapper.path.to_string_lossy().into_owned();
    let outs: Vec<(String, Output)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let id = format!("par{base}x{i}");
                let cmd = c.ctr_cmd(&[
                    "run",
                    "--rm",
                    "--runc-binary",
                    &w,
                    CTR_IMAGE,
                    &id,
                    "sh",
                    "-c",
                    &format!("echo hello-{i}"),
                ]);
                s.spawn(move || (id, bounded(cmd, Duration::from_secs(300))))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (id, o)) in outs.iter().enumerate() {
        assert_eq!(o.code(), 0, "{id}: {o}");
        assert_eq!(o.stdout, format!("hello-{i}\n"), "{id}: {o}");
        c.wrapper.assert_called("create", id);
    }
    c.assert_clean();
}

#[test]
fn container_survives_a_daemon_restart() {
    let Some(mut c) = Containerd::new() else {
        return;
    };
    let id = format!("live{}", unique());
    c.run(&["--detach"], &id, &["sleep", "1000"]).expect_ok();
    let before = c.wait_status(&id, "RUNNING");
    c.restart();
    let after = c.wait_status(&id, "RUNNING");
    assert_eq!(before, after, "the task changed across the restart");
    let o = c
        .ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "after",
            &id,
            "echo",
            "still-here",
        ])
        .expect_ok();
    assert_eq!(o.stdout, "still-here\n");
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .expect_ok();
    c.wait_status(&id, "STOPPED");
    c.ctr(&["tasks", "delete", &id]).expect_ok();
    c.ctr(&["containers", "delete", &id]).expect_ok();
    c.wrapper.assert_called("delete", &id);
    c.assert_clean();
}

#[test]
fn resource_view_by_annotation() {
    if skip_for_runc("husk's resource view") {
        return;
    }
    let Some(c) = Containerd::new() else { return };
    let id = format!("view{}", unique());
    // ctr puts the annotation in the spec it hands the shim, which hands it to husk.
    let o = c.run(
        &[
            "--rm",
            "--memory-limit",
            "268435456",
            "--annotation",
            "io.github.husk.resource-view=on",
        ],
        &id,
        &[
            "sh",
            "-c",
            "head -1 /proc/meminfo; free | grep Mem: | tr -s ' ' | cut -d' ' -f2; \
             grep -c fuse.husk-procview /proc/self/mountinfo; sleep 0.2",
        ],
    );
    assert!(o.ok(), "{o}");
    // The file (the server's) and sysinfo(2) (busybox free, the server as seccomp agent).
    assert_eq!(o.stdout, "MemTotal:         262144 kB\n262144\n8\n", "{o}");
    c.wrapper.assert_called("create", &id);
    // The last container of the shim's state root is gone, and so is its server.
    let dir = c.runtime_root().join(".procview");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while dir.exists() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!dir.exists(), "{} left", dir.display());
    c.assert_clean();
}
