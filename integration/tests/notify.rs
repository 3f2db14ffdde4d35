//! NOTIFY_SOCKET proxying (sd_notify; `podman --sdnotify=container`): `create` gives the
//! container a socket at /run/notify/notify.sock; `start` waits for READY=1 from it and forwards
//! `MAINPID=<init>` and the message to the caller's socket. The container's sender is the
//! host's python3, bind-mounted in (busybox cannot send a unix datagram).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use integration::*;

const SEND: &str = "import os, socket; \
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
    s.sendto(b'STATUS=starting', os.environ['NOTIFY_SOCKET']); \
    s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])";

fn bundle(script: &str) -> Bundle {
    let mut b = Bundle::sh(script);
    b.with_host_libs();
    b
}

#[test]
fn ready_is_forwarded_with_the_main_pid() {
    // The sender; absent: a skip, a failure under CI=true.
    if missing_tool("/usr/bin/python3", "python3") {
        return;
    }
    let rt = Runtime::new();
    let host = rt.work().join("host-notify.sock");
    let sock = UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let b = bundle(&format!(
        "sleep 0.2; /usr/bin/python3 -c \"{SEND}\"; sleep 100"
    ));
    let id = rt.id();
    let h = host.to_string_lossy().to_string();
    rt.cmd(&["create", "--bundle", &b.path_str(), &id])
        .env("NOTIFY_SOCKET", &h)
        .run()
        .expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.cmd(&["start", &id])
        .env("NOTIFY_SOCKET", &h)
        .run()
        .expect_ok();
    // Two datagrams (runc sends READY first, husk MAINPID first, as systemd prefers).
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    }
    got.sort();
    assert_eq!(got, [format!("MAINPID={pid}"), "READY=1".to_string()]);
    // Inside, the socket is the mounted one.
    let o = rt.exec(&["exec", &id, "ls", "/run/notify"]);
    assert_eq!(o.stdout, "notify.sock\n", "{o}");
    if !is_runc() {
        // runc 1.1.5's exec takes the env of the unmodified config.
        let o = rt.exec(&["exec", &id, "sh", "-c", "echo $NOTIFY_SOCKET"]);
        assert_eq!(o.stdout, "/run/notify/notify.sock\n", "{o}");
    }
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn start_fails_when_the_container_exits_unready() {
    if skip_for_runc("runc 1.1.5 waits for READY without watching the container") {
        return;
    }
    let rt = Runtime::new();
    let host = rt.work().join("host-notify2.sock");
    let _sock = UnixDatagram::bind(&host).unwrap();
    let b = bundle("true");
    let id = rt.id();
    let h = host.to_string_lossy().to_string();
    rt.cmd(&["create", "--bundle", &b.path_str(), &id])
        .env("NOTIFY_SOCKET", &h)
        .run()
        .expect_ok();
    rt.cmd(&["start", &id])
        .env("NOTIFY_SOCKET", &h)
        .run()
        .expect_err()
        .expect_msg("stopped before it sent READY=1");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}
