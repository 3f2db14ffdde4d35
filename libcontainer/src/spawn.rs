//! The one spawn path of `create` and `exec`: the socketpair, the cgroup placement (clone3
//! into the v2 directory, v1 `tasks` files the child joins itself, `cgroup.procs` for the
//! rest), the clone3 (retried without CLONE_INTO_CGROUP where the kernel refuses it), the
//! parent-side process settings (execCPUAffinity.initial, rlimits, oom_score_adj), and the
//! protocol loop. What differs between the two is a [`Job`]: the child's entry point and the
//! messages only one of them exchanges.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::fail::Fail;
use crate::process::ProcPlan;
use crate::protocol::{Chan, Fds, Msg, RecvError};
use crate::sys::{self, proc::Cloned};
use crate::{Error, Result};

/// The spawned process (the init, or the exec'd process after a pid-namespace fork).
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master, with a terminal.
    pub console: Option<OwnedFd>,
}

/// Where the new process goes in the cgroup hierarchies.
pub(crate) trait Placement {
    /// The v2 directory to clone into (CLONE_INTO_CGROUP).
    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>>;
    /// The v1 `tasks` files the child joins by writing "0" (no RCU grace period, unlike a
    /// parent's `cgroup.procs` write; see cgroups::Manager::v1_tasks).
    fn v1_tasks(&self) -> Result<Vec<OwnedFd>>;
    /// After the clone: every hierarchy the process is not in yet.
    fn add(&self, pid: i32, cloned_into: bool, self_joined: bool) -> Result<()>;
    /// The cgroup's OOM-kill counter file, to explain an init the OOM killer ended.
    fn oom_counter(&self) -> Option<PathBuf> {
        None
    }
}

impl Placement for cgroups::Manager {
    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        Ok(self.unified_fd()?)
    }

    fn v1_tasks(&self) -> Result<Vec<OwnedFd>> {
        Ok(cgroups::Manager::v1_tasks(self)?)
    }

    fn add(&self, pid: i32, cloned_into: bool, self_joined: bool) -> Result<()> {
        Ok(cgroups::Manager::add(self, pid, cloned_into, self_joined)?)
    }

    fn oom_counter(&self) -> Option<PathBuf> {
        crate::ops::oom_counter_file(self.saved())
    }
}

/// Why an init died of SIGKILL during set-up, when the OOM killer did it: runc reports a limit
/// below the usage as "unable to set memory limit to N (current usage: M, ...)".
fn oom_explained(counter: &Path) -> Option<String> {
    if crate::ops::oom_kills(counter)? == 0 {
        return None;
    }
    // The limit beside the counter (v1: memory.oom_control, v2: memory.events). Peak usage
    // would only repeat it: the limit was set before the init came in.
    let v1 = counter.ends_with("memory.oom_control");
    let limit = counter.with_file_name(if v1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    });
    let limit = std::fs::read_to_string(limit).ok()?;
    Some(format!(
        "container init was OOM-killed during set-up: memory limit {} is below what it needs",
        limit.trim()
    ))
}

/// An existing container's cgroup directories (exec: the container's, or a sub-cgroup).
pub(crate) struct Dirs<'a> {
    pub dirs: &'a [PathBuf],
    /// The container's v2 directory, if any (dirs below it are v2 too).
    pub unified: Option<&'a Path>,
}

impl Dirs<'_> {
    fn is_v1(&self, d: &Path) -> bool {
        !self.unified.is_some_and(|u| d.starts_with(u))
    }
}

impl Placement for Dirs<'_> {
    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        let Some(d) = self.dirs.iter().find(|d| !self.is_v1(d)) else {
            return Ok(None);
        };
        std::fs::File::open(d)
            .map(|f| Some(OwnedFd::from(f)))
            .map_err(|e| Error::io(format!("opening {}", d.display()), e))
    }

    fn v1_tasks(&self) -> Result<Vec<OwnedFd>> {
        Ok(cgroups::open_tasks(
            self.dirs
                .iter()
                .filter(|d| self.is_v1(d))
                .map(|d| d.as_path()),
        )?)
    }

    fn add(&self, pid: i32, cloned_into: bool, self_joined: bool) -> Result<()> {
        for d in self.dirs {
            let v1 = self.is_v1(d);
            if (cloned_into && !v1) || (self_joined && v1) {
                continue;
            }
            let procs = d.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .map_err(|e| Error::io(format!("writing {}", procs.display()), e))?;
        }
        Ok(())
    }
}

/// What the protocol loop does next.
pub(crate) enum Flow {
    Continue,
    Done,
}

/// The part of a spawn that differs between `create` and `exec`.
pub(crate) trait Job {
    /// clone3 flags (the namespaces to create).
    fn clone_flags(&self) -> u64;
    /// The planned process (rlimits, oom_score_adj, execCPUAffinity).
    fn proc(&self) -> &ProcPlan;
    /// Before the clone: the v1 `tasks` fds the child will join; returns fds to keep open
    /// until the child has inherited them.
    fn before_clone(&mut self, v1_tasks: Vec<RawFd>) -> Result<Vec<OwnedFd>>;
    /// Fds the child uses besides the socketpair, the cgroup `tasks` files, what
    /// `before_clone` keeps and the inherited range (3.. `proc().inherit_fds`).
    fn child_fds(&self, out: &mut Vec<RawFd>);
    /// The child's entry point. Never returns; must not allocate.
    fn child(&mut self, chan: Chan) -> !;
    /// A process of the container now exists (the first, or the forked init).
    fn started(&mut self, pid: i32) -> Result<()>;
    /// Before the first `Proceed` (the parent's settings are done).
    fn before_proceed(&mut self, pid: i32) -> Result<()>;
    /// A message only this job exchanges; `pid` is the current process.
    fn message(&mut self, chan: Chan, msg: Msg, fds: Fds, pid: i32) -> Result<Flow>;
    /// Whether the child closing its end means it exec'd (exec: the end is close-on-exec)
    /// rather than died (create: the init reports `Created` first).
    fn eof_is_exec(&self) -> bool;
    /// The error for a child failure.
    fn error(&self, f: &Fail) -> Error;
    /// What the child is called in messages ("container process", "exec process").
    fn what(&self) -> &'static str;
}

/// Kills and reaps a child that must not survive a failed spawn.
struct Reaper(Option<OwnedFd>);

impl Reaper {
    fn take(&mut self) -> OwnedFd {
        self.0.take().expect("reaper holds the pidfd until taken")
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            let _ = sys::proc::signal_pidfd(fd.as_raw_fd(), libc::SIGKILL);
            let _ = sys::proc::wait_pidfd(fd.as_raw_fd());
        }
    }
}

/// Clones the child into its cgroups and drives the protocol until the job is done.
pub(crate) fn spawn(job: &mut dyn Job, placement: &dyn Placement) -> Result<Spawned> {
    let what = job.what();
    let (parent_end, child_end) =
        sys::sock::seqpacket_pair().map_err(|e| Error::errno("creating the sync socketpair", e))?;
    let (parent_end, child_end) = (sys::adopt(parent_end), sys::adopt(child_end));
    let into = placement.v2_dir_fd()?;
    // execCPUAffinity.initial must hold until the parent has moved the process: then the
    // parent joins every hierarchy.
    let join = if job.proc().attrs.affinity_initial.is_none() {
        placement.v1_tasks()?
    } else {
        Vec::new()
    };
    let self_joined = !join.is_empty();
    let keep = job.before_clone(join.iter().map(|f| f.as_raw_fd()).collect())?;
    // Everything else is closed in the child at once: fds of the caller's other threads
    // (another container's stdio pipe, say) would otherwise stay open in this container's
    // init until it execs, which for a created container may be never.
    let mut child_fds: Vec<RawFd> = (3..3 + job.proc().inherit_fds as RawFd).collect();
    child_fds.push(child_end.as_raw_fd());
    child_fds.extend(join.iter().chain(&keep).map(|f| f.as_raw_fd()));
    job.child_fds(&mut child_fds);
    child_fds.extend(job.proc().lsm.child_fd());
    child_fds.sort_unstable();
    child_fds.dedup();
    let flags = job.clone_flags();
    let mut cloned_into = into.is_some();
    let mut r = sys::proc::clone3(flags, into.as_ref().map(|f| f.as_raw_fd()));
    if matches!(
        r,
        Err(libc::EBADF | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS)
    ) && cloned_into
    {
        // The v2 directory refused CLONE_INTO_CGROUP (or clone3 is filtered): join it by
        // cgroup.procs instead.
        cloned_into = false;
        r = sys::proc::clone3(flags, None);
    }
    let (pid, pidfd) = match r {
        Err(e) => return Err(Error::errno(format!("clone3 of the {what}"), e)),
        Ok(Cloned::Child) => {
            let chan = Chan(child_end.as_raw_fd());
            if let Err(e) = sys::proc::close_except(&child_fds) {
                chan.fail(Fail::new(crate::init::SyncCode::CloseFds, 0, e));
                sys::exit(1);
            }
            job.child(chan)
        }
        Ok(Cloned::Parent { pid, pidfd }) => (pid, sys::adopt(pidfd)),
    };
    drop((child_end, join, keep, into));
    let chan = Chan(parent_end.as_raw_fd());
    // The process to kill if anything fails: the first child, then the forked one.
    let mut current = (pid, Reaper(Some(pidfd)));

    job.started(pid)?;
    let proc = job.proc();
    proc.attrs.apply_initial(pid)?;
    placement.add(pid, cloned_into, self_joined)?;
    for &(res, soft, hard) in &proc.rlimits {
        sys::proc::prlimit(pid, res, soft, hard).map_err(|e| {
            Error::errno(
                format!("setting rlimit {} to {soft}/{hard}", rlimit_name(res)),
                e,
            )
        })?;
    }
    if let Some(adj) = proc.oom_score_adj {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .map_err(|e| Error::io(format!("setting oom_score_adj to {adj}"), e))?;
    }
    job.before_proceed(pid)?;
    chan.send(Msg::Proceed, &[])
        .map_err(|e| Error::errno(format!("signalling the {what}"), e))?;

    let mut console = None;
    loop {
        let (msg, fds) = match chan.recv() {
            Ok(m) => m,
            Err(RecvError::Closed) if job.eof_is_exec() => break,
            Err(RecvError::Closed) => {
                // The child died without saying why; its exit status is all there is.
                let fd = current.1.take();
                let status = sys::proc::wait_pidfd(fd.as_raw_fd());
                let oom = match status {
                    Ok(137) => placement.oom_counter().and_then(|c| oom_explained(&c)),
                    _ => None,
                };
                return Err(Error::setup(oom.unwrap_or_else(|| match status {
                    Ok(s) => format!("container init exited unexpectedly (status {s})"),
                    Err(_) => "container init exited unexpectedly".into(),
                })));
            }
            Err(RecvError::Garbled) => {
                return Err(Error::setup(format!("garbled message from the {what}")))
            }
            Err(RecvError::Errno(e)) => {
                return Err(Error::errno(format!("reading from the {what}"), e))
            }
        };
        match msg {
            Msg::InitForked { pid: forked } => {
                let fd = fds
                    .first()
                    .ok_or_else(|| Error::setup(format!("{what}: forked pidfd missing")))?;
                let first = std::mem::replace(&mut current, (forked, Reaper(Some(sys::adopt(fd)))));
                // The first child exits now; reap it.
                let mut first = first.1;
                let _ = sys::proc::wait_pidfd(first.take().as_raw_fd());
                job.started(forked)?;
            }
            Msg::Console => {
                let fd = fds
                    .first()
                    .ok_or_else(|| Error::setup(format!("{what}: pty master missing")))?;
                console = Some(sys::adopt(fd));
            }
            Msg::Failed(f) => {
                fds.close_all();
                return Err(job.error(&f));
            }
            msg => match job.message(chan, msg, fds, current.0)? {
                Flow::Continue => {}
                Flow::Done => break,
            },
        }
    }
    Ok(Spawned {
        pid: current.0,
        pidfd: current.1.take(),
        console,
    })
}

/// An unexpected message: closes its fds and names it.
pub(crate) fn unexpected(what: &str, msg: Msg, fds: Fds) -> Error {
    fds.close_all();
    Error::setup(format!("unexpected message {msg:?} from the {what}"))
}

fn rlimit_name(res: u32) -> &'static str {
    crate::caps::RLIMITS
        .iter()
        .find(|(_, r)| *r == res)
        .map_or("?", |(n, _)| n)
}
