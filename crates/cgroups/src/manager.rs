//! The bodies of [`crate::Manager`]'s methods.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fs::{io_err, procs, read, tree_deepest_first, write};
use crate::hierarchy;
use crate::path::{CgroupPath, OwnCgroups};
use crate::{sys, Error, Layout, Result, Saved, V1Dir};

/// How long `destroy` keeps killing and retrying `rmdir` on EBUSY.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `destroy` waits for a v1 freezer to report FROZEN.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn resolve(cgroups_path: Option<&Path>, default_name: &str) -> Result<Saved> {
    let path = CgroupPath::parse(cgroups_path, default_name)?;
    let hs = hierarchy::detect()?;
    let own = match path {
        CgroupPath::Relative(_) => OwnCgroups::read()?,
        CgroupPath::Absolute(_) => OwnCgroups::default(),
    };
    let mut saved = Saved {
        layout: hs.layout,
        dirs: Vec::new(),
        unified: None,
        v1: Vec::new(),
        systemd: None,
    };
    for h in &hs.v1 {
        let dir = path.dir_in(h, own.of(h))?;
        saved.dirs.push(dir.clone());
        saved.v1.push(V1Dir {
            controllers: h.controllers.clone(),
            dir,
        });
    }
    if let Some(h) = &hs.unified {
        let dir = path.dir_in(h, own.of(h))?;
        saved.dirs.push(dir.clone());
        saved.unified = Some(dir);
    }
    Ok(saved)
}

pub fn create(saved: &Saved) -> Result<()> {
    for d in &saved.v1 {
        if d.controllers.iter().any(|c| c == "cpuset") {
            ensure_cpuset(&d.dir)?;
        }
    }
    for dir in &saved.dirs {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    Ok(())
}

/// Refuses cgroup directories that already exist and hold processes or are frozen; before
/// `create`, so a refusal leaves them (and their processes) as they were.
pub fn check_existing(saved: &Saved) -> Result<()> {
    for dir in saved.dirs.iter().filter(|d| d.is_dir()) {
        // A cgroup that already holds processes is someone else's: running in it would mix
        // them with the container's, and delete would kill them (runc refuses it too).
        let procs = read(&dir.join("cgroup.procs"))?;
        let n = procs.lines().filter(|l| !l.trim().is_empty()).count();
        if n > 0 {
            return Err(Error::Invalid(format!(
                "container's cgroup is not empty: {n} process(es) found in {}",
                dir.display()
            )));
        }
        // An empty cgroup left frozen would freeze the init before it could report (run
        // hung): refused, as runc refuses it.
        let frozen = read(&dir.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
            || read(&dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        if frozen {
            return Err(Error::Invalid(format!(
                "container's cgroup unexpectedly frozen: {}",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// mkdir -p for a v1 cpuset directory: every level whose `cpuset.cpus` or `cpuset.mems` is empty
/// (a new one always is) gets its parent's, or the kernel refuses tasks with ENOSPC. The same
/// walk as runc's; the hierarchy's root always has both set.
fn ensure_cpuset(dir: &Path) -> Result<()> {
    const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];
    let filled = |d: &Path| -> Result<bool> {
        for f in FILES {
            match std::fs::read_to_string(d.join(f)) {
                Ok(s) if !s.trim().is_empty() => {}
                Ok(_) => return Ok(false),
                Err(e) => return Err(io_err(&d.join(f))(e)),
            }
        }
        Ok(true)
    };
    if dir.is_dir() {
        if !dir.join("cpuset.cpus").exists() {
            return Err(Error::Invalid(format!(
                "{}: not a directory of a v1 cpuset hierarchy",
                dir.display()
            )));
        }
        if filled(dir)? {
            return Ok(());
        }
    }
    let parent = dir
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{}: no cpuset parent", dir.display())))?;
    ensure_cpuset(parent)?;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(io_err(dir)(e)),
        _ => {}
    }
    for f in FILES {
        let cur = read(&dir.join(f))?;
        if cur.trim().is_empty() {
            let v = read(&parent.join(f))?;
            write(&dir.join(f), v.trim())?;
        }
    }
    Ok(())
}

pub fn unified_fd(saved: &Saved) -> Result<Option<OwnedFd>> {
    let Some(dir) = &saved.unified else {
        return Ok(None);
    };
    // std adds O_CLOEXEC; O_PATH makes the access mode irrelevant.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .map_err(io_err(dir))?;
    Ok(Some(f.into()))
}

pub fn add(saved: &Saved, pid: i32, skip_unified: bool, skip_v1: bool) -> Result<()> {
    for dir in &saved.dirs {
        let unified = Some(dir) == saved.unified.as_ref();
        if (unified && skip_unified) || (!unified && skip_v1) {
            continue;
        }
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(())
}

pub fn v1_tasks(saved: &Saved) -> Result<Vec<OwnedFd>> {
    open_tasks(
        saved
            .dirs
            .iter()
            .filter(|d| Some(*d) != saved.unified.as_ref())
            .map(|d| d.as_path()),
    )
}

pub fn open_tasks<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for dir in dirs {
        let path = dir.join("tasks");
        // std adds O_CLOEXEC: the child writes before it execs anything.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        out.push(f.into());
    }
    Ok(out)
}

pub fn pids(saved: &Saved) -> Result<Vec<i32>> {
    let mut all = Vec::new();
    for dir in &saved.dirs {
        for d in tree_deepest_first(dir)? {
            all.extend(procs(&d)?);
        }
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

pub fn destroy(saved: &Saved) -> Result<()> {
    // The common case first: the processes are gone and nobody made sub-cgroups, so each
    // directory just goes (one rmdir each instead of three walks; syscalls cost ~20 us here).
    if try_rmdir_all(saved) {
        return Ok(());
    }
    let me = std::process::id() as i32;
    if pids(saved)?.contains(&me) {
        return Err(Error::Invalid(format!(
            "the calling process (pid {me}) is in the container's cgroups {:?}; not killing it",
            saved.dirs
        )));
    }
    if let Some(dir) = &saved.unified {
        let kill = dir.join("cgroup.kill");
        if kill.exists() {
            match write(&kill, "1") {
                // Removed meanwhile: nothing to kill.
                Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                r => r?,
            }
        }
    }
    let deadline = Instant::now() + DESTROY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        kill_all(saved)?;
        match remove_all(saved) {
            Ok(()) => return Ok(()),
            Err(Error::Busy { .. }) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(Error::Busy { path, .. }) => {
                let pids = pids(saved).unwrap_or_default();
                return Err(Error::Busy { path, pids });
            }
            Err(e) => return Err(e),
        }
    }
}

/// SIGKILLs every process in the cgroups; on v1 with a freezer, frozen first so nothing forks
/// in between, then thawed so the signals are acted on.
pub fn kill_all(saved: &Saved) -> Result<()> {
    let freezer = saved
        .v1_dir("freezer")
        .filter(|d| saved.layout != Layout::V2 && d.join("freezer.state").exists());
    let pids = pids(saved)?;
    if pids.is_empty() {
        return Ok(());
    }
    if let Some(f) = freezer {
        if let Err(e) = freeze(f, "FROZEN") {
            let _ = freeze(f, "THAWED");
            return Err(e);
        }
    }
    // Listed again: the frozen set is final. Thawed whatever happens.
    let result = crate::manager::pids(saved).and_then(|pids| {
        for pid in pids {
            match sys::kill(pid, libc::SIGKILL) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(source) => return Err(Error::Kill { pid, source }),
            }
        }
        Ok(())
    });
    if let Some(f) = freezer {
        freeze(f, "THAWED")?;
    }
    result
}

/// Writes `state` to `dir/freezer.state` and waits (bounded) until it reads back; FREEZING
/// that does not finish is left as is (the kill and thaw still follow). A missing directory
/// is fine.
fn freeze(dir: &Path, state: &str) -> Result<()> {
    let file = dir.join("freezer.state");
    match write(&file, state) {
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => return Ok(()),
        r => r?,
    }
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    while Instant::now() < deadline {
        match std::fs::read_to_string(&file) {
            Ok(s) if s.trim() == state => return Ok(()),
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&file)(e)),
        }
        // Re-writing nudges a FREEZING cgroup on older kernels.
        let _ = write(&file, state);
    }
    Ok(())
}

/// rmdir of every directory as it is; false (having removed what it could) at the first one
/// still busy or not empty, or any other error, for `destroy`'s careful path to handle.
fn try_rmdir_all(saved: &Saved) -> bool {
    saved.dirs.iter().all(|d| match std::fs::remove_dir(d) {
        Ok(()) => true,
        Err(e) => e.kind() == ErrorKind::NotFound,
    })
}

/// rmdir of each container directory and every cgroup below it, deepest first. Only the leaf
/// (the container's own directory) is removed, never its parents, as runc does. `Busy` on
/// EBUSY so the caller retries.
fn remove_all(saved: &Saved) -> Result<()> {
    for dir in &saved.dirs {
        for d in tree_deepest_first(dir)? {
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(Error::Busy {
                        path: d,
                        pids: Vec::new(),
                    })
                }
                Err(e) => return Err(io_err(&d)(e)),
            }
        }
    }
    Ok(())
}
