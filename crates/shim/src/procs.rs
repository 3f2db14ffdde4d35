//! What the shim knows of each container (a task) and of each of its processes: the init and
//! the exec'd ones, by exec id.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim_protos::api::Status;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use libcontainer::oci_spec::runtime::Process as OciProcess;
use libcontainer::Pidfd;

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

/// How a process ended.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// The code, or 128+N when killed by signal N, as containerd reports it.
    pub status: u32,
    pub at: SystemTime,
}

/// The paths containerd gave for a process's streams (reported back by State).
#[derive(Clone, Debug, Default)]
pub struct IoPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// One process: the init or an exec'd one.
#[derive(Default)]
pub struct Proc {
    pub pid: u32,
    pub pidfd: Option<Arc<Pidfd>>,
    pub exit: Option<Exit>,
    pub io: IoPaths,
    /// Its stdin pipe's write end (dropped by CloseIO, or at exit).
    pub stdin: Option<crate::stdio::StdinPipe>,
    pub pty: Option<Arc<OwnedFd>>,
    /// Disconnected when its output is all copied.
    pub out_done: Option<Receiver<()>>,
    /// An exec'd process between Exec (added) and Start.
    pub pending: Option<OciProcess>,
}

impl Proc {
    pub fn status(&self, started: bool, paused: bool) -> Status {
        if self.exit.is_some() {
            Status::STOPPED
        } else if !started {
            Status::CREATED
        } else if paused {
            Status::PAUSED
        } else {
            Status::RUNNING
        }
    }
}

/// One container.
pub struct Task {
    pub bundle: PathBuf,
    pub root: PathBuf,
    /// containerd's rootfs mounts were made on `bundle/rootfs` (undone at delete).
    pub mounted: bool,
    pub started: bool,
    pub paused: bool,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    /// A Create with a checkpoint: the restore runs at Start, as runc's shim does it.
    pub restore: Option<PendingRestore>,
}

/// What a restoring Start needs from its Create.
pub struct PendingRestore {
    pub req: containerd_shim_protos::api::CreateTaskRequest,
    pub opts: containerd_shim_protos::shim::oci::Options,
}

/// The library's runtime at `root`; its warnings name the container (a shim serves several).
pub fn runtime(root: &std::path::Path) -> libcontainer::Runtime {
    libcontainer::Runtime::new(root).with_handler(|n| {
        if let libcontainer::Notice::Warning { id, msg } = n {
            eprintln!("container {id}: {msg}");
        }
    })
}

impl Task {
    pub fn runtime(&self) -> libcontainer::Runtime {
        runtime(&self.root)
    }

    /// The init (`exec_id` empty) or an exec'd process.
    pub fn proc(&self, exec_id: &str) -> Option<&Proc> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn proc_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    /// An exec'd process is started once it has a pid; the init once Start ran.
    pub fn started(&self, exec_id: &str) -> bool {
        if exec_id.is_empty() {
            self.started
        } else {
            self.execs.get(exec_id).is_some_and(|p| p.pid != 0)
        }
    }
}
