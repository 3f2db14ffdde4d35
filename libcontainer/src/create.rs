//! `create`: the options, the config (config.json or a spec built in memory), the state
//! directory and cgroup, and the create side of the spawn (`Job` for the init): id maps,
//! the create-phase hooks, `Created`. A failure at any step removes everything made.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::Context;
use crate::fail::Fail;
use crate::hooks::{self, Kind};
use crate::io::{Console, Stdio, StdioSet};
use crate::oci_spec::runtime::Spec;
use crate::plan::{Plan, PlanOptions};
use crate::process::ProcPlan;
use crate::protocol::{Chan, Fds, Msg};
use crate::spawn::{self, Flow, Job, Spawned};
use crate::state::{self, Phase, Record, StateDir, Status};
use crate::sys;
use crate::{CgroupDriver, Error, Result, Runtime};

pub(crate) const START_SOCK: &str = "start.sock";

/// Options of `create` and `run`.
///
/// ```
/// use libcontainer::{Console, CreateOptions, Stdio};
/// let mut opts = CreateOptions::new("/path/to/bundle");
/// opts.stdout = Stdio::piped();
/// opts.console = Console::Socket("/run/console.sock".into());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The bundle directory: config.json (unless `spec` is given) and the base of relative
    /// paths in the config (`root.path`, bind mount sources).
    pub bundle: PathBuf,
    /// The config, built in memory: used instead of reading `bundle/config.json`.
    pub spec: Option<Spec>,
    /// Where the pty master goes when `process.terminal` is true. `Console::Return` (the
    /// default) is for `create`, which returns it; `run` takes `Proxy` or `Socket`.
    pub console: Console,
    /// The container's stdin (inherited from the caller by default, as runc does).
    pub stdin: Stdio,
    /// The container's stdout.
    pub stdout: Stdio,
    /// The container's stderr.
    pub stderr: Stdio,
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
    /// Whether cgroups the caller may not create are done without (`--rootless`).
    pub rootless: crate::Rootless,
    /// A root filesystem for husk to make (and remove at delete); `None`: the config's
    /// annotations say (`RootfsSource::from_annotations`), else `root.path` is used as is.
    pub rootfs_source: Option<crate::RootfsSource>,
    /// The resource view for containers whose config has no `io.github.husk.resource-view`
    /// annotation (`None`: off); see [`crate::ResourceView`].
    pub resource_view: Option<crate::ResourceView>,
    /// The `husk-procview` server binary; `None`: next to the running program, then `$PATH`.
    pub procview_binary: Option<PathBuf>,
}

impl CreateOptions {
    /// Options for a bundle (its config.json) with everything else at its default.
    pub fn new(bundle: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            bundle: bundle.into(),
            ..Default::default()
        }
    }

    /// Options for a spec built in memory; `bundle` is the base of its relative paths (it
    /// needs no config.json).
    ///
    /// ```
    /// let spec = libcontainer::default_spec(false);
    /// let opts = libcontainer::CreateOptions::from_spec("/var/lib/app/c1", spec);
    /// assert!(opts.spec.is_some());
    /// ```
    pub fn from_spec(bundle: impl Into<PathBuf>, spec: Spec) -> CreateOptions {
        CreateOptions {
            bundle: bundle.into(),
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn stdio(&self) -> StdioSet<'_> {
        StdioSet([&self.stdin, &self.stdout, &self.stderr])
    }
}

/// Reads and parses config.json, naming the file in every error; with the parse's warnings.
pub(crate) fn load_spec(bundle: &Path) -> Result<(Spec, Vec<String>)> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|e| Error::Config {
        path: path.clone(),
        field: None,
        msg: crate::fail::io_text(&e),
    })?;
    parse_at(&path, &data, "/process")
}

/// Parses a config.json as `create` (and runc) does: runtime-spec's field names, matched
/// case-insensitively as Go does; null or absent fields take their zero value (`process.user`
/// absent is uid 0); capability names runc does not know are ignored. An error names the
/// offending field.
///
/// ```
/// let spec = libcontainer::parse_config(br#"{"ociVersion": "1.3.0", "root": {"path": "rootfs"},
///     "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}"#).unwrap();
/// assert_eq!(spec.root().as_ref().unwrap().path().to_str(), Some("rootfs"));
/// let err = libcontainer::parse_config(br#"{"ociVersion": "1.3.0", "process": {"args": 3}}"#)
///     .unwrap_err();
/// assert!(err.to_string().contains("process.args"), "{err}");
/// match err {
///     libcontainer::Error::Config { field, .. } => assert_eq!(field.as_deref(), Some("process.args")),
///     e => panic!("{e:?}"),
/// }
/// ```
pub fn parse_config(data: &[u8]) -> Result<Spec> {
    parse_at(Path::new("config.json"), data, "/process").map(|(s, _)| s)
}

/// Parses a process.json (`exec --process`) as runc does (see [`parse_config`]); with the
/// warnings of the parse (capability names ignored), which the caller shows.
///
/// ```
/// let (p, warnings) = libcontainer::parse_process(br#"{"Args": ["id"], "cwd": "/"}"#).unwrap();
/// assert_eq!(p.user().uid(), 0);
/// assert_eq!(p.args().as_ref().unwrap()[0], "id");
/// assert!(warnings.is_empty());
/// ```
pub fn parse_process(data: &[u8]) -> Result<(oci_spec::runtime::Process, Vec<String>)> {
    parse_at(Path::new("process.json"), data, "")
}

fn parse_at<T: serde::de::DeserializeOwned>(
    path: &Path,
    data: &[u8],
    process: &str,
) -> Result<(T, Vec<String>)> {
    use crate::gojson::Problem;
    crate::gojson::parse(data, process).map_err(|p| match p {
        Problem::Invalid { field, msg } => {
            let what = if process.is_empty() {
                "process"
            } else {
                "config"
            };
            let (field, msg) = match field.as_str() {
                "." => (None, format!("invalid {what}: {msg}")),
                f => (Some(f.to_string()), format!("invalid {what}: {f}: {msg}")),
            };
            Error::Config {
                path: path.to_path_buf(),
                field,
                msg,
            }
        }
        Problem::Refused { field, msg } => Error::config(field, msg),
    })
}

/// The `linux.resources` fields that are set, devices aside (the fields a cgroup would apply).
fn limit_fields(r: Option<&oci_spec::runtime::LinuxResources>) -> Vec<String> {
    let Some(r) = r else { return Vec::new() };
    let mut only_devices = r.clone();
    only_devices.set_devices(None);
    let json = serde_json::to_value(&only_devices).unwrap_or_default();
    json.as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// With no cgroup (`--cgroup-manager disabled`), limits cannot take effect: refused rather than
/// ignored (devices alone are fine: the device rules are the mount plan's too).
fn refuse_limits(r: Option<&oci_spec::runtime::LinuxResources>) -> Result<()> {
    let set = limit_fields(r);
    if set.is_empty() {
        return Ok(());
    }
    Err(Error::config(
        "linux.resources",
        format!(
            "linux.resources {set:?}: limits need a cgroup, and the cgroup manager is disabled"
        ),
    ))
}

/// The container's cgroup manager for `driver`, from the config's cgroupsPath and resources,
/// with the warning to give when rootless leaves the container without one.
pub(crate) fn cgroup_manager(
    driver: CgroupDriver,
    rootless: crate::Rootless,
    spec: &Spec,
    id: &str,
) -> Result<(cgroups::Manager, Option<String>)> {
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let mut warning = None;
    let mut cgroup = match driver {
        CgroupDriver::Cgroupfs => {
            let m = cgroups::Manager::new(cgroups_path, id)?;
            match rootless
                .enabled()
                .then(|| crate::rootless::not_permitted(m.saved()))
                .flatten()
            {
                Some(dir) => {
                    let set = limit_fields(resources.as_ref());
                    if !set.is_empty() {
                        warning = Some(format!(
                            "rootless: no permission to create the cgroup {}, so the container \
                             runs without one: linux.resources {set:?} not applied",
                            dir.display()
                        ));
                    }
                    cgroups::Manager::disabled()
                }
                None => m,
            }
        }
        // Rootless: the caller's own systemd instance (user@UID.service), whose subtree is
        // delegated to it; root in a user namespace mapped to the host's root stays on the
        // system instance.
        CgroupDriver::Systemd if rootless.enabled() && cgroups::dbus::host_uid() != 0 => {
            let path = cgroups_path.map(|p| p.to_string_lossy());
            cgroups::Manager::new_systemd_user(path.as_deref(), id)?
        }
        CgroupDriver::Systemd => {
            cgroups::Manager::new_systemd(cgroups_path.map(|p| p.to_string_lossy()).as_deref(), id)?
        }
        CgroupDriver::Disabled => {
            refuse_limits(resources.as_ref())?;
            cgroups::Manager::disabled()
        }
    };
    if cgroup.is_systemd() {
        // Applied by `add` once the unit exists (it is started with the init's pid).
        cgroup.set_start_resources(resources);
    }
    Ok((cgroup, warning))
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

/// The create side of the spawn.
struct CreateJob<'a> {
    plan: Plan,
    dir: &'a StateDir,
    record: Record,
    listener: RawFd,
    /// The stdio fds `plan.proc.stdio` names, open until the clone.
    stdio_fds: Vec<OwnedFd>,
    /// The createContainer hooks' stdout and stderr, quoted when one fails.
    hook_out: Option<[File; 2]>,
}

impl CreateJob<'_> {
    /// Records `pid` so a killed `create` can be cleaned up.
    fn record_pid(&mut self, pid: i32) -> Result<()> {
        self.record.pid = Some(pid);
        self.record.pid_start = state::proc_stat(pid).map(|(s, _)| s);
        self.dir.write(&self.record)
    }

    fn proceed(chan: Chan, fds: &[RawFd]) -> Result<()> {
        chan.send(Msg::Proceed, fds)
            .map_err(|e| Error::errno("signalling the container process", e))
    }
}

impl Job for CreateJob<'_> {
    fn clone_flags(&self) -> u64 {
        self.plan.ns.clone_flags
    }

    fn proc(&self) -> &ProcPlan {
        &self.plan.proc
    }

    fn before_clone(&mut self, v1_tasks: Vec<RawFd>) -> Result<Vec<OwnedFd>> {
        self.plan.cgroup_join = v1_tasks;
        // Id-mapped trees need the host's privileges: made here, inherited by the child.
        let mut keep = self.plan.rootfs.prepare_host()?;
        keep.append(&mut self.stdio_fds);
        Ok(keep)
    }

    fn child_fds(&self, out: &mut Vec<RawFd>) {
        // Not the state directory's fd above all: the init must not hold its lock while it
        // waits for `start`, which takes it.
        out.push(self.listener);
        out.extend(self.plan.ns.join_fds());
    }

    fn child(&mut self, chan: Chan) -> ! {
        crate::init::first_child(&mut self.plan, chan, self.listener)
    }

    fn started(&mut self, pid: i32) -> Result<()> {
        self.record_pid(pid)
    }

    fn before_proceed(&mut self, pid: i32) -> Result<()> {
        if self.plan.ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0 {
            self.plan.ns.write_maps(pid)?;
        }
        Ok(())
    }

    fn message(&mut self, chan: Chan, msg: Msg, fds: Fds, pid: i32) -> Result<Flow> {
        match msg {
            Msg::WriteIdMaps => {
                self.plan.ns.write_maps(pid)?;
                Self::proceed(chan, &[])?;
            }
            Msg::RuntimeHooks => {
                let h = self.plan.spec.hooks().clone().unwrap_or_default();
                let bundle = &self.record.bundle;
                // prestart sees "created", as crun's do and as runtime-tools' hooks_stdin
                // checks (runc: "creating"); createRuntime and createContainer "creating", as
                // runc's.
                hooks::run(
                    Kind::Prestart,
                    h.prestart().as_deref().unwrap_or_default(),
                    &hook_state(&self.record, Status::Created, pid),
                    Some(bundle),
                )?;
                hooks::run(
                    Kind::CreateRuntime,
                    h.create_runtime().as_deref().unwrap_or_default(),
                    &hook_state(&self.record, Status::Creating, pid),
                    Some(bundle),
                )?;
                let state = hook_state(&self.record, Status::Creating, hooks::inner_pid(pid));
                let [state, out, err] = hooks::child_fds(&state)?;
                Self::proceed(chan, &[state.as_raw_fd(), out.as_raw_fd(), err.as_raw_fd()])?;
                self.hook_out = Some([out, err]);
            }
            Msg::Created => return Ok(Flow::Done),
            msg => return Err(spawn::unexpected(self.what(), msg, fds)),
        }
        Ok(Flow::Continue)
    }

    fn eof_is_exec(&self) -> bool {
        false
    }

    fn error(&self, f: &Fail) -> Error {
        match f.step {
            crate::fail::Step::Hook(code) => hooks::error(
                code,
                f,
                self.plan.hooks_of(true),
                self.plan.hooks_of(false),
                self.hook_out.as_ref().map(|[o, e]| [o, e]),
            ),
            _ => self.plan.error(f),
        }
    }

    fn what(&self) -> &'static str {
        "container process"
    }
}

/// The OCI state that hooks read on stdin, in runc's key order (annotations sorted, as Go
/// writes maps).
pub(crate) fn hook_state(r: &Record, status: Status, pid: i32) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct HookState<'a> {
        #[serde(rename = "ociVersion")]
        oci_version: &'a str,
        id: &'a str,
        status: Status,
        #[serde(skip_serializing_if = "is_zero")]
        pid: i32,
        bundle: &'a Path,
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        annotations: std::collections::BTreeMap<&'a String, &'a String>,
    }
    fn is_zero(p: &i32) -> bool {
        *p <= 0
    }
    let s = HookState {
        oci_version: state::OCI_VERSION,
        id: &r.id,
        status,
        pid,
        bundle: &r.bundle,
        annotations: r.config.annotations().iter().flatten().collect(),
    };
    serde_json::to_vec(&s).unwrap_or_default()
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

pub(crate) fn send_console(socket: &Path, master: BorrowedFd<'_>) -> Result<()> {
    send_fd(socket, "console socket", b"/dev/ptmx", master)
}

/// `--pidfd-socket` (runc 1.2): the process's pidfd, for callers that want to signal or wait
/// without pid reuse races.
pub(crate) fn send_pidfd(socket: &Path, pidfd: BorrowedFd<'_>) -> Result<()> {
    send_fd(socket, "pidfd socket", b"pidfd", pidfd)
}

fn send_fd(socket: &Path, what: &str, name: &[u8], fd: BorrowedFd<'_>) -> Result<()> {
    let s =
        UnixStream::connect(socket).ctx(|| format!("connecting to {what} {}", socket.display()))?;
    sys::sock::send(s.as_raw_fd(), name, &[fd.as_raw_fd()])
        .map_err(|e| Error::errno(format!("sending to {what} {}", socket.display()), e))
}

/// Who asks for the container, which decides where its pty may go.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// `create`: returns the init's `Process` (`Console::Return` can hand it the pty), and
    /// nobody waits to copy the pty (`Console::Proxy` is refused, as runc refuses a terminal
    /// without a console socket).
    Create,
    /// `run`: returns no `Process`; with `detach` nobody copies the pty either.
    Run { detach: bool },
}

/// What `create` made: the init and the caller's ends of its stdio.
pub(crate) struct Created {
    pub spawned: Spawned,
    pub pipes: [Option<File>; 3],
}

impl Runtime {
    pub(crate) fn create_inner(
        &self,
        id: &str,
        opts: &CreateOptions,
        caller: Caller,
    ) -> Result<Created> {
        state::validate_id(id)?;
        let bundle = std::path::absolute(&opts.bundle)
            .ctx(|| format!("bundle {}", opts.bundle.display()))?;
        let (mut spec, parse_warnings) = match &opts.spec {
            Some(s) => (s.clone(), Vec::new()),
            None => load_spec(&bundle)?,
        };
        // NOTIFY_SOCKET: its directory is mounted into the container, so it must exist before
        // the mounts are planned; a failure from here on removes it (the guard's drop).
        let mut early = Undo {
            dir: None,
            cgroup: None,
        };
        if crate::notify::host_socket().is_some() {
            let d = StateDir::create(self.root(), id)?;
            let path = d.path.clone();
            early.dir = Some(d);
            crate::notify::prepare(&mut spec, &path)?;
        }
        // A root filesystem to make: recorded in the state dir before it is made, so a failure
        // (or a SIGKILL, then `delete --force`) removes whatever part of it exists.
        let source = match &opts.rootfs_source {
            Some(s) => Some(s.clone()),
            None => crate::RootfsSource::from_annotations(&spec)?,
        };
        let mut child_overlay = None;
        let mut passwd_root = None;
        if let Some(src) = &source {
            src.validate(&spec)?;
            if early.dir.is_none() {
                early.dir = Some(StateDir::create(self.root(), id)?);
            }
            let d = early.dir.as_ref().expect("just made");
            let made = src.plan(&d.path)?;
            d.write_cowfs(&made)?;
            child_overlay = src.make(&made, &spec)?;
            passwd_root = src.passwd_root();
            let mut root = spec.root().clone().unwrap_or_default();
            root.set_path(made.mountpoint.clone());
            spec.set_root(Some(root));
        }
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let detached = matches!(caller, Caller::Create | Caller::Run { detach: true });
        if terminal && detached && opts.console == Console::Proxy {
            return Err(Error::config(
                "process.terminal",
                "cannot allocate tty if husk will detach without setting console socket",
            ));
        }
        if terminal && caller != Caller::Create && opts.console == Console::Return {
            return Err(Error::config(
                "process.terminal",
                "Console::Return hands the pty master to the caller of create; run cannot: use Console::Proxy or Console::Socket",
            ));
        }
        if matches!(opts.console, Console::Socket(_)) && !terminal {
            return Err(Error::config(
                "process.terminal",
                "cannot use console socket if the container does not allocate a tty (process.terminal is false)",
            ));
        }
        let stdio = opts.stdio();
        if terminal && !stdio.all_inherit() {
            return Err(Error::config(
                "process.terminal",
                "a container with a terminal has the pty as its stdio: leave stdin, stdout and stderr inherited",
            ));
        }
        let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
        let (cgroup, cgroup_warning) =
            cgroup_manager(opts.cgroup_driver, opts.rootless, &spec, id)?;
        crate::rootless::check(&spec)?;
        let view = crate::ResourceView::for_spec(&spec, opts.resource_view.as_ref())?;
        let mut view_warning = None;
        if view != crate::ResourceView::Off {
            if early.dir.is_none() {
                early.dir = Some(StateDir::create(self.root(), id)?);
            }
            let d = early.dir.as_ref().expect("just made");
            view_warning = crate::view::prepare(
                &view,
                &mut spec,
                self.root(),
                &d.path,
                id,
                cgroup.saved(),
                opts.procview_binary.as_deref(),
            )?;
        }
        let mut plan = Plan::build(
            spec.clone(),
            &PlanOptions {
                bundle: &bundle,
                no_pivot: opts.no_pivot,
                preserve_fds: opts.preserve_fds,
                listen_fds: listen_fds(),
                keyring_id: (!opts.no_new_keyring).then_some(id),
                cgroup_dirs: cgroup.saved().dirs.clone(),
                passwd_root: child_overlay.as_ref().and(passwd_root),
            },
        )?;
        if let Some(data) = child_overlay {
            plan.rootfs.mount_overlay_in_child(data);
        }
        for w in parse_warnings
            .into_iter()
            .chain(cgroup_warning)
            .chain(view_warning)
            .chain(std::mem::take(&mut plan.proc.warnings))
        {
            self.handler.warn(id, &w);
        }
        let dir = match early.dir.take() {
            Some(d) => d,
            None => StateDir::create(self.root(), id)?,
        };
        let mut undo = Undo {
            dir: None,
            cgroup: None,
        };
        let record = Record::creating(id, &bundle, spec, cgroup.saved(), opts.no_new_keyring);
        let poststop = record
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .unwrap_or_default();
        // Serialized only for a config that has poststop hooks (create's common path has none).
        let stopped = if poststop.is_empty() {
            Vec::new()
        } else {
            hook_state(&record, Status::Stopped, 0)
        };
        let result = (|| {
            dir.write(&record)?;
            // Someone else's cgroup: the config names the wrong one.
            cgroup.check_existing().map_err(|e| {
                let msg = e.to_string();
                Error::config("linux.cgroupsPath", msg.trim_start_matches("cgroup: "))
            })?;
            undo.cgroup = Some(&cgroup);
            cgroup.create()?;
            if let Some(r) = resources
                .as_ref()
                .filter(|_| !cgroup.saved().dirs.is_empty())
            {
                for w in cgroups::resources::ignored_fields(r, cgroup.saved().layout) {
                    self.handler.warn(id, &w);
                }
            }
            if let Some(r) = resources.as_ref().filter(|_| cgroup.applies_on_create()) {
                cgroup.apply(r)?;
            }
            // Bound through the directory fd: the path stays short whatever the root and id.
            let sock = format!("/proc/self/fd/{}/{START_SOCK}", dir.fd().as_raw_fd());
            let listener = UnixListener::bind(&sock)
                .ctx(|| format!("creating {}", dir.path.join(START_SOCK).display()))?;
            let (child_stdio, pipes) = stdio.prepare()?;
            plan.proc.stdio = child_stdio.fds;
            let mut job = CreateJob {
                plan,
                dir: &dir,
                record,
                listener: listener.as_raw_fd(),
                stdio_fds: child_stdio.into_owned(),
                hook_out: None,
            };
            let mut spawned = spawn::spawn(&mut job, &cgroup)?;
            drop(listener);
            let handed = (|| {
                job.record.phase = Phase::Created;
                job.record_pid(spawned.pid)?;
                if let Console::Socket(sock) = &opts.console {
                    if let Some(master) = spawned.console.take() {
                        send_console(sock, master.as_fd())?;
                    }
                }
                if let Some(sock) = &opts.pidfd_socket {
                    send_pidfd(sock, spawned.pidfd.as_fd())?;
                }
                if let Some(p) = &opts.pid_file {
                    write_pid_file(p, spawned.pid)?;
                }
                Ok(())
            })();
            if let Err(e) = handed {
                // The init waits for `start`: without a cgroup nothing else would end it, and
                // as the caller's child it must be reaped.
                let fd = spawned.pidfd.as_raw_fd();
                let _ = sys::proc::signal_pidfd(fd, libc::SIGKILL);
                let _ = sys::proc::wait_pidfd(fd);
                return Err(e);
            }
            Ok(Created { spawned, pipes })
        })();
        match result {
            Ok(created) => {
                undo.cgroup = None;
                drop(undo);
                self.handler.emit(crate::Notice::Created {
                    id,
                    pid: created.spawned.pid,
                });
                Ok(created)
            }
            Err(e) => {
                // The init (if any) was killed by spawn's guard; remove the rest. The container
                // existed: its poststop hooks run, as runc's do when it destroys a container
                // whose create failed; their failures are warnings.
                undo.dir = Some(dir);
                drop(undo);
                for w in hooks::run_all(Kind::Poststop, &poststop, &stopped, Some(&bundle)) {
                    self.handler.warn(id, &w.to_string());
                }
                Err(e)
            }
        }
    }
}
