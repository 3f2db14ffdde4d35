//! The serving shim: the ttrpc server on the socket `start` handed over, the monitor and the
//! event publisher; it exits when containerd shuts it down with no container left.

use std::sync::Arc;

use containerd_shim_protos::shim_async::{create_task, Task};
use containerd_shim_protos::ttrpc::r#async::transport::Listener;
use containerd_shim_protos::ttrpc::r#async::Server;

use crate::async_api::Api;
use crate::events::Publisher;
use crate::flags::Flags;
use crate::monitor::{Monitor, Sink};
use crate::service::Service;
use crate::start::{socket_path, ADDRESS_ENV, LISTEN_FD_ENV};
use crate::sys;

/// containerd's ttrpc address for events, from its environment.
const TTRPC_ADDRESS_ENV: &str = "TTRPC_ADDRESS";

/// containerd opens `log` in the bundle, a FIFO it copies into its own log: the shim's stderr
/// goes there when containerd is reading it.
fn log_to_containerd() {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    {
        let _ = sys::set_blocking(&f);
        let _ = sys::dup2(&f, 2);
    }
}

pub fn serve(flags: &Flags) -> Result<(), String> {
    sys::ignore_sigpipe();
    log_to_containerd();
    let fd: i32 = std::env::var(LISTEN_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            format!("{LISTEN_FD_ENV} is not set: the serving shim is started by `start`")
        })?;
    let listener = sys::adopt_fd(fd).map_err(|e| format!("the listening socket {fd}: {e}"))?;
    sys::set_cloexec(&listener, true).map_err(|e| format!("the listening socket: {e}"))?;
    let listener = std::os::unix::net::UnixListener::from(listener);
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("the listening socket: {e}"))?;
    let address = std::env::var(ADDRESS_ENV).unwrap_or_default();
    let publisher = Publisher::new(
        std::env::var(TTRPC_ADDRESS_ENV).unwrap_or_default(),
        flags.namespace.clone(),
    );
    let monitor = Monitor::new().map_err(|e| format!("creating the monitor: {e}"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let service = Service::new(&flags.namespace, publisher, monitor.clone(), tx);
    let sink: Arc<dyn Sink> = service.clone();
    monitor.run(sink);
    // One thread serves every connection; requests run on the blocking pool, whose threads
    // exit after a second idle.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .thread_stack_size(1 << 20)
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(|e| format!("the listening socket: {e}"))?;
        // containerd 1.x speaks `containerd.task.v2.Task`, 2.x `containerd.task.v3.Task`: the
        // same messages under two service names, both served.
        let api = |s: &Arc<Service>| -> Arc<dyn Task + Send + Sync> { Arc::new(Api(s.clone())) };
        let v3 = create_task(api(&service));
        let v2 = create_task(api(&service))
            .into_iter()
            .map(|(k, v)| {
                (
                    k.replace("containerd.task.v3.Task", "containerd.task.v2.Task"),
                    v,
                )
            })
            .collect();
        let mut server = Server::new()
            .add_listener(Listener::from(listener))
            .register_service(v3)
            .register_service(v2);
        server
            .start()
            .await
            .map_err(|e| format!("starting the ttrpc server: {e}"))?;
        let _ = rx.recv().await;
        // Let the Shutdown reply reach containerd before the socket goes.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Ok::<(), String>(())
    })?;
    if !address.is_empty() {
        let _ = std::fs::remove_file(socket_path(&address));
    }
    std::process::exit(0);
}
