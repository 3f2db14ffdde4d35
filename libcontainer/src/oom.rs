//! [`OomWatch`]: a pollable fd that wakes an event loop when the kernel's OOM killer may have
//! killed a process of a container, instead of polling the counter on a timer.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::state::Lock;
use crate::sys;
use crate::{Container, Error, Result};

/// Watches a container's OOM-kill counter: its fd becomes readable when the cgroup's
/// `memory.events` (v2, by inotify) or its OOM state (v1, a `cgroup.event_control` eventfd)
/// changes; [`OomWatch::kills`] then reads the counter, and [`OomWatch::clear`] rearms it.
///
/// ```no_run
/// use std::os::fd::AsRawFd;
/// use libcontainer::Runtime;
///
/// # fn main() -> libcontainer::Result<()> {
/// let c = Runtime::new("/run/husk").container("web-1")?;
/// let watch = c.oom_watch()?;
/// let before = watch.kills().unwrap_or(0);
/// // ... register watch.as_raw_fd() with epoll or tokio's AsyncFd; when it is readable:
/// watch.clear();
/// if watch.kills().unwrap_or(0) > before {
///     println!("the OOM killer killed a process of web-1");
/// }
/// # let _ = watch.as_raw_fd();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OomWatch {
    fd: OwnedFd,
    counter: PathBuf,
    // v1: the memory.oom_control fd the eventfd is registered against, kept for its life.
    _control: Option<std::fs::File>,
}

impl OomWatch {
    /// How many processes of the container the OOM killer has killed (the cgroup's
    /// `oom_kill` counter); `None` once the cgroup is gone or on kernels without it.
    pub fn kills(&self) -> Option<u64> {
        crate::ops::oom_kills(&self.counter)
    }

    /// Consumes the pending notification, so the fd is readable again only on a new change.
    pub fn clear(&self) {
        sys::watch::drain(&self.fd);
    }
}

impl AsFd for OomWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for OomWatch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Container {
    /// An [`OomWatch`] on this container's memory cgroup. Fails with `Unsupported` for a
    /// container without a memory cgroup.
    pub fn oom_watch(&self) -> Result<OomWatch> {
        let (_dir, rec) = self.open(Lock::None)?;
        let no_memory = || {
            Error::unsupported(
                "cgroup",
                format!("container {} has no memory cgroup to watch", rec.id),
            )
        };
        let saved = rec.cgroup.as_ref().ok_or_else(no_memory)?;
        let counter = crate::ops::oom_counter_file(saved).ok_or_else(no_memory)?;
        let cpath = CString::new(counter.as_os_str().as_bytes())
            .map_err(|_| Error::InvalidArgument(format!("{}: NUL in path", counter.display())))?;
        if counter.ends_with("memory.events") {
            let fd = sys::watch::inotify_modify(&cpath)
                .map_err(|e| Error::errno(format!("watching {}", counter.display()), e))?;
            return Ok(OomWatch {
                fd,
                counter,
                _control: None,
            });
        }
        // v1: "<eventfd> <memory.oom_control fd>" into cgroup.event_control.
        let control = std::fs::File::open(&counter)
            .map_err(|e| Error::io(format!("opening {}", counter.display()), e))?;
        let fd = sys::watch::eventfd().map_err(|e| Error::errno("creating an eventfd", e))?;
        let reg = counter.with_file_name("cgroup.event_control");
        std::fs::write(&reg, format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()))
            .map_err(|e| Error::io(format!("registering with {}", reg.display()), e))?;
        Ok(OomWatch {
            fd,
            counter,
            _control: Some(control),
        })
    }
}
