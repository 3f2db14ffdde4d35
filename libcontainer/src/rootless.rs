//! Running as an unprivileged user ("rootless"), as runc and crun do: the user namespace's ID
//! maps beyond the caller's own ID are written by the setuid `newuidmap`/`newgidmap` (shadow's
//! `uidmap` package, which checks them against /etc/subuid and /etc/subgid), and cgroups are
//! used only where the caller may create them (a delegated v2 subtree); elsewhere the container
//! runs without one, with a warning when its config asked for limits.

use std::process::Command;

use crate::sys;
use crate::{Error, Result};

/// Whether the cgroup manager runs rootless: given (`--rootless true/false`), or decided as
/// runc's `auto` does for cgroupfs: an unprivileged caller, or root inside a user namespace
/// (it cannot know whether the cgroup it is in was delegated to it). Rootless, a cgroup the
/// caller may not create is done without (a warning names the limits not applied).
///
/// ```
/// use libcontainer::{CreateOptions, Rootless};
/// let mut opts = CreateOptions::new("/home/me/bundle");
/// assert_eq!(opts.rootless, Rootless::Auto);
/// // A caller that must have its limits, even unprivileged: no cgroup is then an error.
/// opts.rootless = Rootless::No;
/// assert!(!opts.rootless.enabled());
/// assert!(Rootless::Yes.enabled());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rootless {
    /// An unprivileged caller, or euid 0 in a user namespace other than the host's.
    #[default]
    Auto,
    /// Always: cgroups the caller may not create are done without.
    Yes,
    /// Never: a cgroup that cannot be created is an error.
    No,
}

impl Rootless {
    /// The decision for this process.
    pub fn enabled(self) -> bool {
        match self {
            Rootless::Yes => true,
            Rootless::No => false,
            Rootless::Auto => sys::geteuid() != 0 || in_user_namespace(),
        }
    }
}

/// Whether this process is in a user namespace other than the initial one (its uid_map is not
/// the identity over the whole range).
pub fn in_user_namespace() -> bool {
    // Read once per process: create asks twice (cgroups, devices).
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    })
}

/// Writes `pid`'s uid_map and gid_map (lines `inside outside count`). The kernel lets an
/// unprivileged parent write only a single line mapping its own ID (and the gid line only once
/// setgroups is denied); anything else goes through newuidmap/newgidmap, as runc does.
pub(crate) fn write_id_maps(pid: i32, uid_map: &str, gid_map: &str) -> Result<()> {
    write_map(pid, "uid_map", uid_map, "newuidmap")?;
    // runc's rule: only the single-line map of the caller's own gid is written directly,
    // which the kernel allows only after setgroups is denied.
    if !gid_map.is_empty() && sys::geteuid() != 0 && own_id_only(gid_map, sys::getegid()) {
        let path = format!("/proc/{pid}/setgroups");
        std::fs::write(&path, "deny").map_err(|e| Error::io(format!("writing {path}"), e))?;
    }
    write_map(pid, "gid_map", gid_map, "newgidmap")
}

/// Whether `map` is one line mapping exactly `id` (one ID).
fn own_id_only(map: &str, id: u32) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    matches!(&lines[..], [l] if l.len() == 3 && l[1] == id.to_string() && l[2] == "1")
}

fn write_map(pid: i32, file: &str, map: &str, tool: &str) -> Result<()> {
    if map.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    let shown = map.trim_end().replace('\n', ", ");
    let err = match std::fs::write(&path, map) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if err.raw_os_error() != Some(libc::EPERM) || sys::geteuid() == 0 {
        return Err(Error::io(format!("writing {path} ({shown})"), err));
    }
    let Some(bin) = find_in_path(tool) else {
        return Err(Error::IdMapping {
            msg: format!(
                "mapping {file} {shown:?} needs {tool} (Debian's uidmap package): an \
                 unprivileged user may map only its own ID itself, and {tool} is not on $PATH"
            ),
        });
    };
    let mut cmd = Command::new(&bin);
    cmd.arg(pid.to_string());
    cmd.args(map.split_whitespace());
    let out = cmd.output().map_err(|e| Error::IdMapping {
        msg: format!("running {}: {e}", bin.display()),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.trim().lines().last().unwrap_or("").trim();
    let subfile = if tool == "newuidmap" {
        "/etc/subuid"
    } else {
        "/etc/subgid"
    };
    Err(Error::IdMapping {
        msg: format!(
            "{tool} refused {file} {shown:?} ({}): is it within the ranges {subfile} gives \
             this user?{}",
            out.status,
            if said.is_empty() {
                String::new()
            } else {
                format!(" {tool} said: {said}")
            }
        ),
    })
}

/// `name` looked up on $PATH, as runc does.
fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The first cgroup directory of `saved` this process may not create or join (the nearest
/// existing ancestor of a missing one is not writable, or an existing one's cgroup.procs is
/// not), if any.
pub(crate) fn not_permitted(saved: &cgroups::Saved) -> Option<std::path::PathBuf> {
    saved
        .dirs
        .iter()
        .find(|dir| {
            if dir.is_dir() {
                return !sys::writable(&dir.join("cgroup.procs"));
            }
            let mut up = dir.parent();
            while let Some(p) = up {
                if p.is_dir() {
                    return !sys::writable(p);
                }
                up = p.parent();
            }
            true
        })
        .cloned()
}

/// What an unprivileged caller cannot do, refused before anything is made: a container
/// without a user namespace (nothing else gives it the capabilities to set itself up), and
/// additional gids when setgroups must be denied (the caller's own gid as the only mapping),
/// as runc does.
pub(crate) fn check(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if sys::geteuid() == 0 {
        return Ok(());
    }
    let has_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    if !has_userns {
        return Err(Error::config(
            "linux.namespaces",
            "linux.namespaces: an unprivileged user can run a container only in a user \
             namespace (add {\"type\": \"user\"} with uid and gid mappings; \
             `husk spec --rootless` makes such a config)",
        ));
    }
    check_groups(spec)
}

fn check_groups(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let gids = spec
        .process()
        .as_ref()
        .and_then(|p| p.user().additional_gids().clone())
        .unwrap_or_default();
    let linux = spec.linux().as_ref();
    let new_user = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::User
                    && n.path().as_ref().map_or(true, |p| p.as_os_str().is_empty())
            })
        });
    let gid_map: String = linux
        .and_then(|l| l.gid_mappings().as_ref())
        .map(|m| {
            m.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        })
        .unwrap_or_default();
    if gids.is_empty() || !new_user || sys::geteuid() == 0 || !own_id_only(&gid_map, sys::getegid())
    {
        return Ok(());
    }
    Err(Error::config(
        "process.user.additionalGids",
        format!(
            "process.user.additionalGids {gids:?}: a rootless container whose only gid mapping \
             is the caller's own gid cannot set additional groups (setgroups is denied); map a \
             range from /etc/subgid instead"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_id_only_is_one_line_of_one_id() {
        assert!(own_id_only("0 1000 1\n", 1000));
        assert!(own_id_only("5 1000 1", 1000));
        assert!(!own_id_only("0 1000 2\n", 1000));
        assert!(!own_id_only("0 1000 1\n1 100000 65536\n", 1000));
        assert!(!own_id_only("0 1001 1\n", 1000));
    }
}
