//! The resource view (issue 18): a container asks for it with the annotation
//! `io.github.husk.resource-view` (or the runtime-wide [`CreateOptions::resource_view`]), and
//! its /proc/meminfo, /proc/cpuinfo, /proc/stat, /proc/uptime, /proc/loadavg,
//! /proc/diskstats, /proc/swaps and /sys/devices/system/cpu are then bind mounts of the files
//! the `husk-procview` server computes from the container's own cgroup (crate `procview`).
//!
//! During create husk makes sure the state root's server runs (starting it on demand), writes
//! the container's registration in its state dir, and appends one read-only bind mount per
//! file to the config's mounts, so the mount plan (and its /proc rules) treats them as any
//! other. At delete the registration goes with the state dir, and an idle server exits.
//!
//! [`CreateOptions::resource_view`]: crate::CreateOptions::resource_view

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch as OciArch, LinuxBuilder, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder,
    LinuxSyscall, LinuxSyscallBuilder, Mount, MountBuilder, Spec,
};
pub use procview::Entry as ViewEntry;

use crate::{Error, Result};

/// The annotation that asks for the view: `on`, `off`, or a comma-separated list of entries
/// (`meminfo,cpuinfo,stat,uptime,loadavg,diskstats,swaps,cpu`).
pub const ANNOTATION: &str = "io.github.husk.resource-view";

/// Which files of the view a container gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceView {
    /// None: /proc and /sys are the kernel's.
    Off,
    /// These entries (all of them for `on`).
    On(Vec<ViewEntry>),
}

impl ResourceView {
    /// Every entry.
    pub fn all() -> ResourceView {
        ResourceView::On(ViewEntry::ALL.to_vec())
    }

    /// Parses `on`, `off` or a list of entries (the annotation's and `--resource-view`'s
    /// values).
    ///
    /// ```
    /// use libcontainer::{ResourceView, ViewEntry};
    /// assert_eq!(ResourceView::parse("on").unwrap(), ResourceView::all());
    /// assert_eq!(
    ///     ResourceView::parse("meminfo,cpu").unwrap(),
    ///     ResourceView::On(vec![ViewEntry::Meminfo, ViewEntry::SysCpu])
    /// );
    /// assert!(ResourceView::parse("memory").is_err());
    /// ```
    pub fn parse(value: &str) -> std::result::Result<ResourceView, String> {
        match value.trim() {
            "on" | "true" | "all" => return Ok(ResourceView::all()),
            "off" | "false" | "" => return Ok(ResourceView::Off),
            _ => {}
        }
        let mut v = Vec::new();
        for name in value.split(',').map(str::trim) {
            let e = ViewEntry::from_name(name).ok_or_else(|| {
                format!(
                    "unknown value {value:?}: use on, off, or a comma-separated list of {}",
                    ViewEntry::ALL.map(|e| e.name()).join(", ")
                )
            })?;
            if !v.contains(&e) {
                v.push(e);
            }
        }
        v.sort();
        Ok(ResourceView::On(v))
    }

    /// The annotation's value when present, else `default`.
    pub fn for_spec(spec: &Spec, default: Option<&ResourceView>) -> Result<ResourceView> {
        let a = spec.annotations().as_ref().and_then(|a| a.get(ANNOTATION));
        match a {
            Some(v) => ResourceView::parse(v)
                .map_err(|e| Error::config("annotations", format!("annotation {ANNOTATION}: {e}"))),
            None => Ok(default.cloned().unwrap_or(ResourceView::Off)),
        }
    }

    fn entries(&self) -> &[ViewEntry] {
        match self {
            ResourceView::Off => &[],
            ResourceView::On(v) => v,
        }
    }
}

/// Whether the config mounts something at `dest` (after cleaning trailing slashes).
fn mounts_at(spec: &Spec, dest: &str) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .any(|m| m.destination().to_string_lossy().trim_end_matches('/') == dest)
}

/// Makes the view ready for container `id` (server running, registration written), appends
/// its bind mounts to `spec`, and, when the view has meminfo, uptime or loadavg, sends the
/// container's `sysinfo(2)` to the server's seccomp agent ([`sysinfo_rule`]). `state_dir`
/// exists; nothing is done for `Off`. Returns a warning to show, if any.
pub(crate) fn prepare(
    view: &ResourceView,
    spec: &mut Spec,
    root: &Path,
    state_dir: &Path,
    id: &str,
    cgroup: &cgroups::Saved,
    binary: Option<&Path>,
) -> Result<Option<String>> {
    let entries = view.entries();
    if entries.is_empty() {
        return Ok(None);
    }
    if cgroup.dirs.is_empty() {
        return Err(Error::config(
            "annotations",
            format!("annotation {ANNOTATION}: the container has no cgroup (rootless without one, or --cgroup-manager disabled), so there is nothing to compute its view from"),
        ));
    }
    if !mounts_at(spec, "/proc") {
        return Err(Error::config(
            "annotations",
            format!("annotation {ANNOTATION}: the config mounts no /proc to put the view on"),
        ));
    }
    let want_sys = entries.contains(&ViewEntry::SysCpu);
    if want_sys && !mounts_at(spec, "/sys") {
        return Err(Error::config(
            "annotations",
            format!("annotation {ANNOTATION}: entry cpu needs a /sys mount in the config"),
        ));
    }
    let layout = procview::Layout::new(root);
    // The guard's shared lock keeps an idle server from exiting until the registration is
    // written.
    let _guard = procview::ensure_server(&layout, binary)?;
    let reg = procview::Registration {
        cgroup: cgroup.clone(),
        created_boottime_ns: crate::sys::proc::boottime_ns(),
    };
    let path = state_dir.join(procview::REGISTRATION);
    let data = serde_json::to_vec(&reg).expect("plain data serializes");
    std::fs::write(&path, data).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let dir = layout.container(id);
    let mounts = spec.mounts_mut().get_or_insert_with(Vec::new);
    for e in entries {
        mounts.push(bind(dir.join(e.name()), e.target()));
    }
    let sysinfo = [ViewEntry::Meminfo, ViewEntry::Uptime, ViewEntry::Loadavg];
    if entries.iter().any(|e| sysinfo.contains(e)) {
        return Ok(sysinfo_rule(spec, &layout.notify_socket()));
    }
    Ok(None)
}

/// The rule that sends `sysinfo(2)` to the agent.
fn notify_sysinfo() -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(vec!["sysinfo".to_string()])
        .action(LinuxSeccompAction::ScmpActNotify)
        .build()
        .expect("all fields set")
}

/// The ABIs this host runs, as a profile names them: a task of an ABI the filter does not
/// list is killed, so a profile made here lists them all.
fn host_arches() -> Vec<OciArch> {
    seccomp::Arch::ALL
        .into_iter()
        .filter(|a| match seccomp::Arch::native() {
            seccomp::Arch::X86_64 => matches!(
                a,
                seccomp::Arch::X86_64 | seccomp::Arch::X86 | seccomp::Arch::X32
            ),
            n => *a == n,
        })
        .map(|a| match a {
            seccomp::Arch::X86_64 => OciArch::ScmpArchX86_64,
            seccomp::Arch::X86 => OciArch::ScmpArchX86,
            seccomp::Arch::X32 => OciArch::ScmpArchX32,
            seccomp::Arch::Aarch64 => OciArch::ScmpArchAarch64,
        })
        .collect()
}

/// Makes `sysinfo(2)` a NOTIFY call answered by the agent at `socket` (busybox `free` and
/// `uptime` read sysinfo, not /proc): the rule goes first in `linux.seccomp.syscalls` (the
/// compiler takes the first matching rule), with `listenerPath` = `socket`; a config without a
/// profile gets one that allows everything else. A profile with an agent of its own is left
/// alone: the warning says so.
pub(crate) fn sysinfo_rule(spec: &mut Spec, socket: &Path) -> Option<String> {
    let mut linux = spec
        .linux()
        .clone()
        .unwrap_or_else(|| LinuxBuilder::default().build().expect("no required fields"));
    let seccomp = match linux.seccomp().clone() {
        Some(p) => {
            if let Some(other) = p.listener_path() {
                return Some(format!(
                    "sysinfo(2) stays the host's: the config's seccomp profile has its own agent at {}",
                    other.display()
                ));
            }
            let notifies = p
                .syscalls()
                .iter()
                .flatten()
                .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
            if notifies {
                // NOTIFY rules without listenerPath: refused when compiled, as without a view.
                return None;
            }
            let mut p: LinuxSeccomp = p;
            let mut rules = vec![notify_sysinfo()];
            rules.extend(p.syscalls().clone().unwrap_or_default());
            p.set_syscalls(Some(rules));
            p.set_listener_path(Some(socket.to_path_buf()));
            p
        }
        None => LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .architectures(host_arches())
            .syscalls(vec![notify_sysinfo()])
            .listener_path(socket)
            .build()
            .expect("all fields set"),
    };
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
    None
}

fn bind(source: PathBuf, target: &str) -> Mount {
    MountBuilder::default()
        .destination(target)
        .typ("bind")
        .source(source)
        .options(
            ["rbind", "ro", "nosuid", "nodev", "noexec"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .expect("all fields set")
}

/// After a container with a view is gone: lets the server exit if no container uses it, and
/// waits (bounded) for it to be gone, so that a delete leaves no mount or process behind.
pub(crate) fn release(root: &Path) {
    let layout = procview::Layout::new(root);
    if !layout.dir.exists() || procview::stop_if_idle(&layout).is_err() {
        return;
    }
    // Another container still registered: the server stays.
    let registered = std::fs::read_dir(root).is_ok_and(|mut rd| {
        rd.any(|e| {
            e.is_ok_and(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                !n.starts_with('.') && layout.registration(&n).is_file()
            })
        })
    });
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !registered && layout.dir.exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Whether /dev/fuse is the FUSE character device (10:229), as the server needs.
pub(crate) fn fuse_available() -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::metadata("/dev/fuse")
        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == libc::makedev(10, 229))
}
