//! `NOTIFY_SOCKET` (sd_notify) proxying, as runc does it, for `podman --sdnotify=container`
//! and systemd units running containers:
//!
//! - `create` with `NOTIFY_SOCKET` in its environment makes `<state dir>/notify/`, bind-mounts it
//!   read-only at `/run/notify` in the container and sets the container's `NOTIFY_SOCKET` to
//!   `/run/notify/notify.sock` (a directory, not the socket, is mounted: the socket is bound
//!   later, by `start`, and must appear inside).
//! - `start` (and `run`) with `NOTIFY_SOCKET` set binds that socket before releasing the init,
//!   then waits for a datagram with a `READY=1` line from the container, and forwards
//!   `MAINPID=<init pid>` and the message to the caller's socket. It returns once forwarded, or
//!   with an error if the container stops first.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::oci_spec::runtime::{MountBuilder, Spec};
use crate::{Error, Result};

const DIR: &str = "notify";
const SOCK: &str = "notify.sock";
const IN_CONTAINER: &str = "/run/notify";

/// The caller's notify socket, if any.
pub(crate) fn host_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// `create`: the directory to mount, and the spec changes (mount and env).
pub(crate) fn prepare(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mount = MountBuilder::default()
        .destination(IN_CONTAINER)
        .typ("bind")
        .source(dir)
        .options(
            ["bind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(|e| Error::config("mounts", format!("notify socket mount: {e}")))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER}/{SOCK}"));
        p.set_env(Some(env));
    }
    Ok(())
}

/// `start`: the socket the container sends to, bound before the init is released.
pub(crate) struct Listener {
    sock: UnixDatagram,
    host: String,
}

impl Listener {
    /// `None` when the container was not created with a notify socket or the caller has none.
    pub(crate) fn bind(state_dir: &Path) -> Result<Option<Listener>> {
        let (Some(host), true) = (host_socket(), state_dir.join(DIR).is_dir()) else {
            return Ok(None);
        };
        let path: PathBuf = state_dir.join(DIR).join(SOCK);
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path)
            .map_err(|e| Error::io(format!("binding {}", path.display()), e))?;
        Ok(Some(Listener { sock, host }))
    }

    /// Waits for READY=1 while `alive()` holds, then forwards it with the init's pid.
    pub(crate) fn forward_ready(&self, pid: i32, alive: impl Fn() -> bool) -> Result<()> {
        self.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| Error::io("notify socket", e))?;
        let mut buf = vec![0u8; 4096];
        let ready = loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = &buf[..n];
                    if msg.split(|&b| b == b'\n').any(|l| l == b"READY=1") {
                        break msg.to_vec();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !alive() {
                        return Err(Error::setup(
                            "the container stopped before it sent READY=1 to NOTIFY_SOCKET",
                        ));
                    }
                }
                Err(e) => return Err(Error::io("reading the notify socket", e)),
            }
        };
        let out = UnixDatagram::unbound().map_err(|e| Error::io("notify socket", e))?;
        let addr = match self.host.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None => SocketAddr::from_pathname(&self.host),
        }
        .map_err(|e| Error::io(format!("NOTIFY_SOCKET {}", self.host), e))?;
        for msg in [format!("MAINPID={pid}\n").into_bytes(), ready] {
            out.send_to_addr(&msg, &addr)
                .map_err(|e| Error::io(format!("forwarding to NOTIFY_SOCKET {}", self.host), e))?;
        }
        Ok(())
    }
}
