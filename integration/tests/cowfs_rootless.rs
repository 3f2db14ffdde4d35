//! An overlay rootfs for an unprivileged caller (scripts/setup's `huskrl`): husk makes the
//! upper and work dirs as the user, and the container's first process mounts the overlay in
//! its own user and mount namespaces, where the kernel lets the user mount one.

use integration::rootless::Rootless;
use integration::*;
use std::path::Path;

fn overlay(b: &mut integration::rootless::RlBundle, top: &Path, c: &Path, extra: Value) {
    let base = b.rootfs();
    b.edit(|cfg| {
        overlay_root(cfg, &[top, &base], c);
        for (k, v) in extra.as_object().unwrap() {
            cfg["annotations"][format!("io.github.husk.rootfs.{k}")] = v.clone();
        }
    });
}

/// Overlay mounts anywhere under `dir` in the host's mount table.
fn host_overlays(dir: &Path) -> usize {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - overlay ") && l.contains(&d))
        .count()
}

#[test]
fn an_unprivileged_user_runs_on_an_overlay_with_userxattr() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let Some(rl) = Rootless::new() else { return };
    let top = rl.dir().join("top");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "from-top\n").unwrap();
    rl.give_tree(&top);
    // The upper exists (the user's): husk keeps it after delete, so the writes can be seen.
    let c = rl.dir().join("c");
    std::fs::create_dir_all(c.join("upper")).unwrap();
    rl.give_tree(&c);
    let mut b = rl.bundle(&[
        "sh",
        "-c",
        "cat /etc/motd; echo w > /written; rm /etc/motd; ls /etc/motd 2>&1; \
         grep ' / / ' /proc/self/mountinfo; echo HOME=$HOME",
    ]);
    overlay(&mut b, &top, &c, json!({"options": "userxattr"}));
    let id = rl.id();
    let o = rl.run(&b, &id).expect_ok();
    let mut lines = o.stdout.lines();
    assert_eq!(lines.next(), Some("from-top"), "{o}");
    assert!(lines.next().unwrap().contains("No such file"), "{o}");
    // The container's root is the overlay, with the option asked for.
    let root = lines.next().unwrap();
    assert!(
        root.contains(" - overlay overlay ") && root.contains("userxattr"),
        "{root}"
    );
    // HOME from the image's /etc/passwd, read by husk in the layers (not mounted for it).
    assert_eq!(lines.next(), Some("HOME=/root"), "{o}");
    // The writes landed in the upper only; the whiteout of the deleted file is there too.
    assert_eq!(
        std::fs::read_to_string(c.join("upper/written")).unwrap(),
        "w\n"
    );
    assert!(std::fs::symlink_metadata(c.join("upper/etc/motd")).is_ok());
    assert_eq!(
        std::fs::read_to_string(top.join("etc/motd")).unwrap(),
        "from-top\n"
    );
    assert!(!b.rootfs().join("written").exists());
    // The overlay was never in the host's mount table; work (husk's) is gone, state too.
    assert_eq!(host_overlays(rl.dir()), 0);
    assert!(!c.join("work").exists());
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}

#[test]
fn what_needs_root_is_refused_for_an_unprivileged_user() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let Some(rl) = Rootless::new() else { return };
    let c = rl.dir().join("c");
    let cases = [
        (
            json!({"quota": "64M"}),
            "a quota on an overlay needs root (husk runs as uid",
        ),
        (
            json!({"idmap": "true"}),
            "idmap (id-mapped layers) on an overlay needs root",
        ),
    ];
    for (extra, want) in cases {
        let mut b = rl.bundle(&["true"]);
        let top = b.rootfs();
        overlay(&mut b, &top.join("etc"), &c, extra);
        let id = rl.id();
        rl.exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg(want);
        assert!(!c.exists(), "{want}: {} left", c.display());
        assert_eq!(rl.state_entries(), Vec::<String>::new());
    }
    let mut b = rl.bundle(&["true"]);
    let sub = b.rootfs();
    b.edit(|cfg| {
        cfg["annotations"] = json!({
            "io.github.husk.rootfs": "btrfs",
            "io.github.husk.rootfs.subvolume": sub.to_str().unwrap(),
            "io.github.husk.rootfs.snapshot": c.join("snap").to_str().unwrap(),
        });
    });
    let id = rl.id();
    rl.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("a btrfs rootfs needs root");
    assert_eq!(rl.state_entries(), Vec::<String>::new());
}
