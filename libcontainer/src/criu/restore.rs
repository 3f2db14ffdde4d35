//! `restore`: a container brought back from CRIU's images into a new state directory and
//! cgroup, its root the bundle's rootfs, its host mounts and stdio handed back to CRIU.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use rust_criu::rust_criu_protobuf::rpc::{
    Cgroup_root, Criu_req, Criu_req_type, Inherit_fd, Join_namespace,
};

use super::dump::{ext_mount, ext_ns_key, ns_path, read_manifest, rootfs_of, Fingerprint};
use super::{base_opts, config_file, empty_ns_flags, open_dir, swrk::Swrk, CgroupsMode, Criu};
use crate::create::{hook_state, load_spec, send_console, write_pid_file};
use crate::error::Context;
use crate::hooks::{self, Kind};
use crate::io::{Console, StdioSet};
use crate::oci_spec::runtime::{LinuxNamespaceType, Spec};
use crate::state::{self, Phase, Record, StateDir, Status};
use crate::sys;
use crate::{CreateOptions, Error, Result, RunOutcome, Runtime};

/// Options of [`Runtime::restore`], runc's `restore` flags.
///
/// ```
/// let mut opts = libcontainer::RestoreOptions::new("/var/lib/ckpt/web-1", "/path/to/bundle");
/// opts.detach = true;
/// opts.tcp_established = true;
/// ```
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// The bundle, console, stdio, pid file, pidfd socket and cgroup driver, as for
    /// `create`; `no_new_keyring` is recorded for later `exec`s. `preserve_fds` is refused:
    /// CRIU restores the fds the processes had. `no_pivot` has no effect: CRIU sets up the
    /// restored root itself (accepted, as runc accepts `restore --no-pivot`).
    pub create: CreateOptions,
    /// The CRIU binary; `None`: `criu` found on `$PATH`.
    pub criu: Option<PathBuf>,
    /// Where the images are.
    pub image_path: PathBuf,
    /// Where CRIU writes its log (default: the image path).
    pub work_path: Option<PathBuf>,
    /// Return once the container runs instead of waiting for it (and deleting it after).
    pub detach: bool,
    /// While waiting, be a child subreaper (runc's default; `--no-subreaper` turns it off).
    pub subreaper: bool,
    /// Restore established TCP connections.
    pub tcp_established: bool,
    /// Allow unix sockets connected to peers outside the container.
    pub ext_unix_sk: bool,
    /// The container was dumped as a shell job.
    pub shell_job: bool,
    /// Restore file locks.
    pub file_locks: bool,
    /// How CRIU treats the cgroups.
    pub manage_cgroups_mode: CgroupsMode,
    /// Namespaces made empty instead of restored (only the network).
    pub empty_ns: Vec<LinuxNamespaceType>,
    /// Deduplicate the images as they are read.
    pub auto_dedup: bool,
    /// Restore memory on demand from a lazy-pages server.
    pub lazy_pages: bool,
    /// Another LSM profile or label for the processes than the one they were dumped with.
    pub lsm_profile: Option<String>,
    /// Another SELinux mount context than the one dumped.
    pub lsm_mount_context: Option<String>,
}

impl RestoreOptions {
    /// Options restoring the images in `image_path` with the bundle at `bundle`.
    pub fn new(image_path: impl Into<PathBuf>, bundle: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            create: CreateOptions::new(bundle),
            image_path: image_path.into(),
            ..Default::default()
        }
    }
}

/// What a failed restore must undo.
struct Undo<'a> {
    dir: Option<StateDir>,
    cgroup: Option<&'a cgroups::Manager>,
    root: Option<PathBuf>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.root.take() {
            unmount_root(&r);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.remove();
        }
    }
}

fn unmount_root(root: &Path) {
    if let Ok(c) = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()) {
        let _ = sys::mount::umount2(&c, libc::MNT_DETACH);
    }
    let _ = std::fs::remove_dir(root);
}

/// The image directory holds a checkpoint, and one of a config like the bundle's.
fn check_images(images: &Path, spec: &Spec) -> Result<Option<super::dump::Manifest>> {
    if !images.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "image path {} does not exist or is not a directory",
            images.display()
        )));
    }
    if !images.join("inventory.img").is_file() {
        return Err(Error::InvalidArgument(format!(
            "image path {} holds no checkpoint (no inventory.img)",
            images.display()
        )));
    }
    let manifest = read_manifest(images)?;
    if let Some(m) = &manifest {
        if let Some(d) = m.fingerprint.differs(&Fingerprint::of(spec)) {
            return Err(Error::InvalidArgument(format!(
                "image path {} holds a checkpoint of container {} whose config differs from the bundle's: checkpointed {d}",
                images.display(),
                m.id
            )));
        }
    }
    Ok(manifest)
}

/// runc's descriptors.json: the pipes among the init's stdio (images made by runc).
fn runc_pipes(images: &Path) -> Vec<Option<String>> {
    std::fs::read(images.join("descriptors.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<Vec<String>>(&d).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.starts_with("pipe:").then_some(s))
        .collect()
}

/// Creates the mount points the bundle's rootfs lacks for the host binds (a new rootfs from an
/// image has none): CRIU mounts onto them and does not create them.
fn make_mountpoints(rootfs: &Path, binds: &[(PathBuf, PathBuf)]) -> Result<()> {
    let root =
        std::fs::File::open(rootfs).ctx(|| format!("opening rootfs {}", rootfs.display()))?;
    for (dest, src) in binds {
        let rel = dest.strip_prefix("/").unwrap_or(dest);
        if rel.as_os_str().is_empty() {
            continue;
        }
        let is_dir = std::fs::metadata(src).map(|m| m.is_dir()).unwrap_or(true);
        make_in_root(root.as_raw_fd(), rel, is_dir).map_err(|e| {
            Error::errno(
                format!("creating mount point {} in the rootfs", dest.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// Creates `rel` (a directory, or an empty file) and its missing parents under `root`,
/// resolving every step inside it: a symlink in the rootfs never leads out.
fn make_in_root(root: RawFd, rel: &Path, is_dir: bool) -> std::result::Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let resolve = sys::mount::RESOLVE_IN_ROOT | sys::mount::RESOLVE_NO_MAGICLINKS;
    let parts: Vec<_> = rel.components().collect();
    let mut at = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if !at.is_empty() {
            at.push(b'/');
        }
        at.extend_from_slice(part.as_os_str().as_bytes());
        let path = std::ffi::CString::new(at.clone()).map_err(|_| libc::EINVAL)?;
        match sys::mount::openat2(root, &path, libc::O_PATH | libc::O_CLOEXEC, 0, resolve) {
            Ok(fd) => {
                sys::close(fd);
                continue;
            }
            Err(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // The parent exists (made or found in the step before): create inside it.
        let parent = match at.iter().rposition(|&b| b == b'/') {
            Some(p) => std::ffi::CString::new(&at[..p]).map_err(|_| libc::EINVAL)?,
            None => c".".to_owned(),
        };
        let name = std::ffi::CString::new(part.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
        let dfd = sys::adopt(sys::mount::openat2(
            root,
            &parent,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            resolve,
        )?);
        // mkdirat and openat need a real directory fd, not an O_PATH one.
        let dir = sys::adopt(sys::mount::openat(
            dfd.as_raw_fd(),
            c".",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )?);
        if !last || is_dir {
            match sys::mount::mkdirat(dir.as_raw_fd(), &name, 0o755) {
                Ok(()) | Err(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        } else {
            let fd = sys::mount::openat(
                dir.as_raw_fd(),
                &name,
                libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )?;
            sys::close(fd);
        }
    }
    Ok(())
}

/// A recursive bind of `src` onto `dst` (open_tree + move_mount).
fn bind_recursive(src: &Path, dst: &Path) -> std::result::Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL);
    let tree = sys::adopt(sys::mount::open_tree(
        libc::AT_FDCWD,
        &c(src)?,
        sys::mount::OPEN_TREE_CLONE | sys::mount::OPEN_TREE_CLOEXEC | sys::mount::AT_RECURSIVE,
    )?);
    sys::mount::move_mount(
        tree.as_raw_fd(),
        c"",
        libc::AT_FDCWD,
        &c(dst)?,
        sys::mount::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

impl Runtime {
    /// Restores container `id` from the images in `opts.image_path` (a checkpoint of this or
    /// another container with the same config), with the bundle's rootfs as its root. The
    /// restored init is a child of the caller. With `detach` it returns once the container
    /// runs; otherwise it waits for the init to exit, deletes the container and returns the
    /// exit status, as `run` does.
    ///
    /// ```no_run
    /// # fn main() -> libcontainer::Result<()> {
    /// let runtime = libcontainer::Runtime::new("/run/husk");
    /// let mut opts = libcontainer::RestoreOptions::new("/var/lib/ckpt/web-1", "/srv/bundle");
    /// opts.detach = true;
    /// runtime.restore("web-1", &opts)?;
    /// # Ok(()) }
    /// ```
    pub fn restore(&self, id: &str, opts: &RestoreOptions) -> Result<RunOutcome> {
        let init = self.restore_impl(id, opts, false)?;
        if opts.detach {
            return Ok(RunOutcome::Detached);
        }
        if opts.subreaper {
            sys::proc::set_child_subreaper(true)
                .map_err(|e| Error::errno("becoming a child subreaper", e))?;
        }
        let proxy = match (&init.pty, &opts.create.console) {
            (Some(m), Console::Proxy) => Some(crate::tty::Proxy::start(m)?),
            _ => None,
        };
        let status = crate::tty::wait_forwarding(init.pidfd(), proxy.as_ref())?;
        drop(proxy);
        self.container(id)?.remove(true, true)?;
        if opts.subreaper {
            sys::proc::reap_exited();
        }
        Ok(RunOutcome::Exited(status))
    }

    /// Restores like [`Runtime::restore`] with `detach`, and returns the restored init as a
    /// [`Process`](crate::Process): its pidfd (CRIU restores it as a sibling of itself, so it
    /// is the caller's child and the caller reaps it), the pipes asked for with
    /// [`Stdio::Piped`](crate::Stdio::Piped), and with a terminal and [`Console::Return`] the
    /// pty master. This is how a program that supervises its containers (husk's containerd
    /// shim) takes a restored one over.
    ///
    /// ```no_run
    /// # fn main() -> libcontainer::Result<()> {
    /// let runtime = libcontainer::Runtime::new("/run/husk");
    /// let opts = libcontainer::RestoreOptions::new("/var/lib/ckpt/web-1", "/path/to/bundle");
    /// let init = runtime.restore_process("web-1", &opts)?;
    /// println!("restored, exited with {}", init.wait()?);
    /// # Ok(()) }
    /// ```
    pub fn restore_process(&self, id: &str, opts: &RestoreOptions) -> Result<crate::Process> {
        self.restore_impl(id, opts, true)
    }

    /// The restore itself: the restored init as a `Process` (`keep`: for `restore_process`).
    fn restore_impl(&self, id: &str, opts: &RestoreOptions, keep: bool) -> Result<crate::Process> {
        state::validate_id(id)?;
        if self.root().join(id).exists() {
            return Err(Error::AlreadyExists(id.into()));
        }
        let c = &opts.create;
        let bundle =
            std::path::absolute(&c.bundle).ctx(|| format!("bundle {}", c.bundle.display()))?;
        let spec = match &c.spec {
            Some(s) => s.clone(),
            None => load_spec(&bundle)?.0,
        };
        if crate::ResourceView::for_spec(&spec, c.resource_view.as_ref())?
            != crate::ResourceView::Off
        {
            return Err(Error::unsupported(
                "restore",
                "a resource view cannot be restored yet: restore without it (--resource-view off, or the annotation set to off)",
            ));
        }
        let manifest = check_images(&opts.image_path, &spec)?;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        match (&c.console, terminal) {
            (Console::Socket(_), false) => {
                return Err(Error::config(
                    "process.terminal",
                    "cannot use console socket if the container does not allocate a tty (process.terminal is false)",
                ))
            }
            (Console::Socket(_), true) => {}
            (Console::Proxy, true) if !opts.detach && !keep => {}
            (Console::Return, true) if keep => {}
            (_, true) => {
                return Err(Error::config(
                    "process.terminal",
                    "restoring a container with a terminal needs a console socket (or a foreground restore)",
                ))
            }
            _ => {}
        }
        if c.preserve_fds != 0 {
            return Err(Error::InvalidArgument(
                "preserve_fds does not apply to a restore: CRIU restores the fds the processes had"
                    .into(),
            ));
        }
        if let Some(p) = ns_path(&spec, LinuxNamespaceType::Cgroup) {
            return Err(Error::unsupported(
                "criu",
                format!(
                    "restore cannot join the cgroup namespace {} (CRIU has no way to)",
                    p.display()
                ),
            ));
        }
        let criu = Criu::find(opts.criu.as_deref())?;
        let empty_ns = empty_ns_flags(&opts.empty_ns)?;
        let (cgroup, warning) =
            crate::create::cgroup_manager(c.cgroup_driver, c.rootless, &spec, id)?;
        if let Some(w) = warning {
            self.handler.warn(id, &w);
        }
        let rootfs_plan = rootfs_of(&spec, &bundle, cgroup.saved().dirs.clone())?;
        let dir = StateDir::create(self.root(), id)?;
        let mut undo = Undo {
            dir: None,
            cgroup: None,
            root: None,
        };
        let mut record = Record::creating(id, &bundle, spec, cgroup.saved(), c.no_new_keyring);
        let mut pty: Option<OwnedFd> = None;
        let result = (|| -> Result<(i32, OwnedFd, [Option<std::fs::File>; 3])> {
            dir.write(&record)?;
            cgroup.check_existing().map_err(|e| {
                let msg = e.to_string();
                Error::config("linux.cgroupsPath", msg.trim_start_matches("cgroup: "))
            })?;
            undo.cgroup = Some(&cgroup);
            cgroup.create()?;
            let resources = record
                .config
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone());
            if let Some(r) = resources.as_ref().filter(|_| cgroup.applies_on_create()) {
                cgroup.apply(r)?;
            }
            // CRIU wants its root to be a mount point whose parent is not overmounted: the
            // rootfs bound onto a directory of the state dir, as runc does.
            let binds = rootfs_plan.host_binds();
            make_mountpoints(&record.rootfs, &binds)?;
            let root = dir.path.join("criu-root");
            std::fs::create_dir(&root).ctx(|| format!("creating {}", root.display()))?;
            undo.root = Some(root.clone());
            bind_recursive(&record.rootfs, &root).map_err(|e| {
                Error::errno(
                    format!(
                        "binding {} onto {}",
                        record.rootfs.display(),
                        root.display()
                    ),
                    e,
                )
            })?;
            let images = open_dir(&opts.image_path, false, "image path")?;
            let work = match &opts.work_path {
                Some(w) => Some(open_dir(w, true, "work path")?),
                None => None,
            };
            let log_name = "restore.log";
            let log = opts
                .work_path
                .as_deref()
                .unwrap_or(&opts.image_path)
                .join(log_name);
            let mut o = base_opts(&images, work.as_ref(), log_name);
            o.set_root(root.display().to_string());
            o.set_rst_sibling(true);
            o.set_evasive_devices(true);
            o.manage_cgroups_mode =
                Some(protobuf::EnumOrUnknown::new(opts.manage_cgroups_mode.rpc()));
            o.set_shell_job(opts.shell_job);
            o.set_ext_unix_sk(opts.ext_unix_sk);
            o.set_tcp_established(opts.tcp_established);
            o.set_file_locks(opts.file_locks);
            o.set_empty_ns(empty_ns);
            o.set_auto_dedup(opts.auto_dedup);
            o.set_lazy_pages(opts.lazy_pages);
            if let Some(p) = &opts.lsm_profile {
                o.set_lsm_profile(p.clone());
            }
            if let Some(p) = &opts.lsm_mount_context {
                o.set_lsm_mount_context(p.clone());
            }
            if let Some(f) = config_file(&record.config) {
                o.set_config_file(f);
            }
            // Namespaces the config joins: net and pid were dumped as external and come back
            // as inherited fds; the others CRIU joins itself.
            let mut extra: Vec<OwnedFd> = Vec::new();
            for n in record
                .config
                .linux()
                .as_ref()
                .and_then(|l| l.namespaces().clone())
                .unwrap_or_default()
            {
                let Some(p) = n.path() else { continue };
                match n.typ() {
                    LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                        let f = std::fs::File::open(p)
                            .ctx(|| format!("opening namespace {}", p.display()))?;
                        let mut i = Inherit_fd::new();
                        i.set_key(ext_ns_key(n.typ()).into());
                        i.set_fd(4 + extra.len() as i32);
                        o.inherit_fd.push(i);
                        extra.push(f.into());
                    }
                    t => {
                        let mut j = Join_namespace::new();
                        j.set_ns(criu_ns_name(t).into());
                        j.set_ns_file(p.display().to_string());
                        o.join_ns.push(j);
                    }
                }
            }
            // CRIU mounts the source path as given: a symlink (/lib on a merged-/usr host)
            // must be resolved first, as create's bind resolved it.
            for (dest, src) in &binds {
                let src = std::fs::canonicalize(src).unwrap_or_else(|_| src.clone());
                o.ext_mnt.push(ext_mount(dest, &src));
            }
            if !rootfs_plan.masked_paths().is_empty() {
                o.ext_mnt
                    .push(ext_mount(Path::new("/dev/null"), Path::new("/dev/null")));
            }
            let stdio_keys = match &manifest {
                Some(m) => m.stdio.clone(),
                None => runc_pipes(&opts.image_path),
            };
            for (fd, key) in stdio_keys.iter().enumerate() {
                if let Some(k) = key {
                    let mut i = Inherit_fd::new();
                    i.set_key(k.clone());
                    i.set_fd(fd as i32);
                    o.inherit_fd.push(i);
                }
            }
            let (child_stdio, pipes) = StdioSet([&c.stdin, &c.stdout, &c.stderr]).prepare()?;
            let extra_raw: Vec<RawFd> = extra.iter().map(|f| f.as_raw_fd()).collect();
            let mut s = Swrk::start(&criu.path, child_stdio.fds, &extra_raw)?;
            drop(child_stdio);
            drop(extra);
            // CRIU goes into the container's cgroups, so the tasks it restores start there;
            // each controller's root is then where CRIU itself is.
            cgroup.add(s.pid(), false, false)?;
            o.cg_root = cgroup_roots(s.pid())?;
            let mut req = Criu_req::new();
            req.set_type(Criu_req_type::RESTORE);
            req.opts = protobuf::MessageField::some(o);
            let hooks = record.config.hooks().clone().unwrap_or_default();
            let mut restored = 0;
            s.request(&req, Some(&log), |n| {
                match n.script.as_str() {
                    "setup-namespaces" => {
                        // runc runs these two kinds on restore, with the restored init's pid.
                        hooks::run(
                            Kind::Prestart,
                            hooks.prestart().as_deref().unwrap_or_default(),
                            &hook_state(&record, Status::Created, n.pid),
                            Some(&bundle),
                        )?;
                        hooks::run(
                            Kind::CreateRuntime,
                            hooks.create_runtime().as_deref().unwrap_or_default(),
                            &hook_state(&record, Status::Creating, n.pid),
                            Some(&bundle),
                        )?;
                    }
                    "post-restore" => {
                        restored = n.pid;
                        record.pid = Some(n.pid);
                        record.pid_start = state::proc_stat(n.pid).map(|(s, _)| s);
                        record.phase = Phase::Started;
                        dir.write(&record)?;
                    }
                    "orphan-pts-master" => pty = n.fd,
                    _ => {}
                }
                Ok(())
            })?;
            s.wait();
            if restored <= 0 {
                return Err(Error::setup("CRIU reported no restored process"));
            }
            let pidfd = sys::proc::pidfd_open(restored)
                .map(sys::adopt)
                .map_err(|e| Error::errno(format!("pidfd_open {restored}"), e))?;
            // CRIU restores into a time namespace of its own: exec must join it too.
            let own = std::fs::read_link("/proc/self/ns/time").ok();
            let theirs = std::fs::read_link(format!("/proc/{restored}/ns/time")).ok();
            if own.is_some() && theirs.is_some() && own != theirs {
                add_time_ns(&mut record.config);
                dir.write(&record)?;
            }
            if let (Console::Socket(sock), Some(m)) = (&c.console, &pty) {
                send_console(sock, m.as_fd())?;
            }
            if let Some(sock) = &c.pidfd_socket {
                crate::create::send_pidfd(sock, pidfd.as_fd())?;
            }
            if let Some(p) = &c.pid_file {
                write_pid_file(p, restored)?;
            }
            Ok((restored, pidfd, pipes))
        })();
        let (pid, pidfd, pipes) = match result {
            Ok(r) => r,
            Err(e) => {
                undo.dir = Some(dir);
                drop(undo);
                return Err(e);
            }
        };
        if let Some(r) = undo.root.take() {
            unmount_root(&r);
        }
        undo.cgroup = None;
        drop(undo);
        drop(dir);
        self.handler.emit(crate::Notice::Created { id, pid });
        // restore_process hands the master over only with Return; restore holds it until the
        // init exits (for its Proxy, and as it always has with a console socket).
        let pty = pty.filter(|_| !keep || c.console == Console::Return);
        let pidfd = crate::io::Pidfd::from_parts(pidfd, pid);
        Ok(crate::Process::new(pidfd, pipes, pty))
    }
}

/// CRIU's names of the namespaces `join_ns` takes.
fn criu_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Time => "time",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Cgroup => "cgroup",
    }
}

/// Each controller's cgroup of process `pid` (/proc/PID/cgroup), as CRIU's cgroup roots.
fn cgroup_roots(pid: i32) -> Result<Vec<Cgroup_root>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).ctx(|| format!("reading {path}"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(p)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mut r = Cgroup_root::new();
        r.set_ctrl(ctrl.to_string());
        r.set_path(p.to_string());
        out.push(r);
    }
    Ok(out)
}

fn add_time_ns(spec: &mut Spec) {
    use crate::oci_spec::runtime::LinuxNamespaceBuilder;
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let mut list = linux.namespaces().clone().unwrap_or_default();
    if list.iter().any(|n| n.typ() == LinuxNamespaceType::Time) {
        return;
    }
    if let Ok(n) = LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::Time)
        .build()
    {
        list.push(n);
    }
    linux.set_namespaces(Some(list));
}
