//! OCI hooks. prestart, createRuntime, poststart and poststop run in the runtime's namespaces,
//! from the parent (which may allocate); createContainer and startContainer run in the
//! container's namespaces, from the init, prepared before clone so the init need not allocate.

use std::ffi::CString;
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

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

fn describe_hook(kind: Kind, i: usize, hook: Option<&Hook>) -> String {
    match hook {
        Some(h) => format!("{} hook #{i} ({})", kind.name(), h.path().display()),
        None => format!("{} hook #{i}", kind.name()),
    }
}

/// Parent side: runs `hooks` in order with `state` on stdin; the first failure is the error.
pub(crate) fn run(kind: Kind, hooks: &[Hook], state: &[u8]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).map_err(|(failure, why)| Error::Hook {
            kind,
            index: i,
            path: h.path().clone(),
            failure,
            msg: format!("{} {why}", describe_hook(kind, i, Some(h))),
        })?;
    }
    Ok(())
}

type Failed = (HookFailure, String);

fn memfd(name: &std::ffi::CStr, data: &[u8]) -> std::result::Result<std::fs::File, Failed> {
    let fd = sys::proc::memfd_with(name, data).map_err(|e| {
        (
            HookFailure::CouldNotRun(Some(e)),
            format!("memfd: {}", sys::strerror(e)),
        )
    })?;
    Ok(std::fs::File::from(crate::sys::adopt(fd)))
}

fn could_not(e: std::io::Error) -> Failed {
    (
        HookFailure::CouldNotRun(e.raw_os_error()),
        format!("could not run: {}", crate::fail::io_text(&e)),
    )
}

fn run_one(h: &Hook, state: &[u8]) -> std::result::Result<(), Failed> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    let stdin = memfd(c"hook-state", state)?;
    let mut out = memfd(c"hook-output", b"")?;
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(out.try_clone().map_err(could_not)?))
        .stderr(Stdio::from(out.try_clone().map_err(could_not)?));
    let mut child = cmd.spawn().map_err(could_not)?;
    let pidfd = sys::proc::pidfd_open(child.id() as i32)
        .map_err(|e| could_not(std::io::Error::from_raw_os_error(e)))?;
    let pidfd = crate::sys::adopt(pidfd);
    let timeout_ms = h
        .timeout()
        .map(|t| (t as i32).saturating_mul(1000))
        .unwrap_or(-1);
    let exited = sys::proc::poll_in(pidfd.as_raw_fd(), timeout_ms).unwrap_or(true);
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        let t = h.timeout().unwrap_or(0);
        return Err((HookFailure::TimedOut(t), format!("timed out after {t}s")));
    }
    let status = child.wait().map_err(could_not)?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = out.rewind();
    let _ = out.read_to_string(&mut text);
    let text = text.trim();
    let (failure, how) = match (status.code(), status.signal()) {
        (Some(c), _) => (HookFailure::Exited(c), format!("exited with status {c}")),
        (None, s) => (
            HookFailure::Signaled(s.unwrap_or(0)),
            format!("was killed by {status}"),
        ),
    };
    Err((
        failure,
        if text.is_empty() {
            how
        } else {
            format!("{how}: {text}")
        },
    ))
}

/// A hook prepared for the init.
pub(crate) struct Prepared {
    path: CString,
    args: CArray,
    env: CArray,
    timeout_ms: i32,
}

/// Parent side: prepares a list of hooks for the child.
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
            let env = h
                .env()
                .iter()
                .flatten()
                .map(|e| c(e.as_bytes()))
                .collect::<Result<_>>()?;
            Ok(Prepared {
                path,
                args: CArray::new(args),
                env: CArray::new(env),
                timeout_ms: h
                    .timeout()
                    .map(|t| (t as i32).saturating_mul(1000))
                    .unwrap_or(-1),
            })
        })
        .collect()
}

/// Child side, no allocation: runs prepared hooks in order with `state_fd` as stdin.
pub(crate) fn run_prepared(kind: Kind, hooks: &[Prepared], state_fd: i32) -> Result<(), Fail> {
    let (code, timed_out) = match kind {
        Kind::CreateContainer => (Code::CreateContainer, Code::CreateContainerTimedOut),
        _ => (Code::StartContainer, Code::StartContainerTimedOut),
    };
    for (i, h) in hooks.iter().enumerate() {
        let fail = |code: Code, e| Fail::new(code, i as u32, e);
        sys::proc::rewind(state_fd).map_err(|e| fail(code, -e))?;
        match sys::proc::clone3(0, None).map_err(|e| fail(code, -e))? {
            sys::proc::Cloned::Child => {
                let _ = sys::proc::dup2(state_fd, 0);
                sys::proc::reset_signals();
                sys::proc::execve(&h.path, h.args.ptrs(), h.env.ptrs());
                sys::exit(127);
            }
            sys::proc::Cloned::Parent { pidfd, .. } => {
                let exited = sys::proc::poll_in(pidfd, h.timeout_ms).unwrap_or(true);
                if !exited {
                    let _ = sys::proc::signal_pidfd(pidfd, libc::SIGKILL);
                }
                let status = sys::proc::wait_pidfd(pidfd).unwrap_or(-1);
                sys::close(pidfd);
                if !exited {
                    return Err(fail(timed_out, 0));
                }
                if status != 0 {
                    return Err(fail(code, status));
                }
            }
        }
    }
    Ok(())
}

/// Parent side: the error for a child failure in `Step::Hook` (`lists`: the createContainer
/// and startContainer hooks). A negative `errno` is a system-call failure; a positive one the
/// hook's exit status.
pub(crate) fn error(code: Code, f: &Fail, create: &[Hook], start: &[Hook]) -> Error {
    let (kind, hooks) = match code {
        Code::CreateContainer | Code::CreateContainerTimedOut => (Kind::CreateContainer, create),
        Code::StartContainer | Code::StartContainerTimedOut => (Kind::StartContainer, start),
    };
    let index = f.idx as usize;
    let hook = hooks.get(index);
    let what = describe_hook(kind, index, hook);
    let (failure, msg) = if matches!(
        code,
        Code::CreateContainerTimedOut | Code::StartContainerTimedOut
    ) {
        let t = hook.and_then(|h| h.timeout()).unwrap_or(0);
        (
            HookFailure::TimedOut(t),
            format!("{what} timed out after {t}s"),
        )
    } else if f.errno < 0 {
        (
            HookFailure::CouldNotRun(Some(-f.errno)),
            format!("{what} could not run: {}", sys::strerror(-f.errno)),
        )
    } else if f.errno == 127 {
        (
            HookFailure::Exited(127),
            format!("{what} exited with status 127 (not found or not executable?)"),
        )
    } else {
        let status = f.errno;
        // wait_pidfd reports a signal as 128+N, as a shell does.
        let failure = if status > 128 {
            HookFailure::Signaled(status - 128)
        } else {
            HookFailure::Exited(status)
        };
        (failure, format!("{what} exited with status {status}"))
    };
    Error::Hook {
        kind,
        index,
        path: hook.map(|h| h.path().clone()).unwrap_or_default(),
        failure,
        msg,
    }
}
