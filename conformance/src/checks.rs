//! The checks, one function per config section, each reading what the process can see of
//! itself (uname, /proc/self/status, getrlimit, mountinfo, /proc/sys).

use std::ffi::CStr;

use serde_json::Value;

use crate::Tap;

pub fn all(c: &Value, t: &mut Tap) {
    uts(c, t);
    process(c, t);
    namespaces(c, t);
    mounts(c, t);
    paths(c, t);
    sysctl(c, t);
    crate::linux::all(c, t);
    crate::sched::all(c, t);
}

fn utsname() -> (String, String) {
    // SAFETY: an all-zero utsname is a valid value; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, writable utsname.
    unsafe { libc::uname(&mut u) };
    // SAFETY: the kernel NUL-terminates both fields.
    let s = |f: &[libc::c_char]| {
        unsafe { CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    (s(&u.nodename), s(&u.domainname))
}

fn uts(c: &Value, t: &mut Tap) {
    let (host, domain) = utsname();
    if let Some(h) = c["hostname"].as_str() {
        t.eq("hostname", h, &host);
    }
    if let Some(d) = c["domainname"].as_str() {
        t.eq("domainname", d, &domain);
    }
}

/// A line of /proc/self/status, after its "Key:".
pub fn status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

const RLIMITS: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

/// Capability names as a mask; the names this table lacks are dropped (the kernel may too).
fn cap_mask(v: &Value) -> u64 {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str()?.strip_prefix("CAP_"))
        .filter_map(|n| CAPS.iter().position(|c| *c == n))
        .fold(0, |m, i| m | (1 << i))
}

fn process(c: &Value, t: &mut Tap) {
    let p = &c["process"];
    if let Some(cwd) = p["cwd"].as_str() {
        let seen = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        t.eq("process.cwd", cwd, &seen);
    }
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    for (i, e) in p["env"].as_array().into_iter().flatten().enumerate() {
        let e = e.as_str().unwrap_or_default();
        if env.iter().any(|x| x == e) {
            t.ok(&format!("process.env[{i}]"))
        } else {
            t.fail(&format!("process.env[{i}]"), e, "absent")
        }
    }
    let u = &p["user"];
    // SAFETY: plain getters.
    let ids = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if let Some(uid) = u["uid"].as_u64() {
        t.eq("process.user.uid", (uid as u32, uid as u32), (ids.0, ids.1));
    }
    if let Some(gid) = u["gid"].as_u64() {
        t.eq("process.user.gid", (gid as u32, gid as u32), (ids.2, ids.3));
    }
    if let Some(add) = u["additionalGids"].as_array() {
        let mut want: Vec<u32> = add
            .iter()
            .filter_map(|g| g.as_u64())
            .map(|g| g as u32)
            .collect();
        want.sort();
        want.dedup();
        let mut groups = vec![0 as libc::gid_t; 256];
        // SAFETY: groups has room for 256 entries.
        let n = unsafe { libc::getgroups(256, groups.as_mut_ptr()) };
        groups.truncate(n.max(0) as usize);
        groups.sort();
        groups.dedup();
        t.eq("process.user.additionalGids", want, groups);
    }
    if let Some(m) = u["umask"].as_u64() {
        t.eq("process.user.umask", format!("{m:04o}"), status("Umask:"));
    }
    for (i, r) in p["rlimits"].as_array().into_iter().flatten().enumerate() {
        let name = r["type"].as_str().unwrap_or_default();
        let Some(res) = RLIMITS
            .iter()
            .position(|n| Some(*n) == name.strip_prefix("RLIMIT_"))
        else {
            t.skip(&format!("process.rlimits[{i}]"), &format!("unknown {name}"));
            continue;
        };
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: l is a valid rlimit to fill.
        unsafe { libc::getrlimit(res as _, &mut l) };
        t.eq(
            &format!("process.rlimits[{i}] ({name})"),
            (
                r["soft"].as_u64().unwrap_or(0),
                r["hard"].as_u64().unwrap_or(0),
            ),
            (l.rlim_cur, l.rlim_max),
        );
    }
    let caps = &p["capabilities"];
    if caps.is_object() {
        // What execve leaves of the configured sets (capabilities(7)), the binary having no
        // file capabilities: ambient survives only where also permitted and inheritable; root
        // gets inheritable | bounding as permitted and effective; others get the ambient set.
        let set = |f: &str| cap_mask(&caps[f]);
        let (bnd, inh) = (set("bounding"), set("inheritable"));
        let amb = set("ambient") & set("permitted") & inh & bnd;
        let root = ids.1 == 0;
        let prm = if root { inh | bnd } else { amb };
        for (field, key, want) in [
            ("bounding", "CapBnd:", bnd),
            ("effective", "CapEff:", prm),
            ("permitted", "CapPrm:", prm),
            ("inheritable", "CapInh:", inh),
            ("ambient", "CapAmb:", amb),
        ] {
            let seen = u64::from_str_radix(&status(key), 16).unwrap_or(u64::MAX);
            t.eq(
                &format!("process.capabilities.{field}"),
                format!("{want:016x}"),
                format!("{seen:016x}"),
            );
        }
    }
    if let Some(nnp) = p["noNewPrivileges"].as_bool() {
        t.eq(
            "process.noNewPrivileges",
            nnp as u8,
            status("NoNewPrivs:").parse().unwrap_or(9),
        );
    }
    if let Some(adj) = p["oomScoreAdj"].as_i64() {
        let seen = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
        t.eq(
            "process.oomScoreAdj",
            adj.to_string(),
            seen.trim().to_string(),
        );
    }
}

fn namespaces(c: &Value, t: &mut Tap) {
    for (i, n) in c["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let typ = n["type"].as_str().unwrap_or_default();
        let proc_name = match typ {
            "mount" => "mnt",
            "network" => "net",
            other => other,
        };
        let name = format!("linux.namespaces[{i}] ({typ})");
        let seen = std::fs::read_link(format!("/proc/self/ns/{proc_name}"))
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        if n["path"].is_string() {
            // The harness resolves the path on the host: `conformance/joined-ns/<type>`.
            match c["annotations"][format!("conformance/joined-ns/{typ}")].as_str() {
                None => t.skip(&name, "joined by path, no inode given"),
                Some(w) => t.eq(&name, w, seen.as_str()),
            }
            continue;
        }
        let host = c["annotations"][format!("conformance/host-ns/{typ}")].as_str();
        match host {
            None => t.skip(&name, "no host inode given"),
            Some(h) if h != seen => t.ok(&name),
            Some(h) => t.fail(&name, &format!("a new namespace, not {h}"), &seen),
        }
    }
}

/// One line of mountinfo.
pub struct MountLine {
    pub root: String,
    pub point: String,
    /// Per-mount options ("rw,nosuid,relatime").
    pub opts: String,
    /// Optional fields: "shared:N", "master:N", "unbindable".
    pub tags: Vec<String>,
    pub fstype: String,
    /// Super-block options (a v1 cgroup's controllers are here).
    pub sopts: String,
}

/// Every mount, from mountinfo.
pub fn mountinfo() -> Vec<MountLine> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            Some(MountLine {
                root: f.get(3)?.replace("\\040", " "),
                point: f.get(4)?.replace("\\040", " "),
                opts: f.get(5)?.to_string(),
                tags: f[6..dash].iter().map(|s| s.to_string()).collect(),
                fstype: f.get(dash + 1)?.to_string(),
                sopts: f.get(dash + 3).map_or(String::new(), |s| s.to_string()),
            })
        })
        .collect()
}

/// What a mount option asks of mountinfo's per-mount options, and whether it holds.
fn flag_holds(opt: &str, opts: &str) -> Option<bool> {
    let has = |o: &str| opts.split(',').any(|x| x == o);
    Some(match opt {
        "ro" | "nosuid" | "nodev" | "noexec" | "noatime" | "nodiratime" | "relatime" => has(opt),
        "rw" => has("rw"),
        "suid" => !has("nosuid"),
        "dev" => !has("nodev"),
        "exec" => !has("noexec"),
        "strictatime" => !has("relatime") && !has("noatime"),
        _ => return None,
    })
}

/// What a propagation option asks of mountinfo's optional fields, and whether it holds.
pub fn propagation_holds(opt: &str, tags: &[String]) -> Option<bool> {
    let has = |p: &str| tags.iter().any(|t| t.starts_with(p));
    Some(match opt {
        "shared" | "rshared" => has("shared:"),
        // A slave of a private mount is private: what holds either way is that nothing
        // propagates out of it.
        "slave" | "rslave" => !has("shared:"),
        "private" | "rprivate" => !has("shared:") && !has("master:") && !has("unbindable"),
        "unbindable" | "runbindable" => has("unbindable"),
        _ => return None,
    })
}

fn mounts(c: &Value, t: &mut Tap) {
    let mi = mountinfo();
    for (i, m) in c["mounts"].as_array().into_iter().flatten().enumerate() {
        let dest = m["destination"].as_str().unwrap_or_default();
        let name = format!("mounts[{i}] ({dest})");
        // The last mount on the point is the one in effect.
        let Some(line) = mi.iter().rev().find(|l| l.point == dest) else {
            t.fail(&name, "a mount point", "none");
            continue;
        };
        let typ = m["type"].as_str().unwrap_or_default();
        let options: Vec<&str> = m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.as_str())
            .collect();
        let bind = typ == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
        if !bind && !typ.is_empty() && typ != "cgroup" && line.fstype != typ {
            t.fail(
                &name,
                &format!("type {typ}"),
                &format!("type {}", line.fstype),
            );
            continue;
        }
        // Every flag and propagation option the mount asked for, as one check.
        let wrong: Vec<&str> = options
            .iter()
            .copied()
            .filter(|o| {
                flag_holds(o, &line.opts).or_else(|| propagation_holds(o, &line.tags))
                    == Some(false)
            })
            .collect();
        if wrong.is_empty() {
            t.ok(&name);
        } else {
            t.fail(
                &name,
                &wrong.join(","),
                &format!("{} {}", line.opts, line.tags.join(" ")),
            );
        }
    }
    if c["root"]["readonly"].as_bool() == Some(true) {
        match mi.iter().rev().find(|l| l.point == "/") {
            Some(l) if l.opts.split(',').any(|o| o == "ro") => t.ok("root.readonly"),
            Some(l) => t.fail("root.readonly", "a read-only /", &l.opts),
            None => t.fail("root.readonly", "a read-only /", "no mount at /"),
        }
    }
    if let Some(p) = c["linux"]["rootfsPropagation"].as_str() {
        let root = mi.iter().rev().find(|l| l.point == "/");
        let tags = root.map(|l| l.tags.clone()).unwrap_or_default();
        match propagation_holds(p, &tags) {
            Some(true) => t.ok("linux.rootfsPropagation"),
            Some(false) => t.fail("linux.rootfsPropagation", p, &tags.join(" ")),
            None => t.skip("linux.rootfsPropagation", "unknown value"),
        }
    }
}

fn paths(c: &Value, t: &mut Tap) {
    let l = &c["linux"];
    for (i, p) in l["maskedPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = p.as_str().unwrap_or_default();
        let name = format!("linux.maskedPaths[{i}] ({p})");
        match std::fs::metadata(p) {
            Err(_) => t.ok(&name), // absent: nothing to hide
            Ok(m) if m.is_dir() => {
                let n = std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
                t.eq(&name, 0, n)
            }
            Ok(_) => {
                let n = std::fs::read(p).map(|b| b.len()).unwrap_or(0);
                t.eq(&name, 0, n)
            }
        }
    }
    let mi = mountinfo();
    for (i, p) in l["readonlyPaths"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = p.as_str().unwrap_or_default();
        let name = format!("linux.readonlyPaths[{i}] ({p})");
        if std::fs::metadata(p).is_err() {
            t.ok(&name);
            continue;
        }
        match mi.iter().rev().find(|l| l.point == p) {
            Some(l) if l.opts.split(',').any(|o| o == "ro") => t.ok(&name),
            Some(l) => t.fail(&name, "a read-only mount", &l.opts),
            None => t.fail(&name, "a read-only mount", "no mount"),
        }
    }
}

fn sysctl(c: &Value, t: &mut Tap) {
    for (k, v) in c["linux"]["sysctl"].as_object().into_iter().flatten() {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let seen = std::fs::read_to_string(&path).unwrap_or_default();
        t.eq(
            &format!("linux.sysctl[{k}]"),
            v.as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>(),
            seen.split_whitespace().collect(),
        );
    }
}
