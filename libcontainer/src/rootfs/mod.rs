//! The container's root filesystem: the mount plan (built in the parent from config.json) and
//! its execution in the container's mount namespace (in the child, without allocating).
//!
//! Child-side order, driven by `init`:
//! 1. `mount_all`: rootfs propagation, the bind of root.path onto itself, every config mount in
//!    order, the default and configured devices, /dev symlinks, /dev/ptmx, cwd created.
//! 2. (init runs createContainer hooks; sets up the terminal with `open_ptmx`/`bind_console`.)
//! 3. `enter`: pivot_root (or, with no_pivot, the host's proc/sysfs hidden, then move +
//!    chroot), read-only tmpfs mounts and /dev made read-only, maskedPaths, readonlyPaths,
//!    sysctl, root.readonly.
//!
//! Preconditions: the caller is in its own (new) mount namespace, with CAP_SYS_ADMIN there
//! (root in its user namespace, uid/gid maps written), single-threaded, and already in the
//! container's pid (as its pid 1 or a descendant, for /proc), net (for sysfs and net.*
//! sysctls), ipc (mqueue) and cgroup (cgroup mounts) namespaces; in its cgroups when `cgroup`
//! mounts are binds. The host's /proc must still be reachable at /proc until `enter` (the
//! mount(2) fallback goes through /proc/self/fd). After `enter` the cwd is "/": the caller
//! changes to process.cwd (created by `mount_all`) itself.

mod cgroup;
mod copyup;
mod devices;
mod hostsrc;
pub(crate) mod idmap;
mod mask;
mod mount;
mod nopivot;
mod options;

/// Mount options husk itself interprets (the rest go to the filesystem), for `features`.
const APART: [&str; 3] = ["tmpcopyup", "idmap", "ridmap"];

pub(crate) fn known_mount_options() -> Vec<&'static str> {
    // Not mount flags (`lookup` does not know them), parsed apart: tmpcopyup (tmpfs), idmap
    // and ridmap (binds).
    options::KNOWN.iter().copied().chain(APART).collect()
}

#[cfg(test)]
pub(crate) fn options_known(name: &str) -> bool {
    options::is_known(name) || APART.contains(&name)
}
mod pivot;
mod plan;
pub(crate) use plan::new_ns;
mod sysctl;
#[cfg(test)]
mod tests;
mod walk;

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::fail::{Fail, Step};
use crate::oci_spec::runtime::Spec;
use crate::sys::mount as m;
use crate::Result;

/// What the rootfs plan needs besides config.json.
#[derive(Clone, Debug, Default)]
pub(crate) struct RootfsOptions {
    /// `--no-pivot`: move the root onto / and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has a new or joined user namespace: devices are bind-mounted from the
    /// host instead of created with mknod.
    pub userns: bool,
    /// The container's cgroup directory in each hierarchy (absolute host paths): without a
    /// cgroup namespace, `cgroup` mounts bind these. Empty binds the caller's own cgroups.
    pub cgroup_dirs: Vec<PathBuf>,
    /// The working directory `mount_all` creates in the root; None uses process.cwd.
    pub cwd: Option<PathBuf>,
}

crate::fail::codes! {
    /// Operation codes of `Step::Rootfs`; `idx` indexes the plan list named.
    pub(crate) enum Code {
        NsPropagation,
        BindRoot,
        OpenRoot,
        /// idx: plan mount step.
        Target,
        Mount,
        Setattr,
        Propagation,
        /// idx: plan device.
        Device,
        DeviceOwner,
        /// idx: plan link.
        Link,
        Cwd,
        Ptmx,
        Console,
        Pivot,
        OldRoot,
        MoveRoot,
        RootPropagation,
        Null,
        /// idx: linux.maskedPaths.
        Mask,
        /// idx: linux.readonlyPaths.
        Readonly,
        Procfs,
        /// idx: plan sysctl (sorted by key).
        Sysctl,
        RootRo,
        /// tmpcopyup: copying the mount point's contents into the new tmpfs.
        Copyup,
        /// idx: plan mount step; proc or sysfs onto what is not a directory.
        NotDir,
        /// idx: plan mount step; the late read-only remount of a tmpfs or /dev.
        RoLate,
        /// idx: plan mount step; linux.mountLabel as the new mount's xattr (mqueue).
        Label,
        /// The overlay rootfs mounted by the child itself (an unprivileged caller).
        RootOverlay,
    }
}

pub(crate) fn fail(code: Code, idx: usize, errno: i32) -> Fail {
    Fail::new(code, idx as u32, errno)
}

/// The planned root filesystem of one container.
pub(crate) struct Rootfs {
    plan: plan::Plan,
    /// O_PATH fd of the root, set by `mount_all` (O_CLOEXEC; stays valid after `enter`).
    root_fd: RawFd,
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        crate::sys::close(self.root_fd);
    }
}

impl Rootfs {
    /// Parent side: validates and plans everything (may allocate, may return rich errors).
    pub(crate) fn plan(spec: &Spec, bundle: &Path, opts: &RootfsOptions) -> Result<Rootfs> {
        Ok(Rootfs {
            plan: plan::build(spec, bundle, opts)?,
            root_fd: -1,
        })
    }

    /// Parent side: the message for a child `Fail` in `Step::Rootfs`.
    pub(crate) fn describe(&self, fail: &Fail) -> String {
        let p = &self.plan;
        let i = fail.idx as usize;
        let root = p.root_display.display();
        let step = |what: &str| match p.mounts.get(i) {
            Some(s) => format!("{}{what}", s.desc),
            None => format!("mount step {i}{what}"),
        };
        let list = |l: &[std::ffi::CString]| {
            l.get(i)
                .map_or("?".into(), |c| c.to_string_lossy().into_owned())
        };
        let Step::Rootfs(code) = fail.step else {
            return format!("rootfs: {:?}", fail.step);
        };
        let what = match code {
            Code::NsPropagation => {
                let kind = if p.ns_propagation == m::PROP_PRIVATE {
                    "rprivate"
                } else {
                    "rslave"
                };
                format!("making / of the container's mount namespace {kind}")
            }
            Code::BindRoot => format!("binding rootfs {root} onto itself"),
            Code::RootOverlay => format!(
                "mounting the overlay rootfs on {root} in the container's mount namespace ({})",
                p.root_overlay
                    .as_ref()
                    .map(|d| d.to_string_lossy())
                    .unwrap_or_default()
            ),
            Code::OpenRoot => format!("opening rootfs {root}"),
            Code::Target => step(": creating or opening the mount point"),
            // The kernel's EINVAL names nothing: say which filesystem options it was given.
            Code::Mount => match p.mounts.get(i).map(|s| &s.kind) {
                Some(plan::Kind::Fs { data, .. }) if !data.as_bytes().is_empty() => {
                    step(&format!(" with options {:?}", data.to_string_lossy()))
                }
                _ => step(""),
            },
            Code::Setattr => step(": setting mount attributes"),
            Code::Label => step(&format!(
                ": labelling it {:?} (linux.mountLabel)",
                p.mount_label
                    .as_deref()
                    .map(|l| l.to_string_lossy())
                    .unwrap_or_default()
            )),
            Code::NotDir => {
                let fs = match p.mounts.get(i).map(|s| &s.kind) {
                    Some(plan::Kind::Fs { fstype, .. }) => fstype.to_string_lossy().into_owned(),
                    _ => "proc".into(),
                };
                step(&format!(
                    ": filesystem {fs:?} must be mounted on ordinary directory"
                ))
            }
            Code::RoLate => step(": remounting it read-only"),
            Code::Copyup => step(": copying what the mount point held into it (tmpcopyup)"),
            Code::Propagation => step(": setting propagation"),
            Code::Device | Code::DeviceOwner => {
                let d = p
                    .devices
                    .get(i)
                    .map_or("device ?".into(), |d| d.desc.clone());
                let how = if code == Code::DeviceOwner {
                    ": changing its owner"
                } else if p.userns {
                    ": binding the host's node"
                } else {
                    ""
                };
                format!("{d}{how}")
            }
            Code::Link => match p.links.get(i) {
                Some(l) => format!(
                    "creating symlink {} -> {}",
                    l.target.display(),
                    l.to.to_string_lossy()
                ),
                None => format!("creating symlink {i}"),
            },
            Code::Cwd => format!(
                "creating process.cwd {}",
                p.cwd.as_ref().map_or("/".into(), |c| c.display())
            ),
            Code::Ptmx => "opening the container's /dev/ptmx".into(),
            Code::Console if fail.errno == libc::ELOOP => "binding the terminal onto \
                /dev/console: the container's /dev/console (or /dev) is a symlink, which is \
                not followed"
                .into(),
            Code::Console => "binding the terminal onto /dev/console".into(),
            Code::Pivot => format!("pivot_root to {root}"),
            Code::OldRoot => "detaching the old root after pivot_root".into(),
            Code::MoveRoot => format!("moving {root} onto / (no pivot)"),
            Code::RootPropagation => "applying linux.rootfsPropagation to /".into(),
            Code::Null => {
                if fail.errno == libc::ENODEV {
                    return "masking paths: the container's /dev/null is not the null device (1:3)"
                        .into();
                }
                "masking paths: opening /dev/null".into()
            }
            Code::Mask => format!("masking {} (linux.maskedPaths[{i}])", list(&p.masked)),
            Code::Readonly => format!(
                "making {} read-only (linux.readonlyPaths[{i}])",
                list(&p.readonly_paths)
            ),
            Code::Procfs => "mounting a private procfs for linux.sysctl".into(),
            Code::Sysctl => match p.sysctls.get(i) {
                Some(s) => format!("setting sysctl {}={:?}", s.key, s.value),
                None => format!("setting sysctl {i}"),
            },
            Code::RootRo => "remounting / read-only (root.readonly)".into(),
        };
        format!("{what}: {}", crate::fail::errno_text(fail.errno))
    }

    /// Parent side: the typed error for a child `Fail` in `Step::Rootfs`: `Error::Mount` for a
    /// mount of the plan or of the root itself, `Error::Setup` for the rest.
    pub(crate) fn error(&self, fail: &Fail) -> crate::Error {
        let msg = self.describe(fail);
        let errno = fail.errno;
        let mount = match fail.step {
            Step::Rootfs(
                Code::Target
                | Code::Mount
                | Code::Setattr
                | Code::Propagation
                | Code::Copyup
                | Code::NotDir
                | Code::RoLate,
            ) => self
                .plan
                .mounts
                .get(fail.idx as usize)
                .map(|s| (PathBuf::from(s.target.display()), Some(s.index))),
            Step::Rootfs(Code::BindRoot | Code::OpenRoot | Code::RootOverlay) => {
                Some((PathBuf::from("/"), None))
            }
            _ => None,
        };
        match mount {
            Some((destination, index)) => crate::Error::Mount {
                destination,
                index,
                errno,
                msg,
            },
            None => crate::Error::Setup {
                errno: Some(errno),
                msg,
            },
        }
    }

    /// Child side, no allocation: step 1 above. Must run in the container's new mount
    /// namespace, before `enter`, once.
    pub(crate) fn mount_all(&mut self) -> Result<(), Fail> {
        self.root_fd = mount::mount_all(&self.plan)?;
        Ok(())
    }

    /// Child side: opens the container's /dev/ptmx (from its own devpts) read-write. After
    /// `mount_all` (before or after `enter`).
    pub(crate) fn open_ptmx(&self) -> Result<RawFd, Fail> {
        mount::open_in(self.root_fd, c"dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)
            .map_err(|e| fail(Code::Ptmx, 0, e))
    }

    /// An overlay rootfs (its mount data) the child mounts on root.path in the container's
    /// own mount namespace, where an unprivileged caller may mount it (docs/rootless.md).
    pub(crate) fn mount_overlay_in_child(&mut self, data: std::ffi::CString) {
        self.plan.root_overlay = Some(data);
        self.plan.root_tree = None;
    }

    /// Parent side, before the clone, on the host: bind sources relabelled (`z`/`Z`); the
    /// trees of id-mapped binds, and of bind sources the container's root cannot reach (kept
    /// open by the returned fds until the child has inherited them).
    pub(crate) fn prepare_host(&mut self) -> Result<Vec<std::os::fd::OwnedFd>> {
        if let Some(label) = &self.plan.mount_label {
            for (src, shared) in &self.plan.relabel {
                crate::lsm::relabel(src, label, *shared)?;
            }
        }
        let mut keep = idmap::prepare(&mut self.plan)?;
        hostsrc::prepare(&mut self.plan, &mut keep);
        Ok(keep)
    }

    /// Mounts of the root whose source is a host path, for CRIU's external mount map:
    /// (destination in the container, host source). The binds of `mounts` (the v1 cgroup
    /// hierarchies included) and, in a user namespace, the devices bound from the host.
    pub(crate) fn host_binds(&self) -> Vec<(PathBuf, PathBuf)> {
        use std::os::unix::ffi::OsStrExt;
        let path = |c: &std::ffi::CStr| PathBuf::from(std::ffi::OsStr::from_bytes(c.to_bytes()));
        let mut out: Vec<(PathBuf, PathBuf)> = self
            .plan
            .mounts
            .iter()
            .filter_map(|m| match &m.kind {
                plan::Kind::Bind { source, .. } => {
                    Some((PathBuf::from(m.target.display()), path(source)))
                }
                _ => None,
            })
            .collect();
        if self.plan.userns {
            for d in &self.plan.devices {
                out.push((PathBuf::from(d.target.display()), path(&d.host)));
            }
        }
        out
    }

    /// linux.maskedPaths, absolute in the container.
    pub(crate) fn masked_paths(&self) -> Vec<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        self.plan
            .masked
            .iter()
            .map(|c| PathBuf::from(std::ffi::OsStr::from_bytes(c.to_bytes())))
            .collect()
    }

    /// Child side: binds the pty slave onto the container's /dev/console. After `mount_all`
    /// (before or after `enter`).
    pub(crate) fn bind_console(&self, pty_slave: RawFd) -> Result<(), Fail> {
        let t = &self.plan.console;
        // A symlink at (or on the way to) /dev/console is never followed: it would carry the
        // terminal's bind onto whatever it names, a procfs file say (CVE-2025-52565).
        match m::openat2(
            self.root_fd,
            c"dev/console",
            libc::O_PATH | libc::O_CLOEXEC,
            0,
            m::RESOLVE_IN_ROOT | m::RESOLVE_NO_SYMLINKS,
        ) {
            Ok(fd) => crate::sys::close(fd),
            Err(libc::ENOENT) => {}
            Err(e) => return Err(fail(Code::Console, 0, e)),
        }
        let old = m::umask(0o077);
        let target = mount::make(self.root_fd, t, true);
        m::umask(old);
        let target = mount::Guard(target.map_err(|e| fail(Code::Console, 0, e))?);
        let tree = mount::Guard(
            m::open_tree(
                pty_slave,
                c"",
                m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH,
            )
            .map_err(|e| fail(Code::Console, 0, e))?,
        );
        m::move_mount(
            tree.0,
            c"",
            target.0,
            c"",
            m::MOVE_MOUNT_F_EMPTY_PATH | m::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| fail(Code::Console, 0, e))
    }

    /// Child side, no allocation: step 3 above. After `mount_all`; leaves the process in the
    /// new root with cwd "/".
    pub(crate) fn enter(&mut self) -> Result<(), Fail> {
        if self.root_fd < 0 {
            return Err(fail(Code::OpenRoot, 0, libc::EBADF));
        }
        pivot::enter(&self.plan, self.root_fd)
    }
}
