//! Failures inside the container's own processes.
//!
//! After clone the child may not allocate (the caller may be multi-threaded, and a lock held by
//! another thread at clone time stays held forever in the child), so it cannot build a message.
//! It reports plain integers instead; the parent, which holds the same plan, turns them into the
//! one error message the user sees.

/// Which part of the child's work failed. Each area's module describes its own codes.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Area {
    /// Talking to the parent (the socketpair).
    Sync = 1,
    /// Joining or creating namespaces, forking the pid-namespace init.
    Namespace = 2,
    /// Everything in `rootfs`: mounts, devices, pivot_root, masked and readonly paths, sysctl.
    Rootfs = 3,
    /// Terminal set-up.
    Console = 4,
    /// Credentials, capabilities, rlimits, no_new_privs, cwd, fds.
    Process = 5,
    /// A hook run by the child (createContainer, startContainer).
    Hook = 6,
    /// Finding or executing the container's program.
    Exec = 7,
}

impl Area {
    pub(crate) fn from_u8(v: u8) -> Option<Area> {
        Some(match v {
            1 => Area::Sync,
            2 => Area::Namespace,
            3 => Area::Rootfs,
            4 => Area::Console,
            5 => Area::Process,
            6 => Area::Hook,
            7 => Area::Exec,
            _ => return None,
        })
    }
}

/// One failure: the area, an area-specific operation code, the index of the plan entry it
/// concerns (a mount, a hook, a device...), and the errno (or, for hooks, an exit status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    pub area: Area,
    pub code: u16,
    pub idx: u32,
    pub errno: i32,
}

impl Fail {
    pub(crate) const fn new(area: Area, code: u16, idx: u32, errno: i32) -> Fail {
        Fail {
            area,
            code,
            idx,
            errno,
        }
    }
}

/// The text of an errno value, as Go prints it ("no such file or directory").
pub(crate) fn errno_text(errno: i32) -> String {
    crate::sys::strerror(errno)
}

/// The text of an io::Error without Rust's "(os error N)" suffix.
pub(crate) fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(n),
        None => e.to_string(),
    }
}
