//! `/proc/loadavg`: the kernel's load average computed over the cgroup's tasks.
//!
//! Every 5 s the server counts the container's tasks in state R or D and folds the count into
//! three exponentially decaying averages with the kernel's fixed-point arithmetic
//! (kernel/sched/loadavg.c: FSHIFT 11, EXP_1/5/15), so the numbers move as the host's do.

use std::path::Path;

use cgroups::Saved;

use super::cgroupfs;
use crate::Result;

pub const FSHIFT: u32 = 11;
pub const FIXED_1: u64 = 1 << FSHIFT;
/// 1/exp(5s/1min), 1/exp(5s/5min), 1/exp(5s/15min) in fixed point.
pub const EXP: [u64; 3] = [1884, 2014, 2037];

/// One exponential step: `load * exp + active * (1 - exp)`, rounding up while rising.
pub fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut newload = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        newload += FIXED_1 - 1;
    }
    newload / FIXED_1
}

/// The three averages after one sample with `active` tasks (a plain count).
pub fn step(avg: [u64; 3], active: u64) -> [u64; 3] {
    let a = active * FIXED_1;
    [0, 1, 2].map(|i| calc_load(avg[i], EXP[i], a))
}

/// "a.aa" as the kernel prints an average (rounded to the hundredth).
fn fmt(x: u64) -> String {
    let x = x + FIXED_1 / 200;
    format!(
        "{}.{:02}",
        x >> FSHIFT,
        ((x & (FIXED_1 - 1)) * 100) >> FSHIFT
    )
}

/// The cgroup's tasks now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// In state R.
    pub running: u64,
    /// In state D.
    pub blocked: u64,
    pub total: u64,
    /// The highest pid as the container sees it (last NSpid field), 0 if none.
    pub lastpid: i32,
}

pub fn render(avg: [u64; 3], c: &Counts) -> String {
    format!(
        "{} {} {} {}/{} {}\n",
        fmt(avg[0]),
        fmt(avg[1]),
        fmt(avg[2]),
        c.running,
        c.total,
        c.lastpid
    )
}

/// The state letter of a /proc/<pid>/stat line (the field after the parenthesized name).
pub fn parse_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// The last field of /proc/<pid>/status's `NSpid:` line (the pid in its own namespace).
pub fn parse_nspid(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Counts the tasks of `tids`, reading `<proc>/<tid>/stat` and `status`; tasks that exited
/// meanwhile are not counted. `with_lastpid`: also read the pids (not needed to sample).
pub fn count_tids(proc: &Path, tids: &[i32], with_lastpid: bool) -> Counts {
    let mut c = Counts::default();
    for tid in tids {
        let dir = proc.join(tid.to_string());
        let Some(state) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| parse_state(&s))
        else {
            continue;
        };
        c.total += 1;
        match state {
            'R' => c.running += 1,
            'D' => c.blocked += 1,
            _ => {}
        }
        if with_lastpid {
            if let Some(p) = std::fs::read_to_string(dir.join("status"))
                .ok()
                .and_then(|s| parse_nspid(&s))
            {
                c.lastpid = c.lastpid.max(p);
            }
        }
    }
    c
}

pub fn count(saved: &Saved, with_lastpid: bool) -> Result<Counts> {
    let tids = cgroupfs::tasks(saved)?;
    Ok(count_tids(Path::new("/proc"), &tids, with_lastpid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages() {
        assert_eq!(render([0; 3], &Counts::default()), "0.00 0.00 0.00 0/0 0\n");
        // One busy task for one sample: the kernel's first step.
        let a = step([0; 3], 1);
        assert_eq!(a, [164, 34, 11]);
        let c = Counts {
            running: 1,
            blocked: 0,
            total: 3,
            lastpid: 42,
        };
        assert_eq!(render(a, &c), "0.08 0.02 0.01 1/3 42\n");
        // A steady load converges to it.
        let mut a = [0; 3];
        for _ in 0..2000 {
            a = step(a, 2);
        }
        assert_eq!(render(a, &c), "2.00 2.00 2.00 1/3 42\n");
        // And decays back.
        for _ in 0..2000 {
            a = step(a, 0);
        }
        assert_eq!(fmt(a[0]), "0.00");
    }

    #[test]
    fn proc_parsing() {
        assert_eq!(parse_state("123 (a) b) R 1 2 3"), Some('R'));
        assert_eq!(parse_state("7 (sleep) S 1"), Some('S'));
        assert_eq!(parse_state("garbage"), None);
        assert_eq!(
            parse_nspid("Name:\tsh\nNSpid:\t27329\t5\nPPid: 1\n"),
            Some(5)
        );
        assert_eq!(parse_nspid("NSpid:\t27329\n"), Some(27329));
        assert_eq!(parse_nspid("Name: x\n"), None);
    }

    #[test]
    fn counts_self() {
        let me = std::process::id() as i32;
        let c = count_tids(Path::new("/proc"), &[me, i32::MAX], true);
        assert_eq!(c.total, 1);
        assert_eq!(c.lastpid, me);
    }
}
