//! Shared helpers for the integration tests: they drive a runtime binary (husk, or runc as a
//! reference) with runc's command line, as root, against the real kernel.
//!
//! * [`husk_bin`]: the binary under test, from `HUSK_BIN` (default `<workspace>/target/debug/husk`).
//! * [`Bundle`]: a busybox rootfs in a temp dir plus a `runc spec`-like config.json.
//! * [`Runtime`]: runs the binary with its own `--root`, hands out unique ids, and on drop
//!   `delete --force`s every id it handed out.
//! * [`assert_nothing_remains`]: no state dir, cgroup dir, process or mount left for an id.
//!
//! Tests where runc 1.1.5 (the reference) deviates from what husk promises call
//! [`skip_for_runc`] with the reason; they are skipped only when `HUSK_BIN` names runc.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number unique in this test process.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// The runtime binary under test.
pub fn husk_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HUSK_BIN") {
        return PathBuf::from(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    target.join("debug").join("husk")
}

/// True when the binary under test is runc (the reference implementation).
pub fn is_runc() -> bool {
    husk_bin()
        .file_name()
        .map(|n| n.to_string_lossy().contains("runc"))
        .unwrap_or(false)
}

/// Returns true (and says why on stderr) when the test must be skipped because runc, the
/// reference, is known to deviate from what husk promises. Use as
/// `if skip_for_runc("why") { return; }`.
pub fn skip_for_runc(why: &str) -> bool {
    if is_runc() {
        eprintln!("SKIPPED for runc: {why}");
        true
    } else {
        false
    }
}

/// Path to the static busybox used for every rootfs.
pub fn busybox() -> PathBuf {
    std::env::var_os("BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/busybox"))
}

// ---------------------------------------------------------------------------------------------
// temp dirs

/// A temporary directory removed on drop (after lazily unmounting anything left beneath it).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("HUSK_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = base.join(format!(
            "husk-it-{}-{}-{}",
            tag,
            std::process::id(),
            unique()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Never recurse into a mount: detach whatever a failed test left mounted beneath us.
        for m in mounts_under(&self.path).into_iter().rev() {
            umount_lazy(&m);
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Mount points (from /proc/self/mountinfo) at or beneath `dir`, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.to_string_lossy().to_string();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .map(PathBuf::from)
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// `umount2(path, MNT_DETACH)`, ignoring errors.
pub fn umount_lazy(path: &Path) {
    let c = CString::new(path.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    unsafe {
        libc::umount2(c.as_ptr(), libc::MNT_DETACH);
    }
}

/// A mount made by a test, unmounted (lazily) on drop.
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        umount_lazy(&self.0);
    }
}

/// Runs a host command (mount, unshare, ...) and panics unless it succeeds.
pub fn host(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

// ---------------------------------------------------------------------------------------------
// bundles

/// The busybox applets linked into every rootfs (all of them, from `busybox --list`).
fn applets() -> &'static [String] {
    static APPLETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(busybox())
            .arg("--list")
            .output()
            .expect("run busybox --list (install busybox-static)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect()
    })
}

/// Makes a busybox root filesystem at `rootfs`: /bin/busybox plus a symlink per applet, and
/// the usual empty directories.
pub fn make_rootfs(rootfs: &Path) {
    for d in [
        "bin", "dev", "proc", "sys", "tmp", "etc", "root", "mnt", "run", "var",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(busybox(), rootfs.join("bin/busybox")).expect("copy busybox");
    for a in applets() {
        let _ = symlink("busybox", rootfs.join("bin").join(a));
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The default config.json, as `runc spec` writes it (terminal off), with `args`.
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "husk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory: `rootfs/` (busybox) and `config.json`, removed on drop.
pub struct Bundle {
    dir: TempDir,
    pub config: Value,
}

impl Bundle {
    /// A bundle whose process runs `args`.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = TempDir::new("bundle");
        make_rootfs(&dir.path().join("rootfs"));
        let b = Bundle {
            dir,
            config: default_config(args),
        };
        b.write();
        b
    }

    /// A bundle running `sh -c SCRIPT`.
    pub fn sh(script: &str) -> Bundle {
        Bundle::new(&["sh", "-c", script])
    }

    /// Edits config.json as JSON and writes it back.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.write();
        self
    }

    /// Writes `self.config` to config.json.
    pub fn write(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> String {
        self.path().to_string_lossy().to_string()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }
}

/// Removes the namespace of `kind` from the config.
pub fn remove_ns(cfg: &mut Value, kind: &str) {
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != kind);
}

/// Adds (or replaces) a namespace of `kind`, joined at `path` when given.
pub fn set_ns(cfg: &mut Value, kind: &str, path: Option<&str>) {
    remove_ns(cfg, kind);
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    match path {
        Some(p) => ns.push(json!({"type": kind, "path": p})),
        None => ns.push(json!({"type": kind})),
    }
}

/// Every capability this kernel knows, as CAP_ names (for configs wanting all of them).
pub fn all_caps() -> Vec<String> {
    [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
    .iter()
    .map(|c| format!("CAP_{c}"))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// running the binary

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
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{argv:?} did not finish within {timeout:?}; stderr: {}",
                    fs::read_to_string(&err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
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
        let n = unique();
        let mut cmd = Command::new(husk_bin());
        cmd.env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES");
        Cmd {
            cmd,
            argv: vec![husk_bin().to_string_lossy().to_string()],
            timeout: Duration::from_secs(60),
            out: self.work().join(format!(".out-{n}")),
            err: self.work().join(format!(".err-{n}")),
            fds: Vec::new(),
            stdin: None,
            keep_out: false,
        }
        .args(args)
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
                let _ = self
                    .cmd(&["delete", "--force", &id])
                    .timeout(Duration::from_secs(20))
                    .spawn()
                    .0
                    .wait();
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.cleanup();
    }
}

// ---------------------------------------------------------------------------------------------
// nothing remains

/// True if `hay` contains `id` as a whole token (not followed by a digit or another id char).
pub fn contains_id(hay: &str, id: &str) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(id) {
        let end = from + i + id.len();
        match hay[end..].chars().next() {
            Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {}
            _ => return true,
        }
        from = from + i + 1;
    }
    false
}

/// Cgroup directories (in every hierarchy under /sys/fs/cgroup) whose path contains `id`.
pub fn cgroup_dirs_for(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_where(&|name| contains_id(name, id))
}

/// Cgroup directories (in every hierarchy, up to 7 levels deep) whose name satisfies `pred`.
pub fn cgroup_dirs_where(pred: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, pred: &dyn Fn(&str) -> bool, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            if pred(&e.file_name().to_string_lossy()) {
                found.push(p.clone());
            }
            if depth > 0 {
                walk(&p, pred, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            walk(&h.path(), pred, 6, &mut found);
        }
    }
    found
}

/// Pids whose /proc/PID/cgroup or cmdline names `id`.
pub fn processes_for(id: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me || !pid_alive(pid as i64) {
            continue;
        }
        let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let cmd = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if contains_id(&cg, id) || contains_id(&cmd, id) {
            found.push((pid, format!("cmdline {cmd:?} cgroup {cg:?}")));
        }
    }
    found
}

/// What is left of container `id`: state dir, cgroup dirs, processes, mounts under the bundle.
pub fn leftovers(rt: &Runtime, id: &str, bundle: Option<&Path>) -> Vec<String> {
    let mut left = Vec::new();
    // Processes may take a moment to be reaped; cgroup rmdir follows them.
    let start = Instant::now();
    loop {
        left.clear();
        let sd = rt.root().join(id);
        if sd.exists() {
            left.push(format!("state dir {}", sd.display()));
        }
        for d in cgroup_dirs_for(id) {
            left.push(format!("cgroup dir {}", d.display()));
        }
        for (pid, what) in processes_for(id) {
            left.push(format!("process {pid}: {what}"));
        }
        if let Some(b) = bundle {
            for m in mounts_under(b) {
                left.push(format!("mount {}", m.display()));
            }
        }
        if left.is_empty() || start.elapsed() > Duration::from_secs(3) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that nothing is left of container `id` (see [`leftovers`]).
#[track_caller]
pub fn assert_nothing_remains(rt: &Runtime, id: &str, bundle: Option<&Path>) {
    let left = leftovers(rt, id, bundle);
    assert!(left.is_empty(), "left behind by {id}: {left:#?}");
}

// ---------------------------------------------------------------------------------------------
// processes started by tests

/// A host process started by a test (e.g. `unshare ... sleep`), killed and reaped on drop.
pub struct HostProc(pub Child);

impl HostProc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `unshare FLAGS... sleep 100` and waits until its namespaces differ from ours.
/// Returns the process (whose pid is the `sleep`, unshare execs it).
pub fn unshare_sleep(flags: &[&str], check_ns: &str) -> HostProc {
    let mut c = Command::new("unshare");
    c.args(flags);
    if flags.contains(&"--fork") {
        // killing unshare (on drop) must take its forked child with it
        c.arg("--kill-child");
    }
    c.args(["busybox", "sleep", "100"]);
    c.env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    let child = c.stdin(Stdio::null()).spawn().expect("spawn unshare");
    let p = HostProc(child);
    let mine = fs::read_link(format!("/proc/self/ns/{check_ns}")).unwrap();
    let fork = flags.contains(&"--fork");
    let start = Instant::now();
    loop {
        // with --fork the sleep is unshare's child
        let target = if fork {
            fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid()))
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .map(str::to_string)
        } else {
            Some(p.pid().to_string())
        };
        if let Some(t) = target {
            let theirs = fs::read_link(format!("/proc/{t}/ns/{check_ns}"));
            let exe = fs::read_link(format!("/proc/{t}/exe"));
            if let (Ok(ns), Ok(e)) = (theirs, exe) {
                if ns != mine && e.to_string_lossy().contains("busybox") {
                    return p;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "unshare did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The inode of namespace link `/proc/PID/ns/KIND` (e.g. `net:[4026531840]`).
pub fn ns_link(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// console socket

/// Accepts one connection on `l`, giving up after `timeout` (a runtime that never connects
/// must fail the test, not hang it).
pub fn accept_timeout(
    l: &std::os::unix::net::UnixListener,
    timeout: Duration,
) -> Option<UnixStream> {
    l.set_nonblocking(true).unwrap();
    let start = Instant::now();
    while start.elapsed() < timeout {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

/// Receives one fd sent with SCM_RIGHTS on `s`.
pub fn recv_fd(s: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one control message carrying a few fds.
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; all pointers set below stay valid through recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at valid buffers.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: walking the control buffer the kernel filled in, with the libc macros.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = *(libc::CMSG_DATA(cmsg) as *const RawFd);
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(std::io::Error::other("no fd in the message"))
}

/// Reads from `f` until EOF/EIO or until `until` appears, for at most `timeout`.
pub fn read_pty(fd: &OwnedFd, until: &str, timeout: Duration) -> String {
    let mut f = fs::File::from(fd.try_clone().unwrap());
    // SAFETY: fcntl on a valid fd.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut out = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < timeout {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains(until) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Writes `s` to a file (test convenience).
pub fn write_file(p: &Path, s: &str) {
    let mut f = fs::File::create(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// Sends `sig` to `pid` (only for processes the test started).
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The state letter of /proc/PID/stat (R, S, Z, ...), None if the pid is gone.
pub fn proc_state(pid: i64) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

/// True if PID exists and is not a zombie (an orphaned init may wait a moment to be reaped by
/// a reaper that is not ours).
pub fn pid_alive(pid: i64) -> bool {
    pid > 0 && !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Waits up to `t` for PID to be dead (gone or a zombie); returns whether it is.
pub fn wait_pid_gone(pid: i64, t: Duration) -> bool {
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() > t {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The mountinfo line (inside a container's output) for mount point `mp`.
pub fn mountinfo_line<'a>(mountinfo: &'a str, mp: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mp))
}

/// The per-mount options (field 6) of a mountinfo line.
pub fn mount_opts(line: &str) -> Vec<String> {
    line.split(' ')
        .nth(5)
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The optional fields (shared:N, master:N, ...) of a mountinfo line.
pub fn mount_optional(line: &str) -> Vec<String> {
    line.split(' ')
        .skip(6)
        .take_while(|f| *f != "-")
        .map(str::to_string)
        .collect()
}

/// The super-block options (after " - TYPE SOURCE ") of a mountinfo line.
pub fn super_opts(line: &str) -> Vec<String> {
    let after = line.split(" - ").nth(1).unwrap_or("");
    after
        .split(' ')
        .nth(2)
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect()
}
