//! btrfs root filesystems husk makes (docs/rootfs-sources.md): a snapshot of an image
//! subvolume, and an overlay whose upper is a subvolume, each with a qgroup quota; on a
//! loop-backed btrfs each test makes and removes.

use integration::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A btrfs on a sparse file, loop-mounted under the test's work dir; unmounted on drop.
struct Btrfs {
    mnt: PathBuf,
    img: PathBuf,
}

impl Btrfs {
    /// `quotas`: `btrfs quota enable` on it.
    fn new(rt: &Runtime, quotas: bool) -> Option<Btrfs> {
        if missing_tool("mkfs.btrfs", "btrfs-progs") {
            return None;
        }
        let n = unique();
        let img = rt.work().join(format!("btrfs-{n}.img"));
        let mnt = rt.work().join(format!("btrfs-{n}"));
        host("truncate", &["-s", "1G", img.to_str().unwrap()]);
        host("mkfs.btrfs", &["-q", img.to_str().unwrap()]);
        std::fs::create_dir_all(&mnt).unwrap();
        // commit=1: the cleaner drops deleted subvolumes within a second, not 30.
        host(
            "mount",
            &[
                "-o",
                "loop,commit=1",
                img.to_str().unwrap(),
                mnt.to_str().unwrap(),
            ],
        );
        let fs = Btrfs { mnt, img };
        if quotas {
            fs.btrfs(&["quota", "enable", fs.mnt.to_str().unwrap()]);
        }
        Some(fs)
    }

    fn btrfs(&self, args: &[&str]) -> String {
        host("btrfs", args)
    }

    /// An image subvolume `name` holding the bundle's busybox rootfs and /etc/motd.
    fn image(&self, b: &Bundle, name: &str) -> PathBuf {
        let sv = self.mnt.join(name);
        self.btrfs(&["subvolume", "create", sv.to_str().unwrap()]);
        host(
            "cp",
            &[
                "-a",
                &format!("{}/.", b.rootfs().display()),
                sv.to_str().unwrap(),
            ],
        );
        std::fs::create_dir_all(sv.join("etc")).unwrap();
        std::fs::write(sv.join("etc/motd"), "from-image\n").unwrap();
        sv
    }

    /// The subvolumes' paths relative to the mount, after the cleaner has run.
    fn subvolumes(&self) -> Vec<String> {
        let m = self.mnt.to_str().unwrap();
        self.btrfs(&["subvolume", "sync", m]);
        self.btrfs(&["subvolume", "list", "-o", m])
            .lines()
            .filter_map(|l| l.split(" path ").nth(1).map(str::to_string))
            .collect()
    }

    /// The level-0 qgroups (one per subvolume, `0/ID`).
    fn qgroups(&self) -> Vec<String> {
        self.btrfs(&["qgroup", "show", self.mnt.to_str().unwrap()])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|q| q.starts_with("0/"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        umount_lazy(&self.mnt);
        let _ = std::fs::remove_file(&self.img);
    }
}

/// A btrfs (quotas on or off) holding the image subvolume `img`, and the test's runtime;
/// None: skipped.
fn with_image(quotas: bool) -> Option<(Btrfs, PathBuf, Runtime)> {
    if skip_for_runc("husk's own rootfs sources") {
        return None;
    }
    let rt = Runtime::new();
    let fs = Btrfs::new(&rt, quotas)?;
    let img = fs.image(&Bundle::sh("true"), "img");
    Some((fs, img, rt))
}

/// A bundle whose root is a snapshot (at `snap`) of the image subvolume `img`.
fn snapshot_bundle(script: &str, img: &Path, snap: &Path, quota: Option<&str>) -> Bundle {
    let mut b = Bundle::sh(script);
    b.edit(|cfg| {
        cfg["root"]["readonly"] = json!(false);
        cfg["annotations"] = json!({
            "io.github.husk.rootfs": "btrfs",
            "io.github.husk.rootfs.subvolume": img.to_str().unwrap(),
            "io.github.husk.rootfs.snapshot": snap.to_str().unwrap(),
        });
        if let Some(q) = quota {
            cfg["annotations"]["io.github.husk.rootfs.quota"] = json!(q);
        }
    });
    b
}

/// A 100 MiB write: the output is dd's messages, then the size of what it wrote.
const DD_100M: &str = "dd if=/dev/zero of=/big bs=1M count=100 2>&1; sync; stat -c %s /big";

/// The size `stat` printed last, after checking dd failed for the quota.
fn quota_stop(out: &str) -> u64 {
    assert!(
        out.contains("Disk quota exceeded") || out.contains("No space left"),
        "dd did not fail for the quota: {out}"
    );
    let size: u64 = out.lines().last().unwrap().trim().parse().unwrap();
    eprintln!("dd stopped at {size} bytes ({} MiB)", size >> 20);
    assert!(
        (56 << 20..=68 << 20).contains(&size),
        "stopped at {size}, not near 64 MiB: {out}"
    );
    size
}

#[test]
fn a_snapshot_sees_the_image_and_writes_only_in_itself() {
    let Some((fs, img, rt)) = with_image(true) else {
        return;
    };
    let before = fs.qgroups();
    let (s1, s2) = (fs.mnt.join("c1"), fs.mnt.join("c2"));
    let b1 = snapshot_bundle("cat /etc/motd; echo one > /mine; sleep 30", &img, &s1, None);
    let id1 = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b1.path_str(), &id1])
        .expect_ok();
    let t0 = std::time::Instant::now();
    while !s1.join("mine").exists() {
        assert!(t0.elapsed().as_secs() < 10, "c1 never wrote");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The snapshot is the container's root, on the image's filesystem (no overlay, no bind).
    let pid = rt.state(&id1)["pid"].as_i64().unwrap();
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(root, Path::new("/"), "pivot_root'ed");
    let b2 = snapshot_bundle(
        "cat /etc/motd; cat /mine 2>&1; echo two > /mine; cat /mine",
        &img,
        &s2,
        None,
    );
    let id2 = rt.id();
    let o = rt.run(&b2, &id2).expect_ok();
    assert!(o.stdout.starts_with("from-image\n"), "{o}");
    assert!(o.stdout.contains("No such file"), "c2 saw c1's write: {o}");
    assert!(o.stdout.ends_with("two\n"), "{o}");
    assert_eq!(std::fs::read_to_string(s1.join("mine")).unwrap(), "one\n");
    assert!(!img.join("mine").exists(), "a write reached the image");
    assert!(!s2.exists(), "c2's snapshot left after its run");
    rt.exec(&["delete", "--force", &id1]).expect_ok();
    assert!(!s1.exists(), "c1's snapshot left");
    assert_eq!(fs.subvolumes(), ["img"]);
    assert_eq!(fs.qgroups(), before, "a qgroup left");
    assert!(!rt.root().join(&id1).exists() && !rt.root().join(&id2).exists());
}

#[test]
fn a_snapshot_quota_stops_a_write_near_64_mib() {
    let Some((fs, img, rt)) = with_image(true) else {
        return;
    };
    let qgroups = fs.qgroups();
    let snap = fs.mnt.join("q");
    let b = snapshot_bundle(DD_100M, &img, &snap, Some("64M"));
    let id = rt.id();
    let o = rt.run(&b, &id);
    quota_stop(&o.stdout);
    assert!(!img.join("big").exists(), "the write reached the image");
    assert_eq!(fs.subvolumes(), ["img"]);
    assert_eq!(fs.qgroups(), qgroups, "the snapshot's qgroup left");
}

#[test]
fn an_overlay_upper_on_btrfs_gets_a_qgroup_quota() {
    if skip_for_runc("husk's own rootfs sources") {
        return;
    }
    let rt = Runtime::new();
    let Some(fs) = Btrfs::new(&rt, true) else {
        return;
    };
    let qgroups = fs.qgroups();
    let mut b = Bundle::sh(DD_100M);
    let base = b.rootfs();
    let c = fs.mnt.join("ctr");
    b.edit(|cfg| {
        overlay_root(cfg, &[&base], &c);
        cfg["annotations"]["io.github.husk.rootfs.quota"] = json!("64MiB");
    });
    let id = rt.id();
    let o = rt.run(&b, &id);
    quota_stop(&o.stdout);
    // The layer (on the host's disk) untouched; upper subvolume, work and qgroup gone.
    assert!(!base.join("big").exists());
    assert!(!c.exists(), "{} left", c.display());
    assert!(fs.subvolumes().is_empty(), "{:?}", fs.subvolumes());
    assert_eq!(fs.qgroups(), qgroups);
}

#[test]
fn a_quota_without_btrfs_quotas_enabled_is_refused_with_nothing_left() {
    let Some((fs, img, rt)) = with_image(false) else {
        return;
    };
    let snap = fs.mnt.join("q");
    let b = snapshot_bundle("true", &img, &snap, Some("64M"));
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg(&format!(
            "{}: a quota needs quotas enabled on its btrfs filesystem",
            snap.display()
        ));
    assert!(!snap.exists());
    assert_eq!(fs.subvolumes(), ["img"]);
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn bad_btrfs_sources_are_refused_with_nothing_left() {
    let Some((fs, img, rt)) = with_image(true) else {
        return;
    };
    let plain = fs.mnt.join("plain");
    std::fs::create_dir(&plain).unwrap();
    let taken = fs.mnt.join("taken");
    std::fs::create_dir(&taken).unwrap();
    let off_btrfs = rt.work().join("elsewhere");
    std::fs::create_dir(&off_btrfs).unwrap();
    let snap = fs.mnt.join("s");
    let missing = fs.mnt.join("missing");
    let cases: Vec<(PathBuf, PathBuf, String)> = vec![
        (
            missing.clone(),
            snap.clone(),
            format!("{}: the btrfs subvolume: No such file", missing.display()),
        ),
        (
            plain.clone(),
            snap.clone(),
            format!("{}: not a btrfs subvolume", plain.display()),
        ),
        (
            rt.work().to_path_buf(),
            snap.clone(),
            format!("{}: not a btrfs subvolume", rt.work().display()),
        ),
        (
            img.clone(),
            taken.clone(),
            format!("{}: the snapshot path exists already", taken.display()),
        ),
        (
            img.clone(),
            off_btrfs.join("s"),
            format!(
                "{}: the snapshot's parent directory is not on btrfs",
                off_btrfs.display()
            ),
        ),
    ];
    for (sub, snapshot, want) in cases {
        let b = snapshot_bundle("true", &sub, &snapshot, None);
        let id = rt.id();
        rt.exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg(&want);
        assert!(!rt.root().join(&id).exists(), "{want}: state left");
    }
    assert!(!snap.exists() && !off_btrfs.join("s").exists());
    assert!(taken.is_dir(), "a path husk did not make was removed");
    assert_eq!(fs.subvolumes(), ["img"]);
}

#[test]
fn a_snapshot_killed_mid_create_is_removed_by_delete_force() {
    let Some((fs, img, rt)) = with_image(true) else {
        return;
    };
    let qgroups = fs.qgroups();
    let snap = fs.mnt.join("k");
    let mut b = snapshot_bundle("sleep 30", &img, &snap, Some("64M"));
    // The createRuntime hook kills husk itself: the snapshot is made, the init half made.
    b.edit(|cfg| {
        cfg["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]});
    });
    let id = rt.id();
    let o = rt.exec(&["create", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.status.code(), None, "killed: {o}");
    assert!(snap.join("etc/motd").exists(), "the snapshot was made");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(!snap.exists());
    assert_eq!(fs.subvolumes(), ["img"]);
    assert_eq!(fs.qgroups(), qgroups);
    assert!(!rt.root().join(&id).exists());
}
