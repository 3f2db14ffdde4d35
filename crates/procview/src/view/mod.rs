//! The view's contents: each file computed from one container's cgroup (and the host's own
//! files) at the time it is opened.
//!
//! The server calls [`render`] when a container's process opens a file and serves reads of that
//! open file from the result, so one `read` loop sees one consistent snapshot.
//!
//! - `cgroupfs`: reading the cgroup files (v1, v2, hybrid);
//! - one module per file, each a pure function of the host's text and the cgroup's numbers
//!   (unit-tested with fixtures), called here with the live files.
//!
//! Errors name the file: a container whose cgroup was removed gives ENOENT.

use std::collections::HashMap;
use std::path::Path;

use crate::{Entry, Registration, Result};

pub use sysinfo::{sysinfo, Sysinfo};

mod cgroupfs;
mod cpu;
mod diskstats;
mod loadavg;
mod meminfo;
mod stat;
mod swaps;
mod sysinfo;
mod uptime;

/// Load averages of the containers whose `loadavg` has been read, sampled by the server every
/// 5 seconds as the kernel samples its own (exponential decay over 1, 5 and 15 minutes).
#[derive(Debug, Default)]
pub struct Loads {
    /// Per container id, the kernel's fixed-point averages (1, 5, 15 minutes).
    avgs: HashMap<String, [u64; 3]>,
}

impl Loads {
    /// Samples every container in `regs` (id, registration) once; called every 5 s.
    /// Containers not in `regs`, or whose cgroup is gone, are forgotten.
    pub fn sample<'a>(&mut self, regs: impl IntoIterator<Item = (&'a str, &'a Registration)>) {
        let mut next = HashMap::new();
        for (id, reg) in regs {
            let Ok(c) = loadavg::count(&reg.cgroup, false) else {
                continue;
            };
            let prev = self.avgs.get(id).copied().unwrap_or_default();
            next.insert(id.to_string(), loadavg::step(prev, c.running + c.blocked));
        }
        self.avgs = next;
    }

    fn get(&self, id: &str) -> [u64; 3] {
        self.avgs.get(id).copied().unwrap_or_default()
    }
}

fn host(path: &str) -> Result<String> {
    cgroupfs::read(Path::new(path))
}

/// CLOCK_BOOTTIME now, in nanoseconds (from the host's /proc/uptime).
fn boottime_ns() -> Result<u64> {
    let text = host("/proc/uptime")?;
    uptime::parse_boottime_ns(&text)
        .ok_or_else(|| crate::Error::Invalid(format!("/proc/uptime: {:?}", text.trim())))
}

/// The visible CPUs' times and the container's age (ns).
fn cpu_times(reg: &Registration) -> Result<(Vec<stat::Ticks>, u64)> {
    let visible = visible_cpus(reg)?;
    let usage = cgroupfs::cpu_usage(&reg.cgroup)?;
    let age = uptime::age_ns(boottime_ns()?, reg.created_boottime_ns);
    let ticks = stat::per_cpu(&visible, &usage, age / (1_000_000_000 / stat::HZ));
    Ok((ticks, age))
}

fn memory(reg: &Registration) -> Result<(String, Option<cgroupfs::MemCg>)> {
    Ok((host("/proc/meminfo")?, cgroupfs::memory(&reg.cgroup)?))
}

/// The contents of a file `entry` (not `Entry::SysCpu`) for the container `id`.
pub fn render(entry: Entry, id: &str, reg: &Registration, loads: &Loads) -> Result<Vec<u8>> {
    let text = match entry {
        Entry::Meminfo => match memory(reg)? {
            (h, Some(cg)) => meminfo::render(&h, &cg),
            (h, None) => h,
        },
        Entry::Cpuinfo => cpu::render_cpuinfo(&host("/proc/cpuinfo")?, &visible_cpus(reg)?),
        Entry::Stat => {
            let (ticks, _) = cpu_times(reg)?;
            stat::render(&host("/proc/stat")?, &ticks)
        }
        Entry::Uptime => {
            let (ticks, age) = cpu_times(reg)?;
            uptime::render(age, ticks.iter().map(|t| t.idle).sum())
        }
        Entry::Loadavg => loadavg::render(loads.get(id), &loadavg::count(&reg.cgroup, true)?),
        Entry::Diskstats => {
            let devs = cgroupfs::io(&reg.cgroup)?;
            let sys = Path::new("/sys/dev/block");
            diskstats::render(&devs, |ma, mi| diskstats::dev_name(sys, ma, mi))
        }
        Entry::Swaps => {
            let (h, cg) = memory(reg)?;
            let m = match cg {
                Some(cg) => meminfo::compute(&meminfo::parse_host(&h), &cg),
                None => meminfo::compute(&meminfo::parse_host(&h), &host_mem()),
            };
            swaps::render(&host("/proc/swaps")?, &m)
        }
        Entry::SysCpu => {
            return Err(crate::Error::Invalid(
                "/sys/devices/system/cpu is a directory, not rendered".into(),
            ))
        }
    };
    Ok(text.into_bytes())
}

/// A memory cgroup without limits or usage: the host's swap numbers pass through.
fn host_mem() -> cgroupfs::MemCg {
    cgroupfs::MemCg {
        limit: u64::MAX,
        ..cgroupfs::MemCg::default()
    }
}

/// The host CPU numbers the container sees, ascending: its cpuset, cut to
/// ceil(quota/period) CPUs when a CFS quota is set.
pub fn visible_cpus(reg: &Registration) -> Result<Vec<u32>> {
    let set = match cgroupfs::cpuset(&reg.cgroup)? {
        Some(s) => s,
        None => {
            let p = "/sys/devices/system/cpu/online";
            let t = host(p)?;
            cgroupfs::parse_cpu_list(&t)
                .ok_or_else(|| crate::Error::Invalid(format!("{p}: {:?}", t.trim())))?
        }
    };
    Ok(cpu::cut(&set, cgroupfs::quota(&reg.cgroup)?))
}

/// `/sys/devices/system/cpu/online` for the container (`0-1\n`): the visible CPUs renumbered
/// from 0, as the container's `/proc/cpuinfo` and `/proc/stat` number them.
pub fn sys_cpu_online(reg: &Registration) -> Result<Vec<u8>> {
    visible_cpus(reg).map(|v| format_cpu_list(v.len()).into_bytes())
}

/// `0-(n-1)\n` (`0\n` for one CPU).
pub fn format_cpu_list(n: usize) -> String {
    match n {
        0 => "\n".into(),
        1 => "0\n".into(),
        n => format!("0-{}\n", n - 1),
    }
}
