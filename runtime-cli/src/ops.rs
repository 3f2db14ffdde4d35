//! `pause`, `resume`, `ps`, `events` and `update`: argument handling and printing over
//! libcontainer's container operations, in runc's formats.

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use libcontainer::oci_spec::runtime::LinuxResources;
use libcontainer::Event;
use serde_json::{json, Map, Value};

use crate::args::Matches;
use crate::commands::{print, Ctx};

pub(crate) fn pause(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    ctx.runtime.container(&m.args[0])?.pause()?;
    Ok(0)
}

pub(crate) fn resume(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    ctx.runtime.container(&m.args[0])?.resume()?;
    Ok(0)
}

/// `ps [--format table|json] ID [ps options]`: json prints the pids; table runs the host's
/// `ps` (default `-ef`) and keeps its header and the rows of the container's processes.
pub(crate) fn ps(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let format = m.value("format").unwrap_or("table");
    if format != "table" && format != "json" {
        bail!("invalid format option");
    }
    let pids = ctx.runtime.container(&m.args[0])?.processes()?;
    if format == "json" {
        // `null` for none, as runc (which encodes a nil slice).
        let text = if pids.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(&pids)?
        };
        print(&format!("{text}\n"))?;
        return Ok(0);
    }
    let ps_args: Vec<&str> = if m.args.len() > 1 {
        m.args[1..].iter().map(String::as_str).collect()
    } else {
        vec!["-ef"]
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}: {}",
            ps_args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print(&filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)?)?;
    Ok(0)
}

/// ps's header and the lines whose PID column is one of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    let mut out = format!("{header}\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let field = l.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .map_err(|_| anyhow!("unexpected pid {field:?} in ps output"))?;
        if pids.contains(&pid) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `events [--stats] [--interval D] ID`: one JSON object per line, runc's envelope.
pub(crate) fn events(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let interval = go_duration(m.value("interval").unwrap_or("5s"))?;
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let container = ctx.runtime.container(&m.args[0])?;
    let id = container.id().to_string();
    container.events(interval, m.flag("stats"), |ev| {
        let line = match ev {
            Event::Stats(s) => {
                let mut data = serde_json::to_value(&s).unwrap_or_default();
                // runc's objects husk has nothing for: no Intel RDT, no network stats.
                if let Some(d) = data.as_object_mut() {
                    d.insert("intel_rdt".into(), json!({}));
                    d.insert("network_interfaces".into(), Value::Null);
                }
                envelope("stats", &id, Some(data))
            }
            Event::Oom => envelope("oom", &id, None),
        };
        print(&format!("{line}\n"))
            .map_err(|e| libcontainer::Error::InvalidArgument(format!("{e:#}")))
    })?;
    Ok(0)
}

/// runc's event line: its keys in runc's order (type, id, data), which a JSON object built
/// with `json!` would sort.
fn envelope(kind: &str, id: &str, data: Option<Value>) -> String {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    }
    serde_json::to_string(&Envelope { kind, id, data }).unwrap_or_default()
}

/// A Go `time.Duration` string: `5s`, `1m30s`, `1.5h`, `300ms`.
fn go_duration(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow!("invalid value {s:?} for flag -interval: parse error");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// `update`: `--resources FILE|-` (then the other flags are ignored, as runc), else the flags.
pub(crate) fn update(ctx: &Ctx, m: &Matches) -> anyhow::Result<i32> {
    let container = ctx.runtime.container(&m.args[0])?;
    let r = resources(m)?;
    container.update(&r)?;
    Ok(0)
}

fn resources(m: &Matches) -> anyhow::Result<LinuxResources> {
    for f in ["l3-cache-schema", "mem-bw-schema"] {
        if m.is_set(f) {
            bail!("--{f}: Intel RDT is not supported by husk (no resctrl on this host)");
        }
    }
    if let Some(file) = m.value("resources") {
        let mut data = Vec::new();
        if file == "-" {
            std::io::stdin()
                .read_to_end(&mut data)
                .context("reading the resources from stdin")?;
        } else {
            data = std::fs::read(file).with_context(|| format!("reading {file}"))?;
        }
        let name = if file == "-" { "stdin" } else { file };
        return serde_json::from_slice(&data)
            .with_context(|| format!("decoding linux.resources from {name}"));
    }
    let mut memory = Map::new();
    for (flag, key) in [
        ("memory", "limit"),
        ("memory-reservation", "reservation"),
        ("memory-swap", "swap"),
        ("kernel-memory", "kernel"),
        ("kernel-memory-tcp", "kernelTCP"),
    ] {
        if let Some(v) = m.value(flag) {
            memory.insert(key.into(), json!(ram_in_bytes(flag, v)?));
        }
    }
    if memory.contains_key("kernel") || memory.contains_key("kernelTCP") {
        eprintln!("warning: kernel memory limits are deprecated and may be ignored by the kernel");
    }
    let mut cpu = Map::new();
    for (flag, key, signed) in [
        ("cpu-shares", "shares", false),
        ("cpu-share", "shares", false),
        ("cpu-quota", "quota", true),
        ("cpu-period", "period", false),
        ("cpu-rt-runtime", "realtimeRuntime", true),
        ("cpu-rt-period", "realtimePeriod", false),
        ("cpu-burst", "burst", false),
        ("cpu-idle", "idle", true),
    ] {
        if let Some(v) = m.value(flag) {
            cpu.insert(key.into(), number(flag, v, signed)?);
        }
    }
    for (flag, key) in [("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")] {
        if let Some(v) = m.value(flag) {
            cpu.insert(key.into(), json!(v));
        }
    }
    let mut r = Map::new();
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(v) = m.value("pids-limit") {
        r.insert(
            "pids".into(),
            json!({"limit": number("pids-limit", v, true)?}),
        );
    }
    if let Some(v) = m.value("blkio-weight") {
        let w: u16 = v
            .parse()
            .map_err(|_| anyhow!("invalid value for blkio-weight: {v:?}"))?;
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    serde_json::from_value(Value::Object(r)).context("building linux.resources")
}

fn number(flag: &str, v: &str, signed: bool) -> anyhow::Result<Value> {
    let bad = || anyhow!("invalid value for {flag}: {v:?} is not a valid number");
    Ok(if signed {
        json!(v.parse::<i64>().map_err(|_| bad())?)
    } else {
        json!(v.parse::<u64>().map_err(|_| bad())?)
    })
}

/// docker's `units.RAMInBytes` (binary multiples: `512m`, `1g`, `100KiB`, `2048`), plus runc's
/// `-1` for unlimited.
fn ram_in_bytes(flag: &str, v: &str) -> anyhow::Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let bad = || anyhow!("invalid value for {flag}: invalid size: {v:?}");
    let s = v.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..num_end].parse().map_err(|_| bad())?;
    let unit = s[num_end..].trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((n * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Matches {
        crate::args::parse(
            crate::table::find("update").unwrap().flags,
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(go_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(go_duration("5").is_err());
        assert!(go_duration("x").is_err());
        assert!(go_duration("").is_err());
    }

    #[test]
    fn ram_units() {
        assert_eq!(ram_in_bytes("memory", "2048").unwrap(), 2048);
        assert_eq!(ram_in_bytes("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("memory", "100KiB").unwrap(), 100 << 10);
        assert_eq!(ram_in_bytes("memory", "-1").unwrap(), -1);
        assert!(ram_in_bytes("memory", "12x").is_err());
    }

    #[test]
    fn update_flags_build_resources() {
        let m = parse(&[
            "--memory",
            "64m",
            "--memory-swap=-1",
            "--cpu-shares",
            "512",
            "--cpu-quota",
            "-1",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "20",
            "--blkio-weight",
            "300",
            "id",
        ]);
        let v = serde_json::to_value(resources(&m).unwrap()).unwrap();
        assert_eq!(v["memory"]["limit"], 64 << 20);
        assert_eq!(v["memory"]["swap"], -1);
        assert_eq!(v["cpu"]["shares"], 512);
        assert_eq!(v["cpu"]["quota"], -1);
        assert_eq!(v["cpu"]["cpus"], "0");
        assert_eq!(v["pids"]["limit"], 20);
        assert_eq!(v["blockIO"]["weight"], 300);
        let e = resources(&parse(&["--l3-cache-schema", "L3:0=f", "id"])).unwrap_err();
        assert!(e.to_string().contains("Intel RDT"), "{e}");
        assert!(resources(&parse(&["--cpu-shares", "x", "id"])).is_err());
    }

    #[test]
    fn resources_file() {
        let p = std::env::temp_dir().join(format!("husk-res-{}.json", std::process::id()));
        std::fs::write(&p, r#"{"memory":{"limit":1048576},"pids":{"limit":5}}"#).unwrap();
        let m = parse(&["-r", p.to_str().unwrap(), "--memory", "2m", "id"]);
        let v = serde_json::to_value(resources(&m).unwrap()).unwrap();
        // As runc: the file wins, the other flags are ignored.
        assert_eq!(v["memory"]["limit"], 1048576);
        assert_eq!(v["pids"]["limit"], 5);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn ps_rows_are_filtered() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\n\
                    root 42 1 0 10:00 ? 00:00:00 sleep 10\nroot 43 42 0 10:00 ? 00:00:00 sh\n";
        let out = filter_ps(text, &[42]).unwrap();
        assert_eq!(
            out,
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 10\n"
        );
        assert!(filter_ps("A B\n", &[1]).is_err());
    }
}
