//! More cases about hooks: the state each kind reads, where in-container hooks run, timeouts
//! and the failure message of each kind, the environment of a hook without `env`.

#[allow(unused_imports)]
use super::cases::*;
#[allow(unused_imports)]
use super::*;

/// A host hook appending its stdin (host pids masked) and its cwd to {bundle}/hooks.log.
fn state_to_log(kind: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
        "echo {kind} $(sed 's/\"pid\":[0-9]*/\"pid\":N/') $(pwd) >> {{bundle}}/hooks.log")]})
}

/// A hook that prints to stdout and stderr and fails, or sleeps past its 1 s timeout.
fn failing(how: &str) -> Value {
    match how {
        "timeout" => json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}),
        _ => json!({"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo err >&2; exit 3"]}),
    }
}

pub fn more_cases(all: &mut Vec<Case>) {
    // startContainer hooks run as the process will: its user, capabilities, no_new_privs and
    // seccomp filter (here one refusing mkdir), with and without no_new_privs.
    for nnp in [true, false] {
        let hook = "id > /tmp/hooklog; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status \
                    >> /tmp/hooklog; mkdir /tmp/d 2>/dev/null; echo mkdir=$? >> /tmp/hooklog";
        all.push(
            with_users(&format!("hooks/start-container-creds-nnp-{nnp}"))
                .sh("cat /tmp/hooklog")
                .patch(json!({"root": {"readonly": false},
                    "process": {"user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": nnp},
                    "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}},
                    "hooks": {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]}}))
                .run_text()
                .done(),
        );
    }
    let annotations = json!({"b.key": "2", "a.key": "1"});
    // Each host kind's state on stdin: status, pid or not, key order, sorted annotations.
    for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
        all.push(
            case(&format!("hooks/state-{kind}"))
                .sh("true")
                .patch(json!({"annotations": annotations, "hooks": {kind: [state_to_log(kind)]}}))
                .run_text()
                .text(&["@cat", "{bundle}/hooks.log"])
                .done(),
        );
    }
    // createContainer runs in the container's namespaces before pivot_root (the bundle is
    // still reachable), startContainer after it: both see the pid in the container.
    all.push(
        case("hooks/state-in-container")
            .sh("cat /hooklog")
            .patch(
                json!({"annotations": annotations, "root": {"readonly": false}, "hooks": {
                "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
                    "echo $(cat) $(pwd) >> {bundle}/hooks.log"]}],
                "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
                    "echo $(cat) $(pwd) > /hooklog"]}]}}),
            )
            .run_text()
            .text(&["@cat", "{bundle}/hooks.log"])
            .done(),
    );
    // The failure message names the kind and index (engines match on it) and quotes the
    // hook's output; a timeout says so.
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        for how in ["exit", "timeout"] {
            let phrase = match how {
                "timeout" => {
                    format!("error running {kind} hook #1: hook ran past specified timeout of 1.0s")
                }
                _ => format!("error running {kind} hook #1: exit status 3, stdout: out"),
            };
            let ok = json!({"path": "/bin/true"});
            let c = case(&format!("hooks/{kind}-{how}-message"))
                .sh("echo in-container")
                .patch(json!({"hooks": {kind: [ok, failing(how)]}}))
                .run_text();
            // runc's init prints a failed startContainer hook's error on the container's
            // stderr and exits 255 as if the process had: no error line of runc's own.
            all.push(match kind {
                "startContainer" => c.done(),
                _ => c.phrase(&phrase).done(),
            });
        }
    }
    // A host hook without `env` gets the runtime's environment; `"env": []` is empty.
    all.push(
        case("hooks/env-absent-or-empty")
            .sh("true")
            .patch(json!({"hooks": {"prestart": [
                {"path": "/bin/sh", "args": ["sh", "-c",
                    "env | grep -q ^PATH= && echo absent: inherited >> {bundle}/hooks.log || echo absent: empty >> {bundle}/hooks.log"]},
                {"path": "/bin/sh", "env": [], "args": ["sh", "-c",
                    "env | grep -q ^PATH= && echo empty: inherited >> {bundle}/hooks.log || echo empty: empty >> {bundle}/hooks.log"]}]}}))
            .run_text()
            .text(&["@cat", "{bundle}/hooks.log"])
            .done(),
    );
    // startContainer with its own env gets only that.
    all.push(
        case("hooks/start-container-own-env")
            .sh("cat /hooklog")
            .patch(json!({"root": {"readonly": false}, "process": {"env": [PATH, "FROM_PROCESS=1"]},
                "hooks": {"startContainer": [{"path": "/bin/sh", "env": ["OWN=1"], "args": ["sh", "-c",
                "env | sort > /hooklog"]}]}}))
            .run_text()
            .done(),
    );
}
