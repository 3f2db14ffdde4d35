//! Integration helpers: bundles.

use super::*;

/// The busybox applets linked into every rootfs (all of them, from `busybox --list`).
fn applets() -> &'static [String] {
    static APPLETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(busybox())
            .arg("--list")
            .output()
            .expect("run busybox --list (install busybox-static)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && a != "busybox")
            .collect()
    })
}

/// Makes a busybox root filesystem at `rootfs`: /bin/busybox plus a symlink per applet, and
/// the usual empty directories.
pub fn make_rootfs(rootfs: &Path) {
    for d in [
        "bin", "dev", "proc", "sys", "tmp", "etc", "root", "mnt", "run", "var",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(busybox(), rootfs.join("bin/busybox")).expect("copy busybox");
    for a in applets() {
        let _ = symlink("busybox", rootfs.join("bin").join(a));
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The busybox rootfs (made in `dir/rootfs`) as a tar at `dir/img.tar`, for `podman import`.
pub fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    make_rootfs(&rootfs);
    let tar = dir.join("img.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar of the rootfs");
    tar
}

/// The default config.json, as `runc spec` writes it (terminal off), with `args`.
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "husk",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory: `rootfs/` (busybox) and `config.json`, removed on drop.
pub struct Bundle {
    dir: TempDir,
    pub config: Value,
}

impl Bundle {
    /// A bundle whose process runs `args`.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = TempDir::new("bundle");
        make_rootfs(&dir.path().join("rootfs"));
        let b = Bundle {
            dir,
            config: default_config(args),
        };
        b.write();
        b
    }

    /// A bundle running `sh -c SCRIPT`.
    pub fn sh(script: &str) -> Bundle {
        Bundle::new(&["sh", "-c", script])
    }

    /// Binds the host's /usr, /lib and /lib64 (read-only) into the container, for tests that
    /// run a host program there (python3).
    pub fn with_host_libs(&mut self) -> &mut Self {
        self.edit(|c| {
            let m = c["mounts"].as_array_mut().unwrap();
            for d in ["/usr", "/lib", "/lib64"] {
                if Path::new(d).exists() {
                    m.push(json!({"destination": d, "type": "bind", "source": d,
                                  "options": ["rbind", "ro"]}));
                }
            }
        })
    }

    /// A new user namespace mapping the container's 0-65535 to `host_id`.., with the rootfs
    /// chowned so that the mapped root can use it.
    pub fn with_userns(&mut self, host_id: u32) -> &mut Self {
        host(
            "chown",
            &[
                "-R",
                &format!("{host_id}:{host_id}"),
                self.rootfs().to_str().unwrap(),
            ],
        );
        self.edit(|c| {
            set_ns(c, "user", None);
            let m = json!([{"containerID": 0, "hostID": host_id, "size": 65536}]);
            c["linux"]["uidMappings"] = m.clone();
            c["linux"]["gidMappings"] = m;
        })
    }

    /// Edits config.json as JSON and writes it back.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.write();
        self
    }

    /// Writes `self.config` to config.json.
    pub fn write(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> String {
        self.path().to_string_lossy().to_string()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }
}

/// Makes `cfg`'s root an overlay husk makes (docs/rootfs-sources.md): `layers` topmost first,
/// upper and work under `c`; the root writable. Other parameters go in
/// `cfg["annotations"]["io.github.husk.rootfs.KEY"]` afterwards.
pub fn overlay_root(cfg: &mut Value, layers: &[&Path], c: &Path) {
    cfg["root"]["readonly"] = json!(false);
    let layers: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
    cfg["annotations"] = json!({
        "io.github.husk.rootfs": "overlay",
        "io.github.husk.rootfs.layers": layers.join(":"),
        "io.github.husk.rootfs.upper": c.join("upper").to_str().unwrap(),
        "io.github.husk.rootfs.work": c.join("work").to_str().unwrap(),
    });
}

/// Removes the namespace of `kind` from the config.
pub fn remove_ns(cfg: &mut Value, kind: &str) {
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != kind);
}

/// Adds (or replaces) a namespace of `kind`, joined at `path` when given.
pub fn set_ns(cfg: &mut Value, kind: &str, path: Option<&str>) {
    remove_ns(cfg, kind);
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    match path {
        Some(p) => ns.push(json!({"type": kind, "path": p})),
        None => ns.push(json!({"type": kind})),
    }
}

/// Every capability this kernel knows, as CAP_ names (for configs wanting all of them).
pub fn all_caps() -> Vec<String> {
    [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
    .iter()
    .map(|c| format!("CAP_{c}"))
    .collect()
}
