//! The commands: their flag tables (which both the parser and `--help` use) and bodies, which
//! only turn arguments into libcontainer calls and print the results.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use libcontainer::{parse_signal, CreateOptions, RunOutcome, Runtime};

use crate::args::{Flag, Matches};
use crate::output;

/// What every command gets: the runtime over `--root` and the global options it may need.
pub struct Ctx {
    pub runtime: Runtime,
    pub systemd_cgroup: bool,
    pub cgroup_manager: Option<String>,
    pub rootless: String,
}

type Body = fn(&Ctx, &Matches) -> anyhow::Result<i32>;

/// One subcommand.
pub struct Command {
    pub name: &'static str,
    /// The arguments after the options, for USAGE.
    pub usage: &'static str,
    pub summary: &'static str,
    pub flags: &'static [Flag],
    /// Least and most positional arguments.
    pub nargs: (usize, usize),
    /// `None`: a command of a later issue, refused with "not implemented yet".
    pub body: Option<Body>,
    /// Move flags given after the arguments in front of them first, as urfave/cli does for
    /// every runc command but `exec` (whose process arguments must stay as they are).
    pub reorder: bool,
}

const CREATE_FLAGS: &[Flag] = &[
    Flag::value("bundle", Some("b"), Some("."), "path to the root of the bundle directory, defaults to the current directory"),
    Flag::value("console-socket", None, None, "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag::value("pid-file", None, None, "specify the file to write the process id to"),
    Flag::boolean("no-pivot", None, "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    Flag::boolean("no-new-keyring", None, "do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"),
    Flag::value("preserve-fds", None, Some("0"), "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
];

const RUN_FLAGS: &[Flag] = &[
    Flag::value("bundle", Some("b"), Some("."), "path to the root of the bundle directory, defaults to the current directory"),
    Flag::value("console-socket", None, None, "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag::boolean("detach", Some("d"), "detach from the container's process"),
    Flag::value("pid-file", None, None, "specify the file to write the process id to"),
    Flag::boolean("no-pivot", None, "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    Flag::boolean("no-new-keyring", None, "do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"),
    Flag::value("preserve-fds", None, Some("0"), "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
];

const LIST_FLAGS: &[Flag] = &[
    Flag::value(
        "format",
        Some("f"),
        Some("table"),
        "select one of: table or json",
    ),
    Flag::boolean("quiet", Some("q"), "display only container IDs"),
];

const KILL_FLAGS: &[Flag] = &[Flag::boolean(
    "all",
    Some("a"),
    "send the specified signal to all processes inside the container",
)];

const DELETE_FLAGS: &[Flag] = &[Flag::boolean(
    "force",
    Some("f"),
    "Forcibly deletes the container if it is still running (uses SIGKILL)",
)];

const SPEC_FLAGS: &[Flag] = &[
    Flag::value(
        "bundle",
        Some("b"),
        None,
        "path to the root of the bundle directory",
    ),
    Flag::boolean(
        "rootless",
        None,
        "generate a configuration for a rootless container",
    ),
];

const fn later(name: &'static str, usage: &'static str, summary: &'static str) -> Command {
    Command {
        name,
        usage,
        summary,
        flags: &[],
        nargs: (0, usize::MAX),
        body: None,
        // Not parsed yet; runc reorders all of them but exec.
        reorder: false,
    }
}

/// Every command, in runc's order.
pub const COMMANDS: &[Command] = &[
    later(
        "checkpoint",
        "<container-id>",
        "checkpoint a running container",
    ),
    Command {
        name: "create",
        usage: "<container-id>",
        summary: "create a container",
        flags: CREATE_FLAGS,
        nargs: (1, 1),
        body: Some(create),
        reorder: true,
    },
    Command {
        name: "delete",
        usage: "<container-id>",
        summary: "delete any resources held by the container often used with detached container",
        flags: DELETE_FLAGS,
        nargs: (1, 1),
        body: Some(delete),
        reorder: true,
    },
    later(
        "events",
        "<container-id>",
        "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    ),
    later(
        "exec",
        "<container-id> <command> [command options]",
        "execute new process inside the container",
    ),
    Command {
        name: "kill",
        usage: "<container-id> [signal]",
        summary:
            "kill sends the specified signal (default: SIGTERM) to the container's init process",
        flags: KILL_FLAGS,
        nargs: (1, 2),
        body: Some(kill),
        reorder: true,
    },
    Command {
        name: "list",
        usage: "",
        summary: "lists containers started by husk with the given root",
        flags: LIST_FLAGS,
        nargs: (0, 0),
        body: Some(list),
        reorder: true,
    },
    later(
        "pause",
        "<container-id>",
        "pause suspends all processes inside the container",
    ),
    later(
        "ps",
        "<container-id> [ps options]",
        "ps displays the processes running inside a container",
    ),
    later(
        "restore",
        "<container-id>",
        "restore a container from a previous checkpoint",
    ),
    later(
        "resume",
        "<container-id>",
        "resumes all processes that have been previously paused",
    ),
    Command {
        name: "run",
        usage: "<container-id>",
        summary: "create and run a container",
        flags: RUN_FLAGS,
        nargs: (1, 1),
        body: Some(run),
        reorder: true,
    },
    Command {
        name: "spec",
        usage: "",
        summary: "create a new specification file",
        flags: SPEC_FLAGS,
        nargs: (0, 0),
        body: Some(spec),
        reorder: true,
    },
    Command {
        name: "start",
        usage: "<container-id>",
        summary: "executes the user defined process in a created container",
        flags: &[],
        nargs: (1, 1),
        body: Some(start),
        reorder: true,
    },
    Command {
        name: "state",
        usage: "<container-id>",
        summary: "output the state of a container",
        flags: &[],
        nargs: (1, 1),
        body: Some(state),
        reorder: true,
    },
    later(
        "update",
        "<container-id>",
        "update container resource constraints",
    ),
    later("features", "", "show the enabled features"),
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

impl Command {
    /// runc's wrong-count messages.
    pub fn check_nargs(&self, n: usize) -> Result<(), String> {
        let (min, max) = self.nargs;
        let name = self.name;
        if min == max && n != min {
            Err(format!("husk: {name:?} requires exactly {min} argument(s)"))
        } else if n < min {
            Err(format!(
                "husk: {name:?} requires a minimum of {min} argument(s)"
            ))
        } else if n > max {
            Err(format!(
                "husk: {name:?} requires a maximum of {max} argument(s)"
            ))
        } else {
            Ok(())
        }
    }

    /// `husk CMD --help`.
    pub fn help(&self) -> String {
        let mut h = format!(
            "NAME:\n   husk {} - {}\n\nUSAGE:\n   husk {}",
            self.name, self.summary, self.name
        );
        if !self.flags.is_empty() {
            h.push_str(" [command options]");
        }
        if !self.usage.is_empty() {
            h.push(' ');
            h.push_str(self.usage);
        }
        h.push('\n');
        if self.body.is_none() {
            h.push_str("\nThis command is not implemented yet.\n");
        }
        if !self.flags.is_empty() {
            h.push_str("\nOPTIONS:\n");
            h.push_str(&crate::args::options_help(self.flags));
        }
        h
    }
}

/// A relative path made absolute against the current directory (not canonicalized).
fn absolute(p: &str) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving path {p:?}"))
}

fn refuse_cgroup_options(ctx: &Ctx) -> anyhow::Result<()> {
    if ctx.systemd_cgroup || ctx.cgroup_manager.as_deref() == Some("systemd") {
        bail!("the systemd cgroup manager is not supported yet: use --cgroup-manager cgroupfs");
    }
    if ctx.cgroup_manager.as_deref() == Some("disabled") {
        bail!("--cgroup-manager disabled is not supported yet");
    }
    if ctx.rootless == "true" {
        bail!("--rootless true is not supported yet: use auto or false");
    }
    Ok(())
}

fn create_options(m: &Matches) -> anyhow::Result<CreateOptions> {
    let mut opts = CreateOptions::new(absolute(m.value("bundle").unwrap_or("."))?);
    opts.console_socket = m.value("console-socket").map(absolute).transpose()?;
    opts.pid_file = m.value("pid-file").map(absolute).transpose()?;
    if let Some(n) = m.value("preserve-fds") {
        opts.preserve_fds = n.parse().map_err(|_| {
            anyhow::anyhow!("invalid value {n:?} for flag -preserve-fds: parse error")
        })?;
    }
    opts.no_pivot = m.flag("no-pivot");
    opts.no_new_keyring = m.flag("no-new-keyring");
    Ok(opts)
}

fn create(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    refuse_cgroup_options(ctx)?;
    let opts = create_options(m)?;
    ctx.runtime.create(&m.args[0], &opts)?;
    Ok(0)
}

fn run(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    refuse_cgroup_options(ctx)?;
    let opts = create_options(m)?;
    match ctx.runtime.run(&m.args[0], &opts, m.flag("detach"))? {
        RunOutcome::Detached => Ok(0),
        RunOutcome::Exited(code) => Ok(code),
    }
}

fn start(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    ctx.runtime.container(&m.args[0])?.start()?;
    Ok(0)
}

fn state(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let state = ctx.runtime.container(&m.args[0])?.state()?;
    print(&output::state_json(&state)?)?;
    Ok(0)
}

fn list(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let format = m.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        bail!("invalid format option");
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

fn kill(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    // As runc: the container first, then the signal.
    let container = ctx.runtime.container(&m.args[0])?;
    let signal = parse_signal(m.args.get(1).map(String::as_str).unwrap_or("SIGTERM"))?;
    container.kill(signal, m.flag("all"))?;
    Ok(0)
}

fn delete(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    ctx.runtime.container(&m.args[0])?.delete(m.flag("force"))?;
    Ok(0)
}

fn spec(_ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
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

/// The global help's COMMANDS block.
pub fn commands_help() -> String {
    let width = COMMANDS
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max("help, h".len());
    let mut h = String::new();
    for c in COMMANDS {
        let note = if c.body.is_none() {
            " (not implemented yet)"
        } else {
            ""
        };
        h.push_str(&format!("   {:width$}  {}{note}\n", c.name, c.summary));
    }
    h.push_str(&format!(
        "   {:width$}  Shows a list of commands or help for one command\n",
        "help, h"
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nargs_messages() {
        let create = find("create").unwrap();
        assert_eq!(
            create.check_nargs(0).unwrap_err(),
            "husk: \"create\" requires exactly 1 argument(s)"
        );
        assert_eq!(
            create.check_nargs(2).unwrap_err(),
            "husk: \"create\" requires exactly 1 argument(s)"
        );
        assert!(create.check_nargs(1).is_ok());
        let kill = find("kill").unwrap();
        assert_eq!(
            kill.check_nargs(0).unwrap_err(),
            "husk: \"kill\" requires a minimum of 1 argument(s)"
        );
        assert_eq!(
            kill.check_nargs(3).unwrap_err(),
            "husk: \"kill\" requires a maximum of 2 argument(s)"
        );
        assert!(kill.check_nargs(2).is_ok());
        assert_eq!(
            find("list").unwrap().check_nargs(1).unwrap_err(),
            "husk: \"list\" requires exactly 0 argument(s)"
        );
    }

    #[test]
    fn help_comes_from_the_table() {
        let h = find("create").unwrap().help();
        for f in CREATE_FLAGS {
            assert!(h.contains(&f.synopsis()), "{h}");
        }
        assert!(h.contains("--bundle value, -b value"));
        assert!(find("run").unwrap().help().contains("--detach, -d"));
        assert!(find("exec").unwrap().help().contains("not implemented yet"));
    }

    #[test]
    fn create_options_absolute() {
        let m = crate::args::parse(
            CREATE_FLAGS,
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
        let o = create_options(&m).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(o.bundle, cwd.join("bun"));
        assert_eq!(o.pid_file, Some(cwd.join("p")));
        assert_eq!(o.preserve_fds, 2);
        assert!(o.no_pivot && !o.no_new_keyring && o.console_socket.is_none());
        let m = crate::args::parse(CREATE_FLAGS, &["--preserve-fds=x", "id"].map(String::from))
            .unwrap();
        assert_eq!(
            create_options(&m).unwrap_err().to_string(),
            "invalid value \"x\" for flag -preserve-fds: parse error"
        );
        let m =
            crate::args::parse(CREATE_FLAGS, &["-b", "/abs/b", "id"].map(String::from)).unwrap();
        assert_eq!(create_options(&m).unwrap().bundle, PathBuf::from("/abs/b"));
    }
}
