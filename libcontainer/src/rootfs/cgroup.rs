//! `cgroup` mounts: cgroup2, or a tmpfs holding each v1 hierarchy, as runc lays them out.

use std::path::{Path, PathBuf};

use super::options::{Attr, Parsed};
use super::plan::{cstr, path_cstr, Kind, MountStep, Plan, Target};
use super::RootfsOptions;
use crate::sys::mount::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use crate::{Error, Result};

/// One host hierarchy from /proc/self/mountinfo.
#[derive(Debug, PartialEq)]
pub(crate) struct Hierarchy {
    /// Where the host mounts it (/sys/fs/cgroup/cpu,cpuacct).
    pub mountpoint: PathBuf,
    /// The cgroup shown as its root (mountinfo's 4th field).
    pub root: PathBuf,
    /// "cgroup" or "cgroup2".
    pub fstype: String,
    /// The v1 options naming it ("cpu", "cpuacct", "name=systemd").
    pub controllers: Vec<String>,
}

/// Parses mountinfo text for cgroup mounts under /sys/fs/cgroup.
pub(crate) fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 || !r[0].starts_with("cgroup") {
            continue;
        }
        let mp = Path::new(l[4]);
        if !mp.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let controllers = r[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent="))
            .map(str::to_string)
            .collect();
        out.push(Hierarchy {
            mountpoint: mp.to_path_buf(),
            root: PathBuf::from(l[3]),
            fstype: r[0].to_string(),
            controllers,
        });
    }
    out
}

fn step(
    index: usize,
    desc: String,
    target: Target,
    kind: Kind,
    attr: Attr,
    fsmount_attr: u64,
) -> MountStep {
    MountStep {
        desc,
        index,
        target,
        is_file: false,
        kind,
        attr,
        rattr: Attr::default(),
        fsmount_attr,
        propagation: Vec::new(),
        copyup: false,
        ro_late: false,
        host_tree: None,
        idmap: None,
    }
}

fn fs(fstype: &str, source: &str, params: &[String]) -> Result<Kind> {
    let mut ps = Vec::new();
    for p in params {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k, Some(cstr(v.as_bytes())?)),
            None => (p.as_str(), None),
        };
        ps.push(super::options::Param {
            key: cstr(k.as_bytes())?,
            value: v,
        });
    }
    Ok(Kind::Fs {
        fstype: cstr(fstype.as_bytes())?,
        source: cstr(source.as_bytes())?,
        data: cstr(params.join(",").as_bytes())?,
        params: ps,
        ms_flags: 0,
    })
}

/// This process's cgroup in hierarchy `h`, from /proc/self/cgroup text (what a child inherits
/// when nobody moves it).
fn own_cgroup(h: &Hierarchy, proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if h.fstype == "cgroup2" {
            ctrl.is_empty()
        } else {
            !ctrl.is_empty()
                && ctrl
                    .split(',')
                    .all(|c| h.controllers.iter().any(|x| x == c))
        };
        hit.then(|| PathBuf::from(path))
    })
}

/// The container's cgroup in hierarchy `h`, as a host path (for binds without a cgroup
/// namespace): the one of `dirs` (the container's directory in each hierarchy) under `h`'s
/// mount point, or else this process's own cgroup there.
fn bind_source(h: &Hierarchy, dirs: &[PathBuf], proc_cgroup: &str) -> PathBuf {
    if let Some(d) = dirs.iter().find(|d| d.starts_with(&h.mountpoint)) {
        return d.clone();
    }
    let Some(cg) = own_cgroup(h, proc_cgroup) else {
        return h.mountpoint.clone();
    };
    // mountinfo's root is the cgroup the host mount shows as its top.
    let rel = cg.strip_prefix(&h.root).unwrap_or(&cg);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    h.mountpoint.join(rel)
}

pub(super) fn plan(
    plan: &mut Plan,
    i: usize,
    target: Target,
    parsed: &Parsed,
    cgroupns: bool,
    opts: &RootfsOptions,
) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
    let hs = hierarchies(&text);
    let shown = target.display();
    let cg = &opts.cgroup_dirs;
    let own = if cgroupns {
        String::new()
    } else {
        std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| Error::io("reading /proc/self/cgroup", e))?
    };
    let fsattr = parsed.fsmount_attr();
    if let Some(h) = hs
        .iter()
        .find(|h| h.mountpoint == Path::new("/sys/fs/cgroup") && h.fstype == "cgroup2")
    {
        let kind = if cgroupns {
            fs("cgroup2", "cgroup", &[])?
        } else {
            Kind::Bind {
                source: path_cstr(&bind_source(h, cg, &own))?,
                recursive: false,
                remount: None,
            }
        };
        plan.mounts.push(step(
            i,
            format!("mount cgroup2 onto {shown} (mounts[{i}])"),
            target,
            kind,
            parsed.attr,
            fsattr,
        ));
        return Ok(());
    }
    if hs.is_empty() {
        return Err(Error::unsupported(
            "cgroup mount",
            format!("mounts[{i}] ({shown}): no cgroup hierarchy mounted under /sys/fs/cgroup"),
        ));
    }
    // v1 or hybrid: a tmpfs, then each hierarchy below it.
    let base = PathBuf::from(&shown);
    let tmpfs_attr = Attr {
        set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        clr: 0,
    };
    plan.mounts.push(step(
        i,
        format!("mount tmpfs onto {shown} (mounts[{i}], cgroup v1)"),
        Target::new(&base)?,
        fs("tmpfs", "tmpfs", &["mode=755".to_string()])?,
        tmpfs_attr,
        tmpfs_attr.set,
    ));
    for h in hs
        .iter()
        .filter(|h| h.mountpoint != Path::new("/sys/fs/cgroup"))
    {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let name = name.to_string_lossy().to_string();
        let dest = base.join(&name);
        let kind = if !cgroupns {
            Kind::Bind {
                source: path_cstr(&bind_source(h, cg, &own))?,
                recursive: false,
                remount: None,
            }
        } else if h.fstype == "cgroup2" {
            fs("cgroup2", "cgroup2", &[])?
        } else {
            fs("cgroup", "cgroup", &h.controllers)?
        };
        plan.mounts.push(step(
            i,
            format!(
                "mount {} {name} onto {} (mounts[{i}])",
                h.fstype,
                dest.display()
            ),
            Target::new(&dest)?,
            kind,
            parsed.attr,
            fsattr,
        ));
        // Co-mounted controllers (cpu,cpuacct) also get a link per controller, as runc does.
        if name.contains(',') {
            for c in name.split(',') {
                let link = base.join(c);
                plan.mounts.push(step(
                    i,
                    format!("symlink {} -> {name} (mounts[{i}])", link.display()),
                    Target::new(&link)?,
                    Kind::Symlink {
                        to: cstr(name.as_bytes())?,
                    },
                    Attr::default(),
                    0,
                ));
            }
        }
    }
    if parsed.attr.set & MOUNT_ATTR_RDONLY != 0 {
        plan.mounts.push(step(
            i,
            format!("remount {shown} read-only (mounts[{i}], cgroup v1)"),
            Target::new(&base)?,
            Kind::Setattr,
            Attr {
                set: MOUNT_ATTR_RDONLY,
                clr: 0,
            },
            0,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_cgroup_mountinfo() {
        let t = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                 32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
                 40 31 0:37 /x /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let hs = hierarchies(t);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(hs[1].controllers, ["xattr", "name=systemd"]);
        assert_eq!(hs[2].fstype, "cgroup2");
        // The container's own directory of each hierarchy wins, whatever the others are.
        let dirs = [
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1"),
            PathBuf::from("/sys/fs/cgroup/systemd/x/husk/c1"),
        ];
        assert_eq!(
            bind_source(&hs[1], &dirs, ""),
            Path::new("/sys/fs/cgroup/systemd/x/husk/c1")
        );
        assert_eq!(bind_source(&hs[0], &dirs, ""), dirs[0]);
        let own = "3:cpuacct,cpu:/a\n1:name=systemd:/x/s\n0::/u\n";
        let src = |i: usize| bind_source(&hs[i], &[], own);
        assert_eq!(src(0), Path::new("/sys/fs/cgroup/cpu,cpuacct/a"));
        assert_eq!(src(1), Path::new("/sys/fs/cgroup/systemd/s"));
        assert_eq!(src(2), Path::new("/sys/fs/cgroup/unified/u"));
    }
}
