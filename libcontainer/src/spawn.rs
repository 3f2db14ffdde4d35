//! The parent side of `create`: one clone3, then the protocol loop until the init reports
//! `Created`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::hooks::{self, Kind};
use crate::plan::Plan;
use crate::protocol::{Chan, Msg, RecvError};
use crate::sys::{self, proc::Cloned};
use crate::{Error, Result};

/// The created init.
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master, with `process.terminal`.
    pub console: Option<OwnedFd>,
}

/// What `spawn` asks of its caller while the init is set up.
pub(crate) trait Events {
    /// The pid of the container's first process (and again for the init, if forked); the
    /// caller records it so a killed `create` can be cleaned up.
    fn pid(&mut self, pid: i32) -> Result<()>;
    /// The state JSON the hooks get, for the init `pid`.
    fn hook_state(&mut self, pid: i32) -> Vec<u8>;
}

fn own(fd: RawFd) -> OwnedFd {
    sys::adopt(fd)
}

/// Kills and reaps a child that must not survive a failed create.
struct Reaper(Option<OwnedFd>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            let _ = sys::proc::signal_pidfd(fd.as_raw_fd(), libc::SIGKILL);
            let _ = sys::proc::wait_pidfd(fd.as_raw_fd());
        }
    }
}

/// Clones the container's first process and drives the protocol to `Created`.
pub(crate) fn spawn(
    plan: &mut Plan,
    cgroup: &cgroups::Manager,
    listener: RawFd,
    close_in_child: &[RawFd],
    events: &mut dyn Events,
) -> Result<Spawned> {
    let (parent_end, child_end) =
        sys::sock::seqpacket_pair().map_err(|e| Error::errno("creating the sync socketpair", e))?;
    let parent_end = own(parent_end);
    let child_end = own(child_end);
    let cgroup_fd = cgroup.unified_fd()?;
    // The child joins the v1 hierarchies itself (cheaper, see Manager::v1_tasks), unless
    // execCPUAffinity.initial must hold until the parent has moved it.
    let join = if plan.proc.attrs.affinity_initial.is_none() {
        cgroup.v1_tasks()?
    } else {
        Vec::new()
    };
    plan.cgroup_join = join.iter().map(|f| f.as_raw_fd()).collect();
    let self_joined = !join.is_empty();
    // Id-mapped trees need the host's privileges: made here, inherited by the child.
    let _idmapped = plan.rootfs.prepare_idmapped()?;
    let flags = plan.ns.clone_flags;
    let mut cloned_into = cgroup_fd.is_some();
    let mut r = sys::proc::clone3(flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd()));
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
        Err(e) => return Err(Error::errno("clone3 of the container process", e)),
        Ok(Cloned::Child) => {
            sys::close(parent_end.as_raw_fd());
            // Above all the state directory's lock: the init must not hold it while it waits
            // for `start`, which takes it.
            for &fd in close_in_child {
                sys::close(fd);
            }
            crate::init::first_child(plan, Chan(child_end.as_raw_fd()), listener)
        }
        Ok(Cloned::Parent { pid, pidfd }) => (pid, own(pidfd)),
    };
    drop(child_end);
    drop(join);
    let chan = Chan(parent_end.as_raw_fd());
    let mut first = Reaper(Some(pidfd));
    let mut init: Option<(i32, Reaper)> = None;

    events.pid(pid)?;
    // execCPUAffinity.initial holds until the process is in the container's cgroups.
    plan.proc.attrs.apply_initial(pid)?;
    cgroup.add(pid, cloned_into, self_joined)?;
    for &(res, soft, hard) in &plan.proc.rlimits {
        sys::proc::prlimit(pid, res, soft, hard).map_err(|e| {
            Error::errno(
                format!("setting rlimit {} to {soft}/{hard}", rlimit_name(res)),
                e,
            )
        })?;
    }
    if let Some(adj) = plan.proc.oom_score_adj {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .map_err(|e| Error::io(format!("setting oom_score_adj to {adj}"), e))?;
    }
    if plan.ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0 {
        plan.ns.write_maps(pid)?;
    }
    let proceed = |fds: &[RawFd]| {
        chan.send(Msg::Proceed, fds)
            .map_err(|e| Error::errno("signalling the container process", e))
    };
    proceed(&[])?;

    let mut console = None;
    loop {
        let (msg, fds) = match chan.recv() {
            Ok(m) => m,
            Err(RecvError::Closed) => {
                // The child died without saying why; its exit status is all there is.
                let who = init.as_ref().map(|(_, r)| r).unwrap_or(&first);
                let status = who
                    .0
                    .as_ref()
                    .map(|fd| sys::proc::wait_pidfd(fd.as_raw_fd()));
                if let Some(r) = init.as_mut() {
                    r.1 .0 = None;
                } else {
                    first.0 = None;
                }
                return Err(Error::Container(match status {
                    Some(Ok(s)) => format!("container init exited unexpectedly (status {s})"),
                    _ => "container init exited unexpectedly".into(),
                }));
            }
            Err(RecvError::Garbled) => {
                return Err(Error::Container(
                    "garbled message from the container process".into(),
                ))
            }
            Err(RecvError::Errno(e)) => {
                return Err(Error::errno("reading from the container process", e))
            }
        };
        match msg {
            Msg::WriteIdMaps => {
                plan.ns.write_maps(pid)?;
                proceed(&[])?;
            }
            Msg::InitForked { pid: init_pid } => {
                let fd = fds
                    .first()
                    .ok_or_else(|| Error::Container("init pidfd missing".into()))?;
                init = Some((init_pid, Reaper(Some(own(fd)))));
                events.pid(init_pid)?;
                // The first child exits now; reap it.
                if let Some(fd) = first.0.take() {
                    let _ = sys::proc::wait_pidfd(fd.as_raw_fd());
                }
            }
            Msg::RuntimeHooks => {
                let init_pid = init.as_ref().map_or(pid, |(p, _)| *p);
                let state = events.hook_state(init_pid);
                let h = plan.spec.hooks().clone().unwrap_or_default();
                hooks::run(
                    Kind::Prestart,
                    h.prestart().as_deref().unwrap_or_default(),
                    &state,
                )?;
                hooks::run(
                    Kind::CreateRuntime,
                    h.create_runtime().as_deref().unwrap_or_default(),
                    &state,
                )?;
                let fd = sys::proc::memfd_with(c"state", &state)
                    .map_err(|e| Error::errno("memfd", e))?;
                let fd = own(fd);
                proceed(&[fd.as_raw_fd()])?;
            }
            Msg::Console => {
                let fd = fds
                    .first()
                    .ok_or_else(|| Error::Container("pty master missing".into()))?;
                console = Some(own(fd));
            }
            Msg::Created => break,
            Msg::Failed(f) => {
                fds.close_all();
                return Err(Error::Container(plan.describe(&f)));
            }
            Msg::Proceed | Msg::Start | Msg::SeccompListener => {
                fds.close_all();
                return Err(Error::Container(format!(
                    "unexpected message {msg:?} from the container process"
                )));
            }
        }
    }
    let (pid, pidfd) = match init {
        Some((p, mut r)) => (p, r.0.take().expect("init pidfd")),
        None => (pid, first.0.take().expect("pidfd")),
    };
    Ok(Spawned {
        pid,
        pidfd,
        console,
    })
}

fn rlimit_name(res: u32) -> &'static str {
    crate::caps::RLIMITS
        .iter()
        .find(|(_, r)| *r == res)
        .map_or("?", |(n, _)| n)
}
