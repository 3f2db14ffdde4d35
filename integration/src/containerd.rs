//! A private containerd 1.6 (Debian's) per test, driven through `ctr`, with the runtime under
//! test as the binary of containerd's runc shim (containerd-shim-runc-v2): the way containerd,
//! Kubernetes and docker run runc. The daemon has its own root, state and sockets, its CRI
//! plugin off (it wants CNI), and its own namespace; ctr is given the wrapper as
//! `--runc-binary`, and the wrapper is also `runc` first on the daemon's PATH because ctr
//! drops `--runc-binary` when it sends other task options (shared/engines.md).

use super::*;

/// The image, as ctr names it.
pub const CTR_IMAGE: &str = "localhost/husk-busybox:latest";

/// The runtime name containerd knows husk's own shim by (`containerd-shim-husk-v2`).
pub const HUSK_RUNTIME: &str = "io.containerd.husk.v2";

/// husk's shim binary: `HUSK_SHIM`, else beside the husk binary under test.
pub fn shim_bin() -> PathBuf {
    std::env::var_os("HUSK_SHIM")
        .map(PathBuf::from)
        .unwrap_or_else(|| husk_bin().with_file_name("containerd-shim-husk-v2"))
}

pub struct Containerd {
    pub dir: PathBuf,
    pub ns: String,
    pub wrapper: Wrapper,
    /// Containers run through husk's shim ([`HUSK_RUNTIME`]) instead of runc's shim with the
    /// wrapper as its runc.
    pub husk_shim: bool,
    daemon: Option<Daemon>,
}

impl Containerd {
    /// `None` (the caller skips, saying so) when containerd or ctr is not installed; under
    /// CI=true that panics ([`missing_tool`]).
    pub fn new() -> Option<Containerd> {
        Containerd::setup(false)
    }

    /// A daemon whose containers run through husk's own shim (`containerd-shim-husk-v2` first
    /// on its PATH). The wrapper is still `runc` on that PATH, so a test can check that no
    /// runtime binary was executed.
    pub fn with_husk_shim() -> Option<Containerd> {
        if skip_for_runc("husk's shim links husk's library: there is nothing of runc to test") {
            return None;
        }
        Containerd::setup(true)
    }

    fn setup(husk_shim: bool) -> Option<Containerd> {
        if missing_tool("containerd", "containerd") || missing_tool("ctr", "containerd") {
            return None;
        }
        let n = unique();
        let dir = std::env::temp_dir().join(format!("husk-ctrd-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let wrapper = Wrapper::new(&dir, "runc");
        if husk_shim {
            let shim = shim_bin();
            assert!(shim.exists(), "{} is not built", shim.display());
            symlink(&shim, dir.join("bin/containerd-shim-husk-v2")).unwrap();
            // Any exec of husk itself would be logged too.
            let husk = dir.join("bin/husk");
            fs::copy(&wrapper.path, &husk).unwrap();
        }
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
            husk_shim,
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
    /// With husk's shim, `run` and `tasks exec` get `--fifo-dir DIR/fifo`, so that
    /// [`Containerd::assert_clean`] can check that no FIFO of this test is left.
    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if self.husk_shim {
            let at = match args {
                ["run", ..] => Some(1),
                ["tasks", "exec", ..] => Some(2),
                _ => None,
            };
            if let Some(i) = at {
                let dir = self.fifo_dir().to_string_lossy().into_owned();
                a.splice(i..i, ["--fifo-dir".to_string(), dir]);
            }
        }
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.dir.join("c.sock"))
            .arg("--namespace")
            .arg(&self.ns)
            .args(a);
        c
    }

    /// Where ctr makes the stdio FIFOs of this daemon's containers (husk's shim).
    pub fn fifo_dir(&self) -> PathBuf {
        self.dir.join("fifo")
    }

    /// Removes the FIFOs ctr made for `id` and left: ctr removes a process's FIFOs only when
    /// it deletes the process itself, so a detached exec's and those of a task whose shim
    /// died stay (with runc's shim too).
    pub fn remove_ctr_fifos(&self, id: &str) {
        for d in fs::read_dir(self.fifo_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let named = fs::read_dir(d.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| {
                    f.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{id}-"))
                });
            if named {
                let _ = fs::remove_dir_all(d.path());
            }
        }
    }

    /// `ctr ARGS...`, bounded.
    pub fn ctr(&self, args: &[&str]) -> Output {
        bounded(self.ctr_cmd(args), Duration::from_secs(120))
    }

    /// `ctr run --runc-binary WRAPPER` + `opts` + the image + `id` + `cmd`.
    /// With husk's shim: `ctr run --runtime io.containerd.husk.v2` instead.
    pub fn run(&self, opts: &[&str], id: &str, cmd: &[&str]) -> Output {
        let w = self.wrapper.path.to_string_lossy().into_owned();
        let mut a = if self.husk_shim {
            vec!["run", "--runtime", HUSK_RUNTIME]
        } else {
            vec!["run", "--runc-binary", &w]
        };
        a.extend_from_slice(opts);
        a.push(CTR_IMAGE);
        a.push(id);
        a.extend_from_slice(cmd);
        self.ctr(&a)
    }

    /// The runc root the shim gives the runtime: `/run/containerd/runc/<namespace>`
    /// (husk's shim: `/run/containerd/husk/<namespace>`).
    pub fn runtime_root(&self) -> PathBuf {
        let base = if self.husk_shim {
            "/run/containerd/husk"
        } else {
            "/run/containerd/runc"
        };
        Path::new(base).join(&self.ns)
    }

    /// The pids of husk shims serving this daemon.
    pub fn shim_pids(&self) -> Vec<i32> {
        let addr = self.dir.join("c.sock").to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args
                .first()
                .is_some_and(|a| a.ends_with("containerd-shim-husk-v2"))
                && args.windows(2).any(|w| w[0] == "-address" && w[1] == addr)
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// containerd's bundles of this namespace (one per task).
    pub fn bundles(&self) -> Vec<PathBuf> {
        let d = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns);
        fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// Polls `ctr tasks list` until `id`'s status is `want`; returns its line (id, pid,
    /// status).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) -> String {
        let mut line = String::new();
        for _ in 0..200 {
            let o = self.ctr(&["tasks", "list"]).expect_ok();
            line = o
                .stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(id))
                .unwrap_or_default()
                .to_string();
            if line.split_whitespace().nth(2) == Some(want) {
                return line;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("task {id} is not {want}: {line:?}");
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
            if self.husk_shim {
                let fifos = fs::read_dir(self.fifo_dir())
                    .into_iter()
                    .flatten()
                    .flatten();
                left.extend(fifos.map(|e| format!("FIFO dir {}", e.path().display())));
                left.extend(self.shim_pids().iter().map(|p| format!("shim process {p}")));
                left.extend(
                    self.bundles()
                        .iter()
                        .map(|b| format!("bundle {}", b.display())),
                );
            }
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
        for pid in self.shim_pids() {
            // SAFETY: kill(2) with integer arguments.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        remove_cgroup_tree(&format!("/{}", self.ns));
        let _ = fs::remove_dir_all(self.runtime_root());
        unmount_and_remove(&self.dir);
    }
}

/// A direct ttrpc client of the shim serving container `id` (what ctr 1.6 cannot send:
/// Update, malformed requests), from the `address` file of its bundle.
pub struct ShimClient {
    pub task: containerd_shim_protos::TaskClient,
}

impl Containerd {
    pub fn shim_client(&self, id: &str) -> ShimClient {
        let bundle = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id);
        let addr = fs::read_to_string(bundle.join("address"))
            .unwrap_or_else(|e| panic!("no address file in {}: {e}", bundle.display()));
        let c = containerd_shim_protos::Client::connect(addr.trim())
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        ShimClient {
            task: containerd_shim_protos::TaskClient::new(c),
        }
    }
}

impl ShimClient {
    /// A request context with containerd's namespace and a 30 s deadline.
    pub fn ctx(&self) -> containerd_shim_protos::ttrpc::context::Context {
        containerd_shim_protos::ttrpc::context::with_timeout(30_000_000_000)
    }
}

/// The code and message of a failed ttrpc call.
pub fn rpc_error<T: std::fmt::Debug>(
    r: containerd_shim_protos::ttrpc::Result<T>,
) -> (containerd_shim_protos::ttrpc::Code, String) {
    match r {
        Err(containerd_shim_protos::ttrpc::Error::RpcStatus(s)) => (s.code(), s.message.clone()),
        other => panic!("expected an error status, got {other:?}"),
    }
}
