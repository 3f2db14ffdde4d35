//! Reading a container's cgroup files ([`cgroups::Saved`]) on v1, v2 and hybrid hosts.
//!
//! Each controller is read from its v1 directory when the host has that v1 controller, else
//! from the unified directory when the unified hierarchy carries it (always on pure v2; on a
//! hybrid host only the controllers listed in the unified root's `cgroup.controllers`).
//!
//! A file that is absent while its directory exists means the kernel lacks the feature (no
//! swap accounting, say) and reads as `None`; a directory that disappeared (the container was
//! deleted) is an error with ENOENT naming the file, so the server can return that errno.
//!
//! The `parse_*` functions are pure, for the unit tests.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use cgroups::{Layout, Saved};

use crate::{Error, Result};

/// Values of v1 limits at or above this are "unlimited" (the kernel shows
/// `PAGE_COUNTER_MAX * PAGE_SIZE`, 9223372036854771712 on x86_64).
const V1_UNLIMITED: u64 = 1 << 62;

pub fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        what: path.display().to_string(),
        source,
    }
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV)
}

/// A file that must exist (host files, and cgroup files every kernel has).
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        if gone(&e) {
            io_err(path, std::io::Error::from_raw_os_error(libc::ENOENT))
        } else {
            io_err(path, e)
        }
    })
}

/// A file that may be absent: `None` when its directory exists but the file does not;
/// ENOENT naming the file when the directory itself is gone.
pub fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if gone(&e) => match path.parent() {
            Some(dir) if dir.is_dir() => Ok(None),
            _ => Err(io_err(
                path,
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )),
        },
        Err(e) => Err(io_err(path, e)),
    }
}

fn invalid(path: &Path, what: &str, text: &str) -> Error {
    Error::Invalid(format!("{}: {what}: {:?}", path.display(), text.trim()))
}

/// A controller's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctl<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// Where `controller` ("memory", "cpu", "cpuacct", "cpuset", "blkio", "pids") of the
/// container is read from, if anywhere.
pub fn controller<'a>(saved: &'a Saved, controller: &str) -> Option<Ctl<'a>> {
    if saved.layout != Layout::V2 {
        if let Some(d) = saved.v1_dir(controller) {
            return Some(Ctl::V1(d));
        }
    }
    let u = saved.unified.as_deref()?;
    let v2name = match controller {
        "blkio" => "io",
        "cpuacct" => "cpu",
        c => c,
    };
    if saved.layout == Layout::Hybrid {
        let root = lineage(u).pop()?;
        let ctls = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
        if !ctls.split_whitespace().any(|c| c == v2name) {
            return None;
        }
    }
    Some(Ctl::V2(u))
}

/// `dir` and its ancestors up to the hierarchy's root (the last directory with a
/// `cgroup.procs`), nearest first.
pub fn lineage(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut d = dir;
    while let Some(p) = d.parent() {
        if !p.join("cgroup.procs").exists() {
            break;
        }
        out.push(p.to_path_buf());
        d = p;
    }
    out
}

/// A number, or "max" as `u64::MAX`.
pub fn parse_u64(s: &str) -> Option<u64> {
    match s.trim() {
        "max" => Some(u64::MAX),
        s => s.parse().ok(),
    }
}

fn num(path: &Path, text: &str) -> Result<u64> {
    parse_u64(text).ok_or_else(|| invalid(path, "not a number", text))
}

/// "key value" lines (memory.stat, cpu.stat); lines that do not parse are skipped.
pub fn parse_flat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), parse_u64(f.next()?)?))
        })
        .collect()
}

/// A CPU list ("0-3,5\n"), expanded and ascending; `None` if it does not parse.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a > b {
            return None;
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

// ---- memory ----

/// The memory controller's numbers, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemCg {
    /// memory.stat has v2 keys (`file`, `anon`) rather than v1 ones (`total_cache`).
    pub v2: bool,
    /// The smallest limit of the cgroup and its ancestors; `u64::MAX` when unlimited.
    pub limit: u64,
    pub usage: u64,
    pub stat: BTreeMap<String, u64>,
    /// Swap limit (`u64::MAX` when unlimited) and usage, when the kernel accounts swap.
    pub swap: Option<(u64, u64)>,
}

fn norm_v1(v: u64) -> u64 {
    if v >= V1_UNLIMITED {
        u64::MAX
    } else {
        v
    }
}

pub fn memory(saved: &Saved) -> Result<Option<MemCg>> {
    match controller(saved, "memory") {
        Some(Ctl::V1(d)) => memory_v1(d).map(Some),
        Some(Ctl::V2(d)) => memory_v2(d).map(Some),
        None => Ok(None),
    }
}

fn memory_v1(d: &Path) -> Result<MemCg> {
    let p = d.join("memory.stat");
    let stat = parse_flat(&read(&p)?);
    let p = d.join("memory.usage_in_bytes");
    let usage = num(&p, &read(&p)?)?;
    let p = d.join("memory.limit_in_bytes");
    let own = norm_v1(num(&p, &read(&p)?)?);
    let hier = stat
        .get("hierarchical_memory_limit")
        .copied()
        .map_or(u64::MAX, norm_v1);
    let limit = own.min(hier);
    let mut swap = None;
    let p = d.join("memory.memsw.limit_in_bytes");
    if let Some(t) = read_opt(&p)? {
        let own = norm_v1(num(&p, &t)?);
        let hier = stat
            .get("hierarchical_memsw_limit")
            .copied()
            .map_or(u64::MAX, norm_v1);
        let memsw = own.min(hier);
        let swap_limit = if memsw == u64::MAX {
            u64::MAX
        } else {
            memsw.saturating_sub(limit.min(memsw))
        };
        let p = d.join("memory.memsw.usage_in_bytes");
        let memsw_usage = read_opt(&p)?.map_or(Ok(usage), |t| num(&p, &t))?;
        swap = Some((swap_limit, memsw_usage.saturating_sub(usage)));
    }
    Ok(MemCg {
        v2: false,
        limit,
        usage,
        stat,
        swap,
    })
}

/// The smallest value of `file` in `dir` and its ancestors (`u64::MAX` if none has it).
fn min_up(dir: &Path, file: &str) -> Result<u64> {
    let mut min = u64::MAX;
    for (i, d) in lineage(dir).iter().enumerate() {
        let p = d.join(file);
        // Only the container's own directory vanishing is an error; an ancestor cannot
        // vanish while it has a child.
        let t = if i == 0 {
            read_opt(&p)?
        } else {
            std::fs::read_to_string(&p).ok()
        };
        if let Some(t) = t {
            min = min.min(num(&p, &t)?);
        }
    }
    Ok(min)
}

fn memory_v2(d: &Path) -> Result<MemCg> {
    let p = d.join("memory.stat");
    let stat = parse_flat(&read(&p)?);
    let p = d.join("memory.current");
    let usage = num(&p, &read(&p)?)?;
    let limit = min_up(d, "memory.max")?;
    let p = d.join("memory.swap.current");
    let swap = match read_opt(&p)? {
        Some(t) => Some((min_up(d, "memory.swap.max")?, num(&p, &t)?)),
        None => None,
    };
    Ok(MemCg {
        v2: true,
        limit,
        usage,
        stat,
        swap,
    })
}

// ---- cpu ----

/// The cpuset's effective CPUs, if the container has a cpuset.
pub fn cpuset(saved: &Saved) -> Result<Option<Vec<u32>>> {
    let (d, files): (&Path, &[&str]) = match controller(saved, "cpuset") {
        Some(Ctl::V1(d)) => (d, &["cpuset.effective_cpus", "cpuset.cpus"]),
        Some(Ctl::V2(d)) => (d, &["cpuset.cpus.effective", "cpuset.cpus"]),
        None => return Ok(None),
    };
    for f in files {
        let p = d.join(f);
        if let Some(t) = read_opt(&p)? {
            let cpus = parse_cpu_list(&t).ok_or_else(|| invalid(&p, "not a cpu list", &t))?;
            if !cpus.is_empty() {
                return Ok(Some(cpus));
            }
        }
    }
    Ok(None)
}

/// `a/b < c/d` for quotas and periods.
fn smaller(a: (u64, u64), b: (u64, u64)) -> bool {
    (a.0 as u128) * (b.1 as u128) < (b.0 as u128) * (a.1 as u128)
}

/// `cpu.max` ("max 100000", "50000 100000"): the quota and period when limited.
pub fn parse_cpu_max(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_whitespace();
    let q = f.next()?.parse().ok()?;
    let p = f.next().map_or(Some(100_000), |p| p.parse().ok())?;
    (q > 0 && p > 0).then_some((q, p))
}

/// The smallest CFS quota/period of the cgroup and its ancestors, if any is set.
pub fn quota(saved: &Saved) -> Result<Option<(u64, u64)>> {
    let mut best: Option<(u64, u64)> = None;
    let mut consider = |qp: (u64, u64)| {
        if best.map_or(true, |b| smaller(qp, b)) {
            best = Some(qp);
        }
    };
    match controller(saved, "cpu") {
        Some(Ctl::V1(d)) => {
            for (i, d) in lineage(d).iter().enumerate() {
                let q = d.join("cpu.cfs_quota_us");
                let t = if i == 0 {
                    read_opt(&q)?
                } else {
                    std::fs::read_to_string(&q).ok()
                };
                let Some(t) = t else { continue };
                let Ok(qv) = t.trim().parse::<i64>() else {
                    return Err(invalid(&q, "not a number", &t));
                };
                let p = d.join("cpu.cfs_period_us");
                let pv = match std::fs::read_to_string(&p) {
                    Ok(t) => num(&p, &t)?,
                    Err(_) => 100_000,
                };
                if qv > 0 && pv > 0 {
                    consider((qv as u64, pv));
                }
            }
        }
        Some(Ctl::V2(d)) => {
            for (i, d) in lineage(d).iter().enumerate() {
                let p = d.join("cpu.max");
                let t = if i == 0 {
                    read_opt(&p)?
                } else {
                    std::fs::read_to_string(&p).ok()
                };
                if let Some(qp) = t.as_deref().and_then(parse_cpu_max) {
                    consider(qp);
                }
            }
        }
        None => {}
    }
    Ok(best)
}

/// CPU time used by the cgroup (and the cgroups below it), in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CpuUsage {
    /// No accounting available.
    #[default]
    None,
    /// (user, system) per host CPU number (v1 cpuacct).
    PerCpu(Vec<(u64, u64)>),
    /// (user, system) in total (v2 cpu.stat).
    Total(u64, u64),
}

impl CpuUsage {
    /// user + system, in nanoseconds.
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        match self {
            CpuUsage::None => 0,
            CpuUsage::PerCpu(v) => v.iter().map(|(u, s)| u + s).sum(),
            CpuUsage::Total(u, s) => u + s,
        }
    }
}

/// cpuacct.usage_all: a "cpu user system" header, then one line per possible CPU.
pub fn parse_usage_all(text: &str) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let cpu: usize = f[0].parse().ok()?;
        if out.len() <= cpu {
            out.resize(cpu + 1, (0, 0));
        }
        out[cpu] = (f[1].parse().ok()?, f[2].parse().ok()?);
    }
    Some(out)
}

fn list_u64(text: &str) -> Option<Vec<u64>> {
    text.split_whitespace().map(|v| v.parse().ok()).collect()
}

/// Splits the exact `total` runtime into user and system in the ratio of the tick-sampled
/// `(user, system)`; all user when nothing was sampled.
pub fn split(total: u64, (u, s): (u64, u64)) -> (u64, u64) {
    if u + s == 0 {
        return (total, 0);
    }
    let user = (total as u128 * u as u128 / (u + s) as u128) as u64;
    (user, total - user)
}

/// v1: the exact runtime per CPU (cpuacct.usage_percpu, which cpuacct.usage sums) split
/// by the user/system ratio of cpuacct.usage_all (or usage_percpu_user/_sys). Those split
/// files are sampled at ticks and drift from the runtime (by 8 % under a CFS quota in the
/// tests), so the runtime is what `/proc/stat`'s total follows.
fn cpu_usage_v1(d: &Path) -> Result<CpuUsage> {
    let p = d.join("cpuacct.usage_percpu");
    let t = read(&p)?;
    let total = list_u64(&t).ok_or_else(|| invalid(&p, "bad format", &t))?;
    let p = d.join("cpuacct.usage_all");
    let ratio = if let Some(t) = read_opt(&p)? {
        parse_usage_all(&t).ok_or_else(|| invalid(&p, "bad format", &t))?
    } else {
        let pu = d.join("cpuacct.usage_percpu_user");
        let ps = d.join("cpuacct.usage_percpu_sys");
        match (read_opt(&pu)?, read_opt(&ps)?) {
            (Some(u), Some(s)) => {
                let u = list_u64(&u).ok_or_else(|| invalid(&pu, "bad format", &u))?;
                let s = list_u64(&s).ok_or_else(|| invalid(&ps, "bad format", &s))?;
                u.into_iter().zip(s).collect()
            }
            _ => Vec::new(),
        }
    };
    Ok(CpuUsage::PerCpu(
        total
            .iter()
            .enumerate()
            .map(|(i, &t)| split(t, ratio.get(i).copied().unwrap_or((1, 0))))
            .collect(),
    ))
}

pub fn cpu_usage(saved: &Saved) -> Result<CpuUsage> {
    if saved.layout != Layout::V2 {
        if let Some(d) = saved.v1_dir("cpuacct") {
            return cpu_usage_v1(d);
        }
    }
    // cpu.stat's usage lines are a core file of every v2 cgroup, with or without the cpu
    // controller. user_usec + system_usec is scaled to usage_usec by the kernel already;
    // split again so that the total is exactly usage_usec.
    if let Some(u) = saved.unified.as_deref() {
        let p = u.join("cpu.stat");
        if let Some(t) = read_opt(&p)? {
            let st = parse_flat(&t);
            let get = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
            let (u, s) = split(get("usage_usec"), (get("user_usec"), get("system_usec")));
            return Ok(CpuUsage::Total(u, s));
        }
    }
    Ok(CpuUsage::None)
}

// ---- tasks ----

/// The thread ids in the container's cgroup and the cgroups below it: v1 `tasks` of the
/// pids (else cpu, cpuacct, memory, any) hierarchy, v2 `cgroup.threads`.
pub fn tasks(saved: &Saved) -> Result<Vec<i32>> {
    let v1 = if saved.layout == Layout::V2 {
        None
    } else {
        ["pids", "cpu", "cpuacct", "memory", "freezer"]
            .iter()
            .find_map(|c| saved.v1_dir(c))
            .or_else(|| saved.v1.first().map(|d| d.dir.as_path()))
    };
    let (dir, file) = match (v1, saved.unified.as_deref()) {
        (Some(d), _) => (d, "tasks"),
        (None, Some(u)) => (u, "cgroup.threads"),
        (None, None) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    collect_tasks(dir, file, true, &mut out)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect_tasks(dir: &Path, file: &str, top: bool, out: &mut Vec<i32>) -> Result<()> {
    let p = dir.join(file);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if !top && gone(&e) => return Ok(()),
        Err(e) => return Err(io_err(&p, e)),
    };
    out.extend(
        text.split_whitespace()
            .filter_map(|t| t.parse::<i32>().ok()),
    );
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_tasks(&e.path(), file, false, out)?;
        }
    }
    Ok(())
}

// ---- io ----

/// One block device's I/O by the cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevIo {
    pub major: u32,
    pub minor: u32,
    pub rios: u64,
    pub wios: u64,
    pub rbytes: u64,
    pub wbytes: u64,
    pub dios: u64,
    pub dbytes: u64,
}

fn dev_entry(map: &mut BTreeMap<(u32, u32), DevIo>, dev: &str) -> Option<(u32, u32)> {
    let (a, b) = dev.split_once(':')?;
    let key = (a.parse().ok()?, b.parse().ok()?);
    map.entry(key).or_insert_with(|| DevIo {
        major: key.0,
        minor: key.1,
        ..DevIo::default()
    });
    Some(key)
}

/// v1 blkio.throttle.io_serviced and io_service_bytes ("8:0 Read 4096" lines).
pub fn parse_blkio_v1(serviced: &str, bytes: &str) -> Vec<DevIo> {
    let mut map = BTreeMap::new();
    for (text, is_bytes) in [(serviced, false), (bytes, true)] {
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, v] = f[..] else { continue };
            let (Some(key), Ok(v)) = (dev_entry(&mut map, dev), v.parse::<u64>()) else {
                continue;
            };
            let d = map.get_mut(&key).expect("inserted");
            match (op, is_bytes) {
                ("Read", false) => d.rios = v,
                ("Write", false) => d.wios = v,
                ("Discard", false) => d.dios = v,
                ("Read", true) => d.rbytes = v,
                ("Write", true) => d.wbytes = v,
                ("Discard", true) => d.dbytes = v,
                _ => {}
            }
        }
    }
    map.into_values().collect()
}

/// v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" lines).
pub fn parse_io_stat(text: &str) -> Vec<DevIo> {
    let mut map = BTreeMap::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some(key) = f.next().and_then(|dev| dev_entry(&mut map, dev)) else {
            continue;
        };
        let d = map.get_mut(&key).expect("inserted");
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => d.rbytes = v,
                "wbytes" => d.wbytes = v,
                "rios" => d.rios = v,
                "wios" => d.wios = v,
                "dbytes" => d.dbytes = v,
                "dios" => d.dios = v,
                _ => {}
            }
        }
    }
    map.into_values().collect()
}

/// The container's block I/O per device (cgroup and below), by major:minor.
pub fn io(saved: &Saved) -> Result<Vec<DevIo>> {
    match controller(saved, "blkio") {
        Some(Ctl::V1(d)) => {
            let pick = |f: &str| -> Result<String> {
                let rec = d.join(format!("{f}_recursive"));
                match read_opt(&rec)? {
                    Some(t) => Ok(t),
                    None => Ok(read_opt(&d.join(f))?.unwrap_or_default()),
                }
            };
            let serviced = pick("blkio.throttle.io_serviced")?;
            let bytes = pick("blkio.throttle.io_service_bytes")?;
            Ok(parse_blkio_v1(&serviced, &bytes))
        }
        Some(Ctl::V2(d)) => Ok(read_opt(&d.join("io.stat"))?
            .map(|t| parse_io_stat(&t))
            .unwrap_or_default()),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_lists() {
        let m = parse_flat("anon 4096\nfile 8192\nbad\nx max\n");
        assert_eq!(m["anon"], 4096);
        assert_eq!(m["file"], 8192);
        assert_eq!(m["x"], u64::MAX);
        assert!(!m.contains_key("bad"));
        assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("1\n"), Some(vec![1]));
        assert_eq!(parse_cpu_list("\n"), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some((150000, 100000)));
        assert!(smaller((50000, 100000), (100000, 100000)));
        assert!(!smaller((300000, 100000), (100000, 50000)));
    }

    #[test]
    fn split_by_ratio() {
        assert_eq!(split(1000, (3, 1)), (750, 250));
        assert_eq!(split(1000, (0, 0)), (1000, 0));
        assert_eq!(split(10, (1, 2)), (3, 7));
        assert_eq!(
            split(u64::MAX / 2, (u64::MAX / 4, u64::MAX / 4)).1,
            u64::MAX / 4 + 1
        );
    }

    #[test]
    fn usage_all() {
        let t = "cpu user system\n0 100 20\n1 300 40\n";
        assert_eq!(parse_usage_all(t), Some(vec![(100, 20), (300, 40)]));
    }

    #[test]
    fn blkio() {
        let serviced = "254:0 Read 3\n254:0 Write 5\n254:0 Sync 8\n254:0 Discard 1\n\
                        254:0 Total 9\n8:0 Read 1\nTotal 10\n";
        let bytes = "254:0 Read 4096\n254:0 Write 1048576\n254:0 Total 1052672\nTotal 1\n";
        let v = parse_blkio_v1(serviced, bytes);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].major, v[0].minor, v[0].rios), (8, 0, 1));
        assert_eq!(
            v[1],
            DevIo {
                major: 254,
                minor: 0,
                rios: 3,
                wios: 5,
                rbytes: 4096,
                wbytes: 1048576,
                dios: 1,
                dbytes: 0
            }
        );
        let v = parse_io_stat("8:16 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            v,
            vec![DevIo {
                major: 8,
                minor: 16,
                rios: 1,
                wios: 2,
                rbytes: 512,
                wbytes: 1024,
                dios: 0,
                dbytes: 0
            }]
        );
    }
}
