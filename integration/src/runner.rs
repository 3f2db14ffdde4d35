//! Integration helpers: running the binary.

use super::*;

/// What one command printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub argv: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
}

impl Output {
    /// The exit code; panics if the runtime itself died of a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{:?} killed by signal: {self}", self.argv))
    }
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    /// Panics with the output unless the command succeeded; returns self.
    #[track_caller]
    pub fn expect_ok(self) -> Self {
        assert!(self.ok(), "{:?} failed: {self}", self.argv);
        self
    }
    /// Panics unless the command failed (non-zero exit); returns self.
    #[track_caller]
    pub fn expect_err(self) -> Self {
        assert!(
            !self.ok() && self.status.code().is_some(),
            "{:?} should have failed with an exit code: {self}",
            self.argv
        );
        self
    }
    /// Panics unless stderr (or stdout) contains `what` (case-insensitive).
    #[track_caller]
    pub fn expect_msg(self, what: &str) -> Self {
        let all = format!("{}{}", self.stderr, self.stdout).to_lowercase();
        assert!(
            all.contains(&what.to_lowercase()),
            "{:?}: expected the error to mention {what:?}: {self}",
            self.argv
        );
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?} (signal {:?})\n--- stdout\n{}\n--- stderr\n{}",
            self.status.code(),
            self.status.signal(),
            self.stdout,
            self.stderr
        )
    }
}

/// Waits for `child` up to `timeout`; past it the child is killed (and reaped) and None is
/// returned. A command that hangs fails its test, not CI.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A command line being prepared for the runtime binary.
pub struct Cmd {
    cmd: Command,
    argv: Vec<String>,
    timeout: Duration,
    out: PathBuf,
    err: PathBuf,
    fds: Vec<(RawFd, RawFd)>,
    stdin: Option<Stdio>,
    keep_out: bool,
}

impl Cmd {
    /// A command line for `prog` (the runtime, or what runs it), whose output files go to
    /// `work`; LISTEN_* are not passed on.
    pub fn program(prog: &str, work: &Path) -> Cmd {
        let n = unique();
        let mut cmd = Command::new(prog);
        cmd.env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES");
        Cmd {
            cmd,
            argv: vec![prog.to_string()],
            timeout: Duration::from_secs(60),
            out: work.join(format!(".out-{n}")),
            err: work.join(format!(".err-{n}")),
            fds: Vec::new(),
            stdin: None,
            keep_out: false,
        }
    }

    pub fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.argv.push(a.as_ref().to_string());
        self.cmd.arg(a.as_ref());
        self
    }
    pub fn args<S: AsRef<str>>(mut self, a: &[S]) -> Self {
        for s in a {
            self = self.arg(s);
        }
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }
    /// Runs the binary through `sh -c 'LISTEN_PID=$$ exec ...'` so that LISTEN_PID is the
    /// runtime's own pid, as systemd socket activation sets it.
    pub fn listen_pid_self(mut self) -> Self {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg("LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"")
            .args(&self.argv);
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        self.cmd = c;
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Makes `src` (a descriptor of the test) fd `dst` of the runtime process.
    pub fn fd(mut self, src: RawFd, dst: RawFd) -> Self {
        self.fds.push((src, dst));
        self
    }
    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdin = Some(s);
        self
    }
    /// Sends the runtime's stdout to this file (and so the stdout of a container it creates).
    pub fn stdout_to(mut self, p: &Path) -> Self {
        self.out = p.to_path_buf();
        self.keep_out = true;
        self
    }

    /// Starts the command; its stdout/stderr go to files (a detached container may keep them
    /// open, so pipes would never see EOF).
    pub fn spawn(mut self) -> (Child, Vec<String>, PathBuf, PathBuf) {
        self.cmd
            .stdout(fs::File::create(&self.out).unwrap())
            .stderr(fs::File::create(&self.err).unwrap())
            .stdin(self.stdin.take().unwrap_or_else(Stdio::null));
        let fds = self.fds.clone();
        if !fds.is_empty() {
            // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
            unsafe {
                self.cmd.pre_exec(move || {
                    for &(src, dst) in &fds {
                        if src == dst {
                            let fl = libc::fcntl(src, libc::F_GETFD);
                            libc::fcntl(src, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
                        } else if libc::dup2(src, dst) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.argv));
        (child, self.argv, self.out, self.err)
    }

    /// Runs the command to completion (killing it after the timeout) and collects its output.
    pub fn run(self) -> Output {
        let timeout = self.timeout;
        let keep_out = self.keep_out;
        let (mut child, argv, out, err) = self.spawn();
        let Some(status) = wait_bounded(&mut child, timeout) else {
            panic!(
                "{argv:?} did not finish within {timeout:?}; stderr: {}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        };
        let o = Output {
            argv,
            stdout: fs::read_to_string(&out).unwrap_or_default(),
            stderr: fs::read_to_string(&err).unwrap_or_default(),
            status,
        };
        if !keep_out {
            let _ = fs::remove_file(&out);
        }
        let _ = fs::remove_file(&err);
        o
    }
}

/// The runtime binary with its own `--root` and the ids it handed out.
pub struct Runtime {
    root: TempDir,
    work: TempDir,
    ids: Mutex<Vec<String>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        // SAFETY: plain syscall.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the integration tests need root"
        );
        let bin = husk_bin();
        assert!(
            bin.exists(),
            "runtime binary {} not found: build it (cargo build) or set HUSK_BIN",
            bin.display()
        );
        Runtime {
            root: TempDir::new("root"),
            work: TempDir::new("work"),
            ids: Mutex::new(Vec::new()),
        }
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A scratch directory for the test (files, sockets), removed on drop.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// A fresh unique container id, deleted (`delete --force`) when the Runtime drops.
    pub fn id(&self) -> String {
        let id = format!("t-{}-{}", std::process::id(), unique());
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// Registers an id not made by [`Runtime::id`] for clean-up.
    pub fn track(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }

    /// A command line `BIN --root ROOT ARGS...`.
    pub fn cmd<S: AsRef<str>>(&self, args: &[S]) -> Cmd {
        self.cmd_noroot::<&str>(&[])
            .args(&["--root", &self.root_str()])
            .args(args)
    }

    /// A command line without the `--root` flag.
    pub fn cmd_noroot<S: AsRef<str>>(&self, args: &[S]) -> Cmd {
        Cmd::program(&husk_bin().to_string_lossy(), self.work()).args(args)
    }

    pub fn root_str(&self) -> String {
        self.root().to_string_lossy().to_string()
    }

    /// Runs `BIN --root ROOT ARGS...`.
    pub fn exec<S: AsRef<str>>(&self, args: &[S]) -> Output {
        self.cmd(args).run()
    }

    /// `create --bundle B ID`, must succeed.
    #[track_caller]
    pub fn create(&self, b: &Bundle, id: &str) -> Output {
        self.exec(&["create", "--bundle", &b.path_str(), id])
            .expect_ok()
    }

    /// `create` with the container's stdout (and the runtime's) going to `out`.
    #[track_caller]
    pub fn create_to(&self, b: &Bundle, id: &str, out: &Path) -> Output {
        self.cmd(&["create", "--bundle", &b.path_str(), id])
            .stdout_to(out)
            .run()
            .expect_ok()
    }

    /// `run --bundle B ID` in the foreground.
    pub fn run(&self, b: &Bundle, id: &str) -> Output {
        self.exec(&["run", "--bundle", &b.path_str(), id])
    }

    /// `run` of a fresh id, returning the output; the bundle's process output is in stdout.
    pub fn run_new(&self, b: &Bundle) -> Output {
        let id = self.id();
        let o = self.run(b, &id);
        self.exec(&["delete", "--force", &id]);
        o
    }

    /// Runs the bundle's process to completion and returns its stdout, asserting exit 0.
    #[track_caller]
    pub fn output(&self, b: &Bundle) -> String {
        let o = self.run_new(b);
        assert!(o.ok(), "container run failed: {o}");
        o.stdout
    }

    /// `state ID` parsed.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let o = self.exec(&["state", id]).expect_ok();
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state JSON: {e}: {o}"))
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `state ID` says `want`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let s = self.status(id);
            if s == want {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "container {id} is {s}, not {want}, after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `delete --force` of every id handed out (errors ignored).
    pub fn cleanup(&self) {
        let ids: Vec<String> = std::mem::take(&mut *self.ids.lock().unwrap());
        for id in ids {
            if self.root().join(&id).exists() {
                let (mut child, argv, _, _) = self.cmd(&["delete", "--force", &id]).spawn();
                if wait_bounded(&mut child, Duration::from_secs(20)).is_none() {
                    eprintln!("cleanup: {argv:?} did not finish within 20s: killed");
                }
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.cleanup();
    }
}
