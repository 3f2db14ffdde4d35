//! The host's cgroup mounts (from /proc/self/mountinfo), so cgroup tests work on hybrid and
//! pure v2 hosts alike.

use std::path::PathBuf;

/// One cgroup hierarchy mounted on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    /// v1: the controllers (`["cpu", "cpuacct"]`, `["name=systemd"]`); v2: empty.
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// Every cgroup (v1) and cgroup2 mount, the first mount of each hierarchy only.
pub fn cgroup_mounts() -> Vec<CgroupMount> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out: Vec<CgroupMount> = Vec::new();
    for l in mi.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        let fstype = post.next().unwrap_or("");
        let superopts = post.nth(1).unwrap_or("");
        let path = PathBuf::from(pre.split_whitespace().nth(4).unwrap().replace("\\040", " "));
        let controllers: Vec<String> = match fstype {
            "cgroup2" => Vec::new(),
            "cgroup" => superopts
                .split(',')
                .filter(|o| {
                    !matches!(
                        *o,
                        "rw" | "ro" | "xattr" | "clone_children" | "noprefix" | "cpuset_v2_mode"
                    ) && (!o.contains('=') || o.starts_with("name="))
                })
                .map(str::to_string)
                .collect(),
            _ => continue,
        };
        if !out.iter().any(|m| m.controllers == controllers) {
            out.push(CgroupMount { controllers, path });
        }
    }
    out
}

/// The cgroup2 mount point, if any (/sys/fs/cgroup/unified on hybrid, /sys/fs/cgroup on v2).
pub fn unified_mount() -> Option<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .find(|m| m.controllers.is_empty())
        .map(|m| m.path)
}

/// True when the host has only the unified hierarchy (no v1 controller mounted).
pub fn is_pure_v2() -> bool {
    cgroup_mounts().iter().all(|m| m.controllers.is_empty())
}

/// The value of `key` in a flat-keyed cgroup file (`memory.oom_control`, `memory.events`,
/// `cpu.stat`, `pids.events`).
pub fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

/// A bundle running `script` in cgroup `path` with `resources` merged into the default ones.
pub fn cgroup_bundle(script: &str, path: &str, resources: serde_json::Value) -> crate::Bundle {
    let mut b = crate::Bundle::sh(script);
    let path = path.to_string();
    b.edit(move |c| {
        c["linux"]["cgroupsPath"] = serde_json::json!(path);
        for (k, v) in resources.as_object().unwrap() {
            c["linux"]["resources"][k] = v.clone();
        }
    });
    b
}
