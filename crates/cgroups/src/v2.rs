//! `linux.resources` on cgroup v2: [`plan_v2`] maps the spec to (file, value) writes in the
//! container's unified directory (as runc and crun do), [`write()`] enables the controllers the
//! files need in every ancestor's `cgroup.subtree_control` and writes them.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::resources::{invalid, write_entry, Entry, Mode};
use crate::v1::{pids_max, rdma};
use crate::{Error, Result};

/// cpu.shares (v1, 2..262144) to cpu.weight (1..10000), runc's formula; 0 stays unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// blkio weight (10..1000) to io.weight (1..10000), runc's formula; 0 stays unset.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// OCI `memory.swap` (memory+swap) to `memory.swap.max` (swap only), runc's conversion:
/// `None` = leave unset, -1 = "max".
pub fn swap_to_v2(swap: i64, limit: Option<i64>) -> std::result::Result<Option<i64>, String> {
    let limit = limit.unwrap_or(0);
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        -1 => return Ok(Some(-1)),
        0 => return Ok(None),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err("a swap limit needs a memory limit".into());
    }
    if limit < 0 || swap < limit {
        return Err(format!(
            "swap (memory+swap, {swap}) must be >= the memory limit ({limit})"
        ));
    }
    Ok(Some(swap - limit))
}

fn max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The v2 writes for `r`, in order (`controller` is each file's prefix). Pure. The `unified`
/// keys come last, verbatim, so they override the mapped fields. Fields with no v2 file
/// (memory.kernel, kernelTCP, swappiness, disableOOMKiller, blockIO.leafWeight) are ignored as
/// runc does; realtime and network fields are refused. Devices are not files on v2 (see
/// `crate::bpf`).
pub fn plan_v2(r: &LinuxResources) -> Result<Vec<Entry>> {
    let mut p = Vec::new();
    // Zero means unset, as in runc: engines send zeros for what they leave alone.
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|x| *x != 0) {
            let e = Entry::new("memory", "memory.max", max(l), "memory.limit");
            p.push(if m.check_before_update() == Some(true) {
                e.mode(Mode::NotBelowUsage("memory.current"))
            } else {
                e
            });
        }
        if let Some(s) = m.swap() {
            let v = swap_to_v2(s, m.limit()).map_err(|w| invalid("memory.swap", w))?;
            if let Some(v) = v {
                p.push(Entry::new(
                    "memory",
                    "memory.swap.max",
                    max(v),
                    "memory.swap",
                ));
            }
        }
        if let Some(v) = m.reservation().filter(|x| *x != 0) {
            p.push(Entry::new(
                "memory",
                "memory.low",
                max(v),
                "memory.reservation",
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            p.push(Entry::new(
                "cpu",
                "cpu.weight",
                shares_to_weight(s),
                "cpu.shares",
            ));
        }
        let (quota, period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                v += &format!(" {period}");
            }
            p.push(Entry::new("cpu", "cpu.max", v, "cpu.quota/period"));
        }
        if let Some(b) = c.burst() {
            p.push(Entry::new("cpu", "cpu.max.burst", b, "cpu.burst"));
        }
        if let Some(i) = c.idle() {
            p.push(Entry::new("cpu", "cpu.idle", i, "cpu.idle"));
        }
        if c.realtime_runtime().is_some_and(|x| x != 0)
            || c.realtime_period().is_some_and(|x| x != 0)
        {
            return Err(invalid(
                "cpu.realtimeRuntime/realtimePeriod",
                "cgroup v2 has no realtime scheduling limits",
            ));
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
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            p.push(
                Entry::new("io", "io.bfq.weight", w, "blockIO.weight").mode(Mode::Or(
                    "io.weight".into(),
                    blkio_to_io_weight(w).to_string(),
                )),
            );
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if let Some(w) = d.weight() {
                let dev = format!("{}:{}", d.major(), d.minor());
                p.push(
                    Entry::new(
                        "io",
                        "io.bfq.weight",
                        format!("{dev} {w}"),
                        &format!("blockIO.weightDevice[{i}].weight"),
                    )
                    .mode(Mode::Or(
                        "io.weight".into(),
                        format!("{dev} {}", blkio_to_io_weight(w)),
                    )),
                );
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "rbps",
                "throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "wbps",
                "throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "riops",
                "throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "wiops",
                "throttleWriteIOPSDevice",
            ),
        ];
        for (list, key, field) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                let rate = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                p.push(Entry::new(
                    "io",
                    "io.max",
                    format!("{}:{} {key}={rate}", t.major(), t.minor()),
                    &format!("blockIO.{field}[{i}]"),
                ));
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let size = crate::resources::page_size(h.page_size(), i)?;
        let field = format!("hugepageLimits[{i}]");
        let v = max(h.limit());
        p.push(Entry::new(
            "hugetlb",
            &format!("hugetlb.{size}.max"),
            &v,
            &field,
        ));
        p.push(
            Entry::new("hugetlb", &format!("hugetlb.{size}.rsvd.max"), &v, &field)
                .mode(Mode::IfPresent),
        );
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(invalid(
                "network",
                "cgroup v2 has no net_cls/net_prio controllers (use eBPF programs instead)",
            ));
        }
    }
    p.extend(rdma(r, "rdma.max"));
    if let Some(u) = r.unified() {
        let mut keys: Vec<(&String, &String)> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            if k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(invalid(
                    &format!("unified[{k:?}]"),
                    "not a cgroup file name (controller.file)",
                ));
            }
            p.push(Entry {
                controller: controller_of(k),
                file: k.clone(),
                value: v.clone(),
                field: format!("unified[{k:?}]"),
                mode: Mode::Required,
            });
        }
    }
    Ok(p)
}

/// The controller of a v2 file (its prefix), as a static name; "" for others.
fn controller_of(file: &str) -> &'static str {
    const KNOWN: [&str; 10] = [
        "cpu", "cpuset", "io", "memory", "hugetlb", "pids", "rdma", "misc", "cgroup", "blkio",
    ];
    let pre = file.split('.').next().unwrap_or("");
    KNOWN.iter().find(|k| **k == pre).copied().unwrap_or("")
}

/// The controllers the v2 directory `dir` can enable (its `cgroup.controllers`).
pub fn available(dir: &Path) -> Result<Vec<String>> {
    let f = dir.join("cgroup.controllers");
    let t = std::fs::read_to_string(&f).map_err(|source| Error::Io { path: f, source })?;
    Ok(t.split_whitespace().map(String::from).collect())
}

/// The controllers of the hierarchy `dir` is in (its root's `cgroup.controllers`): what
/// [`write()`] can enable down to `dir`.
pub fn hierarchy_controllers(dir: &Path) -> Result<Vec<String>> {
    let root = dir
        .ancestors()
        .take_while(|a| a.join("cgroup.controllers").exists())
        .last()
        .unwrap_or(dir);
    available(root)
}

/// Enables each controller the plan needs in `cgroup.subtree_control` of every ancestor of
/// `dir` inside the hierarchy (top down, as runc), then writes the plan.
pub fn write(dir: &Path, plan: &[Entry]) -> Result<()> {
    let mut need: Vec<&str> = plan
        .iter()
        .map(|e| e.controller)
        .filter(|c| !c.is_empty() && *c != "cgroup")
        .collect();
    need.sort_unstable();
    need.dedup();
    if !need.is_empty() {
        enable(dir, &need, plan)?;
    }
    for e in plan {
        write_entry(dir, e)?;
    }
    Ok(())
}

fn enable(dir: &Path, need: &[&str], plan: &[Entry]) -> Result<()> {
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.join("cgroup.controllers").exists())
        .collect();
    chain.reverse();
    for anc in chain {
        let have = available(anc)?;
        let sc = anc.join("cgroup.subtree_control");
        let on = std::fs::read_to_string(&sc).map_err(|source| Error::Io {
            path: sc.clone(),
            source,
        })?;
        for c in need {
            if on.split_whitespace().any(|x| x == *c) {
                continue;
            }
            let field = plan
                .iter()
                .find(|e| e.controller == *c)
                .map_or(String::new(), |e| e.field.clone());
            if !have.iter().any(|x| x == c) {
                return Err(invalid(
                    &field,
                    format!(
                        "the {c} controller is not available in {} (cgroup.controllers: {})",
                        anc.display(),
                        have.join(" ")
                    ),
                ));
            }
            std::fs::write(&sc, format!("+{c}")).map_err(|source| Error::ResourceIo {
                field,
                path: sc.clone(),
                value: format!("+{c}"),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(j: serde_json::Value) -> LinuxResources {
        serde_json::from_value(j).unwrap()
    }

    fn pairs(p: &[Entry]) -> Vec<(&str, &str)> {
        p.iter()
            .map(|e| (e.file.as_str(), e.value.as_str()))
            .collect()
    }

    #[test]
    fn docker_update_zeros_are_unset() {
        // docker's `update --cpu-shares 256 --pids-limit 40`, as the shim passes it on.
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
            "cpu": {"shares": 256, "quota": 0, "period": 0, "realtimeRuntime": 0,
                    "realtimePeriod": 0, "cpus": "", "mems": ""},
            "pids": {"limit": 40},
            "blockIO": {"weight": 0}
        }))
        .unwrap();
        let files: Vec<String> = plan_v2(&r).unwrap().into_iter().map(|e| e.file).collect();
        assert_eq!(files, ["cpu.weight", "pids.max"]);
        let files: Vec<String> = crate::v1::plan_v1(&r)
            .unwrap()
            .into_iter()
            .map(|e| e.file)
            .collect();
        assert_eq!(files, ["cpu.shares", "pids.max"]);
    }

    #[test]
    fn full_object() {
        let r = res(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 33554432, "reservation": 16777216, "swap": 67108864,
                       "kernel": 1048576, "kernelTCP": 524288, "swappiness": 10,
                       "disableOOMKiller": true},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000,
                    "idle": 1, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 10},
            "blockIO": {"weight": 500, "leafWeight": 300,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 600}],
                        "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                        "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}],
                        "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
                        "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "30000000", "io.weight": "default 77"}
        }));
        let p = plan_v2(&r).unwrap();
        assert_eq!(
            pairs(&p),
            [
                ("memory.max", "33554432"),
                ("memory.swap.max", "33554432"),
                ("memory.low", "16777216"),
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("cpu.max.burst", "1000"),
                ("cpu.idle", "1"),
                ("cpuset.cpus", "0-1"),
                ("cpuset.mems", "0"),
                ("pids.max", "10"),
                ("io.bfq.weight", "500"),
                ("io.bfq.weight", "8:0 600"),
                ("io.max", "254:0 rbps=1048576"),
                ("io.max", "254:0 wbps=2097152"),
                ("io.max", "254:0 riops=100"),
                ("io.max", "254:0 wiops=200"),
                ("hugetlb.2MB.max", "4194304"),
                ("hugetlb.2MB.rsvd.max", "4194304"),
                ("rdma.max", "mlx5_1 hca_handle=3"),
                ("io.weight", "default 77"),
                ("memory.high", "30000000"),
            ]
        );
        assert_eq!(
            p[10].mode,
            Mode::Or("io.weight".into(), blkio_to_io_weight(500).to_string())
        );
        assert_eq!(p[11].mode, Mode::Or("io.weight".into(), "8:0 5960".into()));
        assert_eq!(p[19].controller, "io");
        assert_eq!(p[19].field, "unified[\"io.weight\"]");
    }

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(swap_to_v2(200, Some(100)), Ok(Some(100)));
        assert_eq!(swap_to_v2(100, Some(100)), Ok(Some(0)));
        assert_eq!(swap_to_v2(-1, Some(100)), Ok(Some(-1)));
        assert_eq!(swap_to_v2(0, Some(100)), Ok(None));
        assert_eq!(swap_to_v2(0, Some(-1)), Ok(Some(-1)));
        assert!(swap_to_v2(50, Some(100)).is_err());
        assert!(swap_to_v2(50, None).is_err());
    }

    #[test]
    fn cpu_max_forms() {
        let one = |j| {
            pairs(&plan_v2(&res(serde_json::json!({"cpu": j}))).unwrap())
                .to_vec()
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let cm = |v: &str| vec![("cpu.max".to_string(), v.to_string())];
        assert_eq!(
            one(serde_json::json!({"quota": -1, "period": 100000})),
            cm("max 100000")
        );
        assert_eq!(one(serde_json::json!({"quota": 20000})), cm("20000"));
        assert_eq!(one(serde_json::json!({"period": 50000})), cm("max 50000"));
    }

    #[test]
    fn pids_memory_max_and_refusals() {
        for (l, want) in [(0, "1"), (-1, "max")] {
            let p = plan_v2(&res(serde_json::json!({"pids": {"limit": l}}))).unwrap();
            assert_eq!(pairs(&p), [("pids.max", want)]);
        }
        let p = plan_v2(&res(
            serde_json::json!({"memory": {"limit": -1, "swap": -1}}),
        ))
        .unwrap();
        assert_eq!(
            pairs(&p),
            [("memory.max", "max"), ("memory.swap.max", "max")]
        );
        let bad = [
            serde_json::json!({"network": {"classID": 1}}),
            serde_json::json!({"cpu": {"realtimeRuntime": 1}}),
            serde_json::json!({"memory": {"limit": 100, "swap": 50}}),
            serde_json::json!({"unified": {"../x": "1"}}),
            serde_json::json!({"hugepageLimits": [{"pageSize": "../../x", "limit": 1}]}),
            serde_json::json!({"hugepageLimits": [{"pageSize": "2mb", "limit": 1}]}),
        ];
        for b in bad {
            let e = plan_v2(&res(b.clone())).unwrap_err();
            assert!(matches!(e, Error::Resource { .. }), "{b}: {e}");
        }
    }
}
