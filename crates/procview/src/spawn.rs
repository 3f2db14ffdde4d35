//! The client side: starting the server for a state root, restarting and stopping it, and
//! reading its status. Used by husk (through the crate root) and by the CLI subcommands.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fuse::session;
use crate::keeper::wait_ready;
use crate::{sys, Error, Layout, Result, BINARY};

/// statfs f_type of a FUSE mount.
pub const FUSE_SUPER_MAGIC: i64 = 0x65735546;
const READY_TIMEOUT: Duration = Duration::from_secs(10);

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Keeps the state root's `lock` shared until dropped: the server does not stop while a
/// creator holds it (hold it until the registration is written).
#[derive(Debug)]
pub struct ServerGuard {
    _lock: File,
    layout: Layout,
}

impl ServerGuard {
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The running keeper's pid, if its pid file names a live process.
pub fn keeper_pid(layout: &Layout) -> Option<i32> {
    read_pid(&layout.keeper_pid()).filter(|&p| sys::alive(p))
}

/// The running worker's pid, if its pid file names a live process.
pub fn worker_pid(layout: &Layout) -> Option<i32> {
    read_pid(&layout.worker_pid()).filter(|&p| sys::alive(p))
}

/// What the mount point holds: `Ok(true)` a FUSE mount that answers, `Ok(false)` none,
/// `Err(ENOTCONN)` a FUSE mount whose server is gone.
fn mount_state(layout: &Layout) -> std::io::Result<bool> {
    Ok(sys::fs_type(&layout.mnt())? == FUSE_SUPER_MAGIC)
}

/// Whether the server of `layout` runs: a live keeper and an answering FUSE mount.
pub fn is_running(layout: &Layout) -> bool {
    keeper_pid(layout).is_some() && matches!(mount_state(layout), Ok(true))
}

/// Opens and flocks `<dir>/lock` (LOCK_SH or LOCK_EX), retrying if the file was replaced
/// while we waited (an exiting server removes the directory).
fn lock(layout: &Layout, op: i32) -> Result<File> {
    loop {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&layout.dir)
            .map_err(io(layout.dir.display().to_string()))?;
        let path = layout.lock();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(path.display().to_string()))?;
        sys::flock(&f, op).map_err(io(format!("flock {}", path.display())))?;
        let same = match (f.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Ok(f);
        }
    }
}

/// Where the server binary is: `binary`, else next to the running executable, else on `$PATH`.
pub fn find_binary(binary: Option<&Path>) -> Result<PathBuf> {
    if let Some(b) = binary {
        return if b.is_file() {
            Ok(b.canonicalize().unwrap_or_else(|_| b.to_path_buf()))
        } else {
            Err(Error::Invalid(format!("{}: no such file", b.display())))
        };
    }
    let exe = std::env::current_exe().ok();
    if let Some(dir) = exe.as_deref().and_then(Path::parent) {
        let p = dir.join(BINARY);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(BINARY);
            if p.is_file() {
                return Ok(p.canonicalize().unwrap_or(p));
            }
        }
    }
    let next_to = exe
        .map(|e| e.display().to_string())
        .unwrap_or_else(|| "the running executable".into());
    Err(Error::Invalid(format!(
        "{BINARY} not found next to {next_to} nor on PATH"
    )))
}

fn last_log_line(layout: &Layout) -> String {
    std::fs::read_to_string(layout.log())
        .ok()
        .and_then(|s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(no log)".into())
}

/// Starts the server (under the exclusive lock).
fn start(layout: &Layout, binary: &Path) -> Result<()> {
    // A FUSE mount whose server died answers ENOTCONN: detach it.
    match mount_state(layout) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            let _ = sys::umount_detach(&layout.mnt());
        }
        Ok(true) => {
            // Mounted and answering but no keeper pid: a keeper is being replaced; let it be.
            return Ok(());
        }
        _ => {}
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log())
        .map_err(io(layout.log().display().to_string()))?;
    let mut child = Command::new(binary)
        .arg("serve")
        .arg("--root")
        .arg(&layout.root)
        .arg("--ready-fd")
        .arg("1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(io(format!("start {}", binary.display())))?;
    let out = child.stdout.take().expect("piped stdout");
    let r = wait_ready(out.into(), READY_TIMEOUT);
    if r.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    r.map_err(|e| {
        let e = if e.starts_with("no answer") || e.starts_with("exited") {
            format!("{e}; its log says: {}", last_log_line(layout))
        } else {
            e
        };
        Error::Invalid(format!("{BINARY} for {}: {e}", layout.root.display()))
    })
}

/// Ensures the server of `layout` runs, starting it if needed, and returns with the shared
/// lock held (see [`ServerGuard`]).
pub fn ensure_server(layout: &Layout, binary: Option<&Path>) -> Result<ServerGuard> {
    session::check_device()?;
    let existed = layout.dir.exists();
    let guard = |f| ServerGuard {
        _lock: f,
        layout: layout.clone(),
    };
    let f = lock(layout, libc::LOCK_SH)?;
    if is_running(layout) {
        return Ok(guard(f));
    }
    let binary = match find_binary(binary) {
        Ok(b) => b,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir_all(&layout.dir);
            }
            return Err(e);
        }
    };
    sys::flock(&f, libc::LOCK_EX).map_err(io(format!("flock {}", layout.lock().display())))?;
    if !is_running(layout) {
        if let Err(e) = start(layout, &binary) {
            if !existed && !matches!(mount_state(layout), Ok(true)) {
                let _ = std::fs::remove_dir_all(&layout.dir);
            }
            return Err(e);
        }
    }
    sys::flock(&f, libc::LOCK_SH).map_err(io(format!("flock {}", layout.lock().display())))?;
    Ok(guard(f))
}

/// Replaces the worker (SIGHUP to the keeper) and waits until the new one is ready.
pub fn restart(layout: &Layout) -> Result<()> {
    let keeper = keeper_pid(layout)
        .ok_or_else(|| Error::Invalid(format!("no server runs for {}", layout.root.display())))?;
    let old = read_pid(&layout.worker_pid());
    sys::kill(keeper, libc::SIGHUP).map_err(io(format!("SIGHUP keeper {keeper}")))?;
    let deadline = Instant::now() + READY_TIMEOUT + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(new) = worker_pid(layout) {
            if Some(new) != old {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Invalid(format!(
        "restart of {}: no new worker; its log says: {}",
        layout.root.display(),
        last_log_line(layout)
    )))
}

/// Asks the keeper to stop if no container is registered any more (husk delete calls it).
pub fn stop_if_idle(layout: &Layout) -> Result<()> {
    if let Some(k) = keeper_pid(layout) {
        sys::kill(k, libc::SIGTERM).map_err(io(format!("SIGTERM keeper {k}")))?;
    }
    Ok(())
}

/// What `husk-procview status` shows.
#[derive(Debug)]
pub struct Status {
    pub keeper: Option<i32>,
    pub worker: Option<i32>,
    pub mounted: bool,
    pub containers: Vec<String>,
}

pub fn status(layout: &Layout) -> Status {
    let mut containers: Vec<String> = std::fs::read_dir(&layout.root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && layout.registration(n).is_file())
                .collect()
        })
        .unwrap_or_default();
    containers.sort();
    Status {
        keeper: keeper_pid(layout),
        worker: worker_pid(layout),
        mounted: matches!(mount_state(layout), Ok(true)),
        containers,
    }
}
