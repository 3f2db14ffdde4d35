//! Finding the host's cgroup hierarchies from `/proc/self/mountinfo`.
//!
//! Every `cgroup` (v1) mount is one hierarchy, named by the controllers in its super options
//! (`cpu`, `cpu,cpuacct`, …) or by `name=…` for a named hierarchy without controllers
//! (`name=systemd`). A `cgroup2` mount is the unified hierarchy. A hierarchy mounted more than
//! once (bind mounts) is kept once, preferring a mount of its root.

use std::path::{Path, PathBuf};

use crate::{Error, Layout, Result};

/// Where the mount table is read from.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One mounted hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu`.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy is the mount's root (`/` unless a sub-cgroup was mounted or
    /// the reader is in a cgroup namespace).
    pub root: PathBuf,
    /// v1: the controllers (and `name=…`), sorted; empty for the unified (v2) hierarchy.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// Whether this v1 hierarchy carries `controller` (`"cpuset"`, `"freezer"`, `"name=systemd"`).
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Whether it has at least one real controller (not only a `name=`).
    fn has_controller(&self) -> bool {
        self.controllers.iter().any(|c| !c.starts_with("name="))
    }
}

/// The host's hierarchies and their classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchies {
    pub layout: Layout,
    /// The v1 hierarchies, in mount order (empty when `layout` is `V2`).
    pub v1: Vec<Hierarchy>,
    /// The unified hierarchy (none when `layout` is `V1`).
    pub unified: Option<Hierarchy>,
}

/// Reads `/proc/self/mountinfo` and classifies the host.
pub fn detect() -> Result<Hierarchies> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| Error::Io {
        path: MOUNTINFO.into(),
        source,
    })?;
    parse_mountinfo(&text).map_err(|what| Error::Parse {
        path: MOUNTINFO.into(),
        what,
    })
}

/// Classifies the cgroup mounts of a mountinfo text.
///
/// - `V2`: a cgroup2 mount and no v1 hierarchy with a controller (named-only v1 hierarchies such
///   as `name=systemd` next to a unified `/sys/fs/cgroup` are then ignored, as runc does);
/// - `Hybrid`: a cgroup2 mount and v1 controller hierarchies (all v1 hierarchies are used);
/// - `V1`: only v1 hierarchies.
pub fn parse_mountinfo(text: &str) -> Result<Hierarchies, String> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut unified: Option<Hierarchy> = None;
    for (n, line) in text.lines().enumerate() {
        let Some(m) = parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))? else {
            continue;
        };
        match m.fstype {
            "cgroup2" => {
                let h = Hierarchy {
                    mount_point: m.mount_point,
                    root: m.root,
                    controllers: Vec::new(),
                };
                match &unified {
                    Some(old) if !prefer(&h, old) => {}
                    _ => unified = Some(h),
                }
            }
            _ => {
                let controllers = v1_controllers(m.super_options);
                if controllers.is_empty() {
                    continue;
                }
                let h = Hierarchy {
                    mount_point: m.mount_point,
                    root: m.root,
                    controllers,
                };
                match v1.iter_mut().find(|o| o.controllers == h.controllers) {
                    Some(old) => {
                        if prefer(&h, old) {
                            *old = h;
                        }
                    }
                    None => v1.push(h),
                }
            }
        }
    }
    let layout = match (&unified, v1.iter().any(Hierarchy::has_controller)) {
        (Some(_), true) => Layout::Hybrid,
        (Some(_), false) => {
            v1.clear();
            Layout::V2
        }
        (None, _) if !v1.is_empty() => Layout::V1,
        (None, _) => return Err("no cgroup or cgroup2 file system is mounted".into()),
    };
    Ok(Hierarchies {
        layout,
        v1,
        unified,
    })
}

/// A second mount of the same hierarchy replaces the first only if it shows the hierarchy's
/// root and the first does not.
fn prefer(new: &Hierarchy, old: &Hierarchy) -> bool {
    new.root == Path::new("/") && old.root != Path::new("/")
}

struct MountLine<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// Parses one mountinfo line; `None` for non-cgroup file systems.
///
/// Format: `id parent major:minor root mount-point options [optional…] - fstype source super-options`.
fn parse_line(line: &str) -> Result<Option<MountLine<'_>>, String> {
    let line = line.trim_end();
    if line.is_empty() {
        return Ok(None);
    }
    let (head, tail) = line
        .split_once(" - ")
        .ok_or_else(|| format!("no ' - ' separator in {line:?}"))?;
    let mut tail = tail.split(' ');
    let fstype = tail.next().unwrap_or("");
    if fstype != "cgroup" && fstype != "cgroup2" {
        return Ok(None);
    }
    let _source = tail.next();
    let super_options = tail.next().unwrap_or("");
    let head: Vec<&str> = head.split(' ').collect();
    if head.len() < 6 {
        return Err(format!("too few fields in {line:?}"));
    }
    Ok(Some(MountLine {
        root: PathBuf::from(unescape(head[3])),
        mount_point: PathBuf::from(unescape(head[4])),
        fstype,
        super_options,
    }))
}

/// The controllers of a v1 mount's super options, sorted: every option except the generic
/// mount flags and the `key=value` ones, plus `name=…`.
fn v1_controllers(super_options: &str) -> Vec<String> {
    const NOT_CONTROLLERS: &[&str] = &[
        "rw",
        "ro",
        "noprefix",
        "xattr",
        "clone_children",
        "cpuset_v2_mode",
        "favordynmods",
        "nofavordynmods",
        "none",
        "all",
    ];
    let mut v: Vec<String> = super_options
        .split(',')
        .filter(|o| !o.is_empty() && !NOT_CONTROLLERS.contains(o))
        .filter(|o| !o.contains('=') || o.starts_with("name="))
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 20 0:32 /sub /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid() {
        let h = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(h.layout, Layout::Hybrid);
        let names: Vec<String> = h.v1.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(names, ["cpu,cpuacct", "cpuset", "memory", "name=systemd"]);
        assert_eq!(h.v1[2].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert!(h.v1[3].has("name=systemd"));
        let u = h.unified.unwrap();
        assert_eq!(u.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(u.root, Path::new("/"));
    }

    #[test]
    fn v2_ignores_named_v1() {
        let t = "\
25 20 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 20 0:23 / /run/named rw - cgroup cgroup rw,name=foo
";
        let h = parse_mountinfo(t).unwrap();
        assert_eq!(h.layout, Layout::V2);
        assert!(h.v1.is_empty());
        assert_eq!(h.unified.unwrap().mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn v1_only_and_bind_mount_preference() {
        let t = "\
60 20 0:40 /a/b /mnt/pids rw - cgroup cgroup rw,pids
61 20 0:40 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let h = parse_mountinfo(t).unwrap();
        assert_eq!(h.layout, Layout::V1);
        assert_eq!(h.v1.len(), 1);
        assert_eq!(h.v1[0].mount_point, Path::new("/sys/fs/cgroup/pids"));
        assert!(h.unified.is_none());
    }

    #[test]
    fn none_and_garbage() {
        assert!(parse_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw\n").is_err());
        assert!(parse_mountinfo("garbage\n").is_err());
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain\\"), "/plain\\");
    }
}
