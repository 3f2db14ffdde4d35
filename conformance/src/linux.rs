//! linux.devices (and the default devices), seccomp (by probing syscalls) and cgroup limits
//! (read through the container's own view of /sys/fs/cgroup).

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::Value;

use crate::checks::mountinfo;
use crate::sched::parse_list;
use crate::Tap;

pub fn all(c: &Value, t: &mut Tap) {
    devices(c, t);
    seccomp(c, t);
    cgroups(c, t);
}

fn dev_type(m: &std::fs::Metadata) -> &'static str {
    let ft = m.file_type();
    if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_fifo() {
        "p"
    } else {
        "not a device"
    }
}

// Written from the spec and the kernel's headers, not shared with libcontainer's copy on
// purpose: the checker must not inherit the runtime's mistakes.
/// runtime-spec's default devices: these MUST exist (char devices with these numbers).
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn devices(c: &Value, t: &mut Tap) {
    for (path, maj, min) in DEFAULT_DEVICES {
        let name = format!("default device {path}");
        let seen = std::fs::metadata(path).map(|m| {
            let r = m.rdev();
            (dev_type(&m), libc::major(r) as u64, libc::minor(r) as u64)
        });
        match seen {
            Ok(s) => t.eq(&name, ("c", maj, min), s),
            Err(e) => t.fail(&name, &format!("c {maj}:{min}"), &e.to_string()),
        }
    }
    for (i, d) in c["linux"]["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = d["path"].as_str().unwrap_or_default();
        let name = format!("linux.devices[{i}] ({path})");
        let m = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                t.fail(&name, "the node", &e.to_string());
                continue;
            }
        };
        let typ = match d["type"].as_str().unwrap_or_default() {
            "u" => "c",
            x => x,
        };
        let r = m.rdev();
        let mut want = vec![format!("type {typ}")];
        let mut seen = vec![format!("type {}", dev_type(&m))];
        if typ != "p" {
            want.push(format!(
                "{}:{}",
                d["major"].as_u64().unwrap_or(0),
                d["minor"].as_u64().unwrap_or(0)
            ));
            seen.push(format!("{}:{}", libc::major(r), libc::minor(r)));
        }
        if let Some(mode) = d["fileMode"].as_u64() {
            want.push(format!("mode {:o}", mode & 0o7777));
            seen.push(format!("mode {:o}", m.mode() & 0o7777));
        }
        for (k, v) in [("uid", m.uid()), ("gid", m.gid())] {
            if let Some(w) = d[k].as_u64() {
                want.push(format!("{k} {w}"));
                seen.push(format!("{k} {v}"));
            }
        }
        t.eq(&name, want.join(" "), seen.join(" "));
    }
}

/// Syscalls the checker can call with harmless arguments, to see what the filter does.
const PROBES: [(&str, libc::c_long); 9] = [
    ("getppid", libc::SYS_getppid),
    ("getpgrp", libc::SYS_getpgrp),
    ("sched_yield", libc::SYS_sched_yield),
    ("getuid", libc::SYS_getuid),
    ("geteuid", libc::SYS_geteuid),
    ("getgid", libc::SYS_getgid),
    ("getegid", libc::SYS_getegid),
    ("getsid", libc::SYS_getsid),
    ("getpriority", libc::SYS_getpriority),
];

/// Calls a probe syscall; Err(errno) when it failed.
fn probe(nr: libc::c_long) -> Result<(), i32> {
    // getsid(0) and getpriority(PRIO_PROCESS, 0): this process; the rest take no arguments.
    // SAFETY: every probe takes at most two integer arguments and has no side effect.
    let r = unsafe { libc::syscall(nr, 0, 0) };
    if r == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// What a seccomp action does to a probe: Some(Ok) runs it, Some(Err(errno)) fails it,
/// None for actions a probe cannot survive or see (kill, trap, trace, notify).
fn effect(action: &str, errno: Option<i64>) -> Option<Result<(), i32>> {
    match action {
        "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" => Some(Ok(())),
        "SCMP_ACT_ERRNO" => Some(Err(errno.unwrap_or(libc::EPERM as i64) as i32)),
        _ => None,
    }
}

fn seccomp(c: &Value, t: &mut Tap) {
    let s = &c["linux"]["seccomp"];
    if !s.is_object() {
        return;
    }
    let mode = crate::checks::status("Seccomp:");
    t.eq("linux.seccomp (filter mode)", "2", mode.as_str());
    let default = effect(
        s["defaultAction"].as_str().unwrap_or_default(),
        s["defaultErrnoRet"].as_i64(),
    );
    for (name, nr) in PROBES {
        // The first rule naming the syscall without argument conditions decides; a rule with
        // conditions makes the outcome depend on them, so the probe is skipped.
        let mut want = default;
        let mut conditional = false;
        for r in s["syscalls"].as_array().into_iter().flatten() {
            let named = r["names"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n.as_str() == Some(name));
            if !named {
                continue;
            }
            if r["args"].as_array().is_some_and(|a| !a.is_empty()) {
                conditional = true;
                break;
            }
            want = effect(
                r["action"].as_str().unwrap_or_default(),
                r["errnoRet"].as_i64(),
            );
            break;
        }
        if conditional {
            continue;
        }
        let Some(want) = want else { continue };
        let show = |r: Result<(), i32>| match r {
            Ok(()) => "allowed".to_string(),
            Err(e) => format!("errno {e}"),
        };
        t.eq(
            &format!("linux.seccomp: {name}"),
            show(want),
            show(probe(nr)),
        );
    }
}

/// The file `name` of the process's own cgroup for `controller` ("" for the unified
/// hierarchy), through the container's mounts of /sys/fs/cgroup.
fn cgroup_file(controller: &str, name: &str) -> Option<String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mi = mountinfo();
    let v1 = mi.iter().find(|l| {
        l.fstype == "cgroup"
            && l.sopts.split(',').any(|o| o == controller)
            && !controller.is_empty()
    });
    let (mount, path) = match v1 {
        Some(m) => {
            let path = own.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                ctrls.split(',').any(|c| c == controller).then_some(path)
            })?;
            (m, path)
        }
        None => {
            let m = mi.iter().rev().find(|l| l.fstype == "cgroup2")?;
            (m, own.lines().find_map(|l| l.strip_prefix("0::"))?)
        }
    };
    // The mount shows the hierarchy from its root; our path is relative to the same root
    // (a cgroup namespace makes both "/").
    let rel = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
    let f = format!(
        "{}/{}/{name}",
        mount.point,
        rel.trim_start_matches('/').trim_end_matches('/')
    )
    .replace("//", "/");
    std::path::Path::new(&f).exists().then_some(f)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

const PAGE: i64 = 4096;

/// A v1 byte limit as the kernel shows it: page-aligned down, -1 as its "unlimited".
fn v1_bytes(v: i64) -> String {
    if v < 0 {
        "9223372036854771712".into()
    } else {
        (v / PAGE * PAGE).to_string()
    }
}

fn v2_bytes(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        (v / PAGE * PAGE).to_string()
    }
}

struct Cg<'a> {
    t: &'a mut Tap,
    v2: bool,
}

impl Cg<'_> {
    /// One check: the file (v1 name or v2 name) holds `want`.
    fn file(&mut self, field: &str, ctrl: &str, v1: &str, v2: &str, want: String) {
        let (ctrl, name) = if self.v2 { ("", v2) } else { (ctrl, v1) };
        let label = format!("linux.resources.{field} ({name})");
        match cgroup_file(ctrl, name) {
            Some(f) => {
                let seen = read(&f);
                self.t.eq(&label, want, seen)
            }
            None => self
                .t
                .skip(&label, "no such file in the container's cgroup"),
        }
    }
}

fn cgroups(c: &Value, t: &mut Tap) {
    let r = &c["linux"]["resources"];
    if !r.is_object() {
        return;
    }
    let cg_mounted = mountinfo()
        .iter()
        .any(|l| l.fstype == "cgroup" || l.fstype == "cgroup2");
    if !cg_mounted {
        t.skip("linux.resources", "no cgroup filesystem in the container");
        return;
    }
    // Pure v2 when the memory controller is not on a v1 hierarchy.
    let v2 = cgroup_file("memory", "memory.limit_in_bytes").is_none();
    let mut g = Cg { t, v2 };
    let m = &r["memory"];
    if let Some(v) = m["limit"].as_i64() {
        g.file(
            "memory.limit",
            "memory",
            "memory.limit_in_bytes",
            "memory.max",
            if v2 { v2_bytes(v) } else { v1_bytes(v) },
        );
    }
    if let Some(v) = m["reservation"].as_i64() {
        g.file(
            "memory.reservation",
            "memory",
            "memory.soft_limit_in_bytes",
            "memory.low",
            if v2 { v2_bytes(v) } else { v1_bytes(v) },
        );
    }
    if let Some(v) = m["swap"].as_i64() {
        let want = if v2 {
            // memory.swap.max is the swap alone: memsw minus memory.
            let lim = m["limit"].as_i64().unwrap_or(-1);
            if v < 0 {
                "max".into()
            } else {
                v2_bytes(v - lim.max(0))
            }
        } else {
            v1_bytes(v)
        };
        g.file(
            "memory.swap",
            "memory",
            "memory.memsw.limit_in_bytes",
            "memory.swap.max",
            want,
        );
    }
    if let (Some(v), false) = (m["swappiness"].as_u64(), v2) {
        g.file(
            "memory.swappiness",
            "memory",
            "memory.swappiness",
            "",
            v.to_string(),
        );
    }
    let cpu = &r["cpu"];
    if let Some(s) = cpu["shares"].as_u64().filter(|s| *s > 0) {
        let want = if v2 {
            (1 + ((s.max(2) - 2) * 9999) / 262142).to_string()
        } else {
            s.to_string()
        };
        g.file("cpu.shares", "cpu", "cpu.shares", "cpu.weight", want);
    }
    let quota = cpu["quota"].as_i64().filter(|q| *q != 0);
    let period = cpu["period"].as_u64().filter(|p| *p != 0);
    if v2 {
        if quota.is_some() || period.is_some() {
            let q = match quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            g.file(
                "cpu.quota/period",
                "",
                "",
                "cpu.max",
                format!("{q} {}", period.unwrap_or(100000)),
            );
        }
    } else {
        if let Some(q) = quota {
            g.file("cpu.quota", "cpu", "cpu.cfs_quota_us", "", q.to_string());
        }
        if let Some(p) = period {
            g.file("cpu.period", "cpu", "cpu.cfs_period_us", "", p.to_string());
        }
    }
    for (k, file) in [("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")] {
        if let Some(v) = cpu[k].as_str().filter(|v| !v.is_empty()) {
            let label = format!("linux.resources.cpu.{k} ({file})");
            match cgroup_file(if v2 { "" } else { "cpuset" }, file) {
                Some(f) => g.t.eq(&label, parse_list(v), parse_list(&read(&f))),
                None => g.t.skip(&label, "no such file in the container's cgroup"),
            }
        }
    }
    if let Some(p) = r["pids"]["limit"].as_i64().filter(|p| *p != 0) {
        let want = if p < 0 {
            "max".to_string()
        } else {
            p.to_string()
        };
        g.file("pids.limit", "pids", "pids.max", "pids.max", want);
    }
    for h in r["hugepageLimits"].as_array().into_iter().flatten() {
        let size = h["pageSize"].as_str().unwrap_or_default();
        let limit = h["limit"].as_i64().unwrap_or(0);
        // hugetlb sits on the unified hierarchy of a hybrid host: find it wherever it is.
        let (v1f, v2f) = (
            format!("hugetlb.{size}.limit_in_bytes"),
            format!("hugetlb.{size}.max"),
        );
        let label = format!("linux.resources.hugepageLimits[{size}]");
        match (cgroup_file("hugetlb", &v1f), cgroup_file("", &v2f)) {
            (Some(f), _) => g.t.eq(&label, v1_bytes(limit), read(&f)),
            (None, Some(f)) => g.t.eq(&label, v2_bytes(limit), read(&f)),
            _ => {
                g.t.skip(&label, "no hugetlb file in the container's cgroup")
            }
        }
    }
    blkio(&mut g, &r["blockIO"]);
    if v2 {
        for (k, v) in r["unified"].as_object().into_iter().flatten() {
            let label = format!("linux.resources.unified[{k}]");
            match cgroup_file("", k) {
                Some(f) => g.t.eq(
                    &label,
                    v.as_str().unwrap_or_default().trim(),
                    read(&f).as_str(),
                ),
                None => g.t.skip(&label, "no such file"),
            }
        }
    }
}

fn blkio(g: &mut Cg, b: &Value) {
    if let Some(w) = b["weight"].as_u64().filter(|w| *w != 0) {
        let label = "linux.resources.blockIO.weight";
        let found = if g.v2 {
            cgroup_file("", "io.bfq.weight").or_else(|| cgroup_file("", "io.weight"))
        } else {
            cgroup_file("blkio", "blkio.weight")
                .or_else(|| cgroup_file("blkio", "blkio.bfq.weight"))
        };
        match found {
            // "default 500" (v2 and bfq) or "500".
            Some(f) => {
                let seen = read(&f);
                let first = seen.lines().next().unwrap_or_default();
                g.t.eq(
                    label,
                    w.to_string(),
                    first.rsplit(' ').next().unwrap_or_default().to_string(),
                )
            }
            None => g.t.skip(label, "no weight file (no bfq scheduler)"),
        }
    }
    let lists = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (field, v1f, key) in lists {
        for (i, d) in b[field].as_array().into_iter().flatten().enumerate() {
            let dev = format!(
                "{}:{}",
                d["major"].as_u64().unwrap_or(0),
                d["minor"].as_u64().unwrap_or(0)
            );
            let rate = d["rate"].as_u64().unwrap_or(0);
            let label = format!("linux.resources.blockIO.{field}[{i}] ({dev})");
            let file = if g.v2 {
                cgroup_file("", "io.max")
            } else {
                cgroup_file("blkio", v1f)
            };
            let Some(f) = file else {
                g.t.skip(&label, "no throttle file");
                continue;
            };
            let text = read(&f);
            let line = text.lines().find(|l| l.starts_with(&format!("{dev} ")));
            let seen = match line {
                None => "absent".to_string(),
                Some(l) if g.v2 => l
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .unwrap_or("absent")
                    .to_string(),
                Some(l) => l.split_whitespace().nth(1).unwrap_or_default().to_string(),
            };
            g.t.eq(&label, rate.to_string(), seen);
        }
    }
}
