//! Integration helpers: processes started by tests.

use super::*;

/// A host process started by a test (e.g. `unshare ... sleep`), killed and reaped on drop.
pub struct HostProc(pub Child);

impl HostProc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `unshare FLAGS... sleep 100` and waits until its namespaces differ from ours.
/// Returns the process (whose pid is the `sleep`, unshare execs it).
pub fn unshare_sleep(flags: &[&str], check_ns: &str) -> HostProc {
    let mut c = Command::new("unshare");
    c.args(flags);
    if flags.contains(&"--fork") {
        // killing unshare (on drop) must take its forked child with it
        c.arg("--kill-child");
    }
    c.args(["busybox", "sleep", "100"]);
    c.env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
    let child = c.stdin(Stdio::null()).spawn().expect("spawn unshare");
    let p = HostProc(child);
    let mine = fs::read_link(format!("/proc/self/ns/{check_ns}")).unwrap();
    let fork = flags.contains(&"--fork");
    let start = Instant::now();
    loop {
        // with --fork the sleep is unshare's child
        let target = if fork {
            fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid()))
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .map(str::to_string)
        } else {
            Some(p.pid().to_string())
        };
        if let Some(t) = target {
            let theirs = fs::read_link(format!("/proc/{t}/ns/{check_ns}"));
            let exe = fs::read_link(format!("/proc/{t}/exe"));
            if let (Ok(ns), Ok(e)) = (theirs, exe) {
                if ns != mine && e.to_string_lossy().contains("busybox") {
                    return p;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "unshare did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The inode of namespace link `/proc/PID/ns/KIND` (e.g. `net:[4026531840]`).
pub fn ns_link(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .to_string()
}

/// The first number of a /proc/uptime text: seconds since boot.
pub fn uptime_of(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not /proc/uptime: {text:?}"))
}

/// This host's uptime in seconds.
pub fn host_uptime() -> f64 {
    uptime_of(&std::fs::read_to_string("/proc/uptime").unwrap())
}

/// Whether this machine lets root make a user namespace: the kernel refuses one to a chrooted
/// caller, and the VM lane's guest runs chrooted.
pub fn userns_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::process::Command::new("unshare")
            .args(["--user", "true"])
            .status()
            .is_ok_and(|s| s.success())
    })
}
