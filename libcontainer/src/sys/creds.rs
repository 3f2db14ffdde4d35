//! Credentials: groups, uid/gid, capabilities, no_new_privs, umask, cwd.

use std::ffi::CStr;

use super::{cvt, cvt_long};

/// The five capability sets as bit masks (bit N = capability N).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): installs a filter, returning the listener
/// fd when `flags` has SECCOMP_FILTER_FLAG_NEW_LISTENER (else 0).
pub(crate) fn seccomp_filter(prog: &[seccomp::bpf::Insn], flags: u32) -> Result<i32, i32> {
    #[repr(C)]
    struct Fprog {
        len: libc::c_ushort,
        filter: *const seccomp::bpf::Insn,
    }
    let p = Fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr(),
    };
    // SAFETY: `p` describes `prog` (len <= 4096, checked by the compiler), which outlives the
    // call; Insn is repr(C) {u16, u8, u8, u32}, the layout of struct sock_filter.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1, // SECCOMP_SET_MODE_FILTER
            flags,
            &p as *const Fprog,
        )
    })
    .map(|r| r as i32)
}

/// setresgid(2) with all three ids, through the raw syscall: glibc's wrapper would broadcast
/// to other threads (there are none here, but its lock may be held).
pub(crate) fn setresgid(gid: u32) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt_long(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// setresuid(2), raw for the same reason as `setresgid`.
pub(crate) fn setresuid(uid: u32) -> Result<(), i32> {
    // SAFETY: plain syscall.
    cvt_long(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// setgroups through the raw syscall (glibc's wrapper also broadcasts).
pub(crate) fn setgroups_raw(groups: &[libc::gid_t]) -> Result<(), i32> {
    // SAFETY: pointer and length describe the slice.
    cvt_long(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(op, a, b, 0, 0) }).map(drop)
}

/// Drops every capability up to `last_cap` that is not in `keep` from the bounding set.
pub(crate) fn drop_bounding(keep: u64, last_cap: u32) -> Result<(), i32> {
    for cap in 0..=last_cap {
        if keep & (1 << cap) == 0 {
            match prctl(libc::PR_CAPBSET_DROP, cap as _, 0) {
                Ok(()) | Err(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// PR_SET_KEEPCAPS: keep permitted capabilities across the switch away from uid 0.
pub(crate) fn set_keepcaps(on: bool) -> Result<(), i32> {
    prctl(libc::PR_SET_KEEPCAPS, on as _, 0)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// capset(2) of effective, permitted and inheritable; then the ambient set (cleared, then each
/// raised).
pub(crate) fn apply_caps(c: &CapSets, last_cap: u32) -> Result<(), i32> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: c.effective as u32,
            permitted: c.permitted as u32,
            inheritable: c.inheritable as u32,
        },
        CapData {
            effective: (c.effective >> 32) as u32,
            permitted: (c.permitted >> 32) as u32,
            inheritable: (c.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs, as _LINUX_CAPABILITY_VERSION_3 requires.
    cvt_long(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) })?;
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0)?;
    // A capability can be ambient only if it is also permitted and inheritable; like runc,
    // skip those that are not rather than fail (runc's own default spec asks for them).
    for cap in 0..=last_cap {
        if c.ambient & (1 << cap) != 0 {
            match prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as _,
                cap as _,
            ) {
                Ok(()) | Err(libc::EPERM) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// PR_SET_NO_NEW_PRIVS.
pub(crate) fn set_no_new_privs() -> Result<(), i32> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
}

/// umask(2).
pub(crate) fn umask(mask: u32) {
    // SAFETY: always succeeds.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// chdir(2).
pub(crate) fn chdir(path: &CStr) -> Result<(), i32> {
    // SAFETY: path is a valid C string.
    cvt(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// True if the working directory is reachable from the root (a cwd reached through a leaked
/// fd, as in CVE-2024-21626, is reported by getcwd as "(unreachable)/..." or ENOENT).
pub(crate) fn cwd_inside_root() -> bool {
    let mut buf = [0u8; 4096];
    // SAFETY: buf is valid for its length.
    let p = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    p > 0 && buf[0] == b'/'
}

/// Joins the session keyring `name`, made if the caller can find none of that name (runc's
/// `_ses.ID`, which exec's processes join too), so the container does not share the caller's.
/// Returns its serial.
pub(crate) fn join_session_keyring(name: &std::ffi::CStr) -> Result<i32, i32> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: name is NUL-terminated; the call only reads it.
    cvt_long(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })
        .map(|serial| serial as i32)
}

/// Sets a key's permission mask (KEYCTL_SETPERM).
pub(crate) fn set_key_perm(serial: i32, perm: u32) -> Result<(), i32> {
    const KEYCTL_SETPERM: libc::c_long = 5;
    // SAFETY: integer arguments only.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SETPERM,
            serial as libc::c_long,
            perm as libc::c_long,
        )
    })
    .map(drop)
}
