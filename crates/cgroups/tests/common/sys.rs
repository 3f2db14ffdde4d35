//! The tests' only `unsafe`: a raw clone3 with CLONE_INTO_CGROUP, and waitpid.

use std::os::fd::{AsRawFd, BorrowedFd};

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Clones a child straight into the cgroup `dir`; the child only pauses until killed (it runs
/// system calls only: the test harness is multi-threaded).
pub fn clone_into_cgroup_pausing(dir: BorrowedFd<'_>) -> std::io::Result<i32> {
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; without CLONE_VM the child gets
    // its own copy of memory, and it only calls pause/_exit, which are async-signal-safe.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(std::io::Error::last_os_error()),
        0 => loop {
            // SAFETY: pause takes no arguments.
            unsafe { libc::pause() };
        },
        pid => Ok(pid as i32),
    }
}

/// Reaps `pid`; returns the raw wait status.
pub fn waitpid(pid: i32) -> std::io::Result<i32> {
    let mut status = 0;
    // SAFETY: status is a valid out pointer for the call's duration.
    if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
        Ok(status)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a probing child tries inside the cgroup.
pub enum Op {
    /// open(path, flags)
    Open(std::ffi::CString, i32),
    /// mknod(path, S_IFCHR/S_IFBLK | 0600, makedev(major, minor))
    Mknod(std::ffi::CString, u32, u32, u32),
}

/// Clones a child straight into the cgroup `dir`, which runs `ops` and reports each result
/// (0 or the errno) through a pipe; returns them in order. The child runs system calls only.
pub fn probe_in_cgroup(dir: BorrowedFd<'_>, ops: &[Op]) -> std::io::Result<Vec<i32>> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (rd, wr) = (fds[0], fds[1]);
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: as in clone_into_cgroup_pausing; the child only makes system calls on memory
    // built before the clone (its own copy) and _exits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        for op in ops {
            let res: i32 = match op {
                Op::Open(path, flags) => {
                    // SAFETY: path is a NUL-terminated string.
                    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
                    if fd >= 0 {
                        // SAFETY: fd was just opened by us.
                        unsafe { libc::close(fd) };
                        0
                    } else {
                        // SAFETY: errno location is always valid for the thread.
                        unsafe { *libc::__errno_location() }
                    }
                }
                Op::Mknod(path, kind, major, minor) => {
                    // SAFETY: path is a NUL-terminated string; the rest are integers.
                    let rc = unsafe {
                        libc::mknod(path.as_ptr(), kind | 0o600, libc::makedev(*major, *minor))
                    };
                    if rc == 0 {
                        0
                    } else {
                        // SAFETY: as above.
                        unsafe { *libc::__errno_location() }
                    }
                }
            };
            let b = res.to_ne_bytes();
            // SAFETY: b is 4 readable bytes; a pipe write of 4 bytes is atomic.
            unsafe { libc::write(wr, b.as_ptr().cast(), 4) };
        }
        // SAFETY: _exit takes an integer and never returns.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: wr is our open write end; the child has its own copy.
    unsafe { libc::close(wr) };
    // SAFETY: rd is open and owned by nobody else.
    let rd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(rd) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(rd), &mut buf)?;
    waitpid(r as i32)?;
    Ok(buf
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
        .collect())
}
