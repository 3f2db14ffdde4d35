//! The container's own processes, from clone to exec. Nothing here allocates (see
//! docs/design.md): failures go back to the parent as `Fail` integers.

use std::os::fd::RawFd;

use crate::fail::{Fail, Step};
use crate::hooks::{self, Kind};
use crate::plan::Plan;
use crate::protocol::{Chan, Fds, Msg, RecvError};
use crate::sys::{self, proc::Cloned};

crate::fail::codes! {
    /// Child failure codes of `Step::Sync`.
    pub(crate) enum SyncCode {
        Send,
        Recv,
        Unexpected,
        Accept,
        Dumpable,
        /// idx: the v1 hierarchy.
        JoinCgroup,
        /// idx: 0, 1 or 2 (stdin, stdout, stderr).
        Stdio,
        /// Closing the fds the child does not use.
        CloseFds,
    }
}

crate::fail::codes! {
    /// Child failure codes of `Step::Console`.
    pub(crate) enum ConsoleCode {
        Ptmx,
        Unlock,
        Peer,
        Ctty,
        Stdio,
    }
}

fn sync_fail(c: SyncCode, e: i32) -> Fail {
    Fail::new(c, 0, e)
}

fn send(chan: Chan, msg: Msg, fds: &[RawFd]) -> Result<(), Fail> {
    chan.send(msg, fds)
        .map_err(|e| sync_fail(SyncCode::Send, e))
}

/// Child side, first of all: into the v1 cgroups as a single thread ("0" to each `tasks` file
/// the parent opened): no RCU grace period, unlike the parent's cgroup.procs write
/// (cgroups::Manager::v1_tasks). Used by the init and by exec's process.
pub(crate) fn join_cgroups(tasks: &[RawFd]) -> Result<(), Fail> {
    for (i, &fd) in tasks.iter().enumerate() {
        sys::write_all(fd, b"0").map_err(|e| Fail::new(SyncCode::JoinCgroup, i as u32, e))?;
        sys::close(fd);
    }
    Ok(())
}

/// Child side: puts the fds the caller gave for stdin, stdout and stderr on 0, 1 and 2 (-1
/// keeps the inherited one). The sources are 3 or above (see io::StdioSet::prepare), so no
/// dup2 overwrites a source still to be copied; they are close-on-exec.
pub(crate) fn connect_stdio(fds: &[RawFd; 3]) -> Result<(), Fail> {
    for (i, &fd) in fds.iter().enumerate() {
        if fd >= 0 {
            sys::proc::dup2(fd, i as RawFd).map_err(|e| Fail::new(SyncCode::Stdio, i as u32, e))?;
        }
    }
    Ok(())
}

/// Waits for `Proceed`; returns the fd attached to it, if any. If the parent is gone (EOF), the
/// child exits quietly: a killed `create` must leave nothing running.
pub(crate) fn wait_proceed(chan: Chan) -> Result<Option<RawFd>, Fail> {
    wait_proceed_fds(chan).map(|fds| fds.first())
}

/// Like `wait_proceed`, with every fd that came.
fn wait_proceed_fds(chan: Chan) -> Result<Fds, Fail> {
    match chan.recv() {
        Ok((Msg::Proceed, fds)) => Ok(fds),
        Ok((_, fds)) => {
            fds.close_all();
            Err(sync_fail(SyncCode::Unexpected, libc::EPROTO))
        }
        Err(RecvError::Closed) => sys::exit(1),
        Err(RecvError::Garbled) => Err(sync_fail(SyncCode::Recv, libc::EPROTO)),
        Err(RecvError::Errno(e)) => Err(sync_fail(SyncCode::Recv, e)),
    }
}

/// Entry point of the first clone child. Never returns.
pub(crate) fn first_child(plan: &mut Plan, chan: Chan, listener: RawFd) -> ! {
    let mut report = chan;
    if let Err(f) = first_child_steps(plan, chan, listener, &mut report) {
        report.fail(f);
    }
    sys::exit(1)
}

fn first_child_steps(
    plan: &mut Plan,
    chan: Chan,
    listener: RawFd,
    report: &mut Chan,
) -> Result<(), Fail> {
    // Until exec this process is husk's image: nothing in the container may open its
    // /proc/PID/exe (the host binary) or its fds. While it holds every capability the kernel's
    // capability check already refuses less privileged processes; this also covers the
    // moment between dropping capabilities and exec (execve makes it dumpable again).
    if !plan.ns.unprivileged_maps {
        sys::proc::set_dumpable(false).map_err(|e| sync_fail(SyncCode::Dumpable, e))?;
    }
    join_cgroups(&plan.cgroup_join)?;
    connect_stdio(&plan.proc.stdio)?;
    // The parent puts us in the rest of our cgroups (and writes maps for a user ns made by
    // clone3).
    wait_proceed(chan)?;
    if plan.ns.clone_flags == 0 {
        plan.ns.join_and_unshare()?;
        if plan.ns.child_asks_maps() {
            send(chan, Msg::WriteIdMaps, &[])?;
            wait_proceed(chan)?;
        }
    }
    if plan.ns.unprivileged_maps {
        // The maps are written (nothing of the container could reach this process before).
        sys::proc::set_dumpable(false).map_err(|e| sync_fail(SyncCode::Dumpable, e))?;
    }
    plan.ns.become_root()?;
    if plan.ns.fork_init {
        // CLONE_PARENT: the init is the parent's child, so the parent (and `run`) can wait
        // for it, and it stays a descendant of the caller.
        match sys::proc::clone3(libc::CLONE_PARENT as u64, None) {
            Err(e) => return Err(Fail::new(crate::namespaces::Code::ForkInit, 0, e)),
            Ok(Cloned::Parent { pid, pidfd }) => {
                send(chan, Msg::InitForked { pid }, &[pidfd])?;
                sys::exit(0);
            }
            Ok(Cloned::Child) => {}
        }
    }
    init(plan, chan, listener, report)
}

/// The init: set-up, `Created`, wait for `start`, exec.
fn init(plan: &mut Plan, chan: Chan, listener: RawFd, report: &mut Chan) -> Result<(), Fail> {
    plan.ns.finish()?;
    plan.rootfs.mount_all()?;
    send(chan, Msg::RuntimeHooks, &[])?;
    // The state, and memfds for the hooks' stdout and stderr (the parent reads them).
    let fds = wait_proceed_fds(chan)?;
    let no_env = [std::ptr::null()];
    let io = hook_io(&fds, Some(&plan.root_dir), &no_env);
    hooks::run_prepared(Kind::CreateContainer, &plan.create_container, &io)?;
    fds.close_all();
    let mut tty = -1;
    if plan.proc.terminal {
        tty = console(plan, chan)?;
        // The caller's stdio is dropped now, not at start: a caller that reads create's
        // output to EOF (containerd's shim does) would otherwise wait for the container.
        for fd in 0..3 {
            sys::proc::dup2(tty, fd).map_err(|e| Fail::new(ConsoleCode::Stdio, 0, e))?;
        }
    }
    plan.rootfs.enter()?;
    plan.proc.prepare()?;
    plan.proc.apply_lsm()?;
    send(chan, Msg::Created, &[])?;
    sys::close(chan.0);

    // Wait for `start`. From here failures go to the `start` command.
    let conn = sys::sock::accept(listener).map_err(|e| sync_fail(SyncCode::Accept, e))?;
    sys::close(listener);
    *report = Chan(conn);
    let fds = match report.recv() {
        Ok((Msg::Start, fds)) => fds,
        Ok(_) => return Err(sync_fail(SyncCode::Unexpected, libc::EPROTO)),
        Err(RecvError::Errno(e)) => return Err(sync_fail(SyncCode::Recv, e)),
        Err(_) => return Err(sync_fail(SyncCode::Recv, libc::EPROTO)),
    };
    // A session of its own, terminal or not, as runc's init: a session led from outside the
    // container's pid namespace is one CRIU cannot dump.
    sys::proc::setsid().map_err(|e| Fail::new(ConsoleCode::Ctty, 0, e))?;
    if tty >= 0 {
        let f = |c: ConsoleCode, e| Fail::new(c, 0, e);
        sys::proc::set_ctty(tty).map_err(|e| f(ConsoleCode::Ctty, e))?;
        if tty > 2 {
            sys::close(tty);
        }
    }
    // The process's user, capabilities, no_new_privs and seccomp filter first: startContainer
    // hooks run as the process will, under the same filter, as runc's do.
    plan.proc.apply(*report)?;
    // runc's run in the container's root with the process's environment when they have none.
    let io = hook_io(&fds, Some(c"/"), plan.proc.env.ptrs());
    hooks::run_prepared(Kind::StartContainer, &plan.start_container, &io)?;
    fds.close_all();
    Err(plan.proc.exec())
}

/// The hooks' stdio from the fds the parent sent: state, stdout, stderr.
fn hook_io<'a>(
    fds: &Fds,
    cwd: Option<&'a std::ffi::CStr>,
    env: &'a [*const libc::c_char],
) -> hooks::Io<'a> {
    hooks::Io {
        stdin: fds.get(0).unwrap_or(-1),
        out: fds.get(1).unwrap_or(-1),
        err: fds.get(2).unwrap_or(-1),
        cwd,
        env,
    }
}

/// Opens a pty from the container's devpts, binds its slave on /dev/console, and sends the
/// master to the parent. Returns the slave fd.
fn console(plan: &mut Plan, chan: Chan) -> Result<RawFd, Fail> {
    let f = |c: ConsoleCode, e| Fail::new(c, 0, e);
    let master = plan.rootfs.open_ptmx()?;
    sys::proc::unlockpt(master).map_err(|e| f(ConsoleCode::Unlock, e))?;
    let slave = sys::proc::pty_peer(master).map_err(|e| f(ConsoleCode::Peer, e))?;
    if let Some((rows, cols)) = plan.console_size {
        let _ = sys::proc::set_winsize(master, rows, cols);
    }
    plan.rootfs.bind_console(slave)?;
    send(chan, Msg::Console, &[master])?;
    sys::close(master);
    Ok(slave)
}

/// Parent side: the message for Sync and Console failures.
pub(crate) fn describe(f: &Fail) -> String {
    let e = crate::fail::errno_text(f.errno);
    match f.step {
        Step::Sync(SyncCode::Accept) => format!("waiting for start: {e}"),
        Step::Sync(SyncCode::Dumpable) => {
            format!("making the container process non-dumpable: {e}")
        }
        Step::Sync(SyncCode::JoinCgroup) => {
            format!(
                "joining the container's cgroup (v1 hierarchy #{}): {e}",
                f.idx
            )
        }
        Step::Sync(SyncCode::Stdio) => {
            let name = ["stdin", "stdout", "stderr"]
                .get(f.idx as usize)
                .unwrap_or(&"stdio");
            format!("connecting the container's {name} to the fd given for it: {e}")
        }
        Step::Sync(SyncCode::CloseFds) => format!("closing inherited fds: {e}"),
        Step::Sync(_) => format!("talking to the parent process: {e}"),
        Step::Console(ConsoleCode::Ptmx) => format!("opening the container's /dev/ptmx: {e}"),
        Step::Console(ConsoleCode::Ctty) => format!("setting the controlling terminal: {e}"),
        Step::Console(ConsoleCode::Stdio) => format!("connecting stdio to the terminal: {e}"),
        _ => format!("setting up the terminal: {e}"),
    }
}
