//! A root filesystem husk makes survives a SIGKILL of `create` at any point: strace stops
//! husk with SIGKILL as it enters a chosen system call (the kernel's own fault, no hook in
//! husk), then `delete --force` must leave nothing: no mount, upper, work dir, id-mapped
//! layer mount or state.

use integration::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Mounts at or under `dir`.
fn mounts(dir: &Path) -> Vec<PathBuf> {
    mounts_under(dir)
}

/// An overlay bundle of one extra layer over the busybox rootfs, upper and work under `c`.
fn bundle(rt: &Runtime, c: &Path, idmap: bool) -> Bundle {
    let top = rt.work().join(format!("top-{}", unique()));
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "top\n").unwrap();
    let mut b = Bundle::sh("sleep 30");
    let base = b.rootfs();
    b.edit(|cfg| {
        overlay_root(cfg, &[&top, &base], c);
        if idmap {
            set_ns(cfg, "user", None);
            let m = json!([{"containerID": 0, "hostID": 400000, "size": 65536}]);
            cfg["linux"]["uidMappings"] = m.clone();
            cfg["linux"]["gidMappings"] = m;
            cfg["annotations"]["io.github.husk.rootfs.idmap"] = json!("true");
        }
    });
    b
}

/// `husk create` under strace, killed by SIGKILL when it enters `syscall` for the `nth` time
/// (only husk itself is traced, not the container's processes).
fn create_killed_at(rt: &Runtime, b: &Bundle, id: &str, syscall: &str, nth: u32) {
    let out = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL:when={nth}"))
        .arg(husk_bin())
        .args(["--root", &rt.root_str(), "create", "--bundle"])
        .arg(b.path())
        .arg(id)
        .output()
        .unwrap();
    // strace ends as its tracee did: killed.
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "create was not killed at {syscall} #{nth}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills create at `syscall` #`nth`, checks what `left` says is there, then `delete --force`
/// and checks nothing remains.
fn kill_then_delete(syscall: &str, nth: u32, idmap: bool, left: impl Fn(&Path, &Path)) {
    let rt = Runtime::new();
    let c = rt.work().join(format!("c-{syscall}-{nth}"));
    let b = bundle(&rt, &c, idmap);
    let id = rt.id();
    create_killed_at(&rt, &b, &id, syscall, nth);
    let state = rt.root().join(&id);
    assert!(state.is_dir(), "{syscall}: no state dir to find it by");
    left(&c, &state);
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_eq!(
        mounts(rt.root()),
        Vec::<PathBuf>::new(),
        "{syscall}: mounts left"
    );
    assert!(!c.exists(), "{syscall}: {} left", c.display());
    assert!(!state.exists(), "{syscall}: state left");
    // And the id is free again: a new create of it works and is deleted cleanly.
    let b = bundle(&rt, &c, idmap);
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_ok();
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(!c.exists() && !state.exists());
}

#[test]
fn killed_before_the_overlay_is_mounted() {
    if skip_for_runc("husk's own rootfs sources") || missing_tool("strace", "strace") {
        return;
    }
    // The first mount(2) of husk's own process is the overlay's: upper and work exist.
    kill_then_delete("mount", 1, false, |c, state| {
        assert!(c.join("upper").is_dir() && c.join("work").is_dir());
        assert!(mounts(state).is_empty(), "{:?}", mounts(state));
    });
}

#[test]
fn killed_with_the_overlay_mounted_before_the_container_exists() {
    if skip_for_runc("husk's own rootfs sources") || missing_tool("strace", "strace") {
        return;
    }
    kill_then_delete("clone3", 1, false, |_, state| {
        assert_eq!(mounts(state), [state.join("rootfs")]);
    });
}

#[test]
fn killed_between_two_id_mapped_layers() {
    if skip_for_runc("husk's own rootfs sources") || missing_tool("strace", "strace") {
        return;
    }
    // The second move_mount attaches the second layer: the first is mounted, id-mapped.
    kill_then_delete("move_mount", 2, true, |_, state| {
        assert_eq!(mounts(state), [state.join("lower/0")]);
    });
}

#[test]
fn killed_with_id_mapped_layers_and_the_overlay_mounted() {
    if skip_for_runc("husk's own rootfs sources") || missing_tool("strace", "strace") {
        return;
    }
    // The first clone3 makes the user namespace the layers are mapped with, the second the
    // container. The temporary layer mounts are gone once the overlay holds its own clones.
    kill_then_delete("clone3", 2, true, |_, state| {
        assert_eq!(mounts(state), [state.join("rootfs")]);
    });
}
