//! Stress: `run` of `true` 500 times with no hang and nothing left behind.

use std::fs;
use std::time::{Duration, Instant};

use integration::*;

#[test]
fn run_true_500_times() {
    let n: usize = std::env::var("HUSK_STRESS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = Runtime::new();
    // first, that containers really run here: one prints
    let hello = Bundle::new(&["echo", "stress-ok"]);
    assert_eq!(rt.output(&hello), "stress-ok\n");
    let b = Bundle::new(&["true"]);
    let start = Instant::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = rt.id();
        let o = rt
            .cmd(&["run", "--bundle", &b.path_str(), &id])
            .timeout(Duration::from_secs(30))
            .run();
        assert_eq!(o.status.code(), Some(0), "run #{i} ({id}): {o}");
        ids.push(id);
    }
    eprintln!("{n} runs in {:?}", start.elapsed());
    let entries: Vec<_> = fs::read_dir(rt.root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(entries.is_empty(), "state left in the root: {entries:?}");
    // one pass over cgroups and /proc for all ids
    let set: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut left: Vec<String> = cgroup_dirs_where(&|name| set.contains(name))
        .iter()
        .map(|d| format!("cgroup dir {}", d.display()))
        .collect();
    for id in ids.iter().step_by(50) {
        left.extend(leftovers(&rt, id, Some(b.path())));
    }
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(mounts_under(b.path()).is_empty());
}
