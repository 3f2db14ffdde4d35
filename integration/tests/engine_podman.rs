//! podman 4.3 (Debian's) with the runtime under test registered by the repo's containers.conf
//! drop-in (scripts/engines/containers.conf.d/50-husk.conf), each test with its own podman
//! root, runroot and storage (`integration::Podman`). Each checks that husk, not another
//! runtime, ran, and what the container saw.

use std::time::Duration;

use integration::*;

/// The runtime podman used for a container (its OCIRuntime), and that its state lived in the
/// runtime under test's default root while running.
fn ran_under_test(p: &Podman, name: &str) {
    let o = p
        .run(&["inspect", "--format", "{{.OCIRuntime}} {{.Id}}", name])
        .expect_ok();
    let mut f = o.stdout.split_whitespace();
    let (runtime, id) = (f.next().unwrap(), f.next().unwrap());
    assert_eq!(runtime, "husk");
    if !is_runc() {
        assert!(
            std::path::Path::new("/run/husk")
                .join(id)
                .join("state.json")
                .exists(),
            "no husk state for {id}"
        );
    }
}

#[test]
fn output_exit_codes_and_missing_executable() {
    let Some(p) = Podman::new() else { return };
    let info = p
        .run(&["info", "--format", "{{.Host.OCIRuntime.Path}}"])
        .expect_ok();
    assert_eq!(info.stdout.trim(), husk_bin().to_string_lossy());
    let o = p.run_image(&[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.code(), 3, "{o}");
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{o}");
    // husk's JSON-log error reaches the user verbatim, and podman maps it to 127.
    let o = p.run_image(&[], &["/no/such/binary"]);
    assert_eq!(o.code(), 127, "{o}");
    if !is_runc() {
        assert!(
            o.stderr.contains(
                "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory"
            ),
            "{o}"
        );
    }
}

#[test]
fn detached_exec_top_pause_stop_rm() {
    let Some(p) = Podman::new() else { return };
    let mut a = vec!["run", "-d", "--name", "d1"];
    a.extend(sec(&[]));
    a.extend([
        IMAGE,
        "sh",
        "-c",
        "trap 'echo got-usr1 > /tmp/sig' USR1; while :; do sleep 0.1; done",
    ]);
    p.run(&a).expect_ok();
    ran_under_test(&p, "d1");
    let o = p
        .run(&[
            "exec",
            "d1",
            "sh",
            "-c",
            "echo exec-ok; cat /proc/1/cmdline",
        ])
        .expect_ok();
    assert!(o.stdout.starts_with("exec-ok\nsh"), "{o}");
    let o = p.run(&["exec", "d1", "sh", "-c", "exit 4"]);
    assert_eq!(o.code(), 4, "{o}");
    let o = p.run(&["exec", "-t", "d1", "tty"]).expect_ok();
    assert!(o.stdout.trim().starts_with("/dev/pts/"), "{o}");
    let o = p.run(&["top", "d1"]).expect_ok();
    assert!(o.stdout.contains("while"), "{o}");
    p.run(&["kill", "--signal", "USR1", "d1"]).expect_ok();
    let mut got = String::new();
    for _ in 0..50 {
        got = p.run(&["exec", "d1", "cat", "/tmp/sig"]).stdout;
        if got.contains("got-usr1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.trim(), "got-usr1");
    p.run(&["pause", "d1"]).expect_ok();
    let st = p
        .run(&["inspect", "--format", "{{.State.Status}}", "d1"])
        .expect_ok();
    assert_eq!(st.stdout.trim(), "paused");
    p.run(&["unpause", "d1"]).expect_ok();
    // The shell ignores nothing but pid 1 gets no default TERM action: stop escalates.
    let o = p.run(&["stop", "-t", "1", "d1"]).expect_ok();
    assert!(o.stderr.contains("resorting to SIGKILL"), "{o}");
    let st = p
        .run(&["inspect", "--format", "{{.State.Status}}", "d1"])
        .expect_ok();
    assert_eq!(st.stdout.trim(), "exited");
    p.run(&["rm", "d1"]).expect_ok();
    let o = p.run(&["ps", "-a", "--format", "{{.Names}}"]).expect_ok();
    assert_eq!(o.stdout.trim(), "", "{o}");
}

#[test]
fn limits_by_file_and_effect() {
    let Some(p) = Podman::new() else { return };
    let o = p.run_image(
        &["--memory", "32m"],
        &["sh", "-c", "head -c 67108864 /dev/zero | tail > /dev/null"],
    );
    assert_eq!(o.code(), 137, "{o}");
    let o = p.run_image(
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
    let o = p
        .run_image(
            &["--memory", "48m", "--cpu-shares", "512", "--cpu-quota", "20000"],
            &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us"],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["50331648", "512", "20000"]
    );
    // The quota by effect: a second of busy loop at 20% of a cpu is throttled.
    let o = p
        .run_image(
            &["--cpu-quota", "20000"],
            &[
                "sh",
                "-c",
                "timeout 1 sh -c 'while :; do :; done'; cat /sys/fs/cgroup/cpu/cpu.stat",
            ],
        )
        .expect_ok();
    if !is_pure_v2() {
        assert!(counter(&o.stdout, "nr_throttled") > 0, "{o}");
    }
    // update: podman → `husk update --resources=FILE`, seen from inside the container.
    let mut a = vec![
        "run",
        "-d",
        "--name",
        "up",
        "--memory",
        "48m",
        "--cpu-shares",
        "512",
    ];
    a.extend(sec(&[]));
    a.extend([IMAGE, "sleep", "1000"]);
    p.run(&a).expect_ok();
    ran_under_test(&p, "up");
    p.run(&["update", "--memory", "64m", "--cpu-shares", "256", "up"])
        .expect_ok();
    let o = p
        .run(&[
            "exec",
            "up",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/cpu/cpu.shares",
        ])
        .expect_ok();
    if !is_pure_v2() {
        assert_eq!(
            o.stdout.split_whitespace().collect::<Vec<_>>(),
            ["67108864", "256"]
        );
    }
    p.run(&["rm", "--force", "--time", "0", "up"]).expect_ok();
}

#[test]
fn process_and_filesystem_options() {
    let Some(p) = Podman::new() else { return };
    let o = p
        .run_image(
            &[
                "--user",
                "1000:1000",
                "--env",
                "FOO=bar",
                "--workdir",
                "/tmp",
                "--hostname",
                "podh",
            ],
            &["sh", "-c", "id -u; id -g; echo $FOO; pwd; hostname"],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["1000", "1000", "bar", "/tmp", "podh"]
    );
    // podman's /tmp and /run tmpfs mounts carry `tmpcopyup`.
    let o = p.run_image(
        &["--read-only"],
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-ok",
        ],
    );
    assert!(
        o.stdout.contains("Read-only file system")
            && o.stdout.contains("rc=1")
            && o.stdout.contains("tmp-ok"),
        "{o}"
    );
    let o = p
        .run_image(
            &[
                "--sysctl",
                "net.ipv4.ip_forward=1",
                "--ulimit",
                "nofile=333:444",
                "--ulimit",
                "nproc=4096:4096",
            ],
            &[
                "sh",
                "-c",
                "cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn",
            ],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["1", "333", "444"]
    );
    let o = p
        .run_image(&[], &["sh", "-c", "wc -c < /proc/timer_list"])
        .expect_ok();
    assert_eq!(o.stdout.trim(), "0", "/proc/timer_list is masked: {o}");
    let host = std::env::temp_dir().join(format!("husk-podman-bind-{}", unique()));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let v = format!("{}:/data:ro", host.display());
    let o = p
        .run_image(
            &["-v", &v, "--tmpfs", "/etc"],
            &[
                "sh",
                "-c",
                "cat /data/f; grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9; cat /etc/passwd",
            ],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["from-host", "tmpfs", "root:x:0:0:root:/root:/bin/sh"]
    );
    let _ = std::fs::remove_dir_all(&host);
    let o = p
        .run_image(
            &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
            &["cat", "/proc/self/uid_map"],
        )
        .expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let o = p
        .run_image(&["-t"], &["sh", "-c", "[ -t 1 ] && echo a-tty"])
        .expect_ok();
    assert!(o.stdout.contains("a-tty"), "{o}");
}

#[test]
fn fifty_in_parallel_leave_nothing() {
    let Some(p) = Podman::new() else { return };
    let p = std::sync::Arc::new(p);
    let hs: Vec<_> = (0..50)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || p.run_image(&[], &["sh", "-c", &format!("echo n{i}")]))
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        let o = h.join().unwrap();
        assert_eq!(o.stdout.trim(), format!("n{i}"), "{o}");
    }
    let o = p.run(&["ps", "-a", "--format", "{{.Names}}"]).expect_ok();
    assert_eq!(o.stdout.trim(), "");
    // conmon's and the containers' cgroups go once podman's cleanup processes have run,
    // which can trail `run --rm` by a moment under load.
    assert_becomes_empty(|| {
        cgroup_dirs_where(&|n| n.starts_with("libpod-"))
            .iter()
            .map(|d| d.display().to_string())
            .collect()
    });
}

#[test]
fn an_overlay_root_asked_for_by_annotation() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let Some(p) = Podman::new() else { return };
    let b = Bundle::sh("true");
    let dir = TempDir::new("podman-ovl");
    let top = dir.path().join("top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "from-top\n").unwrap();
    let c = dir.path().join("c");
    let ann = |k: &str, v: &str| format!("io.github.husk.rootfs{k}={v}");
    let layers = format!("{}:{}", top.display(), b.rootfs().display());
    let (a1, a2, a3, a4) = (
        ann("", "overlay"),
        ann(".layers", &layers),
        ann(".upper", c.join("upper").to_str().unwrap()),
        ann(".work", c.join("work").to_str().unwrap()),
    );
    let o = p
        .run_image(
            &[
                "--annotation",
                &a1,
                "--annotation",
                &a2,
                "--annotation",
                &a3,
                "--annotation",
                &a4,
            ],
            &[
                "sh",
                "-c",
                "cat /etc/motd; echo w > /written; grep ' / / ' /proc/self/mountinfo",
            ],
        )
        .expect_ok();
    // The root is husk's overlay of the given layers, not podman's image.
    assert!(o.stdout.starts_with("from-top\n"), "{o}");
    assert!(o.stdout.contains(" - overlay overlay "), "{o}");
    assert!(o.stdout.contains(&format!("lowerdir={layers}")), "{o}");
    assert!(!top.join("written").exists() && !b.rootfs().join("written").exists());
    // podman's `rm` (--rm) deleted it through husk: upper and work gone.
    assert!(!c.exists(), "{} left", c.display());
}

#[test]
fn resource_view_by_annotation() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let Some(p) = Podman::new() else { return };
    let view = [
        "--annotation",
        "io.github.husk.resource-view=on",
        "--memory",
        "256m",
    ];
    // podman passes husk no --root: its state, registration and server live in husk's
    // default root, /run/husk.
    let root = std::path::Path::new("/run/husk");
    let mut a = vec!["run", "-d", "--name", "v1"];
    a.extend(view);
    a.extend([IMAGE, "sleep", "1000"]);
    p.run(&a).expect_ok();
    ran_under_test(&p, "v1");
    let id = p
        .run(&["inspect", "--format", "{{.Id}}", "v1"])
        .expect_ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        root.join(&id).join("procview.json").is_file(),
        "no registration in {}",
        root.display()
    );
    assert!(root.join(".procview/mnt").is_dir());
    let o = p
        .run(&["exec", "v1", "head", "-1", "/proc/meminfo"])
        .expect_ok();
    assert_eq!(o.stdout, "MemTotal:         262144 kB\n", "{o}");
    p.run(&["rm", "--force", "--time", "0", "v1"]).expect_ok();

    let o = p
        .run_image(
            &view,
            &[
                "sh",
                "-c",
                "head -1 /proc/meminfo; grep -c ' /proc/meminfo .*fuse.husk-procview' /proc/self/mountinfo",
            ],
        )
        .expect_ok();
    assert_eq!(o.stdout, "MemTotal:         262144 kB\n1\n", "{o}");
    // After --rm (podman's clean-up may finish just after run returns): no server, mount or
    // directory of it for podman's root.
    assert_becomes_empty(|| {
        let mut left: Vec<String> = view_servers(root)
            .iter()
            .map(|p| format!("server process {p}"))
            .collect();
        if root.join(".procview").exists() {
            left.push(format!("{}", root.join(".procview").display()));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        left.extend(
            mountinfo
                .lines()
                .filter(|l| l.contains("/run/husk/.procview"))
                .map(str::to_string),
        );
        left
    });
}
