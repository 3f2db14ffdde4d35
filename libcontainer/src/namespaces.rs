//! Namespaces: which to create (clone3 flags or unshare), which to join (setns by path), the
//! id maps and time offsets the parent writes, and whether the init needs a second fork.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::fail::{errno_text, Fail, Step};
use crate::oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use crate::sys;
use crate::{Error, Result};

crate::fail::codes! {
    /// Child failure codes of `Step::Namespace`, for the init and for exec's process.
    pub(crate) enum Code {
        /// idx: the join (by path).
        Setns,
        Unshare,
        ForkInit,
        BecomeRoot,
        Hostname,
        Domainname,
        UnshareCgroup,
        /// exec: setns(init's pidfd, every namespace).
        ExecSetns,
        /// exec: the fork into a joined pid/time namespace.
        ExecFork,
        /// exec: chroot into the root of a container without a mount namespace.
        ExecRoot,
    }
}

/// A namespace joined by path.
pub(crate) struct Join {
    pub kind: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace part of the process plan.
pub(crate) struct NsPlan {
    /// Flags for the first clone3: every new namespace when nothing is joined and no time
    /// namespace is asked for; otherwise none (the child joins, then unshares).
    pub clone_flags: u64,
    /// Namespaces the first child joins, user first.
    pub joins: Vec<Join>,
    /// New namespaces the first child creates with unshare (after joining).
    pub unshare_flags: i32,
    /// A new cgroup namespace, created by the init once it is in its cgroups.
    pub new_cgroup: bool,
    /// The first child must fork the init (new pid namespace made by unshare, a joined pid
    /// namespace, or a time namespace).
    pub fork_init: bool,
    /// A new user namespace.
    pub new_user: bool,
    /// A new or joined user namespace.
    pub userns: bool,
    /// The maps of a new user namespace are written by an unprivileged parent: the child
    /// stays dumpable until then (its /proc/PID files must stay the caller's, for the parent
    /// and for newuidmap, which checks the owner).
    pub unprivileged_maps: bool,
    pub new_time: bool,
    pub uid_map: String,
    pub gid_map: String,
    /// Contents for /proc/PID/timens_offsets.
    pub time_offsets: String,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
}

/// Every namespace husk can create or join.
pub(crate) const ALL: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Time,
];

fn flag(kind: LinuxNamespaceType) -> i32 {
    match kind {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

pub(crate) fn name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn map_lines(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn cstring(field: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::config(field, format!("{field} contains a NUL byte")))
}

impl NsPlan {
    pub(crate) fn build(spec: &Spec) -> Result<NsPlan> {
        let linux = spec.linux().as_ref();
        let namespaces = linux
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut new = 0i32;
        let mut joins = Vec::new();
        let mut seen = 0i32;
        for ns in &namespaces {
            let f = flag(ns.typ());
            if seen & f != 0 {
                return Err(Error::config(
                    "linux.namespaces",
                    format!(
                        "linux.namespaces: {} namespace listed twice",
                        name(ns.typ())
                    ),
                ));
            }
            seen |= f;
            match ns.path() {
                None => new |= f,
                Some(p) if p.as_os_str().is_empty() => new |= f,
                Some(p) => {
                    if !p.is_absolute() {
                        return Err(Error::config(
                            "linux.namespaces",
                            format!(
                                "linux.namespaces: {} namespace path {} is not absolute",
                                name(ns.typ()),
                                p.display()
                            ),
                        ));
                    }
                    let fd = std::fs::File::open(p).map_err(|e| {
                        Error::io(
                            format!("{} namespace path {}", name(ns.typ()), p.display()),
                            e,
                        )
                    })?;
                    joins.push(Join {
                        kind: ns.typ(),
                        path: p.clone(),
                        fd: fd.into(),
                    });
                }
            }
        }
        // The user namespace is joined first: the others are owned by it.
        joins.sort_by_key(|j| j.kind != LinuxNamespaceType::User);

        let uid_maps = linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default();
        let gid_maps = linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default();
        let new_user = new & libc::CLONE_NEWUSER != 0;
        if new_user && (uid_maps.is_empty() || gid_maps.is_empty()) {
            return Err(Error::config(
                "linux.namespaces",
                "a new user namespace needs linux.uidMappings and linux.gidMappings",
            ));
        }
        if !new_user && (!uid_maps.is_empty() || !gid_maps.is_empty()) {
            return Err(Error::config(
                "linux.uidMappings",
                "linux.uidMappings/gidMappings are set but no new user namespace is requested",
            ));
        }
        let offsets = linux
            .and_then(|l| l.time_offsets().clone())
            .unwrap_or_default();
        let new_time = new & libc::CLONE_NEWTIME != 0;
        let mut time_offsets = String::new();
        for (clock, off) in &offsets {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::config(
                    "linux.timeOffsets",
                    format!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"),
                ));
            }
            time_offsets += &format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            );
        }
        if !offsets.is_empty() && !new_time {
            return Err(Error::config(
                "linux.timeOffsets",
                "linux.timeOffsets need a new time namespace",
            ));
        }
        let hostname = spec.hostname().as_deref().filter(|h| !h.is_empty());
        let domainname = spec.domainname().as_deref().filter(|h| !h.is_empty());
        let joined = |k| joins.iter().any(|j: &Join| j.kind == k);
        // As runc: a joined uts namespace (by path) takes the hostname too; only the host's is
        // refused.
        let own_uts = new & libc::CLONE_NEWUTS != 0 || joined(LinuxNamespaceType::Uts);
        if (hostname.is_some() || domainname.is_some()) && !own_uts {
            return Err(Error::config(
                "hostname",
                "hostname/domainname need a new or joined uts namespace",
            ));
        }

        let simple = joins.is_empty() && !new_time;
        let new_cgroup = new & libc::CLONE_NEWCGROUP != 0;
        let without_cgroup = new & !libc::CLONE_NEWCGROUP;
        Ok(NsPlan {
            clone_flags: if simple {
                without_cgroup as u32 as u64
            } else {
                0
            },
            unshare_flags: if simple { 0 } else { without_cgroup },
            new_cgroup,
            fork_init: !simple
                && (new & (libc::CLONE_NEWPID | libc::CLONE_NEWTIME) != 0
                    || joined(LinuxNamespaceType::Pid)
                    || joined(LinuxNamespaceType::Time)),
            new_user,
            userns: new_user || joined(LinuxNamespaceType::User),
            unprivileged_maps: new_user && crate::sys::geteuid() != 0,
            new_time,
            uid_map: map_lines(&uid_maps),
            gid_map: map_lines(&gid_maps),
            time_offsets,
            hostname: hostname.map(|h| cstring("hostname", h)).transpose()?,
            domainname: domainname.map(|h| cstring("domainname", h)).transpose()?,
            joins,
        })
    }

    /// True when the first clone child must ask for its maps/offsets after unsharing.
    pub(crate) fn child_asks_maps(&self) -> bool {
        self.clone_flags == 0 && (self.new_user || self.new_time)
    }

    /// Parent side: writes the uid/gid maps and time offsets of `pid`.
    pub(crate) fn write_maps(&self, pid: i32) -> Result<()> {
        let w = |file: &str, data: &str| -> Result<()> {
            if data.is_empty() {
                return Ok(());
            }
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, data).map_err(|e| {
                Error::io(
                    format!("writing {path} ({})", data.trim_end().replace('\n', ", ")),
                    e,
                )
            })
        };
        if self.new_time {
            w("timens_offsets", &self.time_offsets)?;
        }
        if self.new_user {
            crate::rootless::write_id_maps(pid, &self.uid_map, &self.gid_map)?;
        }
        Ok(())
    }

    /// The fds of the namespaces joined by path (the child needs them open).
    pub(crate) fn join_fds(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        self.joins.iter().map(|j| j.fd.as_raw_fd())
    }

    /// Child side, no allocation: joins the namespaces given by path, then unshares the new
    /// ones (user first, so the rest are owned by it).
    pub(crate) fn join_and_unshare(&self) -> Result<(), Fail> {
        for (i, j) in self.joins.iter().enumerate() {
            sys::proc::setns(j.fd.as_raw_fd(), flag(j.kind))
                .map_err(|e| Fail::new(Code::Setns, i as u32, e))?;
        }
        if self.unshare_flags != 0 {
            sys::proc::unshare(self.unshare_flags).map_err(|e| Fail::new(Code::Unshare, 0, e))?;
        }
        Ok(())
    }

    /// Child side: once in a (new or joined) user namespace, become its root, so the rest of the
    /// set-up acts as the container's uid 0.
    pub(crate) fn become_root(&self) -> Result<(), Fail> {
        if self.userns {
            let f = |e| Fail::new(Code::BecomeRoot, 0, e);
            sys::creds::setresgid(0).map_err(f)?;
            sys::creds::setresuid(0).map_err(f)?;
        }
        Ok(())
    }

    /// Child side: the cgroup namespace (after the parent put us in our cgroups) and the uts
    /// names.
    pub(crate) fn finish(&self) -> Result<(), Fail> {
        if self.new_cgroup {
            sys::proc::unshare(libc::CLONE_NEWCGROUP)
                .map_err(|e| Fail::new(Code::UnshareCgroup, 0, e))?;
        }
        if let Some(h) = &self.hostname {
            sys::proc::sethostname(h).map_err(|e| Fail::new(Code::Hostname, 0, e))?;
        }
        if let Some(d) = &self.domainname {
            sys::proc::setdomainname(d).map_err(|e| Fail::new(Code::Domainname, 0, e))?;
        }
        Ok(())
    }

    /// Parent side: the message for a child failure in this area.
    pub(crate) fn describe(&self, f: &Fail) -> String {
        let e = errno_text(f.errno);
        let Step::Namespace(code) = f.step else {
            return format!("namespace set-up: {e}");
        };
        match code {
            Code::Setns => match self.joins.get(f.idx as usize) {
                Some(j) => format!(
                    "joining {} namespace {}: {e}",
                    name(j.kind),
                    j.path.display()
                ),
                None => format!("joining a namespace: {e}"),
            },
            Code::Unshare => format!("creating namespaces: {e}"),
            Code::ForkInit => {
                format!("forking the container init into its pid/time namespace: {e}")
            }
            Code::BecomeRoot => {
                format!("becoming root in the user namespace (is uid/gid 0 mapped?): {e}")
            }
            Code::Hostname => format!("setting hostname: {e}"),
            Code::Domainname => format!("setting domainname: {e}"),
            Code::UnshareCgroup => format!("creating the cgroup namespace: {e}"),
            Code::ExecSetns | Code::ExecFork | Code::ExecRoot => describe_exec(f),
        }
    }
}

/// Parent side: the message for a failure of exec's process joining the container.
pub(crate) fn describe_exec(f: &Fail) -> String {
    let e = errno_text(f.errno);
    match f.step {
        Step::Namespace(Code::ExecFork) => {
            format!("forking into the container's pid namespace: {e}")
        }
        Step::Namespace(Code::ExecRoot) => format!("entering the container's root (chroot): {e}"),
        _ => format!("joining the container's namespaces: {e}"),
    }
}
