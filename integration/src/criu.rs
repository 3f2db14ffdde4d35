//! CRIU for the checkpoint/restore tests: the binary `scripts/criu` builds (Debian 12's criu
//! 3.17 does not work on this kernel), found through `HUSK_CRIU`, and put first on PATH as
//! `criu` for the engines (podman checks CRIU's version itself over RPC, and neither podman
//! nor containerd's shim passes `--criu` to the runtime). Also the counter the tests
//! checkpoint: a shell whose state lives in its memory.

use super::*;

/// Where `scripts/criu` caches the CRIU it builds.
pub const CRIU_CACHE: &str = "/var/tmp/husk-criu/4.1.1/bin/criu";

/// The CRIU binary under test: `HUSK_CRIU`, default [`CRIU_CACHE`].
pub fn criu_bin() -> PathBuf {
    std::env::var_os("HUSK_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CRIU_CACHE))
}

/// Puts [`criu_bin`] first on this process's PATH as `criu` (once; engines started later
/// inherit it). Returns true (the caller skips) when it is absent; under CI=true that panics
/// ([`skip_unless`]).
pub fn criu_missing() -> bool {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        let bin = criu_bin();
        if skip_unless(
            tool_works(&bin),
            &bin.to_string_lossy(),
            "criu 4.1.1 (run scripts/criu to build it)",
        ) {
            return true;
        }
        // One directory per user and CRIU path, reused across runs (nothing piles up).
        let dir = std::env::temp_dir().join(format!(
            "husk-criu-path-{}",
            bin.to_string_lossy()
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
        ));
        fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("criu.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        symlink(&bin, &tmp).unwrap();
        fs::rename(&tmp, dir.join("criu")).unwrap();
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // Every test of the checkpoint binary calls this first, and OnceLock holds the
        // others back, so no thread reads the environment while it changes.
        std::env::set_var("PATH", path);
        false
    })
}

/// True when `criu --version` runs (a cached binary whose libraries are gone does not).
fn tool_works(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A counter whose state is in the shell's memory: a token drawn once at start and a count,
/// written to /tmp/cnt and to stdout ten times a second. After a restore the token is the
/// same and the count carries on; a fresh start would draw a new token and count from 1.
pub const COUNTER: &str = "t=$(cat /proc/sys/kernel/random/uuid); i=0; \
     while :; do i=$((i+1)); echo \"$t $i\" > /tmp/cnt; echo \"$t $i\"; sleep 0.1; done";

/// The token and count of a /tmp/cnt line, if it is one (the file is truncated before
/// each write, so a read can catch it empty).
pub fn parse_count(s: &str) -> Option<(String, u64)> {
    let mut f = s.split_whitespace();
    let (t, n) = (f.next()?, f.next()?.parse().ok()?);
    (f.next().is_none() && t.len() == 36).then(|| (t.to_string(), n))
}

/// Polls `read` (the text of /tmp/cnt, or whatever failed to read it) until the count is
/// above `above`; panics after 30 s with the last reading.
#[track_caller]
pub fn count_above(read: impl Fn() -> String, above: u64) -> (String, u64) {
    let start = Instant::now();
    loop {
        let s = read();
        if let Some((t, n)) = parse_count(&s) {
            if n > above {
                return (t, n);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the counter did not pass {above} within 30 s; last read: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines of /proc/self/mountinfo that name `id` (a container's rootfs, shm, ... left mounted).
pub fn mounts_naming(id: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(id))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_lines_parse() {
        let t = "ed2b90ae-3181-43f0-85ab-f4af5993901b";
        assert_eq!(parse_count(&format!("{t} 12\n")), Some((t.to_string(), 12)));
        assert_eq!(parse_count(""), None);
        assert_eq!(parse_count(t), None);
        assert_eq!(parse_count(&format!("{t} x")), None);
        assert_eq!(parse_count("Error: no such container"), None);
        assert_eq!(parse_count(&format!("{t} 1 2")), None);
    }
}
