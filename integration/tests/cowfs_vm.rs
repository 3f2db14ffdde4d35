//! Root filesystems husk makes where this host's kernel cannot: an overlay whose upper has an
//! ext4 or XFS project quota, and a ZFS clone of a snapshot (docs/rootfs-sources.md). Run by
//! `scripts/vm-lane cowfs-test` in a guest with Debian's kernel (HUSK_LANE=cowfs), which
//! loads xfs, quota_v2, loop and scripts/zfs's modules and puts the zfs userland on PATH.
//! Elsewhere every test returns at once, saying why. Each test makes its own filesystem on a
//! loop file (or a zpool on a file vdev) under the temp dir and removes it after.

use integration::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// True (the test runs) inside the cowfs lane with `tools` present; outside it a skip with
/// the reason. A missing tool inside the lane fails under CI=true (missing_tool).
fn in_lane(tools: &[(&str, &str)]) -> bool {
    if std::env::var("HUSK_LANE").as_deref() != Ok("cowfs") {
        eprintln!("skipped: needs the cowfs VM lane (scripts/vm-lane cowfs-test)");
        return false;
    }
    !tools.iter().any(|(t, p)| missing_tool(t, p))
}

/// Runs a command, returning (success, stdout, stderr).
fn sh(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Bytes used on the filesystem holding `p` (statvfs: blocks - free).
fn used(p: &Path) -> u64 {
    let out = host("stat", &["-f", "-c", "%b %f %S", p.to_str().unwrap()]);
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0] - v[1]) * v[2]
}

/// Mounts whose mountpoint is under `dir` (or is it).
fn mounts_at(dir: &Path) -> Vec<PathBuf> {
    mounts_under(dir)
}

/// Waits (bounded, generous under TCG) until `p` exists.
fn wait_for(p: &Path) {
    let t0 = Instant::now();
    while !p.exists() {
        if t0.elapsed() > Duration::from_secs(300) {
            let (_, ps, _) = sh("ps", &["-eo", "pid,stat,wchan:30,args"]);
            panic!("{} never appeared; processes:\n{ps}", p.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{} after {:.1}s", p.display(), t0.elapsed().as_secs_f64());
}

/// A loop-mounted filesystem made for one test: unmounted and its file removed on drop.
struct LoopFs {
    _dir: TempDir,
    mnt: PathBuf,
}

impl LoopFs {
    /// `kind` is `xfs` or `ext4`; `prjquota`: made with project quota support and mounted
    /// with it enforced.
    fn new(kind: &str, prjquota: bool) -> LoopFs {
        let dir = TempDir::new(&format!("fs-{kind}"));
        let img = dir.path().join("img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        // XFS's smallest filesystem is 300 MiB; the file is sparse.
        host("truncate", &["-s", "512M", img.to_str().unwrap()]);
        let img_s = img.to_str().unwrap();
        match (kind, prjquota) {
            ("xfs", _) => host("mkfs.xfs", &["-q", img_s]),
            ("ext4", true) => host("mkfs.ext4", &["-q", "-O", "quota,project", img_s]),
            _ => host("mkfs.ext4", &["-q", img_s]),
        };
        let opts = if prjquota { "loop,prjquota" } else { "loop" };
        host("mount", &["-o", opts, img_s, mnt.to_str().unwrap()]);
        LoopFs { _dir: dir, mnt }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        // A plain umount (the loop device is autocleared): a lazy one would leave the device.
        let _ = sh("umount", &[self.mnt.to_str().unwrap()]);
    }
}

/// A bundle whose rootfs is an overlay of its busybox rootfs with upper and work under `c`
/// and a quota.
fn quota_bundle(script: &str, c: &Path, quota: &str) -> Bundle {
    let mut b = Bundle::sh(script);
    let base = b.rootfs();
    b.edit(|cfg| {
        overlay_root(cfg, &[&base], c);
        cfg["annotations"]["io.github.husk.rootfs.quota"] = json!(quota);
    });
    b
}

/// The 100 MiB write into a 64 MiB quota, as the container runs it: dd's message and exit
/// status land in /out/dd, then /out/done says it finished (/out is a bind mount of a host
/// directory: nothing more can be written under the full quota); then the container waits
/// to be deleted.
const FILL: &str = "dd if=/dev/zero of=/f bs=1M count=100 2>/out/dd; echo rc=$? >>/out/dd; \
                    touch /out/done; sleep 600";

/// Binds a fresh host directory (under the test's work dir) at /out in the container.
fn with_out(rt: &Runtime, b: &mut Bundle) -> PathBuf {
    let out = rt.work().join(format!("out-{}", unique()));
    std::fs::create_dir(&out).unwrap();
    let src = out.to_str().unwrap().to_string();
    b.edit(|cfg| {
        cfg["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/out", "type": "bind", "source": src, "options": ["rbind"]}),
        );
    });
    out
}

/// What FILL left: dd's report (in `out`), and the size of /f (in `root`, the container's
/// upper or clone seen from the host).
fn filled(out: &Path, root: &Path) -> (String, u64) {
    let dd = std::fs::read_to_string(out.join("dd")).unwrap();
    let size = std::fs::metadata(root.join("f")).unwrap().len();
    (dd, size)
}

/// dd failed for lack of space (ENOSPC or EDQUOT) with the file near 64 MiB.
#[track_caller]
fn assert_quota_hit(what: &str, dd: &str, size: u64) {
    eprintln!(
        "{what}: /f is {size} bytes ({:.1} MiB); dd: {}",
        size as f64 / MIB as f64,
        dd.trim().replace('\n', " | ")
    );
    assert!(!dd.contains("rc=0"), "{what}: dd succeeded: {dd}");
    assert!(
        dd.contains("No space left on device") || dd.contains("Disk quota exceeded"),
        "{what}: {dd}"
    );
    assert!(
        (56 * MIB..=68 * MIB).contains(&size),
        "{what}: /f is {size} bytes, not near 64 MiB"
    );
}

/// overlay + project quota on `kind`: the quota stops the write, the layer and the rest of
/// the filesystem are untouched, and delete leaves nothing.
fn overlay_quota(kind: &str) {
    let tools = [
        (&*format!("mkfs.{kind}"), kind_pkg(kind)),
        ("xfs_quota", "xfsprogs"),
    ];
    if !in_lane(&tools[..if kind == "xfs" { 2 } else { 1 }]) {
        return;
    }
    let fs = LoopFs::new(kind, true);
    let rt = Runtime::new();
    let c = fs.mnt.join("c1");
    let mut b = quota_bundle(FILL, &c, "64M");
    let out = with_out(&rt, &mut b);
    let before = used(&fs.mnt);
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    wait_for(&out.join("done"));
    let (dd, size) = filled(&out, &c.join("upper"));
    assert_quota_hit(&format!("overlay on {kind}"), &dd, size);
    let grew = used(&fs.mnt) - before;
    eprintln!(
        "overlay on {kind}: the filesystem grew by {grew} bytes ({:.1} MiB)",
        grew as f64 / MIB as f64
    );
    assert!(grew <= 70 * MIB, "{kind}: grew by {grew}");
    assert!(
        !b.rootfs().join("f").exists(),
        "the write reached the layer"
    );
    if kind == "xfs" {
        let limits = xfs_limits(&fs.mnt);
        eprintln!("overlay on xfs: project limits (id, KiB) {limits:?}");
        assert_eq!(limits.len(), 1);
        assert_eq!(limits[0].1, 64 << 10);
    }
    rt.exec(&["delete", "--force", &id]).expect_ok();
    if kind == "xfs" {
        assert_eq!(xfs_limits(&fs.mnt), [], "the project's limit is left");
    }
    assert!(!c.exists(), "{} left", c.display());
    assert!(!rt.root().join(&id).exists(), "state dir left");
    assert_eq!(mounts_at(rt.root()), Vec::<PathBuf>::new());
    let back = used(&fs.mnt);
    assert!(
        back <= before + MIB,
        "{kind}: {back} used after delete, {before} before"
    );
}

/// The XFS project quotas with a block hard limit on the filesystem at `mnt`: (id, KiB).
fn xfs_limits(mnt: &Path) -> Vec<(String, u64)> {
    let report = host(
        "xfs_quota",
        &["-x", "-c", "report -p -N -b", mnt.to_str().unwrap()],
    );
    report
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hard: u64 = f.get(3)?.parse().ok()?;
            (hard > 0).then(|| (f[0].to_string(), hard))
        })
        .collect()
}

fn kind_pkg(kind: &str) -> &'static str {
    if kind == "xfs" {
        "xfsprogs"
    } else {
        "e2fsprogs"
    }
}

#[test]
fn overlay_with_an_xfs_project_quota_stops_at_the_limit() {
    overlay_quota("xfs");
}

#[test]
fn overlay_with_an_ext4_project_quota_stops_at_the_limit() {
    overlay_quota("ext4");
}

#[test]
fn a_quota_on_ext4_without_prjquota_is_refused_naming_the_path() {
    if !in_lane(&[("mkfs.ext4", "e2fsprogs")]) {
        return;
    }
    let fs = LoopFs::new("ext4", false);
    let rt = Runtime::new();
    let c = fs.mnt.join("c1");
    let b = quota_bundle("true", &c, "64M");
    let id = rt.id();
    let o = rt
        .exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("prjquota")
        .expect_msg(fs.mnt.to_str().unwrap());
    eprintln!("refused: {}", o.stderr.trim());
    assert!(!c.exists(), "{} left", c.display());
    assert!(!rt.root().join(&id).exists(), "state dir left");
    assert_eq!(mounts_at(rt.root()), Vec::<PathBuf>::new());
}

#[test]
fn killed_mid_create_with_a_project_quota_then_delete_force_leaves_nothing() {
    if !in_lane(&[("mkfs.xfs", "xfsprogs"), ("xfs_quota", "xfsprogs")]) {
        return;
    }
    let fs = LoopFs::new("xfs", true);
    let rt = Runtime::new();
    let c = fs.mnt.join("k");
    let mut b = quota_bundle("sleep 30", &c, "64M");
    // The createRuntime hook kills husk itself: the quota is set, the overlay mounted.
    b.edit(|cfg| {
        cfg["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]});
    });
    let id = rt.id();
    let o = rt.exec(&["create", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.status.code(), None, "killed: {o}");
    assert!(c.join("upper").exists());
    assert_eq!(mounts_at(rt.root()).len(), 1, "the overlay is left mounted");
    assert_eq!(xfs_limits(&fs.mnt).len(), 1, "the limit is set");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(!c.exists(), "{} left", c.display());
    assert!(!rt.root().join(&id).exists(), "state dir left");
    assert_eq!(mounts_at(rt.root()), Vec::<PathBuf>::new());
    assert_eq!(xfs_limits(&fs.mnt), [], "the project's limit is left");
}

/// A zpool on a sparse file vdev, with `img` (the bundle's busybox rootfs plus /etc/motd)
/// snapshotted as `img@v1`; destroyed on drop.
struct Pool {
    _dir: TempDir,
    name: String,
}

impl Pool {
    fn new(rootfs: &Path) -> Pool {
        let dir = TempDir::new("zpool");
        let vdev = dir.path().join("vdev");
        host("truncate", &["-s", "512M", vdev.to_str().unwrap()]);
        let name = format!("husk{}x{}", std::process::id(), unique());
        // compression off: /dev/zero would compress to nothing and never meet the quota.
        host(
            "zpool",
            &[
                "create",
                "-f",
                "-o",
                "cachefile=none",
                "-O",
                "mountpoint=none",
                "-O",
                "compression=off",
                &name,
                vdev.to_str().unwrap(),
            ],
        );
        let p = Pool { _dir: dir, name };
        let img = format!("{}/img", p.name);
        host("zfs", &["create", "-o", "mountpoint=legacy", &img]);
        let mnt = p._dir.path().join("img");
        std::fs::create_dir(&mnt).unwrap();
        host("mount", &["-t", "zfs", &img, mnt.to_str().unwrap()]);
        host(
            "cp",
            &[
                "-a",
                &format!("{}/.", rootfs.display()),
                mnt.to_str().unwrap(),
            ],
        );
        std::fs::write(mnt.join("etc/motd"), "from-snapshot\n").unwrap();
        host("umount", &[mnt.to_str().unwrap()]);
        host("zfs", &["snapshot", &format!("{img}@v1")]);
        p
    }

    fn snapshot(&self) -> String {
        format!("{}/img@v1", self.name)
    }

    fn dataset(&self, c: &str) -> String {
        format!("{}/{c}", self.name)
    }

    /// Every dataset (and snapshot) in the pool.
    fn list(&self) -> Vec<String> {
        let (ok, out, err) = sh(
            "zfs",
            &["list", "-H", "-o", "name", "-t", "all", "-r", &self.name],
        );
        assert!(ok, "zfs list: {err}");
        out.lines().map(str::to_string).collect()
    }

    /// A file of the origin dataset `img`, read through a mount of its snapshot.
    fn origin_has(&self, file: &str) -> bool {
        let mnt = self._dir.path().join("check");
        let _ = std::fs::create_dir(&mnt);
        host(
            "mount",
            &["-t", "zfs", &self.snapshot(), mnt.to_str().unwrap()],
        );
        let img = format!("{}/img", self.name);
        let written = host("zfs", &["get", "-Hp", "-o", "value", "written", &img]);
        let there = mnt.join(file).exists();
        host("umount", &[mnt.to_str().unwrap()]);
        // Nothing written to the origin since its snapshot, and the file not in it.
        there || written.trim() != "0"
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = sh("zpool", &["destroy", "-f", &self.name]);
    }
}

fn zfs_bundle(script: &str, pool: &Pool, c: &str, quota: Option<&str>) -> Bundle {
    let mut b = Bundle::sh(script);
    let (snap, ds) = (pool.snapshot(), pool.dataset(c));
    b.edit(|cfg| {
        cfg["root"]["readonly"] = json!(false);
        cfg["annotations"] = json!({
            "io.github.husk.rootfs": "zfs",
            "io.github.husk.rootfs.snapshot": snap,
            "io.github.husk.rootfs.dataset": ds,
        });
        if let Some(q) = quota {
            cfg["annotations"]["io.github.husk.rootfs.quota"] = json!(q);
        }
    });
    b
}

fn zfs_tools() -> bool {
    in_lane(&[
        ("zfs", "zfsutils-linux (scripts/zfs)"),
        ("zpool", "zfsutils-linux (scripts/zfs)"),
    ])
}

/// ZFS mounts (type zfs) anywhere.
fn zfs_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - zfs "))
        .count()
}

#[test]
fn a_zfs_clone_with_a_quota_stops_at_the_limit_and_leaves_the_origin_alone() {
    if !zfs_tools() {
        return;
    }
    let base = Bundle::sh("true");
    let pool = Pool::new(&base.rootfs());
    let rt = Runtime::new();
    let mut b = zfs_bundle(
        &format!("cat /etc/motd >/motd; {FILL}"),
        &pool,
        "c1",
        Some("64M"),
    );
    let out = with_out(&rt, &mut b);
    let mounts = zfs_mounts();
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let root = rt.root().join(&id).join("rootfs");
    wait_for(&out.join("done"));
    assert_eq!(
        std::fs::read_to_string(root.join("motd")).unwrap(),
        "from-snapshot\n",
        "the container sees the snapshot's files"
    );
    let (dd, size) = filled(&out, &root);
    assert_quota_hit("zfs clone", &dd, size);
    let q = host(
        "zfs",
        &[
            "get",
            "-Hp",
            "-o",
            "value",
            "quota,used",
            &pool.dataset("c1"),
        ],
    );
    eprintln!("zfs clone: quota, used = {}", q.trim().replace('\n', ", "));
    assert_eq!(q.lines().next(), Some("67108864"));
    assert!(!pool.origin_has("f"), "the write reached the origin");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    let left = pool.list();
    assert_eq!(
        left,
        [pool.name.clone(), pool.dataset("img"), pool.snapshot()]
    );
    assert_eq!(zfs_mounts(), mounts, "the clone's mount is left");
    assert!(!rt.root().join(&id).exists(), "state dir left");
}

#[test]
fn two_zfs_clones_of_one_snapshot_do_not_see_each_others_writes() {
    if !zfs_tools() {
        return;
    }
    let base = Bundle::sh("true");
    let pool = Pool::new(&base.rootfs());
    let rt = Runtime::new();
    let b1 = zfs_bundle("echo one > /mine; sleep 600", &pool, "a", None);
    let b2 = zfs_bundle(
        "ls /mine 2>&1; echo two > /mine; cat /mine",
        &pool,
        "b",
        None,
    );
    let id1 = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b1.path_str(), &id1])
        .expect_ok();
    let root1 = rt.root().join(&id1).join("rootfs");
    wait_for(&root1.join("mine"));
    let id2 = rt.id();
    let o = rt.run(&b2, &id2).expect_ok();
    assert!(o.stdout.contains("No such file"), "{o}");
    assert!(o.stdout.ends_with("two\n"), "{o}");
    assert_eq!(
        std::fs::read_to_string(root1.join("mine")).unwrap(),
        "one\n"
    );
    assert!(!pool.origin_has("mine"), "a write reached the origin");
    assert!(!pool.list().contains(&pool.dataset("b")), "b's clone left");
    rt.exec(&["delete", "--force", &id1]).expect_ok();
    assert!(!pool.list().contains(&pool.dataset("a")), "a's clone left");
    assert!(!rt.root().join(&id1).exists() && !rt.root().join(&id2).exists());
    assert_eq!(mounts_at(rt.root()), Vec::<PathBuf>::new());
}

#[test]
fn a_zfs_snapshot_that_does_not_exist_is_refused_with_nothing_left() {
    if !zfs_tools() {
        return;
    }
    let base = Bundle::sh("true");
    let pool = Pool::new(&base.rootfs());
    let rt = Runtime::new();
    let mut b = zfs_bundle("true", &pool, "c1", Some("64M"));
    let missing = format!("{}/img@nope", pool.name);
    b.edit(|cfg| cfg["annotations"]["io.github.husk.rootfs.snapshot"] = json!(missing));
    let id = rt.id();
    let o = rt
        .exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg(&missing)
        .expect_msg("does not exist");
    eprintln!("refused: {}", o.stderr.trim());
    assert!(
        !pool.list().contains(&pool.dataset("c1")),
        "a clone was made"
    );
    assert!(!rt.root().join(&id).exists(), "state dir left");
    assert_eq!(mounts_at(rt.root()), Vec::<PathBuf>::new());
    // A dataset that exists already is refused too, and left alone.
    let mut b = zfs_bundle("true", &pool, "img", None);
    b.edit(|_| {});
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("exists already");
    assert!(pool.list().contains(&pool.dataset("img")));
    assert!(!rt.root().join(&id).exists(), "state dir left");
}

#[test]
fn killed_mid_create_with_a_zfs_clone_then_delete_force_leaves_nothing() {
    if !zfs_tools() {
        return;
    }
    let base = Bundle::sh("true");
    let pool = Pool::new(&base.rootfs());
    let rt = Runtime::new();
    let mut b = zfs_bundle("sleep 30", &pool, "k", Some("64M"));
    // The createRuntime hook kills husk itself: the clone exists and is mounted.
    b.edit(|cfg| {
        cfg["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]});
    });
    let mounts = zfs_mounts();
    let id = rt.id();
    let o = rt.exec(&["create", "--bundle", &b.path_str(), &id]);
    assert_eq!(o.status.code(), None, "killed: {o}");
    assert!(
        pool.list().contains(&pool.dataset("k")),
        "the clone was made"
    );
    assert_eq!(zfs_mounts(), mounts + 1, "the clone is left mounted");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(
        !pool.list().contains(&pool.dataset("k")),
        "the clone is left"
    );
    assert_eq!(zfs_mounts(), mounts);
    assert!(!rt.root().join(&id).exists(), "state dir left");
}

#[test]
fn features_report_zfs_and_both_project_quotas_here() {
    if !zfs_tools() {
        return;
    }
    let rt = Runtime::new();
    let o = rt.exec(&["features"]).expect_ok();
    let f: Value = serde_json::from_str(&o.stdout).unwrap();
    let list = |k: &str| -> Vec<String> {
        let v = f["annotations"][format!("io.github.husk.rootfs.{k}")]
            .as_str()
            .unwrap_or_default();
        v.split(',').map(str::to_string).collect()
    };
    let (sources, quotas) = (list("sources"), list("quotas"));
    eprintln!("features: sources {sources:?}, quotas {quotas:?}");
    assert!(sources.contains(&"zfs".to_string()), "{sources:?}");
    for q in ["zfs", "ext4-project", "xfs-project"] {
        assert!(quotas.contains(&q.to_string()), "{q}: {quotas:?}");
    }
}
