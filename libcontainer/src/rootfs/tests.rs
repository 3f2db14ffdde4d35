//! Real-kernel tests, run as root: a forked child unshares namespaces, builds the container's
//! root from a busybox tree, enters it and checks what it sees. Everything it mounts lives in
//! its private mount namespace and disappears with it.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Rootfs, RootfsOptions};
use crate::oci_spec::runtime::Spec;
use crate::sys;
use crate::sys::mount::testing as t;

/// A bundle directory with a busybox rootfs, removed when dropped.
struct Bundle(PathBuf);

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("husk-rootfs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "etc", "dev", "proc", "sys", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for l in ["sh", "cat", "ls"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(l)).unwrap();
        }
        Bundle(dir)
    }
    fn rootfs(&self) -> PathBuf {
        self.0.join("rootfs")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec(v: serde_json::Value) -> Spec {
    let mut base = json!({
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "mounts": [],
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
    });
    merge(&mut base, v);
    serde_json::from_value(base).unwrap()
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Runs `check` in a child in new mount/pid/(flags) namespaces after mount_all + enter;
/// returns the child's error text, if any.
fn run(
    rootfs: &mut Rootfs,
    flags: i32,
    check: impl FnOnce(&mut Rootfs) -> Result<(), String>,
) -> Result<(), String> {
    let (r, w) = t::pipe().unwrap();
    let pid = t::fork().unwrap();
    if pid == 0 {
        sys::close(r);
        let out: Result<(), String> = (|| {
            if flags & libc::CLONE_NEWUSER != 0 {
                // Root maps to root only: enough to be privileged in the new user namespace,
                // and what a process may write for itself.
                t::unshare(libc::CLONE_NEWUSER).map_err(|e| format!("unshare user: {e}"))?;
                for (f, v) in [
                    ("uid_map", "0 0 1"),
                    ("setgroups", "deny"),
                    ("gid_map", "0 0 1"),
                ] {
                    std::fs::write(format!("/proc/self/{f}"), v)
                        .map_err(|e| format!("{f}: {e}"))?;
                }
            }
            let flags = flags & !libc::CLONE_NEWUSER;
            t::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID | flags)
                .map_err(|e| format!("unshare: {e}"))?;
            // The pid namespace's first process is the next child.
            let pid = t::fork().map_err(|e| format!("fork: {e}"))?;
            if pid == 0 {
                let res = (|| {
                    rootfs.mount_all().map_err(|f| rootfs.describe(&f))?;
                    rootfs.enter().map_err(|f| rootfs.describe(&f))?;
                    check(rootfs)
                })();
                if let Err(e) = res {
                    let _ = sys::write_all(w, e.as_bytes());
                    sys::exit(1);
                }
                sys::exit(0);
            }
            match t::wait(pid) {
                // The grandchild wrote its own message.
                Ok(s) => sys::exit(s),
                Err(e) => Err(format!("wait: {e}")),
            }
        })();
        if let Err(e) = out {
            let _ = sys::write_all(w, e.as_bytes());
            sys::exit(1);
        }
        sys::exit(0);
    }
    sys::close(w);
    let mut msg = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = t::read(r, &mut buf) {
        if n == 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n]);
    }
    sys::close(r);
    let status = t::wait(pid).unwrap();
    let msg = String::from_utf8_lossy(&msg).into_owned();
    if status == 0 && msg.is_empty() {
        Ok(())
    } else {
        Err(msg)
    }
}

fn ensure(cond: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// The mountinfo line of the topmost mount at `mp`.
fn mountinfo(mp: &str) -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    text.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mp))
        .map(str::to_string)
        .ok_or(format!("{mp} is not a mount point:\n{text}"))
}

/// The per-mount options, optional fields and superblock options of a mountinfo line.
fn fields(line: &str) -> (String, String, String) {
    let (l, r) = line.split_once(" - ").unwrap();
    let l: Vec<&str> = l.split(' ').collect();
    let r: Vec<&str> = r.split(' ').collect();
    (l[5].to_string(), l[6..].join(" "), r[2].to_string())
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[test]
fn rootfs_full_container() {
    let b = Bundle::new("full");
    let host_file = b.0.join("hostname");
    std::fs::write(&host_file, "husk-host\n").unwrap();
    let shared_dir = b.0.join("shared");
    std::fs::create_dir(&shared_dir).unwrap();
    std::fs::write(shared_dir.join("f"), "x").unwrap();
    let s = spec(json!({
        "process": {"cwd": "/work/dir"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
             "options": ["ro", "noatime", "size=1m"]},
            {"destination": "/unb", "type": "tmpfs", "source": "tmpfs", "options": ["runbindable"]},
            {"destination": "/etc/hostname", "type": "bind", "source": host_file,
             "options": ["rbind", "ro", "nosuid"]},
            {"destination": "/mnt/shared", "source": shared_dir,
             "options": ["rbind", "rro", "rshared"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "network"},
                           {"type": "uts"}, {"type": "ipc"}, {"type": "cgroup"}],
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 416, "uid": 1000, "gid": 1001},
                        {"path": "/dev/sub/loop200", "type": "b", "major": 7, "minor": 200},
                        {"path": "/dev/fifo", "type": "p", "fileMode": 384}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/scsi", "/proc/doesnotexist", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/bus"],
            "sysctl": {"kernel.domainname": "husk.test", "net.ipv4.ip_forward": "1"}
        }
    }));
    let mut rootfs = Rootfs::plan(&s, &b.0, &RootfsOptions::default()).unwrap();
    let flags =
        libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWCGROUP;
    run(&mut rootfs, flags, |_| {
        let (o, _, sb) = fields(&mountinfo("/data")?);
        ensure(
            has_opt(&o, "ro") && has_opt(&o, "noatime"),
            format!("/data options {o}"),
        )?;
        // Mounted rw and made read-only at the end (runc's order): the superblock stays rw.
        ensure(
            has_opt(&sb, "size=1024k") && has_opt(&sb, "rw"),
            format!("/data sb {sb}"),
        )?;
        let (o, _, sb) = fields(&mountinfo("/dev/shm")?);
        ensure(
            has_opt(&o, "nosuid")
                && has_opt(&o, "nodev")
                && has_opt(&o, "noexec")
                && has_opt(&o, "rw"),
            format!("/dev/shm {o}"),
        )?;
        // tmpfs shows its mode only when it is not the default 1777.
        ensure(
            has_opt(&sb, "size=65536k") && !sb.contains("mode="),
            format!("/dev/shm sb {sb}"),
        )?;
        let (o, _, _) = fields(&mountinfo("/dev")?);
        ensure(
            !has_opt(&o, "relatime") && !has_opt(&o, "noatime"),
            format!("/dev strictatime {o}"),
        )?;
        let (_, _, sb) = fields(&mountinfo("/dev/pts")?);
        ensure(
            has_opt(&sb, "ptmxmode=666") && has_opt(&sb, "mode=620"),
            format!("devpts {sb}"),
        )?;
        mountinfo("/dev/mqueue")?;
        let (o, _, _) = fields(&mountinfo("/sys")?);
        ensure(has_opt(&o, "ro"), format!("/sys {o}"))?;
        let (_, opt, _) = fields(&mountinfo("/unb")?);
        ensure(
            opt.contains("unbindable"),
            format!("/unb propagation {opt}"),
        )?;
        // Hostname bind: a file, read-only, nosuid.
        let (o, _, _) = fields(&mountinfo("/etc/hostname")?);
        ensure(
            has_opt(&o, "ro") && has_opt(&o, "nosuid"),
            format!("/etc/hostname {o}"),
        )?;
        let h = std::fs::read_to_string("/etc/hostname").map_err(|e| e.to_string())?;
        ensure(h == "husk-host\n", format!("hostname content {h:?}"))?;
        let (o, opt, _) = fields(&mountinfo("/mnt/shared")?);
        ensure(
            has_opt(&o, "ro") && opt.contains("shared:"),
            format!("/mnt/shared {o} {opt}"),
        )?;
        // Devices.
        for (p, maj, min) in [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/tty", 5, 0)] {
            let m = std::fs::metadata(p).map_err(|e| format!("{p}: {e}"))?;
            ensure(
                m.file_type().is_char_device(),
                format!("{p} not a char device"),
            )?;
            ensure(
                m.rdev() == libc::makedev(maj, min),
                format!("{p} rdev {:x}", m.rdev()),
            )?;
            ensure(
                m.mode() & 0o7777 == 0o666,
                format!("{p} mode {:o}", m.mode()),
            )?;
        }
        let m = std::fs::metadata("/dev/fuse").map_err(|e| e.to_string())?;
        ensure(m.rdev() == libc::makedev(10, 229), "fuse rdev")?;
        ensure(
            m.mode() & 0o7777 == 0o640,
            format!("fuse mode {:o}", m.mode()),
        )?;
        ensure(
            m.uid() == 1000 && m.gid() == 1001,
            format!("fuse owner {}:{}", m.uid(), m.gid()),
        )?;
        let m = std::fs::metadata("/dev/sub/loop200").map_err(|e| e.to_string())?;
        ensure(
            m.file_type().is_block_device() && m.rdev() == libc::makedev(7, 200),
            "loop200",
        )?;
        let m = std::fs::metadata("/dev/fifo").map_err(|e| e.to_string())?;
        ensure(
            m.file_type().is_fifo() && m.mode() & 0o7777 == 0o600,
            "fifo",
        )?;
        for (l, to) in [
            ("/dev/fd", "/proc/self/fd"),
            ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/ptmx", "pts/ptmx"),
        ] {
            let got = std::fs::read_link(l).map_err(|e| format!("{l}: {e}"))?;
            ensure(got == Path::new(to), format!("{l} -> {got:?}"))?;
        }
        // Masked: a file reads empty, a directory is an empty read-only tmpfs.
        let k = std::fs::read("/proc/keys").map_err(|e| format!("/proc/keys: {e}"))?;
        ensure(k.is_empty(), "/proc/keys not empty")?;
        let m = std::fs::metadata("/proc/timer_list").map_err(|e| e.to_string())?;
        ensure(
            m.rdev() == libc::makedev(1, 3),
            "/proc/timer_list not masked",
        )?;
        if Path::new("/sys/firmware").exists() {
            let n = std::fs::read_dir("/sys/firmware")
                .map_err(|e| e.to_string())?
                .count();
            ensure(n == 0, "/sys/firmware not empty")?;
            let (o, _, _) = fields(&mountinfo("/sys/firmware")?);
            ensure(has_opt(&o, "ro"), "/sys/firmware not ro")?;
        }
        // Read-only path.
        let e = std::fs::write("/proc/sys/kernel/hostname", "x").unwrap_err();
        ensure(errno_of(&e) == libc::EROFS, format!("/proc/sys write: {e}"))?;
        // Sysctls, written through the private procfs despite /proc/sys being read-only.
        let d =
            std::fs::read_to_string("/proc/sys/kernel/domainname").map_err(|e| e.to_string())?;
        ensure(d.trim() == "husk.test", format!("domainname {d:?}"))?;
        let f =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map_err(|e| e.to_string())?;
        ensure(f.trim() == "1", format!("ip_forward {f:?}"))?;
        // cgroup v1 (this host) or v2.
        let cg = mountinfo("/sys/fs/cgroup")?;
        if cg.contains(" - tmpfs ") {
            ensure(
                has_opt(&fields(&cg).0, "ro"),
                format!("cgroup tmpfs not ro: {cg}"),
            )?;
            let mem = mountinfo("/sys/fs/cgroup/memory")?;
            let (o, _, sb) = fields(&mem);
            ensure(
                mem.contains(" - cgroup ") && has_opt(&sb, "memory"),
                format!("memory: {mem}"),
            )?;
            ensure(
                has_opt(&o, "nosuid") && has_opt(&o, "ro"),
                format!("memory opts {o}"),
            )?;
            // In the cgroup namespace the container's cgroup is the root.
            ensure(
                mem.split(' ').nth(3) == Some("/"),
                format!("memory root: {mem}"),
            )?;
        } else {
            ensure(cg.contains(" - cgroup2 "), format!("cgroup: {cg}"))?;
        }
        // cwd made, pivot done (the host's /usr is gone).
        ensure(Path::new("/work/dir").is_dir(), "cwd missing")?;
        ensure(!Path::new("/usr/bin").exists(), "still on the host root")?;
        ensure(
            std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
            "cwd not /",
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn rootfs_symlink_cannot_escape() {
    let b = Bundle::new("escape");
    let name = format!("husk-escape-{}", std::process::id());
    std::os::unix::fs::symlink("/etc", b.rootfs().join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../tmp", b.rootfs().join("up")).unwrap();
    let s = spec(json!({"mounts": [
        {"destination": format!("/link/{name}"), "type": "tmpfs", "source": "tmpfs"},
        {"destination": format!("/up/{name}/deep"), "type": "tmpfs", "source": "tmpfs"}
    ]}));
    let mut rootfs = Rootfs::plan(&s, &b.0, &RootfsOptions::default()).unwrap();
    let n = name.clone();
    run(&mut rootfs, 0, move |_| {
        ensure(
            Path::new(&format!("/etc/{n}")).is_dir(),
            "mount point missing in the root",
        )?;
        ensure(
            Path::new(&format!("/tmp/{n}/deep")).is_dir(),
            "deep mount point missing in the root",
        )?;
        Ok(())
    })
    .unwrap();
    assert!(
        !Path::new("/etc").join(&name).exists(),
        "escaped to the host's /etc"
    );
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "escaped to the host's /tmp"
    );
    assert!(b.rootfs().join("etc").join(&name).is_dir());
    assert!(b.rootfs().join("tmp").join(&name).join("deep").is_dir());
}

#[test]
fn rootfs_readonly_root_and_propagation() {
    let b = Bundle::new("ro");
    let s = spec(json!({
        "root": {"path": b.rootfs(), "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            // The host's sysfs superblock (no net namespace), asked read-only.
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro", "nosuid"]}
        ],
        "linux": {"rootfsPropagation": "shared"}
    }));
    let mut rootfs =
        Rootfs::plan(&s, Path::new("/nonexistent"), &RootfsOptions::default()).unwrap();
    run(&mut rootfs, 0, |_| {
        let (o, opt, _) = fields(&mountinfo("/")?);
        ensure(has_opt(&o, "ro"), format!("/ {o}"))?;
        ensure(opt.contains("shared:"), format!("/ propagation {opt}"))?;
        let (o, _, _) = fields(&mountinfo("/sys")?);
        ensure(
            has_opt(&o, "ro") && has_opt(&o, "nosuid"),
            format!("/sys {o}"),
        )?;
        let e = std::fs::write("/newfile", "x").unwrap_err();
        ensure(errno_of(&e) == libc::EROFS, format!("write: {e}"))?;
        // Without a /dev mount the devices are made in the rootfs's own /dev.
        let m = std::fs::metadata("/dev/null").map_err(|e| e.to_string())?;
        ensure(m.rdev() == libc::makedev(1, 3), "/dev/null")?;
        Ok(())
    })
    .unwrap();
    let m = std::fs::metadata(b.rootfs().join("dev/urandom")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.permissions().mode() & 0o777, 0o666);
}

#[test]
fn rootfs_no_pivot() {
    let b = Bundle::new("nopivot");
    let s = spec(
        json!({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"readonlyPaths": ["/proc/sys"]}}),
    );
    let opts = RootfsOptions {
        no_pivot: true,
        cwd: Some("/home/x".into()),
        ..Default::default()
    };
    let mut rootfs = Rootfs::plan(&s, &b.0, &opts).unwrap();
    run(&mut rootfs, 0, |_| {
        ensure(Path::new("/bin/busybox").exists(), "not in the root")?;
        ensure(
            Path::new("/home/x").is_dir(),
            "RootfsOptions::cwd not created",
        )?;
        ensure(!Path::new("/usr/bin").exists(), "still on the host root")?;
        // A nested user namespace may not mount a fresh procfs: the host's full one beneath
        // the moved root is gone, and the container's is partly covered (runc's protection).
        let pid = t::fork().map_err(|e| format!("fork: {e}"))?;
        if pid == 0 {
            let code = (|| -> Result<i32, String> {
                t::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID)
                    .map_err(|e| format!("unshare: {e}"))?;
                for (f, v) in [
                    ("uid_map", "0 0 1"),
                    ("setgroups", "deny"),
                    ("gid_map", "0 0 1"),
                ] {
                    std::fs::write(format!("/proc/self/{f}"), v)
                        .map_err(|e| format!("{f}: {e}"))?;
                }
                let pid = t::fork().map_err(|e| format!("fork: {e}"))?;
                if pid == 0 {
                    let f = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                    let r = sys::mount::mount(Some(c"proc"), c"/home/x", Some(c"proc"), f, None);
                    sys::exit(match r {
                        Ok(()) => 0,
                        Err(libc::EPERM) => 1,
                        Err(_) => 2,
                    });
                }
                t::wait(pid).map_err(|e| format!("wait: {e}"))
            })();
            sys::exit(code.unwrap_or(3));
        }
        let st = t::wait(pid).map_err(|e| format!("wait: {e}"))?;
        ensure(
            st == 1,
            format!("nested procfs mount: status {st} (0: mounted)"),
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn rootfs_console() {
    let b = Bundle::new("console");
    let s = spec(json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["newinstance", "ptmxmode=0666", "mode=0620"]}
    ]}));
    let mut rootfs = Rootfs::plan(&s, &b.0, &RootfsOptions::default()).unwrap();
    run(&mut rootfs, 0, |r| {
        let master = r.open_ptmx().map_err(|f| r.describe(&f))?;
        let slave = t::pty_peer(master).map_err(|e| format!("pty peer: {e}"))?;
        r.bind_console(slave).map_err(|f| r.describe(&f))?;
        let m = std::fs::metadata("/dev/console").map_err(|e| e.to_string())?;
        ensure(m.file_type().is_char_device(), "console not a tty")?;
        let pts0 = std::fs::metadata("/dev/pts/0").map_err(|e| e.to_string())?;
        ensure(
            m.rdev() == pts0.rdev(),
            "console is not the container's pts/0",
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn rootfs_plan_errors_and_messages() {
    let b = Bundle::new("errors");
    let opts = RootfsOptions::default();
    let err = |v| {
        Rootfs::plan(&spec(v), &b.0, &opts)
            .err()
            .unwrap()
            .to_string()
    };
    // A relative destination is taken from / (as runc does).
    let s = spec(json!({"mounts": [{"destination": "proc", "type": "proc"}]}));
    assert!(Rootfs::plan(&s, &b.0, &opts).is_ok());
    let e = err(json!({"root": {"path": "/nonexistent/rootfs"}}));
    assert_eq!(e, "rootfs /nonexistent/rootfs: no such file or directory");
    let e = err(json!({"linux": {"rootfsPropagation": "sideways"}}));
    assert!(e.contains("linux.rootfsPropagation"), "{e}");
    let e = err(json!({"linux": {"sysctl": {"kernel/../x": "1"}}}));
    assert!(e.contains("invalid key"), "{e}");
    // Host sysctls are refused.
    let e = err(json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}));
    assert!(
        e.contains("net.ipv4.ip_forward needs a network namespace"),
        "{e}"
    );
    let e = err(json!({"linux": {"sysctl": {"vm.swappiness": "1"}}}));
    assert!(e.contains("not in a separate kernel namespace"), "{e}");
    // Filesystem options on a bind are ignored (runc 1.5 refuses them; docs/oracle.md).
    let s = spec(json!({"mounts": [{"destination": "/x", "source": "/s",
        "options": ["bind", "mode=755", "size=1k"]}]}));
    assert!(Rootfs::plan(&s, &b.0, &opts).is_ok());
    let s = spec(json!({"mounts": [
        {"destination": "/proc", "type": "proc"},
        {"destination": "/proc", "type": "proc", "source": "proc"}
    ]}));
    let r = Rootfs::plan(&s, &b.0, &opts).unwrap();
    let f = super::fail(super::Code::Mount, 1, libc::EPERM);
    assert_eq!(
        r.describe(&f),
        "mount proc onto /proc (mounts[1]): operation not permitted"
    );
    // A failing mount in the child comes back as that message.
    let s = spec(json!({"mounts": [{"destination": "/x", "type": "nosuchfs", "source": "x"}]}));
    let mut r = Rootfs::plan(&s, &b.0, &opts).unwrap();
    let e = run(&mut r, 0, |_| Ok(())).unwrap_err();
    assert_eq!(e, "mount nosuchfs onto /x (mounts[0]): no such device");
    // A bind source is looked up in the container's mount namespace, by the child.
    let s = spec(
        json!({"mounts": [{"destination": "/x", "source": "/nonexistent", "options": ["bind"]}]}),
    );
    let mut r = Rootfs::plan(&s, &b.0, &opts).unwrap();
    let e = run(&mut r, 0, |_| Ok(())).unwrap_err();
    assert_eq!(
        e,
        "bind /nonexistent onto /x (mounts[0]): no such file or directory"
    );
}

#[test]
fn rootfs_user_namespace() {
    let b = Bundle::new("userns");
    let s = spec(json!({
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"}],
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
            "maskedPaths": ["/proc/keys"],
            "readonlyPaths": ["/proc/sys"]
        }
    }));
    let opts = RootfsOptions {
        userns: true,
        ..Default::default()
    };
    let mut rootfs = Rootfs::plan(&s, &b.0, &opts).unwrap();
    run(&mut rootfs, libc::CLONE_NEWUSER, |_| {
        // Devices are binds of the host's nodes.
        for (p, maj, min) in [("/dev/null", 1, 3), ("/dev/fuse", 10, 229)] {
            let m = std::fs::metadata(p).map_err(|e| format!("{p}: {e}"))?;
            ensure(m.rdev() == libc::makedev(maj, min), format!("{p} rdev"))?;
            mountinfo(p)?;
        }
        // sysfs without a net namespace is an rbind of /sys.
        let sys = mountinfo("/sys")?;
        ensure(sys.contains(" - sysfs "), format!("/sys: {sys}"))?;
        ensure(
            has_opt(&fields(&sys).0, "ro"),
            format!("/sys not ro: {sys}"),
        )?;
        let k = std::fs::read("/proc/keys").map_err(|e| format!("/proc/keys: {e}"))?;
        ensure(k.is_empty(), "/proc/keys not masked")?;
        let e = std::fs::write("/proc/sys/kernel/hostname", "x").unwrap_err();
        ensure(errno_of(&e) == libc::EROFS, format!("/proc/sys write: {e}"))?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn rootfs_cgroup_without_namespace() {
    let b = Bundle::new("cgbind");
    let s = spec(json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "ro"]}
    ]}));
    let mut rootfs = Rootfs::plan(&s, &b.0, &RootfsOptions::default()).unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    run(&mut rootfs, 0, move |_| {
        let cg = mountinfo("/sys/fs/cgroup")?;
        if cg.contains(" - cgroup2 ") {
            return Ok(());
        }
        // Each hierarchy is a bind of this process's own cgroup there.
        for l in own.lines() {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let name = if ctrl.is_empty() {
                "unified"
            } else {
                ctrl.trim_start_matches("name=")
            };
            let p = format!("/sys/fs/cgroup/{name}");
            if !Path::new(&p).exists() {
                continue;
            }
            let line = mountinfo(&p)?;
            ensure(
                line.split(' ').nth(3) == Some(path),
                format!("{p}: {line} (want {path})"),
            )?;
            ensure(has_opt(&fields(&line).0, "ro"), format!("{p} not ro"))?;
        }
        Ok(())
    })
    .unwrap();
}
