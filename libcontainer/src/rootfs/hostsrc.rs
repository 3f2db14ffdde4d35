//! Bind sources the container's root cannot reach itself (a user namespace whose root may not
//! search a directory on the way): as runc, the parent opens them with the host's privileges.
//! Planned when the source's directories refuse the mapped root; the tree is made before the
//! clone and used by the child only when its own open_tree fails.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::plan::{Kind, Plan};
use crate::oci_spec::runtime::{LinuxIdMapping, Spec};
use crate::sys::{self, mount as m};

fn host_id(v: &[LinuxIdMapping], id: u32) -> Option<u32> {
    v.iter()
        .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
        .map(|m| m.host_id() + (id - m.container_id()))
}

fn in_map(v: &[LinuxIdMapping], host: u32) -> bool {
    v.iter()
        .any(|m| host >= m.host_id() && host - m.host_id() < m.size())
}

/// Whether the root of the container's user namespace could not search some directory on
/// the way to `src` (without mappings in the config, a joined namespace: assumed so).
pub(super) fn unreachable(spec: &Spec, src: &Path) -> bool {
    let l = spec.linux().as_ref();
    let (Some(u), Some(g)) = (
        l.and_then(|l| l.uid_mappings().as_deref()),
        l.and_then(|l| l.gid_mappings().as_deref()),
    ) else {
        return true;
    };
    let (Some(uid), Some(gid)) = (host_id(u, 0), host_id(g, 0)) else {
        return true;
    };
    let mut p = std::path::PathBuf::from("/");
    for c in src.parent().map(Path::components).into_iter().flatten() {
        p.push(c);
        let Ok(md) = std::fs::metadata(&p) else {
            return false;
        };
        let mode = md.mode();
        // Its root's capabilities cover files whose owner and group it maps.
        let ok = if in_map(u, md.uid()) && in_map(g, md.gid()) {
            true
        } else if md.uid() == uid {
            mode & 0o100 != 0
        } else if md.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return true;
        }
    }
    false
}

/// Parent side, before the clone: the host's tree of each planned source (a source the host
/// cannot open either is left to the child, which reports it).
pub(super) fn prepare(plan: &mut Plan, keep: &mut Vec<OwnedFd>) {
    if let Some(tree) = plan.root_tree.as_mut() {
        let flags = m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_RECURSIVE;
        if let Ok(fd) = m::open_tree(libc::AT_FDCWD, &plan.root, flags) {
            let fd = sys::adopt(fd);
            *tree = fd.as_raw_fd();
            keep.push(fd);
        }
    }
    for step in plan.mounts.iter_mut() {
        let (
            Some(tree),
            Kind::Bind {
                source, recursive, ..
            },
        ) = (step.host_tree.as_mut(), &step.kind)
        else {
            continue;
        };
        let flags = m::OPEN_TREE_CLONE
            | m::OPEN_TREE_CLOEXEC
            | if *recursive { m::AT_RECURSIVE } else { 0 };
        if let Ok(fd) = m::open_tree(libc::AT_FDCWD, source, flags) {
            let fd = sys::adopt(fd);
            *tree = fd.as_raw_fd();
            keep.push(fd);
        }
    }
}
