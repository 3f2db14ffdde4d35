//! Cases about the config beyond the process: mounts and masks, cgroup resources, hooks, and
//! bad input.

use super::cases::*;
use super::*;

pub fn mount_cases(all: &mut Vec<Case>) {
    let host = "{bundle}/src";
    let file = |b: B| b.file("src/f", "data\n").file("rootfs/mnt/x/.keep", "");
    let binds: &[(&str, Value)] = &[
        ("bind", json!(["bind"])),
        ("rbind", json!(["rbind"])),
        ("bind-ro", json!(["bind", "ro"])),
        (
            "rbind-ro-nosuid-nodev-noexec",
            json!(["rbind", "ro", "nosuid", "nodev", "noexec"]),
        ),
        ("bind-noatime", json!(["bind", "noatime"])),
        ("bind-strictatime", json!(["bind", "strictatime"])),
        ("bind-nodiratime", json!(["bind", "nodiratime"])),
        ("bind-relatime-ro", json!(["bind", "relatime", "ro"])),
        (
            "bind-rw-suid-dev-exec",
            json!(["bind", "rw", "suid", "dev", "exec"]),
        ),
        ("bind-private", json!(["bind", "private"])),
        ("bind-rro", json!(["rbind", "rro"])),
        ("bind-unknown-option", json!(["bind", "nosuchopt"])),
        ("bind-nosymfollow", json!(["bind", "nosymfollow"])),
    ];
    for (name, opts) in binds {
        all.push(
            file(case(&format!("mounts/{name}")))
                .sh("grep ' /mnt/x ' /proc/self/mountinfo | awk '{for(i=7;$i!=\"-\";i++);print $5,$6,$(i+1)}'; cat /mnt/x/f")
                .patch(json!({"mounts": mounts_plus(json!([
                    {"destination": "/mnt/x", "type": "bind", "source": host, "options": opts}]))}))
                .run_text()
                .done(),
        );
    }
    let others: &[(&str, Value, &str)] = &[
        (
            "tmpfs-mode-inherited",
            json!([{"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs"}]),
            "stat -c '%a %U' /mnt/x",
        ),
        (
            "tmpfs-mode-explicit",
            json!([{"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]}]),
            "stat -c '%a' /mnt/x",
        ),
        (
            "tmpfs-new-dir",
            json!([{"destination": "/mnt/new/deep", "type": "tmpfs", "source": "tmpfs"}]),
            "stat -c '%a' /mnt/new/deep /mnt/new",
        ),
        (
            "relative-destination",
            json!([{"destination": "mnt/x", "type": "tmpfs", "source": "tmpfs"}]),
            "grep -c ' /mnt/x ' /proc/self/mountinfo",
        ),
        (
            "dangling-symlink-target",
            json!([{"destination": "/mnt/link/sub", "type": "tmpfs", "source": "tmpfs"}]),
            "grep ' /mnt' /proc/self/mountinfo | awk '{print $5}'",
        ),
        (
            "bind-source-missing",
            json!([{"destination": "/mnt/x", "type": "bind", "source": "/no/such/src", "options": ["bind"]}]),
            "true",
        ),
        (
            "bind-file",
            json!([{"destination": "/mnt/file", "type": "bind", "source": "{bundle}/src/f", "options": ["bind", "ro"]}]),
            "cat /mnt/file; stat -c %F /mnt/file",
        ),
        (
            "bind-file-over-dir",
            json!([{"destination": "/mnt/x", "type": "bind", "source": "{bundle}/src/f", "options": ["bind"]}]),
            "true",
        ),
        (
            "bind-no-type",
            json!([{"destination": "/mnt/x", "source": "{bundle}/src", "options": ["rbind"]}]),
            "cat /mnt/x/f",
        ),
        (
            "type-none-bind",
            json!([{"destination": "/mnt/x", "type": "none", "source": "{bundle}/src", "options": ["bind"]}]),
            "cat /mnt/x/f",
        ),
        (
            "unknown-fs-type",
            json!([{"destination": "/mnt/x", "type": "nosuchfs", "source": "x"}]),
            "true",
        ),
        (
            "proc-twice",
            json!([{"destination": "/mnt/x", "type": "proc", "source": "proc"}]),
            "test -e /mnt/x/self/status && echo yes",
        ),
        (
            "mqueue-extra",
            json!([{"destination": "/mnt/x", "type": "mqueue", "source": "mqueue"}]),
            "grep -c mqueue /proc/self/mountinfo",
        ),
        (
            "idmap-bind",
            json!([{"destination": "/mnt/x", "type": "bind", "source": "{bundle}/src", "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]),
            "stat -c '%u %g' /mnt/x/f",
        ),
        (
            "idmap-option",
            json!([{"destination": "/mnt/x", "type": "bind", "source": "{bundle}/src", "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]),
            "stat -c '%u %g' /mnt/x/f",
        ),
    ];
    for (name, extra, probe) in others {
        let mut b = file(case(&format!("mounts/{name}")));
        match *name {
            // A dangling symlink on the way to the target.
            "dangling-symlink-target" => {
                b = b.step(&["@symlink", "/nowhere/dir", "{bundle}/rootfs/mnt/link"])
            }
            // The directory a tmpfs covers is private: its mode goes to the tmpfs.
            "tmpfs-mode-inherited" => b = b.step(&["@chmod", "700", "{bundle}/rootfs/mnt/x"]),
            _ => {}
        }
        all.push(
            b.sh(probe)
                .patch(json!({"mounts": mounts_plus(extra.clone())}))
                .run_text()
                .done(),
        );
    }
    all.push(case("mounts/default-layout").sh(MOUNTS).run_text().done());
    all.push(
        case("mounts/dev-readonly-with-devpts")
            .sh("grep -E ' /dev(/pts)? ' /proc/self/mountinfo | awk '{print $5,$6}'")
            .patch(json!({"mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "ro"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}]}))
            .run_text()
            .done(),
    );
    all.push(
        case("mounts/symlinked-proc")
            .sh("true")
            .step(&["@symlink", "tmp", "{bundle}/rootfs/proc"])
            .run_text()
            .done(),
    );
    all.push(
        case("rootfs/readonly-false")
            .sh("touch /x && echo writable; grep ' / / ' /proc/self/mountinfo | awk '{print $6}'")
            .patch(json!({"root": {"readonly": false}}))
            .run_text()
            .done(),
    );
    all.push(
        case("rootfs/propagation-shared")
            .sh("grep ' / / ' /proc/self/mountinfo | awk '{print $7}' | cut -d: -f1")
            .patch(json!({"linux": {"rootfsPropagation": "shared"}}))
            .run_text()
            .done(),
    );
    all.push(
        case("rootfs/propagation-bad")
            .sh("true")
            .patch(json!({"linux": {"rootfsPropagation": "sideways"}}))
            .run_text()
            .done(),
    );
}

/// Cgroup files read inside the container (v1, as this host has them).
const CG: &str = "for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
    memory/memory.soft_limit_in_bytes memory/memory.swappiness pids/pids.max cpu/cpu.shares \
    cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus cpuset/cpuset.mems \
    blkio/blkio.weight; do echo \"$f $(cat /sys/fs/cgroup/$f 2>&1)\"; done";

pub fn cgroup_cases(all: &mut Vec<Case>) {
    let resources: &[(&str, Value)] = &[
        ("none", json!({})),
        ("memory-limit", json!({"memory": {"limit": 67108864}})),
        (
            "memory-limit-swap",
            json!({"memory": {"limit": 67108864, "swap": 134217728}}),
        ),
        (
            "memory-swap-unlimited",
            json!({"memory": {"limit": 67108864, "swap": -1}}),
        ),
        ("memory-unlimited", json!({"memory": {"limit": -1}})),
        (
            "memory-reservation",
            json!({"memory": {"reservation": 33554432}}),
        ),
        ("memory-swappiness", json!({"memory": {"swappiness": 10}})),
        (
            "memory-limit-below-usage",
            json!({"memory": {"limit": 4096}}),
        ),
        ("pids-limit", json!({"pids": {"limit": 20}})),
        ("pids-limit-zero", json!({"pids": {"limit": 0}})),
        ("pids-limit-minus-one", json!({"pids": {"limit": -1}})),
        ("cpu-shares", json!({"cpu": {"shares": 512}})),
        (
            "cpu-quota",
            json!({"cpu": {"quota": 50000, "period": 100000}}),
        ),
        ("cpu-quota-only", json!({"cpu": {"quota": 50000}})),
        ("cpu-period-only", json!({"cpu": {"period": 50000}})),
        ("cpu-quota-minus-one", json!({"cpu": {"quota": -1}})),
        ("cpuset", json!({"cpu": {"cpus": "0", "mems": "0"}})),
        ("cpuset-bad", json!({"cpu": {"cpus": "99"}})),
        ("blkio-weight", json!({"blockIO": {"weight": 300}})),
        ("blkio-weight-bad", json!({"blockIO": {"weight": 5}})),
        (
            "unified-on-v1",
            json!({"unified": {"memory.max": "1000000"}}),
        ),
    ];
    for (name, r) in resources {
        all.push(
            case(&format!("cgroups/{name}"))
                .sh(CG)
                .patch(json!({"linux": {"resources": r}}))
                .run_text()
                .done(),
        );
    }
    all.push(
        case("cgroups/layout")
            .sh("ls /sys/fs/cgroup; ls /sys/fs/cgroup/memory | head -5")
            .run_text()
            .done(),
    );
    all.push(
        case("cgroups/cgroupns")
            .sh("cat /proc/self/cgroup | sort")
            .patch(
                json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"},
                {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]}}),
            )
            .run_text()
            .done(),
    );
    all.push(
        case("cgroups/devices")
            .sh("cat /sys/fs/cgroup/devices/devices.list; head -c1 /dev/null && echo null-ok")
            .patch(
                json!({"linux": {"resources": {"devices": [{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}}}),
            )
            .run_text()
            .done(),
    );
}

/// A hook command that appends its name and what it sees to {bundle}/hooks.log.
fn hook(name: &str, exit: i32) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c",
        format!("echo {name} $(pwd) >> {{bundle}}/hooks.log; exit {exit}")]})
}

pub fn hook_cases(all: &mut Vec<Case>) {
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ];
    for failing in kinds {
        let mut hooks = serde_json::Map::new();
        for k in kinds {
            let code = if k == failing { 3 } else { 0 };
            hooks.insert(
                k.to_string(),
                json!([hook(&format!("{k}-1"), code), hook(&format!("{k}-2"), 0)]),
            );
        }
        all.push(
            case(&format!("hooks/{failing}-fails"))
                .sh("echo in-container")
                .patch(json!({"hooks": hooks}))
                .text(&run())
                .warn("hook")
                .text(&["@cat", "{bundle}/hooks.log"])
                .done(),
        );
        all.push(
            case(&format!("hooks/{failing}-fails-lifecycle"))
                .sh("sleep 10")
                .patch(json!({"hooks": hooks}))
                .step(&["create", "--bundle", "{bundle}", "{id}"])
                .step(&["start", "{id}"])
                .warn("hook")
                .step(&["kill", "{id}", "KILL"])
                .step(&["@wait", "stopped"])
                .step(&["delete", "{id}"])
                .warn("hook")
                .text(&["@cat", "{bundle}/hooks.log"])
                .done(),
        );
    }
    all.push(
        case("hooks/timeout")
            .sh("true")
            .patch(json!({"hooks": {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}}))
            .run_text()
            .done(),
    );
    all.push(
        case("hooks/missing-binary")
            .sh("true")
            .patch(json!({"hooks": {"prestart": [{"path": "/no/such/hook"}]}}))
            .run_text()
            .done(),
    );
    all.push(
        case("hooks/state-on-stdin")
            .sh("true")
            .patch(
                json!({"hooks": {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c",
                "tr ',' '\\n' | grep -E 'ociVersion|status' | sort >> {bundle}/hooks.log"]}]}}),
            )
            .run_text()
            .text(&["@cat", "{bundle}/hooks.log"])
            .done(),
    );
    all.push(
        case("hooks/env-and-fds")
            .sh("true")
            .patch(json!({"hooks": {"prestart": [{"path": "/bin/sh", "env": ["X=1"], "args": ["sh", "-c",
                "env | sort >> {bundle}/hooks.log; ls /proc/self/fd >> {bundle}/hooks.log"]}]}}))
            .run_text()
            .text(&["@cat", "{bundle}/hooks.log"])
            .done(),
    );
    all.push(
        case("hooks/start-container-env")
            .sh("cat /hooklog")
            .patch(
                json!({"root": {"readonly": false}, "process": {"env": [PATH, "FROM_PROCESS=1"]},
                "hooks": {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
                "env | sort > /hooklog; ls /proc/self/fd >> /hooklog"]}]}}),
            )
            .run_text()
            .done(),
    );
}

pub fn bad_input_cases(all: &mut Vec<Case>) {
    let raws: &[(&str, &str)] = &[
        ("malformed-json", "{\"ociVersion\": "),
        ("empty-file", ""),
        ("not-an-object", "[]"),
        ("process-wrong-type", "{\"ociVersion\":\"1.0.2\",\"process\":\"x\",\"root\":{\"path\":\"rootfs\"}}"),
        ("uid-negative", "{\"ociVersion\":\"1.0.2\",\"process\":{\"user\":{\"uid\":-1,\"gid\":0},\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}"),
        ("uid-string", "{\"ociVersion\":\"1.0.2\",\"process\":{\"user\":{\"uid\":\"0\",\"gid\":0},\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}"),
        ("minimal", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}"),
        ("no-root", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"}}"),
        ("no-process", "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"}}"),
        ("key-case-insensitive", "{\"ociVersion\":\"1.0.2\",\"Process\":{\"Args\":[\"sh\",\"-c\",\"echo $X\"],\"Cwd\":\"/\",\"Env\":[\"X=case\"]},\"Root\":{\"Path\":\"rootfs\"}}"),
        ("unknown-field", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"},\"nosuch\":1}"),
        ("duplicate-key", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"false\"],\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}"),
        ("trailing-garbage", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}} x"),
        ("no-oci-version", "{\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}"),
        ("oci-version-2", "{\"ociVersion\":\"2.0.0\",\"process\":{\"args\":[\"true\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}"),
        ("null-values", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"true\"],\"cwd\":\"/\",\"env\":null,\"user\":null},\"root\":{\"path\":\"rootfs\"},\"mounts\":null,\"linux\":null}"),
    ];
    for (name, raw) in raws {
        all.push(case(&format!("bad/{name}")).raw(raw).run_text().done());
    }
    let patches: &[(&str, Value)] = &[
        (
            "rootfs-missing",
            json!({"root": {"path": "no-such-rootfs"}}),
        ),
        (
            "rootfs-absolute",
            json!({"root": {"path": "{bundle}/rootfs"}}),
        ),
        (
            "namespace-unknown",
            json!({"linux": {"namespaces": [{"type": "nosuch"}]}}),
        ),
        (
            "namespace-duplicate",
            json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}, {"type": "mount"}]}}),
        ),
        (
            "namespace-path-missing",
            json!({"linux": {"namespaces": [{"type": "network", "path": "/no/such/ns"}, {"type": "mount"}]}}),
        ),
        (
            "uts-without-namespace",
            json!({"hostname": "h", "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}),
        ),
        (
            "no-mount-namespace",
            json!({"linux": {"namespaces": [{"type": "pid"}]}}),
        ),
        (
            "mount-no-destination",
            json!({"mounts": [{"type": "tmpfs", "source": "tmpfs"}]}),
        ),
        (
            "mount-destination-dotdot",
            json!({"mounts": [{"destination": "/../../mnt", "type": "tmpfs", "source": "tmpfs"}]}),
        ),
        (
            "device-node",
            json!({"linux": {"devices": [{"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]}}),
        ),
        (
            "device-bad-type",
            json!({"linux": {"devices": [{"path": "/dev/xnull", "type": "q", "major": 1, "minor": 3}]}}),
        ),
        (
            "uid-mappings-without-userns",
            json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}),
        ),
        (
            "seccomp-unknown-syscall",
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["recv", "send", "nosuch_call"], "action": "SCMP_ACT_ERRNO"}]}}}),
        ),
        (
            "seccomp-bad-action",
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOPE"}}}),
        ),
        (
            "seccomp-notify-no-socket",
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}}}),
        ),
        (
            "seccomp-notify-write",
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "{bundle}/no-agent.sock",
                "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}}}),
        ),
        (
            "seccomp-errno",
            json!({"process": {"args": ["sh", "-c", "mkdir /tmp/x; echo $?"]},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}}}),
        ),
        (
            "time-offsets-without-timens",
            json!({"linux": {"timeOffsets": {"monotonic": {"secs": 10}}}}),
        ),
        ("intel-rdt", json!({"linux": {"intelRdt": {"closID": "x"}}})),
        ("annotations-only", json!({"annotations": {"a": "b"}})),
    ];
    for (name, p) in patches {
        let mut b = case(&format!("bad/{name}")).patch(p.clone()).run_text();
        if *name == "seccomp-notify-write" {
            b = b.phrase("SCMP_ACT_NOTIFY cannot be used for the write syscall");
        }
        all.push(b.done());
    }
    for (name, id) in [
        ("id-slash", "a/b"),
        ("id-dotdot", ".."),
        ("id-empty", ""),
        ("id-space", "a b"),
        ("id-long", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("id-dot-start", ".hidden"),
        ("id-plus", "a+b:c@d"),
    ] {
        all.push(
            case(&format!("bad/{name}"))
                .step(&["run", "--bundle", "{bundle}", id])
                .done(),
        );
    }
    all.push(
        case("bad/bundle-missing")
            .step(&["run", "--bundle", "/no/such/bundle", "{id}"])
            .done(),
    );
}
