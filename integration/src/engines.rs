//! Engines driving the runtime under test (`HUSK_BIN`): a private podman per test (its own
//! root, runroot, tmp dir, containers.conf with the runtime registered as `scripts/engines`'s
//! drop-in does, storage.conf with vfs), removed with everything it made on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{husk_bin, unique, Output};

/// The image every engine test runs: the busybox rootfs the bundles use.
pub const IMAGE: &str = "localhost/husk-busybox";

/// One private podman.
pub struct Podman {
    dir: PathBuf,
}

impl Podman {
    /// `None` (the caller skips, saying so) when podman is not installed; under CI=true
    /// that panics ([`crate::missing_tool`]).
    pub fn new() -> Option<Podman> {
        if crate::missing_tool("podman", "podman") {
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("husk-podman-{}-{}", std::process::id(), unique()));
        for d in ["root", "runroot", "tmp", "rootfs"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // Registered as `husk` whatever the binary: under test with runc too.
        let name = "husk";
        let dropin = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scripts/engines/containers.conf.d/50-husk.conf"),
        )
        .unwrap();
        // The drop-in names /usr/local/bin/husk; the test registers the binary under test.
        let dropin = dropin.replace("\"/usr/local/bin/husk\"", &format!("{:?}", husk_bin()));
        let conf = format!(
            "{dropin}\n\
             [containers]\n\
             # This sandbox's hard limits (nofile 20000, nproc 96365) are below podman's defaults.\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             netns = \"none\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             runtime = \"{name}\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             static_dir = \"{d}/root/libpod\"\n\
             volume_path = \"{d}/root/volumes\"\n",
            d = dir.display()
        );
        // The drop-in's [engine] table and ours merge: TOML forbids a table twice, so the
        // drop-in's keys are moved under ours.
        let conf = merge_engine_tables(&conf);
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        std::fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let p = Podman { dir };
        let tar = crate::rootfs_tar(&p.dir);
        p.run(&["import", &tar.to_string_lossy(), IMAGE])
            .expect_ok();
        Some(p)
    }

    /// `podman ARGS...` with this instance's configuration.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .args(args);
        let o = c.output().unwrap();
        Output {
            argv: std::iter::once("podman".to_string())
                .chain(args.iter().map(|s| s.to_string()))
                .collect(),
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `podman run --rm` of the image with `opts`, then `cmd`.
    pub fn run_image(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(&sec(opts));
        a.push(IMAGE);
        a.extend_from_slice(cmd);
        self.run(&a)
    }
}

/// The options every container gets: none beyond the test's (podman's default seccomp
/// profile applies).
pub fn sec<'a>(opts: &[&'a str]) -> Vec<&'a str> {
    opts.to_vec()
}

fn merge_engine_tables(conf: &str) -> String {
    let mut out = String::new();
    let mut engine = String::new();
    let mut rest = String::new();
    let mut section = String::new();
    for line in conf.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.to_string();
            if t != "[engine]" {
                rest.push_str(line);
                rest.push('\n');
            }
            continue;
        }
        if section == "[engine]" {
            engine.push_str(line);
            engine.push('\n');
        } else if section.is_empty() {
            out.push_str(line);
            out.push('\n');
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    format!("{out}[engine]\n{engine}{rest}")
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["system", "reset", "--force"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
