//! `husk features`: the document validated against runtime-spec's own JSON schema
//! (features-schema.json from Debian 13's package, fetched by scripts/spec-schema), its shape
//! checked field by field, and its claims by behaviour: every mount option it lists mounts,
//! every namespace it lists is made.

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

/// The schema directory (scripts/spec-schema prints it, fetching with curl), once the
/// validator's python3-jsonschema is known to be there. Missing: a failure under CI, a skip
/// (said) elsewhere.
fn schema_dir() -> Option<std::path::PathBuf> {
    if missing_tool("/usr/bin/python3", "python3") || missing_tool("curl", "curl") {
        return None;
    }
    let jsonschema = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import jsonschema"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if skip_unless(
        jsonschema,
        "python3's jsonschema module",
        "python3-jsonschema",
    ) {
        return None;
    }
    let o = std::process::Command::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/spec-schema"),
    )
    .output()
    .unwrap();
    if o.status.success() {
        return Some(String::from_utf8_lossy(&o.stdout).trim().into());
    }
    let why = format!(
        "scripts/spec-schema failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Draft-4 validation with Debian's python3-jsonschema; the errors, one per line.
fn validate(schema: &std::path::Path, doc: &str) -> (bool, String) {
    use std::io::Write;
    let script = "import json, sys, pathlib\n\
from jsonschema import Draft4Validator, RefResolver\n\
d = pathlib.Path(sys.argv[1])\n\
schema = json.load(open(d / 'features-schema.json'))\n\
r = RefResolver(base_uri=d.as_uri() + '/', referrer=schema)\n\
errs = list(Draft4Validator(schema, resolver=r).iter_errors(json.load(sys.stdin)))\n\
for e in errs: print('/'.join(map(str, e.path)), e.message)\n\
sys.exit(1 if errs else 0)\n";
    let mut c = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "the validator failed (python3-jsonschema installed?): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn document_validates_against_the_spec_schema() {
    if skip_for_runc("runc 1.1.5 has no features command") {
        return;
    }
    let Some(dir) = schema_dir() else { return };
    let rt = Runtime::new();
    let doc = rt.cmd_noroot(&["features"]).run().expect_ok().stdout;
    let (ok, errs) = validate(&dir, &doc);
    assert!(ok, "husk features does not validate: {errs}");
    // The validator can fail: a wrong type is caught.
    let mut bad: Value = serde_json::from_str(&doc).unwrap();
    bad["linux"]["namespaces"] = json!("mount");
    let (ok, errs) = validate(&dir, &bad.to_string());
    assert!(!ok && errs.contains("linux/namespaces"), "{errs}");
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
    assert_eq!(
        enabled(&l["selinux"], "selinux"),
        std::path::Path::new("/sys/fs/selinux/enforce").exists()
    );
    // seccomp: every action, operator and flag (integration/tests/seccomp.rs shows each).
    assert!(enabled(&l["seccomp"], "seccomp"));
    let sc = &l["seccomp"];
    assert_eq!(strings(&sc["actions"], "actions").len(), 9);
    assert_eq!(strings(&sc["operators"], "operators").len(), 7);
    assert!(strings(&sc["archs"], "archs").contains(&"SCMP_ARCH_X86_64".to_string()));
    assert_eq!(
        strings(&sc["supportedFlags"], "supportedFlags"),
        strings(&sc["knownFlags"], "knownFlags")
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
        let idmapped = opt == "idmap" || opt == "ridmap";
        let mount = if idmapped {
            // An id-mapped bind needs mappings: given on the mount.
            json!({"destination": "/m", "type": "bind", "source": src,
                   "options": ["rbind", opt],
                   "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                   "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
        } else if bindish {
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
