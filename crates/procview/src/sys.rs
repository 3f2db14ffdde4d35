//! The crate's only `unsafe`: thin wrappers over the system calls std does not offer. Each
//! returns `std::io::Result` with the errno of the call; callers add what the call was about.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of an inherited descriptor number (`--fd N`, `--ready-fd N`) after checking
/// that it is open.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor table; no memory is involved.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process to own by
    // its parent on the command line; nothing else in this process refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets or clears FD_CLOEXEC.
pub fn set_cloexec(fd: &impl AsRawFd, on: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; integer arguments only.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, new) })?;
    Ok(())
}

/// A pipe, both ends close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array we pass.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `dup2(fd, to)` (the new descriptor is not close-on-exec).
pub fn dup2(fd: &impl AsRawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on descriptors of this process; `to` is replaced atomically by design.
    check(unsafe { libc::dup2(fd.as_raw_fd(), to) })?;
    Ok(())
}

/// mount(2).
pub fn mount(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let src = CString::new(src).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fstype = CString::new(fstype).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let data = CString::new(data).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let target = cstr(target)?;
    // SAFETY: all pointers are to NUL-terminated strings that outlive the call.
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    })?;
    Ok(())
}

/// umount2(target, MNT_DETACH).
pub fn umount_detach(target: &Path) -> io::Result<()> {
    let target = cstr(target)?;
    // SAFETY: a NUL-terminated path that outlives the call.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })?;
    Ok(())
}

/// statfs(2)'s f_type of the filesystem holding `path`.
pub fn fs_type(path: &Path) -> io::Result<i64> {
    let p = cstr(path)?;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is NUL-terminated and `st` is a valid, writable statfs.
    check(unsafe { libc::statfs(p.as_ptr(), &mut st) })?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// pidfd_open(2): a descriptor that polls readable once `pid` has exited.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: the raw syscall takes two integers and returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created by the kernel for us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// poll(2) for POLLIN on `fds`; returns which are readable (or hung up). `timeout_ms` < 0 waits.
pub fn poll_in(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of `p.len()` pollfd structs.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents != 0).collect())
}

/// kill(2).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: integer arguments only; pid > 0 so it never targets a group.
    check(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// Whether a process `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    if kill(pid, 0).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// waitpid(pid, WNOHANG) for `pid` (-1: any child): the reaped pid, if any.
pub fn reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: `status` is a valid int to write the exit status into.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    (r > 0).then_some(r)
}

/// What fork returned.
pub enum Fork {
    Parent,
    Child,
}

/// fork(2). Only called by the server binary while it is single-threaded (before it starts any
/// thread), so the child may run ordinary Rust code.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: the caller is single-threaded (documented contract), so the child inherits no
    // lock held by another thread.
    let r = check(unsafe { libc::fork() })?;
    Ok(if r == 0 { Fork::Child } else { Fork::Parent })
}

/// setsid(2).
pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() })?;
    Ok(())
}

/// flock(2); `op` is LOCK_SH, LOCK_EX or LOCK_UN (optionally | LOCK_NB).
pub fn flock(fd: &impl AsRawFd, op: i32) -> io::Result<()> {
    loop {
        // SAFETY: integer arguments only.
        let r = unsafe { libc::flock(fd.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Blocks `signals` for the calling thread and returns a signalfd receiving them.
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: an all-zero sigset_t is valid storage; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for the sigset functions.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: as above.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    // SAFETY: `set` is initialised; the old mask is not needed (null).
    check(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    // SAFETY: `set` is initialised; -1 asks for a new descriptor.
    let fd = check(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: the descriptor was just created by signalfd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Ignores SIGPIPE (a reader of the ready pipe may be gone).
pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN involves no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

// ---- the seccomp agent (crate::agent) ----

/// Room for the control message of one SCM_RIGHTS with up to 8 descriptors.
const CMSG_ROOM: usize = 128;

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_ROOM]);

/// sendmsg(2) of `data` with `fds` attached (SCM_RIGHTS), MSG_NOSIGNAL | MSG_DONTWAIT.
pub fn send_fds(sock: &impl AsRawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > 8 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_ROOM]);
    // SAFETY: msghdr is plain C data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let len = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is a pure computation on an integer.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(len) } as usize;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        // SAFETY: msg_control points at CMSG_ROOM (128) aligned bytes, more than
        // CMSG_SPACE(8 * 4), so the first header and its data lie inside the buffer; the copy
        // reads fds.len() descriptors from the slice.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(len) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    loop {
        // SAFETY: msg, the iovec and the control buffer it points at live across the call.
        let r = unsafe {
            libc::sendmsg(
                sock.as_raw_fd(),
                &msg,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// recvmsg(2) into `buf` (MSG_DONTWAIT, MSG_CMSG_CLOEXEC): the byte count and the descriptors
/// attached (SCM_RIGHTS). 0 bytes and no descriptors: end of stream.
pub fn recv_fds(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_ROOM]);
    // SAFETY: msghdr is plain C data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_ROOM;
    let n = loop {
        // SAFETY: msg points at `buf` and `cbuf`, both writable for the lengths given.
        let r = unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
            )
        };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* macros walk headers
    // inside that buffer only, and each SCM_RIGHTS payload holds (cmsg_len - CMSG_LEN(0)) / 4
    // descriptors, which are new in this process and owned by nobody else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, fds))
}

/// poll(2) of one descriptor with no wait: its revents (0 if nothing).
pub fn revents(fd: RawFd) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r <= 0 {
        0
    } else {
        p.revents
    }
}

/// One seccomp user notification (struct seccomp_notif).
#[derive(Clone, Copy, Debug)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// SECCOMP_IOCTL_NOTIF_RECV. The caller polled the listener readable first, and only one
/// process receives on it at a time, so it does not block (ENOENT if the caller was
/// interrupted meanwhile).
pub fn notif_recv(listener: RawFd) -> io::Result<Notif> {
    // SAFETY: seccomp_notif is plain C data; the kernel wants it zeroed.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `n` is a valid, writable seccomp_notif of the size the ioctl number encodes.
        let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
        // SAFETY: as above; the kernel wants a zeroed struct on every call.
        n = unsafe { std::mem::zeroed() };
    }
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// SECCOMP_IOCTL_NOTIF_ID_VALID: whether notification `id` is still waiting for its answer.
pub fn notif_id_valid(listener: RawFd, id: u64) -> bool {
    let mut id = id;
    // SAFETY: the ioctl reads one u64 from the pointer, which is valid for the call.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) == 0 }
}

/// SECCOMP_IOCTL_NOTIF_SEND: the answer to notification `id` (`error` a positive errno or 0;
/// `flags` SECCOMP_USER_NOTIF_FLAG_CONTINUE to run the real call).
pub fn notif_send(listener: RawFd, id: u64, val: i64, error: i32, flags: u32) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error: -error,
        flags,
    };
    // SAFETY: `resp` is a valid seccomp_notif_resp the ioctl reads during the call.
    check(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) })?;
    Ok(())
}

/// process_vm_writev(2) of `data` at `addr` in process `pid`: the bytes written.
pub fn write_process(pid: i32, addr: u64, data: &[u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` describes `data`, valid for reads during the call; `remote` names memory
    // of another process, which the kernel checks (EFAULT), never this process's.
    let r = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}
