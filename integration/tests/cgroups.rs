//! Cgroups on this host (hybrid or pure v2, read from its mounts): the init's /proc/PID/cgroup names the configured cgroupsPath
//! (absolute, relative, default) in every v1 hierarchy and in the unified `0::` line; after
//! delete the directories are gone.

use std::fs;
use std::path::{Path, PathBuf};

use integration::*;

/// Every hierarchy to check, read from the host's mounts: each v1 hierarchy (controllers and
/// the named `name=systemd` one, which runc joins too) by its first controller, then "" for the
/// unified (`0::`) line. On a pure v2 host that is only "".
fn hierarchies() -> Vec<String> {
    let mut h: Vec<String> = cgroup_mounts()
        .into_iter()
        .filter_map(|m| m.controllers.first().cloned())
        .collect();
    if unified_mount().is_some() {
        h.push(String::new());
    }
    h
}

/// Our own cgroup in hierarchy `key` ("memory", ... or "" for the unified line).
fn own_cgroup(pid: &str, key: &str) -> String {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in cg.lines() {
        let mut f = l.splitn(3, ':');
        let (n, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let hit = if key.is_empty() {
            n == "0" && ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == key)
        };
        if hit {
            return path.to_string();
        }
    }
    panic!("no {key:?} line in /proc/{pid}/cgroup: {cg}");
}

fn join(base: &str, rel: &str) -> String {
    if base == "/" {
        format!("/{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

fn mount_of(key: &str) -> PathBuf {
    cgroup_mounts()
        .into_iter()
        .find(|m| {
            if key.is_empty() {
                m.controllers.is_empty()
            } else {
                m.controllers.iter().any(|c| c == key)
            }
        })
        .unwrap_or_else(|| panic!("no mount for hierarchy {key:?}"))
        .path
}

/// Removes (rmdir, best effort) a parent cgroup the test made under every hierarchy: at the
/// hierarchy's root, or (relative) under the test process's own cgroup.
struct CgParent {
    name: String,
    relative: bool,
}
impl CgParent {
    fn absolute(name: &str) -> CgParent {
        CgParent {
            name: name.to_string(),
            relative: false,
        }
    }
    fn relative(name: &str) -> CgParent {
        CgParent {
            name: name.to_string(),
            relative: true,
        }
    }
}
impl Drop for CgParent {
    fn drop(&mut self) {
        let me = std::process::id().to_string();
        for k in &hierarchies() {
            let k = k.as_str();
            let base = if self.relative {
                own_cgroup(&me, k)
            } else {
                "/".to_string()
            };
            let dir = mount_of(k)
                .join(base.trim_start_matches('/'))
                .join(&self.name);
            // retry briefly: a just-removed child can keep the parent busy for a moment
            for _ in 0..50 {
                match fs::remove_dir(&dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Creates a container with `cgroups_path`, checks each hierarchy against `expect(key)`,
/// deletes it and checks the directories are gone.
fn check(cgroups_path: Option<String>, expect: impl Fn(&str) -> String) {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| {
        if let Some(p) = &cgroups_path {
            c["linux"]["cgroupsPath"] = json!(p);
        }
    });
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let mut dirs = Vec::new();
    for k in &hierarchies() {
        let k = k.as_str();
        let want = expect(k);
        assert_eq!(own_cgroup(&pid, k), want, "hierarchy {k:?} of the init");
        let dir = mount_of(k).join(want.trim_start_matches('/'));
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid),
            "{pid} not in {}",
            dir.display()
        );
        dirs.push(dir);
    }
    rt.exec(&["start", &id]).expect_ok();
    let first = &hierarchies()[0];
    assert_eq!(own_cgroup(&pid, first), expect(first));
    rt.exec(&["delete", "--force", &id]).expect_ok();
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn cgroups_path_absolute() {
    let parent = format!("husk-it-{}", std::process::id());
    let _g = CgParent::absolute(&parent);
    // the id is fixed below, so compute it the same way the Runtime does
    let marker = format!("abs-{}", unique());
    let p = format!("/{parent}/{marker}");
    check(Some(p.clone()), |_| p.clone());
}

#[test]
fn cgroups_path_relative() {
    let me = std::process::id().to_string();
    let rel = format!("husk-it-rel-{}/c{}", std::process::id(), unique());
    let _g = CgParent::relative(&format!("husk-it-rel-{}", std::process::id()));
    let r2 = rel.clone();
    check(Some(rel), move |k| join(&own_cgroup(&me, k), &r2));
}

#[test]
fn cgroups_path_default_is_id_under_own_cgroup() {
    // Without cgroupsPath the container goes to <caller's cgroup>/<id> (as runc does).
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let me = std::process::id().to_string();
    let mut dirs = Vec::new();
    for k in &hierarchies() {
        let k = k.as_str();
        let want = join(&own_cgroup(&me, k), &id);
        assert_eq!(own_cgroup(&pid, k), want, "hierarchy {k:?}");
        dirs.push(mount_of(k).join(want.trim_start_matches('/')));
    }
    rt.exec(&["delete", "--force", &id]).expect_ok();
    for d in &dirs {
        assert!(!d.exists(), "{} left after delete", d.display());
    }
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// The init joins its v1 cgroups itself ("0" written to `tasks` files the parent opened: no
/// RCU grace period), so it must land in every hierarchy even from a user namespace, where it
/// has no privilege over the host's cgroup files; an exec'd process joins the same way.
#[test]
fn every_hierarchy_joined_from_a_user_namespace_and_by_exec() {
    if !userns_available() {
        eprintln!("SKIPPED: no user namespaces here (`unshare --user` fails)");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.with_userns(100000);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup")
    });
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let me = std::process::id().to_string();
    for k in &hierarchies() {
        let want = join(&own_cgroup(&me, k), &id);
        assert_eq!(own_cgroup(&pid, k), want, "hierarchy {k:?} of the init");
    }
    rt.exec(&["start", &id]).expect_ok();
    let pid_file = rt.work().join("exec.pid");
    rt.exec(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ])
    .expect_ok();
    let epid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
    for k in &hierarchies() {
        assert_eq!(
            own_cgroup(&epid, k),
            join(&own_cgroup(&me, k), &id),
            "hierarchy {k:?} of the exec'd process"
        );
    }
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn resources_are_written() {
    if is_pure_v2() {
        // It reads v1 files (memory.limit_in_bytes, cpu.shares); the v2 port is issue 3's.
        eprintln!("resources_are_written: skipped on pure cgroup v2 (reads v1 files)");
        return;
    }
    // The parent guard first, so that it is dropped after the runtime (which deletes the
    // container), even when an assertion fails.
    let parent = format!("husk-it-res-{}", std::process::id());
    let _g = CgParent::absolute(&parent);
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    let p = format!("/{parent}/c{}", unique());
    let p2 = p.clone();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(p2);
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": 50});
        c["linux"]["resources"]["cpu"] = json!({"shares": 512});
    });
    let id = rt.id();
    rt.create(&b, &id);
    let read = |h: &str, f: &str| {
        fs::read_to_string(
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(p.trim_start_matches('/'))
                .join(f),
        )
        .unwrap()
        .trim()
        .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(read("pids", "pids.max"), "50");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// On a host without systemd as init (this one), `--systemd-cgroup` is refused with the reason
/// and leaves nothing; a malformed `slice:prefix:name` is named in the error first.
#[test]
fn systemd_driver_without_systemd_is_refused() {
    if std::path::Path::new("/run/systemd/system").is_dir()
        || skip_for_runc("runc's wording differs")
    {
        eprintln!(
            "systemd_driver_without_systemd_is_refused: skipped (systemd runs here, or runc)"
        );
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    let id = rt.id();
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:husk:{id}")));
    rt.cmd(&["--systemd-cgroup", "create", "--bundle", &b.path_str(), &id])
        .run()
        .expect_err()
        .expect_msg("the systemd cgroup driver needs systemd as init, and it is not running");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("noColons"));
    rt.cmd(&[
        "--cgroup-manager",
        "systemd",
        "run",
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .run()
    .expect_err()
    .expect_msg("noColons")
    .expect_msg("the systemd cgroup driver expects")
    .expect_msg("slice:prefix:name");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// `--cgroup-manager disabled` (crun's): the init stays in the caller's cgroups, nothing is
/// created; limits are refused by name; cgroup commands say why they cannot work; delete and
/// kill --all still reach the init.
#[test]
fn cgroup_manager_disabled() {
    if skip_for_runc("runc has no --cgroup-manager") {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.cmd(&[
        "--cgroup-manager",
        "disabled",
        "create",
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .run()
    .expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let me = std::process::id().to_string();
    for k in &hierarchies() {
        assert_eq!(own_cgroup(&pid, k), own_cgroup(&me, k), "hierarchy {k:?}");
    }
    assert!(
        cgroup_dirs_for(&id).is_empty(),
        "{:?}",
        cgroup_dirs_for(&id)
    );
    rt.exec(&["pause", &id])
        .expect_err()
        .expect_msg("has no cgroup (it was created with --cgroup-manager disabled");
    rt.exec(&["start", &id]).expect_ok();
    rt.exec(&["kill", "--all", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));

    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 33554432},
            "devices": [{"allow": false, "access": "rwm"}]
        })
    });
    let id = rt.id();
    rt.cmd(&[
        "--cgroup-manager=disabled",
        "run",
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .run()
    .expect_err()
    .expect_msg("memory")
    .expect_msg("limits need a cgroup, and the cgroup manager is disabled");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    // The device list alone (engines always send one) is accepted.
    b.edit(|c| c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]}));
    let out = rt
        .cmd(&[
            "--cgroup-manager=disabled",
            "run",
            "--bundle",
            &b.path_str(),
            &id,
        ])
        .run()
        .expect_ok();
    assert_eq!(out.code(), 0);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// A field the kernel ignores is a warning (runtime-spec: warn, not fail), written as a
/// `level=warning` line of the JSON log; the container runs.
#[test]
fn ignored_resource_fields_are_warnings() {
    if skip_for_runc("runc 1.1.5 does not warn here") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"kernel": 67108864}));
    let id = rt.id();
    let log = rt.work().join("warn.json");
    rt.cmd(&[
        "--log",
        &log.to_string_lossy(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .run()
    .expect_ok();
    let text = fs::read_to_string(&log).unwrap();
    let line: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        // Not the default config's ambient-capability warnings.
        .find(|v| {
            v["level"] == "warning" && v["msg"].as_str().is_some_and(|m| m.contains("kernel"))
        })
        .unwrap_or_else(|| panic!("no warning in {text}"));
    let msg = line["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("linux.resources.memory.kernel is ignored: "),
        "{msg}"
    );
    let why = if is_pure_v2() {
        "cgroup v2 has no such setting"
    } else {
        "kernels >= 5.16"
    };
    assert!(msg.contains(why), "{msg}");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}
