//! husk's seccomp compiler: an OCI `linux.seccomp` profile to a classic BPF program, in pure
//! Rust (no libseccomp at run time). It covers the whole profile: `defaultAction` and
//! `defaultErrnoRet`; x86_64 with its x32 and i386 ABIs, and aarch64; rules with `errnoRet`
//! and argument tests with all seven operators on 64- and 32-bit arguments; every action
//! (KILL, KILL_THREAD, KILL_PROCESS, TRAP, ERRNO, TRACE, ALLOW, LOG, NOTIFY); the filter flags.
//! Syscalls newer than every one the profile names get ENOSYS (as runc), and the program
//! finds a syscall's outcome by binary search over syscall-number ranges.
//!
//! This crate only compiles: installing (`seccomp(2)`) is the caller's, which knows when in
//! the container's setup that must happen.
//!
//! ```
//! use seccomp::{compile, bpf, Arch, ret};
//!
//! let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(r#"{
//!     "defaultAction": "SCMP_ACT_ALLOW",
//!     "architectures": ["SCMP_ARCH_X86_64"],
//!     "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
//! }"#).unwrap();
//! let filter = compile(&profile).unwrap();
//! // What the kernel would do with mkdir(2) from an x86_64 task:
//! let call = bpf::SeccompData {
//!     nr: Arch::X86_64.syscall("mkdir").unwrap() as i32,
//!     arch: Arch::X86_64.audit(),
//!     ..Default::default()
//! };
//! assert_eq!(bpf::run(&filter.program, &call), Ok(ret::ERRNO | 13));
//! ```

pub mod arch;
mod asm;
pub mod bpf;
mod compile;
mod tables;

pub use arch::Arch;
pub use compile::{action, compile, BAD_ARCH};

/// The filter return values (`SECCOMP_RET_*`).
pub mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const KILL_THREAD: u32 = 0x0000_0000;
    pub const TRAP: u32 = 0x0003_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    pub const TRACE: u32 = 0x7ff0_0000;
    pub const LOG: u32 = 0x7ffc_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
    /// The action part of a return value (the rest is data: an errno, a trace value).
    pub const ACTION_FULL: u32 = 0xffff_0000;
}

/// `seccomp(SECCOMP_SET_MODE_FILTER)` flags (`SECCOMP_FILTER_FLAG_*`).
pub mod flag {
    pub const TSYNC: u32 = 1;
    pub const LOG: u32 = 2;
    pub const SPEC_ALLOW: u32 = 4;
    pub const NEW_LISTENER: u32 = 8;
    pub const TSYNC_ESRCH: u32 = 16;
    pub const WAIT_KILLABLE_RECV: u32 = 32;
}

/// What `husk features` reports, from the same tables the compiler uses.
pub mod supported {
    /// Every action the compiler emits.
    pub const ACTIONS: [&str; 9] = [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ];
    pub const OPERATORS: [&str; 7] = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    pub const FLAGS: [&str; 4] = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
}

/// A compiled profile.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The program, to be passed to `seccomp(2)` as a `struct sock_fprog`.
    pub program: Vec<bpf::Insn>,
    /// `SECCOMP_FILTER_FLAG_*` for `seccomp(2)`; NEW_LISTENER when a rule notifies.
    pub flags: u32,
    /// Some rule's action is NOTIFY: installing returns a listener fd for `listenerPath`.
    pub notify: bool,
    /// Names no listed architecture has (ignored, as runc ignores them); for warnings.
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("defaultAction SCMP_ACT_NOTIFY is not allowed: the runtime's own syscalls would wait on the listener")]
    NotifyDefault,
    #[error("SCMP_ACT_NOTIFY needs listenerPath")]
    NotifyWithoutListener,
    /// A syscall the runtime itself makes between installing the filter and sending the
    /// listener away: notifying it would wait on a listener nobody holds yet.
    #[error("SCMP_ACT_NOTIFY cannot be used for the {0} syscall")]
    NotifyRefused(String),
    #[error("{field}: {index} is not an argument index (0-5)")]
    ArgIndex { field: String, index: usize },
    #[error("the program has {0} instructions; the kernel takes at most 4096")]
    TooLong(usize),
}
