//! The resource view's server (`husk-procview`) of a state root, as tests see it from outside:
//! its processes, and that nothing of it is left once its last container is gone.

use super::*;

/// husk-procview processes (keeper, worker) serving the state root `root`, sorted.
pub fn view_servers(root: &Path) -> Vec<i32> {
    let root = root.to_string_lossy().to_string();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("husk-procview") && cmd.contains(&root) {
            out.push(pid);
        }
    }
    out.sort();
    out
}

/// After the last container with a view of `root` is deleted: no server process, mount or
/// directory of it remains (the server exits within a few seconds, waited for, bounded).
pub fn assert_view_server_gone(root: &Path) {
    let dir = root.join(".procview");
    let t = std::time::Instant::now();
    while (dir.exists() || !view_servers(root).is_empty())
        && t.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!dir.exists(), "{} left", dir.display());
    assert!(
        view_servers(root).is_empty(),
        "servers left: {:?}",
        view_servers(root)
    );
    let d = dir.to_string_lossy().to_string();
    let mounted = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&d)));
    assert!(!mounted, "a mount under {} left", dir.display());
}
