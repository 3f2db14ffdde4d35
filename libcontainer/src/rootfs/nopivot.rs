//! `--no-pivot`: the host's root stays in the container's mount namespace beneath the moved
//! root, and with it the host's procfs and sysfs, whose full, uncovered mounts let a nested
//! user namespace mount a fresh (unmasked) procfs or sysfs. As runc does, each full proc or
//! sysfs mount outside the rootfs is detached (covered with a tmpfs when it is locked) before
//! the move.

use std::ffi::CString;
use std::path::Path;

use super::{fail, Code};
use crate::fail::Fail;
use crate::sys::mount as m;

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Parent side: the mount points of full proc and sysfs mounts outside `rootfs`, from
/// mountinfo text (parents first, as mountinfo lists them).
pub(super) fn exposed(mountinfo: &str, rootfs: &Path) -> Vec<CString> {
    let root = rootfs.as_os_str().as_encoded_bytes();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            if l.len() < 5 || l[3] != "/" || (fstype != "proc" && fstype != "sysfs") {
                return None;
            }
            let point = unescape(l[4]);
            if point.starts_with(root) {
                return None;
            }
            CString::new(point).ok()
        })
        .collect()
}

/// Child side, before the move: detaches (or covers) each of `points`.
pub(super) fn hide(points: &[CString]) -> Result<(), Fail> {
    for (i, p) in points.iter().enumerate() {
        // The unmount must not propagate to the host.
        match m::mount(None, p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Ok(()) => {}
            // Gone with a parent detached before it.
            Err(libc::ENOENT) | Err(libc::EINVAL) => continue,
            Err(e) => return Err(fail(Code::MoveRoot, i, e)),
        }
        match m::umount2(p, libc::MNT_DETACH) {
            Ok(()) => {}
            // Locked (a user namespace's copy of the host's mounts): covered instead.
            Err(libc::EINVAL) | Err(libc::EPERM) => {
                m::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), 0, None)
                    .map_err(|e| fail(Code::MoveRoot, i, e))?
            }
            Err(e) => return Err(fail(Code::MoveRoot, i, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rootfs_no_pivot_exposed_mounts() {
        let mi = "22 1 0:20 / /proc rw,nosuid - proc proc rw\n\
                  23 1 0:21 / /sys rw - sysfs sysfs rw\n\
                  24 1 0:22 /sub /bound rw - proc proc rw\n\
                  25 1 0:23 / /b/rootfs/proc rw - proc proc rw\n\
                  26 1 0:24 / /with\\040space rw - proc proc rw\n\
                  27 1 0:25 / /tmp rw - tmpfs tmpfs rw\n";
        let got = super::exposed(mi, std::path::Path::new("/b/rootfs"));
        let got: Vec<&str> = got.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(got, ["/proc", "/sys", "/with space"]);
    }
}
