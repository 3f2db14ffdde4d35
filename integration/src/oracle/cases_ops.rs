//! Cases about operations on a container: the lifecycle commands, exec and update.

use super::cases::*;
use super::*;

fn create() -> Vec<&'static str> {
    vec!["create", "--bundle", "{bundle}", "{id}"]
}

fn detached() -> Vec<&'static str> {
    vec!["run", "-d", "--bundle", "{bundle}", "{id}"]
}

/// A container that sleeps, started detached.
fn sleeper(name: &str) -> B {
    with_users(name).sh("sleep 100").step(&detached())
}

/// Kill, wait for stopped, delete: the end of a case whose container still runs.
fn finish(b: B) -> B {
    b.step(&["kill", "{id}", "KILL"])
        .step(&["@wait", "stopped"])
        .step(&["delete", "{id}"])
}

pub fn lifecycle_cases(all: &mut Vec<Case>) {
    all.push(
        case("life/created-state")
            .sh("sleep 100")
            .step(&create())
            .json(&["state", "{id}"])
            .json(&["list", "--format", "json"])
            .text(&["list", "-q"])
            .step(&["delete", "{id}"])
            .step(&["state", "{id}"])
            .done(),
    );
    all.push(
        case("life/annotations-in-state")
            .sh("sleep 100")
            .patch(json!({"annotations": {"org.example/a": "1"}}))
            .step(&create())
            .json(&["state", "{id}"])
            .step(&["delete", "--force", "{id}"])
            .done(),
    );
    all.push(
        finish(
            case("life/running")
                .sh("sleep 100")
                .step(&create())
                .step(&["start", "{id}"])
                .step(&["@wait", "running"])
                .json(&["state", "{id}"])
                .step(&["start", "{id}"])
                .step(&["delete", "{id}"])
                .step(&["kill", "{id}", "0"])
                .json(&["ps", "--format", "json", "{id}"])
                .step(&["pause", "{id}"])
                .json(&["state", "{id}"])
                .step(&["pause", "{id}"])
                .step(&["exec", "{id}", "true"])
                .step(&["resume", "{id}"])
                .step(&["resume", "{id}"])
                .keys(&["events", "--stats", "{id}"]),
        )
        .json(&["state", "{id}"])
        .done(),
    );
    all.push(
        case("life/stopped")
            .sh("true")
            .step(&create())
            .step(&["start", "{id}"])
            .step(&["@wait", "stopped"])
            .json(&["state", "{id}"])
            .step(&["start", "{id}"])
            .step(&["kill", "{id}", "KILL"])
            .step(&["kill", "{id}", "0"])
            .step(&["pause", "{id}"])
            .step(&["exec", "{id}", "true"])
            .step(&["ps", "{id}"])
            .step(&["events", "--stats", "{id}"])
            .step(&["update", "--memory", "100M", "{id}"])
            .step(&["delete", "{id}"])
            .step(&["delete", "{id}"])
            .done(),
    );
    all.push(
        case("life/created-ops")
            .sh("sleep 100")
            .step(&create())
            .step(&["kill", "{id}", "0"])
            .step(&["pause", "{id}"])
            .step(&["exec", "{id}", "true"])
            .json(&["ps", "--format", "json", "{id}"])
            .step(&["delete", "{id}"])
            .step(&["kill", "{id}", "KILL"])
            .step(&["@wait", "stopped"])
            .json(&["state", "{id}"])
            .step(&["delete", "{id}"])
            .done(),
    );
    all.push(
        case("life/duplicate-id")
            .sh("sleep 100")
            .step(&create())
            .step(&create())
            .step(&["delete", "--force", "{id}"])
            .done(),
    );
    for sig in [
        "TERM",
        "SIGTERM",
        "15",
        "sigterm",
        "NOPE",
        "99",
        "-9",
        "SIGRTMIN+1",
        "RTMIN+2",
    ] {
        all.push(
            case(&format!("life/kill-{sig}"))
                .sh("trap 'exit 7' TERM; sleep 100 & wait")
                .step(&detached())
                .step(&["@sleep", "200"])
                .step(&["kill", "{id}", sig])
                .step(&["@sleep", "200"])
                .json(&["state", "{id}"])
                .step(&["delete", "--force", "{id}"])
                .done(),
        );
    }
    all.push(
        case("life/kill-all")
            .sh("sleep 100")
            .step(&detached())
            .step(&["kill", "--all", "{id}", "KILL"])
            .step(&["@wait", "stopped"])
            .step(&["delete", "{id}"])
            .done(),
    );
    all.push(
        case("life/kill-host-pidns")
            .sh("sleep 100 & sleep 100")
            .patch(json!({"linux": {"namespaces": [{"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}}))
            .step(&detached())
            .step(&["@sleep", "200"])
            .step(&["kill", "{id}", "KILL"])
            .step(&["@wait", "stopped"])
            .json(&["ps", "--format", "json", "{id}"])
            .step(&["delete", "{id}"])
            .done(),
    );
    all.push(
        case("life/delete-force-running")
            .sh("sleep 100")
            .step(&detached())
            .step(&["delete", "--force", "{id}"])
            .step(&["state", "{id}"])
            .done(),
    );
    all.push(
        case("life/delete-force-missing")
            .step(&["delete", "--force", "{id}"])
            .step(&["delete", "{id}"])
            .done(),
    );
    all.push(
        case("life/ops-on-missing")
            .step(&["state", "{id}"])
            .step(&["start", "{id}"])
            .step(&["kill", "{id}"])
            .step(&["pause", "{id}"])
            .step(&["resume", "{id}"])
            .step(&["ps", "{id}"])
            .step(&["exec", "{id}", "true"])
            .step(&["events", "--stats", "{id}"])
            .step(&["update", "--memory", "1M", "{id}"])
            .done(),
    );
    all.push(
        case("life/list-empty")
            .text(&["list"])
            .json(&["list", "--format", "json"])
            .text(&["list", "-q"])
            .step(&["list", "--format", "yaml"])
            .done(),
    );
    all.push(
        case("life/list-missing-root")
            .json(&[
                "@raw",
                "--root",
                "{work}/no/such/root",
                "list",
                "--format",
                "json",
            ])
            .step(&["@raw", "--root", "{work}/no/such/root", "list"])
            .step(&["@raw", "--root", "{work}/no/such/root", "state", "{id}"])
            .done(),
    );
    all.push(
        case("life/list-corrupt-state")
            .sh("sleep 100")
            .step(&create())
            .step(&["@write", "{root}/{id}/state.json", "{corrupt"])
            .text(&["list", "-q"])
            .step(&["state", "{id}"])
            .step(&["delete", "--force", "{id}"])
            .done(),
    );
    all.push(
        case("life/cli-help")
            .step(&["@raw", "-h"])
            .step(&["@raw", "help", "nosuchcommand"])
            .step(&["@raw", "nosuchcommand"])
            .step(&["@raw", "--version"])
            .step(&["@raw", "state"])
            .step(&["@raw", "state", "a", "b"])
            .step(&["@raw", "spec", "--help"])
            .step(&["@raw", "--nosuchflag", "list"])
            .done(),
    );
    all.push(
        case("life/preserve-fds-not-open")
            .sh("ls /proc/self/fd")
            .step(&[
                "create",
                "--preserve-fds",
                "5",
                "--bundle",
                "{bundle}",
                "{id}",
            ])
            .step(&["delete", "--force", "{id}"])
            .done(),
    );
    all.push(
        case("life/pid-file")
            .sh("sleep 100")
            .step(&[
                "create",
                "--pid-file",
                "{work}/pidfile",
                "--bundle",
                "{bundle}",
                "{id}",
            ])
            .step(&["delete", "--force", "{id}"])
            .done(),
    );
    for (name, cmd) in [("run", run()), ("create-start", create())] {
        let mut b = case(&format!("fds/{name}"))
            .sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; echo")
            .step_as(
                &cmd,
                if name == "run" {
                    Observe::Text
                } else {
                    Observe::Exit
                },
            );
        if name != "run" {
            b = b.step(&["start", "{id}"]).step(&["@wait", "stopped"]);
        }
        all.push(b.done());
    }
}

pub fn exec_cases(all: &mut Vec<Case>) {
    let execs: &[(&str, &[&str])] = &[
        ("env", &["exec", "{id}", "env"]),
        ("env-user", &["exec", "--user", "1000", "{id}", "env"]),
        (
            "env-user-group",
            &["exec", "--user", "1000:2000", "{id}", "env"],
        ),
        (
            "env-user-nohome",
            &["exec", "--user", "1001", "{id}", "env"],
        ),
        (
            "env-user-unlisted",
            &["exec", "--user", "4242", "{id}", "env"],
        ),
        (
            "env-override",
            &["exec", "--env", "A=exec", "--env", "HOME=/x", "{id}", "env"],
        ),
        ("env-home-empty", &["exec", "--env", "HOME=", "{id}", "env"]),
        ("env-no-equals", &["exec", "--env", "NOEQ", "{id}", "env"]),
        ("user-name", &["exec", "--user", "user", "{id}", "id"]),
        (
            "user-additional-gids",
            &[
                "exec",
                "--user",
                "1000",
                "--additional-gids",
                "2000",
                "{id}",
                "id",
            ],
        ),
        ("cwd", &["exec", "--cwd", "/tmp", "{id}", "pwd"]),
        ("cwd-missing", &["exec", "--cwd", "/no/such", "{id}", "pwd"]),
        (
            "cap",
            &[
                "exec",
                "--cap",
                "CAP_SYS_ADMIN",
                "{id}",
                "grep",
                "Cap",
                "/proc/self/status",
            ],
        ),
        (
            "cap-user",
            &[
                "exec",
                "--user",
                "1000",
                "--cap",
                "CAP_CHOWN",
                "{id}",
                "grep",
                "Cap",
                "/proc/self/status",
            ],
        ),
        (
            "cap-unknown",
            &["exec", "--cap", "CAP_NOPE", "{id}", "true"],
        ),
        (
            "no-new-privs",
            &[
                "exec",
                "--no-new-privs",
                "{id}",
                "grep",
                "NoNewPrivs",
                "/proc/self/status",
            ],
        ),
        ("exit-255", &["exec", "{id}", "sh", "-c", "exit 255"]),
        ("exit-3", &["exec", "{id}", "sh", "-c", "exit 3"]),
        ("signaled", &["exec", "{id}", "sh", "-c", "kill -9 $$"]),
        ("missing-binary", &["exec", "{id}", "/no/such"]),
        ("missing-binary-path", &["exec", "{id}", "nosuchcmd"]),
        ("not-executable", &["exec", "{id}", "/etc/passwd"]),
        ("no-args", &["exec", "{id}"]),
        (
            "fds",
            &[
                "exec",
                "{id}",
                "sh",
                "-c",
                "ls /proc/self/fd | sort -n | tr '\\n' ' '",
            ],
        ),
        ("status", &["exec", "{id}", "sh", "-c", STATUS]),
        ("limits", &["exec", "{id}", "cat", "/proc/self/limits"]),
        (
            "affinity",
            &[
                "exec",
                "{id}",
                "grep",
                "Cpus_allowed_list",
                "/proc/self/status",
            ],
        ),
        (
            "process-label",
            &["exec", "--process-label", "x", "{id}", "true"],
        ),
        ("apparmor", &["exec", "--apparmor", "x", "{id}", "true"]),
        (
            "ignore-paused",
            &["exec", "--ignore-paused", "{id}", "true"],
        ),
        ("detach", &["exec", "-d", "{id}", "true"]),
        (
            "pid-file",
            &["exec", "--pid-file", "{work}/exec.pid", "{id}", "true"],
        ),
    ];
    for (name, argv) in execs {
        all.push(
            finish(
                sleeper(&format!("exec/{name}"))
                    .patch(json!({"process": {"env": [PATH, "A=config", "HOME=/cfg"]},
                        "linux": {"resources": {"cpu": {"cpus": "0"}}}}))
                    .text(argv),
            )
            .done(),
        );
    }
    // exec --process: the fields a process.json leaves out.
    let procs: &[(&str, &str)] = &[
        (
            "args-only",
            r#"{"args": ["sh", "-c", "id; pwd; env | sort; grep -E 'Cap|NoNewPrivs' /proc/self/status"]}"#,
        ),
        (
            "no-cwd",
            r#"{"args": ["pwd"], "user": {"uid": 0, "gid": 0}, "env": []}"#,
        ),
        ("no-user", r#"{"args": ["id"], "cwd": "/"}"#),
        (
            "user-1000",
            r#"{"args": ["sh", "-c", "id; env"], "cwd": "/", "user": {"uid": 1000, "gid": 1000}}"#,
        ),
        ("cwd-relative", r#"{"args": ["pwd"], "cwd": "tmp"}"#),
        (
            "key-case",
            r#"{"Args": ["sh", "-c", "pwd; env"], "Cwd": "/tmp", "Env": ["X=1"]}"#,
        ),
        ("empty-args", r#"{"args": [], "cwd": "/"}"#),
        ("no-args", r#"{"cwd": "/"}"#),
        (
            "caps",
            r#"{"args": ["grep", "Cap", "/proc/self/status"], "cwd": "/", "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}}"#,
        ),
        (
            "rlimits",
            r#"{"args": ["cat", "/proc/self/limits"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}]}"#,
        ),
        (
            "env-dup",
            r#"{"args": ["env"], "cwd": "/", "env": ["A=1", "A=2"]}"#,
        ),
        (
            "terminal-no-socket",
            r#"{"args": ["true"], "cwd": "/", "terminal": true}"#,
        ),
        ("malformed", r#"{"args": ["true"], "cwd": "#),
        ("wrong-type", r#"{"args": "true", "cwd": "/"}"#),
        (
            "scheduler",
            r#"{"args": ["true"], "cwd": "/", "scheduler": {"policy": "SCHED_IDLE"}}"#,
        ),
    ];
    for (name, json) in procs {
        all.push(
            finish(
                sleeper(&format!("exec-process/{name}"))
                    .file("process.json", json)
                    .text(&["exec", "--process", "{bundle}/process.json", "{id}"]),
            )
            .done(),
        );
    }
    all.push(
        finish(sleeper("exec-process/missing-file").text(&[
            "exec",
            "--process",
            "{bundle}/no-such.json",
            "{id}",
        ]))
        .done(),
    );
}

/// Cgroup files read by `exec` after an update.
const CG: &str = "for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
    memory/memory.soft_limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us \
    cpu/cpu.cfs_period_us cpu/cpu.cfs_burst_us cpu/cpu.idle cpu/cpu.rt_period_us \
    cpu/cpu.rt_runtime_us cpuset/cpuset.cpus blkio/blkio.weight; do \
    echo \"$f $(cat /sys/fs/cgroup/$f 2>&1)\"; done";

pub fn update_cases(all: &mut Vec<Case>) {
    let updates: &[(&str, &[&str])] = &[
        ("memory", &["--memory", "100M"]),
        (
            "memory-swap",
            &["--memory", "100M", "--memory-swap", "200M"],
        ),
        (
            "memory-swap-unlimited",
            &["--memory", "100M", "--memory-swap", "-1"],
        ),
        ("memory-unlimited", &["--memory", "-1"]),
        ("memory-reservation", &["--memory-reservation", "50M"]),
        ("memory-below-usage", &["--memory", "4096"]),
        ("pids", &["--pids-limit", "50"]),
        ("pids-unlimited", &["--pids-limit", "-1"]),
        ("pids-zero", &["--pids-limit", "0"]),
        ("cpu-quota", &["--cpu-quota", "20000"]),
        ("cpu-quota-unlimited", &["--cpu-quota", "-1"]),
        (
            "cpu-period-quota",
            &["--cpu-period", "50000", "--cpu-quota", "25000"],
        ),
        (
            "cpu-period-small",
            &["--cpu-period", "2000", "--cpu-quota", "1000"],
        ),
        (
            "cpu-burst",
            &["--cpu-quota", "50000", "--cpu-burst", "10000"],
        ),
        ("cpu-idle", &["--cpu-idle", "1"]),
        ("cpu-share", &["--cpu-share", "300"]),
        (
            "cpu-rt",
            &["--cpu-rt-period", "1000000", "--cpu-rt-runtime", "0"],
        ),
        ("cpuset", &["--cpuset-cpus", "0"]),
        ("blkio", &["--blkio-weight", "400"]),
        ("memory-bad", &["--memory", "lots"]),
        ("nothing", &[]),
        ("kernel-memory", &["--kernel-memory", "100M"]),
    ];
    for (name, flags) in updates {
        let mut argv = vec!["update"];
        argv.extend_from_slice(flags);
        argv.push("{id}");
        all.push(
            finish(
                sleeper(&format!("update/{name}"))
                    .patch(
                        json!({"linux": {"resources": {"memory": {"limit": 268435456},
                        "cpu": {"quota": 40000, "period": 100000}}}}),
                    )
                    .step(&argv)
                    .text(&["exec", "{id}", "sh", "-c", CG]),
            )
            .done(),
        );
    }
    // The second update lowers the quota below the burst the first one set: written in the
    // order the kernel takes (burst first).
    all.push(
        finish(
            sleeper("update/quota-below-current-burst")
                .patch(json!({"linux": {"resources": {"cpu": {"quota": 40000, "period": 100000}}}}))
                .step(&[
                    "update",
                    "--cpu-quota",
                    "50000",
                    "--cpu-burst",
                    "30000",
                    "{id}",
                ])
                .step(&[
                    "update",
                    "--cpu-quota",
                    "20000",
                    "--cpu-burst",
                    "10000",
                    "{id}",
                ])
                .text(&["exec", "{id}", "sh", "-c", CG]),
        )
        .done(),
    );
    all.push(
        finish(
            sleeper("update/resources-file")
                .file(
                    "r.json",
                    r#"{"memory": {"limit": 157286400}, "pids": {"limit": 33}}"#,
                )
                .step(&["update", "--resources", "{bundle}/r.json", "{id}"])
                .text(&["exec", "{id}", "sh", "-c", CG]),
        )
        .done(),
    );
    // Device rules in an update: the whole set replaces the old one, as runc's emulator
    // translates it (a deny-all first, then the allows).
    all.push(
        finish(
            sleeper("update/devices")
                .file(
                    "d.json",
                    r#"{"devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                    {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]}"#,
                )
                .step(&["update", "--resources", "{bundle}/d.json", "{id}"])
                .text(&[
                    "exec",
                    "{id}",
                    "sh",
                    "-c",
                    "sort /sys/fs/cgroup/devices/devices.list; head -c1 /dev/zero | wc -c; \
                     head -c1 /dev/urandom | wc -c",
                ]),
        )
        .done(),
    );
    all.push(
        finish(
            sleeper("update/resources-stdin-empty")
                .step(&["update", "--resources", "-", "{id}"])
                .text(&["exec", "{id}", "sh", "-c", CG]),
        )
        .done(),
    );
}
