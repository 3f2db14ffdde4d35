//! Resource usage of a container's cgroups, shaped like the `data` object of runc's
//! `events --stats` (runc's `types.Stats`): the same field names and the same omissions of
//! zero values, so tools written for runc read it unchanged.
//!
//! Each controller is read from its v1 directory when the host has one (v1 and hybrid), else
//! from the unified directory (v2, and hybrid hosts whose v2 hierarchy carries it, e.g.
//! hugetlb here). A controller the host lacks is left at its zero value.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fs::io_err;
use crate::{Error, Layout, Manager, Result};

fn zero(v: &u64) -> bool {
    *v == 0
}

/// Everything `stats` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// By page size ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// The cpuset controller's settings (runc's `cpuset` object).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(default)]
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    #[serde(default)]
    pub mem_hardwall: u64,
    #[serde(default)]
    pub mem_exclusive: u64,
    #[serde(default)]
    pub memory_migrate: u64,
    #[serde(default)]
    pub memory_spread_page: u64,
    #[serde(default)]
    pub memory_spread_slab: u64,
    #[serde(default)]
    pub memory_pressure: u64,
    #[serde(default)]
    pub sched_load_balance: u64,
    #[serde(default)]
    pub sched_relax_domain_level: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    /// Left out when no period was throttled or counted, as runc's (`omitzero`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub throttling: Throttling,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// Bytes. `limit` is u64::MAX when unlimited, as runc reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "zero")]
    pub current: u64,
    /// 0: no limit.
    #[serde(default, skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioQueueRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// A controller's directory: v1 when the host has that v1 controller, else the unified one.
enum Dir {
    V1(PathBuf),
    V2(PathBuf),
}

impl Manager {
    fn controller_dir(&self, controller: &str) -> Option<Dir> {
        let s = self.saved();
        if s.layout != Layout::V2 {
            if let Some(d) = s.v1_dir(controller) {
                return Some(Dir::V1(d.to_path_buf()));
            }
        }
        s.unified.clone().map(Dir::V2)
    }

    /// Reads the cpu, memory, pids, blkio and hugetlb statistics.
    pub fn stats(&self) -> Result<Stats> {
        let mut st = Stats::default();
        match self.controller_dir("cpuacct") {
            Some(Dir::V1(d)) => cpu_v1(&d, self.controller_dir("cpu"), &mut st.cpu)?,
            Some(Dir::V2(d)) => cpu_v2(&d, &mut st.cpu)?,
            None => {}
        }
        match self.controller_dir("cpuset") {
            Some(Dir::V1(d)) => st.cpuset = cpuset_v1(&d)?,
            Some(Dir::V2(d)) => {
                st.cpuset.cpus = cpu_list(&d.join("cpuset.cpus.effective"))?;
                st.cpuset.mems = cpu_list(&d.join("cpuset.mems.effective"))?;
            }
            None => {}
        }
        match self.controller_dir("memory") {
            Some(Dir::V1(d)) => memory_v1(&d, &mut st.memory)?,
            Some(Dir::V2(d)) => memory_v2(&d, &mut st.memory)?,
            None => {}
        }
        if let Some(Dir::V1(d) | Dir::V2(d)) = self.controller_dir("pids") {
            st.pids = pids(&d)?;
        }
        match self.controller_dir("blkio") {
            Some(Dir::V1(d)) => blkio_v1(&d, &mut st.blkio)?,
            Some(Dir::V2(d)) => blkio_v2(&d, &mut st.blkio)?,
            None => {}
        }
        st.hugetlb = match self.controller_dir("hugetlb") {
            Some(Dir::V1(d)) => hugetlb(&d, true)?,
            Some(Dir::V2(d)) => hugetlb(&d, false)?,
            None => BTreeMap::new(),
        };
        Ok(st)
    }
}

/// A file's text; `None` if the file does not exist (controller or feature absent).
fn opt_read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn parse_u64(path: &Path, s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        what: format!("not a number: {s:?}"),
    })
}

/// A single-number file; 0 when missing.
fn num(path: &Path) -> Result<u64> {
    opt_read(path)?.map_or(Ok(0), |s| parse_u64(path, &s))
}

/// A flat-keyed file ("key value" lines); empty when missing.
fn flat(path: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    if let Some(text) = opt_read(path)? {
        for l in text.lines() {
            let mut f = l.split_whitespace();
            if let (Some(k), Some(v)) = (f.next(), f.next()) {
                out.insert(k.to_string(), parse_u64(path, v)?);
            }
        }
    }
    Ok(out)
}

/// Clock ticks per second of cpuacct.stat (USER_HZ, 100 on Linux).
const USER_HZ: u64 = 100;

fn cpu_v1(acct: &Path, cpu: Option<Dir>, out: &mut Cpu) -> Result<()> {
    out.usage.total = num(&acct.join("cpuacct.usage"))?;
    let percpu = |f: &str| -> Result<Vec<u64>> {
        let p = acct.join(f);
        opt_read(&p)?.map_or(Ok(Vec::new()), |s| {
            s.split_whitespace().map(|v| parse_u64(&p, v)).collect()
        })
    };
    out.usage.percpu = percpu("cpuacct.usage_percpu")?;
    out.usage.percpu_kernel = percpu("cpuacct.usage_percpu_sys")?;
    out.usage.percpu_user = percpu("cpuacct.usage_percpu_user")?;
    let st = flat(&acct.join("cpuacct.stat"))?;
    let ns = 1_000_000_000 / USER_HZ;
    out.usage.user = st.get("user").copied().unwrap_or(0) * ns;
    out.usage.kernel = st.get("system").copied().unwrap_or(0) * ns;
    if let Some(Dir::V1(d)) = cpu {
        let st = flat(&d.join("cpu.stat"))?;
        out.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        out.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        out.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    Ok(())
}

fn cpu_v2(dir: &Path, out: &mut Cpu) -> Result<()> {
    let st = flat(&dir.join("cpu.stat"))?;
    let get = |k: &str| st.get(k).copied().unwrap_or(0);
    out.usage.total = get("usage_usec") * 1000;
    out.usage.user = get("user_usec") * 1000;
    out.usage.kernel = get("system_usec") * 1000;
    out.throttling.periods = get("nr_periods");
    out.throttling.throttled_periods = get("nr_throttled");
    out.throttling.throttled_time = get("throttled_usec") * 1000;
    Ok(())
}

/// A cpu or memory-node list ("0-3,5"), expanded; empty when the file is missing.
fn cpu_list(path: &Path) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    let Some(text) = opt_read(path)? else {
        return Ok(out);
    };
    let bad = || Error::Parse {
        path: path.to_path_buf(),
        what: format!("not a cpu list: {:?}", text.trim()),
    };
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn cpuset_v1(dir: &Path) -> Result<CpuSet> {
    let f = |n: &str| dir.join(format!("cpuset.{n}"));
    let relax = opt_read(&f("sched_relax_domain_level"))?;
    Ok(CpuSet {
        cpus: cpu_list(&f("cpus"))?,
        cpu_exclusive: num(&f("cpu_exclusive"))?,
        mems: cpu_list(&f("mems"))?,
        mem_hardwall: num(&f("mem_hardwall"))?,
        mem_exclusive: num(&f("mem_exclusive"))?,
        memory_migrate: num(&f("memory_migrate"))?,
        memory_spread_page: num(&f("memory_spread_page"))?,
        memory_spread_slab: num(&f("memory_spread_slab"))?,
        memory_pressure: num(&f("memory_pressure"))?,
        sched_load_balance: num(&f("sched_load_balance"))?,
        sched_relax_domain_level: relax.and_then(|s| s.trim().parse().ok()).unwrap_or(0),
    })
}

fn memory_v1(dir: &Path, out: &mut Memory) -> Result<()> {
    let entry = |prefix: &str| -> Result<MemoryEntry> {
        let f = |s: &str| dir.join(format!("{prefix}{s}"));
        Ok(MemoryEntry {
            limit: num(&f("limit_in_bytes"))?,
            usage: num(&f("usage_in_bytes"))?,
            max: num(&f("max_usage_in_bytes"))?,
            failcnt: num(&f("failcnt"))?,
        })
    };
    out.usage = entry("memory.")?;
    // memsw counts memory plus swap (runc reports it as is).
    out.swap = entry("memory.memsw.")?;
    out.kernel = entry("memory.kmem.")?;
    out.kernel_tcp = entry("memory.kmem.tcp.")?;
    out.raw = flat(&dir.join("memory.stat"))?;
    out.cache = out
        .raw
        .get("total_cache")
        .or(out.raw.get("cache"))
        .copied()
        .unwrap_or(0);
    Ok(())
}

fn memory_v2(dir: &Path, out: &mut Memory) -> Result<()> {
    out.raw = flat(&dir.join("memory.stat"))?;
    out.cache = out.raw.get("file").copied().unwrap_or(0);
    let events = flat(&dir.join("memory.events"))?;
    out.usage = MemoryEntry {
        limit: num(&dir.join("memory.max"))?,
        usage: num(&dir.join("memory.current"))?,
        max: num(&dir.join("memory.peak"))?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    if dir.join("memory.swap.current").exists() {
        let swap_events = flat(&dir.join("memory.swap.events"))?;
        // As runc: swap on v2 is reported as memory + swap, like v1's memsw.
        let swap_limit = num(&dir.join("memory.swap.max"))?;
        out.swap = MemoryEntry {
            limit: out.usage.limit.saturating_add(swap_limit),
            usage: out.usage.usage + num(&dir.join("memory.swap.current"))?,
            max: num(&dir.join("memory.swap.peak"))?,
            failcnt: swap_events.get("max").copied().unwrap_or(0),
        };
    }
    Ok(())
}

fn pids(dir: &Path) -> Result<Pids> {
    let limit = num(&dir.join("pids.max"))?;
    Ok(Pids {
        current: num(&dir.join("pids.current"))?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// "MAJ:MIN Op value" lines (the "Total" line skipped).
fn blkio_file(path: &Path) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    let Some(text) = opt_read(path)? else {
        return Ok(out);
    };
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (dev, op, value) = match f.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] if dev.contains(':') => (*dev, "", *value),
            _ => continue,
        };
        let Some((maj, min)) = dev.split_once(':') else {
            continue;
        };
        out.push(BlkioEntry {
            major: parse_u64(path, maj)?,
            minor: parse_u64(path, min)?,
            op: op.to_string(),
            value: parse_u64(path, value)?,
        });
    }
    Ok(out)
}

fn blkio_v1(dir: &Path, out: &mut Blkio) -> Result<()> {
    // The CFQ/BFQ files when the scheduler provides them, else the throttle ones (as runc).
    let f = |n: &str| dir.join(format!("blkio.{n}"));
    let bytes = blkio_file(&f("io_service_bytes_recursive"))?;
    if !bytes.is_empty() {
        out.io_service_bytes_recursive = bytes;
        out.io_serviced_recursive = blkio_file(&f("io_serviced_recursive"))?;
        out.io_queued_recursive = blkio_file(&f("io_queued_recursive"))?;
        out.io_service_time_recursive = blkio_file(&f("io_service_time_recursive"))?;
        out.io_wait_time_recursive = blkio_file(&f("io_wait_time_recursive"))?;
        out.io_merged_recursive = blkio_file(&f("io_merged_recursive"))?;
        out.io_time_recursive = blkio_file(&f("time_recursive"))?;
        out.sectors_recursive = blkio_file(&f("sectors_recursive"))?;
    } else {
        out.io_service_bytes_recursive = blkio_file(&f("throttle.io_service_bytes_recursive"))?;
        out.io_serviced_recursive = blkio_file(&f("throttle.io_serviced_recursive"))?;
    }
    Ok(())
}

fn blkio_v2(dir: &Path, out: &mut Blkio) -> Result<()> {
    let path = dir.join("io.stat");
    let Some(text) = opt_read(&path)? else {
        return Ok(());
    };
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (major, minor) = (parse_u64(&path, maj)?, parse_u64(&path, min)?);
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                "rios" => (&mut out.io_serviced_recursive, "Read"),
                "wios" => (&mut out.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value: parse_u64(&path, v)?,
            });
        }
    }
    Ok(())
}

/// Every page size with hugetlb files in `dir`.
fn hugetlb(dir: &Path, v1: bool) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        r => r.map_err(io_err(dir))?,
    };
    let usage_suffix = if v1 { ".usage_in_bytes" } else { ".current" };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|r| r.strip_suffix(usage_suffix))
        else {
            continue;
        };
        // Skip the rsvd variants ("hugetlb.2MB.rsvd.current").
        if size.contains('.') {
            continue;
        }
        let f = |s: &str| dir.join(format!("hugetlb.{size}.{s}"));
        let h = if v1 {
            Hugetlb {
                usage: num(&f("usage_in_bytes"))?,
                max: num(&f("max_usage_in_bytes"))?,
                failcnt: num(&f("failcnt"))?,
            }
        } else {
            Hugetlb {
                usage: num(&f("current"))?,
                max: 0,
                failcnt: flat(&f("events"))?.get("max").copied().unwrap_or(0),
            }
        };
        out.insert(size.to_string(), h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let dir = std::env::temp_dir().join(format!("husk-blkio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(
            &p,
            "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n",
        )
        .unwrap();
        let e = blkio_file(&p).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].major, e[0].minor, &*e[0].op, e[0].value),
            (8, 0, "Read", 4096)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cpu_lists() {
        let p = std::env::temp_dir().join(format!("husk-cpus-{}", std::process::id()));
        std::fs::write(&p, "0-2,5\n").unwrap();
        assert_eq!(cpu_list(&p).unwrap(), vec![0, 1, 2, 5]);
        std::fs::write(&p, "\n").unwrap();
        assert!(cpu_list(&p).unwrap().is_empty());
        std::fs::write(&p, "3-1").unwrap();
        assert!(cpu_list(&p).is_err());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn json_shape_as_runc() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["usage"].get("total").is_none());
        assert_eq!(v["memory"]["usage"]["limit"], 0);
        assert!(v["memory"]["kernelTCP"].is_object());
        assert!(v["blkio"].as_object().unwrap().is_empty());
        assert!(v["pids"].as_object().unwrap().is_empty());
    }
}
