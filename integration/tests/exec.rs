//! `exec`: a process joins every namespace and the cgroup of a running container, gets its
//! credentials, capabilities and rlimits (or the overrides), and its exit status comes back.
//! Each test reads the values from inside and compares them with the init's.

use std::fs;
use std::os::fd::AsRawFd;
use std::time::Duration;

use integration::*;

/// A running container of `sleep 1000` with `edit` applied; its id and init pid.
fn running(rt: &Runtime, edit: impl FnOnce(&mut Value)) -> (Bundle, String, i64) {
    let mut b = Bundle::new(&["sleep", "1000"]);
    b.edit(edit);
    let id = rt.id();
    rt.exec(&["run", "--detach", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    (b, id, pid)
}

fn done(rt: &Runtime, id: &str, b: &Bundle) {
    rt.exec(&["delete", "--force", id]).expect_ok();
    assert_nothing_remains(rt, id, Some(b.path()));
}

/// `husk exec ID ARGS...`, its output.
fn exec(rt: &Runtime, args: &[&str]) -> Output {
    let mut a = vec!["exec"];
    a.extend_from_slice(args);
    rt.exec(&a)
}

fn ns_links(pid: &str) -> String {
    ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"]
        .iter()
        .map(|n| {
            format!(
                "{n} {}",
                fs::read_link(format!("/proc/{pid}/ns/{n}"))
                    .unwrap()
                    .display()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const NS_SCRIPT: &str = "for n in user mnt pid net ipc uts cgroup time; do echo \"$n $(readlink /proc/self/ns/$n)\"; done";

#[test]
fn output_and_exit_status() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    let o = exec(&rt, &[&id, "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.code(), 7, "{o}");
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{o}");
    let o = exec(&rt, &[&id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.code(), 137, "{o}");
    let o = exec(&rt, &[&id, "true"]);
    assert_eq!(o.code(), 0, "{o}");
    exec(&rt, &[&id, "/no/such/binary"])
        .expect_err()
        .expect_msg("/no/such/binary");
    done(&rt, &id, &b);
}

#[test]
fn joins_every_namespace_of_the_init() {
    if skip_for_runc("runc 1.1.5 has no time namespace") {
        return;
    }
    let rt = Runtime::new();
    // A user namespace and a time namespace too, the two that are easiest to get wrong.
    let (b, id, pid) = running(&rt, |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "user"}));
        ns.push(json!({"type": "time"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400, "nanosecs": 0}});
    });
    let o = exec(&rt, &[&id, "sh", "-c", NS_SCRIPT]).expect_ok();
    assert_eq!(o.stdout.trim(), ns_links(&pid.to_string()), "{o}");
    let o = exec(&rt, &[&id, "cat", "/proc/self/uid_map"]).expect_ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    // The boottime offset: uptime inside is a day ahead of ours.
    let o = exec(&rt, &[&id, "cat", "/proc/uptime"]).expect_ok();
    let inside = uptime_of(&o.stdout);
    let ours = host_uptime();
    assert!(inside - ours > 86000.0, "inside {inside}, ours {ours}");
    // pid 1 of the container's pid namespace is the init.
    let o = exec(&rt, &[&id, "cat", "/proc/1/cmdline"]).expect_ok();
    assert!(o.stdout.starts_with("sleep"), "{o}");
    done(&rt, &id, &b);
}

#[test]
fn lands_in_the_container_cgroup() {
    let rt = Runtime::new();
    let (b, id, pid) = running(&rt, |_| {});
    // Seen from the host: the exec'd process's cgroups are the init's, in every hierarchy.
    let pf = rt.work().join("cg.pid");
    exec(
        &rt,
        &[
            "--detach",
            "--pid-file",
            &pf.to_string_lossy(),
            &id,
            "sleep",
            "30",
        ],
    )
    .expect_ok();
    let epid = fs::read_to_string(&pf).unwrap().trim().to_string();
    let init = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let theirs = fs::read_to_string(format!("/proc/{epid}/cgroup")).unwrap();
    assert_eq!(theirs, init);
    // And seen inside (through the cgroup namespace), the same as pid 1's.
    let o = exec(&rt, &[&id, "cat", "/proc/self/cgroup"]).expect_ok();
    let inside_init = exec(&rt, &[&id, "cat", "/proc/1/cgroup"]).expect_ok();
    assert_eq!(o.stdout, inside_init.stdout, "exec vs init, seen inside");
    done(&rt, &id, &b);
}

#[test]
fn caps_user_env_cwd_rlimits_nnp() {
    let rt = Runtime::new();
    let (b, id, pid) = running(&rt, |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]);
        // Off in the container, so that --no-new-privs visibly turns it on.
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |s: &str, k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap()
    };
    let o = exec(&rt, &[&id, "cat", "/proc/self/status"]).expect_ok();
    assert_eq!(field(&o.stdout, "CapEff:"), field(&status, "CapEff:"));
    assert_eq!(field(&o.stdout, "CapBnd:"), field(&status, "CapBnd:"));
    assert_eq!(
        field(&o.stdout, "NoNewPrivs:"),
        field(&status, "NoNewPrivs:")
    );
    // --cap adds CAP_SYS_ADMIN (bit 21), --no-new-privs sets the flag.
    let o = exec(
        &rt,
        &[
            "--cap",
            "CAP_SYS_ADMIN",
            "--no-new-privs",
            &id,
            "cat",
            "/proc/self/status",
        ],
    )
    .expect_ok();
    let eff = u64::from_str_radix(&field(&o.stdout, "CapEff:"), 16).unwrap();
    assert_ne!(eff & (1 << 21), 0, "{o}");
    assert_eq!(field(&o.stdout, "NoNewPrivs:"), "1");
    let o = exec(&rt, &["-u", "1000:1000", "-g", "5", "-g", "6", &id, "id"]).expect_ok();
    assert_eq!(o.stdout.trim(), "uid=1000 gid=1000 groups=5,6");
    let o = exec(
        &rt,
        &[
            "--env",
            "FOO=bar",
            "--env",
            "PATH=/bin",
            "--cwd",
            "/tmp",
            &id,
            "sh",
            "-c",
            "echo $FOO $PATH $(pwd)",
        ],
    )
    .expect_ok();
    assert_eq!(o.stdout.trim(), "bar /bin /tmp");
    let o = exec(&rt, &[&id, "grep", "Max open files", "/proc/self/limits"]).expect_ok();
    if skip_for_runc("runc 1.1.5's exec gives RLIMIT_NOFILE soft = hard (its Go runtime raised it)")
    {
        return done(&rt, &id, &b);
    }
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["Max", "open", "files", "777", "888", "files"]
    );
    done(&rt, &id, &b);
}

#[test]
fn process_file_and_no_leaked_fds() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    let p = rt.work().join("process.json");
    fs::write(
        &p,
        json!({"args": ["sh", "-c", "echo $X; ls /proc/self/fd"], "env": ["X=from-file", "PATH=/bin"],
               "cwd": "/", "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .unwrap();
    let o = exec(&rt, &["--process", &p.to_string_lossy(), &id]).expect_ok();
    let mut l = o.stdout.lines();
    assert_eq!(l.next(), Some("from-file"));
    // 0-2 and ls's own directory fd: nothing of husk's.
    assert_eq!(l.collect::<Vec<_>>(), ["0", "1", "2", "3"], "{o}");
    fs::write(&p, r#"{"args": "not a list"}"#).unwrap();
    exec(&rt, &["-p", &p.to_string_lossy(), &id])
        .expect_err()
        .expect_msg("args");
    done(&rt, &id, &b);
}

#[test]
fn preserve_fds_passes_one() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    let f = rt.work().join("preserved");
    fs::write(&f, "preserved-content\n").unwrap();
    let file = fs::File::open(&f).unwrap();
    let o = rt
        .cmd(&["exec", "--preserve-fds", "1", &id, "sh", "-c", "cat <&3"])
        .fd(file.as_raw_fd(), 3)
        .run()
        .expect_ok();
    assert_eq!(o.stdout, "preserved-content\n");
    done(&rt, &id, &b);
}

#[test]
fn detach_with_pid_file() {
    let rt = Runtime::new();
    let (b, id, pid) = running(&rt, |_| {});
    let pf = rt.work().join("exec.pid");
    exec(
        &rt,
        &[
            "--detach",
            "--pid-file",
            &pf.to_string_lossy(),
            &id,
            "sleep",
            "77",
        ],
    )
    .expect_ok();
    let epid: i64 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    let cmd = fs::read_to_string(format!("/proc/{epid}/cmdline")).unwrap();
    assert_eq!(cmd, "sleep\u{0}77\u{0}");
    assert_eq!(
        fs::read_link(format!("/proc/{epid}/ns/pid")).unwrap(),
        fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap()
    );
    done(&rt, &id, &b);
    assert!(
        wait_pid_gone(epid, Duration::from_secs(10)),
        "exec'd sleep survived delete"
    );
}

#[test]
fn tty_with_console_socket() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    let (sock, h) = fd_socket(&rt, "exec-console.sock");
    exec(
        &rt,
        &[
            "--tty",
            "--detach",
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
            "sh",
            "-c",
            "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty; sleep 1",
        ],
    )
    .expect_ok();
    let master = h
        .join()
        .unwrap()
        .expect("no pty master on the console socket");
    let out = read_pty(&master, "/dev/pts/", Duration::from_secs(10));
    assert!(out.contains("is-a-tty"), "{out:?}");
    // --tty with --detach and no socket is refused, as runc does.
    exec(&rt, &["--tty", "--detach", &id, "true"])
        .expect_err()
        .expect_msg("console socket");
    done(&rt, &id, &b);
}

/// The pty of `exec -t --user N` belongs to N, as runc makes it (the process can use it).
#[test]
fn tty_belongs_to_the_exec_user() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    let (sock, h) = fd_socket(&rt, "exec-console-user.sock");
    exec(
        &rt,
        &[
            "--tty",
            "--detach",
            "--user",
            "1000:1000",
            "--console-socket",
            &sock.to_string_lossy(),
            &id,
            "sh",
            "-c",
            "stat -c 'owner=%u:%g' $(tty); sleep 1",
        ],
    )
    .expect_ok();
    let master = h.join().unwrap().expect("no pty master");
    let out = read_pty(&master, "owner=1000:", Duration::from_secs(10));
    assert!(out.contains("owner=1000:"), "{out:?}");
    done(&rt, &id, &b);
}

#[test]
fn stopped_and_paused_containers() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    rt.exec(&["pause", &id]).expect_ok();
    exec(&rt, &[&id, "true"]).expect_err().expect_msg("paused");
    rt.exec(&["resume", &id]).expect_ok();
    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    exec(&rt, &[&id, "true"])
        .expect_err()
        .expect_msg("cannot exec in a stopped container");
    exec(&rt, &["nosuch-container", "true"])
        .expect_err()
        .expect_msg("does not exist");
    done(&rt, &id, &b);
}

#[test]
fn sub_cgroup() {
    if is_pure_v2() || skip_for_runc("runc 1.1.5 has no exec --cgroup") {
        return;
    }
    let rt = Runtime::new();
    let (b, id, pid) = running(&rt, |_| {});
    // On this (v1/hybrid) host: a sub-cgroup in the memory hierarchy only.
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mem = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            c.split(',').any(|x| x == "memory").then(|| p.to_string())
        })
        .unwrap();
    let sub = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(mem.trim_start_matches('/'))
        .join("probe");
    fs::create_dir(&sub).unwrap();
    let pf = rt.work().join("sub.pid");
    exec(
        &rt,
        &[
            "--cgroup",
            "memory:probe",
            "--detach",
            "--pid-file",
            &pf.to_string_lossy(),
            &id,
            "sleep",
            "50",
        ],
    )
    .expect_ok();
    let epid = fs::read_to_string(&pf).unwrap().trim().to_string();
    let procs = fs::read_to_string(sub.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l == epid),
        "{epid} not in {}: {procs}",
        sub.display()
    );
    exec(&rt, &["--cgroup", "memory:nosuch", &id, "true"])
        .expect_err()
        .expect_msg("does not exist");
    exec(&rt, &["--cgroup", "../escape", &id, "true"])
        .expect_err()
        .expect_msg("without '..'");
    done(&rt, &id, &b);
}

#[test]
fn exec_storm_leaves_nothing() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    for i in 0..200 {
        let o = exec(&rt, &[&id, "true"]);
        assert_eq!(o.code(), 0, "exec {i}: {o}");
    }
    let o = rt.exec(&["ps", "--format", "json", &id]).expect_ok();
    let pids: Vec<i64> = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(pids.len(), 1, "only the init remains: {pids:?}");
    done(&rt, &id, &b);
}

/// The pid a pidfd refers to, from /proc/self/fdinfo.
fn pidfd_pid(fd: &std::os::fd::OwnedFd) -> i64 {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn pidfd_socket_for_create_and_exec() {
    if skip_for_runc("runc 1.1.5 has no --pidfd-socket (runc 1.2 does)") {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = rt.id();
    let (sock, h) = fd_socket(&rt, "pidfd-create.sock");
    rt.exec(&[
        "create",
        "--pidfd-socket",
        &sock.to_string_lossy(),
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .expect_ok();
    let fd = h.join().unwrap().expect("no pidfd received");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pidfd_pid(&fd), init);
    rt.exec(&["start", &id]).expect_ok();
    let (sock, h) = fd_socket(&rt, "pidfd-exec.sock");
    let pf = rt.work().join("e.pid");
    exec(
        &rt,
        &[
            "--detach",
            "--pid-file",
            &pf.to_string_lossy(),
            "--pidfd-socket",
            &sock.to_string_lossy(),
            &id,
            "sleep",
            "60",
        ],
    )
    .expect_ok();
    let fd = h.join().unwrap().expect("no pidfd received from exec");
    let epid: i64 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert_eq!(pidfd_pid(&fd), epid);
    done(&rt, &id, &b);
}

/// HOME from the container's /etc/passwd for the exec's uid, also when `--env HOME=` empties
/// it; an `--env` entry without '=' refused; unknown `--cap` names ignored with a warning.
#[test]
fn env_home_and_caps_as_runc() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    fs::write(
        b.rootfs().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
    )
    .unwrap();
    let home = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend([id.as_str(), "sh", "-c", "echo $HOME"]);
        exec(&rt, &a).expect_ok().stdout
    };
    assert_eq!(home(&[]), "/root\n");
    assert_eq!(home(&["--user", "1000"]), "/home/user\n");
    assert_eq!(home(&["--user", "4242"]), "/\n");
    assert_eq!(home(&["--env", "HOME="]), "/root\n");
    assert_eq!(home(&["--env", "HOME=/x"]), "/x\n");
    let o = exec(&rt, &["--env", "NOEQ", &id, "true"])
        .expect_err()
        .expect_msg("exec failed")
        .expect_msg("invalid environment variable: missing '='");
    assert_eq!(o.code(), 255, "runc's status for a failed exec: {o}");
    exec(&rt, &["--cap", "CAP_NOPE", &id, "true"])
        .expect_ok()
        .expect_msg("ignoring unknown or unavailable capabilities: [CAP_NOPE]");
    exec(&rt, &["--user", "user", &id, "true"])
        .expect_err()
        .expect_msg("bad uid");
    // A flag value that is not a number is a usage error (1); a negative gid fails the exec.
    let o = exec(&rt, &["-g", "2000,3000", &id, "true"]).expect_msg("invalid value");
    assert_eq!(o.code(), 1, "{o}");
    let o = exec(&rt, &["-g", "-5", &id, "true"]).expect_msg("must be a positive number");
    assert_eq!(o.code(), 255, "{o}");
    done(&rt, &id, &b);
}

/// A process.json read as runc reads it: missing fields are zero (uid 0), keys in any case;
/// then runc's checks of cwd and args.
#[test]
fn process_file_read_as_go_reads_it() {
    let rt = Runtime::new();
    let (b, id, _) = running(&rt, |_| {});
    let run = |json: &str| {
        let p = b.path().join("process.json");
        fs::write(&p, json).unwrap();
        exec(&rt, &["--process", &p.to_string_lossy(), &id])
    };
    let o = run(
        r#"{"Args": ["sh", "-c", "id -u; pwd; echo $HOME; grep CapBnd /proc/self/status"],
        "Cwd": "/tmp", "Env": ["PATH=/bin"], "capabilities": null}"#,
    )
    .expect_ok();
    // Capabilities absent: the container's (runc spec's default set), not the full set.
    assert_eq!(o.stdout, "0\n/tmp\n/root\nCapBnd:\t0000000020000420\n");
    run(r#"{"args": ["true"]}"#)
        .expect_err()
        .expect_msg("Cwd property must not be empty");
    run(r#"{"args": ["true"], "cwd": "tmp"}"#)
        .expect_err()
        .expect_msg("Cwd must be an absolute path");
    run(r#"{"cwd": "/"}"#)
        .expect_err()
        .expect_msg("args must not be empty");
    let o = run(
        r#"{"args": ["grep", "CapBnd", "/proc/self/status"], "cwd": "/",
        "env": ["PATH=/bin"], "capabilities": {"bounding": ["CAP_KILL", "CAP_NOPE"]}}"#,
    )
    .expect_ok()
    .expect_msg("ignoring unknown or unavailable capabilities: [CAP_NOPE]");
    assert_eq!(o.stdout.split_whitespace().nth(1), Some("0000000000000020"));
    done(&rt, &id, &b);
}

/// The exec'd process does not keep the CPU affinity of husk's caller: it gets every CPU its
/// cpuset allows, as runc resets it.
#[test]
fn cpu_affinity_of_the_caller_not_inherited() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("one CPU: nothing to narrow, skipped");
        return;
    }
    let rt = Runtime::new();
    let (b, id, pid) = running(&rt, |_| {});
    let list = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string()
    };
    let init = list(&fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    // Narrowed for this thread only (the husk it starts inherits it) to one of its CPUs.
    // SAFETY: a zeroed cpu_set_t is valid; the calls read and write within it.
    let mut orig: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of_val(&orig);
    assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut orig) }, 0);
    let one = (0..libc::CPU_SETSIZE as usize)
        .rev()
        .find(|&c| unsafe { libc::CPU_ISSET(c, &orig) })
        .unwrap();
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(one, &mut set) };
    assert_eq!(unsafe { libc::sched_setaffinity(0, size, &set) }, 0);
    let narrowed = list(&fs::read_to_string("/proc/thread-self/status").unwrap());
    let o = exec(&rt, &[&id, "cat", "/proc/self/status"]);
    assert_eq!(unsafe { libc::sched_setaffinity(0, size, &orig) }, 0);
    assert_eq!(narrowed, one.to_string());
    assert_eq!(list(&o.expect_ok().stdout), init);
    done(&rt, &id, &b);
    // execCPUAffinity.final applies to exec'd processes, not to the init.
    let (b, id, pid) = running(&rt, |c| {
        c["process"]["execCPUAffinity"] = json!({"final": "0"});
    });
    let init2 = list(&fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(init2, init);
    let o = exec(&rt, &[&id, "cat", "/proc/self/status"]).expect_ok();
    assert_eq!(list(&o.stdout), "0");
    done(&rt, &id, &b);
}

/// The init joins a session keyring named `_ses.ID` (runc's name) and exec's processes join
/// the same one, rather than keep their caller's; in a user namespace too (where exec's
/// process finds it through the others' search bit); with `--no-new-keyring` neither does.
#[test]
fn exec_joins_the_containers_session_keyring() {
    let rt = Runtime::new();
    for (userns, no_new) in [(false, false), (true, false), (false, true)] {
        // The init writes its /proc/keys (unmasked here) where the host can read it.
        let mut b = Bundle::sh("cat /proc/keys > /dev/shm/keys; exec sleep 1000");
        b.edit(|c| c["linux"]["maskedPaths"] = json!([]));
        if userns {
            b.with_userns(300000);
        }
        let id = rt.id();
        let mut args = vec!["run", "-d"];
        if no_new {
            args.push("--no-new-keyring");
        }
        let bundle = b.path_str();
        args.extend(["--bundle", &bundle, &id]);
        rt.exec(&args).expect_ok();
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        let file = format!("/proc/{pid}/root/dev/shm/keys");
        let mut init_keys = String::new();
        for _ in 0..100 {
            init_keys = fs::read_to_string(&file).unwrap_or_default();
            if !init_keys.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let name = format!(" _ses.{id}: ");
        let serial = |keys: &str| {
            keys.lines()
                .find(|l| l.contains(&name))
                .map(|l| l.split_whitespace().next().unwrap().to_string())
        };
        let exec_keys = exec(&rt, &[&id, "cat", "/proc/keys"]).expect_ok().stdout;
        let case = format!("userns {userns}, --no-new-keyring {no_new}");
        if no_new {
            assert_eq!(serial(&init_keys), None, "{case}: {init_keys}");
            assert_eq!(serial(&exec_keys), None, "{case}: {exec_keys}");
        } else {
            let s = serial(&init_keys);
            assert!(s.is_some(), "{case}: the init has no {name}: {init_keys}");
            assert_eq!(serial(&exec_keys), s, "{case}: exec's keys: {exec_keys}");
        }
        done(&rt, &id, &b);
    }
}
