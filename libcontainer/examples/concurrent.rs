//! Runs 100 busybox containers concurrently from tokio tasks and collects their exit codes,
//! as root: `cargo run -p libcontainer --example concurrent`.
//!
//! `create` and `start` are short blocking calls, made on tokio's blocking pool; the wait for
//! each container's exit is its init's pidfd registered with tokio's reactor (`AsyncFd`), so
//! 100 running containers cost no thread each. Container `i` exits with status `i`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::error::Error;

use libcontainer::{CreateOptions, Runtime};
use tokio::io::unix::AsyncFd;

type BoxError = Box<dyn Error + Send + Sync>;

const CONTAINERS: i32 = 100;

/// One container, from create to delete; returns its exit status.
async fn one(runtime: Runtime, bundle: std::path::PathBuf, i: i32) -> Result<i32, BoxError> {
    let id = format!("concurrent-{}-{i}", std::process::id());
    let spec = support::busybox_spec(&["sh", "-c", &format!("exit {i}")]);
    let rt = runtime.clone();
    let (container, process) = tokio::task::spawn_blocking(move || {
        let mut c = rt.create(&id, &CreateOptions::from_spec(&bundle, spec))?;
        let p = c.take_process().expect("create hands out the init");
        c.start()?;
        Ok::<_, libcontainer::Error>((c, p))
    })
    .await??;
    // The pidfd turns readable when the init exits; only then is try_wait asked.
    // SAFETY: a Pidfd owns its fd for its whole life and as_raw_fd always returns that fd,
    // which is what tokio needs of an fd it watches.
    let pidfd = unsafe { AsyncFd::register(process.into_pidfd()) }.map_err(std::io::Error::from)?;
    let status = loop {
        let mut ready = pidfd.readable().await?;
        match ready.get_inner().try_wait()? {
            Some(status) => break status,
            None => ready.clear_ready(),
        }
    };
    tokio::task::spawn_blocking(move || container.delete(false)).await??;
    Ok(status)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), BoxError> {
    let dir = support::temp_dir("concurrent");
    let bundle = dir.join("bundle");
    support::busybox_rootfs(&bundle)?;
    let runtime = Runtime::new(dir.join("state"));

    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONTAINERS {
        let (rt, b) = (runtime.clone(), bundle.clone());
        tasks.spawn(async move { (i, one(rt, b, i).await) });
    }
    let mut wrong = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined?;
        match result {
            Ok(status) if status == i => {}
            other => wrong.push(format!("container {i}: {other:?}")),
        }
    }
    let left = runtime.list()?;
    std::fs::remove_dir_all(&dir)?;
    if !wrong.is_empty() || !left.is_empty() {
        return Err(format!("{wrong:?}; left behind: {left:?}").into());
    }
    println!(
        "{CONTAINERS} containers ran concurrently, every exit code right, in {:.2?}",
        started.elapsed()
    );
    Ok(())
}
