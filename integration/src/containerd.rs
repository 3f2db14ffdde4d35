//! A private containerd 1.6 (Debian's) per test, driven through `ctr`, with the runtime under
//! test as the binary of containerd's runc shim (containerd-shim-runc-v2): the way containerd,
//! Kubernetes and docker run runc. The daemon has its own root, state and sockets, its CRI
//! plugin off (it wants CNI), and its own namespace; ctr is given the wrapper as
//! `--runc-binary`, and the wrapper is also `runc` first on the daemon's PATH because ctr
//! drops `--runc-binary` when it sends other task options (shared/engines.md).

use super::*;

/// The image, as ctr names it.
pub const CTR_IMAGE: &str = "localhost/husk-busybox:latest";

pub struct Containerd {
    pub dir: PathBuf,
    pub ns: String,
    pub wrapper: Wrapper,
    daemon: Option<Daemon>,
}

impl Containerd {
    /// `None` (the caller skips, saying so) when containerd or ctr is not installed; under
    /// CI=true that panics ([`missing_tool`]).
    pub fn new() -> Option<Containerd> {
        if missing_tool("containerd", "containerd") || missing_tool("ctr", "containerd") {
            return None;
        }
        let n = unique();
        let dir = std::env::temp_dir().join(format!("husk-ctrd-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let wrapper = Wrapper::new(&dir, "runc");
        fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/c.sock\"\n\
                 [ttrpc]\n  address = \"{d}/c.sock.ttrpc\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut c = Containerd {
            ns: format!("husk-it-{}-{n}", std::process::id()),
            dir,
            wrapper,
            daemon: None,
        };
        c.start();
        let tar = docker_archive(&c.dir, CTR_IMAGE);
        c.ctr(&["image", "import", &tar.to_string_lossy()])
            .expect_ok();
        Some(c)
    }

    fn start(&mut self) {
        let mut cmd = Command::new("containerd");
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path);
        self.daemon = Some(Daemon::start(
            cmd,
            &self.dir.join("containerd.log"),
            &self.dir.join("c.sock"),
        ));
    }

    /// Stops containerd (its shims and containers keep running) and starts it again.
    pub fn restart(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
        self.start();
    }

    /// A `ctr` command for this daemon and namespace (for tests that spawn it themselves).
    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("c.sock"))
            .arg("--namespace")
            .arg(&self.ns)
            .args(args);
        c
    }

    /// `ctr ARGS...`, bounded.
    pub fn ctr(&self, args: &[&str]) -> Output {
        bounded(self.ctr_cmd(args), Duration::from_secs(120))
    }

    /// `ctr run --runc-binary WRAPPER` + `opts` + the image + `id` + `cmd`.
    pub fn run(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Output {
        let w = self.wrapper.path.to_string_lossy().into_owned();
        let mut a = vec!["run", "--runc-binary", &w];
        a.extend_from_slice(opts);
        a.push(CTR_IMAGE);
        a.push(id);
        a.extend_from_slice(cmd);
        self.ctr(&a)
    }

    /// The runc root the shim gives the runtime: `/run/containerd/runc/<namespace>`.
    pub fn runtime_root(&self) -> PathBuf {
        Path::new("/run/containerd/runc").join(&self.ns)
    }

    /// The container's cgroup relative to each hierarchy: ctr's default `/<namespace>/<id>`.
    pub fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.ns)
    }

    /// Asserts that no container, task, runtime state or cgroup of this namespace is left.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert_becomes_empty(|| {
            let mut left = Vec::new();
            let c = self.ctr(&["containers", "list", "--quiet"]).expect_ok();
            left.extend(c.stdout.lines().map(|l| format!("container {l}")));
            let t = self.ctr(&["tasks", "list", "--quiet"]).expect_ok();
            left.extend(t.stdout.lines().map(|l| format!("task {l}")));
            left.extend(state_and_cgroups_left(
                &self.runtime_root(),
                &format!("/{}", self.ns),
            ));
            left
        });
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let tasks = self.ctr(&["tasks", "list", "--quiet"]).stdout;
            for t in tasks.lines() {
                let _ = self.ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", t]);
                let _ = self.ctr(&["tasks", "delete", "--force", t]);
            }
            let cs = self.ctr(&["containers", "list", "--quiet"]).stdout;
            for c in cs.lines() {
                let _ = self.ctr(&["containers", "delete", c]);
            }
            let _ = self.ctr(&["images", "remove", "--sync", CTR_IMAGE]);
        }
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
        remove_cgroup_tree(&format!("/{}", self.ns));
        let _ = fs::remove_dir_all(self.runtime_root());
        unmount_and_remove(&self.dir);
    }
}
