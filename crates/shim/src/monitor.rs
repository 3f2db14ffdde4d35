//! One thread waits for every process exit and OOM kill of the shim's containers: pidfds
//! (readable when the process exits, then reaped with waitid on the pidfd) and OOM watches
//! (readable when the memory cgroup's OOM state changes), all in one epoll set. No SIGCHLD
//! handler and no `waitpid(-1)`: a process is only ever reaped through its own pidfd.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use libcontainer::{OomWatch, Pidfd};

use crate::sys;

pub enum Watched {
    Exit {
        container: String,
        exec: String,
        pidfd: Arc<Pidfd>,
    },
    Oom {
        container: String,
        watch: OomWatch,
        last: u64,
    },
}

/// What the monitor reports.
pub trait Sink: Send + Sync + 'static {
    fn exited(&self, container: &str, exec: &str, status: i32);
    fn oom(&self, container: &str);
}

pub struct Monitor {
    ep: OwnedFd,
    next: AtomicU64,
    watched: Mutex<HashMap<u64, Watched>>,
}

impl Monitor {
    pub fn new() -> std::io::Result<Arc<Monitor>> {
        Ok(Arc::new(Monitor {
            ep: sys::epoll_create()?,
            next: AtomicU64::new(1),
            watched: Mutex::new(HashMap::new()),
        }))
    }

    fn add(&self, fd: i32, w: Watched) -> std::io::Result<()> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        // Registered under the lock, so the thread never sees a key it cannot look up.
        let mut m = self.watched.lock().unwrap();
        sys::epoll_add(&self.ep, fd, key)?;
        m.insert(key, w);
        Ok(())
    }

    pub fn watch_exit(
        &self,
        container: &str,
        exec: &str,
        pidfd: Arc<Pidfd>,
    ) -> std::io::Result<()> {
        let fd = pidfd.as_raw_fd();
        self.add(
            fd,
            Watched::Exit {
                container: container.into(),
                exec: exec.into(),
                pidfd,
            },
        )
    }

    pub fn watch_oom(&self, container: &str, watch: OomWatch) -> std::io::Result<()> {
        let fd = watch.as_raw_fd();
        let last = watch.kills().unwrap_or(0);
        self.add(
            fd,
            Watched::Oom {
                container: container.into(),
                watch,
                last,
            },
        )
    }

    /// Reports any OOM kill not reported yet and stops watching the container's OOMs.
    pub fn unwatch_oom(&self, container: &str, sink: &dyn Sink) {
        let mut m = self.watched.lock().unwrap();
        let keys: Vec<u64> = m
            .iter()
            .filter(|(_, w)| matches!(w, Watched::Oom { container: c, .. } if c == container))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(Watched::Oom { watch, last, .. }) = m.remove(&k) {
                let _ = sys::epoll_del(&self.ep, watch.as_raw_fd());
                if watch.kills().unwrap_or(0) > last {
                    sink.oom(container);
                }
            }
        }
    }

    /// Runs the monitor thread for good.
    pub fn run(self: &Arc<Self>, sink: Arc<dyn Sink>) {
        let me = self.clone();
        std::thread::Builder::new()
            .name("monitor".into())
            .stack_size(128 * 1024)
            .spawn(move || loop {
                let keys = match sys::epoll_wait(&me.ep, -1) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("monitor: epoll_wait: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        continue;
                    }
                };
                for k in keys {
                    me.ready(k, sink.as_ref());
                }
            })
            .expect("starting the monitor thread");
    }

    fn ready(&self, key: u64, sink: &dyn Sink) {
        let mut m = self.watched.lock().unwrap();
        let Some(w) = m.get_mut(&key) else { return };
        match w {
            Watched::Exit { pidfd, .. } => {
                let status = match pidfd.try_wait() {
                    Ok(Some(s)) => s,
                    Ok(None) => return,
                    // Not our child any more (cannot happen here): report it as killed.
                    Err(_) => 128 + libc::SIGKILL,
                };
                let Some(Watched::Exit {
                    container,
                    exec,
                    pidfd,
                }) = m.remove(&key)
                else {
                    return;
                };
                let _ = sys::epoll_del(&self.ep, pidfd.as_raw_fd());
                drop(m);
                // The init's last OOM kill is reported before its exit, as runc's shim does.
                if exec.is_empty() {
                    self.unwatch_oom(&container, sink);
                }
                sink.exited(&container, &exec, status);
            }
            Watched::Oom {
                container,
                watch,
                last,
            } => {
                watch.clear();
                let now = watch.kills().unwrap_or(*last);
                if now > *last {
                    *last = now;
                    let c = container.clone();
                    drop(m);
                    sink.oom(&c);
                }
            }
        }
    }
}
