//! Resolving a spec's `linux.cgroupsPath` to one directory per hierarchy, as runc's cgroupfs
//! driver does: an absolute path hangs from each hierarchy's root, a relative one from the
//! calling process's own cgroup in that hierarchy (`/proc/self/cgroup`).

use std::path::{Component, Path, PathBuf};

use crate::hierarchy::Hierarchy;
use crate::{Error, Result};

/// Where the calling process's cgroups are read from.
pub const SELF_CGROUP: &str = "/proc/self/cgroup";

/// A checked `cgroupsPath`: only normal components (at least one), no `..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupPath {
    /// From each hierarchy's root; holds the path without its leading `/`.
    Absolute(PathBuf),
    /// From the caller's own cgroup in each hierarchy.
    Relative(PathBuf),
}

impl CgroupPath {
    /// Checks `cgroups_path` (`None` or empty: `default_name`, relative). Refuses `..`
    /// components, and paths naming no cgroup below the starting point (`/`, `.`): those would
    /// make `destroy` kill and remove a cgroup the container does not own.
    pub fn parse(cgroups_path: Option<&Path>, default_name: &str) -> Result<CgroupPath> {
        let p = match cgroups_path {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new(default_name),
        };
        let mut rel = PathBuf::new();
        let mut absolute = false;
        for c in p.components() {
            match c {
                Component::RootDir => absolute = true,
                Component::CurDir => {}
                Component::Normal(n) => rel.push(n),
                Component::ParentDir => {
                    return Err(Error::Invalid(format!(
                        "cgroups path {p:?}: \"..\" components are not allowed"
                    )))
                }
                Component::Prefix(_) => {
                    return Err(Error::Invalid(format!(
                        "cgroups path {p:?}: not a unix path"
                    )))
                }
            }
        }
        if rel.as_os_str().is_empty() {
            return Err(Error::Invalid(format!(
                "cgroups path {p:?} names no cgroup of its own"
            )));
        }
        Ok(if absolute {
            CgroupPath::Absolute(rel)
        } else {
            CgroupPath::Relative(rel)
        })
    }

    /// The container's directory in hierarchy `h`; `own` is the caller's cgroup there (only
    /// needed for a relative path).
    pub fn dir_in(&self, h: &Hierarchy, own: Option<&str>) -> Result<PathBuf> {
        match self {
            CgroupPath::Absolute(rel) => Ok(h.mount_point.join(rel)),
            CgroupPath::Relative(rel) => {
                let name = name_of(h);
                let own = own.ok_or_else(|| {
                    Error::Invalid(format!(
                        "{SELF_CGROUP} has no line for the {name} hierarchy mounted at {}",
                        h.mount_point.display()
                    ))
                })?;
                let below = Path::new(own).strip_prefix(&h.root).map_err(|_| {
                    Error::Invalid(format!(
                        "own cgroup {own} in the {name} hierarchy is outside its mount at {} \
                         (mount root {})",
                        h.mount_point.display(),
                        h.root.display()
                    ))
                })?;
                Ok(h.mount_point.join(below).join(rel))
            }
        }
    }
}

fn name_of(h: &Hierarchy) -> String {
    if h.controllers.is_empty() {
        "unified".into()
    } else {
        h.controllers.join(",")
    }
}

/// The caller's cgroup in each hierarchy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    /// v1: (sorted controllers incl. `name=…`, cgroup path).
    pub v1: Vec<(Vec<String>, String)>,
    /// The `0::` line.
    pub unified: Option<String>,
}

impl OwnCgroups {
    /// Reads `/proc/self/cgroup`.
    pub fn read() -> Result<OwnCgroups> {
        let text = std::fs::read_to_string(SELF_CGROUP).map_err(|source| Error::Io {
            path: SELF_CGROUP.into(),
            source,
        })?;
        OwnCgroups::parse(&text).map_err(|what| Error::Parse {
            path: SELF_CGROUP.into(),
            what,
        })
    }

    /// Parses `/proc/<pid>/cgroup` lines: `id:controllers:path` (`0::path` for v2).
    pub fn parse(text: &str) -> Result<OwnCgroups, String> {
        let mut own = OwnCgroups::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut f = line.splitn(3, ':');
            let (Some(id), Some(ctl), Some(path)) = (f.next(), f.next(), f.next()) else {
                return Err(format!("malformed line {line:?}"));
            };
            if id == "0" && ctl.is_empty() {
                own.unified = Some(path.to_owned());
            } else {
                let mut c: Vec<String> = ctl.split(',').map(str::to_owned).collect();
                c.sort();
                own.v1.push((c, path.to_owned()));
            }
        }
        Ok(own)
    }

    /// The caller's cgroup in hierarchy `h` (v1 matched by its controller set).
    pub fn of(&self, h: &Hierarchy) -> Option<&str> {
        if h.controllers.is_empty() {
            return self.unified.as_deref();
        }
        self.v1
            .iter()
            .find(|(c, _)| *c == h.controllers)
            .map(|(_, p)| p.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(mp: &str, root: &str, c: &[&str]) -> Hierarchy {
        Hierarchy {
            mount_point: mp.into(),
            root: root.into(),
            controllers: c.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn parse_paths() {
        let p = |s: &str| CgroupPath::parse(Some(Path::new(s)), "dflt");
        assert_eq!(p("/a/b").unwrap(), CgroupPath::Absolute("a/b".into()));
        assert_eq!(p("a/./b/").unwrap(), CgroupPath::Relative("a/b".into()));
        assert_eq!(p("").unwrap(), CgroupPath::Relative("dflt".into()));
        assert_eq!(
            CgroupPath::parse(None, "x").unwrap(),
            CgroupPath::Relative("x".into())
        );
        for bad in ["/a/../b", "..", "a/..", "/", ".", "//"] {
            assert!(matches!(p(bad), Err(Error::Invalid(_))), "{bad}");
        }
        assert!(CgroupPath::parse(None, "../x").is_err());
    }

    #[test]
    fn resolve() {
        let own = OwnCgroups::parse(
            "4:memory:/process_api/abc\n2:cpuacct,cpu:/\n1:name=systemd:/user.slice\n0::/u\n",
        )
        .unwrap();
        let mem = h("/sys/fs/cgroup/memory", "/", &["memory"]);
        let cpu = h("/sys/fs/cgroup/cpu,cpuacct", "/", &["cpu", "cpuacct"]);
        let sd = h("/sys/fs/cgroup/systemd", "/user.slice", &["name=systemd"]);
        let uni = h("/sys/fs/cgroup/unified", "/", &[]);
        let rel = CgroupPath::Relative("c1".into());
        let abs = CgroupPath::Absolute("x/c1".into());
        let d = |h: &Hierarchy, p: &CgroupPath| p.dir_in(h, own.of(h)).unwrap();
        assert_eq!(
            d(&mem, &rel),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/c1")
        );
        assert_eq!(d(&cpu, &rel), Path::new("/sys/fs/cgroup/cpu,cpuacct/c1"));
        assert_eq!(d(&sd, &rel), Path::new("/sys/fs/cgroup/systemd/c1"));
        assert_eq!(d(&uni, &rel), Path::new("/sys/fs/cgroup/unified/u/c1"));
        assert_eq!(d(&mem, &abs), Path::new("/sys/fs/cgroup/memory/x/c1"));
        let outside = h("/m", "/other", &["memory"]);
        assert!(rel.dir_in(&outside, own.of(&outside)).is_err());
        let missing = h("/m", "/", &["pids"]);
        assert!(rel.dir_in(&missing, own.of(&missing)).is_err());
        assert!(abs.dir_in(&missing, None).is_ok());
    }
}
