//! The container process: args, env, cwd, user, umask, capabilities, rlimits,
//! noNewPrivileges, oomScoreAdj, terminal, preserved fds, LISTEN_FDS, no fd leaks.

use std::fs;
use std::os::fd::AsRawFd;
use std::time::Duration;

use integration::*;

fn inside(edit: impl FnOnce(&mut Value), script: &str) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::sh(script);
    b.edit(edit);
    let id = rt.id();
    let o = rt.run(&b, &id);
    rt.exec(&["delete", "--force", &id]);
    assert!(o.ok(), "container failed: {o}");
    o.stdout
}

fn status_line(status: &str, key: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} missing: {status}"))
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .to_string()
}

#[test]
fn args_exact() {
    let rt = Runtime::new();
    let b = Bundle::new(&["echo", "one", "two words", "  three", "", "*"]);
    assert_eq!(rt.output(&b), "one two words   three  *\n");
}

#[test]
fn env_exact() {
    let out = inside(
        |c| c["process"]["env"] = json!(["PATH=/bin", "A=1", "B=with space", "C=x=y", "EMPTY="]),
        "env | grep -v '^HOME=' | grep -v '^PWD=' | grep -v '^SHLVL=' | sort",
    );
    assert_eq!(out, "A=1\nB=with space\nC=x=y\nEMPTY=\nPATH=/bin\n");
}

#[test]
fn cwd() {
    let out = inside(|c| c["process"]["cwd"] = json!("/root"), "pwd");
    assert_eq!(out, "/root\n");
    // a cwd that does not exist yet is created (runc does this too)
    let out = inside(|c| c["process"]["cwd"] = json!("/tmp/made/here"), "pwd");
    assert_eq!(out, "/tmp/made/here\n");
}

#[test]
fn cwd_relative_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["pwd"]);
    b.edit(|c| c["process"]["cwd"] = json!("tmp"));
    let id = rt.id();
    rt.run(&b, &id).expect_err().expect_msg("cwd");
    rt.exec(&["delete", "--force", &id]);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn cwd_escaping_root_refused() {
    if skip_for_runc("runc 1.1.5 resolves /.. to / and accepts it") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new(&["pwd"]);
    b.edit(|c| c["process"]["cwd"] = json!("/../../etc"));
    let id = rt.id();
    rt.run(&b, &id).expect_err().expect_msg("cwd");
    rt.exec(&["delete", "--force", &id]);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn user_uid_gid_additional_gids() {
    let out = inside(
        |c| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]})
        },
        "id; cat /proc/self/status",
    );
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("uid=1000 gid=1001 groups="), "{first}");
    assert_eq!(status_line(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_line(&out, "Gid"), "1001\t1001\t1001\t1001");
    let mut groups: Vec<&str> = status_line(&out, "Groups")
        .leak()
        .split_whitespace()
        .collect();
    groups.sort();
    assert_eq!(groups, ["2000", "2001"]);
}

#[test]
fn umask() {
    let out = inside(
        |c| {
            c["process"]["user"]["umask"] = json!(0o027);
            c["root"]["readonly"] = json!(false);
        },
        "umask; touch /tmp/f; stat -c %a /tmp/f",
    );
    assert_eq!(out, "0027\n640\n");
    // default is 0022
    let out = inside(|_| {}, "umask");
    assert_eq!(out, "0022\n");
}

fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | (1u64 << c)))
}

const CHOWN: u32 = 0;
const KILL: u32 = 5;
const NET_BIND: u32 = 10;
const SYS_ADMIN: u32 = 21;

fn cap_config(c: &mut Value) {
    c["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_KILL"]
    });
}

#[test]
fn capabilities_non_root() {
    // Non-root, no file caps: after exec only the ambient set survives in prm/eff.
    let out = inside(
        |c| {
            cap_config(c);
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        },
        "cat /proc/self/status",
    );
    assert_eq!(status_line(&out, "CapInh"), mask(&[KILL, NET_BIND]));
    assert_eq!(status_line(&out, "CapPrm"), mask(&[KILL]));
    assert_eq!(status_line(&out, "CapEff"), mask(&[KILL]));
    assert_eq!(
        status_line(&out, "CapBnd"),
        mask(&[CHOWN, KILL, NET_BIND, SYS_ADMIN])
    );
    assert_eq!(status_line(&out, "CapAmb"), mask(&[KILL]));
}

#[test]
fn capabilities_root() {
    // Root: exec gives root inheritable|bounding, but noNewPrivileges (on in this config)
    // caps that at the permitted set held before exec; effective = permitted.
    let out = inside(cap_config, "cat /proc/self/status");
    assert_eq!(status_line(&out, "CapInh"), mask(&[KILL, NET_BIND]));
    assert_eq!(
        status_line(&out, "CapBnd"),
        mask(&[CHOWN, KILL, NET_BIND, SYS_ADMIN])
    );
    assert_eq!(status_line(&out, "CapAmb"), mask(&[KILL]));
    let prm = status_line(&out, "CapPrm");
    assert_eq!(prm, mask(&[CHOWN, KILL, NET_BIND]));
    assert_eq!(status_line(&out, "CapEff"), prm);
}

#[test]
fn capabilities_default_config() {
    let out = inside(
        |c| c["process"]["user"] = json!({"uid": 0, "gid": 0}),
        "cat /proc/self/status",
    );
    // runc spec's default: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10) everywhere but
    // inheritable; the kernel cannot raise an ambient cap that is not inheritable, so the
    // ambient set stays empty (and that is not an error).
    let want = mask(&[5, 10, 29]);
    assert_eq!(status_line(&out, "CapBnd"), want);
    assert_eq!(status_line(&out, "CapEff"), want);
    assert_eq!(status_line(&out, "CapPrm"), want);
    assert_eq!(status_line(&out, "CapAmb"), mask(&[]));
    assert_eq!(status_line(&out, "CapInh"), mask(&[]));
}

#[test]
fn rlimits() {
    let out = inside(
        |c| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}
            ])
        },
        "cat /proc/self/limits; ulimit -n",
    );
    let line = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"))[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(line("Max open files"), ["1000", "2000", "files"]);
    assert_eq!(line("Max core file size"), ["0", "4096", "bytes"]);
    assert_eq!(out.lines().last(), Some("1000"));
}

#[test]
fn no_new_privileges() {
    let out = inside(
        |c| c["process"]["noNewPrivileges"] = json!(true),
        "cat /proc/self/status",
    );
    assert_eq!(status_line(&out, "NoNewPrivs"), "1");
    let out = inside(
        |c| c["process"]["noNewPrivileges"] = json!(false),
        "cat /proc/self/status",
    );
    assert_eq!(status_line(&out, "NoNewPrivs"), "0");
}

#[test]
fn oom_score_adj() {
    // positive only: this sandbox refuses negative values (no CAP_SYS_RESOURCE)
    let out = inside(
        |c| c["process"]["oomScoreAdj"] = json!(500),
        "cat /proc/self/oom_score_adj",
    );
    assert_eq!(out, "500\n");
}

#[test]
fn terminal_console_socket() {
    let rt = Runtime::new();
    let mut b = Bundle::sh("tty; echo hello-tty; stty size");
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    });
    let (sock, h) = fd_socket(&rt, "console.sock");
    let id = rt.id();
    rt.exec(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .expect_ok();
    let master = h
        .join()
        .unwrap()
        .expect("no pty master received on the console socket");
    // the fd is a pty master
    let link = fs::read_link(format!("/proc/self/fd/{}", master.as_raw_fd())).unwrap();
    assert!(link.to_string_lossy().contains("ptmx"), "{link:?}");
    rt.exec(&["start", &id]).expect_ok();
    let out = read_pty(&master, "33 111", Duration::from_secs(10));
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.first() == Some(&"/dev/pts/0") || lines.first() == Some(&"/dev/console"),
        "{out:?}"
    );
    assert_eq!(&lines[1..], ["hello-tty", "33 111"], "{out:?}");
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn preserve_fds() {
    let rt = Runtime::new();
    let b = Bundle::sh("cat <&3; ls /proc/1/fd; true");
    let f = rt.work().join("preserved");
    fs::write(&f, "preserved-content\n").unwrap();
    let file = fs::File::open(&f).unwrap();
    let id = rt.id();
    let o = rt
        .cmd(&["run", "--preserve-fds", "1", "--bundle", &b.path_str(), &id])
        .fd(file.as_raw_fd(), 3)
        .run()
        .expect_ok();
    let mut l = o.stdout.lines();
    assert_eq!(l.next(), Some("preserved-content"), "{o}");
    let fds: Vec<&str> = l.collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "fds of the container's init: {o}"
    );
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn listen_fds_passthrough() {
    let rt = Runtime::new();
    let b = Bundle::sh("echo $LISTEN_FDS $LISTEN_PID; cat <&3");
    let f = rt.work().join("sock-standin");
    fs::write(&f, "listen-fd-3\n").unwrap();
    let file = fs::File::open(&f).unwrap();
    let id = rt.id();
    let o = rt
        .cmd(&["run", "--bundle", &b.path_str(), &id])
        .env("LISTEN_FDS", "1")
        .fd(file.as_raw_fd(), 3)
        .listen_pid_self()
        .run()
        .expect_ok();
    assert_eq!(o.stdout, "1 1\nlisten-fd-3\n");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn no_fd_leaks() {
    // pid 1 is the shell; `ls` lists the shell's fds (its own dir fd is not among them)
    let out = inside(|_| {}, "ls /proc/1/fd; true");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "1", "2"]);
    // also through create/start (the init waited in between)
    let rt = Runtime::new();
    let b = Bundle::sh("ls /proc/1/fd; true");
    let id = rt.id();
    let out_f = rt.work().join("out");
    rt.create_to(&b, &id, &out_f);
    rt.exec(&["start", &id]).expect_ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_eq!(fs::read_to_string(&out_f).unwrap(), "0\n1\n2\n");
}

#[test]
fn exec_not_found_fails_create() {
    let rt = Runtime::new();
    let b = Bundle::new(&["/no/such/binary"]);
    let id = rt.id();
    let o = rt
        .exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err();
    o.expect_msg("no such file or directory");
    rt.exec(&["delete", "--force", &id]);
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn scheduler_io_priority_personality_affinity_memory_policy() {
    if skip_for_runc("runc 1.1.5 predates these fields") {
        return;
    }
    let out = inside(
        |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 3});
            c["process"]["execCPUAffinity"] = json!({"final": "0"});
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
        },
        "grep -E '^policy' /proc/self/sched | tr -s ' '; cut -d' ' -f19 /proc/self/stat; \
         ionice -p $$; cat /proc/self/personality; grep Cpus_allowed_list /proc/self/status; \
         grep -c bind:0 /proc/self/numa_maps",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "policy : 3", "{out}");
    assert_eq!(lines[1], "5", "nice: {out}");
    assert_eq!(lines[2], "best-effort: prio 3", "{out}");
    assert_eq!(lines[3], "00000008", "{out}");
    // execCPUAffinity is for exec only (runtime-spec: not the init's): every online CPU.
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert_eq!(
        lines[4],
        format!("Cpus_allowed_list:\t{}", online.trim()),
        "{out}"
    );
    assert!(
        lines[5].parse::<u32>().unwrap() > 0,
        "numa_maps shows no bind:0 mapping: {out}"
    );
}

/// On a host without AppArmor or SELinux (this one; the LSM guests of `scripts/vm-lane
/// lsm-test` have them, integration/tests/lsm.rs), a profile or label is refused before
/// anything is made: for create and for exec.
#[test]
fn lsm_settings_the_host_lacks_are_refused() {
    if skip_for_runc("runc ignores a profile when AppArmor is off") {
        return;
    }
    let apparmor = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let rt = Runtime::new();
    let label = "system_u:system_r:container_t:s0";
    for (section, field, value, lsm, host_has) in [
        (
            "process",
            "apparmorProfile",
            "docker-default",
            "AppArmor",
            apparmor,
        ),
        ("process", "selinuxLabel", label, "SELinux", selinux),
        ("linux", "mountLabel", label, "SELinux", selinux),
    ] {
        if host_has {
            eprintln!("this host has {lsm}: {section}.{field} is applied, not refused");
            continue;
        }
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| c[section][field] = json!(value));
        let id = rt.id();
        rt.exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg(&format!("{section}.{field}"))
            .expect_msg(value)
            .expect_msg(&format!("{lsm} is not enabled on this host"));
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
    // exec's flags: the running container is untouched, no process added.
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    for (flag, value, lsm, host_has) in [
        ("--apparmor", "docker-default", "AppArmor", apparmor),
        ("--process-label", label, "SELinux", selinux),
    ] {
        if host_has {
            continue;
        }
        rt.exec(&["exec", flag, value, &id, "true"])
            .expect_err()
            .expect_msg(&format!("{lsm} is not enabled on this host"));
    }
    let ps = rt.exec(&["ps", &id]).expect_ok();
    assert_eq!(ps.stdout.lines().count(), 2, "only the init: {}", ps.stdout);
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

/// runc's environment: the last of duplicate names wins in its place, HOME from the
/// container's /etc/passwd when unset or empty (`/` for a uid it lacks), no PATH invented;
/// entries without '=' or without a name are refused.
#[test]
fn env_prepared_as_runc() {
    let rt = Runtime::new();
    let run_env = |env: Value, uid: u32| {
        let mut b = Bundle::new(&["env"]);
        fs::write(
            b.rootfs().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .unwrap();
        b.edit(|c| {
            c["process"]["env"] = env;
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
        });
        rt.run_new(&b)
    };
    let dup = json!(["PATH=/bin", "A=1", "B=2", "A=3", "HOME="]);
    let o = run_env(dup.clone(), 0).expect_ok();
    assert_eq!(o.stdout, "PATH=/bin\nB=2\nA=3\nHOME=/root\n");
    let o = run_env(dup.clone(), 1000).expect_ok();
    assert_eq!(o.stdout, "PATH=/bin\nB=2\nA=3\nHOME=/home/user\n");
    let o = run_env(dup, 4242).expect_ok();
    assert_eq!(o.stdout, "PATH=/bin\nB=2\nA=3\nHOME=/\n");
    let o = run_env(json!(["PATH=/bin", "HOME=/srv", "X=a\nb"]), 0).expect_ok();
    assert_eq!(o.stdout, "PATH=/bin\nHOME=/srv\nX=a\nb\n");
    run_env(json!(["A=1"]), 0)
        .expect_err()
        .expect_msg("executable file not found in $PATH");
    run_env(json!(["PATH=/bin", "FOO"]), 0)
        .expect_err()
        .expect_msg("invalid environment variable: missing '='");
    run_env(json!(["PATH=/bin", "=x"]), 0)
        .expect_err()
        .expect_msg("invalid environment variable: name cannot be empty");
}

/// config.json read as Go reads it: `process.user` absent is uid 0, keys match in any case,
/// null is absent.
#[test]
fn config_read_as_go_reads_it() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "id -u; id -g; pwd"]);
    b.edit(|c| {
        let p = c["process"].as_object_mut().unwrap();
        p.remove("user");
        let args = p.remove("args").unwrap();
        p.insert("Args".into(), args);
        p.remove("cwd");
        p.insert("CWD".into(), json!("/tmp"));
        p.insert("rlimits".into(), Value::Null);
    });
    assert_eq!(rt.output(&b), "0\n0\n/tmp\n");
}

/// No `process.capabilities`: the process keeps the capabilities the runtime had, as runc
/// leaves them.
#[test]
fn capabilities_absent_keep_the_runtimes() {
    let out = inside(
        |c| {
            c["process"].as_object_mut().unwrap().remove("capabilities");
        },
        "cat /proc/self/status",
    );
    let ours = fs::read_to_string("/proc/self/status").unwrap();
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(status_line(&out, set), status_line(&ours, set), "{set}");
    }
}

/// Names runc does not know (unknown, lowercase, without CAP_) are ignored with one warning;
/// an ambient capability the kernel cannot raise is a warning too.
#[test]
fn capabilities_unknown_names_and_unraisable_ambient_warn() {
    let rt = Runtime::new();
    let mut b = Bundle::sh("cat /proc/self/status");
    b.edit(|c| {
        let names = json!(["CAP_KILL", "CAP_NO_SUCH", "cap_chown", "KILL"]);
        c["process"]["capabilities"] = json!({
            "bounding": names, "permitted": names, "effective": names,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_CHOWN"]
        });
    });
    let o = rt.run_new(&b).expect_ok();
    assert_eq!(status_line(&o.stdout, "CapBnd"), mask(&[KILL]));
    assert_eq!(status_line(&o.stdout, "CapAmb"), mask(&[KILL]));
    o.expect_msg("ignoring unknown or unavailable capabilities: [CAP_NO_SUCH KILL cap_chown]")
        .expect_msg("can't raise ambient capability CAP_CHOWN: operation not permitted");
}

/// An argument list over the kernel's limit: the error names the binary the $PATH lookup
/// found (/bin/echo), not the first directory tried.
#[test]
fn argument_list_too_long_names_the_binary() {
    let rt = Runtime::new();
    let big = "a".repeat(200_000);
    let b = Bundle::new(&["echo", &big]);
    rt.run_new(&b)
        .expect_err()
        .expect_msg("exec /bin/echo: argument list too long");
}
