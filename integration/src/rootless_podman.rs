//! Rootless podman driving the runtime under test: podman run by the rootless test user
//! (`huskrl`, [`crate::rootless`]) with a private configuration in the test's directory (owned
//! by the user), so nothing lands in the user's home or in another test's state:
//! containers.conf registers the runtime as scripts/engines' drop-in does, storage.conf uses
//! vfs with the graph root in the test dir, XDG_DATA_HOME/XDG_CONFIG_HOME/XDG_CACHE_HOME and
//! XDG_RUNTIME_DIR (so podman's run root and the runtime's default state root) are the test's.
//!
//! Rootless podman keeps a pause process holding its user namespace; every process it starts
//! (conmon, the runtime, the containers) lives in that namespace, which is how the test finds
//! what is left of its containers among the user's other processes.

use crate::rootless::{Rootless, USER};

use super::*;

/// The image every rootless podman test runs: the busybox rootfs.
pub const RL_IMAGE: &str = "localhost/husk-rl-busybox";

/// One private rootless podman.
pub struct RlPodman {
    /// The user's session (test dir, runtime dir, state root).
    pub rl: Rootless,
    dir: PathBuf,
    /// The program registered as the runtime `husk`: the runtime under test, or a wrapper
    /// logging its calls in front of it.
    pub runtime: PathBuf,
    calls: Option<PathBuf>,
}

impl RlPodman {
    /// Podman with the runtime under test registered as `husk`; `None` (the caller skips,
    /// saying so) without podman or the test user.
    pub fn new() -> Option<RlPodman> {
        Self::setup(false)
    }

    /// [`RlPodman::new`] with a shell wrapper registered in front of the runtime under test,
    /// logging each call with the effective uid, user namespace and uid_map it ran with.
    pub fn with_wrapper() -> Option<RlPodman> {
        Self::setup(true)
    }

    fn setup(wrap: bool) -> Option<RlPodman> {
        if missing_tool("podman", "podman") {
            return None;
        }
        let rl = Rootless::new()?;
        let dir = rl.dir().join("podman");
        for d in ["root", "tmp", "data", "config", "cache", "bin"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let (runtime, calls) = if wrap {
            let (bin, log) = (dir.join("bin/husk"), dir.join("calls.log"));
            // Named `husk` like the real one: podman knows a runtime's features by file name.
            fs::write(
                &bin,
                format!(
                    "#!/bin/sh\necho \"euid=$(id -u) ns=$(readlink /proc/self/ns/user) \
                     map=$(awk '{{printf \"%s:%s:%s,\", $1, $2, $3}}' /proc/self/uid_map) \
                     | $*\" >> '{}'\nexec '{}' \"$@\"\n",
                    log.display(),
                    husk_bin().display()
                ),
            )
            .unwrap();
            fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
            fs::write(&log, "").unwrap();
            (bin, Some(log))
        } else {
            (husk_bin(), None)
        };
        let dropin = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scripts/engines/containers.conf.d/50-husk.conf"),
        )
        .unwrap();
        // The drop-in names /usr/local/bin/husk; the test registers the binary under test.
        let dropin = dropin.replace("\"/usr/local/bin/husk\"", &format!("{runtime:?}"));
        // TOML allows the [engine] table once: our keys go under the drop-in's.
        let engine = format!(
            "[engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             runtime = \"husk\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             static_dir = \"{d}/root/libpod\"\n\
             volume_path = \"{d}/root/volumes\"\n",
            d = dir.display()
        );
        assert!(dropin.contains("[engine]\n"), "{dropin}");
        let conf = format!(
            "{}\n\
             [containers]\n\
             # This sandbox's hard limits (nofile 20000, nproc 96365) are below podman's defaults.\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             netns = \"none\"\n",
            dropin.replacen("[engine]\n", &engine, 1)
        );
        fs::write(dir.join("containers.conf"), conf).unwrap();
        // A rootless podman takes its graph root from rootless_storage_path (graphroot is
        // root's); its run root is always $XDG_RUNTIME_DIR/containers, the test's here.
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\n\
                 rootless_storage_path = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let tar = rootfs_tar(&dir);
        let _ = fs::remove_dir_all(dir.join("rootfs"));
        rl.give_tree(&dir);
        let p = RlPodman {
            rl,
            dir,
            runtime,
            calls,
        };
        p.run(&["import", &tar.to_string_lossy(), RL_IMAGE])
            .expect_ok();
        Some(p)
    }

    /// `podman ARGS...` as the user with only this instance's environment (`env -i`, so the
    /// command can also be run under `script` by [`in_pty`]).
    pub fn command(&self, args: &[&str]) -> Command {
        let (u, d) = (&self.rl.user, &self.dir);
        let mut c = Command::new("/usr/bin/env");
        c.arg("-i");
        let vars = [
            ("HOME", self.rl.dir().to_path_buf()),
            ("USER", USER.into()),
            ("LOGNAME", USER.into()),
            (
                "PATH",
                "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
            ),
            ("XDG_RUNTIME_DIR", self.rl.runtime_dir()),
            ("XDG_DATA_HOME", d.join("data")),
            ("XDG_CONFIG_HOME", d.join("config")),
            ("XDG_CACHE_HOME", d.join("cache")),
            ("CONTAINERS_CONF", d.join("containers.conf")),
            ("CONTAINERS_STORAGE_CONF", d.join("storage.conf")),
        ];
        for (k, v) in vars {
            c.arg(format!("{k}={}", v.display()));
        }
        c.args([
            "/usr/bin/setpriv",
            &format!("--reuid={}", u.uid),
            &format!("--regid={}", u.gid),
            "--init-groups",
            "--",
            "podman",
        ])
        .args(args)
        .current_dir(self.rl.dir());
        c
    }

    /// Runs `podman ARGS...` as the user (bounded: a hang fails the test).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut o = bounded(self.command(args), Duration::from_secs(120));
        o.argv = std::iter::once("podman".to_string())
            .chain(args.iter().map(|s| s.to_string()))
            .collect();
        o
    }

    /// `podman run --rm` of the image with `opts`, then `cmd`.
    pub fn run_image(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.push(RL_IMAGE);
        a.extend_from_slice(cmd);
        self.run(&a)
    }

    /// `podman inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.run(&["inspect", "--format", format, name])
            .expect_ok()
            .stdout
            .trim()
            .to_string()
    }

    /// The wrapper's log, one line per call: `euid=N ns=user:[INODE] map=A:B:C,... | ARGS`.
    pub fn calls(&self) -> Vec<String> {
        let log = self.calls.as_ref().expect("RlPodman::with_wrapper");
        fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The pid of podman's pause process (it holds podman's user namespace), if running.
    pub fn pause_pid(&self) -> Option<i32> {
        pid_file(&self.dir.join("tmp/pause.pid"))
    }

    /// Podman's user namespace (`user:[INODE]`), from its pause process.
    pub fn userns(&self) -> Option<String> {
        let pid = self.pause_pid()?;
        let ns = fs::read_link(format!("/proc/{pid}/ns/user")).ok()?;
        Some(ns.to_string_lossy().into_owned())
    }

    /// Live processes in podman's user namespace other than its pause process: conmon, the
    /// runtime, containers. Other users' and other tests' processes are in other namespaces.
    pub fn processes(&self) -> Vec<i32> {
        let (Some(ns), Some(pause)) = (self.userns(), self.pause_pid()) else {
            return Vec::new();
        };
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| {
                pid != pause
                    && fs::read_link(format!("/proc/{pid}/ns/user"))
                        .is_ok_and(|l| l.to_string_lossy() == ns)
                    && pid_alive(pid as i64)
            })
            .collect()
    }

    /// What the test left: the runtime's state entries under its default root for the user
    /// ($XDG_RUNTIME_DIR/husk, runc: /runc, which is where podman's calls put them: podman
    /// passes no --root), and processes in podman's user namespace.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .rl
            .state_entries()
            .into_iter()
            .map(|e| format!("state entry {}", self.rl.state_root().join(e).display()))
            .collect();
        for pid in self.processes() {
            let cmd = fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            left.push(format!("process {pid}: {cmd}"));
        }
        left
    }

    /// Asserts that no container is left in podman's list and that [`Self::leftovers`]
    /// becomes empty (podman's cleanup processes may trail `run --rm` by a moment).
    #[track_caller]
    pub fn assert_clean(&self) {
        let o = self
            .run(&["ps", "-a", "--format", "{{.Names}}"])
            .expect_ok();
        assert_eq!(o.stdout.trim(), "", "{o}");
        // Without it the namespace, and so the processes in it, could not be found.
        assert!(self.pause_pid().is_some(), "no podman pause process");
        assert_becomes_empty(|| self.leftovers());
    }
}

impl Drop for RlPodman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["system", "reset", "--force"]);
        // The pause process outlives every podman command; it is this test's.
        if let Some(pid) = self.pause_pid() {
            signal_pid(pid, libc::SIGKILL);
        }
    }
}
