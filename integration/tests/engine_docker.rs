//! dockerd 20.10 (Debian's docker.io) with the runtime under test added as `husk`, the
//! default runtime (`integration::Docker`: a private daemon, cgroup parent and call-recording
//! wrapper per test). dockerd drives the runtime through its own containerd and the runc
//! shim, so these tests also cover containerd's `update` path. Each test checks that the
//! wrapper was called for its containers, what the containers saw, and that nothing is left.

use std::time::Duration;

use integration::*;

fn status(d: &Docker, name: &str) -> String {
    d.docker(&["inspect", "--format", "{{.State.Status}}", name])
        .expect_ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn output_exit_codes_and_missing_executable() {
    let Some(d) = Docker::new() else { return };
    let o = d
        .docker(&["info", "--format", "{{.DefaultRuntime}}"])
        .expect_ok();
    assert_eq!(o.stdout.trim(), "husk");
    let o = d.run_image(
        &["--name", "out"],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(o.code(), 3, "{o}");
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{o}");
    assert!(d.wrapper.calls().iter().any(|l| l.contains(" create ")));
    // husk's JSON-log message reaches the user verbatim, and docker maps it to 127.
    let o = d.run_image(&[], &["/no/such/binary"]);
    assert_eq!(o.code(), 127, "{o}");
    // husk's line follows "OCI runtime create failed: " verbatim (runc adds its own prefix).
    let msg = "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory";
    let want = if is_runc() {
        msg.to_string()
    } else {
        format!("OCI runtime create failed: {msg}")
    };
    assert!(o.stderr.contains(&want), "{o}");
    d.assert_clean();
}

#[test]
fn detached_exec_top_signal_pause_stop_rm() {
    let Some(d) = Docker::new() else { return };
    d.docker(&[
        "run",
        "--detach",
        "--name",
        "d1",
        DOCKER_IMAGE,
        "sh",
        "-c",
        "trap 'echo got-usr1 > /tmp/sig' USR1; while :; do sleep 0.1; done",
    ])
    .expect_ok();
    let id = d.id_of("d1");
    d.wrapper.assert_called("create", &id);
    let o = d
        .docker(&[
            "exec",
            "d1",
            "sh",
            "-c",
            "echo exec-ok; cat /proc/1/cmdline",
        ])
        .expect_ok();
    assert!(o.stdout.starts_with("exec-ok\nsh"), "{o}");
    let o = d.docker(&["exec", "d1", "sh", "-c", "exit 4"]);
    assert_eq!(o.code(), 4, "{o}");
    d.wrapper.assert_called("exec", &id);
    let o = in_pty(&d.docker_cmd(&["exec", "--tty", "d1", "tty"]));
    assert!(o.stdout.contains("/dev/pts/"), "{o}");
    let o = d.docker(&["top", "d1"]).expect_ok();
    assert!(o.stdout.contains("while"), "{o}");
    d.wrapper.assert_called("ps", &id);
    d.docker(&["kill", "--signal", "USR1", "d1"]).expect_ok();
    let mut got = String::new();
    for _ in 0..50 {
        got = d.docker(&["exec", "d1", "cat", "/tmp/sig"]).stdout;
        if got.contains("got-usr1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.trim(), "got-usr1");
    d.docker(&["pause", "d1"]).expect_ok();
    assert_eq!(status(&d, "d1"), "paused");
    d.wrapper.assert_called("pause", &id);
    d.docker(&["unpause", "d1"]).expect_ok();
    assert_eq!(status(&d, "d1"), "running");
    // pid 1 has no TERM handler: stop escalates to SIGKILL after the grace time.
    d.docker(&["stop", "--time", "1", "d1"]).expect_ok();
    assert_eq!(status(&d, "d1"), "exited");
    let o = d
        .docker(&["inspect", "--format", "{{.State.ExitCode}}", "d1"])
        .expect_ok();
    assert_eq!(o.stdout.trim(), "137");
    d.docker(&["rm", "d1"]).expect_ok();
    d.assert_clean();
}

#[test]
fn limits_update_in_the_cgroup_and_by_effect() {
    let Some(d) = Docker::new() else { return };
    let o = d.run_image(
        &["--memory", "32m", "--memory-swap", "32m"],
        &["sh", "-c", "head -c 67108864 /dev/zero | tail > /dev/null"],
    );
    assert_eq!(o.code(), 137, "{o}");
    let o = d.run_image(
        &["--pids-limit", "10"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & echo forked $i; done",
        ],
    );
    let forked = o.stdout.lines().filter(|l| l.starts_with("forked")).count();
    assert!(
        (5..=9).contains(&forked),
        "{forked} forks under --pids-limit 10: {o}"
    );
    d.docker(&[
        "run",
        "--detach",
        "--name",
        "lim",
        "--memory",
        "48m",
        "--cpu-shares",
        "512",
        "--cpu-quota",
        "20000",
        "--pids-limit",
        "30",
        DOCKER_IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .expect_ok();
    if !is_pure_v2() {
        assert_eq!(
            d.cgroup_file("memory", "lim", "memory.limit_in_bytes"),
            "50331648"
        );
        assert_eq!(d.cgroup_file("cpu", "lim", "cpu.shares"), "512");
        assert_eq!(d.cgroup_file("cpu", "lim", "cpu.cfs_quota_us"), "20000");
        assert_eq!(d.cgroup_file("pids", "lim", "pids.max"), "30");
        // By effect: the busy loop is held to 20% of a cpu.
        let stat = std::path::Path::new("/sys/fs/cgroup/cpu")
            .join(&d.parent)
            .join(d.id_of("lim"))
            .join("cpu.stat");
        wait_throttled(&stat);
    }
    // update: dockerd → containerd → shim → `update --resources -`.
    d.docker(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "64m",
        "--cpu-shares",
        "256",
        "--pids-limit",
        "40",
        "lim",
    ])
    .expect_ok();
    let id = d.id_of("lim");
    assert!(d
        .wrapper
        .assert_called("update", &id)
        .contains("--resources -"));
    if !is_pure_v2() {
        assert_eq!(
            d.cgroup_file("memory", "lim", "memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(d.cgroup_file("cpu", "lim", "cpu.shares"), "256");
        assert_eq!(d.cgroup_file("pids", "lim", "pids.max"), "40");
    }
    d.docker(&["rm", "--force", "lim"]).expect_ok();
    d.assert_clean();
}

#[test]
fn process_and_filesystem_options() {
    let Some(d) = Docker::new() else { return };
    let o = d
        .run_image(
            &[
                "--user",
                "1000:1000",
                "--env",
                "FOO=bar",
                "--workdir",
                "/tmp",
                "--hostname",
                "dockh",
            ],
            &["sh", "-c", "id -u; id -g; echo $FOO; pwd; hostname"],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["1000", "1000", "bar", "/tmp", "dockh"]
    );
    let host_dir = d.dir.join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from-host\n").unwrap();
    let vol = format!("{}:/host:ro", host_dir.display());
    let o = d
        .run_image(
            &[
                "--read-only",
                "--tmpfs",
                "/t",
                "--volume",
                &vol,
                "--sysctl",
                "net.ipv4.ip_forward=1",
                "--ulimit",
                "nofile=333:444",
            ],
            &[
                "sh",
                "-c",
                "touch /x 2>/dev/null || echo root-ro; touch /t/y && echo tmpfs-rw; \
                 cat /host/f; touch /host/z 2>/dev/null || echo bind-ro; \
                 cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn; \
                 head -c 10 /proc/timer_list | wc -c; ls /sys/firmware | wc -l",
            ],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        // masked: /proc/timer_list is /dev/null, /sys/firmware an empty tmpfs
        [
            "root-ro",
            "tmpfs-rw",
            "from-host",
            "bind-ro",
            "1",
            "333",
            "444",
            "0",
            "0"
        ],
        "{o}"
    );
    let o = in_pty(&d.docker_cmd(&["run", "--rm", "--tty", DOCKER_IMAGE, "tty"]));
    assert!(o.stdout.contains("/dev/pts/0"), "{o}");
    assert!(d
        .wrapper
        .calls()
        .iter()
        .any(|l| l.contains(" create ") && l.contains("--console-socket")));
    d.assert_clean();
}

#[test]
fn user_namespace_remap() {
    let Some(d) = Docker::with_userns_remap() else {
        return;
    };
    let o = d
        .run_image(
            &[],
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
    assert!(d.wrapper.calls().iter().any(|l| l.contains(" create ")));
    d.assert_clean();
}

#[test]
fn fifty_containers_in_parallel() {
    let Some(d) = Docker::new() else { return };
    let outs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let cmd = d.docker_cmd(&[
                    "run",
                    "--rm",
                    DOCKER_IMAGE,
                    "sh",
                    "-c",
                    &format!("echo hello-{i}"),
                ]);
                s.spawn(move || bounded(cmd, Duration::from_secs(300)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.code(), 0, "{o}");
        assert_eq!(o.stdout, format!("hello-{i}\n"), "{o}");
    }
    let creates = d
        .wrapper
        .calls()
        .iter()
        .filter(|l| l.contains(" create "))
        .count();
    assert_eq!(creates, 50);
    d.assert_clean();
}

#[test]
fn container_survives_a_daemon_restart() {
    let Some(mut d) = Docker::new() else { return };
    d.docker(&[
        "run",
        "--detach",
        "--name",
        "live",
        DOCKER_IMAGE,
        "sleep",
        "1000",
    ])
    .expect_ok();
    let pid = |d: &Docker| {
        d.docker(&["inspect", "--format", "{{.State.Pid}}", "live"])
            .expect_ok()
            .stdout
            .trim()
            .to_string()
    };
    let before = pid(&d);
    d.restart();
    assert_eq!(status(&d, "live"), "running");
    assert_eq!(pid(&d), before, "the container changed across the restart");
    let o = d
        .docker(&["exec", "live", "echo", "still-here"])
        .expect_ok();
    assert_eq!(o.stdout, "still-here\n");
    d.docker(&["rm", "--force", "live"]).expect_ok();
    d.assert_clean();
}

#[test]
fn resource_view_by_the_runtime_wide_flag() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    // docker 20.10 has no --annotation: the runtime is registered with runtimeArgs.
    let Some(d) = Docker::with_runtime_args(&["--resource-view=on"]) else {
        return;
    };
    let o = d
        .run_image(&["-m", "256m"], &["head", "-1", "/proc/meminfo"])
        .expect_ok();
    assert_eq!(o.stdout, "MemTotal:         262144 kB\n", "{o}");
    // Half a CPU: one CPU online (busybox nproc counts the affinity mask, a system call the
    // view cannot change: docs/resource-view.md).
    let o = d
        .run_image(
            &["--cpus", "0.5"],
            &[
                "sh",
                "-c",
                "cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo; \
                 ls -d /sys/devices/system/cpu/cpu[0-9]*; grep -c fuse.husk-procview /proc/self/mountinfo",
            ],
        )
        .expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        ["0", "1", "/sys/devices/system/cpu/cpu0"],
        "{o}"
    );
    let mounts: usize = lines[3].parse().unwrap();
    assert_eq!(mounts, 8, "one mount per entry: {o}");
    // Every call to the runtime about a container carried the flag (dockerd's own
    // `--version` probe has none), and docker told it its state root.
    let calls = d.wrapper.calls();
    let creates: Vec<&String> = calls.iter().filter(|l| l.contains(" create ")).collect();
    assert_eq!(creates.len(), 2, "{calls:#?}");
    let container_calls: Vec<&String> = calls.iter().filter(|l| l.contains("--root ")).collect();
    assert!(container_calls.len() >= 6, "{calls:#?}");
    assert!(
        container_calls
            .iter()
            .all(|l| l.starts_with("--resource-view=on ")),
        "{calls:#?}"
    );
    // dockerd names the root after the shim's runtime (runtime-runc when the runtime is
    // registered with runtimeArgs), so it is read from the call.
    let root = std::path::PathBuf::from(
        creates[0]
            .split_whitespace()
            .skip_while(|w| *w != "--root")
            .nth(1)
            .unwrap(),
    );
    assert!(root.starts_with(&d.dir), "{}", root.display());
    // After --rm of the last container: no container, state, server, mount or directory.
    d.assert_clean();
    assert_becomes_empty(|| {
        let mut left: Vec<String> = view_servers(&root)
            .iter()
            .map(|p| format!("server process {p}"))
            .collect();
        if let Ok(rd) = std::fs::read_dir(&root) {
            left.extend(rd.flatten().map(|e| e.path().display().to_string()));
        }
        let dir = root.join(".procview").display().to_string();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        left.extend(
            mountinfo
                .lines()
                .filter(|l| l.contains(&dir))
                .map(str::to_string),
        );
        left
    });
}
