//! Warnings: things the runtime-spec says to warn about rather than fail on (a resource the
//! kernel ignores, a failed poststop hook). The library has no logger of its own: a program
//! installs a handler once (the husk binary writes them as `level=warning` log lines); without
//! one they go to stderr.

use std::sync::OnceLock;

static HANDLER: OnceLock<fn(&str)> = OnceLock::new();

/// Installs the function that receives every warning. Only the first call takes effect.
pub fn set_warning_handler(f: fn(&str)) {
    let _ = HANDLER.set(f);
}

pub(crate) fn warn(msg: &str) {
    match HANDLER.get() {
        Some(f) => f(msg),
        None => eprintln!("warning: {msg}"),
    }
}
