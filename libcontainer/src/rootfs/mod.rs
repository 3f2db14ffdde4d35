//! The container's root filesystem: the mount plan (built in the parent from config.json) and
//! its execution in the container's mount namespace (in the child, without allocating).
//!
//! Child-side order, driven by `init`:
//! 1. `mount_all`: rootfs propagation, the bind of root.path onto itself, every config mount in
//!    order, the default and configured devices, /dev symlinks, /dev/ptmx, cwd created.
//! 2. (init runs createContainer hooks; sets up the terminal with `open_ptmx`/`bind_console`.)
//! 3. `enter`: pivot_root (or move + chroot with no_pivot), maskedPaths, readonlyPaths, sysctl,
//!    root.readonly.

use std::os::fd::RawFd;
use std::path::Path;

use crate::fail::Fail;
use crate::oci_spec::runtime::Spec;
use crate::Result;

/// What the rootfs plan needs besides config.json.
#[derive(Clone, Debug, Default)]
pub(crate) struct RootfsOptions {
    /// `--no-pivot`: move the root onto / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has a new or joined user namespace: devices are bind-mounted from the
    /// host instead of created with mknod.
    pub userns: bool,
}

/// The planned root filesystem of one container.
pub(crate) struct Rootfs {
    _private: (),
}

impl Rootfs {
    /// Parent side: validates and plans everything (may allocate, may return rich errors).
    pub(crate) fn plan(spec: &Spec, bundle: &Path, opts: &RootfsOptions) -> Result<Rootfs> {
        let _ = (spec, bundle, opts);
        Err(crate::Error::Unsupported(
            "rootfs not implemented yet".into(),
        ))
    }

    /// Parent side: the message for a child `Fail` in `Area::Rootfs`.
    pub(crate) fn describe(&self, fail: &Fail) -> String {
        format!(
            "rootfs step {} #{}: {}",
            fail.code,
            fail.idx,
            crate::fail::errno_text(fail.errno)
        )
    }

    /// Child side, no allocation: step 1 above.
    pub(crate) fn mount_all(&mut self) -> Result<(), Fail> {
        Ok(())
    }

    /// Child side: opens the container's /dev/ptmx (from its own devpts) read-write.
    pub(crate) fn open_ptmx(&self) -> Result<RawFd, Fail> {
        Err(Fail::new(crate::fail::Area::Rootfs, 0, 0, libc::ENOSYS))
    }

    /// Child side: binds the pty slave onto the container's /dev/console.
    pub(crate) fn bind_console(&self, pty_slave: RawFd) -> Result<(), Fail> {
        let _ = pty_slave;
        Ok(())
    }

    /// Child side, no allocation: step 3 above.
    pub(crate) fn enter(&mut self) -> Result<(), Fail> {
        Ok(())
    }
}
