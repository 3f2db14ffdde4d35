//! A private dockerd 20.10 (Debian's docker.io) per test, with the runtime under test added as
//! `husk` (`--add-runtime`, or daemon.json's `runtimes` when it takes arguments; the default
//! runtime) through the call-recording wrapper. The daemon has its own data root, exec root,
//! socket, pid file, cgroup parent and config file (empty unless it registers the runtime);
//! no networking (this host has none); `--live-restore`, so containers outlive a
//! restart of the daemon. dockerd starts its own containerd under the exec root.

use super::*;

/// The image, as docker names it.
pub const DOCKER_IMAGE: &str = "localhost/husk-busybox:latest";

pub struct Docker {
    pub dir: PathBuf,
    pub wrapper: Wrapper,
    /// The cgroup parent of every container (relative to each hierarchy).
    pub parent: String,
    args: Vec<String>,
    /// Run the daemon in a private mount namespace where `/etc/subuid`, `/etc/subgid`,
    /// `/etc/passwd` and `/etc/group` are this test's (user-namespace remapping without
    /// touching the host's files).
    private_ids: bool,
    daemon: Option<Daemon>,
}

impl Docker {
    /// `None` (the caller skips, saying so) when dockerd or docker is not installed; under
    /// CI=true that panics ([`missing_tool`]).
    pub fn new() -> Option<Docker> {
        Docker::with(&[], false, None)
    }

    /// A daemon remapping root to 100000-165535 (`--userns-remap husk-remap`, a user that
    /// exists only in the daemon's private /etc/passwd).
    pub fn with_userns_remap() -> Option<Docker> {
        Docker::with(&["--userns-remap", "husk-remap"], true, None)
    }

    /// A daemon whose `husk` runtime is registered in daemon.json's `runtimes` with
    /// `runtimeArgs` (given to the runtime before every command, e.g. `--resource-view=on`)
    /// instead of `--add-runtime`, which has no way to pass arguments.
    pub fn with_runtime_args(runtime_args: &[&str]) -> Option<Docker> {
        Docker::with(&[], false, Some(runtime_args))
    }

    fn with(extra: &[&str], private_ids: bool, runtime_args: Option<&[&str]>) -> Option<Docker> {
        if missing_tool("dockerd", "docker.io") || missing_tool("docker", "docker.io") {
            return None;
        }
        let n = unique();
        let dir = std::env::temp_dir().join(format!("husk-dockerd-{}-{n}", std::process::id()));
        fs::create_dir_all(dir.join("cli")).unwrap();
        let wrapper = Wrapper::new(&dir, "husk");
        let config = match runtime_args {
            None => json!({}),
            Some(a) => json!({"runtimes": {"husk": {"path": wrapper.path, "runtimeArgs": a}}}),
        };
        fs::write(dir.join("daemon.json"), config.to_string()).unwrap();
        fs::write(dir.join("subid"), "husk-remap:100000:65536\n").unwrap();
        for (f, line) in [
            (
                "passwd",
                "husk-remap:x:100000:100000::/nonexistent:/usr/sbin/nologin",
            ),
            ("group", "husk-remap:x:100000:"),
        ] {
            let host = fs::read_to_string(Path::new("/etc").join(f)).unwrap_or_default();
            fs::write(dir.join(f), format!("{host}{line}\n")).unwrap();
        }
        let parent = format!("husk-it-docker-{}-{n}", std::process::id());
        let d = dir.display().to_string();
        let mut args: Vec<String> = [
            "--config-file",
            &format!("{d}/daemon.json"),
            "--data-root",
            &format!("{d}/data"),
            "--exec-root",
            &format!("{d}/exec"),
            "--pidfile",
            &format!("{d}/docker.pid"),
            "-H",
            &format!("unix://{d}/docker.sock"),
            "--default-runtime",
            "husk",
            "--live-restore",
            "--cgroup-parent",
            &format!("/{parent}"),
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
            "--bridge",
            "none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if runtime_args.is_none() {
            args.extend([
                "--add-runtime".to_string(),
                format!("husk={}", wrapper.path.display()),
            ]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut dk = Docker {
            dir,
            wrapper,
            parent,
            args,
            private_ids,
            daemon: None,
        };
        dk.start();
        let tar = docker_archive(&dk.dir, DOCKER_IMAGE);
        dk.docker(&["load", "--input", &tar.to_string_lossy()])
            .expect_ok();
        Some(dk)
    }

    fn start(&mut self) {
        let mut cmd = if self.private_ids {
            let sub = self.dir.join("subid");
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount --bind {s} /etc/subuid && mount --bind {s} /etc/subgid && \
                     mount --bind {d}/passwd /etc/passwd && mount --bind {d}/group /etc/group && \
                     exec dockerd \"$@\"",
                    s = sub.display(),
                    d = self.dir.display()
                ))
                .arg("dockerd");
            c
        } else {
            Command::new("dockerd")
        };
        cmd.args(&self.args);
        self.daemon = Some(Daemon::start(
            cmd,
            &self.dir.join("dockerd.log"),
            &self.dir.join("docker.sock"),
        ));
    }

    /// Stops dockerd (and the containerd it started); the containers keep running
    /// (`--live-restore`); then starts it again.
    pub fn restart(&mut self) {
        self.stop_daemon();
        self.start();
    }

    fn stop_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
        // dockerd stops its containerd on exit; a leftover one would hold the socket.
        if let Some(pid) = pid_file(&self.dir.join("exec/containerd/containerd.pid")) {
            signal_pid(pid, libc::SIGTERM);
            let start = Instant::now();
            while pid_alive(pid as i64) && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// A `docker` command for this daemon (for tests that spawn it themselves).
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", self.dir.join("cli"))
            .arg("--host")
            .arg(format!("unix://{}/docker.sock", self.dir.display()))
            .args(args);
        c
    }

    /// `docker ARGS...`, bounded.
    pub fn docker(&self, args: &[&str]) -> Output {
        bounded(self.docker_cmd(args), Duration::from_secs(120))
    }

    /// `docker run --rm` + `opts` + the image + `cmd`.
    pub fn run_image(&self, opts: &[&str], cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(opts);
        a.push(DOCKER_IMAGE);
        a.extend_from_slice(cmd);
        self.docker(&a)
    }

    /// The full id of a container.
    pub fn id_of(&self, name: &str) -> String {
        self.docker(&["inspect", "--format", "{{.Id}}", name])
            .expect_ok()
            .stdout
            .trim()
            .to_string()
    }

    /// A file of the container's cgroup (cgroupfs driver: `<parent>/<full id>`) in hierarchy `h`.
    pub fn cgroup_file(&self, h: &str, name: &str, file: &str) -> String {
        let p = Path::new("/sys/fs/cgroup")
            .join(h)
            .join(&self.parent)
            .join(self.id_of(name))
            .join(file);
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// Asserts that no container, runtime state or cgroup of this daemon is left.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert_becomes_empty(|| {
            let mut left = Vec::new();
            let c = self.docker(&["ps", "--all", "--quiet"]).expect_ok();
            left.extend(c.stdout.lines().map(|l| format!("container {l}")));
            left.extend(state_and_cgroups_left(
                &self.dir.join("exec/runtime-husk/moby"),
                &self.parent,
            ));
            left
        });
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = self.docker(&["ps", "--all", "--quiet"]).stdout;
            for id in ids.lines() {
                let _ = self.docker(&["rm", "--force", id]);
            }
        }
        self.stop_daemon();
        remove_cgroup_tree(&self.parent);
        unmount_and_remove(&self.dir);
    }
}
