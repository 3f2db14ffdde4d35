//! What the engine harnesses share: bounded commands, a wrapper that records every call the
//! engine makes to the runtime under test (the proof that it, not a system runc, ran), the
//! busybox image as a docker-archive, and daemon processes stopped by pid.

use super::*;

/// Runs `cmd` to completion with its output in files (a detached container may keep pipes
/// open), killing it after `timeout`: an engine that hangs fails the test, not CI.
pub fn bounded(cmd: Command, timeout: Duration) -> Output {
    bounded_stdin(cmd, timeout, None)
}

/// [`bounded`], with stdin a pipe held open (never written) until the command exits, or
/// /dev/null.
/// `input`: stdin is a pipe that gets it and stays open until the command exits.
fn bounded_stdin(mut cmd: Command, timeout: Duration, input: Option<&str>) -> Output {
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let dir = std::env::temp_dir();
    let n = unique();
    let (out, err) = (
        dir.join(format!("husk-eng-{}-{n}.out", std::process::id())),
        dir.join(format!("husk-eng-{}-{n}.err", std::process::id())),
    );
    let mut child = cmd
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let mut _stdin = child.stdin.take();
    if let (Some(w), Some(i)) = (_stdin.as_mut(), input) {
        use std::io::Write;
        let _ = w.write_all(i.as_bytes());
    }
    let Some(status) = wait_bounded(&mut child, timeout) else {
        panic!(
            "{argv:?} did not finish within {timeout:?}; stderr: {}",
            fs::read_to_string(&err).unwrap_or_default()
        );
    };
    let o = Output {
        argv,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
        status,
    };
    let _ = fs::remove_file(&out);
    let _ = fs::remove_file(&err);
    o
}

/// A shell script standing in for the runtime: it appends its arguments to a log, then execs
/// the runtime under test. Engines are given its path (and find it as `runc` on PATH).
pub struct Wrapper {
    pub path: PathBuf,
    log: PathBuf,
}

impl Wrapper {
    /// Writes `dir/bin/NAME` and `dir/calls.log`.
    pub fn new(dir: &Path, name: &str) -> Wrapper {
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let (path, log) = (bin.join(name), dir.join("calls.log"));
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                husk_bin().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(&log, "").unwrap();
        Wrapper { path, log }
    }

    /// Every call so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Asserts that the runtime under test was called with `verb` for a container whose id
    /// contains `id` (engines may prefix or extend it), and returns that call.
    #[track_caller]
    pub fn assert_called(&self, verb: &str, id: &str) -> String {
        let calls = self.calls();
        calls
            .iter()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.contains(&verb) && w.last().is_some_and(|last| last.contains(id))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no `{verb} ... {id}` call to the runtime: {calls:#?}"))
    }
}

/// The busybox rootfs as a one-layer docker-archive (`docker load`, `ctr image import`)
/// tagged `tag`, written to `dir/image.tar`.
pub fn docker_archive(dir: &Path, tag: &str) -> PathBuf {
    let (rootfs, img) = (dir.join("image-rootfs"), dir.join("image"));
    fs::create_dir_all(&rootfs).unwrap();
    fs::create_dir_all(&img).unwrap();
    make_rootfs(&rootfs);
    let layer = img.join("layer.tar");
    host(
        "tar",
        &[
            "-C",
            &rootfs.to_string_lossy(),
            "-cf",
            &layer.to_string_lossy(),
            ".",
        ],
    );
    let sha = |p: &Path| {
        host("sha256sum", &[&p.to_string_lossy()])
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha(&layer))]},
    });
    let cfg_tmp = img.join("config.json");
    fs::write(&cfg_tmp, config.to_string()).unwrap();
    let cfg_name = format!("{}.json", sha(&cfg_tmp));
    fs::rename(&cfg_tmp, img.join(&cfg_name)).unwrap();
    fs::write(
        img.join("manifest.json"),
        json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).to_string(),
    )
    .unwrap();
    let out = dir.join("image.tar");
    host(
        "tar",
        &[
            "-C",
            &img.to_string_lossy(),
            "-cf",
            &out.to_string_lossy(),
            ".",
        ],
    );
    let _ = fs::remove_dir_all(&rootfs);
    let _ = fs::remove_dir_all(&img);
    out
}

/// A daemon (containerd, dockerd) started by a test and stopped by it.
pub struct Daemon {
    child: Option<Child>,
    name: String,
}

impl Daemon {
    /// Spawns `cmd` with its output appended to `log`, then waits (bounded) for `socket`.
    pub fn start(mut cmd: Command, log: &Path, socket: &Path) -> Daemon {
        let name = cmd.get_program().to_string_lossy().into_owned();
        let _ = fs::remove_file(socket);
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cmd
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let start = Instant::now();
        while UnixStream::connect(socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} did not listen on {} within 60s; log:\n{}",
                socket.display(),
                fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon {
            child: Some(child),
            name,
        }
    }

    /// SIGTERM, then (after 30 s) SIGKILL; waits for the exit.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        signal_pid(c.id() as i32, libc::SIGTERM);
        if wait_bounded(&mut c, Duration::from_secs(30)).is_none() {
            eprintln!("{} ignored SIGTERM for 30s: killed", self.name);
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kill(pid, sig)`, ignoring errors.
pub fn signal_pid(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The pid in a pid file, if it names a live process.
pub fn pid_file(p: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(p).ok()?.trim().parse().ok()?;
    pid_alive(pid as i64).then_some(pid)
}

/// Waits (up to 10 s) until the v1 cpu.stat at `path` counts throttled periods: a cpu quota
/// seen by its effect on a busy process. Returns the count.
#[track_caller]
pub fn wait_throttled(path: &Path) -> u64 {
    let start = Instant::now();
    loop {
        let n = counter(
            &fs::read_to_string(path).unwrap_or_default(),
            "nr_throttled",
        );
        if n > 0 {
            return n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}: never throttled",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts that `left` (what is left behind, one line each) becomes empty within 10 s.
#[track_caller]
pub fn assert_becomes_empty(left: impl Fn() -> Vec<String>) {
    let start = Instant::now();
    loop {
        let l = left();
        if l.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left behind: {l:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runtime state directories under `dir` and cgroup directories beneath `cgroup_rel`.
pub fn state_and_cgroups_left(dir: &Path, cgroup_rel: &str) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        left.extend(
            rd.flatten()
                .map(|e| format!("runtime state {}", e.path().display())),
        );
    }
    left.extend(
        cgroup_children(cgroup_rel)
            .iter()
            .map(|p| format!("cgroup {}", p.display())),
    );
    left
}

/// Unmounts (lazily, deepest first) everything at or beneath `dir`, then removes it.
pub fn unmount_and_remove(dir: &Path) {
    for _ in 0..3 {
        let mut m = mounts_under(dir);
        if m.is_empty() {
            break;
        }
        m.reverse();
        for p in m {
            umount_lazy(&p);
        }
    }
    let _ = fs::remove_dir_all(dir);
}

/// Removes the cgroup directory `rel` (relative to each hierarchy) and everything beneath it,
/// deepest first; returns the directories that were still there (not empty = a leak).
pub fn remove_cgroup_tree(rel: &str) -> Vec<PathBuf> {
    fn collect(d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    collect(&e.path(), out);
                }
            }
        }
        out.push(d.to_path_buf());
    }
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let d = h.path().join(rel.trim_start_matches('/'));
            if d.is_dir() {
                collect(&d, &mut found);
            }
        }
    }
    for d in &found {
        let _ = fs::remove_dir(d);
    }
    found
}

/// Cgroup directories strictly beneath `rel` in any hierarchy (containers left behind).
pub fn cgroup_children(rel: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let d = h.path().join(rel.trim_start_matches('/'));
            if let Ok(sub) = fs::read_dir(&d) {
                for e in sub.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        found.push(e.path());
                    }
                }
            }
        }
    }
    found
}

/// Runs `cmd` under `script(1)`, so that its stdin and stdout are a terminal (`-t` of the
/// engines' CLIs needs one).
pub fn in_pty(cmd: &Command) -> Output {
    in_pty_input(cmd, "")
}

/// [`in_pty`], typing `input` on the terminal.
pub fn in_pty_input(cmd: &Command, input: &str) -> Output {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            v.map(|v| format!("{}={}", k.to_string_lossy(), quote(&v.to_string_lossy())))
        })
        .collect();
    line.push(quote(&cmd.get_program().to_string_lossy()));
    line.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    let mut s = Command::new("script");
    s.args([
        "--quiet",
        "--return",
        "--command",
        &line.join(" "),
        "/dev/null",
    ]);
    bounded_stdin(s, Duration::from_secs(120), Some(input))
}
