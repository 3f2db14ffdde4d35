//! Device nodes: the default set plus linux.devices, and the /dev symlinks.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::Path;

use super::mount::{make, make_parent, Guard};
use super::plan::{path_cstr, DeviceStep, LinkStep, Plan, Target};
use super::{fail, Code};
use crate::fail::Fail;
use crate::oci_spec::runtime::{LinuxDeviceType, Spec};
use crate::sys::mount as m;
use crate::{Error, Result};

/// runc's default devices: (path, major, minor), all character devices, 0666, root-owned.
const DEFAULT: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn device(
    desc: String,
    path: &Path,
    kind: u32,
    perm: u32,
    (major, minor): (u32, u32),
    (uid, gid): (u32, u32),
) -> Result<DeviceStep> {
    Ok(DeviceStep {
        desc,
        target: Target::new(path)?,
        mode: kind | (perm & 0o7777),
        dev: libc::makedev(major, minor),
        uid,
        gid,
        host: path_cstr(path)?,
    })
}

pub(super) fn plan(plan: &mut Plan, spec: &Spec, has_pts: bool) -> Result<()> {
    let devs = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for (path, major, minor) in DEFAULT {
        if devs.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        plan.devices.push(device(
            format!("creating default device {path}"),
            Path::new(path),
            libc::S_IFCHR,
            0o666,
            (major, minor),
            (0, 0),
        )?);
    }
    for (i, d) in devs.iter().enumerate() {
        let p = d.path();
        if !p.is_absolute() || !p.starts_with("/dev") || p == Path::new("/dev") {
            return Err(Error::config(
                format!("linux.devices[{i}]"),
                format!("linux.devices[{i}]: path {p:?} must be under /dev"),
            ));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::config(
                    format!("linux.devices[{i}]"),
                    format!(
                        "linux.devices[{i}] ({}): type must be c, b, u or p",
                        p.display()
                    ),
                ))
            }
        };
        let num = |v: i64, what: &str| {
            u32::try_from(v).map_err(|_| {
                Error::config(
                    format!("linux.devices[{i}]"),
                    format!("linux.devices[{i}] ({}): bad {what} {v}", p.display()),
                )
            })
        };
        let (major, minor) = if kind == libc::S_IFIFO {
            (0, 0)
        } else {
            (num(d.major(), "major")?, num(d.minor(), "minor")?)
        };
        plan.devices.push(device(
            format!("creating device {} (linux.devices[{i}])", p.display()),
            p,
            kind,
            d.file_mode().unwrap_or(0o666),
            (major, minor),
            (d.uid().unwrap_or(0), d.gid().unwrap_or(0)),
        )?);
    }
    let mut links: Vec<(&str, &str, bool)> = vec![
        ("/dev/fd", "/proc/self/fd", false),
        ("/dev/stdin", "/proc/self/fd/0", false),
        ("/dev/stdout", "/proc/self/fd/1", false),
        ("/dev/stderr", "/proc/self/fd/2", false),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/dev/core", "/proc/kcore", false));
    }
    if has_pts {
        // The container's own devpts instance, not a host node.
        links.push(("/dev/ptmx", "pts/ptmx", true));
    }
    for (at, to, replace) in links {
        plan.links.push(LinkStep {
            target: Target::new(Path::new(at))?,
            to: CString::new(to).map_err(|_| Error::config("linux.devices", "NUL in link"))?,
            replace,
        });
    }
    Ok(())
}

/// Child side: creates every planned device (mknod, or a bind of the host node in a user
/// namespace, where mknod is refused).
pub(super) fn create(plan: &Plan, root: RawFd) -> Result<(), Fail> {
    // Device modes are exact, as runc makes them.
    let old = m::umask(0);
    let r = create_all(plan, root);
    m::umask(old);
    r
}

fn create_all(plan: &Plan, root: RawFd) -> Result<(), Fail> {
    for (i, d) in plan.devices.iter().enumerate() {
        if plan.userns {
            let target = Guard(make(root, &d.target, true).map_err(|e| fail(Code::Device, i, e))?);
            let tree = Guard(
                m::open_tree(
                    libc::AT_FDCWD,
                    &d.host,
                    m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC,
                )
                .map_err(|e| fail(Code::Device, i, e))?,
            );
            m::move_mount(
                tree.0,
                c"",
                target.0,
                c"",
                m::MOVE_MOUNT_F_EMPTY_PATH | m::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(|e| fail(Code::Device, i, e))?;
            continue;
        }
        let (parent, name) = make_parent(root, &d.target).map_err(|e| fail(Code::Device, i, e))?;
        let parent = Guard(parent);
        match m::mknodat(parent.0, name, d.mode, d.dev) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => return Err(fail(Code::Device, i, e)),
        }
        m::fchownat(parent.0, name, d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| fail(Code::DeviceOwner, i, e))?;
    }
    Ok(())
}
