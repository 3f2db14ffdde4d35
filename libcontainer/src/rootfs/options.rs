//! The table of OCI mount options and how each one is applied.

use std::ffi::CString;

use crate::sys::mount::*;

/// One half of a mount_setattr: attributes set and cleared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attr {
    pub set: u64,
    pub clr: u64,
}

impl Attr {
    pub(crate) fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }

    fn apply(&mut self, set: u64, clr: u64) {
        self.set = (self.set & !clr) | set;
        self.clr = (self.clr & !set) | clr;
    }
}

/// A propagation change, applied after the mount is in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Propagation {
    pub flag: u64,
    pub recursive: bool,
}

/// An fsconfig parameter: `key=value` or a bare flag.
#[derive(Debug)]
pub(crate) struct Param {
    pub key: CString,
    pub value: Option<CString>,
}

/// Everything the options of one mount ask for.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Per-mount attributes of the mount itself.
    pub attr: Attr,
    /// Attributes applied to the whole tree (the `r*` options).
    pub rattr: Attr,
    pub propagation: Vec<Propagation>,
    pub bind: bool,
    pub rbind: bool,
    /// Superblock flags and filesystem data, in order, for fsconfig.
    pub params: Vec<Param>,
    /// The same, comma-joined, for the mount(2) fallback.
    pub data: String,
    /// Superblock MS_* flags for the mount(2) fallback.
    pub ms_flags: libc::c_ulong,
    /// `tmpcopyup` (runc's and crun's): the new tmpfs gets a copy of what the target held.
    pub copyup: bool,
    /// `idmap` (Some(false)) or `ridmap` (Some(true), submounts too): an id-mapped bind.
    pub idmap: Option<bool>,
    /// The options runc passes as filesystem data (unknown ones, `defaults`, `x-*`), which a
    /// bind refuses.
    pub fs_data: Vec<String>,
}

impl Parsed {
    /// MS_* flags equivalent to `attr` (for the mount(2) fallback).
    pub(crate) fn legacy_flags(&self) -> libc::c_ulong {
        let mut f = self.ms_flags;
        let a = self.attr.set;
        for (bit, ms) in [
            (MOUNT_ATTR_RDONLY, libc::MS_RDONLY),
            (MOUNT_ATTR_NOSUID, libc::MS_NOSUID),
            (MOUNT_ATTR_NODEV, libc::MS_NODEV),
            (MOUNT_ATTR_NOEXEC, libc::MS_NOEXEC),
            (MOUNT_ATTR_NODIRATIME, libc::MS_NODIRATIME),
            (MOUNT_ATTR_NOSYMFOLLOW, libc::MS_NOSYMFOLLOW),
        ] {
            if a & bit != 0 {
                f |= ms;
            }
        }
        if self.attr.clr & MOUNT_ATTR__ATIME != 0 {
            f |= match a & MOUNT_ATTR__ATIME {
                MOUNT_ATTR_NOATIME => libc::MS_NOATIME,
                MOUNT_ATTR_STRICTATIME => libc::MS_STRICTATIME,
                _ => libc::MS_RELATIME,
            };
        }
        f
    }

    /// Attributes fsmount accepts (it only sets; clears are the defaults anyway).
    pub(crate) fn fsmount_attr(&self) -> u64 {
        self.attr.set
    }
}

enum Opt {
    /// Per-mount attribute (set, clear); `recursive` for the r* form.
    Attr(u64, u64, bool),
    /// Superblock flag passed to fsconfig as a flag, and as MS_* to mount(2).
    Sb(&'static str, libc::c_ulong),
    Prop(u64, bool),
    Bind(bool),
    /// Accepted and ignored.
    Ignore,
}

const ATIME: u64 = MOUNT_ATTR__ATIME;

/// Every option name `lookup` knows, for `features` (a test keeps the two in step).
pub(crate) const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rbind",
    "ratime",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rrelatime",
    "rro",
    "rrw",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

fn attr_opt(name: &str) -> Option<(u64, u64)> {
    Some(match name {
        "ro" => (MOUNT_ATTR_RDONLY, 0),
        "rw" => (0, MOUNT_ATTR_RDONLY),
        "nosuid" => (MOUNT_ATTR_NOSUID, 0),
        "suid" => (0, MOUNT_ATTR_NOSUID),
        "nodev" => (MOUNT_ATTR_NODEV, 0),
        "dev" => (0, MOUNT_ATTR_NODEV),
        "noexec" => (MOUNT_ATTR_NOEXEC, 0),
        "exec" => (0, MOUNT_ATTR_NOEXEC),
        "noatime" => (MOUNT_ATTR_NOATIME, ATIME),
        "atime" | "norelatime" | "nostrictatime" | "relatime" => (MOUNT_ATTR_RELATIME, ATIME),
        "strictatime" => (MOUNT_ATTR_STRICTATIME, ATIME),
        "nodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "diratime" => (0, MOUNT_ATTR_NODIRATIME),
        "nosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "symfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

fn lookup(name: &str) -> Option<Opt> {
    use Opt::*;
    if let Some((set, clr)) = attr_opt(name) {
        return Some(Attr(set, clr, false));
    }
    let prop = |f: u64, r| Some(Prop(f, r));
    match name {
        "bind" => Some(Bind(false)),
        "rbind" => Some(Bind(true)),
        "private" => prop(PROP_PRIVATE, false),
        "shared" => prop(PROP_SHARED, false),
        "slave" => prop(PROP_SLAVE, false),
        "unbindable" => prop(PROP_UNBINDABLE, false),
        "rprivate" => prop(PROP_PRIVATE, true),
        "rshared" => prop(PROP_SHARED, true),
        "rslave" => prop(PROP_SLAVE, true),
        "runbindable" => prop(PROP_UNBINDABLE, true),
        "sync" => Some(Sb("sync", libc::MS_SYNCHRONOUS)),
        "async" => Some(Sb("async", 0)),
        "dirsync" => Some(Sb("dirsync", libc::MS_DIRSYNC)),
        "mand" => Some(Sb("mand", libc::MS_MANDLOCK)),
        "nomand" => Some(Sb("nomand", 0)),
        "lazytime" => Some(Sb("lazytime", libc::MS_LAZYTIME)),
        "nolazytime" => Some(Sb("nolazytime", 0)),
        "silent" => Some(Sb("silent", libc::MS_SILENT)),
        "loud" | "defaults" | "remount" => Some(Ignore),
        // The recursive forms: rro, rnosuid, rnoatime...
        _ => name
            .strip_prefix('r')
            .and_then(attr_opt)
            .map(|(set, clr)| Attr(set, clr, true)),
    }
}

/// Parses the options of one mount. Unknown options without `=` become fsconfig flags and
/// options with `=` become key=value parameters, as mount(8) passes them as data.
pub(crate) fn parse(options: &[String]) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        let o = o.as_str();
        if o.starts_with("x-") || o == "defaults" {
            p.fs_data.push(o.to_string());
        }
        if o.is_empty() || o.starts_with("x-") {
            continue;
        }
        match lookup(o) {
            Some(Opt::Attr(set, clr, false)) => p.attr.apply(set, clr),
            Some(Opt::Attr(set, clr, true)) => p.rattr.apply(set, clr),
            Some(Opt::Sb(flag, ms)) => {
                p.ms_flags |= ms;
                data.push(flag);
            }
            Some(Opt::Prop(flag, recursive)) => p.propagation.push(Propagation { flag, recursive }),
            Some(Opt::Bind(rec)) => {
                p.bind = true;
                p.rbind |= rec;
            }
            Some(Opt::Ignore) => {}
            None => {
                if o.starts_with("idmap=") || o.starts_with("ridmap=") {
                    return Err(format!(
                        "option {o:?}: mappings in the option are not supported; give the mount \
                         uidMappings and gidMappings"
                    ));
                }
                if o == "idmap" || o == "ridmap" {
                    p.idmap = Some(o == "ridmap");
                } else if o == "tmpcopyup" {
                    p.copyup = true;
                } else {
                    if !matches!(o, "iversion" | "noiversion") {
                        p.fs_data.push(o.to_string());
                    }
                    data.push(o);
                }
            }
        }
    }
    for d in &data {
        let (k, v) = match d.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (*d, None),
        };
        let key = CString::new(k).map_err(|_| format!("option {d:?} contains a NUL byte"))?;
        let value = v
            .map(CString::new)
            .transpose()
            .map_err(|_| format!("option {d:?} contains a NUL byte"))?;
        p.params.push(Param { key, value });
    }
    // Superblock flags that mount(2) takes as MS_* bits do not belong in its data string.
    p.data = data
        .iter()
        .filter(|d| {
            !matches!(
                **d,
                "sync"
                    | "async"
                    | "dirsync"
                    | "mand"
                    | "nomand"
                    | "lazytime"
                    | "nolazytime"
                    | "silent"
            )
        })
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    Ok(p)
}

/// What a bind with explicit flags does on EPERM (flags locked by a less privileged mount
/// namespace): keep the source's locked flags, unless one was asked to be cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Remount {
    /// Lockable attributes the options clear explicitly (`rw`, `suid`, `dev`, `exec`).
    pub cleared: u64,
    /// The atime the options ask for, if any.
    pub atime: Option<u64>,
}

/// The per-mount attributes of a bind whose options name mount flags, as runc applies them
/// ("mount --bind -o OPTS": the flags asked for and no others, the atime kept unless one is
/// named); None when no flag is named (the source's flags are kept).
pub(crate) fn bind_attr(options: &[String]) -> Option<(Attr, Remount)> {
    const PLAIN: u64 = MOUNT_ATTR_RDONLY
        | MOUNT_ATTR_NOSUID
        | MOUNT_ATTR_NODEV
        | MOUNT_ATTR_NOEXEC
        | MOUNT_ATTR_NOSYMFOLLOW;
    // runc's table: (name, clear, bit), with MS_* flags that are no mount attribute as 0.
    const NOATIME: u64 = 1 << 40;
    const STRICT: u64 = 1 << 41;
    const RELATIME: u64 = 1 << 42;
    const NODIRATIME: u64 = 1 << 43;
    const OTHER: u64 = 1 << 44;
    let table = |o: &str| -> Option<(bool, u64)> {
        Some(match o {
            "ro" => (false, MOUNT_ATTR_RDONLY),
            "rw" => (true, MOUNT_ATTR_RDONLY),
            "nosuid" => (false, MOUNT_ATTR_NOSUID),
            "suid" => (true, MOUNT_ATTR_NOSUID),
            "nodev" => (false, MOUNT_ATTR_NODEV),
            "dev" => (true, MOUNT_ATTR_NODEV),
            "noexec" => (false, MOUNT_ATTR_NOEXEC),
            "exec" => (true, MOUNT_ATTR_NOEXEC),
            "nosymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
            "symfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
            "noatime" => (false, NOATIME),
            "atime" => (true, NOATIME),
            "strictatime" => (false, STRICT),
            "nostrictatime" => (true, STRICT),
            "relatime" => (false, RELATIME),
            "norelatime" => (true, RELATIME),
            "nodiratime" => (false, NODIRATIME),
            "diratime" => (true, NODIRATIME),
            "sync" | "dirsync" | "iversion" | "lazytime" | "mand" | "silent" => (false, OTHER),
            "async" | "noiversion" | "nolazytime" | "nomand" | "loud" => (true, OTHER),
            _ => return None,
        })
    };
    let (mut set, mut cleared) = (0u64, 0u64);
    for o in options {
        if let Some((clear, bit)) = table(o) {
            if clear {
                set &= !bit;
                cleared |= bit;
            } else {
                set |= bit;
                cleared &= !bit;
            }
        }
    }
    if set == 0 && cleared == 0 {
        return None;
    }
    let mut a = Attr {
        set: set & PLAIN,
        clr: PLAIN & !set,
    };
    // As mount(2) with MS_REMOUNT|MS_BIND: the atime is kept unless an atime flag is set.
    let atime = if set & (NOATIME | STRICT | RELATIME | NODIRATIME) != 0 {
        let t = if set & STRICT != 0 {
            MOUNT_ATTR_STRICTATIME
        } else if set & NOATIME != 0 {
            MOUNT_ATTR_NOATIME
        } else {
            MOUNT_ATTR_RELATIME
        };
        a.set |= t;
        a.clr |= MOUNT_ATTR__ATIME;
        if set & NODIRATIME != 0 {
            a.set |= MOUNT_ATTR_NODIRATIME;
        } else {
            a.clr |= MOUNT_ATTR_NODIRATIME;
        }
        Some(t)
    } else {
        None
    };
    let lockable = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    Some((
        a,
        Remount {
            cleared: cleared & lockable,
            atime,
        },
    ))
}

#[cfg(test)]
/// True if `lookup` handles `name` itself (rather than passing it to the filesystem).
pub(crate) fn is_known(name: &str) -> bool {
    lookup(name).is_some()
}

/// The propagation flag named by linux.rootfsPropagation.
pub(crate) fn root_propagation(name: &str) -> Option<Propagation> {
    match lookup(name) {
        Some(Opt::Prop(flag, recursive)) => Some(Propagation { flag, recursive }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Parsed {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn rootfs_options_table() {
        let x = p(&[
            "nosuid",
            "noexec",
            "ro",
            "rw",
            "strictatime",
            "size=65536k",
            "mode=755",
        ]);
        assert_eq!(
            x.attr.set,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_STRICTATIME
        );
        assert_eq!(x.attr.clr, MOUNT_ATTR_RDONLY | MOUNT_ATTR__ATIME);
        assert_eq!(x.data, "size=65536k,mode=755");
        assert_eq!(x.params.len(), 2);
        let y = p(&[
            "rbind", "rro", "rnosuid", "relatime", "rprivate", "shared", "sync",
        ]);
        assert!(y.bind && y.rbind);
        assert_eq!(y.rattr.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(y.attr.clr, MOUNT_ATTR__ATIME);
        assert_eq!(y.propagation.len(), 2);
        assert!(y.propagation[0].recursive && !y.propagation[1].recursive);
        assert_eq!(y.ms_flags, libc::MS_SYNCHRONOUS);
        assert_eq!(y.params[0].key.to_str().unwrap(), "sync");
        assert_eq!(y.data, "");
        let z = p(&["newinstance", "ptmxmode=0666", "rnoatime"]);
        assert_eq!(z.rattr.set, MOUNT_ATTR_NOATIME);
        assert!(z.params[0].value.is_none());
        assert_eq!(parse(&["idmap".to_string()]).unwrap().idmap, Some(false));
        assert_eq!(parse(&["ridmap".to_string()]).unwrap().idmap, Some(true));
        assert!(parse(&["idmap=uids=0-1-1".to_string()]).is_err());
    }
}
