//! The two short-lived actions containerd runs: `start` (find or spawn the serving shim of the
//! container's group and print its address) and `delete` (clean up after a shim that died).

use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use sha2::{Digest, Sha256};

use crate::flags::Flags;
use crate::sys;

/// The annotations that put containers into one shim, as runc's shim reads them.
pub const GROUP_LABELS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

/// The environment variable that tells the serving shim which fd is its listening socket.
pub const LISTEN_FD_ENV: &str = "HUSK_SHIM_LISTEN_FD";
/// ... and the address it listens on (removed when it exits).
pub const ADDRESS_ENV: &str = "HUSK_SHIM_ADDRESS";

/// Where sockets go: containerd's own directory for them, as every shim of it does.
const SOCKET_DIR: &str = "/run/containerd/s";

/// The state root when containerd's runtime options name none.
pub fn default_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/husk").join(namespace)
}

/// The group a bundle's container belongs to: its grouping annotation, else its own id.
fn grouping(bundle: &Path, id: &str) -> Result<String, String> {
    let cfg = bundle.join("config.json");
    let data = fs::read(&cfg).map_err(|e| format!("reading {}: {e}", cfg.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| format!("parsing {}: {e}", cfg.display()))?;
    for l in GROUP_LABELS {
        if let Some(g) = v["annotations"][l].as_str() {
            return Ok(g.to_string());
        }
    }
    Ok(id.to_string())
}

/// `unix:///run/containerd/s/<sha256 of address/namespace/group>`, runc's shim's scheme: the
/// same group under the same containerd always finds the same shim.
pub fn socket_address(address: &str, namespace: &str, group: &str) -> String {
    let key = Path::new(address).join(namespace).join(group);
    let d = Sha256::digest(key.as_os_str().as_encoded_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("unix://{SOCKET_DIR}/{hex}")
}

pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Writes `name` in the current directory atomically, as containerd reads it back.
fn write_atomic(name: &str, data: &str) -> Result<(), String> {
    let tmp = format!(".{name}");
    fs::write(&tmp, data)
        .and_then(|_| fs::rename(&tmp, name))
        .map_err(|e| format!("writing {name}: {e}"))
}

pub fn start(flags: &Flags) -> Result<String, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let group = grouping(&cwd, &flags.id)?;
    let address = socket_address(&flags.address, &flags.namespace, &group);
    let path = socket_path(&address).to_string();
    fs::create_dir_all(SOCKET_DIR).map_err(|e| format!("creating {SOCKET_DIR}: {e}"))?;
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // The group's shim already serves: this container joins it.
            if UnixStream::connect(&path).is_ok() {
                write_atomic("address", &address)?;
                return Ok(address);
            }
            // A socket left by a shim that died.
            let _ = fs::remove_file(&path);
            UnixListener::bind(&path).map_err(|e| format!("creating socket {path}: {e}"))?
        }
        Err(e) => return Err(format!("creating socket {path}: {e}")),
    };
    let r = spawn(flags, &cwd, &address, &listener);
    if r.is_err() {
        let _ = fs::remove_file(&path);
    }
    r.map(|_| address)
}

fn spawn(flags: &Flags, cwd: &Path, address: &str, listener: &UnixListener) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(address);
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {path}: {e}"))?;
    write_atomic("address", address)?;
    sys::set_cloexec(listener, false).map_err(|e| format!("passing the socket: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("finding the shim binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["-namespace", &flags.namespace, "-id", &flags.id])
        .args(["-address", &flags.address])
        .args(flags.debug.then_some("-debug"))
        .current_dir(cwd)
        .env(LISTEN_FD_ENV, listener.as_raw_fd().to_string())
        .env(ADDRESS_ENV, address)
        // One malloc arena: each thread (the blocking pool's, a terminal's copies) must not
        // mean an arena and its heap.
        .env("MALLOC_ARENA_MAX", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a signal to containerd's group does not reach it.
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("starting the shim: {e}"))?;
    let pid = child.id();
    // containerd's runtime options, on stdin: only the shim's cgroup matters here.
    let mut opts = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut opts);
    let r = place(pid, &opts);
    if r.is_err() {
        let _ = child.kill();
    }
    // Reaped by whoever inherits it when this process exits right after.
    drop(child);
    r
}

/// The shim goes into `shim_cgroup` when containerd's options name one, and gets an OOM score
/// one above containerd's, so the kernel kills a shim before containerd.
fn place(pid: u32, opts: &[u8]) -> Result<(), String> {
    use containerd_shim_protos::protobuf::well_known_types::any::Any;
    if !opts.is_empty() {
        let any = Any::parse_from_bytes(opts).map_err(|e| format!("runtime options: {e}"))?;
        if let Some(o) = crate::service::runc_options(&any)? {
            if !o.shim_cgroup.is_empty() {
                join_cgroup(pid, &o.shim_cgroup)?;
            }
        }
    }
    let parent = std::os::unix::process::parent_id();
    if let Ok(s) = fs::read_to_string(format!("/proc/{parent}/oom_score_adj")) {
        if let Ok(n) = s.trim().parse::<i32>() {
            let _ = fs::write(
                format!("/proc/{pid}/oom_score_adj"),
                (n + 1).min(1000).to_string(),
            );
        }
    }
    Ok(())
}

/// Moves `pid` into `path` in every mounted hierarchy that has it.
fn join_cgroup(pid: u32, path: &str) -> Result<(), String> {
    let h = libcontainer::cgroups::hierarchy::detect().map_err(|e| e.to_string())?;
    let mut joined = false;
    for m in h.v1.iter().chain(h.unified.as_ref()) {
        let procs = m
            .mount_point
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs");
        if procs.exists() {
            fs::write(&procs, pid.to_string())
                .map_err(|e| format!("moving the shim into {}: {e}", procs.display()))?;
            joined = true;
        }
    }
    if joined {
        Ok(())
    } else {
        Err(format!("shim cgroup {path} does not exist"))
    }
}

/// What the serving shim saved in the bundle for a later `delete`.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub struct Saved {
    pub root: PathBuf,
}

pub const SAVED_FILE: &str = "husk-shim.json";
pub const INIT_PID_FILE: &str = "init.pid";

/// `delete`: the shim died; remove its container whatever its state, unmount the rootfs and
/// say how it ended (killed, as runc's shim reports it).
pub fn delete(flags: &Flags) -> Result<Vec<u8>, String> {
    let bundle = match &flags.bundle {
        Some(b) => PathBuf::from(b),
        None => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    let saved: Saved = fs::read(bundle.join(SAVED_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| Saved {
            root: default_root(&flags.namespace),
        });
    let rt = libcontainer::Runtime::new(&saved.root);
    match rt.container(&flags.id) {
        Ok(c) => match c.delete(true) {
            Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
            Err(e) => eprintln!("deleting container {}: {e}", flags.id),
        },
        Err(libcontainer::Error::NotFound(_)) => {}
        Err(e) => eprintln!("loading container {}: {e}", flags.id),
    }
    crate::mounts::unmount_rootfs(&bundle.join("rootfs"));
    if let Ok(a) = fs::read_to_string(bundle.join("address")) {
        let p = socket_path(a.trim());
        if UnixStream::connect(p).is_err() {
            let _ = fs::remove_file(p);
        }
    }
    let pid = fs::read_to_string(bundle.join(INIT_PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let mut resp = DeleteResponse::new();
    resp.pid = pid;
    resp.exit_status = 128 + libc::SIGKILL as u32;
    resp.exited_at = Some(crate::procs::timestamp(SystemTime::now())).into();
    resp.write_to_bytes()
        .map_err(|e| format!("encoding the response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_address_is_runc_shims_scheme() {
        // sha256("/run/containerd/containerd.sock/default/c1"), as Go's shim.SocketAddress.
        let a = socket_address("/run/containerd/containerd.sock", "default", "c1");
        let want = {
            let d = Sha256::digest(b"/run/containerd/containerd.sock/default/c1");
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(a, format!("unix:///run/containerd/s/{want}"));
        assert!(socket_path(&a).len() < 108);
    }
}
