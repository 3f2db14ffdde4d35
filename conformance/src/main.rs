//! husk-conformance: runs as a container's process and checks, from inside, that the fields of
//! its config.json took effect. One TAP line per check; a failing check names the field, the
//! wanted and the seen value. Exit status 0 when every check passed, 1 otherwise, 2 when the
//! config cannot be read. Built static (no shared libraries: it runs in a busybox root).
//!
//!     husk-conformance [CONFIG]        (default /conformance/config.json)
//!
//! Namespaces are compared with the host's: the harness puts the host's namespace inode
//! numbers in annotations `conformance/host-ns/<type>`; without them those checks are skipped.

mod checks;
mod linux;
mod sched;

use serde_json::Value;

/// The TAP stream.
pub struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    pub fn ok(&mut self, name: &str) {
        self.n += 1;
        println!("ok {} - {name}", self.n);
    }
    pub fn fail(&mut self, name: &str, want: &str, saw: &str) {
        self.n += 1;
        self.failed += 1;
        println!("not ok {} - {name}: want {want}, saw {saw}", self.n);
    }
    pub fn skip(&mut self, name: &str, why: &str) {
        self.n += 1;
        println!("ok {} - {name} # SKIP {why}", self.n);
    }
    /// `want == saw`, shown with Debug formatting.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, name: &str, want: T, saw: T) {
        if want == saw {
            self.ok(name)
        } else {
            self.fail(name, &format!("{want:?}"), &format!("{saw:?}"))
        }
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/conformance/config.json".into());
    let config: Value = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            println!("Bail out! {path}: {e}");
            std::process::exit(2);
        }
    };
    let mut t = Tap { n: 0, failed: 0 };
    checks::all(&config, &mut t);
    println!("1..{}", t.n);
    std::process::exit(if t.failed == 0 { 0 } else { 1 });
}
