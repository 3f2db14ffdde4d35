//! `checkpoint` and `restore`: runc's flags turned into libcontainer's CRIU options.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use libcontainer::oci_spec::runtime::LinuxNamespaceType;
use libcontainer::{CgroupsMode, CheckpointOptions, RestoreOptions, RunOutcome};

use crate::args::{Flag, Kind, Matches};
use crate::commands::Ctx;
use crate::table::{CONSOLE_SOCKET, DETACH, PID_FILE};

const fn multi(name: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        short: None,
        kind: Kind::Multi,
        default: None,
        help,
    }
}

const IMAGE_PATH: Flag = Flag::value("image-path", None, None, "path for saving criu image files");
const WORK_PATH: Flag = Flag::value(
    "work-path",
    None,
    None,
    "path for saving work files and logs",
);
const TCP_ESTABLISHED: Flag = Flag::boolean("tcp-established", None, "allow open tcp connections");
const EXT_UNIX_SK: Flag = Flag::boolean("ext-unix-sk", None, "allow external unix sockets");
const SHELL_JOB: Flag = Flag::boolean("shell-job", None, "allow shell jobs");
const FILE_LOCKS: Flag = Flag::boolean("file-locks", None, "handle file locks, for safety");
const LAZY_PAGES: Flag = Flag::boolean(
    "lazy-pages",
    None,
    "use userfaultfd to lazily restore memory pages",
);
const MANAGE_CGROUPS_MODE: Flag = Flag::value(
    "manage-cgroups-mode",
    None,
    None,
    "cgroups mode: soft|full|strict|ignore (default: soft)",
);
const EMPTY_NS: Flag = multi(
    "empty-ns",
    "create a namespace, but don't restore its properties",
);
const AUTO_DEDUP: Flag = Flag::boolean(
    "auto-dedup",
    None,
    "enable auto deduplication of memory images",
);

pub const CHECKPOINT_FLAGS: &[Flag] = &[
    IMAGE_PATH,
    WORK_PATH,
    Flag::value(
        "parent-path",
        None,
        None,
        "path for previous criu image files in pre-dump",
    ),
    Flag::boolean(
        "leave-running",
        None,
        "leave the process running after checkpointing",
    ),
    TCP_ESTABLISHED,
    Flag::boolean("tcp-skip-in-flight", None, "skip in-flight tcp connections"),
    Flag::boolean(
        "link-remap",
        None,
        "allow one to link unlinked files back when possible",
    ),
    EXT_UNIX_SK,
    SHELL_JOB,
    LAZY_PAGES,
    Flag::value(
        "status-fd",
        None,
        None,
        "criu writes \\0 to this FD once lazy-pages is ready",
    ),
    Flag::value("page-server", None, None, "ADDRESS:PORT of the page server"),
    FILE_LOCKS,
    Flag::boolean(
        "pre-dump",
        None,
        "dump container's memory information only, leave the container running after this",
    ),
    MANAGE_CGROUPS_MODE,
    EMPTY_NS,
    AUTO_DEDUP,
];

pub const RESTORE_FLAGS: &[Flag] = &[
    CONSOLE_SOCKET,
    IMAGE_PATH,
    WORK_PATH,
    TCP_ESTABLISHED,
    EXT_UNIX_SK,
    SHELL_JOB,
    FILE_LOCKS,
    MANAGE_CGROUPS_MODE,
    Flag::value(
        "bundle",
        Some("b"),
        None,
        "path to the root of the bundle directory",
    ),
    DETACH,
    PID_FILE,
    Flag::boolean(
        "no-subreaper",
        None,
        "disable the use of the subreaper used to reap reparented processes",
    ),
    Flag::boolean(
        "no-pivot",
        None,
        "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk",
    ),
    EMPTY_NS,
    AUTO_DEDUP,
    LAZY_PAGES,
    Flag::value(
        "lsm-profile",
        None,
        None,
        "Specify an LSM profile to be used during restore in the form of TYPE:NAME.",
    ),
    Flag::value(
        "lsm-mount-context",
        None,
        None,
        "Specify an LSM mount context to be used during restore.",
    ),
];

/// runc's default image path: ./checkpoint in the current directory.
fn image_path(m: &Matches) -> anyhow::Result<std::path::PathBuf> {
    let p = m
        .value("image-path")
        .filter(|p| !p.is_empty())
        .unwrap_or("checkpoint");
    std::path::absolute(p).with_context(|| format!("resolving path {p:?}"))
}

fn opt_path(m: &Matches, name: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    m.value(name)
        .filter(|p| !p.is_empty())
        .map(|p| std::path::absolute(p).with_context(|| format!("resolving path {p:?}")))
        .transpose()
}

fn empty_ns(m: &Matches) -> anyhow::Result<Vec<LinuxNamespaceType>> {
    m.values("empty-ns")
        .iter()
        .map(|n| match n.as_str() {
            "network" | "net" => Ok(LinuxNamespaceType::Network),
            "pid" => Ok(LinuxNamespaceType::Pid),
            "mount" => Ok(LinuxNamespaceType::Mount),
            "ipc" => Ok(LinuxNamespaceType::Ipc),
            "uts" => Ok(LinuxNamespaceType::Uts),
            "user" => Ok(LinuxNamespaceType::User),
            "cgroup" => Ok(LinuxNamespaceType::Cgroup),
            _ => bail!("namespace {n:?} is not supported"),
        })
        .collect()
}

pub(crate) fn checkpoint(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let mut o = CheckpointOptions::new(image_path(m)?);
    o.criu = ctx.criu.clone();
    o.work_path = opt_path(m, "work-path")?;
    o.parent_path = m
        .value("parent-path")
        .filter(|p| !p.is_empty())
        .map(Into::into);
    o.leave_running = m.flag("leave-running");
    o.tcp_established = m.flag("tcp-established");
    o.tcp_skip_in_flight = m.flag("tcp-skip-in-flight");
    o.link_remap = m.flag("link-remap");
    o.ext_unix_sk = m.flag("ext-unix-sk");
    o.shell_job = m.flag("shell-job");
    o.lazy_pages = m.flag("lazy-pages");
    o.file_locks = m.flag("file-locks");
    o.pre_dump = m.flag("pre-dump");
    o.auto_dedup = m.flag("auto-dedup");
    o.manage_cgroups_mode = CgroupsMode::parse(m.value("manage-cgroups-mode").unwrap_or(""))?;
    o.empty_ns = empty_ns(m)?;
    if let Some(ps) = m.value("page-server").filter(|p| !p.is_empty()) {
        let (addr, port) = ps
            .rsplit_once(':')
            .with_context(|| format!("invalid --page-server {ps:?}: want ADDRESS:PORT"))?;
        let port: i32 = port
            .parse()
            .with_context(|| format!("invalid --page-server port {port:?}"))?;
        o.page_server = Some((addr.to_string(), port));
    }
    if let Some(fd) = m.value("status-fd") {
        let fd: i32 = fd
            .parse()
            .with_context(|| format!("invalid --status-fd {fd:?}"))?;
        if fd >= 0 {
            if !o.lazy_pages {
                bail!("--status-fd can only be used with --lazy-pages");
            }
            if fd <= 2 || std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_err() {
                bail!("invalid --status-fd argument {fd}: not an open file descriptor");
            }
            // Reopened rather than adopted: the CLI holds no unsafe code.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{fd}"))
                .with_context(|| format!("invalid --status-fd argument {fd}: not writable"))?;
            o.status_fd = Some(Arc::new(OwnedFd::from(f)));
        }
    }
    ctx.runtime.container(&m.args[0])?.checkpoint(&o)?;
    Ok(0)
}

pub(crate) fn restore(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let bundle = std::path::absolute(m.value("bundle").unwrap_or("."))
        .context("resolving the bundle path")?;
    let mut o = RestoreOptions::new(image_path(m)?, bundle);
    o.criu = ctx.criu.clone();
    o.create.cgroup_driver = crate::commands::cgroup_driver(ctx)?;
    o.create.rootless = crate::commands::rootless(ctx);
    o.create.resource_view = ctx.resource_view.clone();
    o.create.procview_binary = crate::commands::procview_beside();
    o.create.console = match m.value("console-socket") {
        Some(s) => libcontainer::Console::Socket(std::path::absolute(s)?),
        None => libcontainer::Console::Proxy,
    };
    o.create.pid_file = opt_path(m, "pid-file")?;
    o.create.no_pivot = m.flag("no-pivot");
    o.work_path = opt_path(m, "work-path")?;
    o.detach = m.flag("detach");
    o.subreaper = !m.flag("no-subreaper");
    o.tcp_established = m.flag("tcp-established");
    o.ext_unix_sk = m.flag("ext-unix-sk");
    o.shell_job = m.flag("shell-job");
    o.file_locks = m.flag("file-locks");
    o.auto_dedup = m.flag("auto-dedup");
    o.lazy_pages = m.flag("lazy-pages");
    o.manage_cgroups_mode = CgroupsMode::parse(m.value("manage-cgroups-mode").unwrap_or(""))?;
    o.empty_ns = empty_ns(m)?;
    o.lsm_profile = m
        .value("lsm-profile")
        .filter(|p| !p.is_empty())
        .map(Into::into);
    o.lsm_mount_context = m
        .value("lsm-mount-context")
        .filter(|p| !p.is_empty())
        .map(Into::into);
    match ctx.runtime.restore(&m.args[0], &o)? {
        RunOutcome::Detached => Ok(0),
        RunOutcome::Exited(code) => Ok(code),
    }
}
