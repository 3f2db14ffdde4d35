//! `/proc/meminfo`: the host's lines, in the host's order and widths, with the memory
//! numbers of the container's cgroup.
//!
//! Computed (kB): `MemTotal` = min(limit, host), `MemFree` = total − usage, `MemAvailable` =
//! free + the cgroup's file LRU pages (capped at total), `Buffers` 0, `Cached` the cgroup's
//! page cache, the LRU lists, `Shmem`, `Mapped`, `Dirty`, `Writeback`, `AnonPages`,
//! `SwapCached` from memory.stat, and `SwapTotal`/`SwapFree` from the swap limit and usage.
//! On v2, memory.stat also gives the slab, kernel stack, page table, percpu, zswap and THP
//! lines.
//!
//! The other lines: those with a ` kB` unit keep the host's value capped at `MemTotal`, except
//! `Slab`/`SReclaimable`/`SUnreclaim`/`KReclaimable`, which are 0 when the cgroup does not
//! report them (v1): procps `free` adds `SReclaimable` to buff/cache and takes it from "used",
//! so the host's slab would make a container look as if it held the host's caches. Lines
//! without a unit (`HugePages_*`) are the host's.

use std::collections::BTreeMap;

use super::cgroupfs::MemCg;

/// The numbers other files share (kB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemView {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

/// The host's `Key: value` pairs (values as printed, kB for most).
pub fn parse_host(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The memory.stat key of each computed line, on v1 and v2.
const STAT_KEYS: &[(&str, &str, &str)] = &[
    ("Cached", "total_cache", "file"),
    ("SwapCached", "total_swapcached", "swapcached"),
    ("Active(anon)", "total_active_anon", "active_anon"),
    ("Inactive(anon)", "total_inactive_anon", "inactive_anon"),
    ("Active(file)", "total_active_file", "active_file"),
    ("Inactive(file)", "total_inactive_file", "inactive_file"),
    ("Unevictable", "total_unevictable", "unevictable"),
    ("Dirty", "total_dirty", "file_dirty"),
    ("Writeback", "total_writeback", "file_writeback"),
    ("AnonPages", "total_rss", "anon"),
    ("Mapped", "total_mapped_file", "file_mapped"),
    ("Shmem", "total_shmem", "shmem"),
    // Only v2 reports these ("" on v1: 0, see the module docs).
    ("KReclaimable", "", "slab_reclaimable"),
    ("SReclaimable", "", "slab_reclaimable"),
    ("SUnreclaim", "", "slab_unreclaimable"),
    ("Slab", "", "slab"),
    ("KernelStack", "", "kernel_stack"),
    ("PageTables", "", "pagetables"),
    ("SecPageTables", "", "sec_pagetables"),
    ("Percpu", "", "percpu"),
    ("Zswap", "", "zswap"),
    ("Zswapped", "", "zswapped"),
    ("AnonHugePages", "", "anon_thp"),
    ("ShmemHugePages", "", "shmem_thp"),
    ("FileHugePages", "", "file_thp"),
];

fn stat_kb(cg: &MemCg, v1: &str, v2: &str) -> Option<u64> {
    let key = if cg.v2 { v2 } else { v1 };
    if key.is_empty() {
        return None;
    }
    Some(cg.stat.get(key).copied().unwrap_or(0) / 1024)
}

/// The shared numbers from the host's meminfo and the cgroup.
pub fn compute(host: &BTreeMap<String, u64>, cg: &MemCg) -> MemView {
    let h = |k: &str| host.get(k).copied().unwrap_or(0);
    let total = (cg.limit / 1024).min(h("MemTotal"));
    let free = total.saturating_sub(cg.usage / 1024);
    let (af, inf) = if cg.v2 {
        ("active_file", "inactive_file")
    } else {
        ("total_active_file", "total_inactive_file")
    };
    let file =
        (cg.stat.get(af).copied().unwrap_or(0) + cg.stat.get(inf).copied().unwrap_or(0)) / 1024;
    let available = (free + file).min(total);
    let (swap_total, swap_free) = match cg.swap {
        Some((limit, usage)) => {
            let t = (limit / 1024).min(h("SwapTotal"));
            (t, t.saturating_sub(usage / 1024))
        }
        None => (h("SwapTotal"), h("SwapFree").min(h("SwapTotal"))),
    };
    MemView {
        total,
        free,
        available,
        swap_total,
        swap_free,
    }
}

/// The value of a computed line, or `None` to apply the default rule.
pub(super) fn value(key: &str, cg: &MemCg, m: &MemView) -> Option<u64> {
    let sum = |a: &str, b: &str| Some(value(a, cg, m)? + value(b, cg, m)?);
    match key {
        "MemTotal" => Some(m.total),
        "MemFree" => Some(m.free),
        "MemAvailable" => Some(m.available),
        "Buffers" => Some(0),
        "SwapTotal" => Some(m.swap_total),
        "SwapFree" => Some(m.swap_free),
        "Active" => sum("Active(anon)", "Active(file)"),
        "Inactive" => sum("Inactive(anon)", "Inactive(file)"),
        _ => {
            let (_, v1, v2) = STAT_KEYS.iter().find(|(k, _, _)| *k == key)?;
            match stat_kb(cg, v1, v2) {
                Some(v) => Some(v.min(m.total)),
                None if matches!(key, "Slab" | "SReclaimable" | "SUnreclaim" | "KReclaimable") => {
                    Some(0)
                }
                None => None,
            }
        }
    }
}

/// Replaces the number of a `Key:     123 kB` line the way the kernel prints it: a fixed
/// prefix (the key, colon and spaces) then the number right-aligned in 8 columns, longer
/// numbers running on. The prefix's end is found from the host's line: 8 columns before the
/// number's end, or the number's start if the host's number was longer.
fn replace_number(line: &str, colon: usize, v: u64) -> String {
    let rest = &line[colon + 1..];
    let start = colon + 1 + (rest.len() - rest.trim_start().len());
    let len = line[start..].split_whitespace().next().map_or(0, str::len);
    let end = start + len;
    let prefix_end = start.min(end.saturating_sub(8)).max(colon + 1);
    format!("{}{v:>8}{}", &line[..prefix_end], &line[end..])
}

/// The container's meminfo from the host's text and the cgroup.
pub fn render(host_text: &str, cg: &MemCg) -> String {
    let host = parse_host(host_text);
    let m = compute(&host, cg);
    let mut out = String::with_capacity(host_text.len());
    for line in host_text.lines() {
        let Some(colon) = line.find(':') else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let key = &line[..colon];
        let kb = line.ends_with(" kB");
        let v = match value(key, cg, &m) {
            Some(v) => Some(v),
            None if kb => host.get(key).map(|v| (*v).min(m.total)),
            None => None,
        };
        match v {
            Some(v) => out.push_str(&replace_number(line, colon, v)),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::cgroupfs::parse_flat;

    const HOST: &str = "\
MemTotal:       24683780 kB
MemFree:        22524180 kB
MemAvailable:   24028696 kB
Buffers:           17020 kB
Cached:          1399500 kB
SwapCached:            0 kB
Active:           530976 kB
Inactive:         989852 kB
Active(anon):        272 kB
Inactive(anon):   114512 kB
Active(file):     530704 kB
Inactive(file):   875340 kB
Unevictable:       13632 kB
Mlocked:           10116 kB
SwapTotal:       8388604 kB
SwapFree:        8000000 kB
Dirty:             29276 kB
Writeback:             0 kB
AnonPages:        118084 kB
Mapped:            31772 kB
Shmem:             10488 kB
KReclaimable:     427784 kB
Slab:             483436 kB
SReclaimable:     427784 kB
SUnreclaim:        55652 kB
KernelStack:        2008 kB
CommitLimit:    12341888 kB
VmallocTotal:   34359738367 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    fn line<'a>(out: &'a str, key: &str) -> &'a str {
        out.lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap()
    }

    #[test]
    fn v1() {
        let stat = "total_cache 20971520\ntotal_rss 104857600\ntotal_shmem 1048576\n\
            total_mapped_file 2097152\ntotal_dirty 4096\ntotal_writeback 0\n\
            total_active_anon 0\ntotal_inactive_anon 104857600\ntotal_active_file 10485760\n\
            total_inactive_file 9437184\ntotal_unevictable 0\ntotal_swapcached 0\n\
            hierarchical_memory_limit 268435456\n";
        let cg = MemCg {
            v2: false,
            limit: 256 << 20,
            usage: 130 << 20,
            stat: parse_flat(stat),
            swap: Some((u64::MAX, 1 << 20)),
        };
        let out = render(HOST, &cg);
        assert_eq!(out.lines().count(), HOST.lines().count());
        assert_eq!(line(&out, "MemTotal"), "MemTotal:         262144 kB");
        assert_eq!(line(&out, "MemFree"), "MemFree:          129024 kB");
        // free + active_file + inactive_file = 129024 + 10240 + 9216
        assert_eq!(line(&out, "MemAvailable"), "MemAvailable:     148480 kB");
        assert_eq!(line(&out, "Buffers"), "Buffers:               0 kB");
        assert_eq!(line(&out, "Cached"), "Cached:            20480 kB");
        assert_eq!(line(&out, "Active"), "Active:            10240 kB");
        assert_eq!(line(&out, "Inactive"), "Inactive:         111616 kB");
        assert_eq!(line(&out, "Inactive(anon)"), "Inactive(anon):   102400 kB");
        assert_eq!(line(&out, "AnonPages"), "AnonPages:        102400 kB");
        assert_eq!(line(&out, "Shmem"), "Shmem:              1024 kB");
        assert_eq!(line(&out, "Mapped"), "Mapped:             2048 kB");
        assert_eq!(line(&out, "Dirty"), "Dirty:                 4 kB");
        // memsw unlimited: the host's swap, less the cgroup's swap usage.
        assert_eq!(line(&out, "SwapTotal"), "SwapTotal:       8388604 kB");
        assert_eq!(line(&out, "SwapFree"), "SwapFree:        8387580 kB");
        assert_eq!(line(&out, "Slab"), "Slab:                  0 kB");
        assert_eq!(line(&out, "SReclaimable"), "SReclaimable:          0 kB");
        // Other kB lines: the host's, capped.
        assert_eq!(line(&out, "Mlocked"), "Mlocked:           10116 kB");
        assert_eq!(line(&out, "KernelStack"), "KernelStack:        2008 kB");
        assert_eq!(line(&out, "CommitLimit"), "CommitLimit:      262144 kB");
        assert_eq!(line(&out, "VmallocTotal"), "VmallocTotal:     262144 kB");
        assert_eq!(line(&out, "HugePages_Total"), "HugePages_Total:       0");
        assert_eq!(line(&out, "Hugepagesize"), "Hugepagesize:       2048 kB");
    }

    #[test]
    fn v1_memsw_limited() {
        let cg = MemCg {
            v2: false,
            limit: 256 << 20,
            usage: 0,
            stat: BTreeMap::new(),
            swap: Some((256 << 20, 16 << 20)),
        };
        let m = compute(&parse_host(HOST), &cg);
        assert_eq!((m.swap_total, m.swap_free), (262144, 262144 - 16384));
    }

    #[test]
    fn v2_and_unlimited() {
        let stat = "anon 1048576\nfile 2097152\nactive_file 1048576\ninactive_file 0\n\
            slab_reclaimable 8192\nslab_unreclaimable 4096\nslab 12288\nkernel_stack 16384\n";
        let cg = MemCg {
            v2: true,
            limit: u64::MAX,
            usage: 4 << 20,
            stat: parse_flat(stat),
            swap: Some((0, 0)),
        };
        let out = render(HOST, &cg);
        assert_eq!(line(&out, "MemTotal"), "MemTotal:       24683780 kB");
        assert_eq!(line(&out, "MemFree"), "MemFree:        24679684 kB");
        assert_eq!(line(&out, "MemAvailable"), "MemAvailable:   24680708 kB");
        assert_eq!(line(&out, "Cached"), "Cached:             2048 kB");
        assert_eq!(line(&out, "AnonPages"), "AnonPages:          1024 kB");
        assert_eq!(line(&out, "SReclaimable"), "SReclaimable:          8 kB");
        assert_eq!(line(&out, "Slab"), "Slab:                 12 kB");
        assert_eq!(line(&out, "KernelStack"), "KernelStack:          16 kB");
        assert_eq!(line(&out, "SwapTotal"), "SwapTotal:             0 kB");
        assert_eq!(line(&out, "SwapFree"), "SwapFree:              0 kB");
        assert_eq!(line(&out, "VmallocTotal"), "VmallocTotal:   24683780 kB");
    }

    #[test]
    fn usage_over_limit_floors_at_zero() {
        let cg = MemCg {
            v2: true,
            limit: 1 << 20,
            usage: 2 << 20,
            stat: BTreeMap::new(),
            swap: None,
        };
        let m = compute(&parse_host(HOST), &cg);
        assert_eq!((m.total, m.free, m.available), (1024, 0, 0));
        assert_eq!((m.swap_total, m.swap_free), (8388604, 8000000));
    }
}
