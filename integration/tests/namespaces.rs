//! Namespaces: each kind created (a different inode from the host's) and joined by path (the
//! same inode as a process the test started with `unshare`).

use std::fs;
use std::time::Duration;

use integration::*;

const KINDS: [(&str, &str); 8] = [
    // (config type, /proc/self/ns name)
    ("mount", "mnt"),
    ("uts", "uts"),
    ("ipc", "ipc"),
    ("pid", "pid"),
    ("network", "net"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

fn ns_name(kind: &str) -> &'static str {
    KINDS.iter().find(|k| k.0 == kind).unwrap().1
}

/// Runs `script` in a container whose config `edit` changed; returns stdout.
fn inside(edit: impl FnOnce(&mut Value), script: &str) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::sh(script);
    b.edit(edit);
    let o = rt.run_new(&b);
    assert!(o.ok(), "container failed: {o}");
    o.stdout
}

fn user_maps(c: &mut Value) {
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // A v1 cgroup mount needs the host's hierarchies, which a user ns may not bind.
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys/fs/cgroup");
}

fn created(kind: &str) {
    let name = ns_name(kind);
    let host_ns = ns_link("self", name);
    let out = inside(
        |c| {
            set_ns(c, kind, None);
            if kind == "user" {
                user_maps(c);
            }
        },
        &format!("readlink /proc/self/ns/{name}"),
    );
    let got = out.trim();
    assert!(
        got.starts_with(&format!("{name}:[")),
        "readlink printed {out:?}"
    );
    assert_ne!(
        got, host_ns,
        "{kind}: container shares the host's namespace"
    );
}

fn not_created(kind: &str) {
    let name = ns_name(kind);
    let host_ns = ns_link("self", name);
    let out = inside(
        |c| {
            remove_ns(c, kind);
            if kind == "uts" {
                c.as_object_mut().unwrap().remove("hostname");
            }
        },
        &format!("readlink /proc/self/ns/{name}"),
    );
    assert_eq!(
        out.trim(),
        host_ns,
        "{kind} not asked for, yet not the host's"
    );
}

#[test]
fn create_mount_ns() {
    created("mount");
}
#[test]
fn create_uts_ns() {
    created("uts");
}
#[test]
fn create_ipc_ns() {
    created("ipc");
}
#[test]
fn create_pid_ns() {
    created("pid");
    let out = inside(|_| {}, "echo $$");
    assert_eq!(out.trim(), "1", "init is pid 1 in its pid namespace");
}
#[test]
fn create_net_ns() {
    created("network");
    // only lo, and it is down
    let out = inside(|_| {}, "ls /sys/class/net");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"]);
}
#[test]
fn create_user_ns() {
    created("user");
}
#[test]
fn create_cgroup_ns() {
    created("cgroup");
    // In a new cgroup ns the container's own cgroup is its root.
    let out = inside(|c| set_ns(c, "cgroup", None), "cat /proc/self/cgroup");
    for l in out.lines() {
        assert!(
            l.ends_with(":/"),
            "cgroup ns root is not the container's: {out}"
        );
    }
}
#[test]
fn create_time_ns() {
    if skip_for_runc("runc 1.1.5 does not know the time namespace") {
        return;
    }
    created("time");
}
#[test]
fn no_uts_ipc_net_ns_shares_hosts() {
    for k in ["uts", "ipc", "network", "cgroup"] {
        not_created(k);
    }
}

#[test]
fn user_ns_maps_exactly_as_configured() {
    let out = inside(
        |c| {
            set_ns(c, "user", None);
            user_maps(c);
            c["linux"]["gidMappings"] = json!([
                {"containerID": 0, "hostID": 200000, "size": 1000},
                {"containerID": 1000, "hostID": 300000, "size": 10}
            ]);
        },
        "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u; id -g",
    );
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        norm,
        [
            "0 100000 65536",
            "--",
            "0 200000 1000",
            "1000 300000 10",
            "--",
            "0",
            "0"
        ],
        "{out}"
    );
}

#[test]
fn user_ns_process_runs_as_mapped_host_uid() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| {
        set_ns(c, "user", None);
        user_maps(c);
    });
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let gid = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("100000"), "{uid}");
    assert_eq!(gid.split_whitespace().nth(1), Some("200000"), "{gid}");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn time_ns_offsets() {
    if skip_for_runc("runc 1.1.5 does not know the time namespace") {
        return;
    }
    let host_up = host_uptime();
    let out = inside(
        |c| {
            set_ns(c, "time", None);
            c["linux"]["timeOffsets"] = json!({
                "boottime": {"secs": 86400, "nanosecs": 0},
                "monotonic": {"secs": 3600, "nanosecs": 500}
            });
        },
        "cat /proc/uptime; cat /proc/self/timens_offsets",
    );
    let mut lines = out.lines();
    let up: f64 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up >= host_up + 86400.0 && up < host_up + 86400.0 + 60.0,
        "uptime inside {up}, host {host_up}"
    );
    let offs: Vec<String> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(offs.contains(&"monotonic 3600 500".to_string()), "{offs:?}");
    assert!(offs.contains(&"boottime 86400 0".to_string()), "{offs:?}");
}

/// Joins namespace `kind` of a process made by `unshare FLAGS`, checks the inode inside.
fn joined(kind: &str, flags: &[&str], extra: impl FnOnce(&mut Value)) {
    let p = unshare_sleep(flags, ns_name(kind));
    check_joined(kind, &p, flags, extra);
}

fn check_joined(
    kind: &str,
    p: &HostProc,
    flags: &[&str],
    extra: impl FnOnce(&mut Value),
) -> String {
    let name = ns_name(kind);
    // With --fork (pid, time), the namespace is the sleep's, unshare's child.
    let target = if flags.contains(&"--fork") {
        let start = std::time::Instant::now();
        loop {
            let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid()))
                .unwrap_or_default();
            if let Some(k) = kids.split_whitespace().next() {
                break k.to_string();
            }
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
    } else {
        p.pid().to_string()
    };
    let want = ns_link(&target, name);
    assert_ne!(want, ns_link("self", name));
    let path = format!("/proc/{target}/ns/{name}");
    let out = inside(
        |c| {
            set_ns(c, kind, Some(&path));
            extra(c);
        },
        &format!("readlink /proc/self/ns/{name}"),
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(want.as_str()),
        "{kind} joined by path {path}"
    );
    lines.collect::<Vec<_>>().join("\n")
}

#[test]
fn join_net_ns() {
    joined("network", &["--net"], |_| {});
}
#[test]
fn join_uts_ns() {
    joined("uts", &["--uts"], |c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
}

/// As runc: a uts namespace joined by path takes the configured hostname (only the host's own
/// is refused); the host's name is untouched.
#[test]
fn join_uts_ns_sets_hostname_in_it() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let p = unshare_sleep(&["--uts"], "uts");
    let rest = check_joined("uts", &p, &["--uts"], |c| {
        c["hostname"] = json!("joined-uts");
        c["process"]["args"][2] = json!("readlink /proc/self/ns/uts; hostname");
    });
    assert_eq!(rest.trim(), "joined-uts");
    let theirs = std::process::Command::new("nsenter")
        .args(["-t", &p.pid().to_string(), "-u", "hostname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&theirs.stdout).trim(), "joined-uts");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

#[test]
fn hostname_without_own_uts_ns_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::sh("true");
    b.edit(|c| {
        remove_ns(c, "uts");
        c["hostname"] = json!("nope");
    });
    let id = rt.id();
    let o = rt.exec(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!o.ok());
    assert!(
        o.stderr.contains("need a new or joined uts namespace"),
        "{o}"
    );
    assert!(!rt.root().join(&id).exists());
}

/// No mount namespace at all (runtime-tools' linux_ns_itype): the container shares the host's
/// mount namespace, but its root is a detached copy entered with chroot, so the host's mount
/// table never sees the container's mounts, during or after.
#[test]
fn no_mount_ns_roots_the_container_in_a_detached_tree() {
    let rt = Runtime::new();
    let mut b = Bundle::sh("cat /marker; sleep 30");
    std::fs::write(b.rootfs().join("marker"), "in the rootfs\n").unwrap();
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([]);
        c.as_object_mut().unwrap().remove("hostname");
        // v1's read-only cgroup tree is refused without a mount ns (see the next test)
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
    });
    let id = rt.id();
    let out = rt.work().join("out");
    rt.create_to(&b, &id, &out);
    rt.exec(&["start", &id]).expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    assert_eq!(ns_link(&pid, "mnt"), ns_link("self", "mnt"));
    let e = rt
        .exec(&[
            "exec",
            &id,
            "sh",
            "-c",
            "cat /marker; grep -c . /proc/mounts; ls /proc/1",
        ])
        .expect_ok();
    let mut lines = e.stdout.lines();
    assert_eq!(lines.next(), Some("in the rootfs"), "{e}");
    // the container's own procfs (and the rest) are mounted, but only in its detached tree
    let bundle = b.path_str();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.lines().any(|l| l.contains(bundle.as_str())),
        "a container mount leaked into the host: {host}"
    );
    let proc_mounts = std::fs::read_to_string(format!("/proc/{pid}/root/proc/self/mountinfo"));
    assert!(proc_mounts.is_ok(), "the container's /proc is not mounted");
    // The init's own `cat` may not have run yet on a loaded machine.
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&out).unwrap_or_default().is_empty()
        && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.exec(&["delete", &id]).expect_ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "in the rootfs\n");
}

#[test]
fn no_mount_ns_with_a_read_only_v1_cgroup_mount_is_refused() {
    if is_pure_v2() {
        return; // the v2 cgroup mount has no read-only tmpfs step
    }
    let rt = Runtime::new();
    let mut b = Bundle::sh("true");
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([]);
        c.as_object_mut().unwrap().remove("hostname");
    });
    let id = rt.id();
    let o = rt.exec(&["create", "--bundle", &b.path_str(), &id]);
    assert!(!o.ok());
    assert!(o.stderr.contains("needs a mount namespace"), "{o}");
    assert!(!rt.root().join(&id).exists());
}
#[test]
fn join_ipc_ns() {
    joined("ipc", &["--ipc"], |_| {});
}
#[test]
fn join_mount_ns() {
    joined("mount", &["--mount"], |_| {});
}
#[test]
fn join_cgroup_ns() {
    joined("cgroup", &["--cgroup"], |_| {});
}
#[test]
fn join_pid_ns() {
    joined("pid", &["--pid", "--fork"], |_| {});
}
#[test]
fn join_user_ns() {
    if skip_for_runc("runc 1.1.5 wants uid/gid mappings even when joining a user ns by path") {
        return;
    }
    // A user ns made by `unshare --user`, whose maps the test (root) writes itself.
    let p = unshare_sleep(&["--user"], "user");
    for m in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{m}", p.pid()), "0 100000 65536\n").unwrap();
    }
    let rest = check_joined("user", &p, &[], |c| {
        // a v1 cgroup mount needs the host's hierarchies, not ours to bind in a user ns
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/sys/fs/cgroup");
        c["process"]["args"][2] = json!("readlink /proc/self/ns/user; cat /proc/self/uid_map");
    });
    let norm: Vec<String> = rest
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm, ["0 100000 65536"]);
}

#[test]
fn join_time_ns() {
    if skip_for_runc("runc 1.1.5 does not know the time namespace") {
        return;
    }
    joined("time", &["--time", "--fork"], |_| {});
}
#[test]
fn join_several_by_path_at_once() {
    let p = unshare_sleep(&["--net", "--uts", "--ipc"], "net");
    let pid = p.pid().to_string();
    let out = inside(
        |c| {
            for (k, n) in [("network", "net"), ("uts", "uts"), ("ipc", "ipc")] {
                set_ns(c, k, Some(&format!("/proc/{pid}/ns/{n}")));
            }
            c.as_object_mut().unwrap().remove("hostname");
        },
        "for n in net uts ipc; do readlink /proc/self/ns/$n; done",
    );
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        [
            ns_link(&pid, "net"),
            ns_link(&pid, "uts"),
            ns_link(&pid, "ipc")
        ]
    );
}

/// A sandbox pattern: a second container joins the first one's user namespace and the network
/// namespace that user namespace owns (setns of the user namespace comes first).
#[test]
fn joins_a_network_namespace_owned_by_a_joined_user_namespace() {
    // No /sys mounts: sysfs in a user namespace is beside the point of this test.
    fn no_sys(c: &mut Value) {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| !m["destination"].as_str().unwrap().starts_with("/sys"));
    }
    let rt = Runtime::new();
    let mut a = Bundle::new(&["sleep", "100"]);
    a.with_userns(200000).edit(|c| {
        set_ns(c, "network", None);
        no_sys(c);
    });
    let ida = rt.id();
    rt.exec(&["run", "-d", "--bundle", &a.path_str(), &ida])
        .expect_ok();
    let pid = rt.state(&ida)["pid"].as_i64().unwrap();
    let mut b = Bundle::sh("cat /proc/self/uid_map; readlink /proc/self/ns/net");
    host(
        "chown",
        &["-R", "200000:200000", b.rootfs().to_str().unwrap()],
    );
    b.edit(|c| {
        set_ns(c, "user", Some(&format!("/proc/{pid}/ns/user")));
        set_ns(c, "network", Some(&format!("/proc/{pid}/ns/net")));
        no_sys(c);
    });
    let out = rt.output(&b);
    let net = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let want = format!("0 200000 65536\n{}\n", net.display());
    let got: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got.join("\n") + "\n", want, "{out}");
    rt.exec(&["delete", "--force", &ida]).expect_ok();
}
