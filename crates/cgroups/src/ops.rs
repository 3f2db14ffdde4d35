//! Freezing a container's cgroups: the v1 freezer (v1 and hybrid hosts, as runc) or v2
//! `cgroup.freeze`.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fs::{io_err, write};
use crate::{Error, Layout, Manager, Result};

/// How long `freeze` waits for the kernel to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a container's freezer is.
enum Freezer {
    /// `dir/freezer.state` of the v1 freezer hierarchy.
    V1(PathBuf),
    /// `dir/cgroup.freeze` and `dir/cgroup.events` of the unified hierarchy.
    V2(PathBuf),
}

impl Manager {
    fn freezer(&self) -> Option<Freezer> {
        let s = self.saved();
        if s.layout != Layout::V2 {
            if let Some(d) = s.v1_dir("freezer") {
                return Some(Freezer::V1(d.to_path_buf()));
            }
        }
        s.unified.as_ref().map(|d| Freezer::V2(d.clone()))
    }

    /// Freezes (`true`) or thaws every process (v1 freezer.state, v2 cgroup.freeze), waiting
    /// until the kernel reports the new state (v1 `FROZEN`/`THAWED`, v2 `frozen 1`/`frozen 0`
    /// in cgroup.events). A freeze that does not complete in time is undone and reported.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let Some(f) = self.freezer() else {
            return Err(Error::Invalid(
                "no freezer: neither a v1 freezer hierarchy nor cgroup v2".into(),
            ));
        };
        let r = match &f {
            Freezer::V1(dir) => {
                let want = if frozen { "FROZEN" } else { "THAWED" };
                let file = dir.join("freezer.state");
                set_and_wait(&file, want, || Ok(read_trim(&file)? == want))
            }
            Freezer::V2(dir) => {
                let file = dir.join("cgroup.freeze");
                let events = dir.join("cgroup.events");
                let want = if frozen { "1" } else { "0" };
                set_and_wait(&file, want, || {
                    Ok(key_value(&read_trim(&events)?, "frozen") == Some(want))
                })
            }
        };
        if r.is_err() && frozen {
            // Never leave a half-frozen container behind.
            let _ = self.freeze(false);
        }
        r
    }

    /// Whether the cgroup is frozen (v1: freezer.state reads `FROZEN`; v2: cgroup.events says
    /// `frozen 1`). A missing cgroup is not frozen.
    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Some(Freezer::V1(dir)) => {
                read_trim(&dir.join("freezer.state")).is_ok_and(|s| s == "FROZEN")
            }
            Some(Freezer::V2(dir)) => read_trim(&dir.join("cgroup.events"))
                .is_ok_and(|s| key_value(&s, "frozen") == Some("1")),
            None => false,
        }
    }
}

fn read_trim(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(io_err(path))
}

/// The value of `key` in a flat-keyed file ("key value" lines).
fn key_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some(key)).then(|| f.next()).flatten()
    })
}

/// Writes `value` to `file`, then polls `done` (re-writing now and then: a v1 FREEZING cgroup
/// on older kernels needs the nudge) until it holds or the timeout passes.
fn set_and_wait(
    file: &std::path::Path,
    value: &str,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<()> {
    write(file, value)?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut pause = Duration::from_micros(100);
    loop {
        match done() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                return Err(Error::Invalid(format!(
                    "{}: the cgroup was removed",
                    file.display()
                )))
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::Invalid(format!(
                "{}: the kernel did not report {value:?} within {FREEZE_TIMEOUT:?}",
                file.display()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
        write(file, value)?;
    }
}

#[cfg(test)]
mod tests {
    use super::key_value;

    #[test]
    fn flat_keys() {
        let ev = "populated 1\nfrozen 0\n";
        assert_eq!(key_value(ev, "frozen"), Some("0"));
        assert_eq!(key_value(ev, "populated"), Some("1"));
        assert_eq!(key_value(ev, "froze"), None);
    }
}
