//! `exec`: one more process in a running container. Planned in the parent like the init (the
//! child never allocates): one clone3 into the container's cgroup (`CLONE_INTO_CGROUP` on v2),
//! then `setns(pidfd, every namespace flag)` in one call, a fork when a pid or time namespace
//! is joined (those apply to children only), the terminal, credentials, and execve. The child's
//! end of the socketpair is close-on-exec: EOF means the exec happened; a failure comes back as
//! a typed `Fail` before that.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::fail::{Area, Fail};
use crate::oci_spec::runtime::{Capability, Process};
use crate::process::ProcPlan;
use crate::protocol::{Chan, Msg, RecvError};
use crate::state::{Lock, Record, Status};
use crate::sys::{self, proc::Cloned};
use crate::{Container, Error, Result};

/// What to run by [`Container::exec`]: either a whole OCI `process` (`--process FILE`), or the
/// container's own process with these fields replaced or added (runc's exec flags).
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// A complete process; when set, the override fields below are ignored.
    pub process: Option<Process>,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=value` entries added to (or replacing those of) the container's environment.
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// uid and optional gid (`--user uid[:gid]`).
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets (`CAP_NET_ADMIN`).
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    /// A unix socket to receive the pty master (with `tty`).
    pub console_socket: Option<PathBuf>,
    /// A unix socket to receive a pidfd of the process.
    pub pidfd_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    /// How many fds after stdio (3, 4, ...) the process inherits.
    pub preserve_fds: u32,
    /// Run even if the container is paused (the process starts frozen).
    pub ignore_paused: bool,
    /// A sub-cgroup of the container's to run in: `path` (every hierarchy) or
    /// `controller[,controller]:path` (v1 hierarchies of those controllers).
    pub cgroup: Option<String>,
}

impl ExecOptions {
    /// The container's process with `args` as the command.
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> ExecOptions {
        ExecOptions {
            args: args.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
}

/// How an exec ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// `detach`: the process runs (its pid in husk's pid namespace).
    Detached(i32),
    /// Its exit status, or 128+N when killed by signal N.
    Exited(i32),
}

/// Namespace kinds in setns order of the kernel (user first is done by the kernel itself for
/// a pidfd): /proc name and flag.
const NAMESPACES: [(&str, i32); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("net", libc::CLONE_NEWNET),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
];

/// Failure codes of Area::Namespace for exec.
mod code {
    pub const SETNS: u16 = 101;
    pub const FORK: u16 = 102;
    pub const ROOT: u16 = 103;
}

/// Everything the child needs, built before the clone.
struct ExecPlan {
    proc: ProcPlan,
    init_pidfd: RawFd,
    ns_flags: i32,
    /// The init's root when it shares our mount namespace (no setns gives it): entered with
    /// chroot. -1 otherwise.
    root_fd: RawFd,
    /// The v1 `tasks` files the child joins by writing "0" (see cgroups::Manager::v1_tasks).
    cgroup_join: Vec<RawFd>,
    fork: bool,
    terminal: bool,
    /// For a seccomp NOTIFY listener: the config and the container state for the agent.
    agent: Option<(crate::oci_spec::runtime::Spec, Vec<u8>)>,
}

/// The process to run: `--process`, or the container's with the overrides.
fn process_of(rec: &Record, o: &ExecOptions) -> Result<Process> {
    if let Some(p) = &o.process {
        return Ok(p.clone());
    }
    if o.args.is_empty() {
        return Err(Error::InvalidArgument(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    let mut p = rec.config.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for e in &o.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(c) = &o.cwd {
        p.set_cwd(c.clone());
    }
    let mut user = p.user().clone();
    if let Some((uid, gid)) = o.user {
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let cap: Capability = serde_json::from_value(serde_json::json!(name))
                .map_err(|_| Error::InvalidArgument(format!("unknown capability {name:?}")))?;
            let add = |set: &Option<crate::oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    p.set_terminal(Some(o.tty));
    if o.apparmor.is_some() {
        p.set_apparmor_profile(o.apparmor.clone());
    }
    if o.process_label.is_some() {
        p.set_selinux_label(o.process_label.clone());
    }
    Ok(p)
}

/// The namespaces of the init that differ from ours: the ones to join.
fn ns_flags(pid: i32) -> Result<i32> {
    let mut flags = 0;
    for (name, flag) in NAMESPACES {
        let theirs = match std::fs::metadata(format!("/proc/{pid}/ns/{name}")) {
            Ok(m) => m.ino(),
            // A kernel without this namespace kind.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("reading /proc/{pid}/ns/{name}"), e)),
        };
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .map_err(|e| Error::io(format!("reading /proc/self/ns/{name}"), e))?
            .ino();
        if theirs != ours {
            flags |= flag;
        }
    }
    Ok(flags)
}

/// The cgroup directories to join: the container's, or its sub-cgroup `spec`.
fn cgroup_dirs(saved: &cgroups::Saved, spec: Option<&str>) -> Result<Vec<PathBuf>> {
    let Some(spec) = spec else {
        return Ok(saved.dirs.clone());
    };
    let (ctrls, sub) = match spec.split_once(':') {
        Some((c, p)) => (c.split(',').collect::<Vec<_>>(), p),
        None => (Vec::new(), spec),
    };
    let rel = Path::new(sub);
    if sub.is_empty()
        || rel.is_absolute()
        || rel.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(Error::InvalidArgument(format!(
            "--cgroup {spec:?}: want a relative path below the container's cgroup, without '..'"
        )));
    }
    let mut out = Vec::new();
    for dir in &saved.dirs {
        let v1 = saved.v1.iter().find(|d| &d.dir == dir);
        let picked = match v1 {
            Some(d) => {
                ctrls.is_empty() || d.controllers.iter().any(|c| ctrls.contains(&c.as_str()))
            }
            None => ctrls.is_empty(),
        };
        if !picked {
            out.push(dir.clone());
            continue;
        }
        let d = dir.join(rel);
        if !d.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "--cgroup {spec:?}: {} does not exist",
                d.display()
            )));
        }
        out.push(d);
    }
    Ok(out)
}

impl Container {
    /// Runs one more process in the container (created, running, or with `ignore_paused`
    /// paused), in all its namespaces and its cgroup. Waits for it unless `detach`.
    ///
    /// ```no_run
    /// use libcontainer::{ExecOptions, ExecOutcome, Runtime};
    /// let c = Runtime::new("/run/husk").container("c1")?;
    /// let ExecOutcome::Exited(status) = c.exec(&ExecOptions::new(["sh", "-c", "exit 7"]))? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(status, 7);
    /// # Ok::<(), libcontainer::Error>(())
    /// ```
    pub fn exec(&self, o: &ExecOptions) -> Result<ExecOutcome> {
        let (dir, rec) = self.open(Lock::None)?;
        match rec.status() {
            Status::Running | Status::Created => {}
            Status::Paused if o.ignore_paused => {}
            Status::Paused => {
                return Err(Error::WrongState {
                    id: self.id().into(),
                    status: Status::Paused,
                    why: "cannot exec in a paused container (use --ignore-paused)",
                })
            }
            Status::Stopped => {
                return Err(Error::InvalidArgument(
                    "cannot exec in a stopped container".into(),
                ))
            }
            status => {
                return Err(Error::WrongState {
                    id: self.id().into(),
                    status,
                    why: "its create did not finish",
                })
            }
        }
        let process = process_of(&rec, o)?;
        if process.terminal() == Some(true) && o.detach && o.console_socket.is_none() {
            return Err(Error::InvalidArgument(
                "cannot allocate tty if husk will detach without setting console socket".into(),
            ));
        }
        if o.console_socket.is_some() && process.terminal() != Some(true) {
            return Err(Error::InvalidArgument(
                "cannot use console socket if the process does not allocate a tty (--tty)".into(),
            ));
        }
        let mut spec = rec.config.clone();
        spec.set_process(Some(process));
        let proc = ProcPlan::build(&spec, o.preserve_fds, 0, false)?;
        let init = crate::container::init_pidfd(&rec)?;
        let pid = rec.pid.ok_or(Error::NotRunning)?;
        let ns = ns_flags(pid)?;
        // A container without a mount namespace has a detached root only its processes hold.
        let root = if ns & libc::CLONE_NEWNS == 0 {
            use std::os::unix::fs::OpenOptionsExt;
            let path = format!("/proc/{pid}/root");
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(&path)
                .map_err(|e| Error::io(format!("opening {path}"), e))?;
            Some(OwnedFd::from(f))
        } else {
            None
        };
        let dirs = match &rec.cgroup {
            Some(s) => cgroup_dirs(s, o.cgroup.as_deref())?,
            None => Vec::new(),
        };
        drop(dir);
        let agent = proc.seccomp.as_ref().filter(|s| s.notifies()).map(|_| {
            let state = crate::container::hook_state(&rec, rec.status(), pid);
            (rec.config.clone(), state)
        });
        let mut plan = ExecPlan {
            agent,
            terminal: proc.terminal,
            proc,
            init_pidfd: init.as_raw_fd(),
            ns_flags: ns,
            root_fd: root.as_ref().map_or(-1, |f| f.as_raw_fd()),
            cgroup_join: Vec::new(),
            fork: ns & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME) != 0,
        };
        let unified = rec.cgroup.as_ref().and_then(|s| s.unified.clone());
        let (pid, pidfd, console) = spawn(&mut plan, &dirs, unified.as_deref())?;
        if let Some(p) = &o.pid_file {
            crate::container::write_pid_file(p, pid)?;
        }
        if let Some(sock) = &o.pidfd_socket {
            crate::container::send_pidfd(sock, &pidfd)?;
        }
        let proxy = match (&console, &o.console_socket) {
            (Some(master), Some(sock)) => {
                crate::container::send_console(sock, master)?;
                None
            }
            (Some(master), None) => Some(crate::tty::Proxy::start(master)?),
            _ => None,
        };
        if o.detach {
            return Ok(ExecOutcome::Detached(pid));
        }
        let status = crate::tty::wait_forwarding(&pidfd)?;
        drop(proxy);
        Ok(ExecOutcome::Exited(status))
    }
}

/// Parent side: clone, join the cgroup, drive the protocol until the exec (EOF).
fn spawn(
    plan: &mut ExecPlan,
    dirs: &[PathBuf],
    unified: Option<&Path>,
) -> Result<(i32, OwnedFd, Option<OwnedFd>)> {
    let (parent_end, child_end) =
        sys::sock::seqpacket_pair().map_err(|e| Error::errno("creating the sync socketpair", e))?;
    let (parent_end, child_end) = (sys::adopt(parent_end), sys::adopt(child_end));
    // The v2 directory to clone into: the container's or the chosen sub-cgroup.
    let into = unified
        .and_then(|u| dirs.iter().find(|d| d.starts_with(u)))
        .map(|d| {
            std::fs::File::open(d)
                .map(OwnedFd::from)
                .map_err(|e| Error::io(format!("opening {}", d.display()), e))
        })
        .transpose()?;
    // The v1 directories: joined by the child itself, as a single thread (no RCU grace
    // period), unless execCPUAffinity.initial must hold until the parent moves it.
    let is_v1 = |d: &PathBuf| !unified.is_some_and(|u| d.starts_with(u));
    let join = if plan.proc.attrs.affinity_initial.is_none() {
        cgroups::open_tasks(dirs.iter().filter(|d| is_v1(d)).map(|d| d.as_path()))?
    } else {
        Vec::new()
    };
    plan.cgroup_join = join.iter().map(|f| f.as_raw_fd()).collect();
    let self_joined = !join.is_empty();
    let mut cloned_into = into.is_some();
    let mut r = sys::proc::clone3(0, into.as_ref().map(|f| f.as_raw_fd()));
    if matches!(
        r,
        Err(libc::EBADF | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS)
    ) && cloned_into
    {
        cloned_into = false;
        r = sys::proc::clone3(0, None);
    }
    let (pid, pidfd) = match r {
        Err(e) => return Err(Error::errno("clone3 of the exec process", e)),
        Ok(Cloned::Child) => {
            sys::close(parent_end.as_raw_fd());
            child(plan, Chan(child_end.as_raw_fd()))
        }
        Ok(Cloned::Parent { pid, pidfd }) => (pid, sys::adopt(pidfd)),
    };
    drop(child_end);
    drop(join);
    let chan = Chan(parent_end.as_raw_fd());
    let mut first = Some(pidfd);
    let kill = |fd: &Option<OwnedFd>| {
        if let Some(fd) = fd {
            let _ = sys::proc::signal_pidfd(fd.as_raw_fd(), libc::SIGKILL);
            let _ = sys::proc::wait_pidfd(fd.as_raw_fd());
        }
    };
    let setup = (|| -> Result<()> {
        for d in dirs {
            if (cloned_into && !is_v1(d)) || (self_joined && is_v1(d)) {
                continue;
            }
            let procs = d.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .map_err(|e| Error::io(format!("writing {}", procs.display()), e))?;
        }
        for &(res, soft, hard) in &plan.proc.rlimits {
            sys::proc::prlimit(pid, res, soft, hard)
                .map_err(|e| Error::errno(format!("setting rlimit {res} to {soft}/{hard}"), e))?;
        }
        if let Some(adj) = plan.proc.oom_score_adj {
            std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
                .map_err(|e| Error::io(format!("setting oom_score_adj to {adj}"), e))?;
        }
        chan.send(Msg::Proceed, &[])
            .map_err(|e| Error::errno("signalling the exec process", e))
    })();
    if let Err(e) = setup {
        kill(&first);
        return Err(e);
    }
    let mut last: Option<(i32, OwnedFd)> = None;
    let mut console = None;
    loop {
        match chan.recv() {
            // Close-on-exec: the exec happened (or the process died, which waiting shows).
            Err(RecvError::Closed) => break,
            Ok((Msg::InitForked { pid: p }, fds)) => {
                let Some(fd) = fds.first() else {
                    kill(&first);
                    return Err(Error::Container("exec: forked pidfd missing".into()));
                };
                last = Some((p, sys::adopt(fd)));
                if let Some(fd) = first.take() {
                    let _ = sys::proc::wait_pidfd(fd.as_raw_fd());
                }
            }
            Ok((Msg::Console, fds)) => {
                if let Some(fd) = fds.first() {
                    console = Some(sys::adopt(fd));
                }
            }
            Ok((Msg::Failed(f), fds)) => {
                fds.close_all();
                let who = last.take().map(|(_, fd)| Some(fd)).unwrap_or(first.take());
                kill(&who);
                return Err(Error::Container(describe(plan, &f)));
            }
            Ok((Msg::SeccompListener, fds)) => {
                let p = last.as_ref().map_or(pid, |(p, _)| *p);
                let sent = match &plan.agent {
                    Some((spec, state)) => {
                        crate::seccomp::send_to_agent(spec, state, p, fds.first())
                    }
                    None => {
                        fds.close_all();
                        Err(Error::Container("exec: unexpected seccomp listener".into()))
                    }
                };
                if let Err(e) = sent {
                    let who = last.take().map(|(_, fd)| Some(fd)).unwrap_or(first.take());
                    kill(&who);
                    return Err(e);
                }
            }
            Ok((msg, fds)) => {
                fds.close_all();
                kill(&first);
                return Err(Error::Container(format!(
                    "exec: unexpected message {msg:?}"
                )));
            }
            Err(e) => {
                kill(&first);
                return Err(Error::Container(format!(
                    "exec: reading from the process: {e:?}"
                )));
            }
        }
    }
    let (pid, pidfd) = match (last, first) {
        (Some(l), _) => l,
        (None, Some(fd)) => (pid, fd),
        (None, None) => return Err(Error::Container("exec: process lost".into())),
    };
    Ok((pid, pidfd, console))
}

fn describe(plan: &ExecPlan, f: &Fail) -> String {
    let e = crate::fail::errno_text(f.errno);
    match (f.area, f.code) {
        (Area::Namespace, code::SETNS) => format!("joining the container's namespaces: {e}"),
        (Area::Namespace, code::FORK) => format!("forking into the container's pid namespace: {e}"),
        (Area::Namespace, code::ROOT) => format!("entering the container's root (chroot): {e}"),
        (Area::Process | Area::Exec, _) => plan.proc.describe(f),
        _ => crate::init::describe(f),
    }
}

/// Child side. Never returns.
fn child(plan: &mut ExecPlan, chan: Chan) -> ! {
    if let Err(f) = child_steps(plan, chan) {
        chan.fail(f);
    }
    sys::exit(1)
}

fn child_steps(plan: &mut ExecPlan, chan: Chan) -> Result<(), Fail> {
    // Non-dumpable while husk's image runs inside the container's namespaces.
    sys::proc::set_dumpable(false)
        .map_err(|e| Fail::new(Area::Sync, crate::init::code::DUMPABLE, 0, e))?;
    crate::init::join_cgroups(&plan.cgroup_join)?;
    crate::init::wait_proceed(chan)?;
    if plan.ns_flags != 0 {
        sys::proc::setns(plan.init_pidfd, plan.ns_flags)
            .map_err(|e| Fail::new(Area::Namespace, code::SETNS, 0, e))?;
    }
    sys::close(plan.init_pidfd);
    if plan.root_fd >= 0 {
        let f = |e| Fail::new(Area::Namespace, code::ROOT, 0, e);
        sys::mount::fchdir(plan.root_fd).map_err(f)?;
        sys::mount::chroot(c".").map_err(f)?;
        sys::mount::chdir(c"/").map_err(f)?;
        sys::close(plan.root_fd);
    }
    if plan.fork {
        match sys::proc::clone3(libc::CLONE_PARENT as u64, None) {
            Err(e) => return Err(Fail::new(Area::Namespace, code::FORK, 0, e)),
            Ok(Cloned::Parent { pid, pidfd }) => {
                let _ = chan.send(Msg::InitForked { pid }, &[pidfd]);
                sys::exit(0);
            }
            Ok(Cloned::Child) => {}
        }
    }
    if plan.terminal {
        terminal(chan)?;
    }
    plan.proc.prepare()?;
    plan.proc.apply(chan)?;
    Err(plan.proc.exec())
}

/// A pty from the container's /dev/ptmx (we are in its mount namespace now): the master goes
/// to the parent, the slave becomes the controlling terminal and stdio.
fn terminal(chan: Chan) -> Result<(), Fail> {
    use crate::init::code;
    let f = |c, e| Fail::new(Area::Console, c, 0, e);
    let master = sys::mount::openat(
        libc::AT_FDCWD,
        c"/dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| f(code::PTMX, e))?;
    sys::proc::unlockpt(master).map_err(|e| f(code::UNLOCK, e))?;
    let slave = sys::proc::pty_peer(master).map_err(|e| f(code::PEER, e))?;
    chan.send(Msg::Console, &[master])
        .map_err(|e| Fail::new(Area::Sync, code::SEND, 0, e))?;
    sys::close(master);
    sys::proc::setsid().map_err(|e| f(code::CTTY, e))?;
    sys::proc::set_ctty(slave).map_err(|e| f(code::CTTY, e))?;
    for fd in 0..3 {
        sys::proc::dup2(slave, fd).map_err(|e| f(code::STDIO, e))?;
    }
    sys::close(slave);
    Ok(())
}
