//! The public lifecycle API: `Runtime` (a state directory) and `Container`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::create::{hook_state, Caller, Created, START_SOCK};
use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::io::{Console, Pidfd, Process};
use crate::notice::{Handler, Notice};
use crate::oci_spec::runtime::LinuxNamespaceType;
use crate::plan::{Plan, PlanOptions};
use crate::protocol::{Chan, Msg, RecvError};
use crate::state::{self, Lock, Phase, Record, State, StateDir, Status};
use crate::sys;
use crate::{CreateOptions, Error, Result};

/// A state directory holding containers (the CLI's `--root`), and the handler its warnings
/// and events go to.
#[derive(Clone, Debug)]
pub struct Runtime {
    root: PathBuf,
    pub(crate) handler: Handler,
}

/// Who manages a container's cgroup (runc's `--systemd-cgroup`, crun's `--cgroup-manager`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CgroupDriver {
    /// husk creates and removes the cgroup directories itself.
    #[default]
    Cgroupfs,
    /// A transient systemd scope (`linux.cgroupsPath` is `slice:prefix:name`); systemd must be
    /// running on a pure cgroup v2 host.
    Systemd,
    /// No cgroup at all: the container stays in the caller's. `linux.resources` limits are then
    /// refused (only the device list, which engines always send, is accepted and not enforced).
    Disabled,
}

/// Options of `Runtime::run` beyond those of `create`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Return once the container runs, leaving it to the caller.
    pub detach: bool,
    /// Keep the container (stopped) after it exits instead of deleting it.
    pub keep: bool,
    /// Make the calling process a child subreaper while it waits, so processes the container
    /// leaves behind (without a pid namespace) are reparented to it and reaped, as runc's
    /// `run` does unless `--no-subreaper`. This affects the whole process and reaps any exited
    /// child: leave it off in programs that wait for children of their own.
    pub subreaper: bool,
}

/// How `Runtime::run` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// `detach`: the container is running and was left to the caller.
    Detached,
    /// The container exited: its status, or 128+N when killed by signal N.
    Exited(i32),
}

/// One container in a `Runtime`'s state directory.
#[derive(Debug)]
pub struct Container {
    runtime: Runtime,
    id: String,
    /// The init, when this handle comes from `create`.
    process: Option<Process>,
}

impl Runtime {
    /// A runtime over the state directory `root` (created on first use, mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            handler: Handler::default(),
        }
    }

    /// The same runtime with `f` receiving its warnings and events (instead of warnings going
    /// to stderr). Each runtime has its own: containers of two runtimes in one process never
    /// mix their notices.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use libcontainer::{Notice, Runtime};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let runtime = Runtime::new("/run/husk").with_handler(move |n: &Notice<'_>| {
    ///     if let Notice::Warning { id, msg } = n {
    ///         log.lock().unwrap().push(format!("{id}: {msg}"));
    ///     }
    /// });
    /// # let _ = runtime;
    /// ```
    pub fn with_handler(mut self, f: impl Fn(&Notice<'_>) + Send + Sync + 'static) -> Runtime {
        self.handler = Handler::new(Arc::new(f));
        self
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates container `id`; returns once its init waits for `start`. The init is a child
    /// of the calling process: [`Container::take_process`] has its pidfd and stdio pipes.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container> {
        let (mut container, process) =
            self.handle(id, self.create_inner(id, opts, Caller::Create)?);
        container.process = Some(process);
        Ok(container)
    }

    /// A handle on a container just created, and its init.
    fn handle(&self, id: &str, c: Created) -> (Container, Process) {
        let s = c.spawned;
        let container = Container {
            runtime: self.clone(),
            id: id.into(),
            process: None,
        };
        let init = Process::new(Pidfd::from_parts(s.pidfd, s.pid), c.pipes, s.console);
        (container, init)
    }

    /// create + start + wait, then delete (or, with `detach`, create + start).
    pub fn run(&self, id: &str, opts: &CreateOptions, run: RunOptions) -> Result<RunOutcome> {
        let detach = run.detach;
        if run.subreaper && !detach {
            sys::proc::set_child_subreaper(true)
                .map_err(|e| Error::errno("becoming a child subreaper", e))?;
        }
        let created = self.create_inner(id, opts, Caller::Run { detach })?;
        let (container, process) = self.handle(id, created);
        let proxy = match (&process.pty, &opts.console) {
            (Some(master), Console::Proxy) => match crate::tty::Proxy::start(master) {
                Ok(p) => Some(p),
                Err(e) => {
                    let _ = self.container(id).and_then(|c| c.remove(true, true));
                    return Err(e);
                }
            },
            _ => None,
        };
        if let Err(e) = container.start() {
            let _ = self.container(id).and_then(|c| c.remove(true, true));
            return Err(e);
        }
        if detach {
            return Ok(RunOutcome::Detached);
        }
        let status = crate::tty::wait_forwarding(process.pidfd(), proxy.as_ref())?;
        drop(proxy);
        if !run.keep {
            container.remove(true, true)?;
        }
        if run.subreaper {
            // Whatever the container left behind was killed with its cgroup; reap it.
            sys::proc::reap_exited();
        }
        Ok(RunOutcome::Exited(status))
    }

    /// An existing container.
    pub fn container(&self, id: &str) -> Result<Container> {
        state::validate_id(id)?;
        if !self.root.join(id).is_dir() {
            return Err(Error::NotFound(id.into()));
        }
        Ok(Container {
            runtime: self.clone(),
            id: id.into(),
            process: None,
        })
    }

    /// The state of every container, sorted by id.
    pub fn list(&self) -> Result<Vec<State>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", self.root.display()), e)),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if state::validate_id(&name).is_err() {
                continue;
            }
            // A container deleted meanwhile, or one whose create was killed before it wrote
            // its state, is skipped; one whose state does not read is skipped with a warning
            // (`delete --force` still ends it).
            match StateDir::open(&self.root, &name, Lock::None)
                .and_then(|d| d.read_as::<state::Summary>())
            {
                Ok(Some(r)) => out.push(r.state()),
                Ok(None) | Err(Error::NotFound(_)) => {}
                Err(e) => self
                    .handler
                    .warn(&name, &format!("skipping container {name}: {e}")),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

impl Container {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The init process, once, from a handle `Runtime::create` returned: its pidfd (the init
    /// is a child of the caller, so the pidfd can reap it) and the caller's ends of the stdio
    /// pipes and pty asked for. `None` for a handle from `Runtime::container`, or once taken.
    pub fn take_process(&mut self) -> Option<Process> {
        self.process.take()
    }

    /// A pidfd of the container's init (checked against its recorded start time, so never a
    /// later process of the same pid). Waiting on it works only in the init's parent.
    pub fn pidfd(&self) -> Result<Pidfd> {
        let (_dir, rec) = self.open(Lock::None)?;
        let fd = init_pidfd(&rec)?;
        Ok(Pidfd::from_parts(fd, rec.pid.unwrap_or(0)))
    }

    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub(crate) fn handler(&self) -> &Handler {
        &self.runtime.handler
    }

    pub(crate) fn open(&self, lock: Lock) -> Result<(StateDir, Record)> {
        let dir = StateDir::open(&self.runtime.root, &self.id, lock)?;
        match dir.read()? {
            Some(r) => Ok((dir, r)),
            None => Err(Error::WrongState {
                id: self.id.clone(),
                status: Status::Creating,
                why: "its create did not finish; delete it with --force",
            }),
        }
    }

    /// Its current state (status read from the live process).
    pub fn state(&self) -> Result<State> {
        // runc's `state` leaves `owner` empty (its `list` fills it in).
        self.open(Lock::None).map(|(_, r)| State {
            owner: String::new(),
            ..r.state()
        })
    }

    /// Releases a created container's init to exec the process, then runs poststart hooks.
    pub fn start(&self) -> Result<()> {
        let (dir, mut rec) = self.open(Lock::Exclusive)?;
        let status = rec.status();
        if status != Status::Created {
            return Err(Error::WrongState {
                id: self.id.clone(),
                status,
                why: "only a created container can be started",
            });
        }
        // Recorded before the point of no return: a state that cannot be written (a full
        // disk) fails `start` with the container still created, never a running process whose
        // state says created. A start that fails later ends the init, which reads as stopped.
        rec.phase = Phase::Started;
        dir.write(&rec)?;
        let sock = format!("/proc/self/fd/{}/{START_SOCK}", dir.fd().as_raw_fd());
        let conn = match UnixStream::connect(&sock) {
            Ok(c) => c,
            Err(e) => {
                rec.phase = Phase::Created;
                let _ = dir.write(&rec);
                return Err(e)
                    .ctx(|| format!("connecting to {}", dir.path.join(START_SOCK).display()));
            }
        };
        let pid = rec.pid.unwrap_or(0);
        let state = hook_state(&rec, Status::Created, pid);
        // startContainer hooks see the init's pid in its own namespace, as runc's do.
        let [memfd, out, err] =
            hooks::child_fds(&hook_state(&rec, Status::Created, hooks::inner_pid(pid)))?;
        let notify = crate::notify::Listener::bind(&dir.path)?;
        let chan = Chan(conn.as_raw_fd());
        chan.send(
            Msg::Start,
            &[memfd.as_raw_fd(), out.as_raw_fd(), err.as_raw_fd()],
        )
        .map_err(|e| Error::errno("sending start to the container", e))?;
        drop(memfd);
        let mut outcome = chan.recv();
        // A seccomp NOTIFY listener comes first, just before the exec.
        while let Ok((Msg::SeccompListener, fds)) = &outcome {
            let sent = crate::seccomp::send_to_agent(&rec.config, &state, pid, fds.first());
            if let Err(e) = sent {
                // The process would wait on a listener nobody holds: end it.
                let _ = signal_init(&rec, libc::SIGKILL);
                return Err(e);
            }
            outcome = chan.recv();
        }
        let _ = std::fs::remove_file(dir.path.join(START_SOCK));
        match outcome {
            // The connection is close-on-exec: EOF means the process was executed.
            Err(RecvError::Closed) => {}
            Ok((Msg::Failed(f), _)) => {
                return Err(
                    match Plan::build(
                        rec.config.clone(),
                        &PlanOptions {
                            bundle: &rec.bundle,
                            no_pivot: false,
                            preserve_fds: 0,
                            listen_fds: 0,
                            keyring_id: None,
                            cgroup_dirs: Vec::new(),
                            passwd_root: None,
                        },
                    ) {
                        Ok(plan) => match f.step {
                            crate::fail::Step::Hook(code) => hooks::error(
                                code,
                                &f,
                                plan.hooks_of(true),
                                plan.hooks_of(false),
                                Some([&out, &err]),
                            ),
                            _ => plan.error(&f),
                        },
                        Err(_) => Error::setup(format!("container start failed ({f:?})")),
                    },
                );
            }
            Ok(_) | Err(_) => return Err(Error::setup("container init did not start")),
        }
        if let Some(n) = notify {
            let start = rec.pid_start.unwrap_or(0);
            n.forward_ready(pid, || state::process_alive(pid, start))?;
        }
        let h = rec.config.hooks().clone().unwrap_or_default();
        let state = hook_state(&rec, Status::Running, pid);
        // runtime-spec: a failed poststart hook is a warning; the remaining hooks and the
        // lifecycle continue (runc 1.5 fails start instead).
        for e in hooks::run_all(
            Kind::Poststart,
            h.poststart().as_deref().unwrap_or_default(),
            &state,
            Some(&rec.bundle),
        ) {
            self.handler().warn(&self.id, &e.to_string());
        }
        self.handler().emit(Notice::Started { id: &self.id, pid });
        Ok(())
    }

    /// Sends `signal` to the init (`all`: to every process of the container).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let (_dir, rec) = self.open(Lock::None)?;
        let status = rec.status();
        if status == Status::Stopped {
            return Err(Error::NotRunning);
        }
        // As runc: SIGKILL to a container that shares a pid namespace kills every process of
        // its cgroup, since the init's death takes no one else with it there.
        let own_pidns = crate::rootfs::new_ns(&rec.config, LinuxNamespaceType::Pid);
        let all = all || (signal == libc::SIGKILL && !own_pidns);
        if all {
            // Without a cgroup: the processes of the init's own pid namespace (rootless).
            if let Some(pids) = crate::ops::cgroupless_pids(&rec)? {
                for pid in pids {
                    sys::proc::kill(pid, signal);
                }
                self.signaled(signal, true);
                return Ok(());
            }
            // Without a cgroup and a pid namespace only the init can be named.
            if let Some(saved) = rec.cgroup.as_ref().filter(|s| !s.dirs.is_empty()) {
                let cg = cgroups::Manager::from_saved(saved.clone());
                for pid in cg.pids()? {
                    sys::proc::kill(pid, signal);
                }
                self.signaled(signal, true);
                return crate::ops::thaw_after_kill(&rec, status, signal);
            }
        }
        signal_init(&rec, signal)?;
        self.signaled(signal, all);
        crate::ops::thaw_after_kill(&rec, status, signal)
    }

    fn signaled(&self, signal: i32, all: bool) {
        self.handler().emit(Notice::Signaled {
            id: &self.id,
            signal,
            all,
        });
    }

    /// Deletes a stopped container (`force`: kills it first, whatever its state).
    pub fn delete(self, force: bool) -> Result<()> {
        self.remove(force, false)
    }

    /// `delete`; the poststop hooks' working directory is the bundle for `run` (`in_bundle`), the
    /// caller's for `delete`, as runc's (which changes to the bundle for `create` and `run`).
    pub(crate) fn remove(self, force: bool, in_bundle: bool) -> Result<()> {
        let dir = StateDir::open(&self.runtime.root, &self.id, Lock::Exclusive)?;
        let rec = match dir.read() {
            Ok(Some(r)) => r,
            // create was killed before it wrote anything else.
            Ok(None) => return dir.remove(),
            Err(e @ Error::Config { .. }) if force => return self.remove_unreadable(dir, e),
            Err(e) => return Err(e),
        };
        let status = rec.status();
        // runtime-spec: deleting a container that is not stopped MUST fail. That includes a
        // created one (runc and crun kill it instead); engines follow a failed plain delete with
        // `delete --force` (containerd) or always force (podman).
        if status != Status::Stopped && !force {
            return Err(Error::WrongState {
                id: self.id.clone(),
                status,
                why: "cannot delete a container that is not stopped without --force",
            });
        }
        if status != Status::Stopped {
            let _ = signal_init(&rec, libc::SIGKILL);
        }
        if let Some(saved) = &rec.cgroup {
            cgroups::Manager::from_saved(saved.clone()).destroy()?;
        }
        dir.remove()?;
        let h = rec.config.hooks().clone().unwrap_or_default();
        let state = hook_state(&rec, Status::Stopped, 0);
        // poststop failures are warnings and the remaining hooks still run (runtime-spec; runc
        // 1.5 fails delete at the first): the container is gone either way.
        for e in hooks::run_all(
            Kind::Poststop,
            h.poststop().as_deref().unwrap_or_default(),
            &state,
            in_bundle.then_some(rec.bundle.as_path()),
        ) {
            self.handler().warn(&self.id, &e.to_string());
        }
        self.handler().emit(Notice::Deleted { id: &self.id });
        Ok(())
    }

    /// `delete --force` of a container whose state.json does not read: its init and cgroup
    /// come from the recovery record create wrote; no hooks run (their config is unreadable).
    fn remove_unreadable(self, dir: StateDir, why: Error) -> Result<()> {
        self.handler().warn(
            &self.id,
            &format!("{why}; killing the container and removing it"),
        );
        if let Some(r) = dir.recovery() {
            if let (Some(pid), Some(start)) = (r.pid, r.pid_start) {
                if let Ok(fd) = sys::proc::pidfd_open(pid) {
                    let fd = crate::sys::adopt(fd);
                    if state::process_alive(pid, start) {
                        let _ = sys::proc::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
                    }
                }
            }
            // destroy kills what the init left behind (its children in a shared pid namespace).
            if let Some(saved) = r.cgroup {
                cgroups::Manager::from_saved(saved).destroy()?;
            }
        }
        dir.remove()?;
        self.handler().emit(Notice::Deleted { id: &self.id });
        Ok(())
    }
}

/// A pidfd of the container's init, checked against its recorded start time (pid reuse).
pub(crate) fn init_pidfd(rec: &Record) -> Result<OwnedFd> {
    let (Some(pid), Some(start)) = (rec.pid, rec.pid_start) else {
        return Err(Error::NotRunning);
    };
    let fd = match sys::proc::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(libc::ESRCH) => return Err(Error::NotRunning),
        Err(e) => return Err(Error::errno(format!("pidfd_open {pid}"), e)),
    };
    let fd = crate::sys::adopt(fd);
    // Checked after opening the pidfd: if the pid was recycled before, the start time differs.
    if !state::process_alive(pid, start) {
        return Err(Error::NotRunning);
    }
    Ok(fd)
}

fn signal_init(rec: &Record, signal: i32) -> Result<()> {
    let fd = init_pidfd(rec)?;
    match sys::proc::pidfd_send_signal(fd.as_raw_fd(), signal) {
        Ok(()) => Ok(()),
        Err(libc::ESRCH) => Err(Error::NotRunning),
        Err(e) => Err(Error::errno(format!("sending signal {signal}"), e)),
    }
}
