// A busybox bundle for the library's tests, examples and docs/library.md's examples (from
// Debian's busybox-static). Included by mod.rs and, with include!, by the doc examples: so
// no inner doc comments here.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;

/// Where busybox-static installs its binary.
pub const BUSYBOX: &str = "/usr/bin/busybox";

#[allow(dead_code)]
/// Writes a bundle under `dir`: rootfs/bin/busybox with its applets linked, and a config.json
/// from the default spec running `args`.
pub fn busybox_bundle(dir: &Path, args: &[&str]) -> std::io::Result<PathBuf> {
    busybox_rootfs(dir)?;
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&busybox_spec(args)).unwrap(),
    )?;
    Ok(dir.to_path_buf())
}

/// `dir/rootfs`: busybox and its applets, and the directories the default mounts need.
pub fn busybox_rootfs(dir: &Path) -> std::io::Result<PathBuf> {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin)?;
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join("rootfs").join(d))?;
    }
    std::fs::copy(BUSYBOX, bin.join("busybox"))?;
    for applet in [
        "sh", "true", "false", "echo", "cat", "sleep", "id", "ls", "tty", "hostname", "tr",
    ] {
        let link = bin.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    Ok(dir.join("rootfs"))
}

/// The default spec (root `rootfs`) running `args`, without a terminal.
#[allow(dead_code)]
pub fn busybox_spec(args: &[&str]) -> Spec {
    let mut spec: Spec = libcontainer::default_spec(false);
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    spec
}

/// `busybox_spec` with `process.terminal` set.
#[allow(dead_code)]
pub fn busybox_tty_spec(args: &[&str]) -> Spec {
    let mut spec = busybox_spec(args);
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(true));
    spec.set_process(Some(process));
    spec
}

/// A unique container id for this test process.
#[allow(dead_code)]
pub fn unique_id(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// A fresh directory under the system temp dir, removed by the caller.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("husk-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes every container of a runtime and a directory when dropped, so a failing test
/// leaves no init, cgroup or state behind (a created init would wait for `start` forever).
#[allow(dead_code)]
pub struct Cleanup(pub libcontainer::Runtime, pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in self.0.list().unwrap_or_default() {
            let _ = self.0.container(&s.id).and_then(|c| c.delete(true));
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
