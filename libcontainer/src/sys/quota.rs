//! Project quotas (linux/quota.h, linux/dqblk_xfs.h, linux/fs.h): quotactl_fd(2) on a file of
//! the filesystem (no block device path needed), the quota state, block hard limits, and a
//! directory's project id and inherit flag. Used by `cowfs::prjquota` on the host (not in a
//! child), so they may allocate.

use std::os::fd::RawFd;

use super::{cvt, cvt_long};

/// quotactl_fd(2) (Linux 5.14); not in every libc's table yet.
const SYS_QUOTACTL_FD: libc::c_long = 443;

/// The project quota type (PRJQUOTA).
const PRJQUOTA: u32 = 2;

const fn qcmd(cmd: u32, ty: u32) -> u32 {
    (cmd << 8) | (ty & 0xff)
}
/// The generic (VFS quota) commands.
const Q_GETQUOTA: u32 = 0x80_0007;
const Q_SETQUOTA: u32 = 0x80_0008;
/// The XFS commands, which the VFS also answers for ext4.
const fn xqm_cmd(n: u32) -> u32 {
    ((b'X' as u32) << 8) + n
}
const Q_XSETQLIM: u32 = xqm_cmd(4);
const Q_XGETQSTAT: u32 = xqm_cmd(5);

/// `if_dqblk.dqb_valid`: the block limits are set.
const QIF_BLIMITS: u32 = 1;
/// `fs_quota_stat.qs_flags`: project quotas enforced (0x10 would be: accounted).
pub(crate) const PDQ_ENFD: u16 = 0x20;
/// `fs_disk_quota`: its version, the project type, the block hard limit field.
const FS_DQUOT_VERSION: i8 = 1;
const FS_PROJ_QUOTA: i8 = 2;
const FS_DQ_BHARD: u16 = 1 << 3;

/// `fsxattr.fsx_xflags`: new files and directories inherit the directory's project id.
const FS_XFLAG_PROJINHERIT: u32 = 0x200;

/// struct if_dqblk (the generic quota block; sizes in 1 KiB blocks for the limits, bytes
/// for the usage).
#[repr(C)]
#[derive(Default)]
struct IfDqblk {
    bhardlimit: u64,
    bsoftlimit: u64,
    curspace: u64,
    ihardlimit: u64,
    isoftlimit: u64,
    curinodes: u64,
    btime: u64,
    itime: u64,
    valid: u32,
}

/// struct fs_qfilestat.
#[repr(C)]
#[derive(Default)]
struct QFileStat {
    ino: u64,
    nblks: u64,
    nextents: u32,
}

/// struct fs_quota_stat (Q_XGETQSTAT).
#[repr(C)]
#[derive(Default)]
struct QuotaStat {
    version: i8,
    flags: u16,
    pad: i8,
    uquota: QFileStat,
    gquota: QFileStat,
    incoredqs: u32,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarnlimit: u16,
    iwarnlimit: u16,
}

/// struct fs_disk_quota (Q_XGETQUOTA, Q_XSETQLIM; limits in 512-byte basic blocks).
#[repr(C)]
#[derive(Default)]
struct DiskQuota {
    version: i8,
    flags: i8,
    fieldmask: u16,
    id: u32,
    blk_hardlimit: u64,
    blk_softlimit: u64,
    ino_hardlimit: u64,
    ino_softlimit: u64,
    bcount: u64,
    icount: u64,
    itimer: i32,
    btimer: i32,
    iwarns: u16,
    bwarns: u16,
    itimer_hi: i8,
    btimer_hi: i8,
    rtbtimer_hi: i8,
    padding2: i8,
    rtb_hardlimit: u64,
    rtb_softlimit: u64,
    rtbcount: u64,
    rtbtimer: i32,
    rtbwarns: u16,
    padding3: i16,
    padding4: [u8; 8],
}

/// struct fsxattr.
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

const fn ioc(dir: u64, ty: u8, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr
}
const FS_IOC_FSGETXATTR: u64 = ioc(2, b'X', 31, std::mem::size_of::<FsXattr>());
const FS_IOC_FSSETXATTR: u64 = ioc(1, b'X', 32, std::mem::size_of::<FsXattr>());

fn quotactl_fd(fd: RawFd, cmd: u32, id: u32, addr: *mut libc::c_void) -> Result<(), i32> {
    // SAFETY: fd is an open file; every caller passes `addr` pointing at a live, writable
    // struct of the type `cmd` reads or writes (checked by the unit tests' sizes).
    cvt_long(unsafe { libc::syscall(SYS_QUOTACTL_FD, fd, cmd, id, addr) }).map(drop)
}

/// The quota state flags of the filesystem holding `fd` (`PDQ_ENFD`...). ESRCH
/// or ENOSYS: no quotas there at all.
pub(crate) fn state_flags(fd: RawFd) -> Result<u16, i32> {
    let mut st = QuotaStat::default();
    quotactl_fd(
        fd,
        qcmd(Q_XGETQSTAT, PRJQUOTA),
        0,
        (&mut st as *mut QuotaStat).cast(),
    )?;
    Ok(st.flags)
}

/// What project `id` uses and may use on the filesystem holding `fd`: (bytes used, inodes
/// used, block hard limit in bytes). A project never seen there is all zeros.
pub(crate) fn project_usage(fd: RawFd, id: u32) -> Result<(u64, u64, u64), i32> {
    let mut q = IfDqblk::default();
    match quotactl_fd(
        fd,
        qcmd(Q_GETQUOTA, PRJQUOTA),
        id,
        (&mut q as *mut IfDqblk).cast(),
    ) {
        // XFS: no dquot for the id yet.
        Err(libc::ENOENT) => Ok((0, 0, 0)),
        Err(e) => Err(e),
        Ok(()) => Ok((q.curspace, q.curinodes, q.bhardlimit.saturating_mul(1024))),
    }
}

/// Sets project `id`'s block hard limit to `bytes` (0: no limit) through the generic quota
/// call (ext4; rounded up to 1 KiB blocks).
pub(crate) fn set_block_limit(fd: RawFd, id: u32, bytes: u64) -> Result<(), i32> {
    let mut q = IfDqblk {
        bhardlimit: bytes.div_ceil(1024),
        valid: QIF_BLIMITS,
        ..Default::default()
    };
    quotactl_fd(
        fd,
        qcmd(Q_SETQUOTA, PRJQUOTA),
        id,
        (&mut q as *mut IfDqblk).cast(),
    )
}

/// Sets project `id`'s block hard limit to `bytes` (0: no limit) through the XFS call
/// (rounded up to 512-byte basic blocks).
pub(crate) fn xfs_set_block_limit(fd: RawFd, id: u32, bytes: u64) -> Result<(), i32> {
    let mut q = DiskQuota {
        version: FS_DQUOT_VERSION,
        flags: FS_PROJ_QUOTA,
        fieldmask: FS_DQ_BHARD,
        id,
        blk_hardlimit: bytes.div_ceil(512),
        ..Default::default()
    };
    quotactl_fd(
        fd,
        qcmd(Q_XSETQLIM, PRJQUOTA),
        id,
        (&mut q as *mut DiskQuota).cast(),
    )
}

/// Gives the open directory `fd` project `id`, inherited by what is made in it.
pub(crate) fn set_projid_inherit(fd: RawFd, id: u32) -> Result<(), i32> {
    let mut x = FsXattr::default();
    // SAFETY: x is a live, writable fsxattr, the size FS_IOC_FSGETXATTR encodes.
    cvt(unsafe { libc::ioctl(fd, FS_IOC_FSGETXATTR as _, &mut x as *mut FsXattr) })?;
    x.projid = id;
    x.xflags |= FS_XFLAG_PROJINHERIT;
    // SAFETY: x is a live fsxattr, the size FS_IOC_FSSETXATTR encodes; the kernel only reads it.
    cvt(unsafe { libc::ioctl(fd, FS_IOC_FSSETXATTR as _, &x as *const FsXattr) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn layouts_match_the_kernel() {
        // linux/quota.h, linux/dqblk_xfs.h, linux/fs.h on x86_64.
        assert_eq!(size_of::<IfDqblk>(), 72);
        assert_eq!(size_of::<QuotaStat>(), 80);
        assert_eq!(size_of::<DiskQuota>(), 112);
        assert_eq!(size_of::<FsXattr>(), 28);
        assert_eq!(FS_IOC_FSGETXATTR, 0x801c_581f);
        assert_eq!(FS_IOC_FSSETXATTR, 0x401c_5820);
        assert_eq!(qcmd(Q_GETQUOTA, PRJQUOTA), 0x8000_0702);
        assert_eq!(qcmd(Q_SETQUOTA, PRJQUOTA), 0x8000_0802);
        assert_eq!(qcmd(Q_XGETQSTAT, PRJQUOTA), 0x0058_0502);
        assert_eq!(qcmd(Q_XSETQLIM, PRJQUOTA), 0x0058_0402);
    }

    #[test]
    fn no_quota_on_procfs_is_an_errno() {
        // procfs has no quotas: the call must fail cleanly with an errno (ENOSYS), never
        // succeed with garbage.
        let f = std::fs::File::open("/proc").unwrap();
        use std::os::fd::AsRawFd;
        assert!(state_flags(f.as_raw_fd()).is_err());
    }
}
