//! Operations on a running container: pause/resume, its processes, statistics, resource
//! updates and events (statistics and OOM notifications).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::oci_spec::runtime::LinuxResources;
use crate::state::{Lock, Record, Status};
use crate::{Container, Error, Result};

pub use cgroups::Stats;

/// What `Container::events` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Resource usage, every interval (once with `stats_only`).
    Stats(Box<Stats>),
    /// The kernel's OOM killer killed a process of the container.
    Oom,
}

/// How often `events` checks the OOM-kill counter between statistics.
const OOM_POLL: Duration = Duration::from_millis(100);

fn manager(rec: &Record) -> Result<cgroups::Manager> {
    match &rec.cgroup {
        Some(s) if s.dirs.is_empty() => Err(Error::unsupported(
            "cgroup",
            format!(
                "container {} has no cgroup (it was created with --cgroup-manager disabled, or \
                 rootless without permission to create one)",
                rec.id
            ),
        )),
        Some(s) => Ok(cgroups::Manager::from_saved(s.clone())),
        None => Err(Error::unsupported(
            "cgroup",
            format!("container {} has no cgroup", rec.id),
        )),
    }
}

/// For a container without a cgroup whose init has its own pid namespace: every process in
/// that namespace (those in namespaces nested in it are not seen). `None` when the container
/// has a cgroup or shares a pid namespace; empty once the init is gone.
pub(crate) fn cgroupless_pids(rec: &Record) -> Result<Option<Vec<i32>>> {
    use std::os::unix::fs::MetadataExt;
    let no_cgroup = rec.cgroup.as_ref().map_or(true, |s| s.dirs.is_empty());
    let own_pidns = crate::rootfs::new_ns(
        &rec.config,
        crate::oci_spec::runtime::LinuxNamespaceType::Pid,
    );
    if !no_cgroup || !own_pidns {
        return Ok(None);
    }
    let (Some(init), Some(start)) = (rec.pid, rec.pid_start) else {
        return Ok(Some(Vec::new()));
    };
    let ns_of = |pid: i32| std::fs::metadata(format!("/proc/{pid}/ns/pid")).map(|m| m.ino());
    let Ok(ns) = ns_of(init) else {
        return Ok(Some(Vec::new()));
    };
    // The pid may have been recycled between the two reads.
    if !crate::state::process_alive(init, start) {
        return Ok(Some(Vec::new()));
    }
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map_err(|e| Error::io("listing /proc", e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| ns_of(pid).is_ok_and(|i| i == ns))
        .collect();
    pids.sort_unstable();
    Ok(Some(pids))
}

impl Container {
    /// Freezes every process of a running (or created) container.
    pub fn pause(&self) -> Result<()> {
        let (_dir, rec) = self.open(Lock::Exclusive)?;
        match rec.status() {
            Status::Running | Status::Created => manager(&rec)?.freeze(true).map_err(Into::into),
            Status::Stopped => Err(Error::NotRunning),
            status => Err(Error::WrongState {
                id: self.id().into(),
                status,
                why: "only a running or created container can be paused",
            }),
        }
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<()> {
        let (_dir, rec) = self.open(Lock::Exclusive)?;
        match rec.status() {
            Status::Paused => manager(&rec)?.freeze(false).map_err(Into::into),
            status => Err(Error::WrongState {
                id: self.id().into(),
                status,
                why: "it is not paused",
            }),
        }
    }

    /// Pids (in husk's pid namespace) of every process in the container's cgroups, sorted.
    /// A stopped container's cgroup may still hold processes its init left behind (no pid
    /// namespace); they are listed too, as runc does.
    /// Without a cgroup (rootless, or the manager disabled), the processes in the init's pid
    /// namespace, when it has its own.
    pub fn processes(&self) -> Result<Vec<i32>> {
        let (_dir, rec) = self.open(Lock::None)?;
        match cgroupless_pids(&rec)? {
            Some(pids) => Ok(pids),
            None => Ok(manager(&rec)?.pids()?),
        }
    }

    /// Resource usage of the container's cgroups.
    pub fn stats(&self) -> Result<Stats> {
        let (_dir, rec) = self.open(Lock::None)?;
        if rec.status() == Status::Stopped {
            return Err(Error::NotRunning);
        }
        Ok(manager(&rec)?.stats()?)
    }

    /// Applies `r` to the container's cgroups and records it in the container's config
    /// (fields `r` leaves unset keep their earlier values, as runc's `update`).
    pub fn update(&self, r: &LinuxResources) -> Result<()> {
        let (dir, mut rec) = self.open(Lock::Exclusive)?;
        let status = rec.status();
        if status == Status::Stopped {
            return Err(Error::NotRunning);
        }
        if status == Status::Creating {
            return Err(Error::WrongState {
                id: self.id().into(),
                status,
                why: "its create did not finish",
            });
        }
        let merged = merge_resources(
            rec.config
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone()),
            r,
        )?;
        let m = manager(&rec)?;
        for w in cgroups::resources::ignored_fields(r, m.saved().layout) {
            self.handler().warn(self.id(), &w);
        }
        if m.is_systemd() {
            // So that systemd re-applying the unit's properties does not undo the update.
            m.set_properties(r)?;
        }
        m.apply(r)?;
        let mut linux = rec.config.linux().clone().unwrap_or_default();
        linux.set_resources(Some(merged));
        rec.config.set_linux(Some(linux));
        dir.write(&rec)
    }

    /// Reports events until the container stops or `callback` returns an error: statistics
    /// every `interval` and an `Oom` event whenever the OOM killer killed one of its
    /// processes (polled from v1 `memory.oom_control` / v2 `memory.events` `oom_kill`).
    /// `stats_only`: one `Stats` event, then return.
    pub fn events(
        &self,
        interval: Duration,
        stats_only: bool,
        mut callback: impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        if stats_only {
            return callback(Event::Stats(Box::new(self.stats()?)));
        }
        if interval.is_zero() {
            return Err(Error::InvalidArgument(
                "duration interval must be greater than 0".into(),
            ));
        }
        let (_dir, rec) = self.open(Lock::None)?;
        if rec.status() == Status::Stopped {
            return Err(Error::NotRunning);
        }
        let cg = manager(&rec)?;
        let oom_file = oom_counter_file(cg.saved());
        let mut ooms = oom_file.as_ref().and_then(|f| oom_kills(f));
        let mut next_stats = Instant::now();
        loop {
            let (_dir, rec) = match self.open(Lock::None) {
                Ok(x) => x,
                // Deleted meanwhile: nothing more to report.
                Err(Error::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            if let Some(f) = &oom_file {
                let now = oom_kills(f);
                if let (Some(before), Some(after)) = (ooms, now) {
                    for _ in before..after {
                        callback(Event::Oom)?;
                    }
                }
                if now.is_some() {
                    ooms = now;
                }
            }
            if rec.status() == Status::Stopped {
                return Ok(());
            }
            if Instant::now() >= next_stats {
                // A container stopping between the check and the read is not an error.
                match cg.stats() {
                    Ok(s) => callback(Event::Stats(Box::new(s)))?,
                    Err(e) if rec.status() == Status::Stopped => {
                        let _ = e;
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
                next_stats += interval;
            }
            let wait = next_stats.saturating_duration_since(Instant::now());
            std::thread::sleep(wait.min(OOM_POLL));
        }
    }
}

/// After a SIGKILL to a paused container: thaws it so the processes die, as runc does (other
/// signals stay pending until `resume`).
pub(crate) fn thaw_after_kill(rec: &Record, status: Status, signal: i32) -> Result<()> {
    if status == Status::Paused && signal == libc::SIGKILL {
        manager(rec)?.freeze(false)?;
    }
    Ok(())
}

/// The file with the cgroup's OOM-kill counter (`oom_kill N`).
pub(crate) fn oom_counter_file(saved: &cgroups::Saved) -> Option<PathBuf> {
    if saved.layout != cgroups::Layout::V2 {
        if let Some(d) = saved.v1_dir("memory") {
            return Some(d.join("memory.oom_control"));
        }
    }
    saved.unified.as_ref().map(|d| d.join("memory.events"))
}

pub(crate) fn oom_kills(file: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some("oom_kill"))
            .then(|| f.next()?.parse().ok())
            .flatten()
    })
}

/// `old` with every field `new` sets replaced (recursively for objects), as runc's update
/// keeps the values it was not given.
fn merge_resources(old: Option<LinuxResources>, new: &LinuxResources) -> Result<LinuxResources> {
    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    if v.is_null() {
                        continue;
                    }
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }
    let to = |r: &LinuxResources| {
        serde_json::to_value(r)
            .map_err(|e| Error::config("linux.resources", format!("linux.resources: {e}")))
    };
    let mut v = match &old {
        Some(o) => to(o)?,
        None => serde_json::json!({}),
    };
    merge(&mut v, to(new)?);
    serde_json::from_value(v)
        .map_err(|e| Error::config("linux.resources", format!("linux.resources: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unset_fields() {
        let old: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1000,"reservation":500},"pids":{"limit":10}}"#,
        )
        .unwrap();
        let new: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":2000},"cpu":{"shares":512}}"#).unwrap();
        let m = serde_json::to_value(merge_resources(Some(old), &new).unwrap()).unwrap();
        assert_eq!(m["memory"]["limit"], 2000);
        assert_eq!(m["memory"]["reservation"], 500);
        assert_eq!(m["pids"]["limit"], 10);
        assert_eq!(m["cpu"]["shares"], 512);
    }

    #[test]
    fn oom_counter() {
        let p = std::env::temp_dir().join(format!("husk-oom-{}", std::process::id()));
        std::fs::write(&p, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        assert_eq!(oom_kills(&p), Some(3));
        std::fs::remove_file(&p).unwrap();
    }
}
