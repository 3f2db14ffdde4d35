//! Per-process attributes the kernel reports through syscalls: time namespace offsets,
//! personality, scheduler, I/O priority, CPU affinity, NUMA memory policy.

use serde_json::Value;

use crate::Tap;

pub fn all(c: &Value, t: &mut Tap) {
    time_offsets(c, t);
    personality(c, t);
    scheduler(c, t);
    io_priority(c, t);
    affinity(c, t);
    memory_policy(c, t);
}

fn time_offsets(c: &Value, t: &mut Tap) {
    let Some(offs) = c["linux"]["timeOffsets"].as_object() else {
        return;
    };
    // "monotonic 3600 500" per clock, as written to timens_offsets.
    let seen = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
    for (clock, o) in offs {
        let want = format!(
            "{clock} {} {}",
            o["secs"].as_i64().unwrap_or(0),
            o["nanosecs"].as_u64().unwrap_or(0)
        );
        let line = seen
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .find(|l| l.starts_with(&format!("{clock} ")))
            .unwrap_or_else(|| "absent".into());
        t.eq(&format!("linux.timeOffsets.{clock}"), want, line);
    }
}

fn personality(c: &Value, t: &mut Tap) {
    let Some(domain) = c["linux"]["personality"]["domain"].as_str() else {
        return;
    };
    // SAFETY: personality(0xffffffff) only queries.
    let p = unsafe { libc::personality(0xffff_ffff) };
    let seen = match p & 0xff {
        0 => "LINUX".to_string(),
        0x08 => "LINUX32".to_string(),
        x => format!("{x:#x}"),
    };
    t.eq("linux.personality.domain", domain, &seen);
}

const POLICIES: [(&str, i32); 6] = [
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

/// struct sched_attr (sched_getattr(2)).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn scheduler(c: &Value, t: &mut Tap) {
    let s = &c["process"]["scheduler"];
    let Some(policy) = s["policy"].as_str() else {
        return;
    };
    let mut a = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: a is a writable sched_attr of `size` bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut a as *mut SchedAttr,
            size,
            0,
        )
    };
    if r != 0 {
        t.fail(
            "process.scheduler",
            "sched_getattr to work",
            &std::io::Error::last_os_error().to_string(),
        );
        return;
    }
    let seen = POLICIES
        .iter()
        .find(|(_, n)| *n as u32 == a.policy)
        .map_or(format!("policy {}", a.policy), |(s, _)| s.to_string());
    t.eq("process.scheduler.policy", policy, &seen);
    if let Some(n) = s["nice"].as_i64() {
        t.eq("process.scheduler.nice", n, a.nice as i64);
    }
    if let Some(p) = s["priority"].as_i64() {
        t.eq("process.scheduler.priority", p, a.priority as i64);
    }
    for (k, v) in [
        ("runtime", a.runtime),
        ("deadline", a.deadline),
        ("period", a.period),
    ] {
        if let Some(w) = s[k].as_u64() {
            t.eq(&format!("process.scheduler.{k}"), w, v);
        }
    }
}

fn io_priority(c: &Value, t: &mut Tap) {
    let p = &c["process"]["ioPriority"];
    let Some(class) = p["class"].as_str() else {
        return;
    };
    // IOPRIO_WHO_PROCESS, this process: (class << 13) | level.
    // SAFETY: ioprio_get takes two integers.
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    let seen_class = match v >> 13 {
        1 => "IOPRIO_CLASS_RT".to_string(),
        2 => "IOPRIO_CLASS_BE".to_string(),
        3 => "IOPRIO_CLASS_IDLE".to_string(),
        x => format!("class {x}"),
    };
    t.eq("process.ioPriority.class", class, &seen_class);
    if let Some(level) = p["priority"].as_i64() {
        t.eq("process.ioPriority.priority", level, v & 0x1fff);
    }
}

/// "0-2,5" as a sorted list of numbers.
pub fn parse_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.trim().parse::<u32>().ok()),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn affinity(c: &Value, t: &mut Tap) {
    let a = &c["process"]["execCPUAffinity"];
    // "not applicable to the container's init process" (runtime-spec), which this checker is:
    // the init keeps every CPU (the runtime resets what it inherited, as runc does).
    let Some(field) = ["final", "initial"].into_iter().find(|f| a[*f].is_string()) else {
        return;
    };
    // SAFETY: an all-zero cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a writable cpu_set_t of the given size.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    let seen: Vec<u32> = if r == 0 {
        // SAFETY: CPU_ISSET reads the set filled above.
        (0..1024u32)
            .filter(|i| unsafe { libc::CPU_ISSET(*i as usize, &set) })
            .collect()
    } else {
        Vec::new()
    };
    // Every online CPU of the container's cpuset.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut want = parse_list(&online);
    if let Some(cpus) = c["linux"]["resources"]["cpu"]["cpus"].as_str() {
        let cpuset = parse_list(cpus);
        want.retain(|n| cpuset.contains(n));
    }
    t.eq(&format!("process.execCPUAffinity.{field}"), want, seen);
}

// Written from the spec and the kernel's headers, not shared with libcontainer's copy on
// purpose: the checker must not inherit the runtime's mistakes.
const MPOL_MODES: [(&str, i64); 7] = [
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];
const MPOL_FLAGS: [(&str, i64); 3] = [
    ("MPOL_F_STATIC_NODES", 1 << 15),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
];

fn memory_policy(c: &Value, t: &mut Tap) {
    let p = &c["linux"]["memoryPolicy"];
    let Some(mode) = p["mode"].as_str() else {
        return;
    };
    let mut got: libc::c_int = -1;
    let mut mask = [0u64; 16];
    // SAFETY: got and mask are writable; maxnode is mask's size in bits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut got as *mut libc::c_int,
            mask.as_mut_ptr(),
            (mask.len() * 64) as libc::c_ulong,
            0usize,
            0usize,
        )
    };
    if r != 0 {
        t.fail(
            "linux.memoryPolicy",
            "get_mempolicy to work",
            &std::io::Error::last_os_error().to_string(),
        );
        return;
    }
    let got = got as i64;
    let flags_mask: i64 = MPOL_FLAGS.iter().map(|f| f.1).sum();
    let seen_mode = MPOL_MODES
        .iter()
        .find(|(_, n)| *n == got & !flags_mask)
        .map_or(format!("mode {}", got & !flags_mask), |(s, _)| {
            s.to_string()
        });
    t.eq("linux.memoryPolicy.mode", mode, &seen_mode);
    let mut want_flags: Vec<&str> = p["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .collect();
    let mut seen_flags: Vec<&str> = MPOL_FLAGS
        .iter()
        .filter(|(_, b)| got & b != 0)
        .map(|(s, _)| *s)
        .collect();
    want_flags.sort_unstable();
    seen_flags.sort_unstable();
    t.eq("linux.memoryPolicy.flags", want_flags, seen_flags);
    if let Some(nodes) = p["nodes"].as_str() {
        let seen: Vec<u32> = (0..1024u32)
            .filter(|i| mask[(*i / 64) as usize] >> (i % 64) & 1 == 1)
            .collect();
        // MPOL_F_RELATIVE_NODES reports the nodes as given; others as allowed nodes.
        t.eq("linux.memoryPolicy.nodes", parse_list(nodes), seen);
    }
}
