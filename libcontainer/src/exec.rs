//! `exec`: one more process in a running container. Planned in the parent like the init (the
//! child never allocates): one clone3 into the container's cgroup (`CLONE_INTO_CGROUP` on v2),
//! then `setns(pidfd, every namespace flag)` in one call, a fork when a pid or time namespace
//! is joined (those apply to children only), the terminal, credentials, and execve. The child's
//! end of the socketpair is close-on-exec: EOF means the exec happened; a failure comes back as
//! a typed `Fail` before that.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::fail::{Fail, Step};
use crate::init::{ConsoleCode, SyncCode};
use crate::io::{Console, Pidfd, Process, Stdio, StdioSet};
use crate::namespaces::Code as NsCode;
use crate::notice::Notice;
use crate::oci_spec::runtime::{Capability, Process as OciProcess};
use crate::process::{ProcPlan, SessionKeyring};
use crate::protocol::{Chan, Fds, Msg};
use crate::spawn::{self, Dirs, Flow, Job};
use crate::state::{Lock, Record, Status};
use crate::sys::{self, proc::Cloned};
use crate::{Container, Error, Result};

/// What to run by [`Container::exec`]: either a whole OCI `process` (`--process FILE`), or the
/// container's own process with these fields replaced or added (runc's exec flags).
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// A complete process; when set, the override fields below are ignored. Its absent
    /// capabilities, rlimits, LSM labels, I/O priority, scheduler and CPU affinity are the
    /// container's, as in runc.
    pub process: Option<OciProcess>,
    /// The command and its arguments.
    pub args: Vec<String>,
    /// `KEY=value` entries added to (or replacing those of) the container's environment.
    pub env: Vec<String>,
    /// The working directory (`--cwd`).
    pub cwd: Option<PathBuf>,
    /// uid and optional gid (`--user uid[:gid]`).
    pub user: Option<(u32, Option<u32>)>,
    /// Supplementary gids, added to the container's (`--additional-gids`).
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets, and to the ambient
    /// set when the container's process has an inheritable set (`CAP_NET_ADMIN`); names runc
    /// does not know are ignored with a warning.
    pub caps: Vec<String>,
    /// Set no_new_privs (`--no-new-privs`).
    pub no_new_privs: bool,
    /// Give the process a terminal (`--tty`); see `console`.
    pub tty: bool,
    /// An AppArmor profile (`--apparmor`).
    pub apparmor: Option<String>,
    /// An SELinux label (`--process-label`).
    pub process_label: Option<String>,
    /// Where the pty master goes with `tty`. `Console::Return` (the default) is for
    /// `spawn_exec`, which returns it; `exec` takes `Proxy` or `Socket`.
    pub console: Console,
    /// Where the process's stdin comes from (inherited from the caller by default).
    pub stdin: Stdio,
    /// Where its stdout goes.
    pub stdout: Stdio,
    /// Where its stderr goes.
    pub stderr: Stdio,
    /// A unix socket to receive a pidfd of the process.
    pub pidfd_socket: Option<PathBuf>,
    /// `exec`: return once the process runs instead of waiting for it.
    pub detach: bool,
    /// Where to write the process's pid.
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
    /// The calling terminal's size for the new pty (`Console::Proxy`), set before the
    /// process runs: the proxy's own copy comes only after spawn_exec returns.
    console_size: Option<(u16, u16)>,
    /// For a seccomp NOTIFY listener: the config and the container state for the agent.
    agent: Option<(crate::oci_spec::runtime::Spec, Vec<u8>)>,
    /// The stdio fds `proc.stdio` names, open until the clone.
    stdio_fds: Vec<OwnedFd>,
}

/// The process to run: `--process`, or the container's with the overrides (as runc's exec
/// makes it), checked as runc checks it; with warnings (`--cap` names runc does not know).
fn process_of(rec: &Record, o: &ExecOptions) -> Result<(OciProcess, Vec<String>)> {
    let mut warnings = Vec::new();
    let p = match &o.process {
        Some(p) => with_config_defaults(p.clone(), rec.config.process().as_ref()),
        None => overridden(rec, o, &mut warnings)?,
    };
    let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
    if p.cwd().as_os_str().is_empty() {
        return bad("Cwd property must not be empty");
    }
    if !p.cwd().is_absolute() {
        return bad("Cwd must be an absolute path");
    }
    if p.args().as_ref().map_or(true, |a| a.is_empty()) {
        return bad("args must not be empty");
    }
    Ok((p, warnings))
}

/// A process.json's fields that fall back to the container's when absent, as in runc's
/// exec: capabilities, rlimits (also when empty), AppArmor profile, SELinux label, I/O
/// priority, scheduler and CPU affinity. (noNewPrivileges absent is false.)
fn with_config_defaults(mut p: OciProcess, config: Option<&OciProcess>) -> OciProcess {
    let Some(c) = config else { return p };
    if p.capabilities().is_none() {
        p.set_capabilities(c.capabilities().clone());
    }
    if p.rlimits().as_ref().map_or(true, |r| r.is_empty()) {
        p.set_rlimits(c.rlimits().clone());
    }
    if p.apparmor_profile().as_ref().map_or(true, |s| s.is_empty()) {
        p.set_apparmor_profile(c.apparmor_profile().clone());
    }
    if p.selinux_label().as_ref().map_or(true, |s| s.is_empty()) {
        p.set_selinux_label(c.selinux_label().clone());
    }
    if p.io_priority().is_none() {
        p.set_io_priority(*c.io_priority());
    }
    if p.scheduler().is_none() {
        p.set_scheduler(c.scheduler().clone());
    }
    if p.exec_cpu_affinity().is_none() {
        p.set_exec_cpu_affinity(c.exec_cpu_affinity().clone());
    }
    p
}

/// The container's process with `o`'s flags applied.
fn overridden(rec: &Record, o: &ExecOptions, warnings: &mut Vec<String>) -> Result<OciProcess> {
    if o.args.is_empty() {
        return Err(Error::InvalidArgument(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    let mut p = rec.config.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    // Appended: the environment's preparation keeps the last of each name. (No env in the
    // config and no --env: none at all, so no HOME either, as Go's append to nil leaves it.)
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(o.env.iter().cloned());
        p.set_env(Some(env));
    }
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
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&o.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    // With no capabilities configured the process keeps the full set: nothing to add.
    if let (false, Some(mut caps)) = (o.caps.is_empty(), p.capabilities().clone()) {
        let last = crate::caps::last_cap();
        let mut unknown = Vec::new();
        for name in &o.caps {
            // runc knows the exact names only (not "cap_kill" or "KILL").
            let cap = crate::caps::capability_number(name)
                .filter(|n| *n <= last)
                .and_then(|_| serde_json::from_value::<Capability>(serde_json::json!(name)).ok());
            let Some(cap) = cap else {
                unknown.push(name.clone());
                continue;
            };
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
            // Ambient only with some inheritable set configured, as runc does (ambient needs
            // inheritable, which --cap does not add).
            if caps.inheritable().is_some() {
                let a = add(caps.ambient());
                caps.set_ambient(a);
            }
        }
        warnings.extend(crate::caps::ignored_warning(unknown));
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
        if o.tty && o.detach && !matches!(o.console, Console::Socket(_)) {
            return Err(Error::InvalidArgument(
                "cannot allocate tty if husk will detach without setting console socket".into(),
            ));
        }
        if o.tty && o.console == Console::Return {
            return Err(Error::InvalidArgument(
                "Console::Return hands the pty master to the caller of spawn_exec; exec cannot: use Console::Proxy or Console::Socket".into(),
            ));
        }
        let p = self.spawn_exec(o)?;
        if o.detach {
            return Ok(ExecOutcome::Detached(p.pid()));
        }
        let proxy = match (&p.pty, &o.console) {
            // Nobody would copy its terminal: the process is killed and reaped.
            (Some(master), Console::Proxy) => match crate::tty::Proxy::start(master) {
                Ok(proxy) => Some(proxy),
                Err(e) => {
                    let _ = p.pidfd().send_signal(libc::SIGKILL);
                    let _ = p.wait();
                    return Err(e);
                }
            },
            _ => None,
        };
        let status = crate::tty::wait_forwarding(p.pidfd(), proxy.as_ref())?;
        drop(proxy);
        Ok(ExecOutcome::Exited(status))
    }

    /// Starts one more process in the container and returns at once with its [`Process`]:
    /// a pidfd to wait on and the pipe ends or pty asked for by `o.stdin`/`stdout`/`stderr`
    /// and `o.console` (`detach` does not apply). The process is a child of the caller.
    ///
    /// ```no_run
    /// use std::io::Read;
    /// use libcontainer::{ExecOptions, Runtime, Stdio};
    /// let c = Runtime::new("/run/husk").container("c1")?;
    /// let mut o = ExecOptions::new(["cat", "/etc/hostname"]);
    /// o.stdout = Stdio::piped();
    /// let mut p = c.spawn_exec(&o)?;
    /// let mut out = String::new();
    /// p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    /// assert_eq!(p.wait()?, 0);
    /// # Ok::<(), libcontainer::Error>(())
    /// ```
    pub fn spawn_exec(&self, o: &ExecOptions) -> Result<Process> {
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
        let (process, mut warnings) = process_of(&rec, o)?;
        let terminal = process.terminal() == Some(true);
        if matches!(o.console, Console::Socket(_)) && !terminal {
            return Err(Error::InvalidArgument(
                "cannot use console socket if the process does not allocate a tty (--tty)".into(),
            ));
        }
        let stdio = StdioSet([&o.stdin, &o.stdout, &o.stderr]);
        if terminal && !stdio.all_inherit() {
            return Err(Error::InvalidArgument(
                "a process with a terminal has the pty as its stdio: leave stdin, stdout and stderr inherited".into(),
            ));
        }
        let mut spec = rec.config.clone();
        spec.set_process(Some(process));
        let init = crate::container::init_pidfd(&rec)?;
        let pid = rec.pid.ok_or(Error::NotRunning)?;
        // HOME from the container's /etc/passwd, read through the init's root.
        let root_path = PathBuf::from(format!("/proc/{pid}/root"));
        let ns = ns_flags(pid)?;
        let keyring = (!rec.no_new_keyring)
            .then(|| SessionKeyring::new(self.id(), false, ns & libc::CLONE_NEWUSER != 0))
            .transpose()?;
        let mut proc = ProcPlan::build(&spec, o.preserve_fds, 0, keyring, Some(&root_path))?;
        warnings.append(&mut proc.warnings);
        for w in warnings {
            self.handler().warn(self.id(), &w);
        }
        // The init's root, entered after the setns: joining a mount namespace sets the root
        // to the namespace's bottom mount, which is the container's root only after a
        // pivot_root. A --no-pivot container (its root moved over / of an initramfs) and one
        // without a mount namespace (a detached root only its processes hold) need this.
        let root = {
            use std::os::unix::fs::OpenOptionsExt;
            let path = format!("/proc/{pid}/root");
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(&path)
                .map_err(|e| Error::io(format!("opening {path}"), e))?;
            Some(OwnedFd::from(f))
        };
        let dirs = match &rec.cgroup {
            Some(s) => cgroup_dirs(s, o.cgroup.as_deref())?,
            None => Vec::new(),
        };
        drop(dir);
        let agent = proc.seccomp.as_ref().filter(|s| s.notifies()).map(|_| {
            let state = crate::create::hook_state(&rec, rec.status(), pid);
            (rec.config.clone(), state)
        });
        let (child_stdio, pipes) = stdio.prepare()?;
        proc.stdio = child_stdio.fds;
        let mut plan = ExecPlan {
            agent,
            terminal: proc.terminal,
            console_size: (proc.terminal && o.console == Console::Proxy)
                .then(crate::tty::host_size)
                .flatten(),
            proc,
            init_pidfd: init.as_raw_fd(),
            ns_flags: ns,
            root_fd: root.as_ref().map_or(-1, |f| f.as_raw_fd()),
            cgroup_join: Vec::new(),
            fork: ns & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME) != 0,
            stdio_fds: child_stdio.into_owned(),
        };
        let unified = rec.cgroup.as_ref().and_then(|s| s.unified.clone());
        let placement = Dirs {
            dirs: &dirs,
            unified: unified.as_deref(),
        };
        let spawned = spawn::spawn(&mut plan, &placement)?;
        let pidfd = Pidfd::from_parts(spawned.pidfd, spawned.pid);
        if let Some(p) = &o.pid_file {
            crate::create::write_pid_file(p, spawned.pid)?;
        }
        if let Some(sock) = &o.pidfd_socket {
            crate::create::send_pidfd(sock, pidfd.as_fd())?;
        }
        let pty = match (spawned.console, &o.console) {
            (Some(master), Console::Socket(sock)) => {
                crate::create::send_console(sock, master.as_fd())?;
                None
            }
            (master, _) => master,
        };
        self.handler().emit(Notice::Exec {
            id: self.id(),
            pid: spawned.pid,
        });
        Ok(Process::new(pidfd, pipes, pty))
    }
}

impl Job for ExecPlan {
    fn clone_flags(&self) -> u64 {
        0
    }

    fn proc(&self) -> &ProcPlan {
        &self.proc
    }

    fn before_clone(&mut self, v1_tasks: Vec<RawFd>) -> Result<Vec<OwnedFd>> {
        self.cgroup_join = v1_tasks;
        // The child inherits the stdio fds; the parent's copies close after the clone.
        Ok(std::mem::take(&mut self.stdio_fds))
    }

    fn child_fds(&self, out: &mut Vec<RawFd>) {
        out.extend(
            [self.init_pidfd, self.root_fd]
                .into_iter()
                .filter(|&fd| fd >= 0),
        );
    }

    fn child(&mut self, chan: Chan) -> ! {
        child(self, chan)
    }

    fn started(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }

    fn before_proceed(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }

    fn message(&mut self, _chan: Chan, msg: Msg, fds: Fds, pid: i32) -> Result<Flow> {
        match (msg, &self.agent) {
            (Msg::SeccompListener, Some((spec, state))) => {
                crate::seccomp::send_to_agent(spec, state, pid, fds.first())?;
                Ok(Flow::Continue)
            }
            (msg, _) => Err(spawn::unexpected(self.what(), msg, fds)),
        }
    }

    fn eof_is_exec(&self) -> bool {
        // Close-on-exec: the exec happened (or the process died, which waiting shows).
        true
    }

    fn error(&self, f: &Fail) -> Error {
        match f.step {
            Step::Process(_) | Step::Exec(_) => self.proc.error(f),
            Step::Namespace(_) => {
                let ns = crate::namespaces::describe_exec(f);
                crate::fail::setup_error(f, ns)
            }
            _ => crate::fail::setup_error(f, crate::init::describe(f)),
        }
    }

    fn what(&self) -> &'static str {
        "exec process"
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
    sys::proc::set_dumpable(false).map_err(|e| Fail::new(crate::init::SyncCode::Dumpable, 0, e))?;
    // With a fork to come, the forked process joins instead: a fork inside a container at its
    // pids limit fails, while joining is a migration the limit does not count (runc's exec
    // works there too).
    if !plan.fork {
        crate::init::join_cgroups(&plan.cgroup_join)?;
    }
    crate::init::connect_stdio(&plan.proc.stdio)?;
    crate::init::wait_proceed(chan)?;
    if plan.ns_flags != 0 {
        sys::proc::setns(plan.init_pidfd, plan.ns_flags)
            .map_err(|e| Fail::new(NsCode::ExecSetns, 0, e))?;
    }
    sys::close(plan.init_pidfd);
    if plan.root_fd >= 0 {
        let f = |e| Fail::new(NsCode::ExecRoot, 0, e);
        sys::mount::fchdir(plan.root_fd).map_err(f)?;
        sys::mount::chroot(c".").map_err(f)?;
        sys::mount::chdir(c"/").map_err(f)?;
        sys::close(plan.root_fd);
    }
    if plan.fork {
        match sys::proc::clone3(libc::CLONE_PARENT as u64, None) {
            Err(e) => return Err(Fail::new(NsCode::ExecFork, 0, e)),
            Ok(Cloned::Parent { pid, pidfd }) => {
                let _ = chan.send(Msg::InitForked { pid }, &[pidfd]);
                sys::exit(0);
            }
            Ok(Cloned::Child) => crate::init::join_cgroups(&plan.cgroup_join)?,
        }
    }
    if plan.terminal {
        terminal(chan, plan.console_size)?;
    } else {
        // A session of its own, as runc's: a session led from outside the container's pid
        // namespace is one CRIU cannot dump.
        sys::proc::setsid().map_err(|e| Fail::new(ConsoleCode::Ctty, 0, e))?;
    }
    plan.proc.prepare()?;
    plan.proc.apply_lsm()?;
    plan.proc.apply(chan)?;
    Err(plan.proc.exec())
}

/// A pty from the container's /dev/ptmx (we are in its mount namespace now): the master goes
/// to the parent, the slave becomes the controlling terminal and stdio.
fn terminal(chan: Chan, size: Option<(u16, u16)>) -> Result<(), Fail> {
    let f = |c: ConsoleCode, e| Fail::new(c, 0, e);
    let master = sys::mount::openat(
        libc::AT_FDCWD,
        c"/dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| f(ConsoleCode::Ptmx, e))?;
    sys::proc::unlockpt(master).map_err(|e| f(ConsoleCode::Unlock, e))?;
    let slave = sys::proc::pty_peer(master).map_err(|e| f(ConsoleCode::Peer, e))?;
    if let Some((rows, cols)) = size {
        let _ = sys::proc::set_winsize(master, rows, cols);
    }
    chan.send(Msg::Console, &[master])
        .map_err(|e| Fail::new(SyncCode::Send, 0, e))?;
    sys::close(master);
    sys::proc::setsid().map_err(|e| f(ConsoleCode::Ctty, e))?;
    sys::proc::set_ctty(slave).map_err(|e| f(ConsoleCode::Ctty, e))?;
    for fd in 0..3 {
        sys::proc::dup2(slave, fd).map_err(|e| f(ConsoleCode::Stdio, e))?;
    }
    sys::close(slave);
    Ok(())
}
