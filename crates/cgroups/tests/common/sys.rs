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
