//! The conformance harness: configs that each set one field group, then combinations of them,
//! run under the runtime with the spec checker (conformance/, `husk-conformance`) as the
//! container's process. integration/tests/conformance.rs asserts on them for husk;
//! scripts/conformance runs the same cases under husk, runc and crun for docs/conformance.md.
//!
//! Environment: `CONFORMANCE_REPORT=FILE` appends one line per case (see `report`); `CONFORMANCE_OCI_VERSION=V` writes V as ociVersion (crun 1.8.1 refuses
//! 1.3.0).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::*;

/// Builds the checker once, statically linked, in its own target dir (no lock on the
/// workspace's); `HUSK_CONFORMANCE_BIN` names a prebuilt one instead (the VM lane's guest has
/// no cargo).
pub fn checker() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("HUSK_CONFORMANCE_BIN") {
            return PathBuf::from(p);
        }
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = ws.join("target/conformance");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = std::process::Command::new(cargo)
            .current_dir(ws)
            .args(["rustc", "-q", "-p", "conformance", "--release"])
            .args(["--bin", "husk-conformance", "--target-dir"])
            .arg(&target)
            .args(["--", "-C", "target-feature=+crt-static"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "building husk-conformance: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        target.join("release/husk-conformance")
    })
}

/// The host's namespace links, for the checker's namespace checks.
fn host_ns() -> serde_json::Map<String, Value> {
    let mut a = serde_json::Map::new();
    for (typ, name) in [
        ("mount", "mnt"),
        ("network", "net"),
        ("pid", "pid"),
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("cgroup", "cgroup"),
        ("time", "time"),
        ("user", "user"),
    ] {
        if let Ok(l) = std::fs::read_link(format!("/proc/self/ns/{name}")) {
            a.insert(
                format!("conformance/host-ns/{typ}"),
                json!(l.display().to_string()),
            );
        }
    }
    a
}

/// One config: a name, the edit of the default config, and the checks that must run and pass
/// (a substring of the check's name; a skipped check does not count).
pub struct Case {
    pub name: String,
    pub edits: Vec<fn(&mut Value)>,
    pub must: Vec<&'static str>,
}

/// The result of one case.
pub struct CaseResult {
    pub name: String,
    pub output: Output,
    /// Why it failed: the first `not ok` line, a missing check, or the runtime's error.
    pub failure: Option<String>,
}

fn push_ns(c: &mut Value, typ: &str) {
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    if !ns.iter().any(|n| n["type"] == typ) {
        ns.push(json!({ "type": typ }));
    }
}

fn mounts(c: &mut Value) -> &mut Vec<Value> {
    c["mounts"].as_array_mut().unwrap()
}

/// A block device of the host (major:minor) for blkio throttles: the first disk, else the
/// first loop device (the VM lane's guest has only those).
fn block_device() -> Option<(u64, u64)> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    let dev = |e: &std::fs::DirEntry| {
        let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
        let (a, b) = dev.trim().split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let name = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().to_string();
    let virt = |n: &str| n.starts_with("loop") || n.starts_with("zram") || n.starts_with("ram");
    names
        .iter()
        .filter(|e| !virt(&name(e)))
        .find_map(dev)
        .or_else(|| {
            names
                .iter()
                .filter(|e| name(e).starts_with("loop"))
                .find_map(dev)
        })
}

macro_rules! case {
    ($name:expr, [$($must:expr),* $(,)?], $edit:expr) => {
        Case { name: $name.to_string(), edits: vec![$edit as fn(&mut Value)], must: vec![$($must),*] }
    };
}

/// Every field group alone.
pub fn fields() -> Vec<Case> {
    vec![
        // The default config alone: what deviates here deviates in every case
        // (scripts/conformance reports it once, in this row).
        case!("default config", ["process.cwd", "(/proc)"], |_| {}),
        case!("hostname", ["hostname"], |c| c["hostname"] =
            json!("conf-host")),
        case!("domainname", ["domainname"], |c| c["domainname"] =
            json!("conf.example")),
        case!("process.cwd", ["process.cwd"], |c| c["process"]["cwd"] =
            json!("/tmp")),
        case!("process.env", ["process.env[2]"], |c| {
            c["process"]["env"] = json!(["PATH=/bin", "CONF=1", "EMPTY="])
        }),
        case!(
            "process.user",
            [
                "process.user.uid",
                "process.user.gid",
                "process.user.additionalGids"
            ],
            |c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6]})
        ),
        case!("process.user.umask", ["process.user.umask"], |c| {
            c["process"]["user"]["umask"] = json!(23)
        }),
        case!(
            "process.rlimits",
            ["process.rlimits[0]", "process.rlimits[1]"],
            |c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 333, "hard": 444},
                                             {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])
            }
        ),
        case!(
            "process.capabilities",
            [
                "capabilities.bounding",
                "capabilities.effective",
                "capabilities.permitted",
                "capabilities.inheritable",
                "capabilities.ambient"
            ],
            |c| {
                let some = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]);
                c["process"]["capabilities"] = json!({"bounding": some, "effective": some,
                    "permitted": some, "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]});
            }
        ),
        case!(
            "process.noNewPrivileges",
            ["process.noNewPrivileges"],
            |c| { c["process"]["noNewPrivileges"] = json!(true) }
        ),
        case!("process.oomScoreAdj", ["process.oomScoreAdj"], |c| {
            c["process"]["oomScoreAdj"] = json!(123)
        }),
        case!(
            "process.scheduler",
            ["process.scheduler.policy", "process.scheduler.nice"],
            |c| { c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 3}) }
        ),
        case!(
            "process.ioPriority",
            ["process.ioPriority.class", "process.ioPriority.priority"],
            |c| { c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6}) }
        ),
        case!(
            "process.execCPUAffinity",
            ["process.execCPUAffinity.final"],
            |c| { c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0"}) }
        ),
        case!(
            "linux.namespaces",
            [
                "(mount)",
                "(pid)",
                "(network)",
                "(ipc)",
                "(uts)",
                "(cgroup)"
            ],
            |c| push_ns(c, "cgroup")
        ),
        case!(
            "linux.namespaces (joined by path)",
            ["linux.namespaces[3] (network)", "linux.namespaces[4] (ipc)"],
            |c| {
                // The runtime's own (the host's), named by path: setns is used, and the inode
                // is known. Never combined with sysctl: it would then write the host's.
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "network" && n["type"] != "ipc");
                ns.insert(3, json!({"type": "network", "path": "/proc/self/ns/net"}));
                ns.insert(4, json!({"type": "ipc", "path": "/proc/self/ns/ipc"}));
            }
        ),
        case!("linux.uidMappings", ["(user)", "process.user.uid"], |c| {
            push_ns(c, "user");
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // a v1 cgroup mount needs the host's hierarchies, not ours to bind in a user ns
            mounts(c).retain(|m| m["destination"] != "/sys/fs/cgroup");
        }),
        case!(
            "linux.timeOffsets",
            ["(time)", "linux.timeOffsets.monotonic"],
            |c| {
                push_ns(c, "time");
                c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 3600, "nanosecs": 500},
                                               "boottime": {"secs": 86400, "nanosecs": 0}});
            }
        ),
        case!("mounts (flags)", ["(/scratch)"], |c| {
            mounts(c).push(
                json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["ro", "nosuid", "nodev", "noexec", "noatime", "size=1m"]}),
            )
        }),
        case!(
            "mounts (propagation)",
            ["(/shared)", "(/unbindable)"],
            |c| {
                mounts(c).push(
                    json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs",
                "options": ["shared"]}),
                );
                mounts(c).push(json!({"destination": "/unbindable", "type": "tmpfs",
                "source": "tmpfs", "options": ["unbindable"]}));
            }
        ),
        case!("mounts (bind)", ["(/hostetc)"], |c| {
            mounts(c).push(
                json!({"destination": "/hostetc", "type": "bind", "source": "/etc",
                "options": ["rbind", "ro", "nosuid", "rslave"]}),
            )
        }),
        case!(
            "linux.rootfsPropagation",
            ["linux.rootfsPropagation"],
            |c| { c["linux"]["rootfsPropagation"] = json!("shared") }
        ),
        case!("root.readonly", ["root.readonly"], |c| c["root"]
            ["readonly"] =
            json!(true)),
        case!("linux.maskedPaths", ["linux.maskedPaths[0]"], |c| {
            c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/scsi", "/etc/hostname"])
        }),
        case!("linux.readonlyPaths", ["linux.readonlyPaths[0]"], |c| {
            c["linux"]["readonlyPaths"] = json!(["/proc/sys", "/proc/bus"])
        }),
        case!(
            "linux.sysctl",
            [
                "linux.sysctl[net.ipv4.ip_forward]",
                "linux.sysctl[kernel.msgmax]"
            ],
            |c| {
                c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"})
            }
        ),
        case!(
            "linux.devices",
            [
                "linux.devices[0]",
                "linux.devices[1]",
                "default device /dev/null"
            ],
            |c| {
                c["linux"]["devices"] = json!([
                {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3,
                 "fileMode": 416, "uid": 1, "gid": 2},
                {"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 384}]);
                // the device cgroup must let the container use what it was given
                c["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
            }
        ),
        // In a user namespace devices are binds of the host's nodes (mknod is not allowed), so
        // this one names a node the host has and leaves mode and owner to it.
        case!(
            "linux.devices (a host node)",
            ["linux.devices[0] (/dev/loop0)"],
            |c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0}]);
                c["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
            }
        ),
        case!(
            "linux.seccomp",
            [
                "filter mode",
                "seccomp: getppid",
                "seccomp: getpgrp",
                "seccomp: getuid"
            ],
            |c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [
                        {"names": ["getppid", "sched_yield"], "action": "SCMP_ACT_ERRNO",
                         "errnoRet": 38},
                        {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO"}]})
            }
        ),
        case!("linux.personality", ["linux.personality.domain"], |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32"})
        }),
        case!(
            "linux.memoryPolicy",
            ["linux.memoryPolicy.mode", "linux.memoryPolicy.nodes"],
            |c| {
                c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0",
                                               "flags": ["MPOL_F_STATIC_NODES"]})
            }
        ),
        case!(
            "linux.resources.memory",
            ["memory.limit", "memory.reservation"],
            |c| c["linux"]["resources"]["memory"] = json!({"limit": 67108864,
                "reservation": 33554432, "swap": 134217728})
        ),
        case!(
            "linux.resources.cpu",
            ["cpu.shares", "cpu.cpus", "cpu.mems"],
            |c| c["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000,
                "period": 100000, "cpus": "0", "mems": "0"})
        ),
        case!("linux.resources.pids", ["pids.limit"], |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 77})
        }),
        case!(
            "linux.resources.blockIO",
            ["throttleReadBpsDevice[0]"],
            |c| {
                let (major, minor) = block_device().unwrap_or((254, 0));
                c["linux"]["resources"]["blockIO"] = json!({
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 300}]});
            }
        ),
        case!(
            "linux.resources.hugepageLimits",
            ["hugepageLimits[2MB]"],
            |c| {
                c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB",
                                                                "limit": 4194304}])
            }
        ),
    ]
}

/// Combinations: every field group at once (but the user namespace, which changes what the
/// others may do), then the user namespace with the groups that stay meaningful in it.
pub fn combinations() -> Vec<Case> {
    let all = fields();
    let mut out = Vec::new();
    let pick = |names: &[&str], label: &str| {
        let mut edits = Vec::new();
        let mut must = Vec::new();
        for c in fields() {
            if names.contains(&c.name.as_str()) {
                edits.extend(c.edits);
                must.extend(c.must);
            }
        }
        Case {
            name: label.to_string(),
            edits,
            must,
        }
    };
    let everything: Vec<&str> = all
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| {
            !matches!(
                *n,
                "linux.uidMappings"
                    | "linux.devices (a host node)"
                    | "linux.namespaces (joined by path)"
            )
        })
        .collect();
    out.push(pick(&everything, "all fields but the user namespace"));
    out.push(pick(
        &[
            "linux.uidMappings",
            "hostname",
            "process.user",
            "process.capabilities",
            "process.rlimits",
            "mounts (flags)",
            "linux.maskedPaths",
            "linux.readonlyPaths",
            "linux.seccomp",
            "linux.timeOffsets",
            "linux.devices (a host node)",
        ],
        "user namespace with ids, caps, mounts, paths, seccomp, time, devices",
    ));
    out.push(pick(
        &[
            "linux.namespaces",
            "linux.resources.memory",
            "linux.resources.cpu",
            "linux.resources.pids",
            "process.scheduler",
            "process.ioPriority",
            "process.noNewPrivileges",
            "linux.seccomp",
        ],
        "cgroup namespace with limits, scheduler, seccomp",
    ));
    out
}

/// Why this machine cannot run the case, if it cannot: the kernel refuses a new user namespace
/// to a chrooted caller, and the VM lane's guest runs chrooted.
pub fn unrunnable(case: &Case) -> Option<&'static str> {
    let mut c = default_config(&["true"]);
    for e in &case.edits {
        e(&mut c);
    }
    let wants_userns = c["linux"]["namespaces"]
        .as_array()
        .is_some_and(|ns| ns.iter().any(|n| n["type"] == "user"));
    (wants_userns && !userns_available())
        .then_some("no user namespaces here (`unshare --user` fails)")
}

/// Runs one case under the runtime (HUSK_BIN) and judges it.
pub fn run(case: &Case) -> CaseResult {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["/conformance/husk-conformance", "/conformance/config.json"]);
    b.edit(|c| {
        for e in &case.edits {
            e(c);
        }
        let mut ann = host_ns();
        // Namespaces joined by path: the link the container must then have.
        for n in c["linux"]["namespaces"].as_array().into_iter().flatten() {
            if let (Some(t), Some(p)) = (n["type"].as_str(), n["path"].as_str()) {
                if let Ok(l) = std::fs::read_link(p) {
                    let key = format!("conformance/joined-ns/{t}");
                    ann.insert(key, json!(l.display().to_string()));
                }
            }
        }
        ann.extend(c["annotations"].as_object().cloned().unwrap_or_default());
        c["annotations"] = Value::Object(ann);
        if let Ok(v) = std::env::var("CONFORMANCE_OCI_VERSION") {
            c["ociVersion"] = json!(v);
        }
    });
    let dir = b.rootfs().join("conformance");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(checker(), dir.join("husk-conformance")).unwrap();
    std::fs::copy(b.path().join("config.json"), dir.join("config.json")).unwrap();
    // In a user namespace the container's root must own its rootfs to make mount points.
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    let root_map = cfg["linux"]["uidMappings"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["containerID"] == 0))
        .and_then(|m| m["hostID"].as_u64());
    if let Some(id) = root_map {
        let st = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{id}:{id}"))
            .arg(b.rootfs())
            .status()
            .unwrap();
        assert!(st.success(), "chown of the rootfs failed");
    }
    let output = rt.run_new(&b);
    let failure = judge(case, &output);
    let r = CaseResult {
        name: case.name.clone(),
        output,
        failure,
    };
    if let Some(path) = std::env::var_os("CONFORMANCE_REPORT") {
        report(&path, case, &r);
    }
    r
}

/// One line for scripts/conformance: name, pass|fail, why the checker did not run (or ""),
/// every failed check, every required check that did not pass (lists joined by " ;; ").
fn report(path: &std::ffi::OsStr, case: &Case, r: &CaseResult) {
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    let out = &r.output.stdout;
    let not_ok: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("not ok "))
        .map(|l| clean(l.split_once(" - ").map_or(l, |x| x.1)))
        .collect();
    let ran = out.lines().any(|l| l.starts_with("1.."));
    let error = if ran {
        String::new()
    } else {
        clean(r.output.stderr.lines().last().unwrap_or("no output"))
    };
    let missing: Vec<&str> = case
        .must
        .iter()
        .copied()
        .filter(|m| {
            !out.lines()
                .any(|l| l.starts_with("ok ") && l.contains(m) && !l.contains("# SKIP"))
        })
        .collect();
    let status = if r.failure.is_none() { "pass" } else { "fail" };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(
        f,
        "{}\t{status}\t{error}\t{}\t{}",
        r.name,
        not_ok.join(" ;; "),
        missing.join(" ;; ")
    )
    .unwrap();
}

fn judge(case: &Case, o: &Output) -> Option<String> {
    if let Some(l) = o.stdout.lines().find(|l| l.starts_with("not ok")) {
        return Some(l.to_string());
    }
    if !o.stdout.lines().any(|l| l.starts_with("1..")) {
        let err = o.stderr.lines().last().unwrap_or("no output").to_string();
        return Some(format!("the container did not run the checker: {err}"));
    }
    if o.code() != 0 {
        return Some(format!("checker exit status {}", o.code()));
    }
    for m in &case.must {
        let ran = o
            .stdout
            .lines()
            .any(|l| l.starts_with("ok ") && l.contains(m) && !l.contains("# SKIP"));
        if !ran {
            let skip = o.stdout.lines().find(|l| l.contains(m)).unwrap_or("absent");
            return Some(format!("check {m:?} did not pass: {skip}"));
        }
    }
    None
}
