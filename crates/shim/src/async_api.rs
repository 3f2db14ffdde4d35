//! containerd's `Task` service for ttrpc's asynchronous server: every connection (containerd
//! keeps one per task) is a task of one current-thread runtime instead of ttrpc's five threads
//! per connection, and Wait is a future woken by the monitor rather than a blocked thread. The
//! requests themselves run on tokio's blocking pool (service_api.rs): the library's calls
//! block, and a pool thread that has been idle for a while exits, its stack with it.

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim_protos::api::{self, Empty};
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::ttrpc::{self, r#async::TtrpcContext};

use crate::error::invalid;
use crate::procs::timestamp;
use crate::service::Service;

type R<T> = ttrpc::Result<T>;

/// The service as ttrpc's asynchronous server calls it.
pub struct Api(pub Arc<Service>);

/// Runs a request on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> R<T> + Send + 'static) -> R<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(invalid(format!("request failed: {e}"))))
}

#[async_trait]
impl Task for Api {
    async fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> R<api::StateResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_state(req)).await
    }

    async fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> R<api::CreateTaskResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_create(req)).await
    }

    async fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> R<api::StartResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_start(req)).await
    }

    async fn delete(&self, _: &TtrpcContext, req: api::DeleteRequest) -> R<api::DeleteResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_delete(req)).await
    }

    async fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> R<api::PidsResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_pids(req)).await
    }

    async fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_pause(req)).await
    }

    async fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_resume(req)).await
    }

    async fn checkpoint(&self, _: &TtrpcContext, req: api::CheckpointTaskRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_checkpoint(req)).await
    }

    async fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_kill(req)).await
    }

    async fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_exec(req)).await
    }

    async fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_resize_pty(req)).await
    }

    async fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_close_io(req)).await
    }

    async fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_update(req)).await
    }

    async fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> R<api::StatsResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_stats(req)).await
    }

    async fn connect(&self, _: &TtrpcContext, req: api::ConnectRequest) -> R<api::ConnectResponse> {
        let s = self.0.clone();
        blocking(move || s.rpc_connect(req)).await
    }

    async fn shutdown(&self, _: &TtrpcContext, req: api::ShutdownRequest) -> R<Empty> {
        let s = self.0.clone();
        blocking(move || s.rpc_shutdown(req)).await
    }

    async fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> R<api::WaitResponse> {
        loop {
            // Registered before the check, so an exit between the two still wakes it.
            let mut woken = std::pin::pin!(self.0.exit_notify.notified());
            woken.as_mut().enable();
            if let Some(e) = self.0.exit_of(&req.id, &req.exec_id)? {
                let mut r = api::WaitResponse::new();
                r.exit_status = e.status;
                r.exited_at = Some(timestamp(e.at)).into();
                return Ok(r);
            }
            woken.await;
        }
    }
}
