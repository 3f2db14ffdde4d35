//! The public lifecycle API: `Runtime` (a state directory) and `Container`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::oci_spec::runtime::Spec;
use crate::plan::{Plan, PlanOptions};
use crate::protocol::{Chan, Msg, RecvError};
use crate::spawn::{self, Events};
use crate::state::{self, Lock, Phase, Record, State, StateDir, Status};
use crate::sys;
use crate::{Error, Result};

const START_SOCK: &str = "start.sock";

/// A state directory holding containers; the CLI's `--root`.
#[derive(Clone, Debug)]
pub struct Runtime {
    root: PathBuf,
}

/// Options of `create` and `run` beyond the bundle's config.json.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The bundle directory holding config.json.
    pub bundle: PathBuf,
    /// A unix socket to receive the pty master (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// A unix socket to receive a pidfd of the init.
    pub pidfd_socket: Option<PathBuf>,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// How many fds after stdio (3, 4, ...) the container inherits, besides LISTEN_FDS.
    pub preserve_fds: u32,
    /// Move the root onto / and chroot instead of pivot_root (initramfs hosts).
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    pub no_new_keyring: bool,
    /// Who manages the container's cgroup.
    pub cgroup_driver: CgroupDriver,
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

impl CreateOptions {
    /// Options for a bundle with everything else at its default.
    pub fn new(bundle: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            bundle: bundle.into(),
            ..Default::default()
        }
    }
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
}

/// Reads and parses config.json, naming the file in every error.
fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| Error::Config {
        path: path.clone(),
        msg: crate::fail::io_text(&e),
    })?;
    parse_at(&path, data)
}

/// Parses a config.json as `create` does: runtime-spec's field names (including the two that
/// oci-spec spells differently), and an error that names the offending field.
///
/// ```
/// let spec = libcontainer::parse_config(br#"{"ociVersion": "1.3.0", "root": {"path": "rootfs"},
///     "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}"#).unwrap();
/// assert_eq!(spec.root().as_ref().unwrap().path().to_str(), Some("rootfs"));
/// let err = libcontainer::parse_config(br#"{"ociVersion": "1.3.0", "process": {"args": 3}}"#)
///     .unwrap_err();
/// assert!(err.to_string().contains("process.args"), "{err}");
/// ```
pub fn parse_config(data: &[u8]) -> Result<Spec> {
    parse_at(Path::new("config.json"), data.to_vec())
}

fn parse_at(path: &Path, data: Vec<u8>) -> Result<Spec> {
    let data = crate::attrs::spec_names_fixed(data);
    // The plain parse is the one `state.json` loading also uses, so a good config runs no
    // extra code (its pages count in create's peak RSS); only a bad one is parsed again
    // through serde_path_to_error, which names the field ("process.args: invalid type ...").
    if let Ok(spec) = serde_json::from_slice(&data) {
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        msg: match e.path().to_string().as_str() {
            "." => format!("invalid config: {}", e.inner()),
            field => format!("invalid config: {field}: {}", e.inner()),
        },
    })
}

/// With no cgroup (`--cgroup-manager disabled`), limits cannot take effect: refused rather than
/// ignored. The device list alone is accepted, as engines send their defaults always.
fn refuse_limits(r: Option<&oci_spec::runtime::LinuxResources>) -> Result<()> {
    let Some(r) = r else { return Ok(()) };
    let mut only_devices = r.clone();
    only_devices.set_devices(None);
    let json = serde_json::to_value(&only_devices).unwrap_or_default();
    let set: Vec<&String> = json
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    if set.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidConfig(format!(
        "linux.resources {set:?}: limits need a cgroup, and the cgroup manager is disabled"
    )))
}

/// LISTEN_FDS from the caller's environment, passed through as runc does.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Everything a failed `create` must undo.
struct Undo<'a> {
    dir: Option<StateDir>,
    cgroup: Option<&'a cgroups::Manager>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

struct Recorder<'a> {
    dir: &'a StateDir,
    record: Record,
}

impl Events for Recorder<'_> {
    fn pid(&mut self, pid: i32) -> Result<()> {
        self.record.pid = Some(pid);
        self.record.pid_start = state::proc_stat(pid).map(|(s, _)| s);
        self.dir.write(&self.record)
    }

    fn hook_state(&mut self, pid: i32) -> Vec<u8> {
        // The create-phase hooks (prestart, createRuntime, createContainer) see "created", as
        // crun's do and as runtime-tools' hooks_stdin checks: the environment is built by then.
        hook_state(&self.record, Status::Created, pid)
    }
}

/// The OCI state that hooks read on stdin.
pub(crate) fn hook_state(r: &Record, status: Status, pid: i32) -> Vec<u8> {
    let mut v = serde_json::json!({
        "ociVersion": state::OCI_VERSION,
        "id": r.id,
        "status": status,
        "bundle": r.bundle,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    if let Some(a) = r.config.annotations().as_ref().filter(|a| !a.is_empty()) {
        v["annotations"] = serde_json::to_value(a).unwrap_or_default();
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).ctx(|| format!("writing pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("writing pid file {}", path.display()))
}

pub(crate) fn send_console(socket: &Path, master: &OwnedFd) -> Result<()> {
    send_fd(socket, "console socket", b"/dev/ptmx", master)
}

/// `--pidfd-socket` (runc 1.2): the process's pidfd, for callers that want to signal or wait
/// without pid reuse races.
pub(crate) fn send_pidfd(socket: &Path, pidfd: &OwnedFd) -> Result<()> {
    send_fd(socket, "pidfd socket", b"pidfd", pidfd)
}

fn send_fd(socket: &Path, what: &str, name: &[u8], fd: &OwnedFd) -> Result<()> {
    let s =
        UnixStream::connect(socket).ctx(|| format!("connecting to {what} {}", socket.display()))?;
    sys::sock::send(s.as_raw_fd(), name, &[fd.as_raw_fd()])
        .map_err(|e| Error::errno(format!("sending to {what} {}", socket.display()), e))
}

impl Runtime {
    /// A runtime over the state directory `root` (created on first use, mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates container `id` from a bundle; returns once its init waits for `start`.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container> {
        self.create_inner(id, opts, true).map(|(c, _)| c)
    }

    /// `detached`: nobody will copy the pty for the caller (`create`, `run --detach`), so a
    /// terminal needs a console socket.
    fn create_inner(
        &self,
        id: &str,
        opts: &CreateOptions,
        detached: bool,
    ) -> Result<(Container, spawn::Spawned)> {
        state::validate_id(id)?;
        let bundle = std::path::absolute(&opts.bundle)
            .ctx(|| format!("bundle {}", opts.bundle.display()))?;
        let mut spec = load_spec(&bundle)?;
        // NOTIFY_SOCKET: its directory is mounted into the container, so it must exist before
        // the mounts are planned; a failure from here on removes it (the guard's drop).
        let mut early = Undo {
            dir: None,
            cgroup: None,
        };
        if crate::notify::host_socket().is_some() {
            let d = StateDir::create(&self.root, id)?;
            let path = d.path.clone();
            early.dir = Some(d);
            crate::notify::prepare(&mut spec, &path)?;
        }
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        if terminal && detached && opts.console_socket.is_none() {
            return Err(Error::InvalidConfig(
                "cannot allocate tty if husk will detach without setting console socket".into(),
            ));
        }
        if opts.console_socket.is_some() && !terminal {
            return Err(Error::InvalidConfig(
                "cannot use console socket if the container does not allocate a tty (process.terminal is false)".into(),
            ));
        }
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref());
        let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
        let mut cgroup = match opts.cgroup_driver {
            CgroupDriver::Cgroupfs => cgroups::Manager::new(cgroups_path, id)?,
            CgroupDriver::Systemd => cgroups::Manager::new_systemd(
                cgroups_path.map(|p| p.to_string_lossy()).as_deref(),
                id,
            )?,
            CgroupDriver::Disabled => {
                refuse_limits(resources.as_ref())?;
                cgroups::Manager::disabled()
            }
        };
        if cgroup.is_systemd() {
            // Applied by `add` once the unit exists (it is started with the init's pid).
            cgroup.set_start_resources(resources.clone());
        }
        let mut plan = Plan::build(
            spec.clone(),
            &PlanOptions {
                bundle: &bundle,
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                listen_fds: listen_fds(),
                new_keyring: !opts.no_new_keyring,
                cgroup_dirs: cgroup.saved().dirs.clone(),
            },
        )?;
        let root_path = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        let dir = match early.dir.take() {
            Some(d) => d,
            None => StateDir::create(&self.root, id)?,
        };
        let mut undo = Undo {
            dir: None,
            cgroup: None,
        };
        let mut rec = Recorder {
            dir: &dir,
            record: Record {
                id: id.into(),
                bundle: bundle.clone(),
                rootfs: bundle.join(root_path),
                created: state::rfc3339_now(),
                owner: state::owner_name(),
                phase: Phase::Creating,
                pid: None,
                pid_start: None,
                cgroup: Some(cgroup.saved().clone()),
                config: spec,
            },
        };
        let result = (|| {
            rec.dir.write(&rec.record)?;
            undo.cgroup = Some(&cgroup);
            cgroup.create()?;
            if let Some(r) = resources
                .as_ref()
                .filter(|_| !cgroup.saved().dirs.is_empty())
            {
                for w in cgroups::resources::ignored_fields(r, cgroup.saved().layout) {
                    crate::warn::warn(&w);
                }
            }
            if let Some(r) = resources.as_ref().filter(|_| cgroup.applies_on_create()) {
                cgroup.apply(r)?;
            }
            // Bound through the directory fd: the path stays short whatever the root and id.
            let sock = format!("/proc/self/fd/{}/{START_SOCK}", dir.fd().as_raw_fd());
            let listener = UnixListener::bind(&sock)
                .ctx(|| format!("creating {}", dir.path.join(START_SOCK).display()))?;
            let spawned = spawn::spawn(
                &mut plan,
                &cgroup,
                listener.as_raw_fd(),
                &[dir.fd().as_raw_fd()],
                &mut rec,
            )?;
            drop(listener);
            rec.record.phase = Phase::Created;
            rec.pid(spawned.pid)?;
            if let (Some(sock), Some(master)) = (&opts.console_socket, &spawned.console) {
                send_console(sock, master)?;
            }
            if let Some(sock) = &opts.pidfd_socket {
                send_pidfd(sock, &spawned.pidfd)?;
            }
            if let Some(p) = &opts.pid_file {
                write_pid_file(p, spawned.pid)?;
            }
            Ok(spawned)
        })();
        match result {
            Ok(spawned) => {
                undo.cgroup = None;
                drop(undo);
                Ok((
                    Container {
                        runtime: self.clone(),
                        id: id.into(),
                    },
                    spawned,
                ))
            }
            Err(e) => {
                // The init (if any) was killed by spawn's guard; remove the rest.
                drop(rec);
                undo.dir = Some(dir);
                drop(undo);
                Err(e)
            }
        }
    }

    /// create + start + wait, then delete (or, with `detach`, create + start).
    pub fn run(&self, id: &str, opts: &CreateOptions, run: RunOptions) -> Result<RunOutcome> {
        let detach = run.detach;
        if run.subreaper && !detach {
            sys::proc::set_child_subreaper(true)
                .map_err(|e| Error::errno("becoming a child subreaper", e))?;
        }
        let (container, spawned) = self.create_inner(id, opts, detach)?;
        let proxy = match (&spawned.console, &opts.console_socket) {
            (Some(master), None) => Some(crate::tty::Proxy::start(master)?),
            _ => None,
        };
        if let Err(e) = container.start() {
            let _ = self.container(id).and_then(|c| c.delete(true));
            return Err(e);
        }
        if detach {
            return Ok(RunOutcome::Detached);
        }
        let status = crate::tty::wait_forwarding(&spawned.pidfd)?;
        drop(proxy);
        if !run.keep {
            container.delete(true)?;
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
            // its state, is skipped.
            if let Ok(Some(r)) = StateDir::open(&self.root, &name, Lock::None)
                .and_then(|d| d.read_as::<state::Summary>())
            {
                out.push(r.state());
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
        self.open(Lock::None).map(|(_, r)| r.state())
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
        let sock = format!("/proc/self/fd/{}/{START_SOCK}", dir.fd().as_raw_fd());
        let conn = UnixStream::connect(&sock)
            .ctx(|| format!("connecting to {}", dir.path.join(START_SOCK).display()))?;
        let pid = rec.pid.unwrap_or(0);
        let state = hook_state(&rec, Status::Created, pid);
        let memfd =
            sys::proc::memfd_with(c"state", &state).map_err(|e| Error::errno("memfd", e))?;
        let memfd = crate::sys::adopt(memfd);
        let notify = crate::notify::Listener::bind(&dir.path)?;
        let chan = Chan(conn.as_raw_fd());
        chan.send(Msg::Start, &[memfd.as_raw_fd()])
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
                let msg = match Plan::build(
                    rec.config.clone(),
                    &PlanOptions {
                        bundle: &rec.bundle,
                        no_pivot: false,
                        preserve_fds: 0,
                        listen_fds: 0,
                        new_keyring: false,
                        cgroup_dirs: Vec::new(),
                    },
                ) {
                    Ok(plan) => plan.describe(&f),
                    Err(_) => format!("container start failed ({f:?})"),
                };
                return Err(Error::Container(msg));
            }
            Ok(_) | Err(_) => return Err(Error::Container("container init did not start".into())),
        }
        rec.phase = Phase::Started;
        dir.write(&rec)?;
        if let Some(n) = notify {
            let start = rec.pid_start.unwrap_or(0);
            n.forward_ready(pid, || state::process_alive(pid, start))?;
        }
        let h = rec.config.hooks().clone().unwrap_or_default();
        let state = hook_state(&rec, Status::Running, pid);
        if let Err(e) = hooks::run(
            Kind::Poststart,
            h.poststart().as_deref().unwrap_or_default(),
            &state,
        ) {
            // A failed poststart fails start (runtime-spec 1.3): stop the container too.
            let _ = signal_init(&rec, libc::SIGKILL);
            return Err(e);
        }
        Ok(())
    }

    /// Sends `signal` to the init (`all`: to every process of the container).
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let (_dir, rec) = self.open(Lock::None)?;
        let status = rec.status();
        if status == Status::Stopped {
            return Err(Error::NotRunning);
        }
        if all {
            // Without a cgroup (manager disabled) only the init can be named.
            if let Some(saved) = rec.cgroup.as_ref().filter(|s| !s.dirs.is_empty()) {
                let cg = cgroups::Manager::from_saved(saved.clone());
                for pid in cg.pids()? {
                    sys::proc::kill(pid, signal);
                }
                return crate::ops::thaw_after_kill(&rec, status, signal);
            }
        }
        signal_init(&rec, signal)?;
        crate::ops::thaw_after_kill(&rec, status, signal)
    }

    /// Deletes a stopped container (`force`: kills it first, whatever its state).
    pub fn delete(self, force: bool) -> Result<()> {
        let dir = StateDir::open(&self.runtime.root, &self.id, Lock::Exclusive)?;
        let rec = match dir.read()? {
            Some(r) => r,
            // create was killed before it wrote anything else.
            None => return dir.remove(),
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
        // poststop failures are warnings (runtime-spec): the container is gone either way.
        if let Err(e) = hooks::run(
            Kind::Poststop,
            h.poststop().as_deref().unwrap_or_default(),
            &state,
        ) {
            crate::warn::warn(&e.to_string());
        }
        Ok(())
    }
}

/// Signals the init through a pidfd, after checking it is still the process we started.
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
