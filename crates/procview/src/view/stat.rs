//! `/proc/stat`: `cpu` and `cpuN` lines from the cgroup's CPU time, the host's other lines.
//!
//! Visible host CPU `v[i]` is the container's `cpu i`. The time the cgroup spent on CPUs it
//! does not show (those the quota cut off, and any it ran on before its cpuset changed) is
//! folded into the shown ones round-robin (the j-th such CPU, ascending, into `cpu j % k`), so
//! the `cpu` line's user + system is the cgroup's whole usage. On v2 (no per-CPU split) the
//! total is divided evenly. nice, iowait, irq, softirq, steal and guest are 0; idle is the
//! container's uptime less the CPU's user and system time.

use super::cgroupfs::CpuUsage;

/// USER_HZ: /proc/stat's unit.
pub const HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / HZ;

/// One shown CPU's times, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticks {
    pub user: u64,
    pub system: u64,
    pub idle: u64,
}

/// Splits `total` into `k` parts differing by at most one, the larger first.
fn even(total: u64, k: usize, i: usize) -> u64 {
    let k = k as u64;
    total / k + u64::from((i as u64) < total % k)
}

/// The times of each visible CPU; `uptime_ticks` is the container's age.
pub fn per_cpu(visible: &[u32], usage: &CpuUsage, uptime_ticks: u64) -> Vec<Ticks> {
    let k = visible.len();
    if k == 0 {
        return Vec::new();
    }
    let mut out = vec![Ticks::default(); k];
    match usage {
        CpuUsage::None => {}
        CpuUsage::Total(u, s) => {
            let (u, s) = (u / NS_PER_TICK, s / NS_PER_TICK);
            for (i, t) in out.iter_mut().enumerate() {
                t.user = even(u, k, i);
                t.system = even(s, k, i);
            }
        }
        CpuUsage::PerCpu(v) => {
            let mut ns = vec![(0u64, 0u64); k];
            let mut hidden = 0;
            for (cpu, &(u, s)) in v.iter().enumerate() {
                let shown = visible.iter().position(|&c| c as usize == cpu);
                let slot = match shown {
                    Some(i) => i,
                    None if u + s == 0 => continue,
                    None => {
                        hidden += 1;
                        (hidden - 1) % k
                    }
                };
                ns[slot].0 += u;
                ns[slot].1 += s;
            }
            for (t, (u, s)) in out.iter_mut().zip(ns) {
                t.user = u / NS_PER_TICK;
                t.system = s / NS_PER_TICK;
            }
        }
    }
    for t in &mut out {
        t.idle = uptime_ticks.saturating_sub(t.user + t.system);
    }
    out
}

fn cpu_line(name: &str, t: &Ticks) -> String {
    format!("{name} {} 0 {} {} 0 0 0 0 0 0\n", t.user, t.system, t.idle)
}

/// The container's /proc/stat: the cpu lines, then the host's lines other than `cpu*`.
pub fn render(host: &str, ticks: &[Ticks]) -> String {
    let sum = ticks.iter().fold(Ticks::default(), |a, t| Ticks {
        user: a.user + t.user,
        system: a.system + t.system,
        idle: a.idle + t.idle,
    });
    let mut out = cpu_line("cpu ", &sum);
    for (i, t) in ticks.iter().enumerate() {
        out.push_str(&cpu_line(&format!("cpu{i}"), t));
    }
    for l in host.lines().filter(|l| !l.starts_with("cpu")) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "cpu  5139557 47261 823447 5872576 50023 0 51536 18257 0 0\n\
        cpu0 2383072 19367 383704 3165123 15944 0 25328 9052 0 0\n\
        cpu1 2756484 27893 439742 2707452 34079 0 26207 9205 0 0\n\
        intr 91835941 0 0\nctxt 254259025\nbtime 1796596529\nprocesses 1645873\n\
        procs_running 3\nprocs_blocked 0\nsoftirq 28355426 0 2571615\n";

    const TAIL: &str = "intr 91835941 0 0\nctxt 254259025\nbtime 1796596529\n\
        processes 1645873\nprocs_running 3\nprocs_blocked 0\nsoftirq 28355426 0 2571615\n";

    #[test]
    fn v1_all_shown() {
        // cpu0: 1.5 s user, 0.25 s system; cpu1: 0.5 s user, 0.05 s system; up 10 s.
        let u = CpuUsage::PerCpu(vec![
            (1_500_000_000, 250_000_000),
            (500_000_000, 50_000_000),
        ]);
        let t = per_cpu(&[0, 1], &u, 1000);
        assert_eq!(
            render(HOST, &t),
            format!(
                "cpu  200 0 30 1770 0 0 0 0 0 0\ncpu0 150 0 25 825 0 0 0 0 0 0\n\
                 cpu1 50 0 5 945 0 0 0 0 0 0\n{TAIL}"
            )
        );
    }

    #[test]
    fn v1_hidden_cpus_fold() {
        // cpuset 0-3 cut to 0-1 by the quota: cpu2 folds into cpu0, cpu3 into cpu1.
        let u = CpuUsage::PerCpu(vec![
            (100_000_000, 0),
            (200_000_000, 10_000_000),
            (300_000_000, 0),
            (0, 40_000_000),
        ]);
        let t = per_cpu(&[0, 1], &u, 50);
        assert_eq!(
            t,
            vec![
                Ticks {
                    user: 40,
                    system: 0,
                    idle: 10
                },
                Ticks {
                    user: 20,
                    system: 5,
                    idle: 25
                }
            ]
        );
        // cpuset "1": host cpu 1 is cpu0; cpu0's time (before a cpuset change) folds in.
        let t = per_cpu(&[1], &u, 200);
        assert_eq!(
            t,
            vec![Ticks {
                user: 60,
                system: 5,
                idle: 135
            }]
        );
        let total: u64 = t.iter().map(|t| t.user + t.system).sum();
        assert_eq!(total, u.total() / NS_PER_TICK);
    }

    #[test]
    fn v2_divides_evenly() {
        let u = CpuUsage::Total(1_010_000_000, 30_000_000);
        let t = per_cpu(&[0, 1, 2], &u, 100);
        assert_eq!(
            render(HOST, &t),
            format!(
                "cpu  101 0 3 196 0 0 0 0 0 0\ncpu0 34 0 1 65 0 0 0 0 0 0\n\
                 cpu1 34 0 1 65 0 0 0 0 0 0\ncpu2 33 0 1 66 0 0 0 0 0 0\n{TAIL}"
            )
        );
        // Busier than its age (rounding, or usage before create): idle floors at 0.
        let t = per_cpu(&[0], &CpuUsage::Total(5_000_000_000, 0), 100);
        assert_eq!(t[0].idle, 0);
        assert_eq!(per_cpu(&[0], &CpuUsage::None, 7)[0].idle, 7);
    }
}
