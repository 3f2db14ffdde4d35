//! linux.seccomp: compiled in the parent by `crates/seccomp` (the child never allocates),
//! installed by the container process as late as its privileges allow, and, for NOTIFY
//! rules, the listener fd handed to the agent at `listenerPath` with the container's state.
//!
//! When: with `noNewPrivileges` the filter goes on last, just before execve; without it
//! installing needs CAP_SYS_ADMIN, so it goes on before the uid switch and the capability
//! drop (as runc does), and the profile must allow what follows (setresuid, capset, execve).

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::error::{Error, Result};
use crate::fail::Fail;
use crate::oci_spec::runtime::Spec;
use crate::process::Code as ProcessCode;
use crate::protocol::{Chan, Msg};
use crate::sys;

/// A compiled filter, ready for `seccomp(2)`.
#[derive(Debug)]
pub(crate) struct Compiled {
    program: Vec<seccomp::bpf::Insn>,
    flags: u32,
    notify: bool,
}

/// Compiles `linux.seccomp` (None without one). Names no listed architecture knows are
/// ignored silently, as runc ignores them.
pub(crate) fn build(spec: &Spec) -> Result<Option<Compiled>> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let f = seccomp::compile(p)
        .map_err(|e| Error::config("linux.seccomp", format!("linux.seccomp: {e}")))?;
    // Names no listed architecture knows (f.skipped) are skipped without a word, as runc
    // (libseccomp) skips them: common profiles name other architectures' calls (recv, send)
    // and a warning on every create would be noise.
    Ok(Some(Compiled {
        program: f.program,
        flags: f.flags,
        notify: f.notify,
    }))
}

impl Compiled {
    /// Child side: installs the filter; a NOTIFY listener fd goes to the parent on `report`.
    pub(crate) fn install(&self, report: Chan) -> std::result::Result<(), Fail> {
        let fd = sys::creds::seccomp_filter(&self.program, self.flags)
            .map_err(|e| Fail::new(ProcessCode::SeccompInstall, 0, e))?;
        if self.notify {
            let sent = report.send(Msg::SeccompListener, &[fd]);
            sys::close(fd);
            sent.map_err(|e| Fail::new(ProcessCode::SeccompListener, 0, e))?;
        }
        Ok(())
    }

    pub(crate) fn notifies(&self) -> bool {
        self.notify
    }

    pub(crate) fn describe(code: ProcessCode, errno: i32) -> Option<String> {
        let e = crate::fail::errno_text(errno);
        match code {
            ProcessCode::SeccompInstall => Some(format!("installing the seccomp filter: {e}")),
            ProcessCode::SeccompListener => Some(format!("sending the seccomp listener fd: {e}")),
            _ => None,
        }
    }
}

/// Parent side: sends the listener fd to the agent at `listenerPath` with the container
/// process state (runtime-spec config-linux.md): `{"ociVersion", "fds": ["seccompFd"],
/// "pid", "metadata", "state"}`, the fd attached to the same message. `fd` is the one the
/// `SeccompListener` message carried (taken over and closed here).
pub(crate) fn send_to_agent(spec: &Spec, state: &[u8], pid: i32, fd: Option<RawFd>) -> Result<()> {
    let owned = sys::adopt(fd.ok_or_else(|| Error::setup("the seccomp listener fd is missing"))?);
    let fd = owned.as_raw_fd();
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .ok_or_else(|| Error::setup("a seccomp listener fd without linux.seccomp"))?;
    let path = p.listener_path().as_ref().ok_or_else(|| {
        Error::config("linux.seccomp", "linux.seccomp: NOTIFY needs listenerPath")
    })?;
    let state: serde_json::Value = serde_json::from_slice(state).unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": p.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let s = UnixStream::connect(path).map_err(|e| {
        Error::io(
            format!(
                "connecting to the seccomp agent at linux.seccomp.listenerPath {}",
                path.display()
            ),
            e,
        )
    })?;
    let bytes = serde_json::to_vec(&msg).unwrap_or_default();
    sys::sock::send(s.as_raw_fd(), &bytes, &[fd]).map_err(|e| {
        Error::errno(
            format!("sending the seccomp listener fd to {}", path.display()),
            e,
        )
    })
}
