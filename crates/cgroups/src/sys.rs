//! The crate's only `unsafe`: thin libc wrappers.

use std::io;

/// Sends `sig` to `pid`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The caller's real uid.
pub fn getuid() -> u32 {
    // SAFETY: getuid(2) cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

// ---- bpf(2): just what cgroup v2 device control needs (uapi/linux/bpf.h) ----

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;

/// One `struct bpf_insn`: opcode, dst_reg (low nibble) | src_reg (high nibble), offset, imm.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH/DETACH, up to `replace_bpf_fd`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for BPF_PROG_QUERY, up to `prog_cnt` (padded to 8 bytes).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_prog_info`, up to `name`.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// Calls bpf(cmd, attr, sizeof attr).
///
/// # Safety
/// `A` must be one of the `#[repr(C)]` attr structs above, matching `cmd`, and every pointer
/// stored in it must be valid (and writable where the kernel writes) for the call.
unsafe fn bpf<A>(cmd: libc::c_int, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees attr's layout and pointers; the size passed is its own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A as *mut libc::c_void,
            std::mem::size_of::<A>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Adopts a file descriptor a bpf(2) command returned.
fn adopt(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us: it is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// BPF_PROG_LOAD of `insns`. On failure the verifier's log (if any) is returned with the error.
pub fn bpf_prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[BpfInsn],
    license: &CStr,
    name: &str,
) -> Result<OwnedFd, (io::Error, String)> {
    let mut log = vec![0u8; 64 * 1024];
    let mut prog_name = [0u8; 16];
    let n = name.len().min(15);
    prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        prog_name,
        expected_attach_type,
        ..Default::default()
    };
    // SAFETY: attr is a PROG_LOAD attr; insns and license outlive the call, no log buffer.
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => return Ok(adopt(fd)),
        Err(e)
            if e.raw_os_error() != Some(libc::EACCES) && e.raw_os_error() != Some(libc::EINVAL) =>
        {
            return Err((e, String::new()))
        }
        Err(_) => {}
    }
    // Rejected by the verifier: load again with a log to say why.
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above; log is writable for log_size bytes during the call.
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => Ok(adopt(fd)),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_string()))
        }
    }
}

/// BPF_PROG_ATTACH of `prog` to `target` (a cgroup directory fd).
pub fn bpf_prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    // SAFETY: attr is an ATTACH attr holding only integers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// BPF_PROG_DETACH of `prog` from `target`.
pub fn bpf_prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        ..Default::default()
    };
    // SAFETY: attr is a DETACH attr holding only integers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// BPF_PROG_QUERY: the ids of the programs attached to `target` itself for `attach_type`.
pub fn bpf_prog_query(target: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    loop {
        let mut attr = QueryAttr {
            target_fd: target.as_raw_fd() as u32,
            attach_type,
            ..Default::default()
        };
        // SAFETY: a QUERY attr with no id buffer (prog_ids 0): the kernel only writes the count.
        unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
        let n = attr.prog_cnt;
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut ids = vec![0u32; n as usize];
        attr.prog_ids = ids.as_mut_ptr() as u64;
        attr.prog_cnt = n;
        // SAFETY: prog_ids points to prog_cnt writable u32s for the call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            // more were attached in between: ask again
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => continue,
            r => r?,
        };
        ids.truncate(attr.prog_cnt as usize);
        return Ok(ids);
    }
}

/// BPF_PROG_GET_FD_BY_ID.
pub fn bpf_prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: a GET_FD_BY_ID attr holding only integers.
    unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.map(adopt)
}

/// The name (`prog_name` at load) of the program `prog`.
pub fn bpf_prog_name(prog: BorrowedFd<'_>) -> io::Result<String> {
    let mut info = ProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    // SAFETY: info points to info_len writable bytes for the call.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    let end = info.name.iter().position(|&b| b == 0).unwrap_or(16);
    Ok(String::from_utf8_lossy(&info.name[..end]).into_owned())
}
