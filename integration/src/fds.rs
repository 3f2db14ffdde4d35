//! Integration helpers: console socket.

use super::*;

/// Accepts one connection on `l`, giving up after `timeout` (a runtime that never connects
/// must fail the test, not hang it).
pub fn accept_timeout(
    l: &std::os::unix::net::UnixListener,
    timeout: Duration,
) -> Option<UnixStream> {
    l.set_nonblocking(true).unwrap();
    let start = Instant::now();
    while start.elapsed() < timeout {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

/// A unix socket `name` in the runtime's work dir and a thread that accepts one connection on
/// it and returns the fd sent there (`--console-socket`, `--pidfd-socket`), or None.
pub fn fd_socket(rt: &Runtime, name: &str) -> (PathBuf, std::thread::JoinHandle<Option<OwnedFd>>) {
    let sock = rt.work().join(name);
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let h = std::thread::spawn(move || {
        let s = accept_timeout(&l, Duration::from_secs(20))?;
        recv_fd(&s).ok()
    });
    (sock, h)
}

/// Receives one fd sent with SCM_RIGHTS on `s`.
pub fn recv_fd(s: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one control message carrying a few fds.
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; all pointers set below stay valid through recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at valid buffers.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: walking the control buffer the kernel filled in, with the libc macros.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS
        {
            let fd = *(libc::CMSG_DATA(cmsg) as *const RawFd);
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    Err(std::io::Error::other("no fd in the message"))
}

/// Reads from `f` until EOF/EIO or until `until` appears, for at most `timeout`.
pub fn read_pty(fd: &OwnedFd, until: &str, timeout: Duration) -> String {
    let mut f = fs::File::from(fd.try_clone().unwrap());
    // SAFETY: fcntl on a valid fd.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut out = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < timeout {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains(until) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Writes `s` to a file (test convenience).
pub fn write_file(p: &Path, s: &str) {
    let mut f = fs::File::create(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

/// Sends `sig` to `pid` (only for processes the test started).
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The state letter of /proc/PID/stat (R, S, Z, ...), None if the pid is gone.
pub fn proc_state(pid: i64) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

/// True if PID exists and is not a zombie (an orphaned init may wait a moment to be reaped by
/// a reaper that is not ours).
pub fn pid_alive(pid: i64) -> bool {
    pid > 0 && !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Waits up to `t` for PID to be dead (gone or a zombie); returns whether it is.
pub fn wait_pid_gone(pid: i64, t: Duration) -> bool {
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() > t {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The mountinfo line (inside a container's output) for mount point `mp`.
pub fn mountinfo_line<'a>(mountinfo: &'a str, mp: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mp))
}

/// The per-mount options (field 6) of a mountinfo line.
pub fn mount_opts(line: &str) -> Vec<String> {
    line.split(' ')
        .nth(5)
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The optional fields (shared:N, master:N, ...) of a mountinfo line.
pub fn mount_optional(line: &str) -> Vec<String> {
    line.split(' ')
        .skip(6)
        .take_while(|f| *f != "-")
        .map(str::to_string)
        .collect()
}

/// The super-block options (after " - TYPE SOURCE ") of a mountinfo line.
pub fn super_opts(line: &str) -> Vec<String> {
    let after = line.split(" - ").nth(1).unwrap_or("");
    after
        .split(' ')
        .nth(2)
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect()
}
