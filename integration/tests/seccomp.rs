//! linux.seccomp observed from inside containers: per-rule and default errno values, argument
//! filters on 64-bit values, KILL_PROCESS, TRAP (caught), LOG (allowed and in the kernel's
//! audit log), ENOSYS for syscalls newer than the profile, NOTIFY answered by an agent at
//! listenerPath, the filter on `exec`'d processes, and bad profiles refused. Exact errno
//! values come from the host's python3 (ctypes), bind-mounted in.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use integration::*;

/// Prints, for each `name(args...)` call, the errno it got (0 on success).
const CALLS: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
for spec in sys.argv[1:]:
    nr, *args = [int(x, 0) for x in spec.split(",")]
    ctypes.set_errno(0)
    r = libc.syscall(nr, *[ctypes.c_ulong(a) for a in args])
    print(ctypes.get_errno() if r == -1 else 0)
"#;

/// The host's python3 to call syscalls from; absent: a skip, a failure under CI=true.
fn python() -> bool {
    !missing_tool("/usr/bin/python3", "python3")
}

fn nr(name: &str) -> u32 {
    seccomp::Arch::X86_64.syscall(name).unwrap()
}

/// A bundle running `args` with the host's /usr, /lib, /lib64 (for python3), a tmpfs /tmp,
/// and `profile` as linux.seccomp.
fn bundle(args: &[&str], profile: Value) -> Bundle {
    let mut b = Bundle::new(args);
    b.with_host_libs().edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        c["linux"]["seccomp"] = profile;
    });
    b
}

/// Runs the python caller over `calls` ("nr,arg,..."): the errno of each.
fn errnos(rt: &Runtime, profile: Value, calls: &[String]) -> Vec<i32> {
    let mut args = vec!["/usr/bin/python3", "-c", CALLS];
    args.extend(calls.iter().map(String::as_str));
    let b = bundle(&args, profile);
    let o = rt.run_new(&b).expect_ok();
    o.stdout
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("{o}")))
        .collect()
}

#[test]
fn errno_values_and_argument_filters() {
    if !python() {
        return;
    }
    let rt = Runtime::new();
    let g = nr("getppid");
    // getppid ignores its arguments; the filter sees them.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
             "args": [{"index": 0, "value": 0xf0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12,
             "args": [{"index": 1, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GT"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 5, "op": "SCMP_CMP_NE"},
                      {"index": 3, "value": 9, "op": "SCMP_CMP_LE"}]},
        ]
    });
    let got = errnos(
        &rt,
        profile,
        &[
            format!("{},0x7ff0000", nr("mkdir")),
            format!("{},0x7ff0000", nr("rmdir")),
            format!("{g},0x35,0,5"),        // masked: 0x35 & 0xf0 == 0x30
            format!("{g},0x45,0,5"),        // masked: no
            format!("{g},0,0x100000001,5"), // > 2^32: the high word decides
            format!("{g},0,0x100000000,5"), // equal: not greater
            format!("{g},0,0xffffffff,5"),  // below 2^32
            format!("{g},0,0,6,9"),         // arg2 != 5 and arg3 <= 9
            format!("{g},0,0,6,10"),        // arg3 > 9: the AND fails
            format!("{g},0,0,5,0"),         // arg2 == 5
        ],
    );
    assert_eq!(got, [42, 1, 11, 0, 12, 0, 0, 13, 0, 0]);
}

#[test]
fn newer_syscalls_get_enosys_older_ones_the_default() {
    if !python() {
        return;
    }
    let rt = Runtime::new();
    // Everything up to close_range (436) allowed but getppid; clone3 (435) is not listed.
    let allow: Vec<&str> = seccomp::Arch::X86_64
        .names()
        .filter(|n| nr(n) <= 436 && !["getppid", "clone3"].contains(n))
        .collect();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
    });
    let got = errnos(
        &rt,
        profile,
        &[
            format!("{}", nr("getppid")),
            format!("{},0,0", nr("clone3")),
            format!("{}", nr("cachestat")),
            "999".into(),
        ],
    );
    // getppid and clone3 are below the newest listed (close_range): the default, EPERM;
    // cachestat (451) and 999 are newer: ENOSYS, so a libc falls back.
    assert_eq!(got, [1, 1, 38, 38]);
}

#[test]
fn kill_trap_and_log() {
    let rt = Runtime::new();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"},
            // RLIMIT_NOFILE (7) only: busybox's start-up reads RLIMIT_STACK.
            {"names": ["prlimit64", "getrlimit"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]},
            {"names": ["symlink", "symlinkat"], "action": "SCMP_ACT_LOG"},
        ]
    });
    let before = dmesg_log_lines();
    let b = bundle(
        &[
            "sh",
            "-c",
            "sh -c 'mkdir /tmp/k'; echo rc=$?; trap 'echo caught-sys' SYS; ulimit -n; \
             echo after; ln -s a /tmp/l && echo ln-ok",
        ],
        profile,
    );
    let o = rt.run_new(&b).expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    // KILL_PROCESS: SIGSYS (31) → 159; TRAP: SIGSYS delivered, caught by the shell.
    assert_eq!(lines[0], "rc=159", "{o}");
    assert!(
        lines.contains(&"caught-sys") && lines.contains(&"after"),
        "{o}"
    );
    // LOG lets the call through and the kernel records it (code 0x7ffc0000).
    assert_eq!(lines.last(), Some(&"ln-ok"), "{o}");
    match (before, dmesg_log_lines()) {
        (Some(b), Some(a)) => assert!(
            a > b,
            "no new audit line with code=0x7ffc0000 for symlink ({b} before, {a} after)"
        ),
        _ => eprintln!("kill_trap_and_log: dmesg unreadable: the LOG line is not checked"),
    }
}

/// Kernel log lines recording a LOG action for symlink(2) (x86_64 88, 266 symlinkat).
fn dmesg_log_lines() -> Option<usize> {
    let o = std::process::Command::new("dmesg").output().ok()?;
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| {
                l.contains("code=0x7ffc0000")
                    && (l.contains(" syscall=88 ") || l.contains(" syscall=266 "))
            })
            .count()
    })
}

/// Every action and flag `husk features` claims, by effect on mkdir (NOTIFY: see below).
#[test]
fn every_claimed_action_and_flag() {
    if skip_for_runc("runc 1.1.5 has no features command") {
        return;
    }
    let rt = Runtime::new();
    let f: Value =
        serde_json::from_str(&rt.cmd_noroot(&["features"]).run().expect_ok().stdout).unwrap();
    let sc = &f["linux"]["seccomp"];
    let run = |action: &str, flags: Value| {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]
        });
        let b = bundle(
            &["sh", "-c", "sh -c 'mkdir /tmp/x' 2>&1; echo rc=$?"],
            profile,
        );
        rt.run_new(&b).expect_ok().stdout
    };
    for a in sc["actions"].as_array().unwrap() {
        let a = a.as_str().unwrap();
        if a == "SCMP_ACT_NOTIFY" {
            continue; // needs an agent: notify_reaches_the_agent_which_answers
        }
        let out = run(a, json!([]));
        let want = match a {
            "SCMP_ACT_KILL"
            | "SCMP_ACT_KILL_THREAD"
            | "SCMP_ACT_KILL_PROCESS"
            | "SCMP_ACT_TRAP" => "rc=159",
            "SCMP_ACT_ERRNO" => "Operation not permitted",
            // No tracer attached: the call fails with ENOSYS.
            "SCMP_ACT_TRACE" => "Function not implemented",
            "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" => "rc=0",
            other => panic!("unexpected action {other}"),
        };
        assert!(out.contains(want), "{a}: {out}");
    }
    for fl in sc["supportedFlags"].as_array().unwrap() {
        let out = run("SCMP_ACT_ERRNO", json!([fl]));
        assert!(out.contains("Operation not permitted"), "{fl}: {out}");
    }
}

#[test]
fn exec_gets_the_containers_filter() {
    let rt = Runtime::new();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]
    });
    let b = bundle(&["sleep", "100"], profile);
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();
    let o = rt.exec(&["exec", &id, "sh", "-c", "mkdir /tmp/e 2>&1; echo rc=$?"]);
    assert!(o.stdout.contains("No message of desired type"), "{o}");
    assert!(o.stdout.contains("rc=1"), "{o}");
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

#[test]
fn bad_profiles_are_refused_and_leave_nothing() {
    let rt = Runtime::new();
    for (profile, want) in [
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
            "linux.seccomp: defaultAction SCMP_ACT_NOTIFY is not allowed",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                 "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp: syscalls[0].args[0].index: 7 is not an argument index",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_SOMETIMES"}),
            "linux.seccomp.defaultAction",
        ),
    ] {
        let b = bundle(&["true"], profile);
        let id = rt.id();
        rt.exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg(want);
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
}

// struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes), and their ioctls.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// Receives one message and its fd from the runtime.
fn recv_with_fd(conn: RawFd) -> (Vec<u8>, OwnedFd) {
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    // SAFETY: msghdr is plain data; the pointers set below stay valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr().cast();
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.len();
    // SAFETY: msg describes live buffers.
    let n = unsafe { libc::recvmsg(conn, &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled msg_control; the first header carries SCM_RIGHTS.
    let fd = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS,
            "no fd attached"
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()))
    };
    (buf[..n as usize].to_vec(), fd)
}

#[test]
fn notify_reaches_the_agent_which_answers() {
    let rt = Runtime::new();
    let sock = rt.work().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "husk-test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let b = bundle(
        &[
            "sh",
            "-c",
            "mkdir /tmp/n 2>&1; echo rc=$?; mkdir /tmp/m && echo second-ok",
        ],
        profile,
    );
    let id = rt.id();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (msg, fd) = recv_with_fd(conn.as_raw_fd());
        let v: Value = serde_json::from_slice(&msg).unwrap();
        // Answer two notifications: the first with EHOSTDOWN, the second as success.
        let mut seen = Vec::new();
        for (error, val) in [(-libc::EHOSTDOWN, 0), (0, 0)] {
            let mut n = Notif::default();
            // SAFETY: n is a live seccomp_notif; the ioctl fills it.
            let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n as *mut Notif) };
            assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
            seen.push(n.nr);
            let resp = NotifResp {
                id: n.id,
                val,
                error,
                flags: 0,
            };
            // SAFETY: resp is a live seccomp_notif_resp.
            let r = unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const NotifResp) };
            assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
        }
        (v, seen)
    });
    let o = rt.run(&b, &id).expect_ok();
    let (v, seen) = agent.join().unwrap();
    // (the host's /usr is mounted in: coreutils' mkdir words it its own way)
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(lines[0].ends_with("'/tmp/n': Host is down"), "{o}");
    assert_eq!(lines[1..], ["rc=1", "second-ok"], "{o}");
    assert_eq!(v["fds"], json!(["seccompFd"]), "{v}");
    assert_eq!(v["metadata"], "husk-test-meta", "{v}");
    assert_eq!(v["state"]["id"], json!(id), "{v}");
    assert!(v["pid"].as_i64().unwrap() > 0, "{v}");
    let mk = [nr("mkdir") as i32, nr("mkdirat") as i32];
    assert!(seen.iter().all(|n| mk.contains(n)), "{seen:?}");
    rt.exec(&["delete", "--force", &id]);
}
