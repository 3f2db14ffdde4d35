//! The root filesystem: root.path, readonly, mounts and their flags, propagation, devices,
//! masked and read-only paths, sysctl, hostname, --no-pivot, an overlay root.

use std::fs;
use std::path::Path;

use integration::*;

/// Runs `script` in a container (config edited by `edit`) and returns stdout; asserts exit 0.
fn inside_b(b: &mut Bundle, edit: impl FnOnce(&mut Value), script: &str) -> String {
    b.edit(|c| {
        c["process"]["args"] = json!(["sh", "-c", script]);
        edit(c)
    });
    let rt = Runtime::new();
    let id = rt.id();
    let o = rt.run(b, &id);
    rt.exec(&["delete", "--force", &id]);
    assert!(o.ok(), "container failed: {o}");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    o.stdout
}

fn inside(edit: impl FnOnce(&mut Value), script: &str) -> String {
    let mut b = Bundle::new(&["true"]);
    inside_b(&mut b, edit, script)
}

fn add_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

#[test]
fn root_path_relative_and_absolute() {
    let mut b = Bundle::new(&["true"]);
    fs::write(b.rootfs().join("marker"), "relative-root\n").unwrap();
    assert_eq!(inside_b(&mut b, |_| {}, "cat /marker"), "relative-root\n");
    let abs = b.rootfs().to_string_lossy().to_string();
    assert_eq!(
        inside_b(&mut b, |c| c["root"]["path"] = json!(abs), "cat /marker"),
        "relative-root\n"
    );
}

#[test]
fn root_readonly() {
    let out = inside(
        |_| {},
        "touch /x 2>&1 && echo touched; cat /proc/self/mountinfo",
    );
    assert!(!out.contains("touched"), "{out}");
    assert!(out.to_lowercase().contains("read-only"), "{out}");
    let line = mountinfo_line(&out, "/").unwrap();
    assert!(mount_opts(line).contains(&"ro".to_string()), "{line}");

    let out = inside(
        |c| c["root"]["readonly"] = json!(false),
        "touch /x && echo touched; cat /proc/self/mountinfo",
    );
    assert!(out.contains("touched"), "{out}");
    let line = mountinfo_line(&out, "/").unwrap();
    assert!(mount_opts(line).contains(&"rw".to_string()), "{line}");
}

#[test]
fn bind_mount_flags() {
    let src = TempDir::new("src");
    fs::write(src.path().join("f"), "from-host\n").unwrap();
    let s = src.path().to_string_lossy().to_string();
    let out = inside(
        |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/b", "type": "bind", "source": s,
                "options": ["bind", "ro", "nosuid", "nodev", "noexec"]}),
            );
        },
        "cat /mnt/b/f; cat /proc/self/mountinfo",
    );
    assert!(out.starts_with("from-host\n"), "{out}");
    let line = mountinfo_line(&out, "/mnt/b").expect("no /mnt/b mount");
    let opts = mount_opts(line);
    for f in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&f.to_string()), "{f} missing: {line}");
    }
    // and the host's view of the source is untouched
    assert!(mounts_under(src.path()).is_empty());
}

#[test]
fn bind_vs_rbind_submounts() {
    let src = TempDir::new("src");
    fs::create_dir(src.path().join("sub")).unwrap();
    let sub = src.path().join("sub");
    host(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            sub.to_str().unwrap(),
        ],
    );
    let _g = MountGuard(sub.clone());
    fs::write(sub.join("inner"), "in-submount\n").unwrap();
    let s = src.path().to_string_lossy().to_string();
    let s2 = s.clone();
    let out = inside(
        |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/r", "type": "bind", "source": s,
                "options": ["rbind"]}),
            );
            add_mount(
                c,
                json!({"destination": "/mnt/nr", "type": "bind", "source": s2,
                "options": ["bind"]}),
            );
        },
        "cat /mnt/r/sub/inner; ls /mnt/nr/sub | wc -l; cat /proc/self/mountinfo",
    );
    let mut l = out.lines();
    assert_eq!(l.next(), Some("in-submount"), "{out}");
    assert_eq!(
        l.next().map(str::trim),
        Some("0"),
        "plain bind carried the submount: {out}"
    );
    assert!(mountinfo_line(&out, "/mnt/r/sub").is_some(), "{out}");
    assert!(mountinfo_line(&out, "/mnt/nr/sub").is_none(), "{out}");
}

#[test]
fn rro_makes_submounts_readonly() {
    let src = TempDir::new("src");
    let sub = src.path().join("sub");
    fs::create_dir(&sub).unwrap();
    host(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            sub.to_str().unwrap(),
        ],
    );
    let _g = MountGuard(sub.clone());
    let s = src.path().to_string_lossy().to_string();
    let out = inside(
        |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/r", "type": "bind", "source": s,
                "options": ["rbind", "rro"]}),
            );
        },
        "touch /mnt/r/sub/x 2>/dev/null && echo wrote; cat /proc/self/mountinfo",
    );
    assert!(!out.contains("wrote"), "{out}");
    for mp in ["/mnt/r", "/mnt/r/sub"] {
        let line = mountinfo_line(&out, mp).unwrap_or_else(|| panic!("{mp}: {out}"));
        assert!(mount_opts(line).contains(&"ro".to_string()), "{line}");
    }
    assert!(!sub.join("x").exists());
}

#[test]
fn bind_propagation() {
    // A shared source (our own bind mount onto itself, under our temp dir) so that rslave
    // has a master to show.
    let src = TempDir::new("src");
    let p = src.path().to_str().unwrap().to_string();
    host("mount", &["--bind", &p, &p]);
    let _g = MountGuard(src.path().to_path_buf());
    host("mount", &["--make-shared", &p]);
    let out = inside(
        |c| {
            for (d, o) in [
                ("/mnt/sh", "rshared"),
                ("/mnt/sl", "rslave"),
                ("/mnt/pr", "rprivate"),
            ] {
                add_mount(
                    c,
                    json!({"destination": d, "type": "bind", "source": p,
                    "options": ["rbind", o]}),
                );
            }
        },
        "cat /proc/self/mountinfo",
    );
    let opt = |mp: &str| {
        mount_optional(mountinfo_line(&out, mp).unwrap_or_else(|| panic!("{mp}: {out}")))
    };
    assert!(
        opt("/mnt/sh").iter().any(|f| f.starts_with("shared:")),
        "{:?}",
        opt("/mnt/sh")
    );
    assert!(
        opt("/mnt/sl").iter().any(|f| f.starts_with("master:")),
        "{:?}",
        opt("/mnt/sl")
    );
    assert!(
        !opt("/mnt/sl").iter().any(|f| f.starts_with("shared:")),
        "{:?}",
        opt("/mnt/sl")
    );
    assert!(
        opt("/mnt/pr").is_empty(),
        "rprivate has {:?}",
        opt("/mnt/pr")
    );
}

#[test]
fn tmpfs_size_and_mode() {
    let out = inside(
        |c| {
            add_mount(
                c,
                json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                "options": ["size=1m", "mode=1777", "nosuid"]}),
            );
        },
        "stat -c %a /mnt/t; grep ' /mnt/t ' /proc/self/mountinfo; df -k /mnt/t | tail -1",
    );
    let mut l = out.lines();
    assert_eq!(l.next(), Some("1777"), "{out}");
    let line = l.next().unwrap();
    assert!(line.contains(" - tmpfs "), "{line}");
    assert!(
        super_opts(line).contains(&"size=1024k".to_string()),
        "{line}"
    );
    let df: Vec<&str> = l.next().unwrap().split_whitespace().collect();
    assert_eq!(df[1], "1024", "df total: {df:?}");
}

#[test]
fn special_filesystems() {
    let out = inside(|_| {}, "cat /proc/self/mountinfo; stat -c %a /dev/pts/ptmx");
    let ty = |mp: &str| {
        let l = mountinfo_line(&out, mp).unwrap_or_else(|| panic!("{mp} not mounted: {out}"));
        l.split(" - ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(ty("/proc"), "proc");
    assert_eq!(ty("/sys"), "sysfs");
    assert_eq!(ty("/dev"), "tmpfs");
    assert_eq!(ty("/dev/shm"), "tmpfs");
    assert_eq!(ty("/dev/mqueue"), "mqueue");
    assert_eq!(ty("/dev/pts"), "devpts");
    let pts = mountinfo_line(&out, "/dev/pts").unwrap();
    assert!(
        super_opts(pts).contains(&"ptmxmode=666".to_string()),
        "{pts}"
    );
    assert!(super_opts(pts).contains(&"mode=620".to_string()), "{pts}");
    // newinstance: not the host's devpts (device numbers differ)
    let host_pts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let host_dev = mountinfo_line(&host_pts, "/dev/pts")
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .to_string();
    assert_ne!(
        pts.split(' ').nth(2).unwrap(),
        host_dev,
        "devpts not a new instance"
    );
    assert_eq!(out.lines().last(), Some("666"));
    let sys = mountinfo_line(&out, "/sys").unwrap();
    assert!(mount_opts(sys).contains(&"ro".to_string()), "{sys}");
}

#[test]
fn cgroup_mount() {
    let out = inside(
        |_| {},
        "grep ' /sys/fs/cgroup' /proc/self/mountinfo; ls /sys/fs/cgroup",
    );
    let cg: Vec<&str> = out.lines().filter(|l| l.contains(" - cgroup ")).collect();
    assert!(!cg.is_empty(), "no cgroup v1 mounts: {out}");
    for l in &cg {
        assert!(mount_opts(l).contains(&"ro".to_string()), "{l}");
    }
    for h in ["memory", "pids", "cpu"] {
        assert!(out.lines().any(|l| l == h), "{h} missing: {out}");
        assert!(
            mountinfo_line(&out, &format!("/sys/fs/cgroup/{h}")).is_some(),
            "{out}"
        );
    }
}

#[test]
fn linux_devices() {
    let out = inside(
        |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 5,
                 "fileMode": 0o640, "uid": 1000, "gid": 1001},
                {"path": "/dev/sub/blk", "type": "b", "major": 7, "minor": 200,
                 "fileMode": 0o600, "uid": 0, "gid": 0}
            ]);
        },
        "stat -c '%F|%t %T %a %u %g' /dev/mydev /dev/sub/blk",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l,
        [
            "character special file|1 5 640 1000 1001",
            "block special file|7 c8 600 0 0"
        ],
        "{out}"
    );
}

#[test]
fn default_devices_and_links() {
    let out = inside(
        |_| {},
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo /dev/$l $(readlink /dev/$l); done; \
         echo hello > /dev/null && head -c 4 /dev/zero | wc -c",
    );
    let want = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "/dev/fd /proc/self/fd",
        "/dev/stdin /proc/self/fd/0",
        "/dev/stdout /proc/self/fd/1",
        "/dev/stderr /proc/self/fd/2",
        "/dev/ptmx pts/ptmx",
        "4",
    ];
    let got: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(got, want, "{out}");
}

#[test]
fn masked_paths() {
    // a file, a directory, and a path that does not exist (ignored)
    let out = inside(
        |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/sys/firmware", "/nonexistent"]);
        },
        "cat /proc/kcore | wc -c; ls -A /sys/firmware | wc -l; echo end",
    );
    let got: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(got, ["0", "0", "end"], "{out}");
}

#[test]
fn masked_file_hides_content() {
    let mut b = Bundle::new(&["true"]);
    fs::write(b.rootfs().join("etc/secret"), "top secret\n").unwrap();
    fs::create_dir(b.rootfs().join("etc/secretdir")).unwrap();
    fs::write(b.rootfs().join("etc/secretdir/x"), "x").unwrap();
    let out = inside_b(
        &mut b,
        |c| c["linux"]["maskedPaths"] = json!(["/etc/secret", "/etc/secretdir"]),
        "cat /etc/secret; ls -A /etc/secretdir; echo end",
    );
    assert_eq!(out, "end\n");
}

#[test]
fn readonly_paths() {
    let mut b = Bundle::new(&["true"]);
    fs::create_dir(b.rootfs().join("data")).unwrap();
    let out = inside_b(
        &mut b,
        |c| {
            c["root"]["readonly"] = json!(false);
            c["linux"]["readonlyPaths"] = json!(["/data", "/proc/sys", "/nonexistent"]);
        },
        "touch /data/x 2>&1 || echo data-ro; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sys-ro; \
         touch /y && echo root-rw",
    );
    assert!(out.contains("data-ro"), "{out}");
    assert!(out.to_lowercase().contains("read-only"), "{out}");
    assert!(out.contains("sys-ro"), "{out}");
    assert!(out.contains("root-rw"), "{out}");
}

#[test]
fn sysctl() {
    let host_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = inside(
        |c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "12345678"}),
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    assert_eq!(out, "1\n12345678\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_before
    );
}

#[test]
fn hostname_and_domainname() {
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = inside(|c| c["hostname"] = json!("box-one"), "hostname");
    assert_eq!(out, "box-one\n");
    if skip_for_runc("runc 1.1.5 ignores domainname (added in runc 1.2)") {
        return;
    }
    let out = inside(
        |c| {
            c["hostname"] = json!("box-one");
            c["domainname"] = json!("example.test");
        },
        "hostname; cat /proc/sys/kernel/domainname",
    );
    assert_eq!(out, "box-one\nexample.test\n");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
}

#[test]
fn no_pivot() {
    let rt = Runtime::new();
    let b = Bundle::sh("cat /marker; ls /");
    fs::write(b.rootfs().join("marker"), "no-pivot-root\n").unwrap();
    let id = rt.id();
    let o = rt
        .exec(&["run", "--no-pivot", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let mut l = o.stdout.lines();
    assert_eq!(l.next(), Some("no-pivot-root"));
    let mut listed: Vec<&str> = l.collect();
    listed.sort();
    let mut want: Vec<String> = fs::read_dir(b.rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    want.sort();
    assert_eq!(listed, want);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn overlay_root() {
    let lower_b = Bundle::new(&["true"]);
    let lower = lower_b.rootfs();
    let top = TempDir::new("ovl");
    let (upper, work, merged) = (
        top.path().join("upper"),
        top.path().join("work"),
        top.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    host(
        "mount",
        &[
            "-t",
            "overlay",
            "overlay",
            "-o",
            &opts,
            merged.to_str().unwrap(),
        ],
    );
    let _g = MountGuard(merged.clone());
    let m = merged.to_string_lossy().to_string();
    let out = inside(
        |c| {
            c["root"] = json!({"path": m, "readonly": false});
        },
        "echo written > /new-file; cat /new-file; grep ' / / ' /proc/self/mountinfo",
    );
    assert!(out.starts_with("written\n"), "{out}");
    assert!(
        out.contains(" - overlay "),
        "root is not the overlay: {out}"
    );
    assert_eq!(
        fs::read_to_string(upper.join("new-file")).unwrap(),
        "written\n"
    );
    assert!(!Path::new(&lower).join("new-file").exists());
}

/// `tmpcopyup` (runc's and crun's; podman uses it for `--read-only` and `--tmpfs`): the tmpfs
/// starts with a copy of what the mount point held, owners, modes, subdirectories and symlinks
/// included, and writes stay in the tmpfs.
#[test]
fn tmpcopyup_copies_the_mount_point() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Runtime::new();
    let mut b = Bundle::sh(
        "cat /etc/sub/f; readlink /etc/lnk; stat -c '%a %u' /etc/sub/f; \
         grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9; echo new > /etc/newfile; cat /etc/newfile",
    );
    let etc = b.rootfs().join("etc");
    fs::create_dir_all(etc.join("sub")).unwrap();
    fs::write(etc.join("sub/f"), "old\n").unwrap();
    fs::set_permissions(etc.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(etc.join("sub/f"), Some(1234), None).unwrap();
    std::os::unix::fs::symlink("passwd", etc.join("lnk")).unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(true);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/etc", "type": "tmpfs",
            "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}));
    });
    let id = rt.id();
    let o = rt
        .cmd(&["run", "--bundle", &b.path_str(), &id])
        .run()
        .expect_ok();
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["old", "passwd", "640 1234", "tmpfs", "new"],
        "{o}"
    );
    assert_eq!(
        fs::read_to_string(etc.join("sub/f")).unwrap(),
        "old\n",
        "the rootfs was written"
    );
    assert_nothing_remains(&rt, &id, Some(b.path()));
    // Only for tmpfs.
    let mut b = Bundle::sh("true");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/x", "type": "bind",
            "source": "/tmp", "options": ["rbind", "tmpcopyup"]}));
    });
    let id = rt.id();
    if !is_runc() {
        rt.cmd(&["run", "--bundle", &b.path_str(), &id])
            .run()
            .expect_err()
            .expect_msg("only for tmpfs");
    }
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// As runc 1.5: a tmpfs over a directory takes its mode; a read-only tmpfs gets the mount
/// points beneath it made first; a mount point behind a dangling symlink is made where the
/// symlink points inside the root; a bind whose options name flags gets those and no others.
#[test]
fn mount_points_and_flags_as_runc() {
    let mut b = Bundle::new(&["true"]);
    let keep = b.rootfs().join("mnt/keep");
    fs::create_dir_all(&keep).unwrap();
    fs::set_permissions(&keep, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("/nowhere/dir", b.rootfs().join("mnt/link")).unwrap();
    // A bind source an earlier mount makes, by its host path.
    let src = b.rootfs().join("mnt/ns").to_string_lossy().to_string();
    let out = inside_b(
        &mut b,
        |c| {
            for m in [
                json!({"destination": "/mnt/keep", "type": "tmpfs", "source": "tmpfs"}),
                json!({"destination": "/mnt/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
                json!({"destination": "/mnt/ro/sub", "type": "tmpfs", "source": "tmpfs"}),
                json!({"destination": "/mnt/link/sub", "type": "tmpfs", "source": "tmpfs"}),
                json!({"destination": "/mnt/ns", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "noexec"]}),
                json!({"destination": "/mnt/b", "type": "bind", "source": src.clone(),
                       "options": ["bind", "suid"]}),
            ] {
                add_mount(c, m);
            }
        },
        "stat -c %a /mnt/keep; awk '$5 ~ /^\\/(mnt|nowhere)/ {print $5, $6}' /proc/self/mountinfo",
    );
    let mut l = out.lines();
    assert_eq!(l.next(), Some("700"), "{out}");
    let rest: Vec<&str> = l.collect();
    for want in [
        "/mnt/ro ro,relatime",
        "/mnt/ro/sub rw,relatime",
        "/nowhere/dir/sub rw,relatime",
        "/mnt/ns rw,nosuid,nodev,noexec,relatime",
        "/mnt/b rw,relatime",
    ] {
        assert!(rest.contains(&want), "{want}: {out}");
    }
}
