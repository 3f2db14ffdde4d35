//! The commands' bodies: they only turn arguments into libcontainer calls and print the
//! results.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use libcontainer::{parse_signal, CgroupDriver, CreateOptions, RunOptions, RunOutcome, Runtime};

use crate::args::Matches;
use crate::output;

/// What every command gets: the runtime over `--root` and the global options it may need.
pub struct Ctx {
    pub runtime: Runtime,
    pub systemd_cgroup: bool,
    pub cgroup_manager: Option<String>,
    pub rootless: String,
    /// `--root` was given (a missing default root lists nothing; a missing given one fails).
    pub root_given: bool,
    /// `--resource-view`: the default for containers without the annotation.
    pub resource_view: Option<libcontainer::ResourceView>,
    /// `--criu PATH` (runc 1.1); without it `criu` is looked up on $PATH (runc 1.5).
    pub criu: Option<PathBuf>,
}

/// A relative path made absolute against the current directory (not canonicalized).
fn absolute(p: &str) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving path {p:?}"))
}

/// The server binary beside the one `argv[0]` names (a path, or a name looked up on $PATH), if
/// it is there; `None` leaves the library's own search ($PATH). From `argv[0]` because after
/// `seal_exe` the running file has no path of its own; asked only by create, run and restore.
pub(crate) fn procview_beside() -> Option<PathBuf> {
    let argv0 = std::env::args_os().next()?;
    let a = Path::new(&argv0);
    let bin = if a.components().count() > 1 {
        std::path::absolute(a).ok()?
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(a))
            .find(|p| p.is_file())?
    };
    let p = bin.parent()?.join("husk-procview");
    p.is_file().then_some(p)
}

/// runc's `--rootless`: true, false or auto (checked when the arguments are parsed).
pub(crate) fn rootless(ctx: &Ctx) -> libcontainer::Rootless {
    match ctx.rootless.as_str() {
        "true" => libcontainer::Rootless::Yes,
        "false" => libcontainer::Rootless::No,
        _ => libcontainer::Rootless::Auto,
    }
}

/// runc's `--systemd-cgroup` or crun's `--cgroup-manager`; contradicting each other is an error.
pub(crate) fn cgroup_driver(ctx: &Ctx) -> anyhow::Result<CgroupDriver> {
    let d = match ctx.cgroup_manager.as_deref() {
        None | Some("cgroupfs") if ctx.systemd_cgroup => CgroupDriver::Systemd,
        None | Some("cgroupfs") => CgroupDriver::Cgroupfs,
        Some("systemd") => CgroupDriver::Systemd,
        Some(_) if ctx.systemd_cgroup => {
            bail!("--systemd-cgroup contradicts --cgroup-manager disabled")
        }
        Some(_) => CgroupDriver::Disabled,
    };
    if ctx.systemd_cgroup && ctx.cgroup_manager.as_deref() == Some("cgroupfs") {
        bail!("--systemd-cgroup contradicts --cgroup-manager cgroupfs");
    }
    Ok(d)
}

fn create_options(ctx: &Ctx, m: &Matches) -> anyhow::Result<CreateOptions> {
    let mut opts = CreateOptions::new(absolute(m.value("bundle").unwrap_or("."))?);
    opts.cgroup_driver = cgroup_driver(ctx)?;
    opts.rootless = rootless(ctx);
    opts.resource_view = ctx.resource_view.clone();
    opts.procview_binary = procview_beside();
    // No socket: runc copies the pty to its own stdio while `run` waits (refused by `create`
    // and `run -d`, with runc's message). stdio is the CLI's own: `Stdio::Inherit`.
    opts.console = match m.value("console-socket") {
        Some(s) => libcontainer::Console::Socket(absolute(s)?),
        None => libcontainer::Console::Proxy,
    };
    opts.pidfd_socket = m.value("pidfd-socket").map(absolute).transpose()?;
    opts.pid_file = m.value("pid-file").map(absolute).transpose()?;
    if let Some(n) = m.value("preserve-fds") {
        opts.preserve_fds = n.parse().map_err(|_| {
            anyhow::anyhow!("invalid value {n:?} for flag -preserve-fds: parse error")
        })?;
        crate::fds::check_preserved(opts.preserve_fds)?;
    }
    opts.no_pivot = m.flag("no-pivot");
    opts.no_new_keyring = m.flag("no-new-keyring");
    Ok(opts)
}

pub(crate) fn create(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let opts = create_options(ctx, m)?;
    ctx.runtime.create(&m.args[0], &opts)?;
    Ok(0)
}

pub(crate) fn run(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let opts = create_options(ctx, m)?;
    let run = RunOptions {
        detach: m.flag("detach"),
        keep: m.flag("keep"),
        subreaper: !m.flag("no-subreaper"),
    };
    match ctx.runtime.run(&m.args[0], &opts, run)? {
        RunOutcome::Detached => Ok(0),
        RunOutcome::Exited(code) => Ok(code),
    }
}

pub(crate) fn start(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    ctx.runtime.container(&m.args[0])?.start()?;
    Ok(0)
}

pub(crate) fn features(_ctx: &Ctx, _m: &Matches) -> anyhow::Result<i32> {
    print(&format!("{:#}\n", libcontainer::features()))?;
    Ok(0)
}

pub(crate) fn state(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let state = ctx.runtime.container(&m.args[0])?.state()?;
    print(&output::state_json(&state)?)?;
    Ok(0)
}

pub(crate) fn list(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let format = m.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        bail!("invalid format option");
    }
    // As runc: a --root that does not exist is an error, the default one an empty list.
    let root = ctx.runtime.root();
    if ctx.root_given && !root.exists() {
        bail!("open {}: no such file or directory", root.display());
    }
    let states = ctx.runtime.list()?;
    let text = if m.flag("quiet") {
        output::list_quiet(&states)
    } else if format == "json" {
        output::list_json(&states)?
    } else {
        output::list_table(&states)
    };
    print(&text)?;
    Ok(0)
}

pub(crate) fn kill(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    // As runc: the container first, then the signal.
    let container = ctx.runtime.container(&m.args[0])?;
    // Signal 0, as runc: only checks that the init is alive.
    let signal = match m.args.get(1).map(String::as_str).unwrap_or("SIGTERM") {
        "0" => 0,
        s => parse_signal(s)?,
    };
    container.kill(signal, m.flag("all"))?;
    Ok(0)
}

pub(crate) fn delete(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let force = m.flag("force");
    match ctx.runtime.container(&m.args[0]) {
        // As runc: engines call `delete --force` after every failed create, when the
        // container may already be gone; that is success.
        Err(libcontainer::Error::NotFound(_)) if force => Ok(0),
        r => {
            r?.delete(force)?;
            Ok(0)
        }
    }
}

pub(crate) fn spec(_ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let dir = Path::new(m.value("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    let data = output::spec_json(&libcontainer::default_spec(m.flag("rootless")))?;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("File config.json exists. Remove it first")
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    };
    file.write_all(&data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

/// Writes to stdout; a closed stdout is an error, not a panic.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(systemd_cgroup: bool, manager: Option<&str>) -> Ctx {
        Ctx {
            runtime: Runtime::new("/nonexistent"),
            systemd_cgroup,
            cgroup_manager: manager.map(String::from),
            rootless: "auto".into(),
            root_given: false,
            resource_view: None,
            criu: None,
        }
    }

    #[test]
    fn cgroup_driver_flags() {
        let d = |s, m| cgroup_driver(&ctx(s, m)).map_err(|e| e.to_string());
        assert_eq!(d(false, None), Ok(CgroupDriver::Cgroupfs));
        assert_eq!(d(true, None), Ok(CgroupDriver::Systemd));
        assert_eq!(d(false, Some("systemd")), Ok(CgroupDriver::Systemd));
        assert_eq!(d(true, Some("systemd")), Ok(CgroupDriver::Systemd));
        assert_eq!(d(false, Some("disabled")), Ok(CgroupDriver::Disabled));
        assert!(d(true, Some("disabled"))
            .unwrap_err()
            .contains("contradicts"));
        assert!(d(true, Some("cgroupfs"))
            .unwrap_err()
            .contains("contradicts"));
    }

    #[test]
    fn create_options_absolute() {
        let m = crate::args::parse(
            crate::table::find("create").unwrap().flags,
            &[
                "-b",
                "bun",
                "--pid-file=p",
                "--preserve-fds",
                "2",
                "--no-pivot",
                "id",
            ]
            .map(String::from),
        )
        .unwrap();
        let o = create_options(&ctx(false, None), &m).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(o.bundle, cwd.join("bun"));
        assert_eq!(o.pid_file, Some(cwd.join("p")));
        assert_eq!(o.preserve_fds, 2);
        assert!(o.no_pivot && !o.no_new_keyring && o.console == libcontainer::Console::Proxy);
        let m = crate::args::parse(
            crate::table::find("create").unwrap().flags,
            &["--preserve-fds=x", "id"].map(String::from),
        )
        .unwrap();
        assert_eq!(
            create_options(&ctx(false, None), &m)
                .unwrap_err()
                .to_string(),
            "invalid value \"x\" for flag -preserve-fds: parse error"
        );
        let m = crate::args::parse(
            crate::table::find("create").unwrap().flags,
            &["-b", "/abs/b", "id"].map(String::from),
        )
        .unwrap();
        assert_eq!(
            create_options(&ctx(false, None), &m).unwrap().bundle,
            PathBuf::from("/abs/b")
        );
    }
}
