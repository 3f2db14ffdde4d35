//! The command table: each command's flags (which both the parser and `--help` use), argument
//! count and body.

use crate::args::{Flag, Matches};
use crate::commands::{create, delete, features, kill, list, run, spec, start, state, Ctx};
use crate::ops::{events, pause, ps, resume, update};

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

const BUNDLE: Flag = Flag::value(
    "bundle",
    Some("b"),
    None, // "." is said in the text, as runc's help does
    "path to the root of the bundle directory, defaults to the current directory",
);
pub const CONSOLE_SOCKET: Flag = Flag::value(
    "console-socket",
    None,
    None,
    concat!(
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master ",
        "end of the console's pseudoterminal"
    ),
);
pub const PID_FILE: Flag = Flag::value(
    "pid-file",
    None,
    None,
    "specify the file to write the process id to",
);
const NO_PIVOT: Flag = Flag::boolean(
    "no-pivot",
    None,
    concat!(
        "do not use pivot root to jail process inside rootfs.  This should be used whenever the ",
        "rootfs is on top of a ramdisk"
    ),
);
const NO_NEW_KEYRING: Flag = Flag::boolean(
    "no-new-keyring",
    None,
    concat!(
        "do not create a new session keyring for the container.  This will cause the container ",
        "to inherit the calling processes session key"
    ),
);
pub const PRESERVE_FDS: Flag = Flag::value(
    "preserve-fds",
    None,
    Some("0"),
    "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)",
);
pub const PIDFD_SOCKET: Flag = Flag::value(
    "pidfd-socket",
    None,
    None,
    "path to an AF_UNIX socket which will receive a file descriptor referencing the init process",
);
pub const DETACH: Flag = Flag::boolean("detach", Some("d"), "detach from the container's process");

const CREATE_FLAGS: &[Flag] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    PID_FILE,
    NO_PIVOT,
    NO_NEW_KEYRING,
    PRESERVE_FDS,
];

const RUN_FLAGS: &[Flag] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    DETACH,
    Flag::boolean("keep", None, "do not delete the container after it exits"),
    PID_FILE,
    NO_SUBREAPER,
    NO_PIVOT,
    NO_NEW_KEYRING,
    PRESERVE_FDS,
];

const NO_SUBREAPER: Flag = Flag::boolean(
    "no-subreaper",
    None,
    "disable the use of the subreaper used to reap reparented processes",
);

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

const PS_FLAGS: &[Flag] = &[Flag::value(
    "format",
    Some("f"),
    Some("table"),
    "select one of: table or json",
)];

const EVENTS_FLAGS: &[Flag] = &[
    Flag::value(
        "interval",
        None,
        Some("5s"),
        "set the stats collection interval",
    ),
    Flag::boolean("stats", None, "display the container's stats then exit"),
];

const UPDATE_FLAGS: &[Flag] = &[
    Flag::value(
        "resources",
        Some("r"),
        None,
        concat!(
            "path to the file containing the resources to update or '-' to read from the ",
            "standard input (linux.resources JSON; all other options are then ignored)"
        ),
    ),
    Flag::value(
        "blkio-weight",
        None,
        Some("0"),
        "Specifies per cgroup weight, range is from 10 to 1000",
    ),
    Flag::value(
        "cpu-period",
        None,
        None,
        "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    Flag::value(
        "cpu-quota",
        None,
        None,
        "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    Flag::value(
        "cpu-share",
        None,
        None,
        "CPU shares (relative weight vs. other containers)",
    ),
    Flag::value(
        "cpu-shares",
        None,
        None,
        "CPU shares (relative weight vs. other containers); same as --cpu-share",
    ),
    Flag::value(
        "cpu-rt-period",
        None,
        None,
        "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    Flag::value(
        "cpu-rt-runtime",
        None,
        None,
        "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    Flag::value(
        "cpu-burst",
        None,
        None,
        "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period",
    ),
    Flag::value(
        "cpu-idle",
        None,
        None,
        "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE",
    ),
    Flag::value("cpuset-cpus", None, None, "CPU(s) to use"),
    Flag::value("cpuset-mems", None, None, "Memory node(s) to use"),
    Flag::value(
        "kernel-memory",
        None,
        None,
        "Kernel memory limit (in bytes); deprecated",
    ),
    Flag::value(
        "kernel-memory-tcp",
        None,
        None,
        "Kernel memory limit (in bytes) for tcp buffer; deprecated",
    ),
    Flag::value("memory", None, None, "Memory limit (in bytes)"),
    Flag::value(
        "memory-reservation",
        None,
        None,
        "Memory reservation or soft_limit (in bytes)",
    ),
    Flag::value(
        "memory-swap",
        None,
        None,
        "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
    ),
    Flag::value(
        "pids-limit",
        None,
        Some("0"),
        "Maximum number of pids allowed in the container",
    ),
    Flag::value(
        "l3-cache-schema",
        None,
        None,
        "The string of Intel RDT/CAT L3 cache schema (not supported)",
    ),
    Flag::value(
        "mem-bw-schema",
        None,
        None,
        "The string of Intel RDT/MBA memory bandwidth schema (not supported)",
    ),
];

/// Every command, in runc's order.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "checkpoint",
        usage: "<container-id>",
        summary: "checkpoint a running container",
        flags: crate::criu::CHECKPOINT_FLAGS,
        nargs: (1, 1),
        body: Some(crate::criu::checkpoint),
        reorder: true,
    },
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
    Command {
        name: "events",
        usage: "<container-id>",
        summary:
            "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
        flags: EVENTS_FLAGS,
        nargs: (1, 1),
        body: Some(events),
        reorder: true,
    },
    Command {
        name: "exec",
        usage: "<container-id> <command> [command options]  || -p process.json <container-id>",
        summary: "execute new process inside the container",
        flags: crate::exec::EXEC_FLAGS,
        nargs: (1, usize::MAX),
        body: Some(crate::exec::exec),
        // As runc (SkipArgReorder): options after the command belong to it.
        reorder: false,
    },
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
    Command {
        name: "pause",
        usage: "<container-id>",
        summary: "pause suspends all processes inside the container",
        flags: &[],
        nargs: (1, 1),
        body: Some(pause),
        reorder: true,
    },
    Command {
        name: "ps",
        usage: "<container-id> [ps options]",
        summary: "ps displays the processes running inside a container",
        flags: PS_FLAGS,
        nargs: (1, usize::MAX),
        body: Some(ps),
        // As runc (SkipArgReorder): options after the id belong to ps.
        reorder: false,
    },
    Command {
        name: "restore",
        usage: "<container-id>",
        summary: "restore a container from a previous checkpoint",
        flags: crate::criu::RESTORE_FLAGS,
        nargs: (1, 1),
        body: Some(crate::criu::restore),
        reorder: true,
    },
    Command {
        name: "resume",
        usage: "<container-id>",
        summary: "resumes all processes that have been previously paused",
        flags: &[],
        nargs: (1, 1),
        body: Some(resume),
        reorder: true,
    },
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
    Command {
        name: "update",
        usage: "<container-id>",
        summary: "update container resource constraints",
        flags: UPDATE_FLAGS,
        nargs: (1, 1),
        body: Some(update),
        reorder: true,
    },
    Command {
        name: "features",
        usage: "",
        summary: "show the enabled features",
        flags: &[],
        nargs: (0, 0),
        body: Some(features),
        reorder: true,
    },
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
        assert!(find("exec").unwrap().help().contains("--ignore-paused"));
    }
}
