//! OCI hooks. prestart, createRuntime, poststart and poststop run in the runtime's namespaces,
//! from the parent (which may allocate); createContainer and startContainer run in the
//! container's namespaces, from the init, prepared before clone so the init need not allocate.

use std::ffi::{CStr, CString};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::error::HookFailure;
use crate::fail::Fail;
use crate::oci_spec::runtime::Hook;
use crate::process::CArray;
use crate::sys;
use crate::{Error, Result};

/// Which hook list a hook is in (runtime-spec's `hooks` keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `prestart` (deprecated by the spec; run with createRuntime).
    Prestart,
    /// `createRuntime`: in the runtime's namespaces, after the mounts are made.
    CreateRuntime,
    /// `createContainer`: in the container's namespaces, before pivot_root.
    CreateContainer,
    /// `startContainer`: in the container, just before its process is executed.
    StartContainer,
    /// `poststart`: after the process was executed.
    Poststart,
    /// `poststop`: after the container was deleted.
    Poststop,
}

crate::fail::codes! {
    /// Child failure codes of `Step::Hook` (the hooks the init runs); `idx`: the hook.
    pub(crate) enum Code {
        CreateContainer,
        StartContainer,
        CreateContainerTimedOut,
        StartContainerTimedOut,
        CreateContainerNotRun,
        StartContainerNotRun,
    }
}

impl Kind {
    /// Every hook list, in lifecycle order.
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];

    /// The key in config.json's `hooks`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

fn check(kind: Kind, hooks: &[Hook]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        if !h.path().is_absolute() {
            return Err(Error::config(
                format!("hooks.{}[{i}].path", kind.name()),
                format!(
                    "hooks.{}[{i}].path {} must be absolute",
                    kind.name(),
                    h.path().display()
                ),
            ));
        }
        if matches!(h.timeout(), Some(t) if t <= 0) {
            return Err(Error::config(
                format!("hooks.{}[{i}].timeout", kind.name()),
                format!("hooks.{}[{i}].timeout must be positive", kind.name()),
            ));
        }
    }
    Ok(())
}

/// Validates every hook list of a spec.
pub(crate) fn validate(spec: &crate::oci_spec::runtime::Spec) -> Result<()> {
    if let Some(h) = spec.hooks() {
        for (kind, list) in [
            (Kind::Prestart, h.prestart()),
            (Kind::CreateRuntime, h.create_runtime()),
            (Kind::CreateContainer, h.create_container()),
            (Kind::StartContainer, h.start_container()),
            (Kind::Poststart, h.poststart()),
            (Kind::Poststop, h.poststop()),
        ] {
            check(kind, list.as_deref().unwrap_or_default())?;
        }
    }
    Ok(())
}

/// How a hook ended, when it did not succeed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ended {
    /// Exited with this non-zero status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// Ran past its timeout and was killed.
    TimedOut,
    /// Could not be executed (or a system call preparing it failed): the errno.
    NotRun(i32),
}

/// What a hook runs with besides itself.
pub(crate) struct Io<'a> {
    /// The state JSON (rewound before each hook).
    pub stdin: RawFd,
    /// Where its stdout and stderr go (emptied before each hook); -1: inherited.
    pub out: RawFd,
    pub err: RawFd,
    /// Its working directory; None: the caller's.
    pub cwd: Option<&'a CStr>,
    /// The environment of a hook whose `env` is absent.
    pub env: &'a [*const libc::c_char],
}

/// Runs one hook and waits for it (killing it at its timeout). No allocation: the init calls
/// it. `Err`: a system call failed before the hook ran.
fn spawn_wait(h: &Prepared, io: &Io) -> std::result::Result<Option<Ended>, i32> {
    sys::proc::rewind(io.stdin)?;
    for fd in [io.out, io.err].into_iter().filter(|&fd| fd >= 0) {
        sys::proc::empty(fd)?;
    }
    // The child writes execve's errno here; close-on-exec, so EOF means it executed.
    let (rd, wr) = sys::proc::pipe()?;
    let pidfd = match sys::proc::clone3(0, None) {
        Err(e) => {
            sys::close(rd);
            sys::close(wr);
            return Err(e);
        }
        Ok(sys::proc::Cloned::Child) => {
            let _ = sys::proc::dup2(io.stdin, 0);
            if io.out >= 0 {
                let _ = sys::proc::dup2(io.out, 1);
            }
            if io.err >= 0 {
                let _ = sys::proc::dup2(io.err, 2);
            }
            // Nothing of the runtime's (state dir, sockets, the caller's leaks) reaches it.
            let mut e = sys::proc::cloexec_from(3).err().unwrap_or(0);
            if e == 0 {
                if let Some(cwd) = io.cwd {
                    e = sys::mount::chdir(cwd).err().unwrap_or(0);
                }
            }
            if e == 0 {
                sys::proc::reset_signals();
                let env = h.env.as_ref().map(|e| e.ptrs()).unwrap_or(io.env);
                e = sys::proc::execve(&h.path, h.args.ptrs(), env);
            }
            let _ = sys::write_all(wr, &e.to_ne_bytes());
            sys::exit(127);
        }
        Ok(sys::proc::Cloned::Parent { pidfd, .. }) => pidfd,
    };
    sys::close(wr);
    let exited = sys::proc::poll_in(pidfd, h.timeout_ms).unwrap_or(true);
    if !exited {
        let _ = sys::proc::signal_pidfd(pidfd, libc::SIGKILL);
    }
    let status = sys::proc::wait_pidfd(pidfd);
    sys::close(pidfd);
    let mut buf = [0u8; 4];
    let n = sys::read(rd, &mut buf).unwrap_or(0);
    sys::close(rd);
    if n == buf.len() {
        return Ok(Some(Ended::NotRun(i32::from_ne_bytes(buf))));
    }
    if !exited {
        return Ok(Some(Ended::TimedOut));
    }
    // wait_pidfd reports a signal as 128+N, as a shell does.
    Ok(match status? {
        0 => None,
        s if s > 128 => Some(Ended::Signaled(s - 128)),
        s => Some(Ended::Exited(s)),
    })
}

/// Go's name of a signal (its os/exec errors say "signal: killed").
fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        _ => return format!("signal {sig}"),
    };
    name.into()
}

/// The error for a failed hook, worded as runc words it ("error running poststart hook #0:
/// exit status 3, stdout: , stderr: "): engines and scripts match on that.
fn failure(
    kind: Kind,
    index: usize,
    hook: Option<&Hook>,
    ended: Ended,
    out: &str,
    err: &str,
) -> Error {
    let path = hook.map(|h| h.path().clone()).unwrap_or_default();
    let (failure, why) = match ended {
        Ended::Exited(c) => (
            HookFailure::Exited(c),
            format!("exit status {c}, stdout: {out}, stderr: {err}"),
        ),
        Ended::Signaled(s) => (
            HookFailure::Signaled(s),
            format!("signal: {}, stdout: {out}, stderr: {err}", signal_name(s)),
        ),
        Ended::TimedOut => {
            let t = hook.and_then(|h| h.timeout()).unwrap_or(0);
            (
                HookFailure::TimedOut(t),
                format!("hook ran past specified timeout of {t}.0s"),
            )
        }
        Ended::NotRun(e) => (
            HookFailure::CouldNotRun(Some(e)),
            format!("fork/exec {}: {}", path.display(), sys::strerror(e)),
        ),
    };
    Error::Hook {
        kind,
        index,
        path,
        failure,
        msg: format!("error running {} hook #{index}: {why}", kind.name()),
    }
}

/// Parent side: runs `hooks` in order with `state` on stdin and `cwd` (the bundle; None: the
/// caller's) as their working directory; the first failure ends the list and is the error.
pub(crate) fn run(kind: Kind, hooks: &[Hook], state: &[u8], cwd: Option<&Path>) -> Result<()> {
    match run_each(kind, hooks, state, cwd, false).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Parent side: runs every hook of `hooks`, failing or not, and returns the failures: for
/// poststart and poststop, whose failures runtime-spec makes warnings ("the remaining hooks and
/// lifecycle continue as if the hook had succeeded").
pub(crate) fn run_all(kind: Kind, hooks: &[Hook], state: &[u8], cwd: Option<&Path>) -> Vec<Error> {
    run_each(kind, hooks, state, cwd, true)
}

fn run_each(kind: Kind, hooks: &[Hook], state: &[u8], cwd: Option<&Path>, all: bool) -> Vec<Error> {
    if hooks.is_empty() {
        return Vec::new();
    }
    let prepared = match prepare(hooks) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    // A hook without `env` gets the runtime's own environment, as runc's (Go's exec) do.
    let env = CArray::new(
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut b = k.into_vec();
                b.push(b'=');
                b.extend(v.into_vec());
                CString::new(b).ok()
            })
            .collect(),
    );
    let cwd = cwd.and_then(|c| CString::new(c.as_os_str().as_bytes()).ok());
    let mut errors = Vec::new();
    for (i, (h, p)) in hooks.iter().zip(&prepared).enumerate() {
        let ran = (|| {
            let stdin = memfd(c"hook-state", state)?;
            let out = memfd(c"hook-stdout", b"")?;
            let err = memfd(c"hook-stderr", b"")?;
            let io = Io {
                stdin: stdin.as_raw_fd(),
                out: out.as_raw_fd(),
                err: err.as_raw_fd(),
                cwd: cwd.as_deref(),
                env: env.ptrs(),
            };
            Ok(spawn_wait(p, &io)?.map(|ended| (ended, read_all(&out), read_all(&err))))
        })();
        let e = match ran {
            Ok(None) => continue,
            Ok(Some((ended, out, err))) => failure(kind, i, Some(h), ended, &out, &err),
            Err(errno) => failure(kind, i, Some(h), Ended::NotRun(errno), "", ""),
        };
        errors.push(e);
        if !all {
            break;
        }
    }
    errors
}

/// Parent side: what the init's hooks get: the state (their stdin), and memfds for their
/// stdout and stderr, which the error of a failed hook quotes.
pub(crate) fn child_fds(state: &[u8]) -> Result<[std::fs::File; 3]> {
    let f = |name, data| memfd(name, data).map_err(|e| Error::errno("memfd", e));
    Ok([
        f(c"hook-state", state)?,
        f(c"hook-stdout", b"")?,
        f(c"hook-stderr", b"")?,
    ])
}

/// The pid of `pid` in its innermost pid namespace (NSpid's last field): the pid that hooks
/// run in the container see in their state, as runc's do.
pub(crate) fn inner_pid(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|p| p.parse().ok())
        })
        .unwrap_or(pid)
}

fn memfd(name: &CStr, data: &[u8]) -> std::result::Result<std::fs::File, i32> {
    sys::proc::memfd_with(name, data).map(|fd| std::fs::File::from(sys::adopt(fd)))
}

fn read_all(mut f: &std::fs::File) -> String {
    let mut buf = Vec::new();
    let _ = f.rewind();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A hook prepared before any clone, so the init need not allocate to run it.
pub(crate) struct Prepared {
    path: CString,
    args: CArray,
    /// None when the config gives no `env` (then `Io::env` applies), as runc tells a nil
    /// env (the runtime's) from an empty one.
    env: Option<CArray>,
    timeout_ms: i32,
}

/// Prepares a list of hooks.
pub(crate) fn prepare(hooks: &[Hook]) -> Result<Vec<Prepared>> {
    hooks
        .iter()
        .map(|h| {
            let c = |s: &[u8]| {
                CString::new(s).map_err(|_| {
                    Error::config(
                        "hooks",
                        format!("hook {} contains a NUL byte", h.path().display()),
                    )
                })
            };
            let path = c(h.path().as_os_str().as_bytes())?;
            let mut args: Vec<CString> = h
                .args()
                .iter()
                .flatten()
                .map(|a| c(a.as_bytes()))
                .collect::<Result<_>>()?;
            if args.is_empty() {
                args.push(path.clone());
            }
            let env = match h.env() {
                Some(env) => Some(CArray::new(
                    env.iter().map(|e| c(e.as_bytes())).collect::<Result<_>>()?,
                )),
                None => None,
            };
            Ok(Prepared {
                path,
                args: CArray::new(args),
                env,
                timeout_ms: h
                    .timeout()
                    .map(|t| (t as i32).saturating_mul(1000))
                    .unwrap_or(-1),
            })
        })
        .collect()
}

/// Child side, no allocation: runs prepared hooks in order; the first failure is the error.
pub(crate) fn run_prepared(kind: Kind, hooks: &[Prepared], io: &Io) -> Result<(), Fail> {
    let (code, timed_out, not_run) = match kind {
        Kind::CreateContainer => (
            Code::CreateContainer,
            Code::CreateContainerTimedOut,
            Code::CreateContainerNotRun,
        ),
        _ => (
            Code::StartContainer,
            Code::StartContainerTimedOut,
            Code::StartContainerNotRun,
        ),
    };
    for (i, h) in hooks.iter().enumerate() {
        let i = i as u32;
        match spawn_wait(h, io) {
            Ok(None) => {}
            Ok(Some(Ended::Exited(s))) => return Err(Fail::new(code, i, s)),
            Ok(Some(Ended::Signaled(s))) => return Err(Fail::new(code, i, 128 + s)),
            Ok(Some(Ended::TimedOut)) => return Err(Fail::new(timed_out, i, 0)),
            Ok(Some(Ended::NotRun(e))) | Err(e) => return Err(Fail::new(not_run, i, e)),
        }
    }
    Ok(())
}

/// Parent side: the error for a child failure in `Step::Hook` (`create`, `start`: the
/// createContainer and startContainer hooks; `output`: the memfds their stdout and stderr went
/// to). The errno is the exit status (128+N for signal N), or for `*NotRun` the errno.
pub(crate) fn error(
    code: Code,
    f: &Fail,
    create: &[Hook],
    start: &[Hook],
    output: Option<[&std::fs::File; 2]>,
) -> Error {
    let kind = match code {
        Code::CreateContainer | Code::CreateContainerTimedOut | Code::CreateContainerNotRun => {
            Kind::CreateContainer
        }
        _ => Kind::StartContainer,
    };
    let hooks = if kind == Kind::CreateContainer {
        create
    } else {
        start
    };
    let ended = match code {
        Code::CreateContainerTimedOut | Code::StartContainerTimedOut => Ended::TimedOut,
        Code::CreateContainerNotRun | Code::StartContainerNotRun => Ended::NotRun(f.errno),
        _ if f.errno > 128 => Ended::Signaled(f.errno - 128),
        _ => Ended::Exited(f.errno),
    };
    let [out, err] = output.map(|files| files.map(read_all)).unwrap_or_default();
    let index = f.idx as usize;
    failure(kind, index, hooks.get(index), ended, &out, &err)
}
