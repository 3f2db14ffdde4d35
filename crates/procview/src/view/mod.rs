//! The view's contents: each file computed from one container's cgroup (and the host's own
//! files) at the time it is opened.
//!
//! The server calls [`render`] when a container's process opens a file and serves reads of that
//! open file from the result, so one `read` loop sees one consistent snapshot.

use crate::{Entry, Registration, Result};

/// Load averages of the containers whose `loadavg` has been read, sampled by the server every
/// 5 seconds as the kernel samples its own (exponential decay over 1, 5 and 15 minutes).
#[derive(Debug, Default)]
pub struct Loads {}

impl Loads {
    /// Samples every container in `regs` (id, registration) once; called every 5 s.
    pub fn sample<'a>(&mut self, regs: impl IntoIterator<Item = (&'a str, &'a Registration)>) {
        let _ = regs.into_iter().count();
    }
}

/// The contents of a file `entry` (not `Entry::SysCpu`) for the container `id`.
pub fn render(entry: Entry, id: &str, reg: &Registration, loads: &Loads) -> Result<Vec<u8>> {
    let _ = (entry, id, reg, loads);
    Err(crate::Error::Invalid("not built yet".into()))
}

/// The host CPU numbers the container sees, ascending: its cpuset, cut to
/// ceil(quota/period) CPUs when a CFS quota is set.
pub fn visible_cpus(reg: &Registration) -> Result<Vec<u32>> {
    let _ = reg;
    Err(crate::Error::Invalid("not built yet".into()))
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
