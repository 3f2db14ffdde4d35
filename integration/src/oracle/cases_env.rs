//! More cases about environment, config parsing, capabilities and exec: the process.json
//! cases with a PATH (so that they get past the executable lookup), HOME for exec users, Go's
//! reading of config keys and null fields, capability names and sets runc ignores or keeps,
//! scheduler flag spellings.

#[allow(unused_imports)]
use super::cases::*;
#[allow(unused_imports)]
use super::*;

/// A container of `sleep 100` (env: PATH only), started detached.
fn sleeper(name: &str) -> B {
    with_users(name)
        .sh("sleep 100")
        .patch(json!({"process": {"env": [PATH]}}))
        .step(&["run", "-d", "--bundle", "{bundle}", "{id}"])
}

/// Kill, wait for stopped, delete.
fn finish(b: B) -> B {
    b.step(&["kill", "{id}", "KILL"])
        .step(&["@wait", "stopped"])
        .step(&["delete", "{id}"])
}

pub fn more_cases(all: &mut Vec<Case>) {
    exec_process_cases(all);
    exec_cases(all);
    run_cases(all);
}

fn exec_process_cases(all: &mut Vec<Case>) {
    let env = format!("\"env\": [\"{PATH}\"]");
    let procs: Vec<(&str, String, Option<&str>)> = vec![
        (
            "path-args-only",
            format!(
                r#"{{"args": ["sh", "-c", "id; pwd; env | sort; grep -E 'Cap|NoNewPrivs' /proc/self/status"], "cwd": "/", {env}}}"#
            ),
            None,
        ),
        (
            "path-user-1000",
            format!(
                r#"{{"args": ["sh", "-c", "id; env | sort"], "cwd": "/", "user": {{"uid": 1000, "gid": 1000}}, {env}}}"#
            ),
            None,
        ),
        (
            "path-user-nohome",
            format!(
                r#"{{"args": ["env"], "cwd": "/", "user": {{"uid": 1001, "gid": 1001}}, {env}}}"#
            ),
            None,
        ),
        (
            "path-user-unlisted",
            format!(
                r#"{{"args": ["env"], "cwd": "/", "user": {{"uid": 4242, "gid": 4242}}, {env}}}"#
            ),
            None,
        ),
        (
            "path-user-uid-only",
            format!(r#"{{"args": ["id"], "cwd": "/", "user": {{"uid": 1000}}, {env}}}"#),
            None,
        ),
        (
            "path-key-case",
            format!(
                r#"{{"Args": ["sh", "-c", "pwd; env | sort; id"], "Cwd": "/tmp", "Env": ["{PATH}", "X=1"], "User": {{"UID": 1000, "GID": 1000}}}}"#
            ),
            None,
        ),
        (
            "path-null-fields",
            format!(
                r#"{{"args": ["sh", "-c", "id; grep -E 'Cap|NoNewPrivs' /proc/self/status"], "cwd": "/", {env}, "user": null, "capabilities": null, "rlimits": null, "terminal": null, "noNewPrivileges": null}}"#
            ),
            None,
        ),
        (
            "path-caps",
            format!(
                r#"{{"args": ["grep", "Cap", "/proc/self/status"], "cwd": "/", {env}, "capabilities": {{"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}}}}"#
            ),
            None,
        ),
        (
            "path-caps-unknown",
            format!(
                r#"{{"args": ["grep", "Cap", "/proc/self/status"], "cwd": "/", {env}, "capabilities": {{"bounding": ["CAP_KILL", "CAP_NOPE", "cap_chown"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "KILL"]}}}}"#
            ),
            Some("ignoring unknown"),
        ),
        (
            "path-caps-ambient",
            format!(
                r#"{{"args": ["grep", "Cap", "/proc/self/status"], "cwd": "/", {env}, "capabilities": {{"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_CHOWN"]}}}}"#
            ),
            Some("CAP_CHOWN"),
        ),
        (
            "path-rlimits",
            format!(
                r#"{{"args": ["cat", "/proc/self/limits"], "cwd": "/", {env}, "rlimits": [{{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}}]}}"#
            ),
            None,
        ),
        (
            "path-env-dup",
            format!(
                r#"{{"args": ["env"], "cwd": "/", "env": ["{PATH}", "A=1", "B=2", "A=3", "HOME=/x", "HOME="]}}"#
            ),
            None,
        ),
        (
            "path-env-no-equals",
            format!(r#"{{"args": ["env"], "cwd": "/", "env": ["{PATH}", "NOEQ"]}}"#),
            None,
        ),
        (
            "path-env-empty-name",
            format!(r#"{{"args": ["env"], "cwd": "/", "env": ["{PATH}", "=x"]}}"#),
            None,
        ),
        (
            "path-scheduler",
            format!(
                r#"{{"args": ["grep", "policy", "/proc/self/sched"], "cwd": "/", {env}, "scheduler": {{"policy": "SCHED_IDLE"}}}}"#
            ),
            None,
        ),
        (
            "path-cwd-missing",
            format!(r#"{{"args": ["pwd"], "cwd": "/no/such", {env}}}"#),
            None,
        ),
    ];
    for (name, json, warn) in procs {
        let mut b = sleeper(&format!("exec-process/{name}"))
            .file("process.json", &json)
            .text(&["exec", "--process", "{bundle}/process.json", "{id}"]);
        if let Some(w) = warn {
            b = b.warn(w);
        }
        all.push(finish(b).done());
    }
}

fn exec_cases(all: &mut Vec<Case>) {
    let execs: &[(&str, &[&str], Option<&str>)] = &[
        ("home-root", &["exec", "{id}", "env"], None),
        (
            "home-user",
            &["exec", "--user", "1000", "{id}", "env"],
            None,
        ),
        (
            "home-nohome",
            &["exec", "--user", "1001:1001", "{id}", "env"],
            None,
        ),
        (
            "home-unlisted",
            &["exec", "--user", "4242", "{id}", "env"],
            None,
        ),
        (
            "env-dup",
            &[
                "exec", "--env", "A=1", "--env", "B=2", "--env", "A=3", "{id}", "env",
            ],
            None,
        ),
        (
            "env-empty-name",
            &["exec", "--env", "=x", "{id}", "env"],
            None,
        ),
        (
            "cap-lowercase",
            &[
                "exec",
                "--cap",
                "cap_sys_admin",
                "{id}",
                "grep",
                "Cap",
                "/proc/self/status",
            ],
            Some("ignoring unknown"),
        ),
        (
            "cap-status",
            &[
                "exec",
                "--cap",
                "CAP_SYS_ADMIN",
                "--cap",
                "CAP_NOPE",
                "{id}",
                "sh",
                "-c",
                STATUS,
            ],
            Some("CAP_NOPE"),
        ),
        ("gids-negative", &["exec", "-g", "-5", "{id}", "id"], None),
        (
            "user-bad-gid",
            &["exec", "--user", "1000:x", "{id}", "id"],
            None,
        ),
    ];
    for (name, argv, warn) in execs {
        let mut b = sleeper(&format!("exec/{name}")).text(argv);
        if let Some(w) = warn {
            b = b.warn(w);
        }
        all.push(finish(b).done());
    }
    // --cap with an inheritable set configured: runc adds it to the ambient set as well.
    all.push(
        finish(
            sleeper("exec/cap-with-inheritable")
                .patch(json!({"process": {"capabilities": {
                    "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                    "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}}}))
                .text(&["exec", "--cap", "CAP_CHOWN", "{id}", "sh", "-c", STATUS])
                .warn("CAP_CHOWN"),
        )
        .done(),
    );
    // Flag values that are not numbers: usage errors, exit 1 (the help text runc prints
    // after them is not compared).
    for (name, argv) in [
        (
            "gids-comma-list",
            &["exec", "-g", "2000,3000", "{id}", "id"][..],
        ),
        (
            "preserve-fds-not-a-number",
            &["exec", "--preserve-fds", "x", "{id}", "true"][..],
        ),
    ] {
        all.push(finish(sleeper(&format!("exec/{name}")).step(argv)).done());
    }
    // No env in the config: none for the exec either (no HOME), unless --env adds some.
    for (name, argv) in [
        ("env-absent", &["exec", "{id}", "/bin/env"][..]),
        (
            "env-absent-with-env",
            &["exec", "--env", "A=1", "{id}", "/bin/env"][..],
        ),
    ] {
        all.push(
            finish(
                sleeper(&format!("exec/{name}"))
                    .patch(json!({"process": {"env": null, "args": ["/bin/sleep", "100"]}}))
                    .text(argv),
            )
            .done(),
        );
    }
    // execCPUAffinity: for exec'd processes (final after the move into the cgroup).
    all.push(
        finish(
            sleeper("exec/exec-cpu-affinity")
                .patch(json!({"process": {"execCPUAffinity": {"initial": "1", "final": "0"}}}))
                .text(&[
                    "exec",
                    "{id}",
                    "grep",
                    "Cpus_allowed_list",
                    "/proc/self/status",
                ]),
        )
        .done(),
    );
    // No capabilities configured: the exec'd process keeps the runtime's set.
    all.push(
        finish(
            sleeper("exec/caps-absent")
                .patch(json!({"process": {"capabilities": null}}))
                .text(&["exec", "{id}", "sh", "-c", STATUS]),
        )
        .done(),
    );
}

fn run_cases(all: &mut Vec<Case>) {
    let fields: &[(&str, Value, &str)] = &[
        (
            "key-case",
            json!({"args": null, "Args": ["sh", "-c", "pwd; id"], "cwd": null, "Cwd": "/tmp",
                "user": null, "User": {"UID": 1000, "GID": 1000}}),
            "",
        ),
        ("user-uid-only", json!({"user": {"uid": 1000}}), "id"),
        ("user-empty", json!({"user": {}}), "id"),
        (
            "caps-absent-user",
            json!({"capabilities": null, "user": {"uid": 1000, "gid": 1000}}),
            STATUS,
        ),
        (
            "exec-cpu-affinity-not-the-inits",
            json!({"execCPUAffinity": {"initial": "1", "final": "0"}}),
            "grep Cpus_allowed_list /proc/self/status",
        ),
        (
            "sched-flag-spec-spelling",
            json!({"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}),
            "grep policy /proc/self/sched",
        ),
        (
            "sched-flag-oci-spelling",
            json!({"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_RESET_ON_FORK"]}}),
            "true",
        ),
        (
            "sched-flag-dl-oci-spelling",
            json!({"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_D_L_OVERRUN"]}}),
            "true",
        ),
    ];
    process_field_cases(all, fields);
    for (name, env) in [
        ("home-set-then-empty", json!([PATH, "HOME=/foo", "HOME="])),
        ("home-empty-then-set", json!([PATH, "HOME=", "HOME=/foo"])),
        ("nul-byte", json!([PATH, "A=x\u{0}y"])),
        ("path-empty", json!(["PATH=", "A=1"])),
    ] {
        all.push(
            with_users(&format!("env/{name}"))
                .args(&["env"])
                .patch(json!({"process": {"env": env}}))
                .run_text()
                .done(),
        );
    }
    // /etc/passwd unreadable by its mode: read with the runtime's privileges all the same.
    all.push(
        case("env/passwd-mode-000")
            .file_mode(
                "rootfs/etc/passwd",
                "root:x:0:0:root:/rootdir:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
                0o000,
            )
            .args(&["env"])
            .patch(json!({"process": {"env": [PATH], "user": {"uid": 1000, "gid": 1000}}}))
            .run_text()
            .done(),
    );
    for (name, caps) in [
        ("ambient-unknown", json!({"ambient": ["CAP_NOPE"]})),
        (
            "mixed-case-prefix",
            json!({"bounding": ["Cap_Kill", "CAP_KILL"], "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"]}),
        ),
        (
            "sets-empty",
            json!({"bounding": [], "effective": [], "permitted": []}),
        ),
    ] {
        all.push(
            case(&format!("caps/{name}"))
                .sh(STATUS)
                .patch(json!({"process": {"capabilities": caps}}))
                .text(&run())
                .warn("ignoring unknown")
                .done(),
        );
    }
    // Exec errors whose wording runc's users grep for.
    all.push(
        case("env/entry-without-equals-phrase")
            .args(&["env"])
            .patch(json!({"process": {"env": [PATH, "FOO"]}}))
            .run_text()
            .phrase("invalid environment variable: missing '='")
            .done(),
    );
}
