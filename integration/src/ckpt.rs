//! Helpers of the checkpoint tests (integration/tests/checkpoint*.rs): the CRIU to run, husk
//! with its output in an append-mode log (CRIU restores such a stdio file), and a counter
//! container whose value is in /dev/shm.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::*;

const CACHED: &str = "/var/tmp/husk-criu/4.1.1/bin/criu";

/// The CRIU to use, or None (a skip) outside CI when there is none.
pub fn criu() -> Option<String> {
    let path = std::env::var("HUSK_CRIU").unwrap_or_else(|_| CACHED.into());
    if Path::new(&path).is_file() {
        return Some(path);
    }
    match on_missing(
        std::env::var("CI").ok().as_deref(),
        "criu 4 (scripts/criu)",
        "scripts/criu",
    ) {
        Ok(msg) => {
            eprintln!("{msg}");
            None
        }
        Err(msg) => panic!("{msg} (looked for {path})"),
    }
}

/// A file opened O_APPEND, as container logs are: CRIU restores such a stdio file without
/// checking that its size is the one it had at the dump.
pub fn log_file(rt: &Runtime, name: &str) -> (PathBuf, OwnedFd) {
    let p = rt.work().join(name);
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(&p)
        .unwrap();
    (p, f.into())
}

/// `husk --criu C ARGS` with the container's (and husk's) stdout and stderr appended to `log`.
/// Its output is the log's new lines.
pub fn logged(rt: &Runtime, criu: &str, log: &(PathBuf, OwnedFd), args: &[&str]) -> Output {
    let mut a = vec!["--criu", criu];
    a.extend_from_slice(args);
    let before = fs::metadata(&log.0).map(|m| m.len() as usize).unwrap_or(0);
    let mut o = rt
        .cmd(&a)
        .fd(log.1.as_raw_fd(), 1)
        .fd(log.1.as_raw_fd(), 2)
        .timeout(Duration::from_secs(120))
        .run();
    let text = fs::read(&log.0).unwrap_or_default();
    o.stderr = String::from_utf8_lossy(&text[before.min(text.len())..]).into_owned();
    o
}

pub fn husk(rt: &Runtime, criu: &str, args: &[&str]) -> Output {
    let mut a = vec!["--criu", criu];
    a.extend_from_slice(args);
    rt.cmd(&a).timeout(Duration::from_secs(120)).run()
}

/// A counter in /dev/shm. Each value is written to a new file and renamed
/// over the old one: `echo > cnt` truncates first, so a reader between the
/// truncate and the write saw an empty file (a flaky "counter \"\"").
pub const SHM_COUNTER: &str = "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/cnt.new; \
     mv /dev/shm/cnt.new /dev/shm/cnt; sleep 0.05; done";

/// The counter, once the process has written it.
pub fn try_shm_count(rt: &Runtime, id: &str) -> Option<u64> {
    let o = rt.exec(&["exec", id, "cat", "/dev/shm/cnt"]);
    o.ok().then(|| o.stdout.trim().parse().ok()).flatten()
}

pub fn shm_count(rt: &Runtime, id: &str) -> u64 {
    let o = rt.exec(&["exec", id, "cat", "/dev/shm/cnt"]).expect_ok();
    o.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("counter {:?}", o.stdout))
}

/// Waits until the counter passes `at_least`; returns its value.
pub fn shm_count_past(rt: &Runtime, id: &str, at_least: u64) -> u64 {
    let start = Instant::now();
    loop {
        let v = try_shm_count(rt, id);
        if v.is_some_and(|v| v > at_least) || start.elapsed() > Duration::from_secs(30) {
            return v.unwrap_or_else(|| shm_count(rt, id));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A detached counter container; returns its log.
pub fn run_counter(rt: &Runtime, criu: &str, b: &Bundle, id: &str) -> (PathBuf, OwnedFd) {
    let log = log_file(rt, &format!("{id}.log"));
    let o = logged(
        rt,
        criu,
        &log,
        &["run", "-d", "--bundle", &b.path_str(), id],
    );
    assert!(o.ok(), "run -d failed: {o}");
    shm_count_past(rt, id, 3);
    log
}

pub fn restore(
    rt: &Runtime,
    criu: &str,
    log: &(PathBuf, OwnedFd),
    b: &Bundle,
    images: &Path,
    id: &str,
) -> Output {
    logged(
        rt,
        criu,
        log,
        &[
            "restore",
            "-d",
            "--bundle",
            &b.path_str(),
            "--image-path",
            images.to_str().unwrap(),
            id,
        ],
    )
}
