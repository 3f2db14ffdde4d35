//! The CPUs a container sees, and its `/proc/cpuinfo`.
//!
//! The visible CPUs are the cpuset's effective CPUs (the host's online CPUs without a
//! cpuset), ascending, cut to the first ceil(quota/period) of them when the cgroup or an
//! ancestor has a CFS quota (the smallest ratio wins). The container numbers them from 0 in
//! that order: visible host CPU `v[i]` is its `cpu i`.

/// The first ceil(quota/period) CPUs of `cpuset` (at least one), or all without a quota.
pub fn cut(cpuset: &[u32], quota: Option<(u64, u64)>) -> Vec<u32> {
    let n = match quota {
        Some((q, p)) if p > 0 => q.div_ceil(p).max(1),
        _ => u64::MAX,
    };
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    cpuset.iter().copied().take(n).collect()
}

/// The `processor` number of a cpuinfo block, if it has one.
fn processor(block: &str) -> Option<u32> {
    block.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "processor").then(|| v.trim().parse().ok())?
    })
}

/// The host's cpuinfo blocks (x86 format: one block per CPU, blank-line separated, each
/// starting with `processor\t: N`) of the `visible` CPUs, in that order, renumbered from 0.
/// Text without per-CPU blocks is returned as is.
pub fn render_cpuinfo(host: &str, visible: &[u32]) -> String {
    let blocks: Vec<&str> = host
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    if !blocks.iter().any(|b| processor(b).is_some()) {
        return host.to_string();
    }
    let mut out = String::with_capacity(host.len());
    for (i, cpu) in visible.iter().enumerate() {
        let Some(block) = blocks.iter().find(|b| processor(b) == Some(*cpu)) else {
            continue;
        };
        for l in block.trim_start_matches('\n').lines() {
            match l.split_once(':') {
                Some((k, _)) if k.trim() == "processor" => {
                    out.push_str(&format!("{k}: {i}"));
                }
                _ => out.push_str(l),
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_cut() {
        assert_eq!(cut(&[0, 1], Some((150000, 100000))), vec![0, 1]);
        assert_eq!(cut(&[0, 1], Some((50000, 100000))), vec![0]);
        assert_eq!(cut(&[0, 1], Some((100000, 100000))), vec![0]);
        assert_eq!(cut(&[0, 1], Some((1, 100000))), vec![0]);
        assert_eq!(cut(&[0, 1], None), vec![0, 1]);
        assert_eq!(cut(&[1], None), vec![1]);
        assert_eq!(cut(&[2, 5, 7], Some((200001, 100000))), vec![2, 5, 7]);
    }

    const HOST: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncore id\t\t: 0\n\
        power management:\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncore id\t\t: 1\n\
        power management:\n\n";

    #[test]
    fn cpuinfo_renumbers() {
        // cpuset "1": host cpu 1 only, shown as processor 0.
        assert_eq!(
            render_cpuinfo(HOST, &[1]),
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncore id\t\t: 1\n\
             power management:\n\n"
        );
        assert_eq!(render_cpuinfo(HOST, &[0, 1]), HOST);
        assert_eq!(
            render_cpuinfo(HOST, &cut(&[0, 1], Some((50000, 100000)))),
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncore id\t\t: 0\n\
             power management:\n\n"
        );
        assert_eq!(render_cpuinfo("Processor: ARM\n", &[0]), "Processor: ARM\n");
    }
}
