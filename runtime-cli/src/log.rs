//! runc's logging: logrus text (`time="…" level=error msg="…"`) or JSON
//! (`{"level":"error","msg":"…","time":"…"}`) lines, to `--log FILE` (appended) or to stderr.
//! When the lines go to a file, an error is also printed plainly to stderr, as runc does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> anyhow::Result<Format> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => anyhow::bail!("invalid log-format: {s}"),
        }
    }
}

/// Where log lines go and which lines are written.
#[derive(Debug)]
pub struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

impl Logger {
    /// Lines to stderr.
    pub fn stderr(format: Format, debug: bool) -> Logger {
        Logger {
            file: None,
            format,
            debug,
        }
    }

    /// Lines appended to `path` (created 0644 if missing).
    pub fn file(path: &Path, format: Format, debug: bool) -> anyhow::Result<Logger> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("opening log file {}: {}", path.display(), go_io(&e)))?;
        Ok(Logger {
            file: Some(file),
            format,
            debug,
        })
    }

    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// A debug line (only with `--debug`).
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    /// A warning line (`level=warning`, as logrus writes runc's).
    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    /// The error line; also the plain message on stderr when the lines go to a file.
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        if self.file.is_some() {
            eprintln!("{msg}");
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let mut line = format_line(self.format, level, msg, &now_seconds());
        line.push('\n');
        // One write per line: with O_APPEND, concurrent writers do not interleave.
        let _ = match &self.file {
            Some(f) => (&*f).write_all(line.as_bytes()),
            None => std::io::stderr().lock().write_all(line.as_bytes()),
        };
    }
}

/// The current time, RFC 3339 in UTC to the second (`2026-11-23T21:45:12Z`), as runc logs it.
pub fn now_seconds() -> String {
    let t = libcontainer::rfc3339_now();
    format!("{}Z", &t[..19])
}

/// One log line, without the newline.
pub fn format_line(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        // serde_json's map keeps keys sorted: level, msg, time, like logrus.
        Format::Json => serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string(),
        Format::Text => format!(
            "time={} level={} msg={}",
            logrus_value(time),
            logrus_value(level),
            logrus_value(msg)
        ),
    }
}

/// logrus' text formatter quotes a value unless it is made of `[A-Za-z0-9-._/@^+]` only.
fn logrus_value(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        s.to_string()
    } else {
        go_quote(s)
    }
}

/// Go's strconv.Quote, for the characters that matter in messages.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An OS error the way Go prints it (the engines match these texts): `no such file or directory`
/// rather than `No such file or directory (os error 2)`.
pub fn go_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    if e.raw_os_error().is_none() {
        return s;
    }
    let s = match s.rfind(" (os error ") {
        Some(i) => &s[..i],
        None => &s[..],
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The whole error chain on one line, joined with ": ". A cause whose text its parent already
/// ends with (thiserror's `"{what}: {source}"`) is not repeated; OS errors read as in Go.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in err.chain() {
        let text = go_errno_texts(&cause.to_string());
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    go_errno_texts(&msg)
}

/// Rewrites every `<strerror> (os error N)` in `msg` (however the text got there) as Go prints
/// it.
fn go_errno_texts(msg: &str) -> String {
    let mut out = msg.to_string();
    let mut from = 0;
    while let Some(i) = out[from..].find("(os error ") {
        let start = from + i + "(os error ".len();
        let digits: String = out[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        from = start;
        let Ok(errno) = digits.parse::<i32>() else {
            continue;
        };
        let io = std::io::Error::from_raw_os_error(errno);
        let rust = io.to_string();
        let go = go_io(&io);
        if let Some(pos) = out.find(&rust) {
            out.replace_range(pos..pos + rust.len(), &go);
            from = pos + go.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_keys() {
        let line = format_line(
            Format::Json,
            "error",
            "container \"x\" does not exist",
            "2026-11-23T21:45:12Z",
        );
        assert_eq!(
            line,
            r#"{"level":"error","msg":"container \"x\" does not exist","time":"2026-11-23T21:45:12Z"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["level", "msg", "time"]);
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
    }

    #[test]
    fn text_line_like_logrus() {
        assert_eq!(
            format_line(
                Format::Text,
                "error",
                "container does not exist",
                "2026-11-23T21:45:12Z"
            ),
            r#"time="2026-11-23T21:45:12Z" level=error msg="container does not exist""#
        );
        assert_eq!(
            format_line(Format::Text, "debug", "a\"b\nc", "T"),
            r#"time=T level=debug msg="a\"b\nc""#
        );
        assert_eq!(
            format_line(Format::Text, "error", "", "T"),
            r#"time=T level=error msg="""#
        );
    }

    #[test]
    fn time_to_the_second() {
        let t = now_seconds();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn chain_once_and_go_errno_text() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = libcontainer::Error::Io {
            what: "reading /b/config.json".into(),
            source: io,
        };
        let err = anyhow::Error::new(e).context("creating container x");
        assert_eq!(
            error_message(&err),
            "creating container x: reading /b/config.json: no such file or directory"
        );
        let err = anyhow::anyhow!("outer").context("top");
        assert_eq!(error_message(&err), "top: outer");
        let err = anyhow::Error::new(libcontainer::Error::NotRunning);
        assert_eq!(error_message(&err), "container not running");
        // Texts already flattened into strings are rewritten too.
        let err = anyhow::anyhow!(
            "exec \"/x\": No such file or directory (os error 2); then Permission denied (os error 13)"
        );
        assert_eq!(
            error_message(&err),
            "exec \"/x\": no such file or directory; then permission denied"
        );
    }
}
