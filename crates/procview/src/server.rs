//! The worker process: serves the FUSE connection it inherited from the keeper.
//!
//! Single-threaded: one request is read, answered, then the next; so on SIGTERM the worker
//! stops reading and exits with nothing half-answered. It also watches the keeper (a pidfd)
//! and starts a new keeper that adopts it if the keeper dies, so one kill never closes the
//! last descriptor of the connection.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fs::{Fs, Kind};
use crate::fuse::abi::{self, op, InHeader, InitIn, InitParams, Reader, Short};
use crate::fuse::session::{Got, Session};
use crate::nodes::Nodes;
use crate::{agent, keeper, sys, Error, Layout, Result};

/// How long the kernel may cache names and attributes.
const VALID_SECS: u64 = 1;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const MAX_WRITE: u32 = 4096;

/// How the keeper started this worker.
pub struct WorkerArgs {
    pub root: PathBuf,
    pub fd: OwnedFd,
    pub keeper_pid: i32,
    /// The connection was INIT-ed by an earlier worker: load its node table and INIT parameters.
    pub takeover: bool,
    /// An earlier worker died: ask the kernel to resend what it had read (implies takeover).
    pub resend: bool,
    pub ready: Option<OwnedFd>,
    /// This binary (absolute), to start a keeper with.
    pub exe: PathBuf,
    /// The seccomp agent's descriptors (see [`crate::agent`]).
    pub agent: agent::AgentArgs,
}

/// The file with the negotiated INIT parameters.
pub fn init_file(layout: &Layout) -> PathBuf {
    layout.dir.join("init")
}

/// The node journal.
pub fn nodes_file(layout: &Layout) -> PathBuf {
    layout.dir.join("nodes")
}

struct Handle {
    nodeid: u64,
    data: Vec<u8>,
    dir: Vec<(String, u32)>,
}

struct Worker {
    layout: Layout,
    session: Session,
    fs: Fs,
    nodes: Nodes,
    init: Option<InitParams>,
    handles: HashMap<u64, Handle>,
    /// The length of each file's latest snapshot: its size in attributes (see `open`).
    sizes: HashMap<u64, u64>,
    next_fh: u64,
    ready: Option<OwnedFd>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Writes `text` to `path` atomically (temp file, rename).
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(io(path.display().to_string()))
}

pub fn run(args: WorkerArgs) -> Result<()> {
    let layout = Layout::new(&args.root);
    let takeover = args.takeover || args.resend;
    let sigfd = std::fs::File::from(
        sys::signalfd(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD]).map_err(io("signalfd"))?,
    );
    // Keep the connection inheritable: a keeper this worker starts must get it.
    sys::set_cloexec(&args.fd, false).map_err(io("fuse fd"))?;
    let init = if takeover {
        std::fs::read_to_string(init_file(&layout))
            .ok()
            .and_then(|s| InitParams::from_line(&s))
    } else {
        None
    };
    let nodes = Nodes::open(&nodes_file(&layout), args.resend)?;
    let fd_num = args.fd.as_raw_fd();
    let mut agent = agent::Agent::new(&layout, args.agent);
    let mut w = Worker {
        fs: Fs::new(layout.clone()),
        layout,
        session: Session::new(args.fd),
        nodes,
        init,
        handles: HashMap::new(),
        sizes: HashMap::new(),
        next_fh: 1,
        ready: args.ready,
    };
    eprintln!(
        "husk-procview: worker {} started (takeover: {takeover}, resend: {}, {} nodes)",
        std::process::id(),
        args.resend,
        w.nodes.len()
    );
    if args.resend {
        match w.session.notify_resend() {
            Ok(()) => {}
            Err(e) => eprintln!("husk-procview: FUSE_NOTIFY_RESEND: {e} (kernel before 6.9?)"),
        }
    }
    if w.init.is_some() {
        w.signal_ready();
    }
    let mut keeper_pid = args.keeper_pid;
    let mut keeper_fd = sys::pidfd_open(keeper_pid).ok();
    let mut buf = vec![0u8; abi::MIN_READ_BUFFER + 128 * 1024];
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    loop {
        let mut fds = vec![w.session.raw_fd(), sigfd.as_raw_fd()];
        if let Some(k) = &keeper_fd {
            fds.push(k.as_raw_fd());
        }
        let base = fds.len();
        fds.extend(agent.fds());
        let wait = next_sample.saturating_duration_since(Instant::now());
        let ready = sys::poll_in(&fds, wait.as_millis() as i32 + 1).map_err(io("poll"))?;
        agent.on_ready(&ready[base..], &mut w.fs);
        if ready[1] {
            let mut stop = false;
            for sig in keeper::read_signals(&sigfd) {
                match sig {
                    libc::SIGCHLD => while sys::reap(-1).is_some() {},
                    _ => stop = true,
                }
            }
            if stop {
                eprintln!("husk-procview: worker {} stopping", std::process::id());
                return Ok(());
            }
        }
        if keeper_fd.is_some() && ready[2] {
            let _ = sys::reap(keeper_pid);
            eprintln!("husk-procview: keeper {keeper_pid} is gone; starting a new keeper");
            let (extra, close_after) = agent.for_new_keeper().unwrap_or_else(|e| {
                eprintln!("husk-procview: {e}");
                Default::default()
            });
            let started = keeper::spawn_adopting_keeper(&args.exe, &w.layout.root, fd_num, &extra);
            drop(close_after);
            match started {
                Ok(pid) => {
                    keeper_pid = pid;
                    keeper_fd = sys::pidfd_open(pid).ok();
                }
                Err(e) => {
                    eprintln!("husk-procview: {e}");
                    keeper_fd = None;
                }
            }
        }
        if ready[0] {
            match w.session.read(&mut buf).map_err(io("read /dev/fuse"))? {
                Got::Request(n) => w.handle(&buf[..n])?,
                Got::Nothing => {}
                Got::Gone => {
                    eprintln!("husk-procview: the filesystem was unmounted; worker exits");
                    return Ok(());
                }
            }
        }
        if Instant::now() >= next_sample {
            w.fs.sample();
            next_sample = Instant::now() + SAMPLE_EVERY;
        }
    }
}

impl Worker {
    /// Writes worker.pid, then `ok` to the keeper: whoever sees the new pid sees a ready worker.
    fn signal_ready(&mut self) {
        let pid = std::process::id().to_string();
        if let Err(e) = write_atomic(&self.layout.worker_pid(), &pid) {
            eprintln!("husk-procview: {e}");
        }
        if let Some(fd) = self.ready.take() {
            let mut f = std::fs::File::from(fd);
            let _ = f.write_all(b"ok\n");
        }
    }

    fn reply(&mut self, h: &InHeader, r: std::result::Result<Vec<u8>, i32>) -> Result<()> {
        let (err, data) = match r {
            Ok(d) => (0, d),
            Err(e) => (e, Vec::new()),
        };
        self.session
            .reply(h.unique, err, &data)
            .map_err(io("write /dev/fuse"))
    }

    fn handle(&mut self, req: &[u8]) -> Result<()> {
        let mut r = Reader::new(req);
        let Ok(h) = InHeader::parse(&mut r) else {
            eprintln!(
                "husk-procview: a request shorter than its header ({} bytes)",
                req.len()
            );
            return Ok(());
        };
        match h.opcode {
            op::FORGET => {
                if let Ok(n) = r.u64() {
                    self.nodes.forget(h.nodeid, n);
                }
                Ok(())
            }
            op::BATCH_FORGET => {
                let count = r.u32().unwrap_or(0);
                let _ = r.u32();
                for _ in 0..count {
                    match (r.u64(), r.u64()) {
                        (Ok(id), Ok(n)) => self.nodes.forget(id, n),
                        _ => break,
                    }
                }
                Ok(())
            }
            op::INTERRUPT => Ok(()),
            _ => {
                let res = self.dispatch(&h, &mut r).unwrap_or(Err(libc::EINVAL));
                let ok = res.is_ok();
                self.reply(&h, res)?;
                if h.opcode == op::INIT && ok {
                    self.signal_ready();
                }
                Ok(())
            }
        }
    }

    fn path_of(&mut self, nodeid: u64) -> std::result::Result<String, i32> {
        if nodeid == abi::ROOT_ID {
            return Ok(String::new());
        }
        self.nodes.path(nodeid).ok_or(libc::ESTALE)
    }

    fn kind_of(&mut self, nodeid: u64) -> std::result::Result<Kind, i32> {
        let p = self.path_of(nodeid)?;
        self.fs.resolve(&p)
    }

    fn dispatch(
        &mut self,
        h: &InHeader,
        r: &mut Reader,
    ) -> std::result::Result<std::result::Result<Vec<u8>, i32>, Short> {
        Ok(match h.opcode {
            op::INIT => self.init(InitIn::parse(r)?),
            op::DESTROY | op::FLUSH | op::RELEASEDIR => {
                let fh = if h.opcode == op::RELEASEDIR {
                    r.u64().ok()
                } else {
                    None
                };
                if let Some(fh) = fh {
                    self.handles.remove(&fh);
                }
                Ok(Vec::new())
            }
            op::LOOKUP => {
                let name = String::from_utf8_lossy(r.cstr()?).into_owned();
                self.lookup(h.nodeid, &name)
            }
            op::GETATTR => self.kind_of(h.nodeid).and_then(|k| {
                let mut a = self.fs.attr(&k, h.nodeid)?;
                self.sized(&mut a, h.nodeid);
                Ok(abi::attr_out(&a, VALID_SECS))
            }),
            op::OPEN => {
                let flags = r.u32()?;
                if flags as i32 & libc::O_ACCMODE != libc::O_RDONLY {
                    Err(libc::EROFS)
                } else {
                    self.open(h.nodeid, false)
                }
            }
            op::OPENDIR => self.open(h.nodeid, true),
            op::READ | op::READDIR => {
                let fh = r.u64()?;
                let offset = r.u64()?;
                let size = r.u32()? as usize;
                self.read(h.nodeid, fh, offset, size, h.opcode == op::READDIR)
            }
            op::RELEASE => {
                self.handles.remove(&r.u64()?);
                Ok(Vec::new())
            }
            op::READLINK => self.kind_of(h.nodeid).and_then(|k| self.fs.readlink(&k)),
            op::STATFS => Ok(abi::statfs_out(255)),
            op::ACCESS => {
                let mask = r.u32()? as i32;
                if mask & libc::W_OK != 0 {
                    Err(libc::EROFS)
                } else {
                    self.kind_of(h.nodeid).map(|_| Vec::new())
                }
            }
            op::SETATTR => Err(libc::EROFS),
            op::GETXATTR | op::LISTXATTR => Err(libc::ENOSYS),
            _ => Err(libc::ENOSYS),
        })
    }

    fn init(&mut self, k: InitIn) -> std::result::Result<Vec<u8>, i32> {
        if k.major != abi::KERNEL_VERSION {
            eprintln!(
                "husk-procview: kernel FUSE {}.{} is not 7.x",
                k.major, k.minor
            );
            return Err(libc::EPROTO);
        }
        let p = InitParams {
            minor: k.minor.min(abi::KERNEL_MINOR_VERSION),
            max_readahead: k.max_readahead,
            max_write: MAX_WRITE,
            flags: 0,
        };
        if let Err(e) = write_atomic(&init_file(&self.layout), &p.to_line()) {
            eprintln!("husk-procview: {e}");
        }
        eprintln!(
            "husk-procview: INIT: kernel 7.{}, {}",
            k.minor,
            p.to_line().trim()
        );
        self.init = Some(p);
        Ok(p.init_out())
    }

    fn lookup(&mut self, parent: u64, name: &str) -> std::result::Result<Vec<u8>, i32> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(libc::ENOENT);
        }
        let p = self.path_of(parent)?;
        let path = if p.is_empty() {
            name.to_string()
        } else {
            format!("{p}/{name}")
        };
        let kind = self.fs.resolve(&path)?;
        let mut attr = self.fs.attr(&kind, 0)?;
        let id = self.nodes.lookup(&path).map_err(|e| {
            eprintln!("husk-procview: {e}");
            libc::EIO
        })?;
        attr.ino = id;
        self.sized(&mut attr, id);
        Ok(abi::entry_out(id, &attr, VALID_SECS))
    }

    fn new_handle(&mut self, h: Handle) -> u64 {
        // Unique across workers running side by side: the pid in the high half.
        let fh = ((std::process::id() as u64) << 32) | self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, h);
        fh
    }

    fn load(&mut self, nodeid: u64, dir: bool) -> std::result::Result<Handle, i32> {
        let kind = self.kind_of(nodeid)?;
        let mut h = Handle {
            nodeid,
            data: Vec::new(),
            dir: Vec::new(),
        };
        if dir {
            h.dir = self.fs.list(&kind)?;
        } else {
            h.data = self.fs.contents(&kind)?;
        }
        Ok(h)
    }

    /// A regular file's size is its latest snapshot's length (procfs says 0, which would leave
    /// splice reading nothing: see `open`).
    fn sized(&self, a: &mut abi::Attr, nodeid: u64) {
        if a.mode & libc::S_IFMT == libc::S_IFREG {
            if let Some(n) = self.sizes.get(&nodeid) {
                a.size = *n;
            }
        }
    }

    fn open(&mut self, nodeid: u64, dir: bool) -> std::result::Result<Vec<u8>, i32> {
        let h = self.load(nodeid, dir)?;
        if !dir {
            // read(2) is direct I/O, served from this handle's snapshot; splice (sendfile)
            // goes through the page cache up to the inode's size, so the snapshot is stored
            // there too, which sets that size. A larger size left by a longer earlier
            // snapshot ends at this handle's short read, which the kernel takes as the end.
            if let Err(e) = self.session.notify_store(nodeid, &h.data) {
                eprintln!("husk-procview: storing node {nodeid}'s snapshot: {e}");
            }
            self.sizes.insert(nodeid, h.data.len() as u64);
        }
        let fh = self.new_handle(h);
        let flags = if dir { 0 } else { abi::FOPEN_DIRECT_IO };
        Ok(abi::open_out(fh, flags))
    }

    fn read(
        &mut self,
        nodeid: u64,
        fh: u64,
        offset: u64,
        size: usize,
        dir: bool,
    ) -> std::result::Result<Vec<u8>, i32> {
        // A handle opened by an earlier (or a side-by-side) worker: load it again.
        if !self.handles.get(&fh).is_some_and(|h| h.nodeid == nodeid) {
            let h = self.load(nodeid, dir)?;
            self.handles.insert(fh, h);
        }
        let h = &self.handles[&fh];
        if !dir {
            let start = (offset as usize).min(h.data.len());
            let end = start.saturating_add(size).min(h.data.len());
            return Ok(h.data[start..end].to_vec());
        }
        let base = self.path_of(nodeid).unwrap_or_default();
        let h = &self.handles[&fh];
        let mut out = Vec::new();
        for (i, (name, typ)) in h.dir.iter().enumerate().skip(offset as usize) {
            let child = if base.is_empty() {
                name.clone()
            } else {
                format!("{base}/{name}")
            };
            let ino = crate::nodes::node_id(&child);
            if !abi::push_dirent(&mut out, size, ino, i as u64 + 1, *typ, name.as_bytes()) {
                break;
            }
        }
        Ok(out)
    }
}
