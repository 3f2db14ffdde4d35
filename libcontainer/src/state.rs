//! Container state on disk: one 0700 directory per container under the runtime root, holding
//! state.json (written atomically: write, then rename) and locked with flock so that commands
//! on one container serialize.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Context;
use crate::oci_spec::runtime::Spec;
use crate::{Error, Result};

/// The runtime-spec version husk implements.
pub const OCI_VERSION: &str = "1.3.0";

const STATE_FILE: &str = "state.json";
/// The init and cgroup again, written once at create: what `delete --force` needs to end a
/// container whose state.json is unreadable (a disk error, a hand edit).
const RECOVERY_FILE: &str = "recovery.json";

/// What [`RECOVERY_FILE`] holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Recovery {
    pub pid: Option<i32>,
    pub pid_start: Option<u64>,
    pub cgroup: Option<cgroups::Saved>,
}
/// Longest accepted container id: ids become directory names and cgroup paths.
pub(crate) const MAX_ID_LEN: usize = 1024;

/// A container's status, as `state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still setting the container up.
    Creating,
    /// The init waits for `start`.
    Created,
    /// The container's process runs.
    Running,
    /// Its processes are frozen.
    Paused,
    /// Its init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The state of a container: the OCI state plus runc's extra fields (`rootfs`, `created`,
/// `owner`), in runc's JSON layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The runtime-spec version of the state (`OCI_VERSION`).
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's pid in the runtime's pid namespace; 0 once stopped.
    pub pid: i32,
    /// created, running, paused or stopped (read from the live process).
    pub status: Status,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 in UTC.
    pub created: String,
    /// The user that created it (`list`); empty from [`Container::state`](crate::Container::state),
    /// as in runc's `state`.
    pub owner: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// How far the lifecycle got, as recorded by the commands themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Creating,
    Created,
    Started,
}

/// What state.json holds. `C` is the config: the whole spec, or for `list`, which reads every
/// container's file, only its annotations ([`Summary`]: the rest is skipped, not built).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record<C = Spec> {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub phase: Phase,
    /// The init's pid and its start time (field 22 of /proc/PID/stat): together they identify
    /// the process, so a recycled pid is never signalled.
    pub pid: Option<i32>,
    pub pid_start: Option<u64>,
    pub cgroup: Option<cgroups::Saved>,
    /// Created with `--no-new-keyring`: exec's processes keep their caller's keyring too.
    #[serde(default)]
    pub no_new_keyring: bool,
    pub config: C,
}

/// The part of a config `state` and `list` show.
pub(crate) trait Annotated {
    fn annotations_map(&self) -> HashMap<String, String>;
}

impl Annotated for Spec {
    fn annotations_map(&self) -> HashMap<String, String> {
        self.annotations().clone().unwrap_or_default()
    }
}

/// A config read for its annotations only.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

impl Annotated for Summary {
    fn annotations_map(&self) -> HashMap<String, String> {
        self.annotations.clone().unwrap_or_default()
    }
}

impl Record {
    /// The record of a container being made (`create`, `restore`): no process yet.
    pub(crate) fn creating(
        id: &str,
        bundle: &Path,
        spec: Spec,
        cgroup: &cgroups::Saved,
        no_new_keyring: bool,
    ) -> Record {
        let root = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        Record {
            id: id.into(),
            bundle: bundle.to_path_buf(),
            rootfs: bundle.join(root),
            created: rfc3339_now(),
            owner: owner_name(),
            phase: Phase::Creating,
            pid: None,
            pid_start: None,
            cgroup: Some(cgroup.clone()),
            no_new_keyring,
            config: spec,
        }
    }
}

impl<C: Annotated> Record<C> {
    /// The live status: the recorded phase checked against the process itself.
    pub(crate) fn status(&self) -> Status {
        let alive = match (self.pid, self.pid_start) {
            (Some(pid), Some(start)) => process_alive(pid, start),
            _ => false,
        };
        match (self.phase, alive) {
            (Phase::Creating, _) => Status::Creating,
            (_, false) => Status::Stopped,
            (_, true) if self.frozen() => Status::Paused,
            (Phase::Created, true) => Status::Created,
            (Phase::Started, true) => Status::Running,
        }
    }

    /// Whether the container's cgroup is frozen (`pause`).
    fn frozen(&self) -> bool {
        self.cgroup
            .as_ref()
            .is_some_and(|s| cgroups::Manager::from_saved(s.clone()).is_frozen())
    }

    /// The public state (the OCI state plus runc's fields).
    pub(crate) fn state(&self) -> State {
        let status = self.status();
        State {
            oci_version: OCI_VERSION.into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid.unwrap_or(0)
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.config.annotations_map(),
        }
    }
}

/// Checks that `id` can name a directory: not empty, not `.`/`..`, no `/`, no NUL, not
/// over-long.
pub(crate) fn validate_id(id: &str) -> Result<()> {
    let why = if id.is_empty() {
        "it is empty"
    } else if id == "." || id == ".." {
        "it may not be . or .."
    } else if id.contains('/') {
        "it may not contain /"
    } else if id.contains('\0') {
        "it may not contain NUL"
    } else if id.len() > MAX_ID_LEN {
        "it is longer than 1024 bytes"
    } else if id.starts_with('.') {
        "it may not start with ."
    } else {
        return Ok(());
    };
    Err(Error::InvalidId { id: id.into(), why })
}

/// How a command holds a container's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Readers (`state`, `list`, `kill`): state.json is replaced atomically, so they need no
    /// lock and never wait behind a long `create`.
    None,
    /// Commands that change the container (`start`, `delete`) serialize.
    Exclusive,
}

/// A container state directory.
pub(crate) struct StateDir {
    pub path: PathBuf,
    dir: OwnedFd,
}

impl StateDir {
    /// Makes `root/id` (and root if needed, both 0700) and locks it. Fails with
    /// `AlreadyExists` if the container exists.
    pub(crate) fn create(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .ctx(|| format!("creating state directory {}", root.display()))?;
        let path = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.into()))
            }
            Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
        }
        let dir =
            open_dir(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        flock(&dir, libc::LOCK_EX)
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(StateDir { path, dir })
    }

    /// Opens the directory of an existing container, locked as `lock` says.
    pub(crate) fn open(root: &Path, id: &str, lock: Lock) -> Result<StateDir> {
        validate_id(id)?;
        let path = root.join(id);
        let dir = match open_dir(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()))
            }
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        };
        if lock == Lock::Exclusive {
            flock(&dir, libc::LOCK_EX)
                .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        }
        Ok(StateDir { path, dir })
    }

    /// The directory's fd (for paths like /proc/self/fd/N/name that stay short).
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.dir
    }

    /// Reads state.json; `None` if create was killed before writing it.
    pub(crate) fn read(&self) -> Result<Option<Record>> {
        self.read_as()
    }

    /// `read` with the config as `C` (`Summary` for `list`).
    pub(crate) fn read_as<C: serde::de::DeserializeOwned>(&self) -> Result<Option<Record<C>>> {
        let path = self.path.join(STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::Config {
                path,
                field: None,
                msg: format!("corrupt container state: {e}"),
            })
    }

    /// Writes state.json atomically: a new file swapped in for the old one.
    ///
    /// Swapped with RENAME_EXCHANGE, then the old one unlinked, rather than renamed over it:
    /// ext4 (auto_da_alloc) starts writeback of a file renamed over another, which cost up to
    /// 1.8 ms per update on the bench machine; an exchange and an unlink do not.
    pub(crate) fn write(&self, record: &Record) -> Result<()> {
        if record.phase == Phase::Created {
            let r = Recovery {
                pid: record.pid,
                pid_start: record.pid_start,
                cgroup: record.cgroup.clone(),
            };
            let path = self.path.join(RECOVERY_FILE);
            std::fs::write(&path, serde_json::to_vec(&r).expect("recovery serializes"))
                .ctx(|| format!("writing {}", path.display()))?;
        }
        let tmp = self.path.join(".state.json.tmp");
        let dst = self.path.join(STATE_FILE);
        let data = serde_json::to_vec(record).expect("state serializes");
        let mut f = File::create(&tmp).ctx(|| format!("writing {}", tmp.display()))?;
        f.write_all(&data)
            .ctx(|| format!("writing {}", tmp.display()))?;
        drop(f);
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
        let swapped = match (c(&tmp), c(&dst)) {
            (Some(a), Some(b)) => crate::sys::exchange(&a, &b).is_ok(),
            _ => false,
        };
        if swapped {
            // The old state now has the temporary name.
            return std::fs::remove_file(&tmp).ctx(|| format!("removing {}", tmp.display()));
        }
        // No state.json yet (or a filesystem without RENAME_EXCHANGE).
        std::fs::rename(&tmp, &dst).ctx(|| format!("writing {}", dst.display()))
    }

    /// The recovery record, if create wrote one and it reads.
    pub(crate) fn recovery(&self) -> Option<Recovery> {
        let data = std::fs::read(self.path.join(RECOVERY_FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Records the root filesystem create is about to make (before it makes it).
    pub(crate) fn write_cowfs(&self, made: &crate::cowfs::Made) -> Result<()> {
        let dst = self.path.join(COWFS_FILE);
        let data = serde_json::to_vec(made).expect("a Made serializes");
        std::fs::write(&dst, data).ctx(|| format!("writing {}", dst.display()))
    }

    /// Removes the directory and everything in it: first the root filesystem create made
    /// (whatever part of it a killed create left), and the rootfs bind a restore killed midway
    /// left on `criu-root` (`delete --force` then cleans up).
    pub(crate) fn remove(self) -> Result<()> {
        let viewed = self.path.join(procview::REGISTRATION).exists();
        self.remove_dir()?;
        if viewed {
            if let Some(root) = self.path.parent() {
                crate::view::release(root);
            }
        }
        Ok(())
    }

    fn remove_dir(&self) -> Result<()> {
        if let Ok(data) = std::fs::read(self.path.join(COWFS_FILE)) {
            let made: crate::cowfs::Made = serde_json::from_slice(&data).map_err(|e| {
                Error::io(
                    format!("reading {}", self.path.join(COWFS_FILE).display()),
                    e.into(),
                )
            })?;
            crate::cowfs::remove(&made)?;
        }
        let root = self.path.join("criu-root");
        if root.exists() {
            if let Ok(c) = std::ffi::CString::new(root.as_os_str().as_bytes()) {
                let _ = crate::sys::mount::umount2(&c, libc::MNT_DETACH);
            }
            // Never walk into a rootfs still bound there: remove_dir_all would empty the
            // bundle's root filesystem.
            let shown = root.to_string_lossy().replace(' ', "\\040");
            let mounted = std::fs::read_to_string("/proc/self/mountinfo")
                .map(|m| {
                    m.lines()
                        .any(|l| l.split(' ').nth(4) == Some(shown.as_str()))
                })
                .unwrap_or(true);
            if mounted {
                return Err(Error::io(
                    format!(
                        "removing {}: a rootfs is still mounted on it",
                        self.path.display()
                    ),
                    std::io::Error::from_raw_os_error(libc::EBUSY),
                ));
            }
        }
        std::fs::remove_dir_all(&self.path).ctx(|| format!("removing {}", self.path.display()))
    }
}

/// The record of the root filesystem husk made (`cowfs`), in the state directory.
const COWFS_FILE: &str = "rootfs-source.json";

fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(f.into())
}

fn flock(fd: &OwnedFd, how: libc::c_int) -> std::io::Result<()> {
    crate::sys::flock(fd.as_raw_fd(), how).map_err(std::io::Error::from_raw_os_error)
}

/// The name of the user running husk (runc's `owner` field), or the uid as a number.
pub(crate) fn owner_name() -> String {
    let uid = crate::sys::geteuid();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Start time (clock ticks after boot, field 22 of /proc/PID/stat) and state letter of `pid`.
pub(crate) fn proc_stat(pid: i32) -> Option<(u64, u8)> {
    let data = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let close = data.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&data[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.as_bytes()[0];
    // rest starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// True if `pid` is the process that started at `start` and has not exited (zombies count as
/// exited).
pub(crate) fn process_alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((s, st)) if s == start && st != b'Z' && st != b'X')
}

/// The current time in RFC 3339 with nanoseconds, UTC (`2026-11-23T21:45:12.123456789Z`).
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", ".hidden"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_id(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let (start, _) = proc_stat(pid).unwrap();
        assert!(process_alive(pid, start));
        assert!(!process_alive(pid, start + 1));
    }

    #[test]
    fn time_format() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
