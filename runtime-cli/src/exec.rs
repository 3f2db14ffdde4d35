//! `husk exec`: runc's flags to `libcontainer::ExecOptions`.

use anyhow::bail;
use libcontainer::{ExecOptions, ExecOutcome};

use crate::args::{Flag, Matches};
use crate::commands::Ctx;

pub const EXEC_FLAGS: &[Flag] = &[
    crate::table::CONSOLE_SOCKET,
    crate::table::PIDFD_SOCKET,
    Flag::value(
        "cwd",
        None,
        None,
        "current working directory in the container",
    ),
    Flag::value("env", Some("e"), None, "set environment variables"),
    Flag::boolean("tty", Some("t"), "allocate a pseudo-TTY"),
    Flag::value("user", Some("u"), None, "UID (format: <uid>[:<gid>])"),
    Flag::value("additional-gids", Some("g"), None, "additional gids"),
    Flag::value("process", Some("p"), None, "path to the process.json"),
    crate::table::DETACH,
    crate::table::PID_FILE,
    Flag::value(
        "process-label",
        None,
        None,
        "set the asm process label for the process commonly used with selinux",
    ),
    Flag::value(
        "apparmor",
        None,
        None,
        "set the apparmor profile for the process",
    ),
    Flag::boolean(
        "no-new-privs",
        None,
        "set the no new privileges value for the process",
    ),
    Flag::value(
        "cap",
        Some("c"),
        None,
        "add a capability to the bounding set for the process",
    ),
    crate::table::PRESERVE_FDS,
    Flag::value(
        "cgroup",
        None,
        None,
        "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.",
    ),
    Flag::boolean("ignore-paused", None, "allow exec in a paused container"),
];

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> anyhow::Result<T> {
    v.parse()
        .map_err(|_| anyhow::anyhow!("invalid value {v:?} for flag -{flag}: parse error"))
}

/// The options of one `exec` command line.
pub(crate) fn options(m: &Matches) -> anyhow::Result<ExecOptions> {
    let mut o = ExecOptions::new(m.args[1..].iter().cloned());
    if let Some(p) = m.value("process") {
        let text =
            std::fs::read(p).map_err(|e| anyhow::anyhow!("open {p}: {}", crate::log::go_io(&e)))?;
        let (process, warnings) = libcontainer::parse_process(&text).map_err(|e| match e {
            libcontainer::Error::Config { msg, .. } => anyhow::anyhow!("{p}: {msg}"),
            e => e.into(),
        })?;
        for w in warnings {
            if let Some(l) = crate::LOGGER.get() {
                l.warn(&w);
            }
        }
        o.process = Some(process);
    } else if o.args.is_empty() {
        bail!("exec args cannot be empty");
    }
    o.env = m.values("env").to_vec();
    o.cwd = m.value("cwd").map(Into::into);
    if let Some(u) = m.value("user") {
        // runc's strconv.Atoi, and its wording.
        let atoi = |what: &str, v: &str| {
            v.parse::<i64>()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("bad {what}: strconv.Atoi: parsing {v:?}: invalid syntax")
                })
        };
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => {
                let gid = atoi("gid", b)?;
                (atoi("uid", a)?, Some(gid))
            }
            None => (atoi("uid", u)?, None),
        };
        o.user = Some((uid, gid));
    }
    // One gid per flag, as runc's Int64Slice flag takes them (no comma lists).
    for g in m.values("additional-gids") {
        let n: i64 = g.parse()?;
        let gid = u32::try_from(n)
            .map_err(|_| anyhow::anyhow!("additional-gids must be a positive number {n}"))?;
        o.additional_gids.push(gid);
    }
    o.caps = m.values("cap").to_vec();
    o.no_new_privs = m.flag("no-new-privs");
    o.tty = m.flag("tty");
    o.apparmor = m.value("apparmor").map(Into::into);
    o.process_label = m.value("process-label").map(Into::into);
    // No socket: runc copies the pty to its own stdio while it waits (refused with -d).
    o.console = match m.value("console-socket") {
        Some(s) => libcontainer::Console::Socket(std::path::absolute(s)?),
        None => libcontainer::Console::Proxy,
    };
    o.pidfd_socket = m
        .value("pidfd-socket")
        .map(std::path::absolute)
        .transpose()?;
    o.detach = m.flag("detach");
    o.pid_file = m.value("pid-file").map(std::path::absolute).transpose()?;
    if let Some(n) = m.value("preserve-fds") {
        o.preserve_fds = number("preserve-fds", n)?;
        crate::fds::check_preserved(o.preserve_fds)?;
    }
    o.ignore_paused = m.flag("ignore-paused");
    o.cgroup = m.value("cgroup").map(Into::into);
    Ok(o)
}

/// Flag values that are not numbers: usage errors (exit 1), as urfave/cli's in runc.
fn check_numbers(m: &Matches) -> anyhow::Result<()> {
    for g in m.values("additional-gids") {
        g.parse::<i64>().map_err(|_| {
            anyhow::anyhow!(
                "invalid value {g:?} for flag -additional-gids: strconv.ParseInt: parsing {g:?}: invalid syntax"
            )
        })?;
    }
    if let Some(n) = m.value("preserve-fds") {
        number::<u32>("preserve-fds", n)?;
    }
    Ok(())
}

pub(crate) fn exec(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    check_numbers(m)?;
    match exec_inner(ctx, m) {
        Ok(status) => Ok(status),
        // runc: a failing exec exits 255 (a process's own status is 0..=255 too, but callers
        // tell them apart by the message), its error prefixed "exec failed: ".
        Err(e) => match crate::LOGGER.get() {
            Some(l) => {
                l.error(&format!("exec failed: {}", crate::log::error_message(&e)));
                Ok(255)
            }
            None => Err(e),
        },
    }
}

fn exec_inner(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let o = options(m)?;
    match ctx.runtime.container(&m.args[0])?.exec(&o)? {
        ExecOutcome::Detached(_) => Ok(0),
        ExecOutcome::Exited(status) => Ok(status),
    }
}
