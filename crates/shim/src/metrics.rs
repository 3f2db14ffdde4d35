//! The library's cgroup statistics as containerd's metrics messages: cgroup v1's
//! `io.containerd.cgroups.v1.Metrics` on v1 and hybrid hosts, v2's on a unified host, as
//! runc's shim reports them (`ctr task metrics` decodes either).

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use libcontainer::Stats;

use crate::events::any_of;

fn unified() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub fn to_any(s: &Stats) -> Any {
    if unified() {
        any_of(&to_v2(s))
    } else {
        any_of(&to_v1(s))
    }
}

fn entry(e: &libcontainer::cgroups::stats::MemoryEntry) -> v1::MemoryEntry {
    let mut m = v1::MemoryEntry::new();
    m.limit = e.limit;
    m.usage = e.usage;
    m.max = e.max;
    m.failcnt = e.failcnt;
    m
}

fn raw(s: &Stats, k: &str) -> u64 {
    s.memory.raw.get(k).copied().unwrap_or(0)
}

pub fn to_v1(s: &Stats) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    let mut pids = v1::PidsStat::new();
    pids.current = s.pids.current;
    pids.limit = s.pids.limit;
    m.pids = Some(pids).into();
    let mut usage = v1::CPUUsage::new();
    usage.total = s.cpu.usage.total;
    usage.kernel = s.cpu.usage.kernel;
    usage.user = s.cpu.usage.user;
    usage.per_cpu = s.cpu.usage.percpu.clone();
    let mut thr = v1::Throttle::new();
    thr.periods = s.cpu.throttling.periods;
    thr.throttled_periods = s.cpu.throttling.throttled_periods;
    thr.throttled_time = s.cpu.throttling.throttled_time;
    let mut cpu = v1::CPUStat::new();
    cpu.usage = Some(usage).into();
    cpu.throttling = Some(thr).into();
    m.cpu = Some(cpu).into();
    let mut mem = v1::MemoryStat::new();
    mem.cache = s.memory.cache;
    mem.rss = raw(s, "rss");
    mem.rss_huge = raw(s, "rss_huge");
    mem.mapped_file = raw(s, "mapped_file");
    mem.dirty = raw(s, "dirty");
    mem.writeback = raw(s, "writeback");
    mem.pg_fault = raw(s, "pgfault");
    mem.pg_maj_fault = raw(s, "pgmajfault");
    mem.inactive_anon = raw(s, "inactive_anon");
    mem.active_anon = raw(s, "active_anon");
    mem.inactive_file = raw(s, "inactive_file");
    mem.active_file = raw(s, "active_file");
    mem.unevictable = raw(s, "unevictable");
    mem.hierarchical_memory_limit = raw(s, "hierarchical_memory_limit");
    mem.hierarchical_swap_limit = raw(s, "hierarchical_memsw_limit");
    mem.total_cache = raw(s, "total_cache");
    mem.total_rss = raw(s, "total_rss");
    mem.usage = Some(entry(&s.memory.usage)).into();
    mem.swap = Some(entry(&s.memory.swap)).into();
    mem.kernel = Some(entry(&s.memory.kernel)).into();
    mem.kernel_tcp = Some(entry(&s.memory.kernel_tcp)).into();
    m.memory = Some(mem).into();
    for (size, h) in &s.hugetlb {
        let mut e = v1::HugetlbStat::new();
        e.pagesize = size.clone();
        e.usage = h.usage;
        e.max = h.max;
        e.failcnt = h.failcnt;
        m.hugetlb.push(e);
    }
    m
}

pub fn to_v2(s: &Stats) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    let mut pids = v2::PidsStat::new();
    pids.current = s.pids.current;
    pids.limit = s.pids.limit;
    m.pids = Some(pids).into();
    let mut cpu = v2::CPUStat::new();
    cpu.usage_usec = s.cpu.usage.total / 1000;
    cpu.user_usec = s.cpu.usage.user / 1000;
    cpu.system_usec = s.cpu.usage.kernel / 1000;
    cpu.nr_periods = s.cpu.throttling.periods;
    cpu.nr_throttled = s.cpu.throttling.throttled_periods;
    cpu.throttled_usec = s.cpu.throttling.throttled_time / 1000;
    m.cpu = Some(cpu).into();
    let mut mem = v2::MemoryStat::new();
    mem.anon = raw(s, "anon");
    mem.file = raw(s, "file");
    mem.kernel_stack = raw(s, "kernel_stack");
    mem.slab = raw(s, "slab");
    mem.sock = raw(s, "sock");
    mem.shmem = raw(s, "shmem");
    mem.file_mapped = raw(s, "file_mapped");
    mem.file_dirty = raw(s, "file_dirty");
    mem.inactive_anon = raw(s, "inactive_anon");
    mem.active_anon = raw(s, "active_anon");
    mem.inactive_file = raw(s, "inactive_file");
    mem.active_file = raw(s, "active_file");
    mem.unevictable = raw(s, "unevictable");
    mem.pgfault = raw(s, "pgfault");
    mem.pgmajfault = raw(s, "pgmajfault");
    mem.usage = s.memory.usage.usage;
    mem.usage_limit = s.memory.usage.limit;
    mem.max_usage = s.memory.usage.max;
    mem.swap_usage = s.memory.swap.usage;
    mem.swap_limit = s.memory.swap.limit;
    m.memory = Some(mem).into();
    for (size, h) in &s.hugetlb {
        let mut e = v2::HugeTlbStat::new();
        e.pagesize = size.clone();
        e.current = h.usage;
        e.max = h.max;
        m.hugetlb.push(e);
    }
    m
}
