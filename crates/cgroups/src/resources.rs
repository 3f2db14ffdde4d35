//! Applying `linux.resources` to a container's cgroups: the v1 mapping is [`crate::v1`], the v2
//! one [`crate::v2`]; both plan pure lists of [`Entry`] that the writers here put in the files.
//! docs/resources.md has the field → file tables.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::fs::read;
use crate::{v1, v2, Error, Layout, Manager, Result};

/// One write of the plan: `value` to `file` of `controller`'s directory (v1), or of the v2
/// directory (`controller` is then the file's prefix, which must be enabled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// The spec field, for errors: `memory.limit`, `blockIO.weight`, `unified["x.y"]`.
    pub field: String,
    pub mode: Mode,
}

/// What to do when the file is missing (or refuses the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A missing file is an error naming the field and the file.
    Required,
    /// Skipped when the file is missing or the kernel refuses it with EOPNOTSUPP/EINVAL
    /// (v1 kernel memory limits, obsolete since Linux 5.4 and gone since 6.x).
    IfPresent,
    /// When `file` is missing, write `.1` to `.0` instead (`io.bfq.weight` → `io.weight`).
    Or(String, String),
    /// `memory.checkBeforeUpdate`: refuse a limit below the usage in this file.
    NotBelowUsage(&'static str),
}

impl Entry {
    pub fn new(controller: &'static str, file: &str, value: impl ToString, field: &str) -> Entry {
        Entry {
            controller,
            file: file.to_string(),
            value: value.to_string(),
            field: field.to_string(),
            mode: Mode::Required,
        }
    }
    pub fn mode(mut self, mode: Mode) -> Entry {
        self.mode = mode;
        self
    }
}

pub(crate) fn invalid(field: &str, what: impl Into<String>) -> Error {
    Error::Resource {
        field: field.to_string(),
        what: what.into(),
    }
}

/// A hugepageLimits pageSize as the kernel names it in file names ("2MB", "1GB", "64KB");
/// anything else is refused (it becomes part of a path).
pub(crate) fn page_size(size: &str, i: usize) -> Result<&str> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(invalid(
            &format!("hugepageLimits[{i}].pageSize"),
            format!("{size:?} is not a page size like \"2MB\" or \"1GB\""),
        ));
    }
    Ok(size)
}

/// runc's always-allowed devices (libcontainer/specconv AllowedDevices), appended after the
/// spec's rules: mknod of any node, and the default /dev nodes every container gets.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_string()));
        d
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),    // /dev/null
        rule(C, Some(1), Some(8), "rwm"),    // /dev/random
        rule(C, Some(1), Some(7), "rwm"),    // /dev/full
        rule(C, Some(5), Some(0), "rwm"),    // /dev/tty
        rule(C, Some(1), Some(5), "rwm"),    // /dev/zero
        rule(C, Some(1), Some(9), "rwm"),    // /dev/urandom
        rule(C, Some(136), None, "rwm"),     // /dev/pts/*
        rule(C, Some(5), Some(2), "rwm"),    // /dev/ptmx
        rule(C, Some(10), Some(200), "rwm"), // /dev/net/tun
    ]
}

/// The device rules to enforce, in order: the spec's, then [`default_device_rules`]; `None`
/// when the spec has no `devices` (nothing is restricted then).
pub fn device_rules(r: &LinuxResources) -> Option<Vec<LinuxDeviceCgroup>> {
    let mut rules = r.devices().clone()?;
    rules.extend(default_device_rules());
    Some(rules)
}

impl Manager {
    /// Writes every field of `r` to the container's cgroup files (v1 or v2 mapping by the
    /// host's layout). Called by `create` before the init is cloned, and by `update`.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        let saved = &self.saved;
        match saved.layout {
            Layout::V2 => {
                let dir = unified(saved.unified.as_deref())?;
                v2::write(dir, &v2::plan_v2(r)?)?;
                if let Some(rules) = device_rules(r) {
                    match crate::bpf::apply_devices(dir, &rules) {
                        // Unprivileged (rootless, a user's delegated cgroup): the kernel loads
                        // no device program for us. The container cannot reach devices the
                        // user cannot anyway (no mknod in a user namespace), so go without,
                        // as runc does.
                        Err(Error::Io { source, .. })
                            if source.raw_os_error() == Some(libc::EPERM)
                                && crate::dbus::host_uid() != 0 => {}
                        r => r?,
                    }
                }
                Ok(())
            }
            Layout::V1 => {
                if let Some(key) = r.unified().as_ref().and_then(|u| u.keys().min()) {
                    return Err(invalid(
                        &format!("unified[{key:?}]"),
                        "this host has no cgroup v2 hierarchy (cgroup v1 only)",
                    ));
                }
                v1::write(saved, v1::plan_v1(r)?)
            }
            Layout::Hybrid => apply_hybrid(self, r),
        }
    }
}

/// Hybrid: the v1 mapping, except hugetlb and rdma limits go to the unified hierarchy when
/// their controller is there and not in v1, and `unified` keys are allowed for the
/// controllers the unified hierarchy has.
fn apply_hybrid(m: &Manager, r: &LinuxResources) -> Result<()> {
    let saved = &m.saved;
    let dir = saved.unified.as_deref();
    let in_unified = |c: &str| -> Result<bool> {
        match dir {
            Some(d) => Ok(v2::hierarchy_controllers(d)?.iter().any(|x| x == c)),
            None => Ok(false),
        }
    };
    let mut r1 = r.clone();
    let mut r2 = LinuxResources::default();
    r1.set_unified(None);
    for c in ["hugetlb", "rdma"] {
        if saved.v1_dir(c).is_none() && in_unified(c)? {
            if c == "hugetlb" {
                r2.set_hugepage_limits(r1.hugepage_limits_mut().take());
            } else {
                r2.set_rdma(r1.rdma_mut().take());
            }
        }
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            let c = k.split('.').next().unwrap_or("");
            if !in_unified(c)? {
                return Err(invalid(
                    &format!("unified[{k:?}]"),
                    format!(
                        "controller {c:?} is not in the unified hierarchy of this hybrid host \
                         (it has: {})",
                        dir.map(|d| v2::hierarchy_controllers(d).map(|v| v.join(" ")))
                            .transpose()?
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        r2.set_unified(Some(u.clone()));
    }
    let p1 = v1::plan_v1(&r1)?;
    let p2 = v2::plan_v2(&r2)?;
    v1::write(saved, p1)?;
    if !p2.is_empty() {
        v2::write(unified(dir)?, &p2)?;
    }
    Ok(())
}

fn unified(dir: Option<&Path>) -> Result<&Path> {
    dir.ok_or_else(|| Error::Invalid("no cgroup v2 directory for this container".into()))
}

/// Writes one entry to `dir/file` (the caller checked usage etc.). The file is opened
/// straight away and a missing one shows as ENOENT: no stat first (a syscall costs ~20 us on
/// the bench machine, and a container's create writes dozens of entries).
pub(crate) fn write_entry(dir: &Path, e: &Entry) -> Result<()> {
    let path = dir.join(&e.file);
    if let Mode::NotBelowUsage(usage_file) = e.mode {
        check_usage(dir, e, usage_file)?;
    }
    let not_found = |r: &Result<()>| matches!(r, Err(Error::ResourceIo { source, .. }) if source.kind() == ErrorKind::NotFound);
    let r = put(&path, &e.value, e);
    if not_found(&r) {
        return match &e.mode {
            Mode::IfPresent => Ok(()),
            Mode::Or(f, v) => {
                let alt = dir.join(f);
                let r = put(&alt, v, e);
                if not_found(&r) {
                    return Err(missing(e, &[&path, &alt]));
                }
                r
            }
            _ => Err(missing(e, &[&path])),
        };
    }
    match r {
        Err(Error::ResourceIo { source, .. })
            if e.mode == Mode::IfPresent
                && matches!(source.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) =>
        {
            Ok(())
        }
        r => r,
    }
}

fn missing(e: &Entry, paths: &[&PathBuf]) -> Error {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    invalid(
        &e.field,
        format!(
            "{} does not exist (the kernel has no such {} cgroup file)",
            names.join(" nor "),
            e.controller
        ),
    )
}

fn put(path: &Path, value: &str, e: &Entry) -> Result<()> {
    use std::io::Write;
    let r = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    r.map_err(|source| Error::ResourceIo {
        field: e.field.clone(),
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn check_usage(dir: &Path, e: &Entry, usage_file: &str) -> Result<()> {
    let Ok(limit) = e.value.parse::<i64>() else {
        return Ok(()); // "max"
    };
    if limit <= 0 {
        return Ok(());
    }
    let path = dir.join(usage_file);
    let text = match read(&path) {
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Err(missing(e, &[&path]))
        }
        r => r?,
    };
    let usage: i64 = text.trim().parse().map_err(|_| Error::Parse {
        path: path.clone(),
        what: format!("not a number: {:?}", text.trim()),
    })?;
    if limit < usage {
        return Err(invalid(
            &e.field,
            format!(
                "checkBeforeUpdate: limit {limit} is below the current usage {usage} ({})",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(j: serde_json::Value) -> LinuxResources {
        serde_json::from_value(j).unwrap()
    }

    /// Real kernel (root, v1 memory with memsw): memory.memsw.limit_in_bytes is ordered
    /// against memory.limit_in_bytes both when raising and when lowering, and
    /// checkBeforeUpdate refuses a limit below the usage.
    #[test]
    fn swap_order_and_check_before_update_on_the_kernel() {
        let root = std::path::Path::new("/sys/fs/cgroup/memory");
        // SAFETY: plain syscall.
        if unsafe { libc::geteuid() } != 0 || !root.join("memory.memsw.limit_in_bytes").exists() {
            eprintln!("SKIPPED: needs root and a v1 memory hierarchy with memsw");
            return;
        }
        let name = format!("/husk-unit-swap-{}", std::process::id());
        let m = crate::Manager::new(Some(std::path::Path::new(&name)), "x").unwrap();
        m.create().unwrap();
        let dir = m.saved().v1_dir("memory").unwrap().to_path_buf();
        let get = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        let set = |limit: i64, swap: i64| {
            m.apply(&res(
                serde_json::json!({"memory": {"limit": limit, "swap": swap}}),
            ))
        };
        let mib = 1024 * 1024;
        let result = (|| {
            for (l, s) in [(32, 64), (128, 256), (16, 16), (512, 1024)] {
                set(l * mib, s * mib).map_err(|e| format!("{l}/{s} MiB: {e}"))?;
                let got = (
                    get("memory.limit_in_bytes"),
                    get("memory.memsw.limit_in_bytes"),
                );
                let want = ((l * mib).to_string(), (s * mib).to_string());
                if got != want {
                    return Err(format!("{l}/{s} MiB: read back {got:?}"));
                }
            }
            set(-1, -1).map_err(|e| format!("unlimited: {e}"))?;
            if get("memory.limit_in_bytes") != get("memory.memsw.limit_in_bytes") {
                return Err("unlimited: limit and memsw differ".into());
            }
            // 8 MiB of page cache charged to the cgroup by a process in it.
            let file = std::env::temp_dir().join(format!("husk-unit-swap-{}", std::process::id()));
            let procs = dir.join("cgroup.procs");
            let st = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {} && head -c 8388608 /dev/zero > {}",
                    procs.display(),
                    file.display()
                ))
                .status()
                .map_err(|e| e.to_string())?;
            let usage: i64 = get("memory.usage_in_bytes").parse().unwrap();
            let checked = m.apply(&res(serde_json::json!(
                {"memory": {"limit": mib, "checkBeforeUpdate": true}})));
            let _ = std::fs::remove_file(&file);
            if !st.success() || usage < 4 * mib {
                return Err(format!("charging the cgroup failed: {st}, usage {usage}"));
            }
            match checked {
                Err(e)
                    if e.to_string().contains("checkBeforeUpdate")
                        && e.to_string().contains("memory.limit") =>
                {
                    Ok(())
                }
                r => Err(format!("checkBeforeUpdate with usage {usage}: {r:?}")),
            }
        })();
        m.destroy().unwrap();
        result.unwrap();
    }
}

/// Fields of `r` that take no effect on this layout, each with the reason, for the caller to
/// warn about (the spec asks runtimes to warn, not fail): on v2 the fields without a v2 file
/// (ignored as runc does); on v1, `memory.kernel` on kernels >= 5.16, which accept and ignore it.
pub fn ignored_fields(r: &LinuxResources, layout: Layout) -> Vec<String> {
    let mut out = Vec::new();
    let m = r.memory().as_ref();
    let has = |b: bool, field: &str, out: &mut Vec<String>, why: &str| {
        if b {
            out.push(format!("linux.resources.{field} is ignored: {why}"));
        }
    };
    if layout == Layout::V2 {
        let why = "cgroup v2 has no such setting";
        has(
            m.and_then(|m| m.kernel()).is_some(),
            "memory.kernel",
            &mut out,
            why,
        );
        has(
            m.and_then(|m| m.kernel_tcp()).is_some(),
            "memory.kernelTCP",
            &mut out,
            why,
        );
        has(
            m.and_then(|m| m.swappiness()).is_some(),
            "memory.swappiness",
            &mut out,
            why,
        );
        has(
            m.and_then(|m| m.disable_oom_killer()).is_some(),
            "memory.disableOOMKiller",
            &mut out,
            why,
        );
        has(
            r.block_io()
                .as_ref()
                .and_then(|b| b.leaf_weight())
                .is_some(),
            "blockIO.leafWeight",
            &mut out,
            why,
        );
    } else if m.and_then(|m| m.kernel()).is_some() && kernel_at_least(5, 16) {
        out.push(
            "linux.resources.memory.kernel is ignored: kernels >= 5.16 accept the limit and do \
             not apply it (kernel memory counts against memory.limit)"
                .into(),
        );
    }
    out
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[cfg(test)]
mod ignored_tests {
    use super::*;

    #[test]
    fn v2_lists_fields_without_a_file() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1000000,"kernel":1,"swappiness":10},"blockIO":{"leafWeight":10}}"#,
        )
        .unwrap();
        let w = ignored_fields(&r, Layout::V2);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("linux.resources.memory.kernel is ignored"));
        assert!(ignored_fields(&LinuxResources::default(), Layout::V2).is_empty());
    }
}
