//! Failures inside the container's own processes.
//!
//! After clone the child may not allocate (the caller may be multi-threaded, and a lock held by
//! another thread at clone time stays held forever in the child), so it cannot build a message.
//! It reports a typed [`Step`] (an area and that area's code) with an index and an errno
//! instead; the parent, which holds the same plan, turns them into the one error the user sees.
//!
//! Each area has one code enum (declared with [`codes!`]), so codes are numbered by the
//! compiler, never by hand: no two steps can share a number (`tests::codes_are_unique`).

/// Declares one area's failure codes: a `#[repr(u16)]` enum numbered from 0, with `ALL` (every
/// code, in order) and `from_u16`.
macro_rules! codes {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident,)* }) => {
        $(#[$m])*
        #[repr(u16)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every code of the area, in declaration (= numeric) order.
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The code numbered `v`, if any.
            pub(crate) fn from_u16(v: u16) -> Option<$name> {
                Self::ALL.get(usize::from(v)).copied()
            }
        }
    };
}
pub(crate) use codes;

use crate::hooks::Code as HookCode;
use crate::init::{ConsoleCode, SyncCode};
use crate::namespaces::Code as NsCode;
use crate::process::{Code as ProcessCode, ExecCode};
use crate::rootfs::Code as RootfsCode;

/// Which step of the child's work failed: the area and its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Talking to the parent (the socketpair), joining cgroups.
    Sync(SyncCode),
    /// Joining or creating namespaces, forking the pid-namespace init.
    Namespace(NsCode),
    /// Everything in `rootfs`: mounts, devices, pivot_root, masked and readonly paths, sysctl.
    Rootfs(RootfsCode),
    /// Terminal set-up.
    Console(ConsoleCode),
    /// Credentials, capabilities, rlimits, no_new_privs, cwd, fds, attributes, seccomp.
    Process(ProcessCode),
    /// A hook run by the child (createContainer, startContainer).
    Hook(HookCode),
    /// Finding or executing the container's program.
    Exec(ExecCode),
}

macro_rules! step_from {
    ($($code:ty => $variant:ident),*) => {$(
        impl From<$code> for Step {
            fn from(c: $code) -> Step {
                Step::$variant(c)
            }
        }
    )*};
}
step_from!(SyncCode => Sync, NsCode => Namespace, RootfsCode => Rootfs,
    ConsoleCode => Console, ProcessCode => Process, HookCode => Hook, ExecCode => Exec);

impl Step {
    /// The wire form: area tag and code.
    pub(crate) fn encode(self) -> (u8, u16) {
        match self {
            Step::Sync(c) => (1, c as u16),
            Step::Namespace(c) => (2, c as u16),
            Step::Rootfs(c) => (3, c as u16),
            Step::Console(c) => (4, c as u16),
            Step::Process(c) => (5, c as u16),
            Step::Hook(c) => (6, c as u16),
            Step::Exec(c) => (7, c as u16),
        }
    }

    /// The step of a wire form; None for a tag or code this build does not know.
    pub(crate) fn decode(area: u8, code: u16) -> Option<Step> {
        Some(match area {
            1 => Step::Sync(SyncCode::from_u16(code)?),
            2 => Step::Namespace(NsCode::from_u16(code)?),
            3 => Step::Rootfs(RootfsCode::from_u16(code)?),
            4 => Step::Console(ConsoleCode::from_u16(code)?),
            5 => Step::Process(ProcessCode::from_u16(code)?),
            6 => Step::Hook(HookCode::from_u16(code)?),
            7 => Step::Exec(ExecCode::from_u16(code)?),
            _ => return None,
        })
    }

    /// Every step there is (for the tests).
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Step> {
        let mut v: Vec<Step> = Vec::new();
        v.extend(SyncCode::ALL.iter().map(|&c| Step::from(c)));
        v.extend(NsCode::ALL.iter().map(|&c| Step::from(c)));
        v.extend(RootfsCode::ALL.iter().map(|&c| Step::from(c)));
        v.extend(ConsoleCode::ALL.iter().map(|&c| Step::from(c)));
        v.extend(ProcessCode::ALL.iter().map(|&c| Step::from(c)));
        v.extend(HookCode::ALL.iter().map(|&c| Step::from(c)));
        v.extend(ExecCode::ALL.iter().map(|&c| Step::from(c)));
        v
    }
}

/// One failure: the step, the index of the plan entry it concerns (a mount, a hook, a
/// device...), and the errno (or, for hooks, an exit status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fail {
    pub step: Step,
    pub idx: u32,
    pub errno: i32,
}

impl Fail {
    pub(crate) fn new(step: impl Into<Step>, idx: u32, errno: i32) -> Fail {
        Fail {
            step: step.into(),
            idx,
            errno,
        }
    }
}

/// An `Error::Setup` for a child failure described by `msg`.
pub(crate) fn setup_error(f: &Fail, msg: String) -> crate::Error {
    crate::Error::Setup {
        errno: (f.errno != 0).then_some(f.errno),
        msg,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let all = Step::all();
        let mut seen = std::collections::HashSet::new();
        for s in &all {
            let wire = s.encode();
            assert!(seen.insert(wire), "{s:?} shares its wire code {wire:?}");
            assert_eq!(Step::decode(wire.0, wire.1), Some(*s));
        }
        // Every area's codes are numbered 0.. in order, so from_u16 is the inverse of `as u16`.
        assert!(all.len() > 60, "{}", all.len());
        assert_eq!(Step::decode(0, 0), None);
        assert_eq!(Step::decode(3, u16::MAX), None);
    }
}
