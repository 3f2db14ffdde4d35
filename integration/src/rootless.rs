//! The rootless tests' harness: the runtime under test (`HUSK_BIN`, husk or runc) run as the
//! unprivileged test user that scripts/setup makes (`huskrl`, with 65536 IDs in /etc/subuid
//! and /etc/subgid), each test with its own XDG_RUNTIME_DIR, so the default state root
//! ($XDG_RUNTIME_DIR/husk, or /runc) is the test's own and must be empty at the end.

use std::os::unix::fs::{chown, MetadataExt};

use super::*;

/// The test user's name (scripts/setup).
pub const USER: &str = "huskrl";

/// The test user and its subordinate ranges.
#[derive(Clone, Debug)]
pub struct RlUser {
    pub uid: u32,
    pub gid: u32,
    /// First subordinate uid and count (/etc/subuid).
    pub subuid: (u32, u32),
    /// First subordinate gid and count (/etc/subgid).
    pub subgid: (u32, u32),
}

fn sub_range(file: &str) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() != 3 || f[0] != USER {
            return None;
        }
        Some((f[1].parse().ok()?, f[2].parse().ok()?))
    })
}

impl RlUser {
    /// The user, or `None` (the caller skips, saying so; a panic under CI=true) when
    /// scripts/setup has not made it.
    pub fn get() -> Option<RlUser> {
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let ids = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&USER) && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        });
        let user = ids.and_then(|(uid, gid)| {
            Some(RlUser {
                uid,
                gid,
                subuid: sub_range("/etc/subuid")?,
                subgid: sub_range("/etc/subgid")?,
            })
        });
        if skip_unless(
            user.is_some(),
            "the rootless test user huskrl with /etc/subuid and /etc/subgid entries",
            "scripts/setup makes it",
        ) {
            return None;
        }
        user
    }
}

/// One test's rootless session: the user, a directory it owns (bundles, files) and its own
/// runtime dir.
pub struct Rootless {
    pub user: RlUser,
    dir: TempDir,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Rootless {
    /// `None` when the user is missing (see [`RlUser::get`]), or newuidmap is (the tests map
    /// ranges).
    pub fn new() -> Option<Rootless> {
        let user = RlUser::get()?;
        if missing_tool("newuidmap", "uidmap") {
            return None;
        }
        let dir = TempDir::new("rootless");
        let s = Rootless {
            user,
            dir,
            ids: Default::default(),
        };
        s.give(s.dir.path());
        let run = s.runtime_dir();
        fs::create_dir(&run).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
        s.give(&run);
        Some(s)
    }

    /// Chowns `p` (not recursively) to the user.
    pub fn give(&self, p: &Path) {
        chown(p, Some(self.user.uid), Some(self.user.gid)).unwrap();
    }

    /// Chowns the tree at `p` to the user.
    pub fn give_tree(&self, p: &Path) {
        host(
            "chown",
            &[
                "-R",
                &format!("{}:{}", self.user.uid, self.user.gid),
                p.to_str().unwrap(),
            ],
        );
    }

    /// The test's directory (owned by the user).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The user's XDG_RUNTIME_DIR for this test.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The runtime's default state root for the user: $XDG_RUNTIME_DIR/husk (runc: /runc).
    pub fn state_root(&self) -> PathBuf {
        self.runtime_dir()
            .join(if is_runc() { "runc" } else { "husk" })
    }

    /// The entries of the state root (none once every container is deleted).
    pub fn state_entries(&self) -> Vec<String> {
        fs::read_dir(self.state_root())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A fresh container id, deleted (`delete --force`, as the user) on drop.
    pub fn id(&self) -> String {
        let id = format!("rl-{}-{}", std::process::id(), unique());
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// `PROG ARGS...` as the user (setpriv: its uid, gid and groups), with HOME, USER, PATH
    /// and this test's XDG_RUNTIME_DIR.
    pub fn cmd_as(&self, prog: &str, args: &[&str]) -> Cmd {
        let u = &self.user;
        Cmd::program("/usr/bin/setpriv", self.dir())
            .args(&[
                &format!("--reuid={}", u.uid),
                &format!("--regid={}", u.gid),
                "--init-groups",
                "--",
                prog,
            ])
            .args(args)
            .env("HOME", &self.dir().to_string_lossy())
            .env("USER", USER)
            .env("LOGNAME", USER)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir().to_string_lossy())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    }

    /// The runtime under test as the user (default state root), with `args`.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        self.cmd_as(&husk_bin().to_string_lossy(), args)
    }

    /// Runs the runtime as the user.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.cmd(args).run()
    }

    /// A bundle owned by the user whose config is the runtime's own `spec --rootless` with
    /// `args` as the process (no terminal).
    pub fn bundle(&self, args: &[&str]) -> RlBundle {
        let path = self.dir().join(format!("bundle-{}", unique()));
        fs::create_dir(&path).unwrap();
        make_rootfs(&path.join("rootfs"));
        self.give_tree(&path);
        self.exec(&["spec", "--rootless", "--bundle", path.to_str().unwrap()])
            .expect_ok();
        let mut b = RlBundle {
            path,
            config: Value::Null,
        };
        b.config = serde_json::from_slice(&fs::read(b.path.join("config.json")).unwrap()).unwrap();
        b.edit(|c| {
            c["process"]["args"] = json!(args);
            c["process"]["terminal"] = json!(false);
        });
        b
    }

    /// `run --bundle B ID` in the foreground as the user.
    pub fn run(&self, b: &RlBundle, id: &str) -> Output {
        self.exec(&["run", "--bundle", &b.path_str(), id])
    }

    /// `{"containerID": 0, "hostID": uid, "size": 1}` then 65536 subordinate IDs from 1.
    pub fn ranged_maps(&self) -> (Value, Value) {
        let m = |own: u32, (start, _): (u32, u32)| {
            json!([{"containerID": 0, "hostID": own, "size": 1},
                   {"containerID": 1, "hostID": start, "size": 65536}])
        };
        (
            m(self.user.uid, self.user.subuid),
            m(self.user.gid, self.user.subgid),
        )
    }

    /// What the test left: state entries, and live processes of the user other than the
    /// test's own commands (none run between tests' commands).
    pub fn leftovers(&self, pids: &[i32]) -> Vec<String> {
        let mut left: Vec<String> = self
            .state_entries()
            .into_iter()
            .map(|e| format!("state entry {e}"))
            .collect();
        for p in pids {
            let alive = fs::metadata(format!("/proc/{p}")).is_ok_and(|m| m.uid() != 0)
                && !fs::read_to_string(format!("/proc/{p}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ");
            if alive {
                left.push(format!("process {p}"));
            }
        }
        left
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let _ = self.exec(&["delete", "--force", id]);
        }
    }
}

/// A rootless bundle: a directory owned by the user.
pub struct RlBundle {
    pub path: PathBuf,
    pub config: Value,
}

impl RlBundle {
    /// Edits config.json as JSON and writes it back (it stays readable by the user).
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        fs::write(
            self.path.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        self
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }
}
