//! The rootless side of the systemd driver: the calling user's own systemd instance
//! (`systemd --user`, run by `user@UID.service`), which owns a delegated cgroup subtree and
//! starts the container's scope there, as runc's systemd driver does when rootless.
//!
//! - The manager is found on the user's bus (`$DBUS_SESSION_BUS_ADDRESS` when it names a
//!   `unix:path=`, else `$XDG_RUNTIME_DIR/bus`), else on its private socket
//!   (`$XDG_RUNTIME_DIR/systemd/private`); without `$XDG_RUNTIME_DIR`, `/run/user/UID`.
//! - Its units' cgroups lie below its own (`/user.slice/user-UID.slice/user@UID.service`, the
//!   Manager's `ControlGroup` property), not at the hierarchy's root.

use std::path::{Path, PathBuf};

use crate::dbus::{Conn, DbusError, Value};
use crate::{Error, Result};

/// Where the user's manager listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Socket {
    /// A bus (dbus-daemon or dbus-broker) on which the manager is `org.freedesktop.systemd1`.
    Bus(PathBuf),
    /// The manager's own socket, spoken to directly (no bus).
    Private(PathBuf),
}

impl Socket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        match self {
            Socket::Bus(p) | Socket::Private(p) => p,
        }
    }
}

/// The path of a `unix:path=` transport in a D-Bus address list (`;`-separated transports
/// of `,`-separated `key=value` pairs, values %-escaped); `None` when there is none.
pub fn unix_path(address: &str) -> Option<PathBuf> {
    address.split(';').find_map(|t| {
        let kv = t.strip_prefix("unix:")?;
        kv.split(',')
            .find_map(|p| p.strip_prefix("path="))
            .map(|p| PathBuf::from(unescape(p)))
    })
}

/// D-Bus address values escape bytes as `%XX`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the manager of `uid` listens, from the session bus address and runtime dir of the
/// environment (`exists` tells which sockets are there).
pub fn locate(
    bus_address: Option<&str>,
    runtime_dir: Option<&Path>,
    uid: u32,
    exists: impl Fn(&Path) -> bool,
) -> Result<Socket> {
    if let Some(p) = bus_address.and_then(unix_path) {
        return Ok(Socket::Bus(p));
    }
    let (dir, from) = match runtime_dir.filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => (d.to_path_buf(), "$XDG_RUNTIME_DIR"),
        None => (PathBuf::from(format!("/run/user/{uid}")), "/run/user/UID"),
    };
    let bus = dir.join("bus");
    if exists(&bus) {
        return Ok(Socket::Bus(bus));
    }
    let private = dir.join("systemd/private");
    if exists(&private) {
        return Ok(Socket::Private(private));
    }
    Err(Error::Invalid(format!(
        "no user systemd instance for uid {uid}: {} and {} are missing ({from}; is \
         user@{uid}.service running? `loginctl enable-linger` starts it at boot, \
         dbus-user-session provides the bus)",
        bus.display(),
        private.display()
    )))
}

/// [`locate`] with this process's environment.
pub fn locate_env(uid: u32) -> Result<Socket> {
    let addr = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
    let dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    locate(addr.as_deref(), dir.as_deref(), uid, |p| p.exists())
}

/// Connects to the manager of `uid` (see [`locate_env`]), authenticated as that uid.
pub fn open(uid: u32, timeout: std::time::Duration) -> Result<(Conn, Socket)> {
    let socket = locate_env(uid)?;
    let conn = Conn::connect(socket.path(), matches!(socket, Socket::Bus(_)), timeout).map_err(
        |source| Error::Systemd {
            what: format!(
                "connecting to the user systemd instance of uid {uid} (user@{uid}.service) at {}",
                socket.path().display()
            ),
            source,
        },
    )?;
    Ok((conn, socket))
}

/// A string property of a systemd object (`Properties.Get`).
pub fn get_str(conn: &mut Conn, path: &str, iface: &str, prop: &str) -> Result<String> {
    let reply = conn
        .call(
            super::systemd::DEST,
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[Value::Str(iface.into()), Value::Str(prop.into())],
        )
        .map_err(|source| Error::Systemd {
            what: format!("reading {iface}.{prop} of {path}"),
            source,
        })?;
    match reply.first() {
        Some(Value::Variant(v)) => v.as_str().map(str::to_owned),
        _ => None,
    }
    .ok_or_else(|| Error::Systemd {
        what: format!("reading {iface}.{prop} of {path}"),
        source: DbusError::Protocol("not a string".into()),
    })
}

/// The manager's own cgroup (`/user.slice/user-1001.slice/user@1001.service`), below which
/// its slices and units lie.
pub fn manager_cgroup(conn: &mut Conn) -> Result<String> {
    let cg = get_str(
        conn,
        super::systemd::PATH,
        super::systemd::MANAGER,
        "ControlGroup",
    )?;
    if cg.is_empty() || !cg.starts_with('/') || cg.split('/').any(|c| c == "..") {
        return Err(Error::Invalid(format!(
            "the user systemd instance reports no usable cgroup ({cg:?}): is it running with a \
             delegated cgroup v2 subtree?"
        )));
    }
    Ok(cg)
}

/// The cgroup systemd gave the started unit `name` (`GetUnit`, then its `ControlGroup`).
pub fn unit_cgroup(conn: &mut Conn, name: &str) -> Result<String> {
    let reply = conn
        .call(
            super::systemd::DEST,
            super::systemd::PATH,
            super::systemd::MANAGER,
            "GetUnit",
            &[Value::Str(name.into())],
        )
        .map_err(|source| Error::Systemd {
            what: format!("looking up systemd unit {name}"),
            source,
        })?;
    let path = match reply.first() {
        Some(Value::Path(p)) => p.clone(),
        _ => return Err(Error::Invalid(format!("GetUnit {name}: no object path"))),
    };
    get_str(
        conn,
        &path,
        "org.freedesktop.systemd1.Scope",
        "ControlGroup",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::systemd::{expand_slice, parse_user_path};
    use crate::Saved;

    #[test]
    fn user_units_default_to_user_slice() {
        let u = parse_user_path(Some("user.slice:libpod:abc"), "x", 1001).unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str(), u.user),
            ("libpod-abc.scope", "user.slice", Some(1001))
        );
        let u = parse_user_path(None, "id1", 1001).unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("husk-id1.scope", "user.slice")
        );
        let u = parse_user_path(Some(":p:n"), "x", 7).unwrap();
        assert_eq!(u.slice, "user.slice");
        // The system driver's default is unchanged.
        let u = crate::systemd::parse_path(None, "id1").unwrap();
        assert_eq!((u.slice.as_str(), u.user), ("system.slice", None));
        assert!(parse_user_path(Some("user:p:n"), "x", 7).is_err());
    }

    #[test]
    fn the_cgroup_lies_below_the_managers_own() {
        // As resolve_user joins them, for podman's path and the manager of uid 1001.
        let u = parse_user_path(Some("user.slice:libpod:abc"), "x", 1001).unwrap();
        let own = "/user.slice/user-1001.slice/user@1001.service";
        let dir = Path::new("/sys/fs/cgroup")
            .join(own.trim_start_matches('/'))
            .join(expand_slice(&u.slice).unwrap())
            .join(&u.name);
        assert_eq!(
            dir,
            Path::new(
                "/sys/fs/cgroup/user.slice/user-1001.slice/user@1001.service/user.slice/libpod-abc.scope"
            )
        );
    }

    #[test]
    fn saved_user_units_round_trip_and_old_state_parses() {
        // state.json written before user units: no "user" key.
        let old = r#"{"layout":"v2","dirs":["/sys/fs/cgroup/system.slice/husk-a.scope"],
            "unified":"/sys/fs/cgroup/system.slice/husk-a.scope",
            "systemd":{"name":"husk-a.scope","slice":"system.slice"}}"#;
        let s: Saved = serde_json::from_str(old).unwrap();
        assert_eq!(s.systemd.as_ref().unwrap().user, None);
        // A system unit still writes no "user" key.
        assert!(!serde_json::to_string(&s).unwrap().contains("user"));
        let mut u = s.clone();
        u.systemd.as_mut().unwrap().user = Some(1001);
        let text = serde_json::to_string(&u).unwrap();
        assert!(text.contains(r#""user":1001"#), "{text}");
        assert_eq!(serde_json::from_str::<Saved>(&text).unwrap(), u);
    }

    #[test]
    fn bus_addresses_give_their_unix_path() {
        assert_eq!(
            unix_path("unix:path=/run/user/1001/bus"),
            Some(PathBuf::from("/run/user/1001/bus"))
        );
        assert_eq!(
            unix_path("tcp:host=x,port=1;unix:guid=ab,path=/a%20b/bus"),
            Some(PathBuf::from("/a b/bus"))
        );
        assert_eq!(unix_path("unix:abstract=/tmp/dbus-x"), None);
        assert_eq!(unix_path(""), None);
    }

    #[test]
    fn the_manager_is_found_in_order() {
        let dir = Path::new("/run/user/1001");
        let all = |_: &Path| true;
        let none = |_: &Path| false;
        let private_only = |p: &Path| p.ends_with("systemd/private");
        // The session bus address wins, even over an existing runtime dir.
        assert_eq!(
            locate(Some("unix:path=/x/bus"), Some(dir), 1001, all).unwrap(),
            Socket::Bus("/x/bus".into())
        );
        // An address without a unix path (abstract) falls back to the runtime dir.
        assert_eq!(
            locate(Some("unix:abstract=/y"), Some(dir), 1001, all).unwrap(),
            Socket::Bus("/run/user/1001/bus".into())
        );
        assert_eq!(
            locate(None, Some(dir), 1001, private_only).unwrap(),
            Socket::Private("/run/user/1001/systemd/private".into())
        );
        // No XDG_RUNTIME_DIR: the uid's standard one.
        assert_eq!(
            locate(None, None, 1002, all).unwrap(),
            Socket::Bus("/run/user/1002/bus".into())
        );
        let e = locate(None, Some(dir), 1001, none).unwrap_err().to_string();
        assert!(
            e.contains("no user systemd instance for uid 1001")
                && e.contains("/run/user/1001/bus")
                && e.contains("user@1001.service"),
            "{e}"
        );
    }
}
