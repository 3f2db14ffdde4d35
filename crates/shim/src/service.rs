//! The task service: containerd's shim v2 `Task` API over ttrpc, each request a call into
//! libcontainer in this process. One service serves every container of the shim's group.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::UnboundedSender;

use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use containerd_shim_protos::ttrpc;
use libcontainer::{CgroupDriver, Console, CreateOptions, ExecOptions, RestoreOptions};

use crate::error::{invalid, lib, not_found, precondition};
use crate::events::{self, Publisher};
use crate::monitor::{Monitor, Sink};
use crate::procs::{runtime, timestamp, Exit, IoPaths, PendingRestore, Proc, Task};
use crate::start::{default_root, Saved, INIT_PID_FILE, SAVED_FILE};
use crate::{metrics, mounts, stdio};

type R<T> = ttrpc::Result<T>;

/// containerd's runc options (`io.containerd.runc.v1.Options`), when that is what `any` holds.
pub fn runc_options(any: &Any) -> Result<Option<RuncOptions>, String> {
    if !any.type_url.ends_with("containerd.runc.v1.Options") {
        return Ok(None);
    }
    RuncOptions::parse_from_bytes(&any.value)
        .map(Some)
        .map_err(|e| format!("decoding the runtime options: {e}"))
}

pub struct Service {
    namespace: String,
    tasks: Mutex<HashMap<String, Task>>,
    exited: Condvar,
    /// Wakes the asynchronous Waits when a process exits.
    pub exit_notify: tokio::sync::Notify,
    publisher: Publisher,
    monitor: Arc<Monitor>,
    shutdown: UnboundedSender<()>,
}

impl Service {
    pub fn new(
        namespace: &str,
        publisher: Publisher,
        monitor: Arc<Monitor>,
        shutdown: UnboundedSender<()>,
    ) -> Arc<Service> {
        Arc::new(Service {
            namespace: namespace.into(),
            tasks: Mutex::new(HashMap::new()),
            exited: Condvar::new(),
            exit_notify: tokio::sync::Notify::new(),
            publisher,
            monitor,
            shutdown,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Task>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn with_task<T>(&self, id: &str, f: impl FnOnce(&mut Task) -> R<T>) -> R<T> {
        let mut tasks = self.lock();
        let t = tasks
            .get_mut(id)
            .ok_or_else(|| not_found(format!("container {id}")))?;
        f(t)
    }

    pub(crate) fn container(&self, id: &str) -> R<libcontainer::Container> {
        let rt = self.with_task(id, |t| Ok(t.runtime()))?;
        rt.container(id).map_err(lib)
    }

    /// Blocks until the process has an exit, for at most `limit`.
    fn wait_exit(&self, id: &str, exec_id: &str, limit: Duration) -> R<Exit> {
        let deadline = std::time::Instant::now() + limit;
        let mut tasks = self.lock();
        loop {
            let t = tasks
                .get(id)
                .ok_or_else(|| not_found(format!("container {id}")))?;
            let p = t
                .proc(exec_id)
                .ok_or_else(|| not_found(format!("process {exec_id} of {id}")))?;
            if let Some(e) = p.exit {
                return Ok(e);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(precondition(format!(
                    "process {exec_id} of {id} did not exit"
                )));
            }
            tasks = self
                .exited
                .wait_timeout(tasks, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub(crate) fn create_task(&self, req: &api::CreateTaskRequest) -> R<u32> {
        let id = &req.id;
        if self.lock().contains_key(id) {
            return Err(crate::error::status(
                ttrpc::Code::ALREADY_EXISTS,
                format!("container {id}: already exists"),
            ));
        }
        let opts = match req.options.as_ref() {
            Some(a) => runc_options(a).map_err(invalid)?,
            None => None,
        }
        .unwrap_or_default();
        let root = if opts.root.is_empty() {
            default_root(&self.namespace)
        } else {
            PathBuf::from(&opts.root).join(&self.namespace)
        };
        let bundle = PathBuf::from(&req.bundle);
        let saved = serde_json::to_vec(&Saved { root: root.clone() }).unwrap_or_default();
        std::fs::write(bundle.join(SAVED_FILE), saved)
            .map_err(|e| invalid(format!("writing {SAVED_FILE} in {}: {e}", req.bundle)))?;
        let rootfs = bundle.join("rootfs");
        let mounted = !req.rootfs.is_empty();
        if mounted {
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| invalid(format!("creating {}: {e}", rootfs.display())))?;
            mounts::mount_rootfs(&req.rootfs, &rootfs).map_err(invalid)?;
        }
        let restoring = !req.checkpoint.is_empty();
        let r = if restoring {
            // Restored at Start; until then the task is created with no process.
            Ok((
                0,
                Proc {
                    io: io_paths(req),
                    ..Default::default()
                },
            ))
        } else {
            self.create_container(req, &root, &bundle, &opts)
        };
        if r.is_err() && mounted {
            mounts::unmount_rootfs(&rootfs);
        }
        let (pid, init) = r?;
        let restore = restoring.then(|| PendingRestore {
            req: req.clone(),
            opts: opts.clone(),
        });
        self.lock().insert(
            id.clone(),
            Task {
                bundle,
                root,
                mounted,
                started: false,
                paused: false,
                init,
                execs: HashMap::new(),
                restore,
            },
        );
        let mut e = ev::TaskCreate::new();
        e.container_id = id.clone();
        e.bundle = req.bundle.clone();
        e.rootfs = req.rootfs.clone();
        let mut io = ev::TaskIO::new();
        io.stdin = req.stdin.clone();
        io.stdout = req.stdout.clone();
        io.stderr = req.stderr.clone();
        io.terminal = req.terminal;
        e.io = Some(io).into();
        e.pid = pid;
        self.publisher.publish(events::create(e));
        Ok(pid)
    }

    fn create_container(
        &self,
        req: &api::CreateTaskRequest,
        root: &Path,
        bundle: &Path,
        opts: &RuncOptions,
    ) -> R<(u32, Proc)> {
        let (o, io) = create_options(req, bundle, opts)?;
        let mut c = runtime(root).create(&req.id, &o).map_err(lib)?;
        let process = c.take_process();
        let r = self.adopt_init(&c, bundle, req, io, process);
        if r.is_err() {
            let _ = c.delete(true);
        }
        r
    }

    /// Takes over the created init: its pid file for a later `delete`, its terminal copy and
    /// its pidfd and OOM watch in the monitor.
    fn adopt_init(
        &self,
        c: &libcontainer::Container,
        bundle: &Path,
        req: &api::CreateTaskRequest,
        mut io: stdio::Opened,
        process: Option<libcontainer::Process>,
    ) -> R<(u32, Proc)> {
        let mut process = process.ok_or_else(|| invalid("the library returned no init process"))?;
        let pid = process.pid() as u32;
        let _ = std::fs::write(bundle.join(INIT_PID_FILE), pid.to_string());
        let mut p = Proc {
            pid,
            io: io_paths(req),
            ..Default::default()
        };
        p.pty = stdio::pty_of(&process).map_err(invalid)?;
        let a = stdio::attach(&mut io, &mut process).map_err(invalid)?;
        p.stdin = a.stdin;
        p.out_done = a.out_done;
        let pidfd = Arc::new(process.into_pidfd());
        p.pidfd = Some(pidfd.clone());
        self.monitor
            .watch_exit(c.id(), "", pidfd)
            .map_err(|e| invalid(format!("watching the init: {e}")))?;
        if let Ok(w) = c.oom_watch() {
            let _ = self.monitor.watch_oom(c.id(), w);
        }
        Ok((pid, p))
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> R<u32> {
        let (spec, paths, rt) = self.with_task(id, |t| {
            let paths = t.execs.get(exec_id).map(|p| p.io.clone());
            let p = t
                .execs
                .get_mut(exec_id)
                .ok_or_else(|| not_found(format!("exec {exec_id} of {id}")))?;
            let spec = p.pending.take().ok_or_else(|| {
                precondition(format!("exec {exec_id} of {id} was already started"))
            })?;
            Ok((spec, paths.unwrap_or_default(), t.runtime()))
        })?;
        let c = rt.container(id).map_err(lib)?;
        let mut io = stdio::open(&paths.stdin, &paths.stdout, &paths.stderr, paths.terminal)
            .map_err(invalid)?;
        let mut o = ExecOptions {
            process: Some(spec),
            ..Default::default()
        };
        o.stdin = std::mem::take(&mut io.stdin);
        o.stdout = std::mem::take(&mut io.stdout);
        o.stderr = std::mem::take(&mut io.stderr);
        o.console = Console::Return;
        let mut process = c.spawn_exec(&o).map_err(lib)?;
        let pid = process.pid() as u32;
        let pty = stdio::pty_of(&process).map_err(invalid)?;
        let a = stdio::attach(&mut io, &mut process).map_err(invalid)?;
        let pidfd = Arc::new(process.into_pidfd());
        self.with_task(id, |t| {
            if let Some(p) = t.execs.get_mut(exec_id) {
                p.pid = pid;
                p.pidfd = Some(pidfd.clone());
                p.pty = pty;
                p.out_done = a.out_done;
                p.stdin = a.stdin;
            }
            Ok(())
        })?;
        self.monitor
            .watch_exit(id, exec_id, pidfd)
            .map_err(|e| invalid(format!("watching exec {exec_id}: {e}")))?;
        let mut e = ev::TaskExecStarted::new();
        e.container_id = id.into();
        e.exec_id = exec_id.into();
        e.pid = pid;
        self.publisher.publish(events::exec_started(e));
        Ok(pid)
    }

    pub(crate) fn delete_task(&self, id: &str, exec_id: &str) -> R<api::DeleteResponse> {
        let (started, exited, rt) = self.with_task(id, |t| {
            let p = t
                .proc(exec_id)
                .ok_or_else(|| not_found(format!("process {exec_id} of {id}")))?;
            Ok((t.started(exec_id), p.exit.is_some(), t.runtime()))
        })?;
        if started && !exited {
            return Err(precondition(format!(
                "cannot delete {}: it is running",
                if exec_id.is_empty() { id } else { exec_id }
            )));
        }
        let mut resp = api::DeleteResponse::new();
        if !exec_id.is_empty() {
            let p = self.with_task(id, |t| Ok(t.execs.remove(exec_id)))?;
            if let Some(p) = p {
                resp.pid = p.pid;
                if let Some(e) = p.exit {
                    resp.exit_status = e.status;
                    resp.exited_at = Some(timestamp(e.at)).into();
                }
            }
            return Ok(resp);
        }
        // A restore that never started has no container and no exit.
        if self.with_task(id, |t| Ok(t.init.pid == 0))? {
            let t = self.lock().remove(id);
            if let Some(t) = t.filter(|t| t.mounted) {
                mounts::unmount_rootfs(&t.bundle.join("rootfs"));
            }
            return Ok(resp);
        }
        // A created init that never started is killed, as runc's shim deletes it.
        match rt.container(id) {
            Ok(c) => c.delete(!started).map_err(lib)?,
            Err(libcontainer::Error::NotFound(_)) => {}
            Err(e) => return Err(lib(e)),
        }
        let exit = self.wait_exit(id, "", Duration::from_secs(10))?;
        let t = self.lock().remove(id);
        let Some(t) = t else {
            return Err(not_found(format!("container {id}")));
        };
        if t.mounted {
            mounts::unmount_rootfs(&t.bundle.join("rootfs"));
        }
        resp.pid = t.init.pid;
        resp.exit_status = exit.status;
        resp.exited_at = Some(timestamp(exit.at)).into();
        let mut e = ev::TaskDelete::new();
        e.container_id = id.into();
        e.pid = t.init.pid;
        e.exit_status = exit.status;
        e.exited_at = Some(timestamp(exit.at)).into();
        self.publisher.publish(events::delete(e));
        Ok(resp)
    }
}

impl Service {
    /// The restore a Create with a checkpoint left for Start: the library restores the
    /// container and hands its init over like a created one.
    fn restore_init(&self, id: &str, pending: PendingRestore) -> R<()> {
        let (root, bundle) = self.with_task(id, |t| Ok((t.root.clone(), t.bundle.clone())))?;
        let PendingRestore { req, opts } = pending;
        let (o, io) = create_options(&req, &bundle, &opts)?;
        let mut r = RestoreOptions::new(&req.checkpoint, &bundle);
        r.create = o;
        r.detach = true;
        let work = bundle.join("work");
        if work.is_dir() {
            r.work_path = Some(work);
        }
        let rt = runtime(&root);
        let process = rt.restore_process(id, &r).map_err(lib)?;
        let c = rt.container(id).map_err(lib)?;
        match self.adopt_init(&c, &bundle, &req, io, Some(process)) {
            Ok((_, p)) => self.with_task(id, |t| {
                t.init = p;
                Ok(())
            }),
            Err(e) => {
                let _ = c.delete(true);
                Err(e)
            }
        }
    }
}

fn io_paths(req: &api::CreateTaskRequest) -> IoPaths {
    IoPaths {
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        terminal: req.terminal,
    }
}

/// The library's options for a Create (or its restore): the bundle, stdio and runc options.
fn create_options(
    req: &api::CreateTaskRequest,
    bundle: &Path,
    opts: &RuncOptions,
) -> R<(CreateOptions, stdio::Opened)> {
    let mut io =
        stdio::open(&req.stdin, &req.stdout, &req.stderr, req.terminal).map_err(invalid)?;
    let mut o = CreateOptions::new(bundle);
    o.stdin = std::mem::take(&mut io.stdin);
    o.stdout = std::mem::take(&mut io.stdout);
    o.stderr = std::mem::take(&mut io.stderr);
    o.console = Console::Return;
    o.no_pivot = opts.no_pivot_root;
    o.no_new_keyring = opts.no_new_keyring;
    if opts.systemd_cgroup {
        o.cgroup_driver = CgroupDriver::Systemd;
    }
    Ok((o, io))
}

impl Sink for Service {
    fn exited(&self, container: &str, exec: &str, status: i32) {
        let at = SystemTime::now();
        let (pid, out_done) = {
            let mut tasks = self.lock();
            let Some(p) = tasks.get_mut(container).and_then(|t| t.proc_mut(exec)) else {
                return;
            };
            if let Some(w) = p.stdin.take() {
                stdio::close_stdin(&w);
            }
            (p.pid, p.out_done.take())
        };
        // The output reaches containerd before the exit does (bounded: a process left in the
        // background may hold the pipe or pty open).
        if let Some(rx) = out_done {
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
        {
            let mut tasks = self.lock();
            if let Some(p) = tasks.get_mut(container).and_then(|t| t.proc_mut(exec)) {
                p.exit = Some(Exit {
                    status: status as u32,
                    at,
                });
                p.pty = None;
            }
        }
        self.exited.notify_all();
        self.exit_notify.notify_waiters();
        let mut e = ev::TaskExit::new();
        e.container_id = container.into();
        e.id = if exec.is_empty() { container } else { exec }.into();
        e.pid = pid;
        e.exit_status = status as u32;
        e.exited_at = Some(timestamp(at)).into();
        self.publisher.publish(events::exit(e));
    }

    fn oom(&self, container: &str) {
        let mut e = ev::TaskOOM::new();
        e.container_id = container.into();
        self.publisher.publish(events::oom(e));
    }
}

/// For the ttrpc handlers (service_api.rs).
impl Service {
    pub(crate) fn start_task(&self, id: &str, exec_id: &str) -> R<u32> {
        if !exec_id.is_empty() {
            return self.start_exec(id, exec_id);
        }
        let pending = self.with_task(id, |t| Ok(t.restore.take()))?;
        if let Some(r) = pending {
            self.restore_init(id, r)?;
        } else {
            let c = self.container(id)?;
            c.start().map_err(lib)?;
        }
        let pid = self.with_task(id, |t| {
            t.started = true;
            Ok(t.init.pid)
        })?;
        let mut e = ev::TaskStart::new();
        e.container_id = id.into();
        e.pid = pid;
        self.publisher.publish(events::start(e));
        Ok(pid)
    }
    pub(crate) fn publish(&self, e: events::Event) {
        self.publisher.publish(e)
    }
    pub(crate) fn stats_any(&self, id: &str) -> R<Any> {
        let s = self.container(id)?.stats().map_err(lib)?;
        Ok(metrics::to_any(&s))
    }
    pub(crate) fn request_shutdown(&self) {
        let _ = self.shutdown.send(());
    }
    /// The process's exit if it has one (not found: an error).
    pub(crate) fn exit_of(&self, id: &str, exec_id: &str) -> R<Option<Exit>> {
        self.with_task(id, |t| {
            t.proc(exec_id)
                .map(|p| p.exit)
                .ok_or_else(|| not_found(format!("process {exec_id} of {id}")))
        })
    }
}
