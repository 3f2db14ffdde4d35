//! The whole process plan, computed from config.json before anything is created.

use std::os::fd::RawFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::fail::{Fail, Step};
use crate::hooks::{self, Prepared};
use crate::namespaces::NsPlan;
use crate::oci_spec::runtime::Spec;
use crate::process::{ProcPlan, SessionKeyring};
use crate::rootfs::{Rootfs, RootfsOptions};
use crate::{Error, Result};

/// Everything the container's processes will do, prepared so they need not allocate.
pub(crate) struct Plan {
    pub ns: NsPlan,
    pub rootfs: Rootfs,
    pub proc: ProcPlan,
    pub create_container: Vec<Prepared>,
    pub start_container: Vec<Prepared>,
    pub console_size: Option<(u16, u16)>,
    /// The root filesystem's host path: createContainer hooks run there, as runc's do.
    pub root_dir: std::ffi::CString,
    pub spec: Spec,
    /// The v1 `tasks` files (opened by the parent) the first child joins by writing "0".
    pub cgroup_join: Vec<RawFd>,
}

/// Inputs of the plan besides config.json.
pub(crate) struct PlanOptions<'a> {
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub listen_fds: u32,
    /// The container whose session keyring the init joins (None: `--no-new-keyring`).
    pub keyring_id: Option<&'a str>,
    /// The container's cgroup directory in each hierarchy, for `cgroup` mounts.
    pub cgroup_dirs: Vec<std::path::PathBuf>,
    /// Where the parent reads the image's /etc/passwd when root.path is not it yet (an
    /// overlay the container mounts itself); None: root.path.
    pub passwd_root: Option<std::path::PathBuf>,
}

/// Config sections husk does not apply yet are refused rather than ignored: a container
/// silently without its seccomp filter would be worse than no container.
fn refuse_unbuilt(spec: &Spec) -> Result<()> {
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    if l.intel_rdt().is_some() {
        return Err(Error::unsupported(
            "linux.intelRdt",
            "linux.intelRdt: Intel RDT is not supported (no resctrl on this host)",
        ));
    }
    if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(Error::unsupported(
            "linux.netDevices",
            "linux.netDevices: moving network devices is not supported yet",
        ));
    }
    Ok(())
}

impl Plan {
    pub(crate) fn build(spec: Spec, o: &PlanOptions) -> Result<Plan> {
        if spec.linux().is_none() {
            return Err(Error::config("linux", "linux section is required"));
        }
        hooks::validate(&spec)?;
        refuse_unbuilt(&spec)?;
        let ns = NsPlan::build(&spec)?;
        // The rootfs as the parent sees it: HOME comes from its /etc/passwd.
        let root = o
            .passwd_root
            .clone()
            .or_else(|| spec.root().as_ref().map(|r| o.bundle.join(r.path())));
        let keyring = o
            .keyring_id
            .map(|id| SessionKeyring::new(id, true, ns.userns))
            .transpose()?;
        let mut proc = ProcPlan::build(
            &spec,
            o.preserve_fds,
            o.listen_fds,
            keyring,
            root.as_deref(),
        )?;
        // execCPUAffinity is "not applicable to the container's init process" (runtime-spec):
        // the init gets every CPU of its cpuset, as runc resets it.
        proc.attrs.affinity_initial = None;
        proc.attrs.affinity_final = None;
        let rootfs = Rootfs::plan(
            &spec,
            o.bundle,
            &RootfsOptions {
                no_pivot: o.no_pivot,
                // husk itself in a user namespace (under rootless podman, which runs the
                // runtime in its own): no mknod either, so devices are bound too.
                userns: ns.userns || crate::rootless::in_user_namespace(),
                cgroup_dirs: o.cgroup_dirs.clone(),
                cwd: None,
            },
        )?;
        let h = spec.hooks().as_ref();
        let create_container = hooks::prepare(
            h.and_then(|h| h.create_container().as_deref())
                .unwrap_or_default(),
        )?;
        let start_container = hooks::prepare(
            h.and_then(|h| h.start_container().as_deref())
                .unwrap_or_default(),
        )?;
        let console_size = spec.process().as_ref().and_then(|p| {
            p.console_size()
                .map(|b| (b.height() as u16, b.width() as u16))
        });
        let root = spec.root().as_ref().map(|r| r.path().as_path());
        let root_dir = o.bundle.join(root.unwrap_or(Path::new("")));
        let root_dir = std::ffi::CString::new(root_dir.into_os_string().into_vec())
            .map_err(|_| Error::config("root.path", "root.path contains a NUL byte"))?;
        Ok(Plan {
            ns,
            rootfs,
            proc,
            create_container,
            start_container,
            console_size,
            root_dir,
            spec,
            cgroup_join: Vec::new(),
        })
    }

    pub(crate) fn hooks_of(&self, create: bool) -> &[crate::oci_spec::runtime::Hook] {
        let h = self.spec.hooks().as_ref();
        let list = if create {
            h.and_then(|h| h.create_container().as_deref())
        } else {
            h.and_then(|h| h.start_container().as_deref())
        };
        list.unwrap_or_default()
    }

    /// The one error for a child failure.
    pub(crate) fn error(&self, f: &Fail) -> Error {
        match f.step {
            Step::Namespace(_) => crate::fail::setup_error(f, self.ns.describe(f)),
            Step::Rootfs(_) => self.rootfs.error(f),
            Step::Process(_) | Step::Exec(_) => self.proc.error(f),
            Step::Hook(code) => {
                hooks::error(code, f, self.hooks_of(true), self.hooks_of(false), None)
            }
            Step::Sync(_) | Step::Console(_) => {
                crate::fail::setup_error(f, crate::init::describe(f))
            }
        }
    }
}
