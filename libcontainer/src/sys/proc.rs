//! Processes: clone3, pidfds, waiting, signals, namespaces, exec.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::{cvt, cvt_long, retry};

/// CLONE_INTO_CGROUP (libc's constant is deprecated for its 32-bit type).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What clone3 returned.
pub(crate) enum Cloned {
    /// In the parent: the child's pid and its pidfd.
    Parent { pid: i32, pidfd: RawFd },
    /// In the child.
    Child,
}

/// clone3 without CLONE_VM: like fork, returns twice. `flags` may hold namespace flags and
/// CLONE_PARENT; a pidfd is always requested; `cgroup_fd` adds CLONE_INTO_CGROUP.
///
/// Unlike glibc's fork this runs no atfork handlers and takes no locks, so it is safe from a
/// child of a multi-threaded process; the new child must then only make system calls. Where
/// clone3 is refused with ENOSYS (seccomp profiles such as Docker's default do that), falls
/// back to clone(2), which cannot place the child in a cgroup: the caller must then join it
/// by cgroup.procs (`Err(ENOSYS)` is never returned for that reason alone).
pub(crate) fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> Result<Cloned, i32> {
    let mut pidfd: RawFd = -1;
    // SAFETY: clone_args is plain data; zeroed is a valid initial value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // With CLONE_PARENT the kernel wants no exit signal: the child inherits the caller's.
    let parent = flags & libc::CLONE_PARENT as u64 != 0;
    args.exit_signal = if parent { 0 } else { libc::SIGCHLD as u64 };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args for the size given; without CLONE_VM the child gets a
    // copy of this stack, so returning in both processes is sound (as with fork).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    let ret = match cvt_long(ret) {
        Err(libc::ENOSYS) if cgroup_fd.is_none() => {
            let sig = if parent { 0 } else { libc::SIGCHLD as u64 };
            // SAFETY: clone(2) without CLONE_VM and a null stack behaves like fork; with
            // CLONE_PIDFD the pidfd is stored through the parent_tid argument (third on every
            // architecture).
            cvt_long(unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    (flags | libc::CLONE_PIDFD as u64 | sig) as libc::c_ulong,
                    0usize,
                    &mut pidfd as *mut RawFd,
                    0usize,
                    0usize,
                )
            })?
        }
        r => r?,
    };
    match ret {
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent {
            pid: pid as i32,
            pidfd,
        }),
    }
}

/// pidfd_open(2).
pub(crate) fn pidfd_open(pid: i32) -> Result<RawFd, i32> {
    // SAFETY: plain syscall with integer arguments.
    cvt_long(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(|fd| fd as RawFd)
}

/// pidfd_send_signal(2).
pub(crate) fn pidfd_send_signal(pidfd: RawFd, sig: i32) -> Result<(), i32> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Waits for the process behind `pidfd` to exit and reaps it. Returns the wait status in the
/// shell's convention: the exit code, or 128+N when killed by signal N.
pub(crate) fn wait_pidfd(pidfd: RawFd) -> Result<i32, i32> {
    // SAFETY: siginfo_t is plain data; zeroed is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    retry(|| {
        // SAFETY: info is a valid out-pointer; P_PIDFD takes the fd as the id.
        cvt(unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, libc::WEXITED) })
    })?;
    // SAFETY: waitid filled a SIGCHLD siginfo, whose si_code/si_status are valid to read.
    let (code, status) = unsafe { (info.si_code, info.si_status()) };
    Ok(if code == libc::CLD_EXITED {
        status
    } else {
        128 + status
    })
}

/// Like `wait_pidfd`, without blocking: `Ok(None)` while the process runs.
pub(crate) fn try_wait_pidfd(pidfd: RawFd) -> Result<Option<i32>, i32> {
    // SAFETY: siginfo_t is plain data; zeroed is valid (si_pid stays 0 if nothing exited).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    retry(|| {
        // SAFETY: info is a valid out-pointer; P_PIDFD takes the fd as the id.
        cvt(unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        })
    })?;
    // SAFETY: waitid filled (or left zeroed) a SIGCHLD siginfo: these fields are valid.
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if code == libc::CLD_EXITED {
        status
    } else {
        128 + status
    }))
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub(crate) fn pipe() -> Result<(RawFd, RawFd), i32> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// Polls `fd` for readability for at most `timeout_ms` (-1: forever). True if readable.
pub(crate) fn poll_in(fd: RawFd, timeout_ms: i32) -> Result<bool, i32> {
    super::poll(&mut [super::pollfd(fd, libc::POLLIN)], timeout_ms).map(|n| n > 0)
}

/// setns(2).
pub(crate) fn setns(fd: RawFd, nstype: i32) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::setns(fd, nstype) }).map(drop)
}

/// unshare(2).
pub(crate) fn unshare(flags: i32) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

/// sethostname(2).
pub(crate) fn sethostname(name: &CStr) -> Result<(), i32> {
    let b = name.to_bytes();
    // SAFETY: pointer and length describe b.
    cvt(unsafe { libc::sethostname(b.as_ptr().cast(), b.len()) }).map(drop)
}

/// setdomainname(2).
pub(crate) fn setdomainname(name: &CStr) -> Result<(), i32> {
    let b = name.to_bytes();
    // SAFETY: pointer and length describe b.
    cvt(unsafe { libc::setdomainname(b.as_ptr().cast(), b.len()) }).map(drop)
}

/// setsid(2).
pub(crate) fn setsid() -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::setsid() }).map(drop)
}

/// dup3(2) with no flags (the new fd is inheritable across exec).
pub(crate) fn dup2(old: RawFd, new: RawFd) -> Result<(), i32> {
    if old == new {
        return set_cloexec(old, false);
    }
    // SAFETY: plain syscall.
    retry(|| cvt(unsafe { libc::dup3(old, new, 0) })).map(drop)
}

/// Sets or clears FD_CLOEXEC.
pub(crate) fn set_cloexec(fd: RawFd, on: bool) -> Result<(), i32> {
    // SAFETY: fcntl with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, new) }).map(drop)
}

/// Marks every fd from `first` up close-on-exec, so nothing the caller leaked reaches the
/// container.
pub(crate) fn cloexec_from(first: u32) -> Result<(), i32> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    cvt(unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) }).map(drop)
}

/// Closes every fd from 3 up except those in `keep` (sorted, ascending). No allocation.
pub(crate) fn close_except(keep: &[RawFd]) -> Result<(), i32> {
    let mut lo: u32 = 3;
    for &fd in keep {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd > lo {
            // SAFETY: close_range only closes fds of this process.
            cvt(unsafe { libc::close_range(lo, fd - 1, 0) })?;
        }
        lo = lo.max(fd + 1);
    }
    // SAFETY: as above.
    cvt(unsafe { libc::close_range(lo, u32::MAX, 0) }).map(drop)
}

/// A memfd holding `data`, positioned at 0, close-on-exec.
pub(crate) fn memfd_with(name: &CStr, data: &[u8]) -> Result<RawFd, i32> {
    // SAFETY: name is a valid C string.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    if let Err(e) = super::write_all(fd, data) {
        super::close(fd);
        return Err(e);
    }
    rewind(fd)?;
    Ok(fd)
}

/// A sealed memfd copy of the file `from` (read from its offset to the end): no write, grow,
/// shrink or further seal is possible on it, so executing it gives a /proc/self/exe nothing can
/// modify. Close-on-exec.
pub(crate) fn sealed_copy(name: &CStr, from: RawFd) -> Result<RawFd, i32> {
    // SAFETY: name is a valid C string.
    let fd = cvt(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    let fill = || -> Result<(), i32> {
        while super::mount::sendfile(fd, from, 1 << 30)? > 0 {}
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: plain fcntl on an fd this function owns.
        cvt(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) }).map(drop)
    };
    if let Err(e) = fill() {
        super::close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// The seals of a memfd (F_GET_SEALS); EINVAL for a file that is not one.
pub(crate) fn seals(fd: RawFd) -> Result<i32, i32> {
    // SAFETY: plain fcntl.
    cvt(unsafe { libc::fcntl(fd, libc::F_GET_SEALS) })
}

/// lseek(fd, 0, SEEK_SET).
pub(crate) fn rewind(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt_long(unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } as libc::c_long).map(drop)
}

/// Resets every signal to its default action and unblocks all, so the container's process does
/// not inherit the runtime's dispositions (Rust ignores SIGPIPE, for one).
pub(crate) fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; errors (invalid numbers) are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty, initialised set unblocks everything.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// execve(2); returns only on failure.
pub(crate) fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> i32 {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to C strings that outlive
    // the call (built by the parent before clone and never freed in the child).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    super::errno()
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): executes the file `fd` refers to; returns
/// only on failure.
pub(crate) fn execveat_fd(
    fd: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> i32 {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to C strings that outlive
    // the call; the path is the empty C string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    super::errno()
}

/// kill(2) (used on processes we just created and still hold).
pub(crate) fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, sig) };
}

/// Sends `sig` to the process behind a pidfd, ignoring "already gone".
pub(crate) fn signal_pidfd(pidfd: RawFd, sig: i32) -> Result<(), i32> {
    match pidfd_send_signal(pidfd, sig) {
        Err(libc::ESRCH) => Ok(()),
        r => r,
    }
}

/// prlimit(2) on another process.
pub(crate) fn prlimit(pid: i32, resource: u32, soft: u64, hard: u64) -> Result<(), i32> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is valid; the old-limit pointer may be null.
    cvt(unsafe { libc::prlimit64(pid, resource as _, &lim, std::ptr::null_mut()) }).map(drop)
}

/// Unlocks a pty master (unlockpt).
pub(crate) fn unlockpt(master: RawFd) -> Result<(), i32> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    cvt(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &zero) }).map(drop)
}

/// Opens the slave of a pty master without a path lookup (TIOCGPTPEER).
pub(crate) fn pty_peer(master: RawFd) -> Result<RawFd, i32> {
    // SAFETY: TIOCGPTPEER takes open flags as its argument.
    cvt(unsafe {
        libc::ioctl(
            master,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
}

/// Makes `fd` (a terminal) the controlling terminal of this session.
pub(crate) fn set_ctty(fd: RawFd) -> Result<(), i32> {
    // SAFETY: TIOCSCTTY takes an int argument.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }).map(drop)
}

/// Sets a terminal's window size.
pub(crate) fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> Result<(), i32> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ takes a pointer to a winsize.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Signals `run` forwards to the container; SIGWINCH resizes the pty instead when husk copies
/// a terminal (tty::wait_forwarding).
pub(crate) const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGALRM,
];

/// A signal set holding `sigs`.
fn sigset_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before sigaddset; the
    // pointers are valid for the calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks `sigs` in the calling thread (threads it spawns afterwards inherit the mask);
/// returns the old mask, for `restore_mask`.
pub(crate) fn block_signals(sigs: &[i32]) -> Result<libc::sigset_t, i32> {
    let set = sigset_of(sigs);
    // SAFETY: old is plain data the call fills; set is initialised.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    match unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) } {
        0 => Ok(old),
        e => Err(e),
    }
}

/// Blocks `sigs` in the calling thread and returns a signalfd for them plus the old mask.
pub(crate) fn signalfd_for(sigs: &[i32]) -> Result<(RawFd, libc::sigset_t), i32> {
    let old = block_signals(sigs)?;
    let set = sigset_of(sigs);
    // SAFETY: set is initialised; signalfd returns a new fd or -1.
    match cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) }) {
        Ok(fd) => Ok((fd, old)),
        Err(e) => {
            restore_mask(&old);
            Err(e)
        }
    }
}

/// Restores a signal mask saved by `signalfd_for` or `block_signals`.
pub(crate) fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: old is a mask returned by pthread_sigmask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// Reads one signal number from a signalfd.
pub(crate) fn read_signal(fd: RawFd) -> Result<i32, i32> {
    // SAFETY: signalfd_siginfo is plain data; the read fills at most its size.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let n = retry(|| {
        cvt_long(unsafe {
            libc::read(
                fd,
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                std::mem::size_of::<libc::signalfd_siginfo>(),
            )
        } as _)
    })?;
    if n as usize != std::mem::size_of::<libc::signalfd_siginfo>() {
        return Err(libc::EIO);
    }
    Ok(info.ssi_signo as i32)
}

/// Waits until one of two fds is readable; returns (first readable, second readable).
pub(crate) fn poll_two(a: RawFd, b: RawFd) -> Result<(bool, bool), i32> {
    let mut p = [
        super::pollfd(a, libc::POLLIN),
        super::pollfd(b, libc::POLLIN),
    ];
    super::poll(&mut p, -1)?;
    Ok((p[0].revents != 0, p[1].revents != 0))
}

/// prctl(PR_SET_CHILD_SUBREAPER).
pub(crate) fn set_child_subreaper(on: bool) -> Result<(), i32> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, on as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// Reaps every child that has already exited (waitpid(-1, WNOHANG) until none is left).
pub(crate) fn reap_exited() {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) on the calling thread.
pub(crate) fn sched_setattr(attr: &SchedAttr) -> Result<(), i32> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: a is a valid sched_attr of the size it declares.
    cvt_long(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) })
        .map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, self, value).
pub(crate) fn ioprio_set(value: i32) -> Result<(), i32> {
    // SAFETY: plain syscall with integer arguments.
    cvt_long(unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) }).map(drop)
}

/// personality(2).
pub(crate) fn personality(persona: u64) -> Result<(), i32> {
    // SAFETY: plain syscall with an integer argument.
    cvt(unsafe { libc::personality(persona as libc::c_ulong) }).map(drop)
}

/// A CPU or NUMA node mask of 1024 bits.
pub(crate) type Mask = [u64; 16];

/// sched_setaffinity(2) of `pid` (0: the caller).
pub(crate) fn sched_setaffinity(pid: i32, mask: &Mask) -> Result<(), i32> {
    // SAFETY: mask is valid for its size in bytes.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            pid,
            std::mem::size_of::<Mask>(),
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// set_mempolicy(2) with a 1024-node mask.
pub(crate) fn set_mempolicy(mode: i32, nodes: &Mask) -> Result<(), i32> {
    // SAFETY: nodes is valid for 1024 bits; maxnode counts one past the last bit, as the
    // kernel expects.
    cvt_long(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, nodes.as_ptr(), 1025usize) })
        .map(drop)
}

/// prctl(PR_SET_DUMPABLE): a non-dumpable process's /proc files (exe, mem, fd) are closed to
/// everyone without CAP_SYS_PTRACE in the runtime's user namespace; execve restores it.
pub(crate) fn set_dumpable(on: bool) -> Result<(), i32> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// ftruncate(fd, 0) and lseek to 0: empties a memfd for the next writer.
pub(crate) fn empty(fd: RawFd) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::ftruncate(fd, 0) })?;
    rewind(fd)
}

/// fcntl(F_DUPFD_CLOEXEC): a close-on-exec copy of `fd` numbered `min` or above (fds moved
/// out of the way of the numbers a child dup2s onto).
pub(crate) fn dup_above(fd: RawFd, min: RawFd) -> Result<RawFd, i32> {
    // SAFETY: plain fcntl on an fd of this process; the kernel checks it.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// CLOCK_BOOTTIME in nanoseconds (what /proc/uptime counts).
pub(crate) fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is; CLOCK_BOOTTIME always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
