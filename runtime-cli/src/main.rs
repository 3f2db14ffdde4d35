//! husk: runc's command line over libcontainer. It parses, calls the library and prints; every
//! error is reported once, as the last log line.

mod args;
mod commands;
mod criu;
mod exec;
mod fds;
mod log;
mod ops;
mod output;
mod table;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::anyhow;
use args::{Flag, Matches, ParseError};
use commands::Ctx;
use log::{Format, Logger};
use table::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMIT: &str = env!("HUSK_COMMIT");
const DEFAULT_ROOT: &str = "/run/husk";

const GLOBAL_FLAGS: &[Flag] = &[
    Flag::boolean("debug", None, "enable debug logging"),
    Flag::value(
        "log",
        None,
        None,
        "set the log file to write husk logs to (default is '/dev/stderr')",
    ),
    Flag::value(
        "log-format",
        None,
        Some("text"),
        "set the log format ('text' (default), or 'json')",
    ),
    Flag::value(
        "root",
        None,
        Some(DEFAULT_ROOT),
        "root directory for storage of container state (this should be located in tmpfs)",
    ),
    Flag::value(
        "criu",
        None,
        None,
        "path to the criu binary used for checkpoint and restore (default: criu on $PATH)",
    ),
    Flag::boolean(
        "systemd-cgroup",
        None,
        "manage the cgroup as a transient systemd scope (linux.cgroupsPath is slice:prefix:name)",
    ),
    Flag::value(
        "cgroup-manager",
        None,
        Some("cgroupfs"),
        "'cgroupfs', 'systemd' or 'disabled' (no cgroup at all)",
    ),
    Flag::value(
        "rootless",
        None,
        Some("auto"),
        "ignore cgroup permission errors ('true', 'false', or 'auto'; true is not supported yet)",
    ),
    Flag::value(
        "resource-view",
        None,
        Some("off"),
        "containers see /proc and /sys computed from their own cgroup ('on', 'off' or a list such as 'meminfo,cpuinfo,cpu'); the io.github.husk.resource-view annotation overrides it",
    ),
    Flag::boolean("help", Some("h"), "show help"),
    Flag::boolean("version", Some("v"), "print the version"),
];

/// How a command failed: wrong usage (help is printed too) or an error.
enum Failure {
    Usage(Option<&'static Command>, String),
    Error(anyhow::Error),
    /// An error with its own exit status.
    Exit(i32, String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Error(e)
    }
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Only when fds are to be preserved: the listing costs every other command for nothing.
    if argv
        .iter()
        .any(|a| a.trim_start_matches('-').starts_with("preserve-fds"))
    {
        fds::note_inherited();
    }
    std::process::exit(husk(&argv));
}

fn version() -> String {
    format!(
        "husk version {VERSION}\ncommit: {COMMIT}\nspec: {}\n",
        libcontainer::OCI_VERSION
    )
}

fn global_help() -> String {
    format!(
        "NAME:\n   husk - Open Container Initiative runtime\n\n\
         husk is a command line client for running applications packaged according to the\n\
         Open Container Initiative (OCI) format, with runc's command line.\n\n\
         USAGE:\n   husk [global options] command [command options] [arguments...]\n\n\
         VERSION:\n   {}\n\n\
         COMMANDS:\n{}\n\
         GLOBAL OPTIONS:\n{}",
        version().trim_end().replace('\n', "\n   "),
        table::commands_help(),
        args::options_help(GLOBAL_FLAGS)
    )
}

fn husk(argv: &[String]) -> i32 {
    let g = match args::parse(GLOBAL_FLAGS, argv) {
        Ok(g) => g,
        Err(ParseError::Help) => return print_or_fail(&global_help()),
        Err(e) => {
            Logger::stderr(Format::Text, false).error(&e.to_string());
            let _ = commands::print(&format!("Incorrect Usage. {e}\n\n{}", global_help()));
            return 1;
        }
    };
    if g.flag("version") {
        return print_or_fail(&version());
    }
    if g.flag("help") {
        return print_or_fail(&global_help());
    }
    let debug = g.flag("debug");
    let format = match Format::parse(g.value("log-format").unwrap_or("text")) {
        Ok(f) => f,
        Err(e) => {
            Logger::stderr(Format::Text, debug).error(&e.to_string());
            return 1;
        }
    };
    let logger = match g.value("log") {
        Some(p) if !p.is_empty() && p != "/dev/stderr" => {
            match Logger::file(Path::new(p), format, debug) {
                Ok(l) => l,
                Err(e) => {
                    Logger::stderr(format, debug).error(&log::error_message(&e));
                    return 1;
                }
            }
        }
        _ => Logger::stderr(format, debug),
    };

    let logger: &'static Logger = LOGGER.get_or_init(|| logger);
    let started = Instant::now();
    let result = dispatch(&g, argv);
    if logger.debug_enabled() {
        logger.debug(&format!("command took {:?}", started.elapsed()));
    }
    match result {
        Ok(code) => code,
        Err(Failure::Usage(cmd, msg)) => {
            logger.error(&msg);
            let help = cmd.map(Command::help).unwrap_or_else(global_help);
            let detail = if msg.starts_with("husk: ") {
                ".".to_string()
            } else {
                format!(": {msg}")
            };
            let _ = commands::print(&format!("Incorrect Usage{detail}\n\n{help}"));
            1
        }
        Err(Failure::Error(e)) => {
            logger.error(&log::error_message(&e));
            1
        }
        Err(Failure::Exit(code, msg)) => {
            logger.error(&msg);
            code
        }
    }
}

fn print_or_fail(text: &str) -> i32 {
    match commands::print(text) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// argv for the debug line, with arguments that need it quoted.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=./:@+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dispatch(g: &Matches, argv: &[String]) -> Result<i32, Failure> {
    let rootless = g.value("rootless").unwrap_or("auto");
    if !matches!(rootless, "true" | "false" | "auto") {
        return Err(
            anyhow!("invalid --rootless value {rootless:?}: want true, false or auto").into(),
        );
    }
    let resource_view = match g.value("resource-view") {
        None => None,
        Some(v) => Some(
            libcontainer::ResourceView::parse(v).map_err(|e| anyhow!("--resource-view: {e}"))?,
        ),
    };
    let cgroup_manager = g.value("cgroup-manager");
    if let Some(m) = cgroup_manager {
        if !matches!(m, "cgroupfs" | "systemd" | "disabled") {
            return Err(anyhow!(
                "invalid --cgroup-manager value {m:?}: want cgroupfs, systemd or disabled"
            )
            .into());
        }
    }
    let Some(name) = g.args.first() else {
        commands::print(&global_help())?;
        return Ok(0);
    };
    let rest = &g.args[1..];
    if name == "help" || name == "h" {
        let text = match rest.first() {
            None => global_help(),
            Some(c) => match table::find(c) {
                Some(cmd) => cmd.help(),
                None => return Err(Failure::Exit(3, format!("No help topic for '{c}'"))),
            },
        };
        commands::print(&text)?;
        return Ok(0);
    }
    let Some(cmd) = table::find(name) else {
        // runc's wording and exit status (urfave/cli's), which scripts see.
        return Err(Failure::Exit(3, format!("No help topic for '{name}'")));
    };
    // The commands that put forks of this process inside a container: first make
    // /proc/self/exe a read-only mount of this binary (CVE-2019-5736; re-executes once).
    if matches!(cmd.name, "create" | "run" | "exec")
        && !rest
            .iter()
            .any(|a| matches!(a.as_str(), "-h" | "--help" | "-help"))
    {
        libcontainer::seal_exe().map_err(anyhow::Error::from)?;
    }
    // After the re-execution of the sealing above, so the line is written once.
    if let Some(l) = LOGGER.get().filter(|l| l.debug_enabled()) {
        l.debug(&format!("husk {}", shell_words(argv)));
    }
    let Some(body) = cmd.body else {
        if matches!(
            rest.first().map(String::as_str),
            Some("-h" | "--help" | "-help")
        ) {
            commands::print(&cmd.help())?;
            return Ok(0);
        }
        return Err(anyhow!("{name}: not implemented yet").into());
    };
    let reordered;
    let rest = if cmd.reorder {
        reordered = args::reorder(cmd.flags, rest);
        &reordered[..]
    } else {
        rest
    };
    let m = match args::parse(cmd.flags, rest) {
        Ok(m) => m,
        Err(ParseError::Help) => {
            commands::print(&cmd.help())?;
            return Ok(0);
        }
        Err(e) => return Err(Failure::Usage(Some(cmd), e.to_string())),
    };
    cmd.check_nargs(m.args.len())
        .map_err(|msg| Failure::Usage(Some(cmd), msg))?;
    let root = match g.value("root") {
        Some(r) => {
            std::path::absolute(r).map_err(|e| anyhow!("--root {r:?}: {}", log::go_io(&e)))?
        }
        None => default_root(),
    };
    let ctx = Ctx {
        // The library's warnings become log lines of this run's logger.
        runtime: libcontainer::Runtime::new(root).with_handler(|n| {
            if let (libcontainer::Notice::Warning { msg, .. }, Some(l)) = (n, LOGGER.get()) {
                l.warn(msg);
            }
        }),
        systemd_cgroup: g.flag("systemd-cgroup"),
        cgroup_manager: cgroup_manager.map(str::to_string),
        rootless: rootless.to_string(),
        root_given: g.value("root").is_some(),
        resource_view,
        criu: g
            .value("criu")
            .filter(|c| !c.is_empty())
            .map(std::path::absolute)
            .transpose()
            .map_err(|e| anyhow!("--criu: {}", log::go_io(&e)))?,
    };
    let unprivileged_default = ctx.runtime.root() == Path::new(DEFAULT_ROOT) && !ctx.root_given;
    body(&ctx, &m).map_err(|e| {
        // As runc, an unprivileged user without XDG_RUNTIME_DIR gets /run/husk, which it
        // cannot use: say what to do instead.
        let denied = e.chain().any(|c| {
            c.downcast_ref::<libcontainer::Error>()
                .and_then(|l| l.raw_os_error())
                .is_some_and(|n| n == libc::EACCES)
        });
        if unprivileged_default && denied && honor_xdg_runtime_dir() {
            Failure::Error(anyhow!(
                "{e:#} ({DEFAULT_ROOT} is root's: an unprivileged user sets XDG_RUNTIME_DIR or \
                 gives --root)"
            ))
        } else {
            Failure::Error(e)
        }
    })
}

/// Like runc: `$XDG_RUNTIME_DIR/husk` for an unprivileged user (or for "root" in a user
/// namespace an unprivileged user made, unless $USER is root), else /run/husk.
fn default_root() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        if honor_xdg_runtime_dir() {
            return PathBuf::from(xdg).join("husk");
        }
    }
    PathBuf::from(DEFAULT_ROOT)
}

fn honor_xdg_runtime_dir() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        .unwrap_or("0");
    if euid != "0" {
        return true;
    }
    // Root, but in a user namespace (not the initial one's identity map)?
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let initial = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    !initial && std::env::var("USER").map_or(true, |u| u != "root")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals(a: &[&str]) -> Matches {
        args::parse(
            GLOBAL_FLAGS,
            &a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn global_flags_stop_at_command() {
        let g = globals(&[
            "--root",
            "/r",
            "-log=/l",
            "--log-format",
            "json",
            "--debug",
            "state",
            "--xyz",
            "id",
        ]);
        assert_eq!(g.value("root"), Some("/r"));
        assert_eq!(g.value("log"), Some("/l"));
        assert_eq!(g.value("log-format"), Some("json"));
        assert!(g.flag("debug"));
        assert_eq!(g.args, ["state", "--xyz", "id"]);
        assert!(globals(&["-v"]).flag("version"));
        assert!(globals(&["--systemd-cgroup=false", "list"]).is_set("systemd-cgroup"));
        assert!(!globals(&["--systemd-cgroup=false", "list"]).flag("systemd-cgroup"));
    }

    #[test]
    fn version_layout() {
        let v = version();
        let lines: Vec<&str> = v.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "husk version 0.1.0");
        assert!(lines[1].starts_with("commit: "));
        assert_eq!(lines[2], "spec: 1.3.0");
    }
}
