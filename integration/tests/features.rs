//! `husk features`: the document's shape as runtime-spec's features.md defines it (checked
//! field by field here: the schema file itself is not shipped with Debian's packages), and its
//! claims by behaviour: every mount option it lists mounts, every namespace it lists is made.

use std::collections::BTreeSet;

use integration::*;

fn features() -> Value {
    let rt = Runtime::new();
    let o = rt.cmd_noroot(&["features"]).run().expect_ok();
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {o}"))
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("{what}: not a string: {s}"))
                .to_string()
        })
        .collect()
}

fn enabled(v: &Value, what: &str) -> bool {
    v["enabled"]
        .as_bool()
        .unwrap_or_else(|| panic!("{what}.enabled: not a boolean: {v}"))
}

#[test]
fn document_has_the_spec_shape() {
    if skip_for_runc("runc 1.1.5 has no features command") {
        return;
    }
    let f = features();
    for k in ["ociVersionMin", "ociVersionMax"] {
        let v = f[k].as_str().unwrap_or_else(|| panic!("{k} missing"));
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{k} {v} is not semver");
    }
    let known_hooks = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    for h in strings(&f["hooks"], "hooks") {
        assert!(known_hooks.contains(&h.as_str()), "unknown hook {h}");
    }
    let opts = strings(&f["mountOptions"], "mountOptions");
    assert_eq!(
        opts.iter().collect::<BTreeSet<_>>().len(),
        opts.len(),
        "duplicates"
    );
    let l = &f["linux"];
    let known_ns = [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ];
    for n in strings(&l["namespaces"], "linux.namespaces") {
        assert!(known_ns.contains(&n.as_str()), "unknown namespace {n}");
    }
    let caps = strings(&l["capabilities"], "linux.capabilities");
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(caps.iter().all(|c| c.starts_with("CAP_")));
    assert!(
        caps.len() <= last + 1,
        "{} capabilities, kernel knows {}",
        caps.len(),
        last + 1
    );
    for k in ["v1", "v2", "systemd", "systemdUser", "rdma"] {
        assert!(l["cgroup"][k].is_boolean(), "linux.cgroup.{k}");
    }
    for k in ["seccomp", "apparmor", "selinux", "intelRdt", "netDevices"] {
        enabled(&l[k], &format!("linux.{k}"));
    }
    enabled(
        &l["mountExtensions"]["idmap"],
        "linux.mountExtensions.idmap",
    );
    // What is claimed matches this host and build.
    assert_eq!(
        enabled(&l["apparmor"], "apparmor"),
        std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y")
    );
    assert!(
        !enabled(&l["seccomp"], "seccomp"),
        "seccomp is refused by create, so not claimed"
    );
    for (k, v) in f["annotations"].as_object().unwrap() {
        assert!(v.is_string(), "annotation {k}");
    }
}

/// Every claimed mount option: a tmpfs with it (or, for bind and recursive ones, an rbind of a
/// host directory with it) inside a container, which must run and see the mount.
#[test]
fn every_claimed_mount_option_mounts() {
    if skip_for_runc("runc 1.1.5 has no features command") {
        return;
    }
    let f = features();
    let rt = Runtime::new();
    let src = rt.work().join("bindsrc");
    std::fs::create_dir_all(&src).unwrap();
    let mut failed = Vec::new();
    for opt in strings(&f["mountOptions"], "mountOptions") {
        let bindish = matches!(opt.as_str(), "bind" | "rbind" | "remount")
            || (opt.starts_with('r')
                && !matches!(opt.as_str(), "relatime" | "remount" | "rw" | "ro"))
            || ["private", "shared", "slave", "unbindable"].contains(&opt.as_str());
        let mount = if bindish {
            let mut o = vec!["rbind".to_string()];
            if opt != "rbind" {
                o.push(opt.clone());
            }
            json!({"destination": "/m", "type": "bind", "source": src, "options": o})
        } else {
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": [opt]})
        };
        let mut b = Bundle::sh("grep -q ' /m ' /proc/self/mountinfo && echo mounted");
        b.edit(|c| c["mounts"].as_array_mut().unwrap().push(mount.clone()));
        let id = rt.id();
        let o = rt.cmd(&["run", "--bundle", &b.path_str(), &id]).run();
        if o.code() != 0 || o.stdout.trim() != "mounted" {
            failed.push(format!("{opt}: {o}"));
        }
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
    assert!(
        failed.is_empty(),
        "claimed options that fail:\n{}",
        failed.join("\n")
    );
    // And the check can fail: an option husk does not know is refused by name.
    let mut b = Bundle::sh("true");
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["nosuchopt"]}),
        )
    });
    let id = rt.id();
    rt.cmd(&["run", "--bundle", &b.path_str(), &id])
        .run()
        .expect_err()
        .expect_msg("nosuchopt");
}

/// Every claimed namespace can be created (the user namespace with a mapping).
#[test]
fn every_claimed_namespace_is_made() {
    if skip_for_runc("runc 1.1.5 has no features command") {
        return;
    }
    let f = features();
    let rt = Runtime::new();
    for ns in strings(&f["linux"]["namespaces"], "linux.namespaces") {
        let proc_name = match ns.as_str() {
            "mount" => "mnt",
            "network" => "net",
            n => n,
        };
        let mut b = Bundle::sh(&format!("readlink /proc/self/ns/{proc_name}"));
        b.edit(|c| {
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            if !list.iter().any(|n| n["type"] == ns.as_str()) {
                list.push(json!({"type": ns}));
            }
            if ns == "user" {
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            }
        });
        let id = rt.id();
        let o = rt
            .cmd(&["run", "--bundle", &b.path_str(), &id])
            .run()
            .expect_ok();
        let ours = std::fs::read_link(format!("/proc/self/ns/{proc_name}")).unwrap();
        assert_ne!(
            o.stdout.trim(),
            ours.to_string_lossy(),
            "{ns}: not a new namespace"
        );
        assert!(o.stdout.starts_with(&format!("{proc_name}:[")), "{ns}: {o}");
    }
}
