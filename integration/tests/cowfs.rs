//! Root filesystems husk makes (docs/rootfs-sources.md): an overlay of read-only layers
//! asked for through annotations, made at create and removed at delete.

use integration::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A bundle whose root is an overlay of `top` (one file, /etc/motd) over the bundle's busybox
/// rootfs, with upper and work under `c`.
fn overlay_bundle(rt: &Runtime, script: &str, c: &Path) -> (Bundle, PathBuf) {
    let top = rt.work().join(format!("top-{}", unique()));
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "from-top\n").unwrap();
    let mut b = Bundle::sh(script);
    let base = b.rootfs();
    b.edit(|cfg| overlay_root(cfg, &[&top, &base], c));
    (b, top)
}

/// Overlay mounts under this test's state root (the rootfs husk mounts there).
fn overlay_mounts(rt: &Runtime) -> usize {
    let root = rt.root().to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains(" - overlay ") && l.split(' ').nth(4).is_some_and(|m| m.starts_with(&root))
        })
        .count()
}

#[test]
fn the_merged_layers_and_writes_in_the_upper_only() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let c = rt.work().join("c1");
    let (b, top) = overlay_bundle(&rt, "cat /etc/motd; echo w > /written; ls /bin/busybox", &c);
    let before = overlay_mounts(&rt);
    assert_eq!(before, 0);
    let id = rt.id();
    let o = rt.run(&b, &id).expect_ok();
    assert_eq!(o.stdout, "from-top\n/bin/busybox\n", "{o}");
    // Nothing of the write in either layer; upper and work were husk's and are gone.
    assert!(!top.join("written").exists() && !b.rootfs().join("written").exists());
    assert!(!c.exists(), "{} left", c.display());
    assert_eq!(overlay_mounts(&rt), before);
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn two_containers_from_the_same_layers_do_not_see_each_others_writes() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let (c1, c2) = (rt.work().join("a"), rt.work().join("b"));
    let (mut b1, top1) = overlay_bundle(&rt, "echo one > /mine; sleep 30", &c1);
    let b1_base = b1.rootfs();
    // The second container shares the first one's layers, with its own upper.
    let mut b2 = Bundle::sh("sleep 1; ls /mine 2>&1; echo two > /mine; cat /mine");
    b2.edit(|cfg| overlay_root(cfg, &[&top1, &b1_base], &c2));
    b1.edit(|_| {});
    let id1 = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b1.path_str(), &id1])
        .expect_ok();
    let t0 = std::time::Instant::now();
    while !c1.join("upper/mine").exists() {
        assert!(t0.elapsed().as_secs() < 10);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let id2 = rt.id();
    let o = rt.run(&b2, &id2).expect_ok();
    assert!(o.stdout.contains("No such file"), "{o}");
    assert!(o.stdout.ends_with("two\n"), "{o}");
    assert_eq!(
        std::fs::read_to_string(c1.join("upper/mine")).unwrap(),
        "one\n"
    );
    assert!(!b1_base.join("mine").exists());
    rt.exec(&["delete", "--force", &id1]).expect_ok();
    assert!(!c1.exists() && !c2.exists());
}

#[test]
fn killed_mid_create_then_delete_force_leaves_nothing() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let c = rt.work().join("k");
    let (mut b, _) = overlay_bundle(&rt, "sleep 30", &c);
    // The createRuntime hook kills husk itself: the overlay is mounted, the init half made.
    b.edit(|cfg| {
        cfg["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]});
    });
    let before = overlay_mounts(&rt);
    assert_eq!(before, 0);
    let id = rt.id();
    let o = rt.exec(&["create", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.status.code(), None, "killed: {o}");
    assert_eq!(
        overlay_mounts(&rt),
        before + 1,
        "the overlay is left mounted"
    );
    assert!(c.join("upper").exists());
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_eq!(overlay_mounts(&rt), before);
    assert!(!c.exists(), "{} left", c.display());
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn bad_sources_are_refused_with_nothing_left() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let c = rt.work().join("bad");
    let (mut b, top) = overlay_bundle(&rt, "true", &c);
    let link = rt.work().join("link");
    std::os::unix::fs::symlink(&top, &link).unwrap();
    let base = b.rootfs();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "layers",
            format!("/nonexistent-layer:{}", base.display()),
            "/nonexistent-layer",
        ),
        (
            "layers",
            format!("{}:{}", link.display(), base.display()),
            "symlink",
        ),
        (
            "layers",
            format!("{}/bin/busybox", base.display()),
            "not a directory",
        ),
        (
            "upper",
            format!("{}/upper", top.display()),
            "inside the layer",
        ),
        ("options", "nosuchopt".into(), "unknown overlay option"),
        (
            "options",
            "userxattr,metacopy".into(),
            "refuses the options metacopy=on, userxattr together",
        ),
    ];
    for (key, value, want) in cases {
        let saved = b.config.clone();
        b.edit(|cfg| cfg["annotations"][format!("io.github.husk.rootfs.{key}")] = json!(value));
        let id = rt.id();
        rt.exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg(want);
        assert!(!rt.root().join(&id).exists(), "{key}: state left");
        assert!(!c.exists(), "{key}: {} left", c.display());
        b.config = saved;
        b.write();
    }
}

/// An overlay in a user namespace (0 -> 300000): `idmap` true or false, with the upper made
/// by the test (so kept after delete). Returns the container's output and the upper.
fn in_userns(rt: &Runtime, idmap: bool, script: &str) -> (Output, PathBuf, PathBuf) {
    let c = rt.work().join(format!("u{}", unique()));
    std::fs::create_dir_all(c.join("upper")).unwrap();
    let (mut b, top) = overlay_bundle(rt, script, &c);
    b.edit(|cfg| {
        set_ns(cfg, "user", None);
        let m = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        cfg["linux"]["uidMappings"] = m.clone();
        cfg["linux"]["gidMappings"] = m;
        cfg["annotations"]["io.github.husk.rootfs.idmap"] = json!(idmap.to_string());
    });
    let o = rt.run(&b, &rt.id());
    (o, c.join("upper"), top)
}

fn owner(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(p).unwrap();
    format!("{}:{}", md.uid(), md.gid())
}

#[test]
fn idmapped_layers_show_the_image_s_root_as_the_container_s_root() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let script = "stat -c %u:%g /etc/motd /bin/busybox; echo more >> /etc/motd; \
                  echo new > /new; stat -c %u:%g /etc/motd /new";
    let (o, upper, top) = in_userns(&rt, true, script);
    let o = o.expect_ok();
    // The image's files (0:0 on disk) are root's inside; root can change them (copy-up).
    assert_eq!(o.stdout, "0:0\n0:0\n0:0\n0:0\n", "{o}");
    // On disk the layer is untouched and still 0's; the copies in the upper are the
    // container root's host ids.
    assert_eq!(owner(&top.join("etc/motd")), "0:0");
    assert_eq!(
        std::fs::read_to_string(top.join("etc/motd")).unwrap(),
        "from-top\n"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/motd")).unwrap(),
        "from-top\nmore\n"
    );
    assert_eq!(owner(&upper.join("etc/motd")), "300000:300000");
    assert_eq!(owner(&upper.join("new")), "300000:300000");
    assert_eq!(
        owner(&upper),
        "300000:300000",
        "the upper is the container root's"
    );

    // Without idmap the same image's files belong to nobody inside, and root cannot write
    // them: the mapping is what made the difference above.
    let (o, _, _) = in_userns(
        &rt,
        false,
        "stat -c %u:%g /etc/motd; echo more >> /etc/motd || echo refused",
    );
    assert_eq!(o.stdout.lines().next(), Some("65534:65534"), "{o}");
    assert!(o.stdout.contains("refused"), "{o}");
}

#[test]
fn idmap_without_a_user_namespace_is_refused() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let c = rt.work().join("n");
    let (mut b, _) = overlay_bundle(&rt, "true", &c);
    b.edit(|cfg| cfg["annotations"]["io.github.husk.rootfs.idmap"] = json!("true"));
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("idmap needs linux.uidMappings and linux.gidMappings");
    assert!(!c.exists() && !rt.root().join(&id).exists());
}

/// Whether this kernel mounts an overlay with `opt` (the test's own probe, on a tmpfs).
fn overlay_takes(dir: &Path, opt: &str) -> bool {
    let d = dir.join(format!("p{}", unique()));
    for s in ["l", "u", "w", "m"] {
        std::fs::create_dir_all(d.join(s)).unwrap();
    }
    let data = format!(
        "lowerdir={0}/l,upperdir={0}/u,workdir={0}/w,{opt}",
        d.display()
    );
    let ok = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &data])
        .arg(d.join("m"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    if ok {
        umount_lazy(&d.join("m"));
    }
    ok
}

#[test]
fn features_lists_what_this_host_can_make() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let o = rt.exec(&["features"]).expect_ok();
    let f: Value = serde_json::from_str(&o.stdout).unwrap();
    let a = &f["annotations"];
    let list = |k: &str| -> Vec<String> {
        a[k].as_str()
            .unwrap_or_else(|| panic!("{k} missing: {a}"))
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    // Compared with what the test itself finds on the host, not with fixed values.
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap();
    let has = |t: &str| fs.lines().any(|l| l.split_whitespace().last() == Some(t));
    let mut want = Vec::new();
    if has("overlay") {
        want.push("overlay");
    }
    if has("btrfs") {
        want.push("btrfs");
    }
    if Path::new("/dev/zfs").exists() {
        want.push("zfs");
    }
    assert_eq!(list("io.github.husk.rootfs.sources"), want);
    let tmp = rt.work().join("probe");
    std::fs::create_dir(&tmp).unwrap();
    host("mount", &["-t", "tmpfs", "tmpfs", tmp.to_str().unwrap()]);
    let _g = MountGuard(tmp.clone());
    let opts: Vec<&str> = [
        ("volatile", "volatile"),
        ("metacopy", "metacopy=on"),
        ("index", "index=on"),
        ("redirect_dir", "redirect_dir=on"),
        ("userxattr", "userxattr"),
    ]
    .into_iter()
    .filter(|(_, o)| overlay_takes(&tmp, o))
    .map(|(n, _)| n)
    .collect();
    eprintln!("overlay options this kernel takes: {opts:?}");
    assert_eq!(list("io.github.husk.rootfs.overlay.options"), opts);
    // Quotas: btrfs qgroups wherever btrfs is; project quotas need the kernel's quota
    // format (absent on this CI host's kernel: then not listed).
    let quotas = list("io.github.husk.rootfs.quotas");
    assert_eq!(
        quotas.contains(&"btrfs".to_string()),
        has("btrfs"),
        "{quotas:?}"
    );
    let xfs_q = Path::new("/proc/fs/xfs/xqmstat").exists();
    assert_eq!(
        quotas.contains(&"xfs-project".to_string()),
        xfs_q,
        "{quotas:?}"
    );
    assert_eq!(a["io.github.husk.rootfs.overlay.idmap"], "true");
}

#[test]
fn a_quota_where_the_upper_s_filesystem_cannot_keep_one_is_refused() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let t = rt.work().join("tmpfs");
    std::fs::create_dir(&t).unwrap();
    host("mount", &["-t", "tmpfs", "tmpfs", t.to_str().unwrap()]);
    let _g = MountGuard(t.clone());
    let c = t.join("c");
    let (mut b, _) = overlay_bundle(&rt, "true", &c);
    b.edit(|cfg| cfg["annotations"]["io.github.husk.rootfs.quota"] = json!("64M"));
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg(&format!(
            "{}: a quota needs the upper directory on btrfs, or on ext4 or XFS with project \
             quotas; {} is on a filesystem of type 0x1021994",
            c.join("upper").display(),
            t.display()
        ));
    assert!(!c.exists() && !rt.root().join(&id).exists());
}

#[test]
fn a_quota_on_ext4_without_project_quotas_is_refused() {
    if skip_for_runc("husk's own rootfs sources") || missing_tool("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let rt = Runtime::new();
    // An ext4 of the test's own, made without the quota and project features.
    let img = rt.work().join("ext4.img");
    let mnt = rt.work().join("ext4");
    host("truncate", &["-s", "64M", img.to_str().unwrap()]);
    host("mkfs.ext4", &["-q", img.to_str().unwrap()]);
    std::fs::create_dir(&mnt).unwrap();
    host(
        "mount",
        &["-o", "loop", img.to_str().unwrap(), mnt.to_str().unwrap()],
    );
    let _g = MountGuard(mnt.clone());
    let c = mnt.join("c");
    let (mut b, _) = overlay_bundle(&rt, "true", &c);
    b.edit(|cfg| cfg["annotations"]["io.github.husk.rootfs.quota"] = json!("64M"));
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg(&format!(
            "{}: a quota needs project quotas enforced on this ext4 filesystem, and they are \
             not: mount it with -o prjquota",
            mnt.display()
        ));
    assert!(!c.exists() && !rt.root().join(&id).exists());
}

#[test]
fn a_create_failing_after_the_overlay_is_made_removes_it() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let c = rt.work().join("f");
    let (mut b, _) = overlay_bundle(&rt, "true", &c);
    // The bind's source is missing: the child fails mounting it, over the made overlay.
    b.edit(|cfg| {
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/mnt", "type": "bind", "source": "/nonexistent-src",
            "options": ["rbind"]}));
    });
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("/nonexistent-src");
    assert_eq!(overlay_mounts(&rt), 0, "the overlay is left mounted");
    assert!(!c.exists(), "{} left", c.display());
    assert!(!rt.root().join(&id).exists());
}
