//! `linux.resources` on cgroup v1: [`plan_v1`] maps the spec to (controller, file, value)
//! writes, [`write()`] puts them in the container's per-controller directories.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources, LinuxThrottleDevice};

use crate::resources::{device_rules, invalid, write_entry, Entry, Mode};
use crate::{Result, Saved};

/// The v1 writes for `r`, in order. Pure: no file is read. `unified` is not looked at (the
/// caller refuses or redirects it).
#[allow(deprecated)] // memory.kernel: obsolete, still mapped when the kernel has the file
pub fn plan_v1(r: &LinuxResources) -> Result<Vec<Entry>> {
    let mut p = Vec::new();
    if let Some(rules) = device_rules(r) {
        p.push(Entry::new("devices", "devices.deny", "a", "devices"));
        for (i, d) in rules.iter().enumerate() {
            let file = if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            let field = match r.devices().as_ref().map(|v| v.len()) {
                Some(n) if i < n => format!("devices[{i}]"),
                _ => "devices (runc's default rules)".to_string(),
            };
            p.push(Entry::new("devices", file, device_rule(d), &field));
        }
    }
    // Zero means unset for the limits below, as in runc: engines send a whole resources
    // object with zeros for what they leave alone (docker's `update` does).
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|x| *x != 0) {
            let e = Entry::new("memory", "memory.limit_in_bytes", l, "memory.limit");
            p.push(if m.check_before_update() == Some(true) {
                e.mode(Mode::NotBelowUsage("memory.usage_in_bytes"))
            } else {
                e
            });
        }
        if let Some(s) = m.swap().filter(|x| *x != 0) {
            // memory+swap; [`write`] orders it against memory.limit_in_bytes.
            p.push(Entry::new(
                "memory",
                "memory.memsw.limit_in_bytes",
                s,
                "memory.swap",
            ));
        }
        if let Some(v) = m.reservation().filter(|x| *x != 0) {
            p.push(Entry::new(
                "memory",
                "memory.soft_limit_in_bytes",
                v,
                "memory.reservation",
            ));
        }
        if let Some(v) = m.kernel().filter(|x| *x != 0) {
            p.push(
                Entry::new("memory", "memory.kmem.limit_in_bytes", v, "memory.kernel")
                    .mode(Mode::IfPresent),
            );
        }
        if let Some(v) = m.kernel_tcp().filter(|x| *x != 0) {
            p.push(
                Entry::new(
                    "memory",
                    "memory.kmem.tcp.limit_in_bytes",
                    v,
                    "memory.kernelTCP",
                )
                .mode(Mode::IfPresent),
            );
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                return Err(invalid(
                    "memory.swappiness",
                    format!("{v} is not in 0..=100"),
                ));
            }
            p.push(Entry::new(
                "memory",
                "memory.swappiness",
                v,
                "memory.swappiness",
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            p.push(Entry::new(
                "memory",
                "memory.oom_control",
                1,
                "memory.disableOOMKiller",
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares().filter(|x| *x != 0) {
            p.push(Entry::new("cpu", "cpu.shares", v, "cpu.shares"));
        }
        if let Some(v) = c.period().filter(|x| *x != 0) {
            p.push(Entry::new("cpu", "cpu.cfs_period_us", v, "cpu.period"));
        }
        if let Some(v) = c.quota().filter(|x| *x != 0) {
            p.push(Entry::new("cpu", "cpu.cfs_quota_us", v, "cpu.quota"));
        }
        if let Some(v) = c.burst() {
            p.push(Entry::new("cpu", "cpu.cfs_burst_us", v, "cpu.burst"));
        }
        if let Some(v) = c.realtime_period().filter(|x| *x != 0) {
            p.push(Entry::new(
                "cpu",
                "cpu.rt_period_us",
                v,
                "cpu.realtimePeriod",
            ));
        }
        if let Some(v) = c.realtime_runtime().filter(|x| *x != 0) {
            p.push(Entry::new(
                "cpu",
                "cpu.rt_runtime_us",
                v,
                "cpu.realtimeRuntime",
            ));
        }
        if let Some(v) = c.idle() {
            p.push(Entry::new("cpu", "cpu.idle", v, "cpu.idle"));
        }
        if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            p.push(Entry::new("cpuset", "cpuset.cpus", v, "cpu.cpus"));
        }
        if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            p.push(Entry::new("cpuset", "cpuset.mems", v, "cpu.mems"));
        }
    }
    if let Some(pids) = r.pids() {
        p.push(Entry::new(
            "pids",
            "pids.max",
            pids_max(pids.limit()),
            "pids.limit",
        ));
    }
    if let Some(b) = r.block_io() {
        // 0 means unset, as in runc: docker sends `"weight": 0` for every container.
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            p.push(
                Entry::new("blkio", "blkio.weight", w, "blockIO.weight")
                    .mode(Mode::Or("blkio.bfq.weight".into(), w.to_string())),
            );
        }
        if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
            p.push(Entry::new(
                "blkio",
                "blkio.leaf_weight",
                w,
                "blockIO.leafWeight",
            ));
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let dev = format!("{}:{}", d.major(), d.minor());
            if let Some(w) = d.weight().filter(|w| *w != 0) {
                let v = format!("{dev} {w}");
                p.push(
                    Entry::new(
                        "blkio",
                        "blkio.weight_device",
                        &v,
                        &format!("blockIO.weightDevice[{i}].weight"),
                    )
                    .mode(Mode::Or("blkio.bfq.weight_device".into(), v.clone())),
                );
            }
            if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
                p.push(Entry::new(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{dev} {w}"),
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                ));
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "read_bps_device",
                "throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "write_bps_device",
                "throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "read_iops_device",
                "throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "write_iops_device",
                "throttleWriteIOPSDevice",
            ),
        ];
        for (list, file, field) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                p.push(Entry::new(
                    "blkio",
                    &format!("blkio.throttle.{file}"),
                    throttle(t),
                    &format!("blockIO.{field}[{i}]"),
                ));
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let size = crate::resources::page_size(h.page_size(), i)?;
        p.push(Entry::new(
            "hugetlb",
            &format!("hugetlb.{size}.limit_in_bytes"),
            h.limit(),
            &format!("hugepageLimits[{i}]"),
        ));
        p.push(
            Entry::new(
                "hugetlb",
                &format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                h.limit(),
                &format!("hugepageLimits[{i}]"),
            )
            .mode(Mode::IfPresent),
        );
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            p.push(Entry::new(
                "net_cls",
                "net_cls.classid",
                id,
                "network.classID",
            ));
        }
        for (i, prio) in n.priorities().iter().flatten().enumerate() {
            p.push(Entry::new(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", prio.name(), prio.priority()),
                &format!("network.priorities[{i}]"),
            ));
        }
    }
    p.extend(rdma(r, "rdma.max"));
    Ok(p)
}

/// `rdma.max` lines (the same format in v1 and v2): `mlx4_0 hca_handle=2 hca_object=2000`.
pub(crate) fn rdma(r: &LinuxResources, file: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut devs: Vec<_> = r.rdma().iter().flatten().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v += &format!(" hca_handle={h}");
        }
        if let Some(o) = l.hca_objects() {
            v += &format!(" hca_object={o}");
        }
        if v != *dev {
            out.push(Entry::new("rdma", file, v, &format!("rdma[{dev:?}]")));
        }
    }
    out
}

/// `pids.max`: a positive limit; 0 is "1" (runtime-spec 1.3 made 0 a limit; runc 1.5 writes 1,
/// as systemd's TasksMax cannot be 0, so both drivers agree); negative means no limit.
pub(crate) fn pids_max(limit: i64) -> String {
    match limit {
        1.. => limit.to_string(),
        0 => "1".into(),
        _ => "max".into(),
    }
}

fn throttle(t: &LinuxThrottleDevice) -> String {
    format!("{}:{} {}", t.major(), t.minor(), t.rate())
}

/// `devices.allow`/`devices.deny` text of a rule: `c 1:3 rwm`, `a *:* rwm`.
pub(crate) fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
    let access = d
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    format!(
        "{} {}:{} {access}",
        d.typ().unwrap_or_default().as_str(),
        num(d.major()),
        num(d.minor())
    )
}

/// Writes the plan to the container's v1 directories. memory.memsw.limit_in_bytes is written
/// before memory.limit_in_bytes when the new limit is above the current memsw limit (the kernel
/// keeps limit <= memsw at every step), after it otherwise. A controller with no hierarchy is
/// an error naming the field ("net_cls is not mounted").
pub fn write(saved: &Saved, mut plan: Vec<Entry>) -> Result<()> {
    order_swap(saved, &mut plan)?;
    // The kernel keeps rt_runtime <= rt_period and cfs_burst <= cfs_quota at every write.
    order_bounded(saved, &mut plan, "cpu.rt_period_us", "cpu.rt_runtime_us");
    order_bounded(saved, &mut plan, "cpu.cfs_quota_us", "cpu.cfs_burst_us");
    for e in &plan {
        let Some(dir) = saved.v1_dir(e.controller) else {
            if e.mode == Mode::IfPresent {
                continue;
            }
            return Err(invalid(
                &e.field,
                format!(
                    "the {} cgroup controller is not mounted on this host (no v1 hierarchy \
                     has it{})",
                    e.controller,
                    if saved.unified.is_some() {
                        ", nor can the unified one take it"
                    } else {
                        ""
                    }
                ),
            ));
        };
        write_entry(dir, e)?;
    }
    Ok(())
}

fn order_swap(saved: &Saved, plan: &mut [Entry]) -> Result<()> {
    let pos = |f: &str| plan.iter().position(|e| e.file == f);
    let (Some(l), Some(s)) = (
        pos("memory.limit_in_bytes"),
        pos("memory.memsw.limit_in_bytes"),
    ) else {
        return Ok(());
    };
    let Some(dir) = saved.v1_dir("memory") else {
        return Ok(());
    };
    let cur = match std::fs::read_to_string(dir.join("memory.memsw.limit_in_bytes")) {
        Ok(s) => s.trim().parse::<u64>().unwrap_or(u64::MAX),
        Err(_) => return Ok(()), // written in plan order; a missing file errors there
    };
    let new: i64 = plan[l].value.parse().unwrap_or(-1);
    let raise = new < 0 || new as u64 > cur;
    if raise != (s < l) {
        plan.swap(l, s);
    }
    Ok(())
}

/// For a `small` file the kernel keeps at or below `big` (both in the plan): `big` goes first
/// unless its new value is below the current `small`, whatever the current values are.
fn order_bounded(saved: &Saved, plan: &mut [Entry], big: &str, small: &str) {
    let pos = |f: &str| plan.iter().position(|e| e.file == f);
    let (Some(b), Some(s)) = (pos(big), pos(small)) else {
        return;
    };
    let current_small = saved
        .v1_dir(plan[s].controller)
        .and_then(|d| std::fs::read_to_string(d.join(small)).ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    if big_first(plan[b].value.parse().unwrap_or(-1), current_small) != (b < s) {
        plan.swap(b, s);
    }
}

/// Whether the bound goes first: it may, unless it drops below the current bounded value (a
/// negative bound is "no limit").
fn big_first(new_big: i64, current_small: i64) -> bool {
    new_big < 0 || new_big >= current_small
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::default_device_rules;

    #[test]
    fn bounded_pairs_are_written_in_an_order_the_kernel_takes() {
        // rt_period 500 while rt_runtime is 950: runtime first.
        assert!(!big_first(500, 950));
        assert!(big_first(2000, 950));
        assert!(big_first(950, 950));
        // cfs_quota -1 (no limit) always first; a quota below the current burst after it.
        assert!(big_first(-1, 30000));
        assert!(!big_first(20000, 30000));
    }

    fn res(j: serde_json::Value) -> LinuxResources {
        serde_json::from_value(j).unwrap()
    }

    fn triples(p: &[Entry]) -> Vec<(&str, &str, &str)> {
        p.iter()
            .map(|e| (e.controller, e.file.as_str(), e.value.as_str()))
            .collect()
    }

    #[test]
    fn full_object() {
        let r = res(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
            "memory": {"limit": 33554432, "reservation": 16777216, "swap": 67108864,
                       "kernel": 1048576, "kernelTCP": 524288, "swappiness": 10,
                       "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                    "realtimeRuntime": 950, "realtimePeriod": 1000, "idle": 1,
                    "cpus": "0", "mems": "0"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500, "leafWeight": 300,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                        "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}],
                        "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
                        "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}
        }));
        let p = plan_v1(&r).unwrap();
        let mut want = vec![
            ("devices", "devices.deny", "a"),
            ("devices", "devices.deny", "a *:* rwm"),
            ("devices", "devices.allow", "c 1:3 rw"),
        ];
        let defaults = default_device_rules();
        for d in &defaults {
            assert!(d.allow());
        }
        let default_text: Vec<String> = defaults.iter().map(device_rule).collect();
        for t in &default_text {
            want.push(("devices", "devices.allow", t));
        }
        want.extend([
            ("memory", "memory.limit_in_bytes", "33554432"),
            ("memory", "memory.memsw.limit_in_bytes", "67108864"),
            ("memory", "memory.soft_limit_in_bytes", "16777216"),
            ("memory", "memory.kmem.limit_in_bytes", "1048576"),
            ("memory", "memory.kmem.tcp.limit_in_bytes", "524288"),
            ("memory", "memory.swappiness", "10"),
            ("memory", "memory.oom_control", "1"),
            ("cpu", "cpu.shares", "512"),
            ("cpu", "cpu.cfs_period_us", "100000"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
            ("cpu", "cpu.cfs_burst_us", "1000"),
            ("cpu", "cpu.rt_period_us", "1000"),
            ("cpu", "cpu.rt_runtime_us", "950"),
            ("cpu", "cpu.idle", "1"),
            ("cpuset", "cpuset.cpus", "0"),
            ("cpuset", "cpuset.mems", "0"),
            ("pids", "pids.max", "10"),
            ("blkio", "blkio.weight", "500"),
            ("blkio", "blkio.leaf_weight", "300"),
            ("blkio", "blkio.weight_device", "8:0 600"),
            ("blkio", "blkio.leaf_weight_device", "8:0 200"),
            ("blkio", "blkio.throttle.read_bps_device", "254:0 1048576"),
            ("blkio", "blkio.throttle.write_bps_device", "254:0 2097152"),
            ("blkio", "blkio.throttle.read_iops_device", "254:0 100"),
            ("blkio", "blkio.throttle.write_iops_device", "254:0 200"),
            ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
            ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
            ("net_cls", "net_cls.classid", "1048577"),
            ("net_prio", "net_prio.ifpriomap", "eth0 5"),
            ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ]);
        assert_eq!(triples(&p), want);
        // fields for errors
        assert_eq!(p[1].field, "devices[0]");
        assert_eq!(p[3].field, "devices (runc's default rules)");
        let kmem = p.iter().find(|e| e.file == "memory.kmem.limit_in_bytes");
        assert_eq!(kmem.unwrap().mode, Mode::IfPresent);
        let w = p.iter().find(|e| e.file == "blkio.weight").unwrap();
        assert_eq!(w.mode, Mode::Or("blkio.bfq.weight".into(), "500".into()));
    }

    #[test]
    fn zero_blkio_weights_are_unset() {
        // What docker sends for every container.
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "blockIO": {"weight": 0, "leafWeight": 0,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 0}]}
        }))
        .unwrap();
        let p = plan_v1(&r).unwrap();
        assert!(p.iter().all(|e| !e.file.contains("weight")), "{p:?}");
    }

    #[test]
    fn default_rules_are_runcs() {
        let t: Vec<String> = default_device_rules().iter().map(device_rule).collect();
        assert_eq!(
            t,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
    }

    #[test]
    fn no_devices_no_device_writes() {
        let p = plan_v1(&res(serde_json::json!({"pids": {"limit": 5}}))).unwrap();
        assert_eq!(triples(&p), [("pids", "pids.max", "5")]);
    }

    #[test]
    fn pids_zero_is_one_and_negative_is_max() {
        for l in [-1, -5] {
            let p = plan_v1(&res(serde_json::json!({"pids": {"limit": l}}))).unwrap();
            assert_eq!(triples(&p), [("pids", "pids.max", "max")]);
        }
        let p = plan_v1(&res(serde_json::json!({"pids": {"limit": 0}}))).unwrap();
        assert_eq!(triples(&p), [("pids", "pids.max", "1")]);
    }

    #[test]
    fn check_before_update_and_bad_swappiness() {
        let p = plan_v1(&res(
            serde_json::json!({"memory": {"limit": 1000, "checkBeforeUpdate": true}}),
        ))
        .unwrap();
        assert_eq!(p[0].mode, Mode::NotBelowUsage("memory.usage_in_bytes"));
        let e = plan_v1(&res(serde_json::json!({"memory": {"swappiness": 101}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.swappiness"), "{e}");
    }
}
