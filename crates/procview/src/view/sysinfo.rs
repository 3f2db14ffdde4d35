//! `sysinfo(2)` for a container: the numbers its `/proc/meminfo`, `/proc/uptime` and
//! `/proc/loadavg` show, in the kernel's `struct sysinfo`, for the seccomp agent
//! (`crate::agent`) to write into the caller's buffer.

use super::{boottime_ns, cgroupfs, loadavg, meminfo, memory, uptime, Loads};
use crate::{Registration, Result};

/// `SI_LOAD_SHIFT`: sysinfo's loads are fixed point with 16 fraction bits.
pub const SI_LOAD_SHIFT: u32 = 16;

/// The fields of `struct sysinfo`, in bytes (`mem_unit` 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysinfo {
    /// Seconds since the container was created (rounded up, as the kernel rounds).
    pub uptime: i64,
    /// 1, 5 and 15 minute load averages, scaled by 2^16.
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    /// The cgroup's tasks (the kernel counts threads).
    pub procs: u16,
}

impl Sysinfo {
    /// The 64-bit layout (x86_64, x32, aarch64): 112 bytes, little-endian host order.
    pub fn to_bytes_64(&self) -> [u8; 112] {
        let mut b = [0u8; 112];
        b[0..8].copy_from_slice(&self.uptime.to_ne_bytes());
        let words = [
            self.loads[0],
            self.loads[1],
            self.loads[2],
            self.totalram,
            self.freeram,
            self.sharedram,
            self.bufferram,
            self.totalswap,
            self.freeswap,
        ];
        for (i, w) in words.iter().enumerate() {
            b[8 + i * 8..16 + i * 8].copy_from_slice(&w.to_ne_bytes());
        }
        b[80..82].copy_from_slice(&self.procs.to_ne_bytes());
        // 82..88 padding, 88..104 totalhigh and freehigh (0).
        b[104..108].copy_from_slice(&1u32.to_ne_bytes());
        b
    }

    /// The i386 (compat) layout: 64 bytes of 32-bit fields; sizes that do not fit 32 bits
    /// are given in pages (`mem_unit` 4096), as the kernel's compat_sysinfo scales them.
    pub fn to_bytes_32(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        let mem = [
            self.totalram,
            self.freeram,
            self.sharedram,
            self.bufferram,
            self.totalswap,
            self.freeswap,
        ];
        let unit: u64 = if mem.iter().any(|&v| v > u32::MAX as u64) {
            4096
        } else {
            1
        };
        let up = self.uptime.clamp(0, i32::MAX as i64) as i32;
        b[0..4].copy_from_slice(&up.to_ne_bytes());
        for (i, l) in self.loads.iter().enumerate() {
            let v = (*l).min(u32::MAX as u64) as u32;
            b[4 + i * 4..8 + i * 4].copy_from_slice(&v.to_ne_bytes());
        }
        for (i, m) in mem.iter().enumerate() {
            let v = (m / unit).min(u32::MAX as u64) as u32;
            b[16 + i * 4..20 + i * 4].copy_from_slice(&v.to_ne_bytes());
        }
        b[40..42].copy_from_slice(&self.procs.to_ne_bytes());
        // 42..44 pad, 44..52 totalhigh and freehigh (0).
        b[52..56].copy_from_slice(&(unit as u32).to_ne_bytes());
        b
    }
}

/// The container `id`'s sysinfo now: memory as its meminfo (`MemTotal`, `MemFree`, `Shmem`,
/// `Buffers` 0, `SwapTotal`, `SwapFree`), its uptime, its load averages (0 until sampled), and
/// its cgroup's task count.
pub fn sysinfo(id: &str, reg: &Registration, loads: &Loads) -> Result<Sysinfo> {
    let (host_text, cg) = memory(reg)?;
    let h = meminfo::parse_host(&host_text);
    let kb = |k: &str| h.get(k).copied().unwrap_or(0);
    let (total, free, shared, swap_total, swap_free) = match cg {
        Some(cg) => {
            let m = meminfo::compute(&h, &cg);
            let shared = meminfo::value("Shmem", &cg, &m).unwrap_or(0);
            (m.total, m.free, shared, m.swap_total, m.swap_free)
        }
        None => (
            kb("MemTotal"),
            kb("MemFree"),
            kb("Shmem"),
            kb("SwapTotal"),
            kb("SwapFree"),
        ),
    };
    let age = uptime::age_ns(boottime_ns()?, reg.created_boottime_ns);
    let secs = age.div_ceil(1_000_000_000);
    let shift = SI_LOAD_SHIFT - loadavg::FSHIFT;
    let procs = cgroupfs::tasks(&reg.cgroup)?.len().min(u16::MAX as usize) as u16;
    Ok(Sysinfo {
        uptime: secs.min(i64::MAX as u64) as i64,
        loads: loads.get(id).map(|l| l << shift),
        totalram: total * 1024,
        freeram: free * 1024,
        sharedram: shared * 1024,
        bufferram: 0,
        totalswap: swap_total * 1024,
        freeswap: swap_free * 1024,
        procs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let s = Sysinfo {
            uptime: 7,
            loads: [65536, 2, 3],
            totalram: 256 << 20,
            freeram: 100,
            sharedram: 5,
            bufferram: 0,
            totalswap: 8 << 30,
            freeswap: 9,
            procs: 4,
        };
        let b = s.to_bytes_64();
        assert_eq!(i64::from_ne_bytes(b[0..8].try_into().unwrap()), 7);
        assert_eq!(u64::from_ne_bytes(b[8..16].try_into().unwrap()), 65536);
        assert_eq!(u64::from_ne_bytes(b[32..40].try_into().unwrap()), 256 << 20);
        assert_eq!(u64::from_ne_bytes(b[64..72].try_into().unwrap()), 8 << 30);
        assert_eq!(u16::from_ne_bytes(b[80..82].try_into().unwrap()), 4);
        assert_eq!(u32::from_ne_bytes(b[104..108].try_into().unwrap()), 1);
        let c = s.to_bytes_32();
        // 8 GiB of swap does not fit 32 bits: pages.
        assert_eq!(u32::from_ne_bytes(c[52..56].try_into().unwrap()), 4096);
        assert_eq!(u32::from_ne_bytes(c[16..20].try_into().unwrap()), 65536);
        assert_eq!(u32::from_ne_bytes(c[32..36].try_into().unwrap()), 2 << 20);
        assert_eq!(u16::from_ne_bytes(c[40..42].try_into().unwrap()), 4);
    }
}
