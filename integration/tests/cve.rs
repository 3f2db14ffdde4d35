//! Known container-runtime escapes, each reproduced against the runtime under test and shown
//! to fail. docs/security.md says how each attack works and what stops it in husk.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::time::Duration;

use integration::*;

/// A bundle whose config has no /dev mount: the rootfs's own /dev is used, as an image could
/// ship it (the precondition of the /dev attacks).
fn without_dev_mount(b: &mut Bundle) {
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.retain(|x| {
            let d = x["destination"].as_str().unwrap();
            d != "/dev" && !d.starts_with("/dev/")
        });
    });
}

/// CVE-2024-21626: process.cwd through a file descriptor leaked from the runtime
/// (/proc/self/fd/N naming a host directory) put the container's cwd on the host.
#[test]
fn cve_2024_21626_cwd_through_a_leaked_fd() {
    let rt = Runtime::new();
    for cwd in [
        "/proc/self/fd/3",
        "/proc/self/fd/4",
        "/proc/self/fd/5",
        "/proc/self/fd/6",
        "/proc/self/fd/7",
        "/proc/self/fd/8",
        "/proc/self/cwd",
        "/proc/1/cwd",
    ] {
        let mut b = Bundle::sh("pwd; ls /proc/self/fd");
        b.edit(|c| c["process"]["cwd"] = json!(cwd));
        let id = rt.id();
        let o = rt.run(&b, &id);
        // Refused: the cwd is a magic link, which is never followed out of the root.
        assert!(!o.ok(), "{cwd}: ran: {o}");
        if !is_runc() {
            assert!(o.stderr.contains(&format!("process.cwd {cwd}")), "{o}");
        }
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
    // And the process starts with no descriptor but its stdio (ls's own directory is 3).
    let b = Bundle::sh("ls /proc/self/fd");
    let o = rt.run_new(&b).expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    // `exec --cwd` the same way.
    let b = Bundle::sh("sleep 100");
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();
    for cwd in ["/proc/self/fd/3", "/proc/self/fd/5", "/proc/1/cwd"] {
        let o = rt.exec(&[
            "exec",
            "--cwd",
            cwd,
            &id,
            "sh",
            "-c",
            "pwd; ls /proc/self/fd",
        ]);
        // Refused, or (/proc/1/cwd is the container init's own "/") inside the root with
        // nothing but stdio open.
        if o.ok() {
            assert_eq!(
                o.stdout.split_whitespace().collect::<Vec<_>>(),
                ["/", "0", "1", "2", "3"],
                "exec --cwd {cwd}: {o}"
            );
        } else {
            assert_ne!(cwd, "/proc/1/cwd", "{o}");
        }
    }
    let o = rt.exec(&["exec", &id, "ls", "/proc/self/fd"]).expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

/// CVE-2019-19921, CVE-2021-30465, CVE-2023-27561: a mount destination that is (or passes
/// through) a symlink in the rootfs pointing out of it put the mount on the host.
#[test]
fn mount_destination_symlinks_stay_in_the_root() {
    let rt = Runtime::new();
    let host = rt.work().join("host-target");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("canary"), "host").unwrap();
    let mut b = Bundle::sh("cat /evil/canary 2>&1; ls -d /evil/; echo ok");
    let rootfs = b.rootfs();
    // Absolute, relative-climbing and through-a-directory symlinks to the host directory.
    symlink(&host, rootfs.join("evil")).unwrap();
    symlink(
        "../../../../../../../../..".to_string() + host.to_str().unwrap(),
        rootfs.join("evil2"),
    )
    .unwrap();
    fs::create_dir_all(rootfs.join("d")).unwrap();
    symlink(&host, rootfs.join("d/link")).unwrap();
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        for d in ["/evil", "/evil2", "/d/link"] {
            m.push(json!({"destination": d, "type": "tmpfs", "source": "tmpfs"}));
        }
    });
    let id = rt.id();
    let o = rt.run(&b, &id);
    // The host directory got no mount and kept its file.
    assert!(mounts_under(&host).is_empty(), "mounted on the host: {o}");
    assert_eq!(fs::read_to_string(host.join("canary")).unwrap(), "host");
    if o.ok() {
        // Followed inside the root: the tmpfs hides nothing of the host's.
        assert!(!o.stdout.contains("host\n"), "{o}");
    }
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// CVE-2019-16884: a volume mounted over /proc stood in for procfs, so the runtime's writes
/// to /proc/self/attr (the LSM label) went to a plain file. Only procfs goes on /proc.
#[test]
fn cve_2019_16884_a_fake_proc_is_refused() {
    let rt = Runtime::new();
    let fake = rt.work().join("fakeproc");
    fs::create_dir_all(fake.join("self/attr")).unwrap();
    for (dest, typ) in [
        ("/proc", "bind"),
        ("/proc/self", "bind"),
        ("/proc", "tmpfs"),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(
                json!({"destination": dest, "type": typ, "source": fake, "options": ["rbind"]}),
            );
        });
        if typ == "tmpfs" {
            b.edit(|c| {
                let m = c["mounts"].as_array_mut().unwrap();
                m.last_mut().unwrap()["options"] = json!([]);
            });
        }
        let id = rt.id();
        if is_runc() {
            rt.exec(&["create", "--bundle", &b.path_str(), &id])
                .expect_err();
        } else {
            rt.exec(&["create", "--bundle", &b.path_str(), &id])
                .expect_err()
                .expect_msg("only a proc filesystem may be mounted on /proc");
        }
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
    // lxcfs's files are still allowed.
    let meminfo = rt.work().join("meminfo");
    fs::write(&meminfo, "MemTotal: 1 kB\n").unwrap();
    let mut b = Bundle::sh("cat /proc/meminfo");
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/proc/meminfo", "type": "bind", "source": meminfo,
                   "options": ["bind", "ro"]}),
        );
    });
    assert_eq!(rt.run_new(&b).expect_ok().stdout, "MemTotal: 1 kB\n");
}

/// CVE-2025-31133: maskedPaths are covered with /dev/null; a rootfs whose /dev/null is a
/// symlink (to a procfs file) turned the mask into a bind of that file, writable.
#[test]
fn cve_2025_31133_dev_null_must_be_the_null_device() {
    let rt = Runtime::new();
    for target in [
        "/proc/sys/kernel/core_pattern",
        "/proc/sysrq-trigger",
        "/etc/passwd",
    ] {
        let mut b = Bundle::sh("cat /proc/timer_list | head -c 20; echo end");
        without_dev_mount(&mut b);
        let dev = b.rootfs().join("dev");
        fs::create_dir_all(&dev).unwrap();
        let _ = fs::remove_file(dev.join("null"));
        symlink(target, dev.join("null")).unwrap();
        let id = rt.id();
        let o = rt.run(&b, &id);
        assert!(!o.ok(), "{target}: ran with a symlinked /dev/null: {o}");
        if !is_runc() {
            assert!(o.stderr.contains("/dev/null"), "{o}");
        }
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
    // A regular file there is refused too.
    let mut b = Bundle::new(&["true"]);
    without_dev_mount(&mut b);
    let dev = b.rootfs().join("dev");
    fs::create_dir_all(&dev).unwrap();
    fs::write(dev.join("null"), "not a device").unwrap();
    let id = rt.id();
    assert!(!rt.run(&b, &id).ok());
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// CVE-2025-52565: with a terminal, the pty is bound onto /dev/console; a rootfs whose
/// /dev/console is a symlink (to a procfs file) redirected that bind onto the file.
#[test]
fn cve_2025_52565_dev_console_symlink_is_not_followed() {
    let rt = Runtime::new();
    let mut b = Bundle::sh("true");
    // The image's own /dev (no tmpfs on /dev), with a devpts and the null device the masks
    // need, as an image could ship them; /dev/console a symlink into procfs.
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x["destination"] != "/dev");
        c["process"]["terminal"] = json!(true);
    });
    let dev = b.rootfs().join("dev");
    fs::create_dir_all(dev.join("pts")).unwrap();
    host(
        "mknod",
        &[
            "-m",
            "666",
            dev.join("null").to_str().unwrap(),
            "c",
            "1",
            "3",
        ],
    );
    symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    symlink("/proc/sys/kernel/core_pattern", dev.join("console")).unwrap();
    let (sock, h) = fd_socket(&rt, "console.sock");
    let id = rt.id();
    let o = rt.exec(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        &b.path_str(),
        &id,
    ]);
    if o.ok() {
        // A runtime may also replace the symlink; what it must not do is bind through it.
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        assert!(
            !mi.lines().any(|l| l.contains("core_pattern")),
            "the terminal was bound onto core_pattern: {mi}"
        );
        rt.exec(&["delete", "--force", &id]);
    } else {
        o.expect_msg("/dev/console");
    }
    drop(h);
    assert_nothing_remains(&rt, &id, Some(b.path()));
    // The same bundle with a plain /dev/console file gets its terminal.
    fs::remove_file(dev.join("console")).unwrap();
    fs::write(dev.join("console"), "").unwrap();
    let (sock, h) = fd_socket(&rt, "console2.sock");
    let id = rt.id();
    rt.exec(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .expect_ok();
    assert!(h.join().unwrap().is_some(), "no pty master");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mi.lines()
            .any(|l| l.split(' ').nth(4) == Some("/dev/console")),
        "{mi}"
    );
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

/// CVE-2025-52881: the runtime's writes to procfs (sysctls) redirected by a mount the config
/// puts over /proc/sys: a host file bound there received the value. husk writes sysctls
/// through a private procfs instance, and refuses binds beneath /proc.
#[test]
fn cve_2025_52881_procfs_writes_are_not_redirected() {
    let rt = Runtime::new();
    let victim = rt.work().join("victim");
    fs::write(&victim, "untouched").unwrap();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                   "source": victim, "options": ["bind"]}),
        );
    });
    let id = rt.id();
    let _ = rt.run(&b, &id);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    // Without the bind, the sysctl lands in the container's own network namespace.
    let mut b = Bundle::sh("cat /proc/sys/net/ipv4/ip_forward");
    b.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(rt.run_new(&b).expect_ok().stdout.trim(), "1");
}

/// CVE-2022-29162: inheritable capabilities were set to the bounding set, so an exec of a
/// file with inheritable file capabilities gained them. husk sets only what the config says.
#[test]
fn cve_2022_29162_inheritable_capabilities_are_the_configs() {
    let rt = Runtime::new();
    let mut b = Bundle::sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
    b.edit(|c| {
        let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
        c["process"]["capabilities"] = json!({"bounding": caps, "effective": caps,
                                              "permitted": caps});
    });
    let o = rt.run_new(&b).expect_ok();
    let val = |k: &str| {
        o.stdout
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(|v| u64::from_str_radix(v, 16).unwrap())
            .unwrap_or_else(|| panic!("{k}: {o}"))
    };
    assert_eq!(val("CapInh:"), 0, "{o}");
    assert_eq!(val("CapAmb:"), 0, "{o}");
    assert_eq!(val("CapBnd:"), (1 << 0) | (1 << 5), "{o}");
}

/// CVE-2016-9962: the runtime's init, inside the container before exec, could be ptraced
/// from the container (its fds reached the host). The init is non-dumpable until exec, so
/// its /proc files belong to root, not to the container's (mapped) root.
#[test]
fn cve_2016_9962_the_init_is_not_dumpable_before_exec() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    // The rootfs is chowned so that the mapped root can use it.
    b.with_userns(200000);
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("200000")),
        "the init runs as the mapped root: {status}"
    );
    let owner = fs::metadata(format!("/proc/{pid}/fd")).unwrap().uid();
    assert_eq!(
        owner, 0,
        "/proc/{pid}/fd belongs to {owner}: the init is dumpable"
    );
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(Path::new("/proc").exists());
}

/// CVE-2019-5736: code in the container with CAP_SYS_PTRACE over the host (a privileged
/// container: CAP_SYS_PTRACE and more; here a startContainer hook, which runs with them)
/// opens /proc/1/exe while pid 1 is still the runtime, keeps the descriptor, and once the
/// runtime has exited reopens it for writing to replace the runtime binary on the host.
/// The runtime here is a copy of the binary under test, so a successful attack harms only it.
#[test]
fn cve_2019_5736_the_runtime_binary_cannot_be_overwritten() {
    let rt = Runtime::new();
    let copy = rt.work().join("runtime-copy");
    fs::copy(husk_bin(), &copy).unwrap();
    let original = fs::read(&copy).unwrap();
    let root = rt.work().join("root-5736");
    let attack = "( exec 3</proc/1/exe || { echo open-failed > /attack; exit 0; }; \
                  for i in $(seq 1 100); do sleep 0.1; \
                    if ( echo pwned >> /proc/self/fd/3 ) 2>/attack.err; then \
                      echo written > /attack; exit 0; fi; \
                  done; echo write-failed > /attack ) > /dev/null 2>&1 &";
    let mut b = Bundle::new(&["sleep", "30"]);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        let caps = json!([
            "CAP_SYS_PTRACE",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_SYS_ADMIN",
            "CAP_CHOWN",
            "CAP_FOWNER",
            "CAP_KILL",
            "CAP_SETUID",
            "CAP_SETGID"
        ]);
        c["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", attack]}]});
    });
    let id = format!("cve5736-{}", std::process::id());
    // Output to files: the container's init keeps create's stdio open.
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(&copy);
        c.arg("--root").arg(&root).args(args);
        let o = bounded(c, Duration::from_secs(60));
        assert!(o.ok(), "{args:?}: {o}");
    };
    run(&["create", "--bundle", &b.path_str(), &id]);
    run(&["start", &id]);
    let result = b.rootfs().join("attack");
    let start = std::time::Instant::now();
    while !result.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let outcome = fs::read_to_string(&result).unwrap_or_default();
    let err = fs::read_to_string(b.rootfs().join("attack.err")).unwrap_or_default();
    run(&["delete", "--force", &id]);
    assert_eq!(
        fs::read(&copy).unwrap(),
        original,
        "the runtime binary was modified"
    );
    assert_ne!(
        outcome.trim(),
        "written",
        "the attack wrote to the runtime binary"
    );
    assert!(!outcome.is_empty(), "the attack never reported");
    eprintln!("cve_2019_5736: attack {}: {}", outcome.trim(), err.trim());
}

/// The 2026 /dev-symlink variant: an image whose /dev is itself a symlink out of the root
/// (absolute, or climbing with ..), so that the /dev tmpfs, devpts, the device nodes and the
/// /dev/null used for masks would be made on the host. Everything under /dev is resolved
/// inside the root, and husk refuses such a /dev outright: the host directory gets nothing.
#[test]
fn dev_symlink_out_of_the_root() {
    let rt = Runtime::new();
    for climbing in [false, true] {
        let host_dev = rt.work().join(format!("host-dev-{climbing}"));
        fs::create_dir_all(&host_dev).unwrap();
        let b = Bundle::sh("ls /dev/null /dev/pts/ptmx > /dev/null && echo devs-ok");
        let dev = b.rootfs().join("dev");
        let _ = fs::remove_dir_all(&dev);
        let target = if climbing {
            format!("../../../../../../../..{}", host_dev.display())
        } else {
            host_dev.display().to_string()
        };
        symlink(&target, &dev).unwrap();
        let id = rt.id();
        let o = rt.run(&b, &id);
        if !is_runc() {
            assert!(o.stderr.contains("the rootfs's /dev is a symlink"), "{o}");
        }
        assert!(
            mounts_under(&host_dev).is_empty(),
            "{target}: mounted on the host: {o}"
        );
        assert_eq!(
            fs::read_dir(&host_dev).unwrap().count(),
            0,
            "{target}: files made on the host: {o}"
        );
        if o.ok() {
            assert!(o.stdout.contains("devs-ok"), "{o}");
        }
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
}
