//! Process attributes beyond credentials: scheduler, I/O priority, personality, CPU affinity
//! (execCPUAffinity) and NUMA memory policy. Planned in the parent, applied by the init before
//! it gives up its capabilities (a real-time policy needs CAP_SYS_NICE).

use crate::fail::{errno_text, Fail};
use crate::oci_spec::runtime::Spec;
use crate::process::Code as ProcessCode;
use crate::sys::proc::{self as sp, Mask, SchedAttr};
use crate::{Error, Result};

/// The planned attributes; `None` leaves the inherited value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attrs {
    pub personality: Option<u64>,
    pub ioprio: Option<i32>,
    pub sched: Option<SchedAttr>,
    pub mempolicy: Option<(i32, Mask)>,
    /// execCPUAffinity.initial (set by the parent right after clone) and .final (by the init).
    pub affinity_initial: Option<Mask>,
    pub affinity_final: Option<Mask>,
}

/// Every CPU: the affinity a process without execCPUAffinity gets (the kernel keeps the CPUs
/// of its cpuset), as runc resets it rather than pass on the affinity of its own caller.
const ALL_CPUS: Mask = [u64::MAX; 16];

/// The serde name of an oci-spec enum value (`"SCHED_FIFO"`).
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn lookup(field: &str, table: &[(&str, i64)], key: &str) -> Result<i64> {
    table
        .iter()
        .find(|(n, _)| *n == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::config(field, format!("{field}: unsupported value {key:?}")))
}

/// Parses a list such as "0-3,7" into a 1024-bit mask.
pub(crate) fn parse_list(field: &str, s: &str) -> Result<Mask> {
    let bad = || {
        Error::config(
            field,
            format!("{field}: invalid list {s:?} (like \"0-3,7\")"),
        )
    };
    let mut mask: Mask = [0; 16];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().map_err(|_| bad())?,
                b.trim().parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if a > b || b >= 1024 {
            return Err(bad());
        }
        for n in a..=b {
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    Ok(mask)
}

const SCHED_POLICIES: &[(&str, i64)] = &[
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];
/// By oci-spec 0.10's names: two differ from the runtime-spec's (gojson.rs translates them).
const SCHED_FLAGS: &[(&str, i64)] = &[
    ("SCHED_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_D_L_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
];
const IOPRIO_CLASSES: &[(&str, i64)] = &[
    ("IOPRIO_CLASS_RT", 1),
    ("IOPRIO_CLASS_BE", 2),
    ("IOPRIO_CLASS_IDLE", 3),
];
pub(crate) const MPOL_MODES: &[(&str, i64)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];
pub(crate) const MPOL_FLAGS: &[(&str, i64)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];
const PERSONALITIES: &[(&str, i64)] = &[("LINUX", 0), ("LINUX32", 8)];

impl Attrs {
    pub(crate) fn build(spec: &Spec) -> Result<Attrs> {
        let mut a = Attrs::default();
        if let Some(p) = spec.process() {
            if let Some(io) = p.io_priority() {
                let class = lookup(
                    "process.ioPriority.class",
                    IOPRIO_CLASSES,
                    &name(&io.class()),
                )?;
                let prio = io.priority();
                if !(0..=7).contains(&prio) {
                    return Err(Error::config(
                        "process.ioPriority.priority",
                        format!("process.ioPriority.priority {prio} is not in 0..=7"),
                    ));
                }
                a.ioprio = Some(((class << 13) | prio) as i32);
            }
            if let Some(s) = p.scheduler() {
                let mut flags = 0u64;
                for f in s.flags().iter().flatten() {
                    flags |= lookup("process.scheduler.flags", SCHED_FLAGS, &name(f))? as u64;
                }
                a.sched = Some(SchedAttr {
                    policy: lookup(
                        "process.scheduler.policy",
                        SCHED_POLICIES,
                        &name(&s.policy()),
                    )? as u32,
                    flags,
                    nice: s.nice().unwrap_or(0),
                    priority: s.priority().unwrap_or(0) as u32,
                    runtime: s.runtime().unwrap_or(0),
                    deadline: s.deadline().unwrap_or(0),
                    period: s.period().unwrap_or(0),
                    ..Default::default()
                });
            }
            if let Some(aff) = p.exec_cpu_affinity() {
                if let Some(i) = aff.initial() {
                    a.affinity_initial = Some(parse_list("process.execCPUAffinity.initial", i)?);
                }
                if let Some(f) = aff.cpu_affinity_final() {
                    a.affinity_final = Some(parse_list("process.execCPUAffinity.final", f)?);
                }
            }
        }
        if let Some(l) = spec.linux() {
            if let Some(p) = l.personality() {
                if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                    return Err(Error::config(
                        "linux.personality.flags",
                        "linux.personality.flags: no flags are supported",
                    ));
                }
                a.personality = Some(lookup(
                    "linux.personality.domain",
                    PERSONALITIES,
                    &name(&p.domain()),
                )? as u64);
            }
            if let Some(m) = l.memory_policy() {
                let mut mode = lookup("linux.memoryPolicy.mode", MPOL_MODES, &name(&m.mode()))?;
                for f in m.flags().iter().flatten() {
                    mode |= lookup("linux.memoryPolicy.flags", MPOL_FLAGS, &name(f))?;
                }
                let nodes = match m.nodes() {
                    Some(n) => parse_list("linux.memoryPolicy.nodes", n)?,
                    None => [0; 16],
                };
                a.mempolicy = Some((mode as i32, nodes));
            }
        }
        Ok(a)
    }

    /// Parent side, right after clone: execCPUAffinity.initial.
    pub(crate) fn apply_initial(&self, pid: i32) -> Result<()> {
        if let Some(m) = &self.affinity_initial {
            sp::sched_setaffinity(pid, m)
                .map_err(|e| Error::errno("setting execCPUAffinity.initial", e))?;
        }
        Ok(())
    }

    /// Child side, no allocation, before dropping capabilities.
    pub(crate) fn apply(&self) -> Result<(), Fail> {
        let f = |c: ProcessCode, e| Fail::new(c, 0, e);
        if let Some(p) = self.personality {
            sp::personality(p).map_err(|e| f(ProcessCode::Personality, e))?;
        }
        if let Some(v) = self.ioprio {
            sp::ioprio_set(v).map_err(|e| f(ProcessCode::Ioprio, e))?;
        }
        if let Some(s) = &self.sched {
            sp::sched_setattr(s).map_err(|e| f(ProcessCode::Sched, e))?;
        }
        if let Some((mode, nodes)) = &self.mempolicy {
            sp::set_mempolicy(*mode, nodes).map_err(|e| f(ProcessCode::Mempolicy, e))?;
        }
        match (&self.affinity_initial, &self.affinity_final) {
            (_, Some(m)) => {
                sp::sched_setaffinity(0, m).map_err(|e| f(ProcessCode::Affinity, e))?;
            }
            // Best effort, as runc's (which warns): the process then keeps the inherited one.
            (None, None) => {
                let _ = sp::sched_setaffinity(0, &ALL_CPUS);
            }
            (Some(_), None) => {}
        }
        Ok(())
    }

    /// The message for one of this module's failure codes.
    pub(crate) fn describe(code: ProcessCode, errno: i32) -> Option<String> {
        let what = match code {
            ProcessCode::Personality => "setting linux.personality",
            ProcessCode::Ioprio => "setting process.ioPriority",
            ProcessCode::Sched => "setting process.scheduler",
            ProcessCode::Mempolicy => "setting linux.memoryPolicy",
            ProcessCode::Affinity => "setting process.execCPUAffinity.final",
            _ => return None,
        };
        Some(format!("{what}: {}", errno_text(errno)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let m = parse_list("x", "0-2,5, 64").unwrap();
        assert_eq!(m[0], 0b100111);
        assert_eq!(m[1], 1);
        for bad in ["1-", "a", "3-1", "1024"] {
            assert!(parse_list("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_match_oci_spec() {
        let json = serde_json::to_vec(&serde_json::json!({
            "ociVersion": "1.3.0",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
                "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 3},
                "scheduler": {"policy": "SCHED_BATCH", "nice": 5,
                    "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN"]},
                "execCPUAffinity": {"final": "0"}},
            "linux": {"personality": {"domain": "LINUX32"},
                "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}}
        }))
        .unwrap();
        let spec: Spec = crate::parse_config(&json).unwrap();
        let a = Attrs::build(&spec).unwrap();
        assert_eq!(a.ioprio, Some((2 << 13) | 3));
        let s = a.sched.unwrap();
        assert_eq!((s.policy, s.nice, s.flags), (3, 5, 1 | 4));
        assert_eq!(a.personality, Some(8));
        assert_eq!(a.mempolicy.unwrap().0, 2 | (1 << 15));
        assert_eq!(a.affinity_final.unwrap()[0], 1);
    }
}
