//! The requests of containerd's `Task` service, synchronous: each checks its request and calls
//! the service (service.rs), which calls the library. async_api.rs runs them for ttrpc.

use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::ttrpc;
use libcontainer::oci_spec::runtime::LinuxResources;

use crate::error::{invalid, lib, not_found, precondition, status};
use crate::events;
use crate::procs::{timestamp, IoPaths, Proc};
use crate::service::Service;
use crate::sys;

type R<T> = ttrpc::Result<T>;

/// The JSON inside the Any containerd sends for a spec fragment (`types.containerd.io/...`).
fn json_any<'a>(
    a: &'a containerd_shim_protos::protobuf::MessageField<
        containerd_shim_protos::protobuf::well_known_types::any::Any,
    >,
    what: &str,
) -> R<&'a [u8]> {
    a.as_ref()
        .map(|a| a.value.as_slice())
        .ok_or_else(|| invalid(format!("{what} is missing")))
}

impl Service {
    pub(crate) fn rpc_state(&self, req: api::StateRequest) -> R<api::StateResponse> {
        self.with_task(&req.id, |t| {
            let p = t
                .proc(&req.exec_id)
                .ok_or_else(|| not_found(format!("process {} of {}", req.exec_id, req.id)))?;
            let mut r = api::StateResponse::new();
            r.id = if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            };
            r.exec_id = req.exec_id.clone();
            r.bundle = t.bundle.to_string_lossy().into_owned();
            r.pid = p.pid;
            r.status = p.status(t.started(&req.exec_id), t.paused).into();
            r.stdin = p.io.stdin.clone();
            r.stdout = p.io.stdout.clone();
            r.stderr = p.io.stderr.clone();
            r.terminal = p.io.terminal;
            if let Some(e) = p.exit {
                r.exit_status = e.status;
                r.exited_at = Some(timestamp(e.at)).into();
            }
            Ok(r)
        })
    }

    pub(crate) fn rpc_create(&self, req: api::CreateTaskRequest) -> R<api::CreateTaskResponse> {
        let pid = self.create_task(&req)?;
        let mut r = api::CreateTaskResponse::new();
        r.pid = pid;
        Ok(r)
    }

    pub(crate) fn rpc_start(&self, req: api::StartRequest) -> R<api::StartResponse> {
        let pid = self.start_task(&req.id, &req.exec_id)?;
        let mut r = api::StartResponse::new();
        r.pid = pid;
        Ok(r)
    }

    pub(crate) fn rpc_delete(&self, req: api::DeleteRequest) -> R<api::DeleteResponse> {
        self.delete_task(&req.id, &req.exec_id)
    }

    pub(crate) fn rpc_pids(&self, req: api::PidsRequest) -> R<api::PidsResponse> {
        let pids = self.container(&req.id)?.processes().map_err(lib)?;
        let mut r = api::PidsResponse::new();
        for pid in pids {
            let mut i = api::ProcessInfo::new();
            i.pid = pid as u32;
            r.processes.push(i);
        }
        Ok(r)
    }

    pub(crate) fn rpc_pause(&self, req: api::PauseRequest) -> R<Empty> {
        self.container(&req.id)?.pause().map_err(lib)?;
        self.with_task(&req.id, |t| {
            t.paused = true;
            Ok(())
        })?;
        let mut e = ev::TaskPaused::new();
        e.container_id = req.id.clone();
        self.publish(events::paused(e));
        Ok(Empty::new())
    }

    pub(crate) fn rpc_resume(&self, req: api::ResumeRequest) -> R<Empty> {
        self.container(&req.id)?.resume().map_err(lib)?;
        self.with_task(&req.id, |t| {
            t.paused = false;
            Ok(())
        })?;
        let mut e = ev::TaskResumed::new();
        e.container_id = req.id.clone();
        self.publish(events::resumed(e));
        Ok(Empty::new())
    }

    pub(crate) fn rpc_checkpoint(&self, req: api::CheckpointTaskRequest) -> R<Empty> {
        let c = self.container(&req.id)?;
        let mut o = libcontainer::CheckpointOptions {
            image_path: req.path.clone().into(),
            ..Default::default()
        };
        if let Some(a) = req.options.as_ref() {
            if a.type_url.ends_with("containerd.runc.v1.CheckpointOptions") {
                use containerd_shim_protos::protobuf::Message;
                let co = containerd_shim_protos::shim::oci::CheckpointOptions::parse_from_bytes(
                    &a.value,
                )
                .map_err(|e| invalid(format!("checkpoint options: {e}")))?;
                o.leave_running = !co.exit;
                o.tcp_established = co.open_tcp;
                o.ext_unix_sk = co.external_unix_sockets;
                o.shell_job = co.terminal;
                o.file_locks = co.file_locks;
                if !co.work_path.is_empty() {
                    o.work_path = Some(co.work_path.into());
                }
            }
        }
        c.checkpoint(&o).map_err(lib)?;
        let mut e = ev::TaskCheckpointed::new();
        e.container_id = req.id.clone();
        e.checkpoint = req.path.clone();
        self.publish(events::checkpointed(e));
        Ok(Empty::new())
    }

    pub(crate) fn rpc_kill(&self, req: api::KillRequest) -> R<Empty> {
        let signal = req.signal as i32;
        if req.exec_id.is_empty() {
            let exited = self.with_task(&req.id, |t| Ok(t.init.exit.is_some()))?;
            if exited {
                return Err(not_found(format!("process already finished: {}", req.id)));
            }
            self.container(&req.id)?
                .kill(signal, req.all)
                .map_err(lib)?;
            return Ok(Empty::new());
        }
        let pidfd = self.with_task(&req.id, |t| {
            let p = t
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| not_found(format!("exec {} of {}", req.exec_id, req.id)))?;
            if p.exit.is_some() {
                return Err(not_found(format!(
                    "process already finished: {}",
                    req.exec_id
                )));
            }
            p.pidfd
                .clone()
                .ok_or_else(|| precondition(format!("exec {} is not started", req.exec_id)))
        })?;
        pidfd.send_signal(signal).map_err(lib)?;
        Ok(Empty::new())
    }

    pub(crate) fn rpc_exec(&self, req: api::ExecProcessRequest) -> R<Empty> {
        if req.exec_id.is_empty() {
            return Err(invalid("exec id must not be empty"));
        }
        let (spec, _warnings) =
            libcontainer::parse_process(json_any(&req.spec, "the exec's process spec")?)
                .map_err(lib)?;
        self.with_task(&req.id, |t| {
            if t.init.exit.is_some() {
                return Err(precondition(format!("container {} is stopped", req.id)));
            }
            if t.execs.contains_key(&req.exec_id) {
                return Err(status(
                    ttrpc::Code::ALREADY_EXISTS,
                    format!("id {}: already exists", req.exec_id),
                ));
            }
            t.execs.insert(
                req.exec_id.clone(),
                Proc {
                    io: IoPaths {
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        terminal: req.terminal,
                    },
                    pending: Some(spec),
                    ..Default::default()
                },
            );
            Ok(())
        })?;
        let mut e = ev::TaskExecAdded::new();
        e.container_id = req.id.clone();
        e.exec_id = req.exec_id.clone();
        self.publish(events::exec_added(e));
        Ok(Empty::new())
    }

    pub(crate) fn rpc_resize_pty(&self, req: api::ResizePtyRequest) -> R<Empty> {
        let pty = self.with_task(&req.id, |t| {
            let p = t
                .proc(&req.exec_id)
                .ok_or_else(|| not_found(format!("process {} of {}", req.exec_id, req.id)))?;
            p.pty
                .clone()
                .ok_or_else(|| precondition("the process has no terminal"))
        })?;
        sys::set_winsize(&*pty, req.width as u16, req.height as u16)
            .map_err(|e| invalid(format!("resizing the terminal: {e}")))?;
        Ok(Empty::new())
    }

    pub(crate) fn rpc_close_io(&self, req: api::CloseIORequest) -> R<Empty> {
        if req.stdin {
            self.with_task(&req.id, |t| {
                let p = t
                    .proc_mut(&req.exec_id)
                    .ok_or_else(|| not_found(format!("process {} of {}", req.exec_id, req.id)))?;
                if let Some(w) = p.stdin.take() {
                    crate::stdio::close_stdin(&w);
                }
                Ok(())
            })?;
        }
        Ok(Empty::new())
    }

    pub(crate) fn rpc_update(&self, req: api::UpdateTaskRequest) -> R<Empty> {
        let data = json_any(&req.resources, "the resources")?;
        let r: LinuxResources = serde_json::from_slice(data)
            .map_err(|e| invalid(format!("decoding the resources: {e}")))?;
        self.container(&req.id)?.update(&r).map_err(lib)?;
        Ok(Empty::new())
    }

    pub(crate) fn rpc_stats(&self, req: api::StatsRequest) -> R<api::StatsResponse> {
        let mut r = api::StatsResponse::new();
        r.stats = Some(self.stats_any(&req.id)?).into();
        Ok(r)
    }

    pub(crate) fn rpc_connect(&self, req: api::ConnectRequest) -> R<api::ConnectResponse> {
        let mut r = api::ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.task_pid = self.with_task(&req.id, |t| Ok(t.init.pid)).unwrap_or(0);
        r.version = env!("CARGO_PKG_VERSION").into();
        Ok(r)
    }

    pub(crate) fn rpc_shutdown(&self, req: api::ShutdownRequest) -> R<Empty> {
        // The shim serves a group: it goes only when its last container has.
        if req.now || self.lock().is_empty() {
            self.request_shutdown();
        }
        Ok(Empty::new())
    }
}
