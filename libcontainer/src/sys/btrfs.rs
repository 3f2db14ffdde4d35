//! btrfs ioctls (linux/btrfs.h): snapshot and subvolume create/destroy, the subvolume id of
//! an open directory, and qgroup limits. Used by `cowfs::btrfs` on the host (not in a child),
//! so they may allocate.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::cvt;

/// `f_type` of a btrfs filesystem.
pub(crate) const SUPER_MAGIC: i64 = 0x9123_683E;
/// The inode number of every subvolume's root directory.
pub(crate) const FIRST_FREE_OBJECTID: u64 = 256;

const NAME_MAX_V2: usize = 4040;

/// struct btrfs_ioctl_vol_args_v2 (4096 bytes).
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; NAME_MAX_V2],
}

/// struct btrfs_ioctl_ino_lookup_args (4096 bytes).
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

/// struct btrfs_ioctl_qgroup_limit_args.
#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

/// struct btrfs_ioctl_qgroup_create_args.
#[repr(C)]
struct QgroupCreateArgs {
    create: u64,
    qgroupid: u64,
}

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (0x94 << 8) | nr
}
const W: u64 = 1;
const R: u64 = 2;
const IOC_SNAP_CREATE_V2: u64 = ioc(W, 23, std::mem::size_of::<VolArgsV2>());
const IOC_SUBVOL_CREATE_V2: u64 = ioc(W, 24, std::mem::size_of::<VolArgsV2>());
const IOC_SNAP_DESTROY_V2: u64 = ioc(W, 63, std::mem::size_of::<VolArgsV2>());
const IOC_INO_LOOKUP: u64 = ioc(W | R, 18, std::mem::size_of::<InoLookupArgs>());
const IOC_QGROUP_LIMIT: u64 = ioc(R, 43, std::mem::size_of::<QgroupLimitArgs>());
const IOC_QGROUP_CREATE: u64 = ioc(W, 42, std::mem::size_of::<QgroupCreateArgs>());
const QGROUP_LIMIT_MAX_EXCL: u64 = 1 << 1;
const SUBVOL_SPEC_BY_ID: u64 = 1 << 4;

fn vol_args(fd: i64, name: &CStr) -> Result<Box<VolArgsV2>, i32> {
    let bytes = name.to_bytes();
    if bytes.len() >= NAME_MAX_V2 {
        return Err(libc::ENAMETOOLONG);
    }
    let mut a = Box::new(VolArgsV2 {
        fd,
        transid: 0,
        flags: 0,
        unused: [0; 4],
        name: [0; NAME_MAX_V2],
    });
    a.name[..bytes.len()].copy_from_slice(bytes);
    Ok(a)
}

/// Snapshots the subvolume open at `src` as `name` in the directory open at `dir`.
pub(crate) fn snapshot(src: RawFd, dir: RawFd, name: &CStr) -> Result<(), i32> {
    let mut a = vol_args(src as i64, name)?;
    // SAFETY: a is a valid, initialized btrfs_ioctl_vol_args_v2 the kernel reads; both fds are
    // open directories owned by the caller.
    cvt(unsafe { libc::ioctl(dir, IOC_SNAP_CREATE_V2 as _, &mut *a as *mut VolArgsV2) })?;
    Ok(())
}

/// Creates an empty subvolume `name` in the directory open at `dir`.
pub(crate) fn create_subvolume(dir: RawFd, name: &CStr) -> Result<(), i32> {
    let mut a = vol_args(0, name)?;
    // SAFETY: as in snapshot; the fd field is unused by this ioctl.
    cvt(unsafe { libc::ioctl(dir, IOC_SUBVOL_CREATE_V2 as _, &mut *a as *mut VolArgsV2) })?;
    Ok(())
}

/// Destroys the subvolume with id `subvolid` (on the filesystem of `fd`), by id, so that a
/// name swapped meanwhile cannot redirect the delete.
pub(crate) fn destroy_subvolume(fd: RawFd, subvolid: u64) -> Result<(), i32> {
    let mut a = vol_args(0, c"")?;
    a.flags = SUBVOL_SPEC_BY_ID;
    // The name field is a union with subvolid (its first 8 bytes).
    a.name[..8].copy_from_slice(&subvolid.to_ne_bytes());
    // SAFETY: a is a valid btrfs_ioctl_vol_args_v2 with BTRFS_SUBVOL_SPEC_BY_ID and the id in
    // the union's first member; fd is an open directory on that filesystem.
    cvt(unsafe { libc::ioctl(fd, IOC_SNAP_DESTROY_V2 as _, &mut *a as *mut VolArgsV2) })?;
    Ok(())
}

/// The id of the subvolume an open file lives in.
pub(crate) fn subvolume_id(fd: RawFd) -> Result<u64, i32> {
    let mut a = Box::new(InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; 4080],
    });
    // SAFETY: a is a valid btrfs_ioctl_ino_lookup_args the kernel reads and writes.
    cvt(unsafe { libc::ioctl(fd, IOC_INO_LOOKUP as _, &mut *a as *mut InoLookupArgs) })?;
    Ok(a.treeid)
}

/// Sets the exclusive-bytes limit of qgroup 0/`subvolid`. ENOTCONN: quotas are not enabled.
pub(crate) fn limit_exclusive(fd: RawFd, subvolid: u64, bytes: u64) -> Result<(), i32> {
    let mut a = QgroupLimitArgs {
        qgroupid: subvolid,
        flags: QGROUP_LIMIT_MAX_EXCL,
        max_rfer: 0,
        max_excl: bytes,
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    // SAFETY: a is a valid btrfs_ioctl_qgroup_limit_args; fd is open on the filesystem.
    cvt(unsafe { libc::ioctl(fd, IOC_QGROUP_LIMIT as _, &mut a as *mut QgroupLimitArgs) })?;
    Ok(())
}

/// Removes qgroup 0/`subvolid` (EBUSY while its subvolume is not yet cleaned up; newer
/// kernels then drop the stale qgroup themselves).
pub(crate) fn destroy_qgroup(fd: RawFd, subvolid: u64) -> Result<(), i32> {
    let mut a = QgroupCreateArgs {
        create: 0,
        qgroupid: subvolid,
    };
    // SAFETY: a is a valid btrfs_ioctl_qgroup_create_args; fd is open on the filesystem.
    cvt(unsafe { libc::ioctl(fd, IOC_QGROUP_CREATE as _, &mut a as *mut QgroupCreateArgs) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_and_ioctl_numbers_match_linux_btrfs_h() {
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
        assert_eq!(std::mem::size_of::<InoLookupArgs>(), 4096);
        assert_eq!(std::mem::size_of::<QgroupLimitArgs>(), 48);
        assert_eq!(IOC_SNAP_CREATE_V2, 0x5000_9417);
        assert_eq!(IOC_SNAP_DESTROY_V2, 0x5000_943f);
        assert_eq!(IOC_INO_LOOKUP, 0xd000_9412);
        assert_eq!(IOC_QGROUP_LIMIT, 0x8030_942b);
        assert_eq!(IOC_QGROUP_CREATE, 0x4010_942a);
    }
}
