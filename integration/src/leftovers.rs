//! Integration helpers: nothing remains.

use super::*;

/// True if `hay` contains `id` as a whole token (not followed by a digit or another id char).
pub fn contains_id(hay: &str, id: &str) -> bool {
    let mut from = 0;
    while let Some(i) = hay[from..].find(id) {
        let end = from + i + id.len();
        match hay[end..].chars().next() {
            Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {}
            _ => return true,
        }
        from = from + i + 1;
    }
    false
}

/// Cgroup directories (in every hierarchy under /sys/fs/cgroup) whose path contains `id`.
pub fn cgroup_dirs_for(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_where(&|name| contains_id(name, id))
}

/// Cgroup directories (in every hierarchy, up to 7 levels deep) whose name satisfies `pred`.
pub fn cgroup_dirs_where(pred: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    fn walk(dir: &Path, pred: &dyn Fn(&str) -> bool, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            if pred(&e.file_name().to_string_lossy()) {
                found.push(p.clone());
            }
            if depth > 0 {
                walk(&p, pred, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            walk(&h.path(), pred, 6, &mut found);
        }
    }
    found
}

/// Pids whose /proc/PID/cgroup or cmdline names `id`.
pub fn processes_for(id: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me || !pid_alive(pid as i64) {
            continue;
        }
        let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let cmd = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if contains_id(&cg, id) || contains_id(&cmd, id) {
            found.push((pid, format!("cmdline {cmd:?} cgroup {cg:?}")));
        }
    }
    found
}

/// What is left of container `id`: state dir, cgroup dirs, processes, mounts under the bundle.
pub fn leftovers(rt: &Runtime, id: &str, bundle: Option<&Path>) -> Vec<String> {
    let mut left = Vec::new();
    // Processes may take a moment to be reaped; cgroup rmdir follows them.
    let start = Instant::now();
    loop {
        left.clear();
        let sd = rt.root().join(id);
        if sd.exists() {
            left.push(format!("state dir {}", sd.display()));
        }
        for d in cgroup_dirs_for(id) {
            left.push(format!("cgroup dir {}", d.display()));
        }
        for (pid, what) in processes_for(id) {
            left.push(format!("process {pid}: {what}"));
        }
        if let Some(b) = bundle {
            for m in mounts_under(b) {
                left.push(format!("mount {}", m.display()));
            }
        }
        if left.is_empty() || start.elapsed() > Duration::from_secs(3) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that nothing is left of container `id` (see [`leftovers`]).
#[track_caller]
pub fn assert_nothing_remains(rt: &Runtime, id: &str, bundle: Option<&Path>) {
    let left = leftovers(rt, id, bundle);
    assert!(left.is_empty(), "left behind by {id}: {left:#?}");
}
