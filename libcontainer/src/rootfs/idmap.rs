//! Id-mapped bind mounts (mount options `idmap` and `ridmap`; the mount's `uidMappings` and
//! `gidMappings`, or else the container's). Setting MOUNT_ATTR_IDMAP needs the host's
//! privileges over the source filesystem, so the parent makes each detached tree before the
//! clone (open_tree, then mount_setattr with a user namespace that holds the mappings); the
//! child inherits the fd and moves the tree into place with the other mounts.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::plan::{Kind, Plan};
use crate::oci_spec::runtime::{LinuxIdMapping, Mount, Spec};
use crate::sys::{self, mount as m};
use crate::{Error, Result};

pub(crate) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The mappings of one id-mapped bind, and its tree once the parent made it.
#[derive(Debug)]
pub(crate) struct IdMap {
    uid_map: String,
    gid_map: String,
    /// No mappings on the mount and a joined user namespace: that namespace's (as runc).
    userns_path: Option<std::path::PathBuf>,
    /// `ridmap`: submounts of a recursive bind are id-mapped too.
    recursive: bool,
    /// The detached, id-mapped tree (parent side, before the clone); -1 until `prepare`.
    pub tree: RawFd,
}

pub(crate) fn map_text(v: &[LinuxIdMapping]) -> String {
    v.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

impl IdMap {
    pub(crate) fn for_mount(
        i: usize,
        shown: &str,
        m: &Mount,
        spec: &Spec,
        recursive: bool,
    ) -> Result<IdMap> {
        let (uid, gid) = match (m.uid_mappings(), m.gid_mappings()) {
            (Some(u), Some(g)) => (u.clone(), g.clone()),
            (None, None) => {
                let l = spec.linux().as_ref();
                let joined = l
                    .and_then(|l| l.namespaces().as_ref())
                    .and_then(|ns| {
                        ns.iter()
                            .find(|n| n.typ() == crate::oci_spec::runtime::LinuxNamespaceType::User)
                    })
                    .and_then(|n| n.path().clone());
                if let Some(path) = joined {
                    return Ok(IdMap {
                        uid_map: String::new(),
                        gid_map: String::new(),
                        userns_path: Some(path),
                        recursive,
                        tree: -1,
                    });
                }
                match (
                    l.and_then(|l| l.uid_mappings().clone()),
                    l.and_then(|l| l.gid_mappings().clone()),
                ) {
                    (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => (u, g),
                    _ => {
                        return Err(Error::config(
                            format!("mounts[{i}]"),
                            format!(
                                "mounts[{i}] ({shown}): an id-mapped mount needs uidMappings and \
                             gidMappings, on the mount or in linux (a user namespace)"
                            ),
                        ))
                    }
                }
            }
            _ => {
                return Err(Error::config(
                    format!("mounts[{i}]"),
                    format!("mounts[{i}] ({shown}): uidMappings and gidMappings go together"),
                ))
            }
        };
        if uid.is_empty() || gid.is_empty() {
            return Err(Error::config(
                format!("mounts[{i}]"),
                format!("mounts[{i}] ({shown}): empty uidMappings or gidMappings"),
            ));
        }
        Ok(IdMap {
            uid_map: map_text(&uid),
            gid_map: map_text(&gid),
            userns_path: None,
            recursive,
            tree: -1,
        })
    }
}

/// Parent side, before the clone: makes the tree of every id-mapped bind. The returned fds
/// keep them open until the child has inherited them.
pub(crate) fn prepare(plan: &mut Plan) -> Result<Vec<OwnedFd>> {
    let mut keep = Vec::new();
    for step in plan.mounts.iter_mut() {
        let (
            Some(idm),
            Kind::Bind {
                source, recursive, ..
            },
        ) = (step.idmap.as_mut(), &step.kind)
        else {
            continue;
        };
        let what = format!("{}: id-mapping", step.desc);
        let userns = match &idm.userns_path {
            Some(p) => std::fs::File::open(p)
                .map(OwnedFd::from)
                .map_err(|e| Error::io(format!("{what}: opening {}", p.display()), e))?,
            None => userns_with(&idm.uid_map, &idm.gid_map)
                .map_err(|e| Error::setup(format!("{what}: {e}")))?,
        };
        let flags = m::OPEN_TREE_CLONE
            | m::OPEN_TREE_CLOEXEC
            | if *recursive { m::AT_RECURSIVE } else { 0 };
        let tree = sys::adopt(
            m::open_tree(libc::AT_FDCWD, source, flags)
                .map_err(|e| Error::errno(format!("{what}: open_tree"), e))?,
        );
        let attr = m::MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        let at = m::AT_EMPTY_PATH | if idm.recursive { m::AT_RECURSIVE } else { 0 };
        m::mount_setattr(tree.as_raw_fd(), c"", at, &attr).map_err(|e| {
            Error::errno(
                format!("{what} (mount_setattr; the filesystem may not support id-mapped mounts)"),
                e,
            )
        })?;
        idm.tree = tree.as_raw_fd();
        keep.push(tree);
    }
    Ok(keep)
}

/// A user namespace holding the mappings: a child is cloned into a new one, its maps are
/// written, the namespace is opened, and the child is let go.
pub(crate) fn userns_with(uid_map: &str, gid_map: &str) -> std::result::Result<OwnedFd, String> {
    let (a, b) = sys::sock::seqpacket_pair().map_err(|e| format!("socketpair: errno {e}"))?;
    let (a, b) = (sys::adopt(a), sys::adopt(b));
    match sys::proc::clone3(libc::CLONE_NEWUSER as u64, None) {
        Err(e) => Err(format!(
            "cloning into a new user namespace: {}",
            crate::fail::errno_text(e)
        )),
        Ok(sys::proc::Cloned::Child) => {
            // Wait for the parent to close its end, then go; nothing here allocates or locks.
            sys::close(a.as_raw_fd());
            let mut buf = [0u8; 1];
            let _ = sys::read(b.as_raw_fd(), &mut buf);
            sys::exit(0)
        }
        Ok(sys::proc::Cloned::Parent { pid, pidfd }) => {
            let pidfd = sys::adopt(pidfd);
            drop(b);
            let r = (|| {
                std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)
                    .map_err(|e| format!("writing uid_map {uid_map:?}: {e}"))?;
                std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)
                    .map_err(|e| format!("writing gid_map {gid_map:?}: {e}"))?;
                std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map(OwnedFd::from)
                    .map_err(|e| format!("opening the user namespace: {e}"))
            })();
            drop(a);
            let _ = sys::proc::wait_pidfd(pidfd.as_raw_fd());
            r
        }
    }
}
