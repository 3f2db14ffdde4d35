//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit that systemd creates and removes, as runc's and crun's systemd drivers do.
//!
//! - `linux.cgroupsPath` is `slice:prefix:name` and names the unit `prefix-name.scope` in
//!   `slice` (empty: `system.slice`); its cgroup is the slice's path plus the unit
//!   (`a-b.slice` lives at `/a.slice/a-b.slice`).
//! - `create` starts the scope with the init's pid (StartTransientUnit, `Delegate=yes`, the limits
//!   as unit properties, device rules as `DevicePolicy`/`DeviceAllow`) and waits for the job's
//!   JobRemoved signal; then the same cgroup files as the fs driver are written, so every
//!   resource takes effect exactly alike and what systemd cannot express is still enforced.
//! - `update` sets the properties too (SetUnitProperties, runtime), so that systemd re-applying
//!   its properties later does not undo it.
//! - `delete` kills what is left, stops the unit, waits for the job and resets it if it failed.
//!
//! Only the unified (v2) hierarchy is supported: the systemd lane runs pure cgroup v2.
//!
//! Rootless ([`resolve_user`]): the same, through the user's own systemd instance
//! (`crate::systemd_user`); the default slice is `user.slice` and the cgroup lies below the
//! user manager's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::dbus::{Conn, DbusError, Value};
use crate::{hierarchy, Error, Layout, Result, Saved};

pub(crate) const DEST: &str = "org.freedesktop.systemd1";
pub(crate) const PATH: &str = "/org/freedesktop/systemd1";
pub(crate) const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PRIVATE: &str = "/run/systemd/private";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// How long to wait for systemd to answer or finish a job (runc waits 30 s too).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The unit name prefix when `linux.cgroupsPath` is empty (runc uses `runc`).
const DEFAULT_PREFIX: &str = "husk";

/// The container's unit, stored in state.json with the cgroup directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    /// `prefix-name.scope`.
    pub name: String,
    /// The slice it is in, `system.slice` by default (`user.slice` for a user unit).
    pub slice: String,
    /// A unit of a user's own systemd instance (rootless): that user's uid, as the initial
    /// user namespace sees it; later commands reach the same manager. None: the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
}

fn invalid(path: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "linux.cgroupsPath {path:?}: the systemd cgroup driver expects \"slice:prefix:name\": {why}"
    ))
}

fn valid_unit_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// `slice:prefix:name` (or nothing, meaning `system.slice:husk:<id>`) to a [`Unit`].
pub fn parse_path(path: Option<&str>, id: &str) -> Result<Unit> {
    parse_in(path, id, "system.slice")
}

/// [`parse_path`] for a user unit of `uid`: the slice defaults to `user.slice`.
pub fn parse_user_path(path: Option<&str>, id: &str, uid: u32) -> Result<Unit> {
    let mut unit = parse_in(path, id, "user.slice")?;
    unit.user = Some(uid);
    Ok(unit)
}

fn parse_in(path: Option<&str>, id: &str, default_slice: &str) -> Result<Unit> {
    let path = path.unwrap_or("");
    let (slice, prefix, name) = if path.is_empty() {
        ("", DEFAULT_PREFIX, id)
    } else {
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(invalid(path, "it has no two colons"));
        };
        (slice, prefix, name)
    };
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    if !slice.ends_with(".slice") || !valid_unit_part(slice) {
        return Err(invalid(
            path,
            &format!("{slice:?} is not a slice unit name"),
        ));
    }
    if name.ends_with(".slice") {
        return Err(invalid(
            path,
            "a slice as the container's unit is not supported (name a scope)",
        ));
    }
    if !valid_unit_part(name) || (!prefix.is_empty() && !valid_unit_part(prefix)) {
        return Err(invalid(
            path,
            "prefix and name may only hold letters, digits and :-_.\\@",
        ));
    }
    let name = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(Unit {
        name,
        slice: slice.into(),
        user: None,
    })
}

/// A slice's cgroup path below the hierarchy root, as systemd lays it out: each `-` in the
/// name is one level (`a-b.slice` → `a.slice/a-b.slice`); `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let bad = || Error::Invalid(format!("{slice:?} is not a valid slice name"));
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(bad());
    }
    let mut out = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push(format!("{prefix}.slice"));
    }
    Ok(out)
}

/// Where the unit's cgroup will be, checked against this host: systemd must be running and the
/// cgroup hierarchy must be pure v2.
pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<Saved> {
    let unit = parse_path(cgroups_path, id)?;
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(Error::Invalid(
            "the systemd cgroup driver needs systemd as init, and it is not running \
             (no /run/systemd/system)"
                .into(),
        ));
    }
    let dir = unified_root()?
        .join(expand_slice(&unit.slice)?)
        .join(&unit.name);
    Ok(saved_of(unit, dir))
}

/// [`resolve`] for a unit of the caller's own systemd instance (rootless, `user@UID.service`):
/// the manager must be reachable (see `crate::systemd_user`), and tells where its cgroup is.
pub fn resolve_user(cgroups_path: Option<&str>, id: &str) -> Result<Saved> {
    let uid = crate::dbus::host_uid();
    let unit = parse_user_path(cgroups_path, id, uid)?;
    let root = unified_root()?;
    let (mut conn, _) = crate::systemd_user::open(uid, TIMEOUT)?;
    let own = crate::systemd_user::manager_cgroup(&mut conn)?;
    let dir = root
        .join(own.trim_start_matches('/'))
        .join(expand_slice(&unit.slice)?)
        .join(&unit.name);
    Ok(saved_of(unit, dir))
}

fn saved_of(unit: Unit, dir: PathBuf) -> Saved {
    Saved {
        layout: Layout::V2,
        dirs: vec![dir.clone()],
        unified: Some(dir),
        v1: Vec::new(),
        systemd: Some(unit),
    }
}

/// The mount point of the unified hierarchy; an error unless the host is pure v2.
fn unified_root() -> Result<PathBuf> {
    let hs = hierarchy::detect()?;
    let unified = match (hs.layout, hs.unified) {
        (Layout::V2, Some(h)) => h,
        (layout, _) => {
            return Err(Error::Invalid(format!(
                "the systemd cgroup driver supports only a pure cgroup v2 host; this one is {}",
                format!("{layout:?}").to_lowercase()
            )))
        }
    };
    Ok(unified.mount_point)
}

fn dbus_err(what: String) -> impl FnOnce(DbusError) -> Error {
    move |source| Error::Systemd { what, source }
}

/// A connection to the unit's manager, subscribed to its signals: the system's, or with
/// `user` that user's own instance.
fn connect(user: Option<u32>) -> Result<Conn> {
    let Some(uid) = user else {
        return connect_system();
    };
    let (mut conn, socket) = crate::systemd_user::open(uid, TIMEOUT)?;
    // On its private socket systemd sends every peer its signals unasked (and systemd 252
    // left a Subscribe there unanswered); on a bus, only to subscribers that asked for them.
    if matches!(socket, crate::systemd_user::Socket::Bus(_)) {
        add_match(&mut conn)
            .map_err(dbus_err("asking the user bus for systemd's signals".into()))?;
        conn.call(DEST, PATH, MANAGER, "Subscribe", &[])
            .map_err(dbus_err(
                "subscribing to the user systemd instance's signals".into(),
            ))?;
    }
    Ok(conn)
}

/// Asks the bus to route the manager's JobRemoved signals to us.
fn add_match(c: &mut Conn) -> std::result::Result<(), DbusError> {
    c.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        &[Value::Str(format!(
            "type='signal',sender='{DEST}',path='{PATH}',interface='{MANAGER}',member='JobRemoved'"
        ))],
    )
    .map(drop)
}

/// A connection to systemd over the system bus (as runc does); systemd's private socket only
/// where there is no bus. (On the private socket, systemd 252 left every other Subscribe of a
/// fresh connection unanswered in the systemd lane; the bus has no such trouble.)
fn connect_system() -> Result<Conn> {
    let bus = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| {
            a.strip_prefix("unix:path=")
                .map(|p| p.split(',').next().unwrap_or(p).to_owned())
        })
        .unwrap_or_else(|| SYSTEM_BUS.into());
    let mut conn = if !Path::new(&bus).exists() && Path::new(PRIVATE).exists() {
        Conn::connect(Path::new(PRIVATE), false, TIMEOUT)
    } else {
        Conn::connect(Path::new(&bus), true, TIMEOUT).and_then(|mut c| {
            add_match(&mut c)?;
            Ok(c)
        })
    }
    .map_err(dbus_err("connecting to systemd".into()))?;
    conn.call(DEST, PATH, MANAGER, "Subscribe", &[])
        .map_err(dbus_err("subscribing to systemd's signals".into()))?;
    Ok(conn)
}

/// Calls a Manager method that returns a job and waits for that job's result.
fn run_job(conn: &mut Conn, what: &str, method: &str, args: &[Value]) -> Result<()> {
    let reply = conn
        .call(DEST, PATH, MANAGER, method, args)
        .map_err(dbus_err(what.into()))?;
    let job = match reply.first() {
        Some(Value::Path(p)) => p.clone(),
        _ => return Err(Error::Invalid(format!("{what}: systemd returned no job"))),
    };
    let result = conn
        .wait_signal(|m| {
            if m.member.as_deref() != Some("JobRemoved") {
                return None;
            }
            match &m.body[..] {
                [_, Value::Path(p), _, Value::Str(result)] if *p == job => Some(result.clone()),
                _ => None,
            }
        })
        .map_err(dbus_err(format!("{what}: waiting for job {job}")))?;
    if result == "done" {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what}: systemd job {job} finished with result {result:?}"
        )))
    }
}

fn is_reply(e: &Error, name: &str) -> bool {
    matches!(e, Error::Systemd { source: DbusError::Reply { name: n, .. }, .. } if n == name)
}

/// Starts the container's scope with `pid` in it and the limits of `r` as properties.
pub fn start(saved: &Saved, pid: i32, r: Option<&LinuxResources>) -> Result<()> {
    let unit = unit_of(saved)?;
    let mut props = vec![
        Value::prop(
            "Description",
            Value::Str(format!("husk container {}", unit.name)),
        ),
        Value::prop("Slice", Value::Str(unit.slice.clone())),
        Value::prop("Delegate", Value::Bool(true)),
        Value::prop("DefaultDependencies", Value::Bool(false)),
        Value::prop(
            "PIDs",
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ),
        Value::prop("MemoryAccounting", Value::Bool(true)),
        Value::prop("CPUAccounting", Value::Bool(true)),
        Value::prop("IOAccounting", Value::Bool(true)),
        Value::prop("TasksAccounting", Value::Bool(true)),
    ];
    if let Some(r) = r {
        props.extend(properties(r)?);
    }
    let args = |props: &[Value]| {
        vec![
            Value::Str(unit.name.clone()),
            Value::Str("replace".into()),
            Value::Array("(sv)".into(), props.to_vec()),
            Value::Array("(sa(sv))".into(), Vec::new()),
        ]
    };
    let what = format!("starting systemd unit {}", unit.name);
    let mut conn = connect(unit.user)?;
    let started = match run_job(&mut conn, &what, "StartTransientUnit", &args(&props)) {
        // A failed unit of the same name from an earlier container: reset it and retry once.
        Err(e) if is_reply(&e, "org.freedesktop.systemd1.UnitExists") => {
            let _ = conn.call(
                DEST,
                PATH,
                MANAGER,
                "ResetFailedUnit",
                &[Value::Str(unit.name.clone())],
            );
            run_job(&mut conn, &what, "StartTransientUnit", &args(&props))
        }
        r => r,
    };
    started?;
    if unit.user.is_some() {
        check_user_cgroup(&mut conn, unit, saved)?;
    }
    Ok(())
}

/// The user unit's cgroup, as systemd made it, must be the directory `resolve_user` saved
/// (computed from the manager's own cgroup before the unit existed): every later command
/// writes, reads and removes that one.
fn check_user_cgroup(conn: &mut Conn, unit: &Unit, saved: &Saved) -> Result<()> {
    let cg = crate::systemd_user::unit_cgroup(conn, &unit.name)?;
    let want = saved.unified.as_deref().unwrap_or(Path::new(""));
    if cg.is_empty() || !want.ends_with(cg.trim_start_matches('/')) {
        return Err(Error::Invalid(format!(
            "systemd put user unit {} in cgroup {cg:?}, not at {}",
            unit.name,
            want.display()
        )));
    }
    Ok(())
}

/// Stops the unit (its processes must be gone already: `Manager::destroy` kills them first),
/// waits for the job and resets a failed state, so nothing of the unit remains.
pub fn stop(saved: &Saved) -> Result<()> {
    let unit = unit_of(saved)?;
    let mut conn = connect(unit.user)?;
    let what = format!("stopping systemd unit {}", unit.name);
    let args = [Value::Str(unit.name.clone()), Value::Str("replace".into())];
    match run_job(&mut conn, &what, "StopUnit", &args) {
        Ok(()) => {}
        // Already gone (systemd collects a scope once its cgroup is empty).
        Err(e) if is_reply(&e, "org.freedesktop.systemd1.NoSuchUnit") => {}
        Err(e) => return Err(e),
    }
    match conn.call(
        DEST,
        PATH,
        MANAGER,
        "ResetFailedUnit",
        &[Value::Str(unit.name.clone())],
    ) {
        Ok(_) => Ok(()),
        Err(DbusError::Reply { name, .. }) if name.ends_with("NoSuchUnit") => Ok(()),
        Err(e) => Err(dbus_err(format!("resetting systemd unit {}", unit.name))(e)),
    }
}

/// Sets the properties of `r` on the running unit (`update`), for the runtime only.
pub fn set_properties(saved: &Saved, r: &LinuxResources) -> Result<()> {
    let unit = unit_of(saved)?;
    let props = properties(r)?;
    if props.is_empty() {
        return Ok(());
    }
    connect(unit.user)?
        .call(
            DEST,
            PATH,
            MANAGER,
            "SetUnitProperties",
            &[
                Value::Str(unit.name.clone()),
                Value::Bool(true),
                Value::Array("(sv)".into(), props),
            ],
        )
        .map(drop)
        .map_err(dbus_err(format!(
            "setting properties of systemd unit {}",
            unit.name
        )))
}

fn unit_of(saved: &Saved) -> Result<&Unit> {
    saved
        .systemd
        .as_ref()
        .ok_or_else(|| Error::Invalid("not a systemd-driver cgroup".into()))
}

/// systemd's "infinity" for limits.
const INFINITY: u64 = u64::MAX;

fn limit(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// The unit properties for `r`, as runc sets them on cgroup v2.
pub fn properties(r: &LinuxResources) -> Result<Vec<Value>> {
    let mut p = Vec::new();
    let u64p = |name: &str, v: u64| Value::prop(name, Value::U64(v));
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            p.push(u64p("MemoryMax", limit(l)));
        }
        if let Some(l) = m.reservation().filter(|l| *l != 0) {
            p.push(u64p("MemoryLow", limit(l)));
        }
        if let Some(s) = m.swap() {
            let v = crate::v2::swap_to_v2(s, m.limit()).map_err(|w| Error::Resource {
                field: "memory.swap".into(),
                what: w,
            })?;
            if let Some(v) = v {
                p.push(u64p("MemorySwapMax", limit(v)));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            p.push(u64p("CPUWeight", crate::v2::shares_to_weight(s)));
        }
        let period = c.period().filter(|p| *p != 0).unwrap_or(100_000);
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            let per_sec = if q > 0 {
                // systemd keeps 10 ms granularity: round up, as runc does.
                let v = (q as u64) * 1_000_000 / period;
                v.div_ceil(10_000) * 10_000
            } else {
                INFINITY
            };
            p.push(u64p("CPUQuotaPerSecUSec", per_sec));
        }
        if c.period().is_some_and(|p| p != 0) {
            p.push(u64p("CPUQuotaPeriodUSec", period));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            p.push(Value::prop("AllowedCPUs", bitmask(cpus, "cpu.cpus")?));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            p.push(Value::prop(
                "AllowedMemoryNodes",
                bitmask(mems, "cpu.mems")?,
            ));
        }
    }
    if let Some(l) = r.pids().as_ref().map(|p| p.limit()) {
        // 0 is a limit of one task, as the fs drivers' pids.max (TasksMax=0 is refused).
        let max = match l {
            1.. => l as u64,
            0 => 1,
            _ => INFINITY,
        };
        p.push(u64p("TasksMax", max));
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            // blkio 10..1000 to io 1..10000, as runc converts.
            p.push(u64p(
                "IOWeight",
                1 + (u64::from(w).max(10) - 10) * 9999 / 990,
            ));
        }
    }
    if let Some(rules) = crate::resources::device_rules(r) {
        p.extend(device_properties(&rules, &proc_devices()));
    }
    Ok(p)
}

/// `0-3,8` to systemd's byte array: byte i holds cpus 8i..8i+7, lowest bit first.
pub fn bitmask(list: &str, field: &str) -> Result<Value> {
    let bad = || Error::Resource {
        field: field.into(),
        what: format!("{list:?} is not a list like 0-3,8"),
    };
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.trim().split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b >= 1 << 16 {
            return Err(bad());
        }
        for i in a..=b {
            if bytes.len() <= i / 8 {
                bytes.resize(i / 8 + 1, 0);
            }
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(Value::Array(
        "y".into(),
        bytes.into_iter().map(Value::Byte).collect(),
    ))
}

/// `/proc/devices`: (is block, major) to the driver group name systemd's `char-NAME` uses.
fn proc_devices() -> Vec<(bool, i64, String)> {
    let text = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let mut block = false;
    let mut out = Vec::new();
    for line in text.lines() {
        match line.trim() {
            "Character devices:" => block = false,
            "Block devices:" => block = true,
            l => {
                if let Some((maj, name)) = l.split_once(' ') {
                    if let Ok(maj) = maj.parse() {
                        out.push((block, maj, name.trim().to_owned()));
                    }
                }
            }
        }
    }
    out
}

/// `DevicePolicy` and `DeviceAllow` for the effective rules, as runc translates them: a list that
/// denies everything and then allows entries becomes `strict` plus one `DeviceAllow` per allow
/// rule; any other shape (a deny after an allow, an allow-all) leaves systemd's policy `auto`
/// with no list, and husk's own device program (written after the unit starts) enforces it.
pub fn device_properties(
    rules: &[LinuxDeviceCgroup],
    devices: &[(bool, i64, String)],
) -> Vec<Value> {
    let is_all = |d: &LinuxDeviceCgroup| {
        matches!(d.typ(), None | Some(LinuxDeviceType::A))
            && d.major().is_none()
            && d.minor().is_none()
    };
    // Everything before the last deny-all is overridden by it (last match wins).
    let start = rules.iter().rposition(|d| !d.allow() && is_all(d));
    let Some(start) = start else {
        return vec![Value::prop("DevicePolicy", Value::Str("auto".into()))];
    };
    let rest = &rules[start + 1..];
    if rest.iter().any(|d| !d.allow() || is_all(d)) {
        return vec![Value::prop("DevicePolicy", Value::Str("auto".into()))];
    }
    let mut allow = Vec::new();
    for d in rest {
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        let block = matches!(d.typ(), Some(LinuxDeviceType::B));
        let kind = if block { "block" } else { "char" };
        if matches!(d.typ(), Some(LinuxDeviceType::A) | None) {
            // Both kinds with a major/minor: systemd has no "any type" entry.
            for k in ["char", "block"] {
                if let Some(e) = entry(k, d.major(), d.minor(), devices) {
                    allow.push(Value::Struct(vec![
                        Value::Str(e),
                        Value::Str(access.clone()),
                    ]));
                }
            }
            continue;
        }
        if let Some(e) = entry(kind, d.major(), d.minor(), devices) {
            allow.push(Value::Struct(vec![Value::Str(e), Value::Str(access)]));
        }
    }
    vec![
        Value::prop("DevicePolicy", Value::Str("strict".into())),
        Value::prop("DeviceAllow", Value::Array("(ss)".into(), allow)),
    ]
}

/// One DeviceAllow path: `char-*`, `char-NAME` for a major with any minor, or
/// `/dev/char/MAJ:MIN`. A major unknown to /proc/devices with a wildcard minor has no name
/// and is skipped (nothing could use it), as runc does.
fn entry(
    kind: &str,
    major: Option<i64>,
    minor: Option<i64>,
    devices: &[(bool, i64, String)],
) -> Option<String> {
    match (major, minor) {
        (None, _) => Some(format!("{kind}-*")),
        (Some(maj), Some(min)) => Some(format!("/dev/{kind}/{maj}:{min}")),
        (Some(maj), None) => devices
            .iter()
            .find(|(b, m, _)| *b == (kind == "block") && *m == maj)
            .map(|(_, _, name)| format!("{kind}-{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn paths_to_units() {
        let u = parse_path(Some("system.slice:husk:abc"), "x").unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("husk-abc.scope", "system.slice")
        );
        let u = parse_path(Some(":libpod:abc"), "x").unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("libpod-abc.scope", "system.slice")
        );
        let u = parse_path(Some("machine-a.slice::abc"), "x").unwrap();
        assert_eq!(u.name, "abc.scope");
        let u = parse_path(None, "id1").unwrap();
        assert_eq!(u.name, "husk-id1.scope");
        for bad in [
            "noColons",
            "a:b",
            "/a/b:c:d",
            "x.slice:p:n/m",
            "user:p:n",
            "x.slice:p:",
        ] {
            let e = parse_path(Some(bad), "x").unwrap_err().to_string();
            assert!(e.contains("slice:prefix:name"), "{bad}: {e}");
        }
    }

    #[test]
    fn slices_expand_by_dash() {
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("system.slice")
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new(""));
        assert!(expand_slice("a--b.slice").is_err());
        assert!(expand_slice("-a.slice").is_err());
    }

    #[test]
    fn cpu_lists_to_bytes() {
        let v = bitmask("0-3,9", "cpu.cpus").unwrap();
        assert_eq!(
            v,
            Value::Array("y".into(), vec![Value::Byte(0x0f), Value::Byte(0x02)])
        );
        assert!(bitmask("3-1", "cpu.cpus").is_err());
        assert!(bitmask("a", "cpu.cpus").is_err());
    }

    #[test]
    fn limits_become_properties() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":33554432,"swap":67108864},"cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":10}}"#,
        )
        .unwrap();
        let p = properties(&r).unwrap();
        let get = |n: &str| {
            p.iter().find_map(|v| match v {
                Value::Struct(kv) if kv[0] == Value::Str(n.into()) => Some(kv[1].clone()),
                _ => None,
            })
        };
        let v = |x: Value| Some(Value::Variant(Box::new(x)));
        assert_eq!(get("MemoryMax"), v(Value::U64(33554432)));
        assert_eq!(get("MemorySwapMax"), v(Value::U64(33554432)));
        assert_eq!(get("CPUWeight"), v(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), v(Value::U64(500_000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), v(Value::U64(100_000)));
        assert_eq!(get("TasksMax"), v(Value::U64(10)));
        assert_eq!(get("DevicePolicy"), None);
    }

    fn rule(
        allow: bool,
        t: LinuxDeviceType,
        maj: Option<i64>,
        min: Option<i64>,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(t)
            .access("rwm");
        if let Some(m) = maj {
            b = b.major(m);
        }
        if let Some(m) = min {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    #[test]
    fn device_rules_to_policy() {
        use LinuxDeviceType::{A, B, C};
        let devs = vec![
            (false, 136, "pts".to_string()),
            (true, 7, "loop".to_string()),
        ];
        let rules = vec![
            rule(true, C, Some(1), Some(3)),
            rule(false, A, None, None),
            rule(true, C, Some(1), Some(3)),
            rule(true, C, Some(136), None),
            rule(true, B, Some(7), None),
            rule(true, C, Some(999), None),
            rule(true, C, None, None),
        ];
        let p = device_properties(&rules, &devs);
        let ss = |a: &str| Value::Struct(vec![Value::Str(a.into()), Value::Str("rwm".into())]);
        assert_eq!(
            p,
            vec![
                Value::prop("DevicePolicy", Value::Str("strict".into())),
                Value::prop(
                    "DeviceAllow",
                    Value::Array(
                        "(ss)".into(),
                        vec![
                            ss("/dev/char/1:3"),
                            ss("char-pts"),
                            ss("block-loop"),
                            ss("char-*")
                        ]
                    )
                ),
            ]
        );
        // A deny after an allow cannot be said to systemd: policy auto, husk's program enforces.
        let mixed = vec![
            rule(false, A, None, None),
            rule(true, C, None, None),
            rule(false, C, Some(1), Some(3)),
        ];
        assert_eq!(
            device_properties(&mixed, &devs),
            vec![Value::prop("DevicePolicy", Value::Str("auto".into()))]
        );
    }
}
