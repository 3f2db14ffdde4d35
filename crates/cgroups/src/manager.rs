//! Creating, joining and removing one container's cgroups.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::hierarchy::{self, Hierarchy};
use crate::path::{CgroupPath, OwnCgroups};
use crate::{Error, Result, Saved};

/// How long `destroy` waits for killed processes to leave before giving up.
const DESTROY_WAIT: Duration = Duration::from_secs(10);

/// The cgroups of one container.
#[derive(Clone, Debug)]
pub struct Manager {
    saved: Saved,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, data: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(data.as_bytes()).map_err(io(path))
}

/// The path of `dir` as /proc/PID/cgroup shows it for hierarchy `h`.
fn cgroup_view(h: &Hierarchy, dir: &Path) -> PathBuf {
    let below = dir.strip_prefix(&h.mount_point).unwrap_or(dir);
    h.root.join(below)
}

impl Manager {
    /// Resolves a spec's `linux.cgroupsPath` on this host: absolute paths are taken from each
    /// hierarchy's root, relative ones from the calling process's own cgroup, and `None` means
    /// `default_name` relative to the caller's cgroup. Nothing is created yet.
    pub fn new(cgroups_path: Option<&Path>, default_name: &str) -> Result<Manager> {
        let hs = hierarchy::detect()?;
        let path = CgroupPath::parse(cgroups_path, default_name)?;
        let own = match path {
            CgroupPath::Relative(_) => OwnCgroups::read()?,
            CgroupPath::Absolute(_) => OwnCgroups::default(),
        };
        let mut saved = Saved {
            layout: hs.layout,
            dirs: Vec::new(),
            unified: None,
            cpuset: None,
            freezer: None,
            path: PathBuf::new(),
        };
        for h in &hs.v1 {
            let dir = path.dir_in(h, own.of(h))?;
            if h.has("cpuset") {
                saved.cpuset = Some(dir.clone());
            }
            if h.has("freezer") {
                saved.freezer = Some(dir.clone());
            }
            if saved.path.as_os_str().is_empty() {
                saved.path = cgroup_view(h, &dir);
            }
            saved.dirs.push(dir);
        }
        if let Some(u) = &hs.unified {
            let dir = path.dir_in(u, own.of(u))?;
            saved.path = cgroup_view(u, &dir);
            saved.unified = Some(dir.clone());
            saved.dirs.push(dir);
        }
        Ok(Manager { saved })
    }

    /// A manager for cgroups created earlier, from what `saved()` returned.
    pub fn from_saved(saved: Saved) -> Manager {
        Manager { saved }
    }

    /// What to store to find these cgroups again.
    pub fn saved(&self) -> &Saved {
        &self.saved
    }

    /// Creates the directories (mkdir -p) in every hierarchy. New cpuset levels get their
    /// parent's cpus and mems, without which the kernel refuses tasks (ENOSPC).
    pub fn create(&self) -> Result<()> {
        for dir in &self.saved.dirs {
            if Some(dir) == self.saved.cpuset.as_ref() {
                create_cpuset(dir)?;
            } else {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
        }
        Ok(())
    }

    /// An O_PATH|O_DIRECTORY fd of the v2 directory, for clone3's CLONE_INTO_CGROUP.
    pub fn unified_fd(&self) -> Result<Option<OwnedFd>> {
        let Some(dir) = &self.saved.unified else {
            return Ok(None);
        };
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(io(dir))?;
        Ok(Some(f.into()))
    }

    /// Moves `pid` into the container's cgroup in every hierarchy (`skip_unified`: the process
    /// was already cloned into the v2 one).
    pub fn add(&self, pid: i32, skip_unified: bool) -> Result<()> {
        for dir in &self.saved.dirs {
            if skip_unified && Some(dir) == self.saved.unified.as_ref() {
                continue;
            }
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Pids of every process in the container's cgroup (and its sub-cgroups).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for dir in &self.saved.dirs {
            collect_pids(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes every directory, killing with SIGKILL whatever still runs in them first.
    /// Idempotent: directories already gone are fine.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + DESTROY_WAIT;
        loop {
            self.kill_all()?;
            let mut busy = None;
            for dir in &self.saved.dirs {
                if let Err(e) = remove_tree(dir) {
                    busy = Some(e);
                }
            }
            match busy {
                None => return Ok(()),
                Some(e) if Instant::now() >= deadline => return Err(e),
                Some(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// SIGKILLs every process: cgroup.kill on v2; on v1 freeze, kill, thaw so that nothing
    /// forks away meanwhile.
    fn kill_all(&self) -> Result<()> {
        if let Some(u) = &self.saved.unified {
            let kill = u.join("cgroup.kill");
            if kill.exists() {
                match write_file(&kill, "1") {
                    Ok(()) => {}
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let pids = match self.pids() {
            Ok(p) => p,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        if pids.is_empty() {
            return Ok(());
        }
        let freezer = self.saved.freezer.as_ref().filter(|f| f.exists());
        if let Some(f) = freezer {
            let _ = write_file(&f.join("freezer.state"), "FROZEN");
        }
        for pid in pids {
            // The pids were read from the container's own cgroup.
            crate::sys::kill(pid, libc::SIGKILL);
        }
        if let Some(f) = freezer {
            let _ = write_file(&f.join("freezer.state"), "THAWED");
        }
        Ok(())
    }
}

/// mkdir -p for the cpuset hierarchy, copying cpus and mems into each new level.
fn create_cpuset(dir: &Path) -> Result<()> {
    let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    missing.reverse();
    for d in missing {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(d)(e)),
        }
        let parent = d.parent().unwrap_or(d);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = d.join(f);
            let cur = std::fs::read_to_string(&mine).map_err(io(&mine))?;
            if cur.trim().is_empty() {
                let p = parent.join(f);
                let val = std::fs::read_to_string(&p).map_err(io(&p))?;
                write_file(&mine, val.trim())?;
            }
        }
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&procs) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&procs)(e)),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// rmdir of a cgroup and every sub-cgroup the container made, deepest first.
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(dir)(e)),
    }
}
