//! A small command-line parser with Go `flag` (urfave/cli v1) semantics, as runc has:
//!
//! - a flag is `-name` or `--name`; a value is `-name=value` or `-name value` (the next argument
//!   is taken whatever it looks like);
//! - a boolean is `-flag` or `-flag=true|false` (Go's ParseBool spellings); it never takes the
//!   next argument;
//! - parsing stops at the first positional argument, or after `--` (which is dropped), or at a
//!   lone `-`, so `husk exec ID ls -la` keeps `-la`;
//! - short aliases (`-b`) are just more names; `-dt` is not `-d -t`;
//! - repeated flags: the last value wins (`Multi` flags keep all of them).
//!
//! Before that, runc's commands (all but `exec`) let urfave/cli v1 move the command's own flags
//! in front of the positional arguments: see [`reorder`].

use std::collections::HashMap;
use std::fmt;

/// What a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `--flag`, `--flag=true|false`.
    Bool,
    /// `--flag value`, `--flag=value`.
    Value,
    /// Like `Value`, repeatable, every value kept (`--env A=1 --env B=2`; exec's, next issue).
    #[allow(dead_code)]
    Multi,
}

/// One flag of a command (or of the global table).
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// The long name, without dashes; the key of the parsed value.
    pub name: &'static str,
    /// A one-letter alias, without the dash.
    pub short: Option<&'static str>,
    pub kind: Kind,
    /// The default shown in help (the command applies it).
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Flag {
    pub const fn boolean(
        name: &'static str,
        short: Option<&'static str>,
        help: &'static str,
    ) -> Flag {
        Flag {
            name,
            short,
            kind: Kind::Bool,
            default: None,
            help,
        }
    }

    pub const fn value(
        name: &'static str,
        short: Option<&'static str>,
        default: Option<&'static str>,
        help: &'static str,
    ) -> Flag {
        Flag {
            name,
            short,
            kind: Kind::Value,
            default,
            help,
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.name == name || self.short == Some(name)
    }

    /// The left column of help: `--bundle value, -b value`.
    pub fn synopsis(&self) -> String {
        let arg = if self.kind == Kind::Bool {
            ""
        } else {
            " value"
        };
        let mut s = format!("--{}{arg}", self.name);
        if let Some(short) = self.short {
            s.push_str(&format!(", -{short}{arg}"));
        }
        s
    }
}

/// Why the arguments were refused; the texts are Go's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Undefined(String),
    NeedsArgument(String),
    InvalidBool {
        name: String,
        value: String,
    },
    BadSyntax(String),
    /// `-h`/`--help` given where the table has no such flag.
    Help,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Undefined(n) => write!(f, "flag provided but not defined: -{n}"),
            ParseError::NeedsArgument(n) => write!(f, "flag needs an argument: -{n}"),
            ParseError::InvalidBool { name, value } => {
                write!(
                    f,
                    "invalid boolean value {value:?} for -{name}: parse error"
                )
            }
            ParseError::BadSyntax(a) => write!(f, "bad flag syntax: {a}"),
            ParseError::Help => f.write_str("help requested"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The flags found (keyed by long name) and the arguments after them.
#[derive(Clone, Debug, Default)]
pub struct Matches {
    values: HashMap<&'static str, Vec<String>>,
    /// Everything from the first positional argument on.
    pub args: Vec<String>,
}

impl Matches {
    /// A boolean flag's value (false when absent).
    pub fn flag(&self, name: &str) -> bool {
        self.value(name) == Some("true")
    }

    /// A value flag's last value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a `Multi` flag, in order.
    #[allow(dead_code)]
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True if the flag appeared at all.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// Go's strconv.ParseBool.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `args` against `table`.
pub fn parse(table: &[Flag], args: &[String]) -> Result<Matches, ParseError> {
    let mut m = Matches::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a.len() < 2 || !a.starts_with('-') {
            break;
        }
        i += 1;
        let body = if let Some(rest) = a.strip_prefix("--") {
            if rest.is_empty() {
                // "--": the end of the flags.
                m.args = args[i..].to_vec();
                return Ok(m);
            }
            rest
        } else {
            &a[1..]
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(ParseError::BadSyntax(a.clone()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(flag) = table.iter().find(|f| f.matches(name)) else {
            if name == "help" || name == "h" {
                return Err(ParseError::Help);
            }
            return Err(ParseError::Undefined(name.to_string()));
        };
        let value = match (flag.kind, inline) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some(v)) => match parse_bool(v) {
                Some(b) => b.to_string(),
                None => {
                    return Err(ParseError::InvalidBool {
                        name: name.to_string(),
                        value: v.to_string(),
                    })
                }
            },
            (_, Some(v)) => v.to_string(),
            (_, None) => {
                let Some(v) = args.get(i) else {
                    return Err(ParseError::NeedsArgument(name.to_string()));
                };
                i += 1;
                v.clone()
            }
        };
        m.values.entry(flag.name).or_default().push(value);
    }
    m.args = args[i..].to_vec();
    Ok(m)
}

/// urfave/cli v1.22's `reorderArgs`, which runc applies to every command but `exec`: flags of
/// `table` (and `-h`/`--help`) found after positional arguments are moved in front of them, each
/// with the argument that follows it when that one is not a flag of `table` and the flag has no
/// `=` (even a boolean's: `delete foo --force bar` becomes `--force bar foo`). Unknown flags stay
/// where they are, as positional arguments; nothing after `--` moves.
pub fn reorder(table: &[Flag], args: &[String]) -> Vec<String> {
    let is_flag = |arg: &str| {
        if arg == "-" || arg == "--" || !arg.starts_with('-') {
            return false;
        }
        // Go: strings.Replace(arg, "-", "", 2) for "--x", then Replace(arg, "-", "", 1) for "-x".
        let mut a = arg.to_string();
        if a.starts_with("--") {
            a = a.replacen('-', "", 2);
        }
        if a.starts_with('-') {
            a = a.replacen('-', "", 1);
        }
        let name = a.split('=').next().unwrap_or_default();
        name == "help" || name == "h" || table.iter().any(|f| f.matches(name))
    };
    let mut flags = Vec::new();
    let mut rest = Vec::new();
    let mut value_may_follow = false;
    for (i, arg) in args.iter().enumerate() {
        if value_may_follow && !is_flag(arg) {
            // Anything but a known flag is the value, "-" and "-1" too (runc: `update
            // --resources - ID` reads stdin, `update --memory-swap -1 ID` is unlimited).
            value_may_follow = false;
            flags.push(arg.clone());
        } else if arg == "--" {
            rest.extend_from_slice(&args[i..]);
            break;
        } else if is_flag(arg) {
            flags.push(arg.clone());
            value_may_follow = !arg.contains('=');
        } else {
            rest.push(arg.clone());
        }
    }
    flags.extend(rest);
    flags
}

/// The OPTIONS block of help, aligned like urfave/cli's.
pub fn options_help(table: &[Flag]) -> String {
    let width = table.iter().map(|f| f.synopsis().len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in table {
        let mut help = f.help.to_string();
        match f.default {
            // Go's help quotes string defaults, not numbers.
            Some(d) if d.parse::<i64>().is_ok() => help.push_str(&format!(" (default: {d})")),
            Some(d) => help.push_str(&format!(" (default: {d:?})")),
            None => {}
        }
        out.push_str(&format!("   {:width$}  {help}\n", f.synopsis()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Flag] = &[
        Flag::value("bundle", Some("b"), Some("."), "bundle"),
        Flag::boolean("detach", Some("d"), "detach"),
        Flag::boolean("tty", Some("t"), "tty"),
        Flag::value("pid-file", None, None, "pid file"),
        Flag {
            name: "env",
            short: Some("e"),
            kind: Kind::Multi,
            default: None,
            help: "env",
        },
    ];

    fn p(args: &[&str]) -> Result<Matches, ParseError> {
        parse(
            TABLE,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn value_spellings() {
        for args in [
            &["--bundle", "/b", "id"][..],
            &["--bundle=/b", "id"],
            &["-bundle", "/b", "id"],
            &["-bundle=/b", "id"],
            &["-b", "/b", "id"],
            &["-b=/b", "id"],
            &["--b", "/b", "id"],
            &["--bundle", "/x", "-b", "/b", "id"],
        ] {
            let m = p(args).unwrap();
            assert_eq!(m.value("bundle"), Some("/b"), "{args:?}");
            assert_eq!(m.args, ["id"], "{args:?}");
        }
        // The next argument is a value even when it looks like a flag.
        let m = p(&["--pid-file", "-d", "id"]).unwrap();
        assert_eq!(m.value("pid-file"), Some("-d"));
        assert!(!m.flag("detach"));
        // An empty inline value is a value.
        assert_eq!(
            p(&["--pid-file=", "x"]).unwrap().value("pid-file"),
            Some("")
        );
    }

    #[test]
    fn bool_spellings() {
        for (args, want) in [
            (&["--detach", "id"][..], true),
            (&["-detach", "id"], true),
            (&["-d", "id"], true),
            (&["--detach=true", "id"], true),
            (&["--detach=1", "id"], true),
            (&["-d=T", "id"], true),
            (&["--detach=false", "id"], false),
            (&["-d=0", "id"], false),
            (&["-d", "--detach=False", "id"], false),
            (&["id"], false),
        ] {
            let m = p(args).unwrap();
            assert_eq!(m.flag("detach"), want, "{args:?}");
            assert_eq!(m.args, ["id"], "{args:?}");
        }
        assert!(p(&["--detach=false", "id"]).unwrap().is_set("detach"));
        // A boolean never takes the next argument.
        let m = p(&["-d", "false"]).unwrap();
        assert!(m.flag("detach"));
        assert_eq!(m.args, ["false"]);
        assert_eq!(
            p(&["--detach=yes"]).unwrap_err().to_string(),
            "invalid boolean value \"yes\" for -detach: parse error"
        );
    }

    #[test]
    fn stops_at_positional_and_double_dash() {
        let m = p(&["-d", "id", "ls", "-la", "--tty"]).unwrap();
        assert!(m.flag("detach"));
        assert!(!m.flag("tty"));
        assert_eq!(m.args, ["id", "ls", "-la", "--tty"]);
        let m = p(&["-t", "--", "-d", "x"]).unwrap();
        assert!(m.flag("tty"));
        assert!(!m.flag("detach"));
        assert_eq!(m.args, ["-d", "x"]);
        // Only the first "--" is special.
        assert_eq!(p(&["--", "--"]).unwrap().args, ["--"]);
        // A lone "-" is positional.
        assert_eq!(p(&["-", "-d"]).unwrap().args, ["-", "-d"]);
        assert!(p(&[]).unwrap().args.is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(
            p(&["--xyz", "id"]).unwrap_err().to_string(),
            "flag provided but not defined: -xyz"
        );
        assert_eq!(
            p(&["-xyz=1"]).unwrap_err().to_string(),
            "flag provided but not defined: -xyz"
        );
        // No combined short flags.
        assert_eq!(p(&["-dt"]).unwrap_err(), ParseError::Undefined("dt".into()));
        assert_eq!(
            p(&["--bundle"]).unwrap_err().to_string(),
            "flag needs an argument: -bundle"
        );
        assert_eq!(
            p(&["-b"]).unwrap_err().to_string(),
            "flag needs an argument: -b"
        );
        assert_eq!(
            p(&["---x"]).unwrap_err().to_string(),
            "bad flag syntax: ---x"
        );
        assert_eq!(p(&["-=x"]).unwrap_err().to_string(), "bad flag syntax: -=x");
        assert_eq!(p(&["--help"]).unwrap_err(), ParseError::Help);
        assert_eq!(p(&["-h", "x"]).unwrap_err(), ParseError::Help);
    }

    fn r(args: &[&str]) -> Vec<String> {
        reorder(
            TABLE,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn reorder_like_urfave() {
        assert_eq!(r(&["id", "--detach"]), ["--detach", "id"]);
        assert_eq!(r(&["--pid-file", "-", "id"]), ["--pid-file", "-", "id"]);
        assert_eq!(r(&["id", "--pid-file", "-"]), ["--pid-file", "-", "id"]);
        assert_eq!(r(&["id", "-b", "/b"]), ["-b", "/b", "id"]);
        assert_eq!(r(&["id", "--bundle=/b", "x"]), ["--bundle=/b", "id", "x"]);
        // A boolean drags the next word along too (runc: 2 arguments, an error).
        assert_eq!(r(&["id", "--detach", "x"]), ["--detach", "x", "id"]);
        // Unknown flags stay put, as positional arguments.
        assert_eq!(r(&["id", "--xyz"]), ["id", "--xyz"]);
        assert_eq!(r(&["id", "--help"]), ["--help", "id"]);
        // Nothing moves after "--".
        assert_eq!(r(&["id", "--", "-d"]), ["id", "--", "-d"]);
        assert_eq!(r(&["-d", "--", "x"]), ["-d", "--", "x"]);
        // "---detach" is taken for a flag, and the parser then refuses it.
        assert_eq!(r(&["id", "---detach"]), ["---detach", "id"]);
        let m = p(&["id", "-t"]).unwrap();
        assert_eq!(m.args, ["id", "-t"]);
        let args = r(&["id", "-t", "--pid-file", "/p"]);
        let m = parse(TABLE, &args).unwrap();
        assert!(m.flag("tty"));
        assert_eq!(m.value("pid-file"), Some("/p"));
        assert_eq!(m.args, ["id"]);
    }

    #[test]
    fn multi_values() {
        let m = p(&["-e", "A=1", "--env=B=2", "--env", "C", "id"]).unwrap();
        assert_eq!(m.values("env"), ["A=1", "B=2", "C"]);
        assert_eq!(m.value("env"), Some("C"));
        assert!(m.values("bundle").is_empty());
    }

    #[test]
    fn help_lists_table() {
        let h = options_help(TABLE);
        assert!(
            h.contains("   --bundle value, -b value  bundle (default: \".\")\n"),
            "{h}"
        );
        assert!(h.contains("   --detach, -d              detach\n"), "{h}");
    }
}
