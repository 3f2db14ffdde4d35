//! `husk-procview`: the resource view's FUSE server (see the crate docs).
//!
//! ```text
//! husk-procview serve   --root R [--ready-fd N]             the keeper (daemonizes)
//! husk-procview serve   --root R --fd N --adopt-worker P    a keeper taking over (internal)
//! husk-procview worker  --root R --fd N --keeper-pid P [--ready-fd N] [--takeover] [--resend]
//!                       [--notify-fd N --agent-fd N --listeners L] [--after PID]
//!     (a keeper passes --notify-fd, --agent-fd, --agent-worker-fd, --listeners to its
//!     successor: the seccomp agent's descriptors, see procview::agent)
//! husk-procview start   --root R [--binary B]               ensure the server runs
//! husk-procview restart --root R                            replace the worker
//! husk-procview stop    --root R                            stop if no container is registered
//! husk-procview status  --root R
//! ```

use std::collections::HashMap;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};

use procview::{agent, keeper, server, Layout};

const USAGE: &str =
    "usage: husk-procview serve|worker|start|restart|stop|status --root <state-root> [options]";

/// This binary's absolute path as started (not /proc/self/exe, which names a deleted file
/// after an upgrade): a SIGHUP restart starts the binary now at that path.
fn self_exe() -> PathBuf {
    if let Some(a) = std::env::args_os().next().map(PathBuf::from) {
        if a.is_absolute() {
            return a;
        }
        if a.components().count() > 1 {
            if let Ok(p) = std::path::absolute(&a) {
                return p;
            }
        }
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(procview::BINARY));
    let s = exe.to_string_lossy();
    match s.strip_suffix(" (deleted)") {
        Some(p) => PathBuf::from(p),
        None => exe,
    }
}

struct Args {
    opts: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    fn parse(rest: &[String]) -> Result<Args, String> {
        let mut a = Args {
            opts: HashMap::new(),
            flags: Vec::new(),
        };
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            match k.as_str() {
                "--takeover" | "--resend" => a.flags.push(k.clone()),
                "--root" | "--ready-fd" | "--fd" | "--adopt-worker" | "--keeper-pid"
                | "--binary" | "--notify-fd" | "--agent-fd" | "--agent-worker-fd"
                | "--listeners" | "--after" => {
                    let v = it.next().ok_or(format!("{k} needs a value"))?;
                    a.opts.insert(k.clone(), v.clone());
                }
                _ => return Err(format!("unknown argument {k}")),
            }
        }
        Ok(a)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.opts.get(k).map(String::as_str)
    }
    fn num(&self, k: &str) -> Result<Option<i32>, String> {
        self.get(k)
            .map(|v| {
                v.parse::<i32>()
                    .map_err(|_| format!("{k}: not a number: {v}"))
            })
            .transpose()
    }
    fn fd(&self, k: &str) -> Result<Option<std::os::fd::OwnedFd>, String> {
        match self.num(k)? {
            None => Ok(None),
            Some(n) => {
                let fd =
                    procview::keeper::adopt_fd(n as RawFd).map_err(|e| format!("{k} {n}: {e}"))?;
                if n > 2 {
                    return Ok(Some(fd));
                }
                // A standard descriptor (`--ready-fd 1`) is redirected to the log when the
                // server daemonizes: keep a copy of it and leave the number alone.
                let copy = fd.try_clone().map_err(|e| format!("{k} {n}: {e}"))?;
                let _ = fd.into_raw_fd();
                Ok(Some(copy))
            }
        }
    }
    /// `--listeners fd:key:hexid,...`: the seccomp listeners handed down.
    fn listeners(&self) -> Result<Vec<agent::Held>, String> {
        match self.get("--listeners") {
            None => Ok(Vec::new()),
            Some(v) => agent::decode_list(v).map_err(|e| e.to_string()),
        }
    }
    fn has(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }
}

fn run() -> Result<(), String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = argv.split_first().ok_or(USAGE)?;
    let a = Args::parse(rest)?;
    let root = PathBuf::from(a.get("--root").ok_or("--root is required")?);
    let root = std::path::absolute(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let layout = Layout::new(&root);
    let err = |e: procview::Error| e.to_string();
    match cmd.as_str() {
        "serve" => {
            let args = keeper::KeeperArgs {
                root,
                ready: a.fd("--ready-fd")?,
                fd: a.fd("--fd")?,
                adopt_worker: a.num("--adopt-worker")?,
                agent: (
                    a.fd("--notify-fd")?,
                    a.fd("--agent-fd")?,
                    a.fd("--agent-worker-fd")?,
                    a.listeners()?,
                ),
                exe: self_exe(),
            };
            keeper::run(args).map_err(err)
        }
        "worker" => {
            let args = server::WorkerArgs {
                root,
                fd: a.fd("--fd")?.ok_or("--fd is required")?,
                keeper_pid: a.num("--keeper-pid")?.ok_or("--keeper-pid is required")?,
                takeover: a.has("--takeover"),
                resend: a.has("--resend"),
                ready: a.fd("--ready-fd")?,
                agent: agent::AgentArgs {
                    notify: a.fd("--notify-fd")?,
                    chan: a.fd("--agent-fd")?,
                    held: a.listeners()?,
                    after: a.num("--after")?,
                },
                exe: self_exe(),
            };
            server::run(args).map_err(err)
        }
        "start" => {
            let bin = a
                .get("--binary")
                .map(PathBuf::from)
                .unwrap_or_else(self_exe);
            let g = procview::ensure_server(&layout, Some(Path::new(&bin))).map_err(err)?;
            drop(g);
            Ok(())
        }
        "restart" => procview::restart(&layout).map_err(err),
        "stop" => procview::stop_if_idle(&layout).map_err(err),
        "status" => {
            let s = procview::status(&layout);
            let pid = |p: Option<i32>| p.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
            println!("keeper: {}", pid(s.keeper));
            println!("worker: {}", pid(s.worker));
            println!("mounted: {}", s.mounted);
            println!("containers: {}", s.containers.join(" "));
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("husk-procview: {e}");
        std::process::exit(1);
    }
}
