//! The parent/child socketpair and SCM_RIGHTS, without allocating (cmsg buffers on the stack).

use std::os::fd::RawFd;

use super::{cvt, cvt_long, retry};

/// Most fds one message carries.
pub(crate) const MAX_FDS: usize = 3;

/// A SOCK_SEQPACKET socketpair (message boundaries kept), both ends close-on-exec.
pub(crate) fn seqpacket_pair() -> Result<(RawFd, RawFd), i32> {
    let mut fds = [-1; 2];
    // SAFETY: fds is a valid out-array of two ints.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((fds[0], fds[1]))
}

// Room for MAX_FDS ints in a control message, aligned for cmsghdr.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Sends one message with up to MAX_FDS fds attached.
pub(crate) fn send(sock: RawFd, data: &[u8], fds: &[RawFd]) -> Result<(), i32> {
    debug_assert!(fds.len() <= MAX_FDS);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let len = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is a pure computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(len) } as usize;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        // SAFETY: msg_control points at a buffer large enough (64 bytes >= CMSG_SPACE(8)), so
        // the first header and its data lie inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(len) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: msg and everything it points at are valid for the call.
    retry(|| cvt_long(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as _))?;
    Ok(())
}

/// Receives one message into `buf`, storing attached fds (close-on-exec) in `fds`. Returns
/// (bytes, number of fds); 0 bytes means the peer closed.
pub(crate) fn recv(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut [RawFd; MAX_FDS],
) -> Result<(usize, usize), i32> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len();
    // SAFETY: msg points at valid buffers for the call.
    let n =
        retry(|| cvt_long(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } as _))?;
    let mut nfds = 0;
    // SAFETY: the kernel filled msg_control with well-formed cmsghdrs within msg_controllen;
    // the CMSG_* macros walk them without leaving the buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count =
                    ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    if nfds < MAX_FDS {
                        fds[nfds] = fd;
                        nfds += 1;
                    } else {
                        super::close(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, nfds))
}

/// accept4(2), close-on-exec.
pub(crate) fn accept(listener: RawFd) -> Result<RawFd, i32> {
    // SAFETY: null address pointers are allowed.
    retry(|| {
        cvt(unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        })
    })
}
