//! The keeper process: owns the mount and the `/dev/fuse` descriptor, and keeps a worker
//! serving it (restarting it when it dies, replacing it on SIGHUP, re-executing itself on
//! SIGUSR2), and takes everything down once no container is registered.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use crate::sys::adopt_fd;

use crate::agent::{self, KeeperAgent};
use crate::fuse::session;
use crate::server::{self, write_atomic};
use crate::spawn::{read_pid, FUSE_SUPER_MAGIC};
use crate::{sys, Error, Layout, Result, FSNAME};

/// How long a new worker may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the keeper looks for registrations.
const IDLE_EVERY: Duration = Duration::from_secs(3);
/// The cgroup the server moves into, at the root of every hierarchy.
pub const CGROUP: &str = "husk-procview";

pub const MS_FLAGS: libc::c_ulong =
    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_RDONLY | libc::MS_NOEXEC;

/// How the keeper was started.
pub struct KeeperArgs {
    pub root: PathBuf,
    /// Where to report `ok` or `error: …` once (fresh start only).
    pub ready: Option<OwnedFd>,
    /// An inherited, already mounted connection (re-exec or a worker's restart of the keeper).
    pub fd: Option<OwnedFd>,
    /// The running worker to adopt.
    pub adopt_worker: Option<i32>,
    /// The seccomp agent's descriptors a previous keeper passed (`--notify-fd`, `--agent-fd`,
    /// `--agent-worker-fd`, `--listeners`); empty on a fresh start.
    pub agent: (
        Option<OwnedFd>,
        Option<OwnedFd>,
        Option<OwnedFd>,
        Vec<agent::Held>,
    ),
    pub exe: PathBuf,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Reads the pending signals of a signalfd.
pub fn read_signals(sigfd: &File) -> Vec<i32> {
    let mut out = Vec::new();
    let mut buf = [0u8; 128];
    let mut f = sigfd;
    while let Ok(128) = f.read(&mut buf) {
        out.push(u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as i32);
    }
    out
}

/// Whether any container under the state root is registered.
pub fn any_registered(layout: &Layout) -> bool {
    let Ok(rd) = std::fs::read_dir(&layout.root) else {
        return false;
    };
    rd.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        !name.starts_with('.') && layout.registration(&name).is_file()
    })
}

/// Waits for `ok` on a ready pipe; the error names what came instead.
pub fn wait_ready(rd: OwnedFd, timeout: Duration) -> std::result::Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut f = File::from(rd);
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer in {} s", timeout.as_secs()));
        }
        let r = sys::poll_in(&[f.as_raw_fd()], left.as_millis() as i32 + 1)
            .map_err(|e| format!("poll: {e}"))?;
        if !r[0] {
            continue;
        }
        let mut buf = [0u8; 512];
        let n = match f.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        got.extend_from_slice(&buf[..n]);
        if n == 0 || got.contains(&b'\n') {
            let text = String::from_utf8_lossy(&got).trim().to_string();
            return if text == "ok" {
                Ok(())
            } else if text.is_empty() {
                Err("exited before it was ready".into())
            } else {
                Err(text.strip_prefix("error: ").unwrap_or(&text).to_string())
            };
        }
    }
}

/// A worker the keeper started or adopted.
struct Child {
    pid: i32,
    pidfd: OwnedFd,
}

/// Starts a worker on `fd` (with the agent's arguments `extra`) and waits until it is ready.
fn spawn_worker(
    exe: &Path,
    root: &Path,
    fd: RawFd,
    (takeover, resend): (bool, bool),
    extra: &[String],
) -> Result<Child> {
    let (rd, wr) = sys::pipe().map_err(io("pipe"))?;
    sys::set_cloexec(&wr, false).map_err(io("pipe"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .arg("--root")
        .arg(root)
        .arg("--fd")
        .arg(fd.to_string())
        .arg("--keeper-pid")
        .arg(std::process::id().to_string())
        .arg("--ready-fd")
        .arg(wr.as_raw_fd().to_string());
    if takeover {
        cmd.arg("--takeover");
    }
    if resend {
        cmd.arg("--resend");
    }
    cmd.args(extra);
    let child = cmd
        .spawn()
        .map_err(io(format!("start worker {}", exe.display())))?;
    drop(wr);
    let pid = child.id() as i32;
    let pidfd = sys::pidfd_open(pid).map_err(io("pidfd_open worker"))?;
    if let Err(e) = wait_ready(rd, READY_TIMEOUT) {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::poll_in(&[pidfd.as_raw_fd()], 1000);
        let _ = sys::reap(pid);
        return Err(Error::Invalid(format!("worker {pid}: {e}")));
    }
    Ok(Child { pid, pidfd })
}

/// Started by a worker whose keeper died: a new keeper adopting that worker (`extra`: the
/// agent's arguments).
pub fn spawn_adopting_keeper(exe: &Path, root: &Path, fd: RawFd, extra: &[String]) -> Result<i32> {
    let child = Command::new(exe)
        .arg("serve")
        .arg("--root")
        .arg(root)
        .arg("--fd")
        .arg(fd.to_string())
        .arg("--adopt-worker")
        .arg(std::process::id().to_string())
        .args(extra)
        .spawn()
        .map_err(io(format!("start keeper {}", exe.display())))?;
    Ok(child.id() as i32)
}

/// Stops a worker: SIGTERM, up to 5 s, then SIGKILL.
fn stop_worker(w: &Child) {
    let _ = sys::kill(w.pid, libc::SIGTERM);
    let r = sys::poll_in(&[w.pidfd.as_raw_fd()], 5000);
    if !matches!(r.as_deref(), Ok([true])) {
        eprintln!("husk-procview: worker {} did not stop; killing it", w.pid);
        let _ = sys::kill(w.pid, libc::SIGKILL);
        let _ = sys::poll_in(&[w.pidfd.as_raw_fd()], 2000);
    }
    let _ = sys::reap(w.pid);
}

/// Moves this process into `husk-procview` at the root of every cgroup hierarchy (best effort).
fn enter_cgroups() {
    let h = match cgroups::hierarchy::detect() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("husk-procview: cgroups: {e}");
            return;
        }
    };
    let pid = std::process::id().to_string();
    for hier in h.v1.iter().chain(h.unified.iter()) {
        let dir = hier.mount_point.join(CGROUP);
        let r = (|| -> std::io::Result<()> {
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            if hier.has("cpuset") {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let mine = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                    if mine.trim().is_empty() {
                        let parent = std::fs::read_to_string(hier.mount_point.join(f))?;
                        std::fs::write(dir.join(f), parent.trim())?;
                    }
                }
            }
            std::fs::write(dir.join("cgroup.procs"), &pid)
        })();
        if let Err(e) = r {
            eprintln!("husk-procview: cgroup {}: {e}", dir.display());
        }
    }
}

/// Leaves the `husk-procview` cgroups and removes them unless another server is in them.
pub fn leave_cgroups() {
    let Ok(h) = cgroups::hierarchy::detect() else {
        return;
    };
    let pid = std::process::id().to_string();
    for hier in h.v1.iter().chain(h.unified.iter()) {
        let dir = hier.mount_point.join(CGROUP);
        if !dir.exists() {
            continue;
        }
        let _ = std::fs::write(hier.mount_point.join("cgroup.procs"), &pid);
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => eprintln!("husk-procview: rmdir {}: {e}", dir.display()),
        }
    }
}

fn report(ready: &mut Option<OwnedFd>, msg: &str) {
    if let Some(fd) = ready.take() {
        let mut f = File::from(fd);
        let _ = f.write_all(msg.as_bytes());
    }
}

/// Fresh start: directory, daemon, mount, agent socket, first worker. Returns the fd, the
/// worker and the agent.
fn start_fresh(args: &mut KeeperArgs, layout: &Layout) -> Result<(OwnedFd, Child, KeeperAgent)> {
    session::check_device()?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&layout.dir)
        .map_err(io(layout.dir.display().to_string()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log())
        .map_err(io(layout.log().display().to_string()))?;
    // Daemonize: the starter's child exits at once; the grandchild leads a new session.
    match sys::fork().map_err(io("fork"))? {
        sys::Fork::Parent => std::process::exit(0),
        sys::Fork::Child => {}
    }
    sys::setsid().map_err(io("setsid"))?;
    let null = File::open("/dev/null").map_err(io("/dev/null"))?;
    let _ = sys::dup2(&null, 0);
    let _ = sys::dup2(&log, 1);
    let _ = sys::dup2(&log, 2);
    let _ = std::env::set_current_dir("/");
    eprintln!(
        "husk-procview: keeper {} starting for {}",
        std::process::id(),
        layout.root.display()
    );
    let mnt = layout.mnt();
    std::fs::create_dir_all(&mnt).map_err(io(mnt.display().to_string()))?;
    let _ = std::fs::remove_file(server::nodes_file(layout));
    let _ = std::fs::remove_file(server::init_file(layout));
    let fd = session::open_device()?;
    sys::set_cloexec(&fd, false).map_err(io("fuse fd"))?;
    let data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions",
        fd.as_raw_fd()
    );
    sys::mount(FSNAME, &mnt, &format!("fuse.{FSNAME}"), MS_FLAGS, &data)
        .map_err(io(format!("mount fuse.{FSNAME} on {}", mnt.display())))?;
    write_atomic(&layout.keeper_pid(), &std::process::id().to_string())?;
    enter_cgroups();
    let ka = match KeeperAgent::new(layout, None, None, None, Vec::new()) {
        Ok(ka) => ka,
        Err(e) => {
            let _ = sys::umount_detach(&mnt);
            return Err(e);
        }
    };
    let extra = ka.worker_args();
    match spawn_worker(
        &args.exe,
        &layout.root,
        fd.as_raw_fd(),
        (false, false),
        &extra,
    ) {
        Ok(w) => Ok((fd, w, ka)),
        Err(e) => {
            let _ = sys::umount_detach(&mnt);
            Err(e)
        }
    }
}

pub fn run(mut args: KeeperArgs) -> Result<()> {
    sys::ignore_sigpipe();
    let layout = Layout::new(&args.root);
    let sigfd = File::from(
        sys::signalfd(&[
            libc::SIGHUP,
            libc::SIGUSR2,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGCHLD,
        ])
        .map_err(io("signalfd"))?,
    );
    let (fd, mut worker, mut ka) = match (args.fd.take(), args.adopt_worker) {
        (Some(fd), Some(pid)) => {
            let (n, c, w, held) = std::mem::take(&mut args.agent);
            let ka = KeeperAgent::new(&layout, n, c, w, held)?;
            let _ = sys::setsid();
            write_atomic(&layout.keeper_pid(), &std::process::id().to_string())?;
            eprintln!(
                "husk-procview: keeper {} adopts worker {pid}",
                std::process::id()
            );
            let w = match sys::pidfd_open(pid) {
                Ok(pidfd) => Child { pid, pidfd },
                Err(_) => spawn_worker(
                    &args.exe,
                    &layout.root,
                    fd.as_raw_fd(),
                    (true, true),
                    &ka.worker_args(),
                )?,
            };
            (fd, w, ka)
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Invalid("--fd and --adopt-worker go together".into()))
        }
        (None, None) => match start_fresh(&mut args, &layout) {
            Ok(x) => x,
            Err(e) => {
                report(&mut args.ready, &format!("error: {e}\n"));
                eprintln!("husk-procview: {e}");
                leave_cgroups();
                return Err(e);
            }
        },
    };
    report(&mut args.ready, "ok\n");
    eprintln!(
        "husk-procview: keeper {} serving with worker {} ({} seccomp listeners)",
        std::process::id(),
        worker.pid,
        ka.count()
    );
    let mut next_idle = Instant::now() + IDLE_EVERY;
    loop {
        let wait = next_idle.saturating_duration_since(Instant::now());
        let r = sys::poll_in(
            &[sigfd.as_raw_fd(), worker.pidfd.as_raw_fd(), ka.poll_fd()],
            wait.as_millis() as i32 + 1,
        )
        .map_err(io("poll"))?;
        if r[2] {
            ka.drain();
        }
        let mut check_idle = Instant::now() >= next_idle;
        if r[0] {
            for sig in read_signals(&sigfd) {
                match sig {
                    libc::SIGCHLD => while sys::reap(-1).is_some() {},
                    libc::SIGHUP => {
                        eprintln!("husk-procview: SIGHUP: replacing worker {}", worker.pid);
                        ka.drain();
                        let mut extra = ka.worker_args();
                        extra.extend(["--after".to_string(), worker.pid.to_string()]);
                        let fd = fd.as_raw_fd();
                        match spawn_worker(&args.exe, &layout.root, fd, (true, false), &extra) {
                            Ok(new) => {
                                let old = std::mem::replace(&mut worker, new);
                                stop_worker(&old);
                                // What the old worker accepted after the new one started.
                                let added = ka.drain();
                                ka.forward(&added);
                                eprintln!(
                                    "husk-procview: worker {} replaced {}",
                                    worker.pid, old.pid
                                );
                            }
                            Err(e) => eprintln!("husk-procview: SIGHUP: {e}"),
                        }
                    }
                    libc::SIGUSR2 => {
                        eprintln!(
                            "husk-procview: SIGUSR2: re-executing {}",
                            args.exe.display()
                        );
                        ka.drain();
                        let e = Command::new(&args.exe)
                            .arg("serve")
                            .arg("--root")
                            .arg(&layout.root)
                            .arg("--fd")
                            .arg(fd.as_raw_fd().to_string())
                            .arg("--adopt-worker")
                            .arg(worker.pid.to_string())
                            .args(ka.keeper_args())
                            .exec();
                        eprintln!("husk-procview: re-exec {}: {e}", args.exe.display());
                    }
                    _ => check_idle = true,
                }
            }
        }
        if r[1] {
            let _ = sys::reap(worker.pid);
            eprintln!(
                "husk-procview: worker {} died; starting another",
                worker.pid
            );
            ka.drain();
            let extra = ka.worker_args();
            match spawn_worker(
                &args.exe,
                &layout.root,
                fd.as_raw_fd(),
                (true, true),
                &extra,
            ) {
                Ok(w) => worker = w,
                Err(e) => {
                    // Try again on the next round, after checking there is still a mount.
                    eprintln!("husk-procview: {e}; trying again in 1 s");
                    std::thread::sleep(Duration::from_secs(1));
                    check_idle = true;
                }
            }
        }
        if check_idle {
            next_idle = Instant::now() + IDLE_EVERY;
            if !matches!(sys::fs_type(&layout.mnt()), Ok(FUSE_SUPER_MAGIC)) {
                // Unmounted behind our back (or the state root is gone): nothing to keep.
                eprintln!(
                    "husk-procview: {} is no longer mounted; exiting",
                    layout.mnt().display()
                );
                stop_worker(&worker);
                if read_pid(&layout.keeper_pid()) == Some(std::process::id() as i32) {
                    let _ = std::fs::remove_file(layout.keeper_pid());
                }
                leave_cgroups();
                std::process::exit(0);
            }
            if !any_registered(&layout) && shutdown(&layout, &worker) {
                drop(fd);
                std::process::exit(0);
            }
        }
    }
}

/// The idle exit: under the exclusive lock, re-checked. Returns whether it happened.
fn shutdown(layout: &Layout, worker: &Child) -> bool {
    let Ok(lock) = File::open(layout.lock()).or_else(|_| File::create(layout.lock())) else {
        return false;
    };
    if sys::flock(&lock, libc::LOCK_EX | libc::LOCK_NB).is_err() {
        return false;
    }
    if any_registered(layout) {
        return false;
    }
    eprintln!("husk-procview: no container registered; stopping");
    if let Err(e) = sys::umount_detach(&layout.mnt()) {
        eprintln!("husk-procview: umount {}: {e}", layout.mnt().display());
    }
    stop_worker(worker);
    if let Err(e) = std::fs::remove_dir_all(&layout.dir) {
        eprintln!("husk-procview: remove {}: {e}", layout.dir.display());
    }
    leave_cgroups();
    true
}
