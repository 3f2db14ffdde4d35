//! The D-Bus client against a real bus: a private dbus-daemon on a temp socket (package
//! `dbus-daemon`), started and killed by the test. systemd itself is exercised in the systemd
//! lane (integration/tests/systemd.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cgroups::dbus::{Conn, DbusError, Value};

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bus of our own: a minimal session-type config listening on DIR/bus. No dbus-daemon: a
/// skip, or under CI=true a failure (CI installs it: its absence is a broken install step).
fn daemon(test: &str) -> Option<(Daemon, PathBuf)> {
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dbus-daemon is missing under CI=true (install the Debian package dbus-daemon)"
        );
        eprintln!("skipped: no dbus-daemon (apt-get install dbus-daemon)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("husk-dbus-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("bus");
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig><type>session</type><listen>unix:path={}</listen>\
             <auth>EXTERNAL</auth><policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
             <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
            sock.display()
        ),
    )
    .unwrap();
    let child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .arg("--nofork")
        .spawn()
        .unwrap();
    let d = Daemon { child, dir };
    let end = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < end,
            "dbus-daemon did not create {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Some((d, sock))
}

fn connect(sock: &Path) -> Conn {
    Conn::connect(sock, true, Duration::from_secs(10)).unwrap()
}

const BUS: (&str, &str, &str) = (
    "org.freedesktop.DBus",
    "/org/freedesktop/DBus",
    "org.freedesktop.DBus",
);

#[test]
fn calls_and_replies_on_a_real_bus() {
    let Some((_d, sock)) = daemon("calls_") else {
        return;
    };
    let mut c = connect(&sock);
    let names = c.call(BUS.0, BUS.1, BUS.2, "ListNames", &[]).unwrap();
    let Value::Array(sig, names) = &names[0] else {
        panic!("ListNames returned {names:?}")
    };
    assert_eq!(sig, "s");
    assert!(
        names.contains(&Value::Str("org.freedesktop.DBus".into())),
        "{names:?}"
    );
    // Our own unique name (from Hello) is listed: ":1.N".
    assert!(names
        .iter()
        .any(|n| n.as_str().is_some_and(|s| s.starts_with(":1."))));
    // Arguments of several types marshal as the daemon expects: it answers RequestName with
    // 1 (primary owner) and then lists the name's owner.
    let r = c
        .call(
            BUS.0,
            BUS.1,
            BUS.2,
            "RequestName",
            &[Value::Str("org.husk.Test".into()), Value::U32(4)],
        )
        .unwrap();
    assert_eq!(r, vec![Value::U32(1)]);
    let owner = c
        .call(
            BUS.0,
            BUS.1,
            BUS.2,
            "GetNameOwner",
            &[Value::Str("org.husk.Test".into())],
        )
        .unwrap();
    assert!(owner[0].as_str().unwrap().starts_with(":1."), "{owner:?}");
}

#[test]
fn error_replies_carry_name_and_message() {
    let Some((_d, sock)) = daemon("error_") else {
        return;
    };
    let mut c = connect(&sock);
    let e = c
        .call(
            BUS.0,
            BUS.1,
            BUS.2,
            "GetNameOwner",
            &[Value::Str("org.husk.Nobody".into())],
        )
        .unwrap_err();
    match e {
        DbusError::Reply { name, message } => {
            assert_eq!(name, "org.freedesktop.DBus.Error.NameHasNoOwner");
            assert!(message.contains("org.husk.Nobody"), "{message}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn signals_arrive() {
    let Some((_d, sock)) = daemon("signal") else {
        return;
    };
    let mut a = connect(&sock);
    // Owning a name makes the bus send NameOwnerChanged to everyone matching it.
    a.call(
        BUS.0,
        BUS.1,
        BUS.2,
        "AddMatch",
        &[Value::Str("type='signal',member='NameOwnerChanged'".into())],
    )
    .unwrap();
    let mut b = connect(&sock);
    b.call(
        BUS.0,
        BUS.1,
        BUS.2,
        "RequestName",
        &[Value::Str("org.husk.Sig".into()), Value::U32(4)],
    )
    .unwrap();
    let (name, new_owner) = a
        .wait_signal(|m| {
            if m.member.as_deref() != Some("NameOwnerChanged") {
                return None;
            }
            match &m.body[..] {
                [Value::Str(n), _, Value::Str(o)] if n == "org.husk.Sig" => {
                    Some((n.clone(), o.clone()))
                }
                _ => None,
            }
        })
        .unwrap();
    assert_eq!(name, "org.husk.Sig");
    assert!(new_owner.starts_with(":1."));
}
