//! The seccomp agent: `sysinfo(2)` answered from the container's cgroup.
//!
//! husk gives a container with the view a seccomp filter whose one rule sends `sysinfo` to a
//! user-notification listener, and hands the listener fd (with the container's state, OCI
//! `ContainerProcessState`) to `listenerPath` = `<root>/.procview/notify.sock`.
//!
//! Design, chosen so that no listener is ever lost and no caller waits for ever:
//! - The **keeper** binds `notify.sock` once and passes the listening socket to every worker,
//!   so a connection made while a worker is replaced waits in the backlog. It also makes a
//!   datagram socketpair, the *channel*: its own end, and a *worker end* every worker inherits.
//! - The **worker** accepts connections, reads the JSON and the fd, keeps the listener under
//!   the container id, and sends a copy to the keeper (`add KEY HEXID` + fd on the channel).
//!   It polls the listeners with the FUSE fd and answers each notification (sysinfo: the
//!   struct written with process_vm_writev between two NOTIF_ID_VALID checks; anything else:
//!   CONTINUE). A listener that hangs up (its container is gone) is closed and the keeper
//!   told (`drop KEY`).
//! - The keeper keeps every listener it was sent and hands them all to each worker it starts
//!   (inherited fds, `--listeners fd:key:hexid,...`), and to itself on a SIGUSR2 re-exec. A
//!   worker replaced on SIGHUP runs side by side with its successor for a moment: the new
//!   worker (`--after OLD`) only receives notifications once the old one has exited, so one
//!   notification is never received twice; whatever the old one was sent meanwhile the keeper
//!   forwards to the new one on the channel (duplicates are recognised by key).
//! - A worker killed between receiving a notification and answering it would leave the
//!   caller waiting for ever, so before answering the worker writes the notification (id,
//!   pid, buffer) to `<dir>/agent/KEY`; its successor looks there for notifications that are
//!   still pending (ids are sequential per listener), answers the journaled one, and lets any
//!   other pending one run the real call (CONTINUE).
//! - A worker whose keeper died starts a keeper with a fresh channel and all its listeners.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fs::Fs;
use crate::sys::{self, Notif};
use crate::{view, Error, Layout, Result};

/// How long a connection to notify.sock may take to send its message.
const CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// How many notification ids after the journaled one are checked after a worker died.
const RECOVER_SPAN: u64 = 64;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const X32_SYSCALL_BIT: i32 = 0x4000_0000;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Which `struct sysinfo` a notification's caller expects, if the call is sysinfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// x86_64, x32, aarch64: 112 bytes.
    Wide,
    /// i386: 64 bytes.
    Compat,
}

/// Whether syscall `nr` of architecture `arch` (seccomp_data) is sysinfo, and its layout.
pub fn sysinfo_abi(arch: u32, nr: i32) -> Option<Abi> {
    match (arch, nr) {
        (AUDIT_ARCH_X86_64, 99) => Some(Abi::Wide),
        (AUDIT_ARCH_X86_64, n) if n == X32_SYSCALL_BIT | 99 => Some(Abi::Wide),
        (AUDIT_ARCH_AARCH64, 179) => Some(Abi::Wide),
        (AUDIT_ARCH_I386, 116) => Some(Abi::Compat),
        _ => None,
    }
}

/// A listener fd with its key (unique per server) and container id.
pub struct Held {
    pub fd: OwnedFd,
    pub key: String,
    pub id: String,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// `fd:key:hexid,...` for `--listeners` (the fds made inheritable).
pub fn encode_list(held: &[Held]) -> String {
    held.iter()
        .map(|h| {
            let _ = sys::set_cloexec(&h.fd, false);
            format!("{}:{}:{}", h.fd.as_raw_fd(), h.key, hex(&h.id))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Takes over the descriptors of a `--listeners` value.
pub fn decode_list(s: &str) -> Result<Vec<Held>> {
    let mut out = Vec::new();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let bad = || Error::Invalid(format!("--listeners: bad item {item:?}"));
        let mut parts = item.splitn(3, ':');
        let (Some(fd), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let fd: RawFd = fd.parse().map_err(|_| bad())?;
        let id = unhex(id).ok_or_else(bad)?;
        let fd = sys::adopt_fd(fd).map_err(io(format!("--listeners fd {fd}")))?;
        let _ = sys::set_cloexec(&fd, true);
        out.push(Held {
            fd,
            key: key.to_string(),
            id,
        });
    }
    Ok(out)
}

fn cloexec(fd: &impl AsRawFd, on: bool) -> Result<()> {
    sys::set_cloexec(fd, on).map_err(io("fcntl F_SETFD"))
}

/// The agent's part of the keeper: the listening socket, the channel, the listeners.
pub struct KeeperAgent {
    notify: OwnedFd,
    chan: OwnedFd,
    worker_end: OwnedFd,
    held: Vec<Held>,
}

impl KeeperAgent {
    /// From what a previous keeper passed (`--notify-fd`, `--agent-fd`, `--agent-worker-fd`,
    /// `--listeners`); what is missing (a fresh start, or an older keeper) is made anew.
    pub fn new(
        layout: &Layout,
        notify: Option<OwnedFd>,
        chan: Option<OwnedFd>,
        worker_end: Option<OwnedFd>,
        held: Vec<Held>,
    ) -> Result<KeeperAgent> {
        let notify = match notify {
            Some(fd) => fd,
            None => {
                let path = layout.notify_socket();
                let _ = std::fs::remove_file(&path);
                let l = UnixListener::bind(&path).map_err(io(path.display().to_string()))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(path.display().to_string()))?;
                OwnedFd::from(l)
            }
        };
        UnixListener::from(notify.try_clone().map_err(io("dup notify.sock"))?)
            .set_nonblocking(true)
            .map_err(io("notify.sock"))?;
        cloexec(&notify, false)?;
        let (chan, worker_end) = match (chan, worker_end) {
            (Some(c), Some(w)) => (c, w),
            _ => {
                let (c, w) = UnixDatagram::pair().map_err(io("socketpair"))?;
                (OwnedFd::from(c), OwnedFd::from(w))
            }
        };
        cloexec(&chan, true)?;
        cloexec(&worker_end, false)?;
        let mut k = KeeperAgent {
            notify,
            chan,
            worker_end,
            held: held.into_iter().collect(),
        };
        for h in &k.held {
            cloexec(&h.fd, false)?;
        }
        k.held.dedup_by(|a, b| a.key == b.key);
        Ok(k)
    }

    /// The fd to poll: readable when a worker sent something.
    pub fn poll_fd(&self) -> RawFd {
        self.chan.as_raw_fd()
    }

    /// Reads what workers sent; returns the keys of listeners added.
    pub fn drain(&mut self) -> Vec<String> {
        let mut added = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let (n, mut fds) = match sys::recv_fds(&self.chan, &mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("husk-procview: agent channel: {e}");
                    break;
                }
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let words: Vec<&str> = text.split_whitespace().collect();
            match (words.as_slice(), fds.pop()) {
                (["add", key, id], Some(fd)) => {
                    let Some(id) = unhex(id) else { continue };
                    if self.held.iter().any(|h| h.key == *key) {
                        continue;
                    }
                    if let Err(e) = cloexec(&fd, false) {
                        eprintln!("husk-procview: {e}");
                    }
                    added.push(key.to_string());
                    self.held.push(Held {
                        fd,
                        key: key.to_string(),
                        id,
                    });
                }
                (["drop", key], _) => self.held.retain(|h| h.key != *key),
                _ => eprintln!("husk-procview: agent channel: unexpected {text:?}"),
            }
        }
        added
    }

    /// Sends the listeners `keys` to the running worker.
    pub fn forward(&self, keys: &[String]) {
        for h in self.held.iter().filter(|h| keys.contains(&h.key)) {
            let msg = format!("add {} {}", h.key, hex(&h.id));
            if let Err(e) = sys::send_fds(&self.chan, msg.as_bytes(), &[h.fd.as_raw_fd()]) {
                eprintln!("husk-procview: forwarding listener {}: {e}", h.key);
            }
        }
    }

    /// The arguments of a worker: its inherited descriptors.
    pub fn worker_args(&self) -> Vec<String> {
        vec![
            "--notify-fd".into(),
            self.notify.as_raw_fd().to_string(),
            "--agent-fd".into(),
            self.worker_end.as_raw_fd().to_string(),
            "--listeners".into(),
            encode_list(&self.held),
        ]
    }

    /// The arguments of this keeper re-executing itself (everything made inheritable).
    pub fn keeper_args(&self) -> Vec<String> {
        let _ = cloexec(&self.chan, false);
        let mut v = self.worker_args();
        v.extend([
            "--agent-worker-fd".into(),
            self.worker_end.as_raw_fd().to_string(),
        ]);
        v[3] = self.chan.as_raw_fd().to_string();
        v
    }

    pub fn count(&self) -> usize {
        self.held.len()
    }
}

/// What the keeper passed to a worker.
#[derive(Default)]
pub struct AgentArgs {
    pub notify: Option<OwnedFd>,
    pub chan: Option<OwnedFd>,
    pub held: Vec<Held>,
    /// The worker this one replaces: receive notifications only once it has exited.
    pub after: Option<i32>,
}

struct Listener {
    held: Held,
    journal: Option<File>,
}

/// A connection to notify.sock being read.
struct Conn {
    stream: UnixStream,
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    since: Instant,
}

/// What one polled descriptor was.
#[derive(Clone, Debug)]
enum Slot {
    Notify,
    Chan,
    After,
    Conn(RawFd),
    Listener(String),
}

/// The agent's part of the worker.
pub struct Agent {
    journal_dir: PathBuf,
    notify: Option<UnixListener>,
    chan: Option<UnixDatagram>,
    listeners: Vec<Listener>,
    conns: HashMap<RawFd, Conn>,
    after: Option<OwnedFd>,
    next_key: u64,
    polled: Vec<Slot>,
    /// Journaled notifications found pending, answered on the next `on_ready`.
    recovered: Vec<(String, Notif, Abi)>,
}

impl Agent {
    pub fn new(layout: &Layout, args: AgentArgs) -> Agent {
        let journal_dir = layout.dir.join("agent");
        let _ = std::fs::create_dir_all(&journal_dir);
        let after = args.after.and_then(|p| sys::pidfd_open(p).ok());
        let mut a = Agent {
            journal_dir,
            notify: args.notify.map(UnixListener::from),
            chan: args.chan.map(UnixDatagram::from),
            listeners: Vec::new(),
            conns: HashMap::new(),
            after,
            next_key: 1,
            polled: Vec::new(),
            recovered: Vec::new(),
        };
        for h in args.held {
            a.add(h, false);
        }
        if a.after.is_none() {
            a.recover_all();
        }
        a
    }

    fn active(&self) -> bool {
        self.after.is_none()
    }

    /// The descriptors to poll, in an order `on_ready` knows.
    pub fn fds(&mut self) -> Vec<RawFd> {
        let mut slots = Vec::new();
        let mut fds = Vec::new();
        if let Some(n) = &self.notify {
            fds.push(n.as_raw_fd());
            slots.push(Slot::Notify);
        }
        if let Some(c) = &self.chan {
            fds.push(c.as_raw_fd());
            slots.push(Slot::Chan);
        }
        if let Some(a) = &self.after {
            fds.push(a.as_raw_fd());
            slots.push(Slot::After);
        }
        for fd in self.conns.keys() {
            fds.push(*fd);
            slots.push(Slot::Conn(*fd));
        }
        if self.active() {
            for l in &self.listeners {
                fds.push(l.held.fd.as_raw_fd());
                slots.push(Slot::Listener(l.held.key.clone()));
            }
        }
        self.polled = slots;
        fds
    }

    /// Handles what poll found ready (`ready` in the order of the last `fds`); call it after
    /// every poll.
    pub fn on_ready(&mut self, ready: &[bool], fs: &mut Fs) {
        let slots = std::mem::take(&mut self.polled);
        for (slot, _) in slots.iter().zip(ready).filter(|(_, r)| **r) {
            match slot {
                Slot::Notify => self.accept(),
                Slot::Chan => self.read_chan(),
                Slot::After => {
                    self.after = None;
                    self.recover_all();
                }
                Slot::Conn(fd) => self.read_conn(*fd),
                Slot::Listener(key) => self.serve(key, fs),
            }
        }
        for (key, n, abi) in std::mem::take(&mut self.recovered) {
            if let Some(i) = self.listeners.iter().position(|l| l.held.key == key) {
                self.answer(i, &n, abi, fs);
            }
        }
        let now = Instant::now();
        self.conns.retain(|_, c| {
            let keep = now.duration_since(c.since) < CONN_TIMEOUT;
            if !keep {
                eprintln!("husk-procview: notify.sock: a connection sent nothing in 5 s");
            }
            keep
        });
    }

    fn accept(&mut self) {
        let Some(l) = &self.notify else { return };
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    if s.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let fd = s.as_raw_fd();
                    self.conns.insert(
                        fd,
                        Conn {
                            stream: s,
                            data: Vec::new(),
                            fds: Vec::new(),
                            since: Instant::now(),
                        },
                    );
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("husk-procview: accept on notify.sock: {e}");
                    return;
                }
            }
        }
    }

    fn read_conn(&mut self, fd: RawFd) {
        let Some(c) = self.conns.get_mut(&fd) else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match sys::recv_fds(&c.stream, &mut buf) {
                Ok((0, fds)) if fds.is_empty() => break,
                Ok((n, fds)) => {
                    c.data.extend_from_slice(&buf[..n]);
                    c.fds.extend(fds);
                    if c.data.len() > 1 << 20 {
                        eprintln!("husk-procview: notify.sock: message over 1 MiB");
                        self.conns.remove(&fd);
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("husk-procview: notify.sock: {e}");
                    self.conns.remove(&fd);
                    return;
                }
            }
        }
        // End of stream: the whole message is here.
        let Some(c) = self.conns.remove(&fd) else {
            return;
        };
        let v: serde_json::Value = match serde_json::from_slice(&c.data) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("husk-procview: notify.sock: not JSON: {e}");
                return;
            }
        };
        let Some(id) = v["state"]["id"].as_str() else {
            eprintln!("husk-procview: notify.sock: no state.id in the message");
            return;
        };
        let Some(listener) = c.fds.into_iter().next() else {
            eprintln!("husk-procview: notify.sock: {id}: no listener fd attached");
            return;
        };
        let key = format!("{}-{}", std::process::id(), self.next_key);
        self.next_key += 1;
        let held = Held {
            fd: listener,
            key,
            id: id.to_string(),
        };
        self.tell_keeper(&held);
        eprintln!(
            "husk-procview: {id}: seccomp listener {} (pid {})",
            held.key, v["pid"]
        );
        self.add(held, false);
    }

    fn tell_keeper(&self, h: &Held) {
        let Some(c) = &self.chan else { return };
        let msg = format!("add {} {}", h.key, hex(&h.id));
        if let Err(e) = sys::send_fds(c, msg.as_bytes(), &[h.fd.as_raw_fd()]) {
            eprintln!(
                "husk-procview: handing listener {} to the keeper: {e}",
                h.key
            );
        }
    }

    fn read_chan(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            let Some(c) = &self.chan else { return };
            let (n, mut fds) = match sys::recv_fds(c, &mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    eprintln!("husk-procview: agent channel: {e}");
                    return;
                }
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let words: Vec<&str> = text.split_whitespace().collect();
            match (words.as_slice(), fds.pop()) {
                (["add", key, id], Some(fd)) => {
                    if let Some(id) = unhex(id) {
                        let held = Held {
                            fd,
                            key: key.to_string(),
                            id,
                        };
                        self.add(held, true);
                    }
                }
                _ => eprintln!("husk-procview: agent channel: unexpected {text:?}"),
            }
        }
    }

    /// Adds a listener unless its key is known; `recover`: look for what a dead worker left.
    fn add(&mut self, held: Held, recover: bool) {
        if self.listeners.iter().any(|l| l.held.key == held.key) {
            return;
        }
        let _ = sys::set_cloexec(&held.fd, true);
        self.listeners.push(Listener {
            held,
            journal: None,
        });
        if recover && self.active() {
            let i = self.listeners.len() - 1;
            self.recover(i);
        }
    }

    fn journal_path(&self, key: &str) -> PathBuf {
        self.journal_dir.join(key)
    }

    fn recover_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.recover(i);
        }
    }

    /// Answers the notifications of listener `i` that a dead worker received and left.
    fn recover(&mut self, i: usize) {
        let l = &self.listeners[i];
        let Ok(text) = std::fs::read_to_string(self.journal_path(&l.held.key)) else {
            return;
        };
        let f: Vec<u64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [nid, pid, addr, arch, nr] = f[..] else {
            return;
        };
        let fd = l.held.fd.as_raw_fd();
        let id = l.held.id.clone();
        let key = l.held.key.clone();
        for x in nid..nid.saturating_add(RECOVER_SPAN) {
            if !sys::notif_id_valid(fd, x) {
                continue;
            }
            eprintln!("husk-procview: {id}: answering notification {x} an earlier worker left");
            let n = Notif {
                id: x,
                pid: pid as u32,
                nr: nr as i32,
                arch: arch as u32,
                args: [addr, 0, 0, 0, 0, 0],
            };
            match sysinfo_abi(n.arch, n.nr).filter(|_| x == nid) {
                Some(abi) => self.recovered.push((key.clone(), n, abi)),
                None => {
                    let _ =
                        sys::notif_send(fd, x, 0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32);
                }
            }
        }
    }

    /// Receives and answers one notification of listener `key`.
    fn serve(&mut self, key: &str, fs: &mut Fs) {
        let Some(i) = self.listeners.iter().position(|l| l.held.key == key) else {
            return;
        };
        let fd = self.listeners[i].held.fd.as_raw_fd();
        let ev = sys::revents(fd);
        if ev & libc::POLLIN == 0 {
            if ev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                self.drop_listener(i);
            }
            return;
        }
        let n = match sys::notif_recv(fd) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return,
            Err(e) => {
                eprintln!("husk-procview: {key}: SECCOMP_IOCTL_NOTIF_RECV: {e}");
                return;
            }
        };
        let Some(abi) = sysinfo_abi(n.arch, n.nr) else {
            let flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            let _ = sys::notif_send(fd, n.id, 0, 0, flags);
            return;
        };
        self.journal(i, &n);
        self.answer(i, &n, abi, fs);
    }

    /// Writes the notification being answered to the listener's journal.
    fn journal(&mut self, i: usize, n: &Notif) {
        let path = self.journal_path(&self.listeners[i].held.key);
        let l = &mut self.listeners[i];
        if l.journal.is_none() {
            l.journal = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&path)
                .ok();
        }
        if let Some(f) = &l.journal {
            let line = format!(
                "{:020} {:010} {:020} {:010} {:010}\n",
                n.id, n.pid, n.args[0], n.arch, n.nr as u32
            );
            let _ = f.write_all_at(line.as_bytes(), 0);
        }
    }

    /// Computes the container's sysinfo and writes it to the caller, or lets the call run.
    fn answer(&mut self, i: usize, n: &Notif, abi: Abi, fs: &mut Fs) {
        let l = &self.listeners[i];
        let fd = l.held.fd.as_raw_fd();
        let id = l.held.id.clone();
        let si = match fs.registration(&id) {
            Ok(reg) => view::sysinfo(&id, &reg, &fs.loads)
                .map_err(|e| eprintln!("husk-procview: {id}: sysinfo: {e}"))
                .ok(),
            Err(_) => None,
        };
        let continue_ = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
        let Some(si) = si else {
            // Nothing to compute from (the container is being deleted): the host's.
            let _ = sys::notif_send(fd, n.id, 0, 0, continue_);
            return;
        };
        let bytes: Vec<u8> = match abi {
            Abi::Wide => si.to_bytes_64().to_vec(),
            Abi::Compat => si.to_bytes_32().to_vec(),
        };
        if !sys::notif_id_valid(fd, n.id) {
            return;
        }
        match sys::write_process(n.pid as i32, n.args[0], &bytes) {
            Ok(k) if k == bytes.len() => {}
            Ok(_) => {
                let _ = sys::notif_send(fd, n.id, 0, libc::EFAULT, 0);
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                let _ = sys::notif_send(fd, n.id, 0, libc::EFAULT, 0);
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return,
            Err(e) => {
                eprintln!("husk-procview: {id}: writing sysinfo to pid {}: {e}", n.pid);
                let _ = sys::notif_send(fd, n.id, 0, 0, continue_);
                return;
            }
        }
        // The pid could have been reused between the write and here only if the caller died,
        // and then its notification is no longer valid: nothing to answer.
        if !sys::notif_id_valid(fd, n.id) {
            return;
        }
        if let Err(e) = sys::notif_send(fd, n.id, 0, 0, 0) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                eprintln!("husk-procview: {id}: SECCOMP_IOCTL_NOTIF_SEND: {e}");
            }
        }
    }

    fn drop_listener(&mut self, i: usize) {
        let l = self.listeners.remove(i);
        let _ = std::fs::remove_file(self.journal_path(&l.held.key));
        if let Some(c) = &self.chan {
            let msg = format!("drop {}", l.held.key);
            let _ = sys::send_fds(c, msg.as_bytes(), &[]);
        }
    }

    /// For a keeper this worker starts because its keeper died: a fresh channel, and every
    /// descriptor made inheritable. Returns the arguments and the descriptors to close once
    /// the keeper is started.
    pub fn for_new_keeper(&mut self) -> Result<(Vec<String>, Vec<OwnedFd>)> {
        let Some(notify) = &self.notify else {
            return Ok((Vec::new(), Vec::new()));
        };
        let (k, w) = UnixDatagram::pair().map_err(io("socketpair"))?;
        let (k, w) = (OwnedFd::from(k), OwnedFd::from(w));
        cloexec(notify, false)?;
        cloexec(&k, false)?;
        cloexec(&w, false)?;
        let held: Vec<Held> = self
            .listeners
            .iter()
            .filter_map(|l| {
                Some(Held {
                    fd: l.held.fd.try_clone().ok()?,
                    key: l.held.key.clone(),
                    id: l.held.id.clone(),
                })
            })
            .collect();
        let args = vec![
            "--notify-fd".into(),
            notify.as_raw_fd().to_string(),
            "--agent-fd".into(),
            k.as_raw_fd().to_string(),
            "--agent-worker-fd".into(),
            w.as_raw_fd().to_string(),
            "--listeners".into(),
            encode_list(&held),
        ];
        // The copies (and the keeper's end) close here once the keeper has inherited them; our
        // own listeners stay close-on-exec.
        let mut close_after = vec![k];
        close_after.extend(held.into_iter().map(|h| h.fd));
        self.chan = Some(UnixDatagram::from(w));
        Ok((args, close_after))
    }
}

/// Adopts an inherited descriptor number, if given.
pub fn adopt(n: Option<i32>) -> Result<Option<OwnedFd>> {
    n.map(|n| sys::adopt_fd(n as RawFd).map_err(io(format!("fd {n}"))))
        .transpose()
}
