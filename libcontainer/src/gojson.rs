//! config.json and process.json read as runc reads them (Go's encoding/json): keys match the
//! runtime-spec's names case-insensitively (`Args`, `pagesize`), null is the same as absent, a
//! missing field is its zero value (`process.user` absent is uid 0), and capability names runc
//! does not know are dropped with one warning. A pass over the JSON value before oci-spec's
//! typed deserialization, which keeps naming the field of a genuinely wrong value.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Every field name of the runtime-spec (specs-go's json tags): no two differ only in case.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "DNSSearchList", "access", "action", "additionalGids", "affinity", "allow",
    "allowUnqualifiedDNSQuery", "allowedAddress", "ambient", "anet", "annotations",
    "apparmorProfile", "architectures", "args", "blockIO", "bounding", "bps", "burst",
    "capabilities", "cappedCPU", "cappedMemory", "cgroupsPath", "checkBeforeUpdate", "chflags",
    "class", "classID", "closID", "commandLine", "configureAllowedAddress", "consoleSize",
    "containerID", "count", "cpu", "cpus", "createContainer", "createRuntime", "credentialSpec",
    "cwd", "deadline", "defaultAction", "defaultErrnoRet", "defrouter", "destination",
    "deviceTree", "devices", "disableOOMKiller", "domain", "domainname", "dtdevs", "effective",
    "enableMonitoring", "endpointList", "enforceStatfs", "env", "errnoRet", "execCPUAffinity",
    "fds", "fileMode", "final", "firstGFN", "firstMFN", "flags", "freebsd", "gid", "gidMappings",
    "hard", "hcaHandles", "hcaObjects", "height", "hooks", "host", "hostID", "hostname",
    "hugepageLimits", "hwconfig", "hyperv", "hypervisor", "idType", "idle",
    "ignoreFlushesDuringBoot", "image", "index", "inheritable", "initial", "initrd", "intelRdt",
    "interface", "ioPriority", "iomems", "iops", "ip4", "ip4Addr", "ip6", "ip6Addr", "irqs",
    "jail", "kernel", "kernelTCP", "l3CacheSchema", "layerFolders", "leafWeight", "limit",
    "limitpriv", "linkProtection", "linkname", "linux", "listenerMetadata", "listenerPath",
    "lowerLink", "macAddress", "major", "mask", "maskedPaths", "maxShmMemory", "maximum",
    "memBwSchema", "memory", "memoryPolicy", "mems", "milestone", "minor", "mlock", "mode",
    "mount", "mountLabel", "mounts", "name", "names", "namespaces", "nanosecs", "ncpus",
    "netDevices", "network", "networkNamespace", "networkSharedContainerName", "nice",
    "noNewPrivileges", "nodes", "nrMFNs", "ociVersion", "oomScoreAdj", "op", "options", "pageSize",
    "parameters", "parent", "path", "period", "permitted", "personality", "physical", "pids",
    "policy", "poststart", "poststop", "prestart", "priorities", "priority", "process", "quota",
    "quotas", "rate", "rawSockets", "rdma", "readonly", "readonlyPaths", "realtimePeriod",
    "realtimeRuntime", "reservation", "reservedPorts", "resources", "rlimits", "root",
    "rootfsPropagation", "runtime", "sandboxSize", "scheduler", "schemata", "seccomp", "secs",
    "selinuxLabel", "servicing", "setHostname", "shares", "size", "socketAf", "soft", "solaris",
    "source", "startContainer", "storage", "suser", "swap", "swappiness", "syscalls", "sysctl",
    "sysvmsg", "sysvsem", "sysvshm", "terminal", "throttleReadBpsDevice", "throttleReadIOPSDevice",
    "throttleWriteBpsDevice", "throttleWriteIOPSDevice", "timeOffsets", "timeout", "type", "uid",
    "uidMappings", "umask", "unified", "useHierarchy", "user", "username", "utilityVMPath",
    "value", "valueTwo", "vcpus", "vm", "vnet", "vnetInterfaces", "weight", "weightDevice",
    "width", "windows", "zos",
];

/// Objects whose keys are data (annotation names, sysctl keys, cgroup files), not field names.
const MAPS: &[&str] = &[
    "annotations",
    "sysctl",
    "unified",
    "rdma",
    "netDevices",
    "timeOffsets",
];

type Zero = fn() -> Value;

/// Zero values of the fields oci-spec requires, by name (Go leaves an absent field zero).
const ZERO: &[(&str, Zero)] = &[
    ("user", || Value::Object(Map::new())),
    ("cwd", || Value::from("")),
    ("uid", || Value::from(0)),
    ("gid", || Value::from(0)),
    ("ociVersion", || Value::from("")),
    ("path", || Value::from("")),
    ("destination", || Value::from("")),
    ("hard", || Value::from(0)),
    ("soft", || Value::from(0)),
    ("height", || Value::from(0)),
    ("width", || Value::from(0)),
    ("containerID", || Value::from(0)),
    ("hostID", || Value::from(0)),
    ("size", || Value::from(0)),
    ("priority", || Value::from(0)),
    ("major", || Value::from(0)),
    ("minor", || Value::from(0)),
    ("rate", || Value::from(0)),
    ("pageSize", || Value::from("")),
    ("limit", || Value::from(0)),
    ("index", || Value::from(0)),
    ("value", || Value::from(0)),
    ("name", || Value::from("")),
    ("names", || Value::Array(Vec::new())),
];

/// The runtime-spec's spellings of two scheduler flags and oci-spec 0.10's (which rejects the
/// spec's): runc accepts only the spec's.
const SCHED_FLAGS: &[(&str, &str)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// What a parse found besides the value.
#[derive(Debug)]
pub(crate) enum Problem {
    /// The JSON does not parse, or a value has the wrong type: the field's path ("." for the
    /// whole document) and serde's message.
    Invalid { field: String, msg: String },
    /// A value runc refuses before anything runs.
    Refused { field: String, msg: String },
}

/// Parses `data` as Go would decode it into the runtime-spec type `T`. `process` is the JSON
/// pointer of the process object (`/process` in a config, `""` for a process.json). Returns
/// the value and its warnings.
pub(crate) fn parse<T: DeserializeOwned>(
    data: &[u8],
    process: &str,
) -> Result<(T, Vec<String>), Problem> {
    let mut v: Value = serde_json::from_slice(data).map_err(|e| Problem::Invalid {
        field: ".".into(),
        msg: e.to_string(),
    })?;
    normalize(&mut v, false);
    let mut warnings = Vec::new();
    if let Some(p) = v.pointer_mut(process) {
        process_fields(p, &mut warnings)?;
    }
    // Typed from text, not from the Value: the same deserializer code as state.json loading
    // runs (a second copy for `&Value` would fault in its own pages at every create).
    for _ in 0..64 {
        let text = serde_json::to_vec(&v).map_err(|e| Problem::Invalid {
            field: ".".into(),
            msg: e.to_string(),
        })?;
        let e = match serde_json::from_slice::<T>(&text) {
            Ok(t) => return Ok((t, warnings)),
            Err(e) => e,
        };
        let de = &mut serde_json::Deserializer::from_slice(&text);
        let (at, missing) = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(t) => return Ok((t, warnings)),
            Err(pe) => {
                let missing = missing_field(&pe.inner().to_string());
                (pe.path().clone(), missing)
            }
        };
        if let Some((name, zero)) = missing.and_then(|m| ZERO.iter().find(|(n, _)| *n == m)) {
            if let Some(Value::Object(o)) = at_path(&mut v, &at) {
                if !o.contains_key(*name) {
                    o.insert(name.to_string(), zero());
                    continue;
                }
            }
        }
        return Err(invalid::<T>(data, &at, e));
    }
    Err(Problem::Invalid {
        field: ".".into(),
        msg: "too many missing fields".into(),
    })
}

/// The error for a wrong value: the original text's, which says where (line and column), when
/// it is at the same field; the normalized value's otherwise.
fn invalid<T: DeserializeOwned>(
    data: &[u8],
    at: &serde_path_to_error::Path,
    e: serde_json::Error,
) -> Problem {
    let de = &mut serde_json::Deserializer::from_slice(data);
    if let Err(pe) = serde_path_to_error::deserialize::<_, T>(de) {
        if pe.path().to_string() == at.to_string()
            && missing_field(&pe.inner().to_string()).is_none()
        {
            return Problem::Invalid {
                field: at.to_string(),
                msg: pe.inner().to_string(),
            };
        }
    }
    // Its position is in the normalized text, which the user never saw: left out.
    let msg = e.to_string();
    let pos = format!(" at line {} column {}", e.line(), e.column());
    Problem::Invalid {
        field: at.to_string(),
        msg: msg.strip_suffix(&pos).unwrap_or(&msg).to_string(),
    }
}

/// The field name of serde's "missing field `x`" message.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}

/// The value a serde_path_to_error path names.
fn at_path<'a>(v: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Value> {
    use serde_path_to_error::Segment;
    let mut cur = v;
    for seg in path.iter() {
        cur = match seg {
            Segment::Seq { index } => cur.get_mut(*index)?,
            Segment::Map { key } => cur.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(cur)
}

/// Canonical key names and nulls removed, recursively. `keys_are_data`: an object of `MAPS`.
fn normalize(v: &mut Value, keys_are_data: bool) {
    match v {
        Value::Object(o) => {
            if !keys_are_data {
                o.retain(|_, x| !x.is_null());
                let renames: Vec<(String, &str)> = o
                    .keys()
                    .filter(|k| !NAMES.contains(&k.as_str()))
                    .filter_map(|k| {
                        let n = NAMES.iter().find(|n| n.eq_ignore_ascii_case(k))?;
                        Some((k.clone(), *n))
                    })
                    .collect();
                for (from, to) in renames {
                    if let Some(x) = o.remove(&from) {
                        // An exact key wins over a differently cased one.
                        o.entry(to.to_string()).or_insert(x);
                    }
                }
            }
            for (k, x) in o.iter_mut() {
                normalize(x, !keys_are_data && MAPS.contains(&k.as_str()));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalize(x, false)),
        _ => {}
    }
}

/// Capability names runc knows (exactly `CAP_...`, known to this kernel) kept, the others
/// dropped with runc's warning; scheduler flags in oci-spec's spelling.
fn process_fields(p: &mut Value, warnings: &mut Vec<String>) -> Result<(), Problem> {
    let last = crate::caps::last_cap() as usize;
    let known = &crate::caps::CAPABILITIES[..=last.min(crate::caps::CAPABILITIES.len() - 1)];
    let mut unknown = BTreeSet::new();
    if let Some(Value::Object(sets)) = p.get_mut("capabilities") {
        for set in sets.values_mut() {
            if let Value::Array(names) = set {
                names.retain(|n| match n.as_str() {
                    Some(s) if !known.contains(&s) => {
                        unknown.insert(s.to_string());
                        false
                    }
                    _ => true,
                });
            }
        }
    }
    warnings.extend(crate::caps::ignored_warning(unknown.into_iter().collect()));
    if let Some(Value::Array(flags)) = p.pointer_mut("/scheduler/flags") {
        for f in flags.iter_mut() {
            let Some(s) = f.as_str() else { continue };
            if let Some((_, oci)) = SCHED_FLAGS.iter().find(|(spec, _)| *spec == s) {
                *f = Value::from(*oci);
            } else if SCHED_FLAGS.iter().any(|(_, oci)| *oci == s) {
                return Err(Problem::Refused {
                    field: "process.scheduler.flags".into(),
                    msg: format!("invalid scheduler flag: {s}"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_spec::runtime::{Process, Spec};

    fn process(json: &str) -> (Process, Vec<String>) {
        parse(json.as_bytes(), "").unwrap()
    }

    #[test]
    fn zero_values_and_key_case() {
        let (p, w) = process(r#"{"Args": ["sh"], "CWD": "/tmp", "env": null}"#);
        assert_eq!(p.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert!(p.env().is_none());
        assert!(w.is_empty());
        let (p, _) = process(r#"{"user": {"UID": 7}}"#);
        assert_eq!((p.user().uid(), p.user().gid()), (7, 0));
        assert_eq!(p.cwd().to_str(), Some(""));
    }

    #[test]
    fn maps_keep_their_keys() {
        let json = r#"{"ociVersion": "1.0.0", "annotations": {"Args": "x"},
            "linux": {"sysctl": {"Net.x": "1"}, "resources": {"hugepageLimits":
            [{"pagesize": "2MB", "limit": 1}]}}}"#;
        let (s, _): (Spec, _) = parse(json.as_bytes(), "/process").unwrap();
        assert_eq!(s.annotations().as_ref().unwrap()["Args"], "x");
        let l = s.linux().as_ref().unwrap();
        assert!(l.sysctl().as_ref().unwrap().contains_key("Net.x"));
        let h = &l
            .resources()
            .as_ref()
            .unwrap()
            .hugepage_limits()
            .as_ref()
            .unwrap()[0];
        assert_eq!(h.page_size(), "2MB");
    }

    #[test]
    fn unknown_capabilities_dropped_with_one_warning() {
        let (p, w) = process(
            r#"{"capabilities": {"bounding": ["CAP_KILL", "CAP_NO_SUCH", "cap_chown"],
                "effective": ["KILL", "CAP_NO_SUCH"]}}"#,
        );
        let c = p.capabilities().as_ref().unwrap();
        assert_eq!(c.bounding().as_ref().unwrap().len(), 1);
        assert_eq!(c.effective().as_ref().unwrap().len(), 0);
        assert_eq!(
            w,
            ["ignoring unknown or unavailable capabilities: [CAP_NO_SUCH KILL cap_chown]"]
        );
    }

    #[test]
    fn wrong_type_names_field_and_line() {
        let e = parse::<Process>(b"{\"args\": \"true\",\n \"cwd\": \"/\"}", "").unwrap_err();
        match e {
            Problem::Invalid { field, msg } => {
                assert_eq!(field, "args");
                assert!(msg.contains("line 1"), "{msg}");
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn scheduler_flags_as_runc() {
        let (p, _) = process(
            r#"{"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}"#,
        );
        assert_eq!(
            p.scheduler()
                .as_ref()
                .unwrap()
                .flags()
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        let e = parse::<Process>(
            br#"{"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_RESET_ON_FORK"]}}"#,
            "",
        )
        .unwrap_err();
        assert!(matches!(e, Problem::Refused { .. }), "{e:?}");
    }
}
