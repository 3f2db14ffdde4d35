//! Hooks: all six, in order, with their args, env and the state on stdin; createContainer and
//! startContainer in the container's namespaces; a timeout and a failing poststart.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use integration::*;

/// A hook script that appends `NAME|ARGS|HOOK_ENV|uts-ns|state-json` to `log`. The directory
/// is bind-mounted into the container at the same path, since startContainer hooks resolve
/// their path (and write) inside the container.
fn hook_script(dir: &Path, log: &Path) -> String {
    let p = dir.join("hook.sh");
    fs::write(
        &p,
        format!(
            "#!/bin/sh\nname=$1; shift\nstate=$(cat)\nns=$(readlink /proc/self/ns/uts)\n\
             echo \"$name|$*|$HOOK_ENV|$ns|$state\" >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p.to_string_lossy().to_string()
}

const ORDER: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

#[test]
fn all_six_hooks_in_order_with_args_env_state() {
    let rt = Runtime::new();
    let dir = rt.work().join("hooks");
    fs::create_dir(&dir).unwrap();
    let log = dir.join("log");
    let script = hook_script(&dir, &log);
    let mut b = Bundle::new(&["sleep", "100"]);
    let d = dir.to_string_lossy().to_string();
    b.edit(|c| {
        let mut hooks = serde_json::Map::new();
        for h in ORDER {
            hooks.insert(
                h.to_string(),
                json!([{
                    "path": script,
                    "args": ["hook.sh", h, "arg-one", "arg two"],
                    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", format!("HOOK_ENV=env-{h}")],
                    "timeout": 10
                }]),
            );
        }
        c["hooks"] = Value::Object(hooks);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": d, "type": "bind", "source": d, "options": ["bind"]}));
    });
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let container_uts = ns_link(&pid.to_string(), "uts");
    let host_uts = ns_link("self", "uts");
    rt.exec(&["start", &id]).expect_ok();
    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.exec(&["delete", &id]).expect_ok();

    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(5, '|').collect()).collect();
    let names: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    // runc 1.1.5 deviates: it runs poststart at the end of `create` (before start and so
    // before startContainer, with status "created"), and gives the in-container hooks the pid
    // as seen inside (1). Those two checks are relaxed for runc only.
    let runc = is_runc();
    if runc {
        let mut n = names.clone();
        n.swap(3, 4);
        assert_eq!(n, ORDER, "{text}");
    } else {
        assert_eq!(names, ORDER, "{text}");
    }
    let bundle = fs::canonicalize(b.path()).unwrap();
    for l in &lines {
        let name = l[0];
        assert_eq!(l[1], "arg-one arg two", "{name} args");
        assert_eq!(l[2], format!("env-{name}"), "{name} env");
        let in_container = matches!(name, "createContainer" | "startContainer");
        let want_ns = if in_container {
            &container_uts
        } else {
            &host_uts
        };
        assert_eq!(&l[3], want_ns, "{name} uts namespace");
        let st: Value =
            serde_json::from_str(l[4]).unwrap_or_else(|e| panic!("{name}: {e}: {}", l[4]));
        assert_eq!(st["id"], id.as_str(), "{name}");
        assert_eq!(
            st["bundle"].as_str().unwrap(),
            bundle.to_str().unwrap(),
            "{name}"
        );
        let want_status = match name {
            // husk and crun: "created" (runtime-tools' hooks_stdin wants it); runc: "creating"
            "prestart" | "createRuntime" | "createContainer" if runc => "creating",
            "prestart" | "createRuntime" | "createContainer" => "created",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        if !(runc && name == "poststart") {
            assert_eq!(st["status"], want_status, "{name}: {st}");
        }
        if name != "poststop" && !(runc && in_container) {
            assert_eq!(st["pid"].as_i64(), Some(pid), "{name}: {st}");
        }
    }
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn hook_timeout_fails_create() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["hooks"] = json!({"prestart": [{
            "path": "/usr/bin/busybox", "args": ["busybox", "sleep", "30"], "timeout": 1}]});
    });
    let id = rt.id();
    let t = std::time::Instant::now();
    let o = rt
        .exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "create waited {:?}",
        t.elapsed()
    );
    let all = format!("{}{}", o.stderr, o.stdout).to_lowercase();
    assert!(
        all.contains("timed out") || all.contains("timeout"),
        "no timeout named: {o}"
    );
    assert!(
        all.contains("prestart") || runc_wording(),
        "hook kind not named: {o}"
    );
    rt.exec(&["delete", "--force", &id]);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn failing_prestart_fails_create() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| {
        c["hooks"] =
            json!({"prestart": [{"path": "/usr/bin/busybox", "args": ["busybox", "false"]}]});
    });
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("hook");
    // husk names the hook kind; runc says only "error running hook #0"
    rt.exec(&["delete", "--force", &id]);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn failing_poststart_fails_start() {
    if skip_for_runc("runc 1.1.5 runs poststart hooks during create, so create fails instead") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| {
        c["hooks"] =
            json!({"poststart": [{"path": "/usr/bin/busybox", "args": ["busybox", "false"]}]});
    });
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.exec(&["start", &id])
        .expect_err()
        .expect_msg("poststart");
    // the container is not left running
    assert!(
        wait_pid_gone(pid, Duration::from_secs(10)),
        "init {pid} still runs"
    );
    rt.exec(&["delete", "--force", &id]);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// runc's messages do not name the hook kind.
fn runc_wording() -> bool {
    is_runc()
}
