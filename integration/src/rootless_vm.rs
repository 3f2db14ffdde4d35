//! Helpers for the rootless systemd lane (`scripts/vm-lane rootless-test`): the tests run as
//! root in the systemd guest and make every runtime and engine call as the image's user
//! `huskrl` (uid 1001, subordinate IDs 100000-165535 in /etc/subuid and /etc/subgid,
//! lingering, so its systemd instance runs from boot with a delegated cgroup subtree).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{bounded, is_pure_v2, unique, Output, TempDir};

/// The lane's unprivileged user, its uid, and its runtime dir (`$XDG_RUNTIME_DIR`).
pub const USER: &str = "huskrl";
pub const UID: u32 = 1001;
pub const RUNTIME_DIR: &str = "/run/user/1001";

/// How long one runtime or engine call may take under QEMU's emulation.
pub const CALL: Duration = Duration::from_secs(120);

/// True (the caller returns) outside the systemd guest, saying why. In the guest, the user
/// and its systemd instance must be there: waits (bounded) for its bus, and panics when the
/// image lacks them (a broken lane, not a skip).
pub fn rootless_lane(test: &str) -> bool {
    if !Path::new("/run/systemd/system").is_dir() || !is_pure_v2() {
        eprintln!(
            "{test}: skipped: needs systemd as init on pure cgroup v2 with the user {USER} \
             (scripts/vm-lane rootless-test)"
        );
        return true;
    }
    let bus = Path::new(RUNTIME_DIR).join("bus");
    let end = Instant::now() + Duration::from_secs(90);
    while !bus.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        bus.exists(),
        "{}: missing: the image's user {USER} must linger (its user@{UID}.service and \
         dbus-user-session's bus)",
        bus.display()
    );
    false
}

/// `program args...` as the lane's user with the environment of a login session: the user
/// bus, its runtime dir, its home (setpriv: no PAM session, the user manager is lingering).
pub fn user_cmd<S: AsRef<str>>(program: &str, args: &[S]) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={UID}"),
        &format!("--regid={UID}"),
        "--init-groups",
        "env",
        "-i",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        &format!("HOME=/home/{USER}"),
        &format!("USER={USER}"),
        &format!("LOGNAME={USER}"),
        &format!("XDG_RUNTIME_DIR={RUNTIME_DIR}"),
        &format!("DBUS_SESSION_BUS_ADDRESS=unix:path={RUNTIME_DIR}/bus"),
    ]);
    c.arg(program).args(args.iter().map(AsRef::as_ref));
    c
}

/// [`user_cmd`] run to completion (bounded by [`CALL`]), stdin /dev/null.
pub fn as_user<S: AsRef<str>>(program: &str, args: &[S]) -> Output {
    bounded(user_cmd(program, args), CALL)
}

/// `systemctl --user show UNIT -p PROP --value` of the lane user's manager.
pub fn user_unit_prop(unit: &str, prop: &str) -> String {
    as_user(
        "systemctl",
        &["--user", "show", unit, "-p", prop, "--value"],
    )
    .stdout
    .trim()
    .to_string()
}

/// Waits (bounded) until the user manager has unloaded `unit` (it garbage-collects a stopped
/// transient unit shortly after), and says whether it did.
pub fn user_unit_gone(unit: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if user_unit_prop(unit, "LoadState") == "not-found" {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The user manager's own cgroup: its slices and units lie below it.
pub fn user_manager_cgroup() -> PathBuf {
    PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{UID}.slice/user@{UID}.service"
    ))
}

/// `chown -R` to the lane's user.
pub fn chown_user(path: &Path) {
    let ok = Command::new("chown")
        .args(["-R", &format!("{UID}:{UID}")])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown -R {UID} {}", path.display());
}

/// Debian's runc, the reference (`RUNC_BIN` overrides).
pub fn runc_bin() -> PathBuf {
    std::env::var_os("RUNC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"))
}

/// The image the rootless podman tests run: the bundles' busybox rootfs.
pub const USER_IMAGE: &str = "localhost/husk-busybox";

/// A rootless podman of the lane's user with `runtime` (a path) as its OCI runtime, passed
/// as `--runtime` on every call. Its own containers.conf (the repo's drop-in registering
/// husk, the systemd cgroup manager, no network) and storage (vfs) in a directory the user
/// owns; everything removed on drop.
pub struct UserPodman {
    dir: TempDir,
    runtime: PathBuf,
}

impl UserPodman {
    pub fn new(runtime: &Path) -> UserPodman {
        let dir = TempDir::new("rlpodman");
        let d = dir.path().display().to_string();
        for sub in ["root", "runroot", "tmp", "rootfs"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // The repo's drop-in, its runtime path the one under test; its keys join our [engine]
        // table (TOML forbids a table twice).
        let dropin = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scripts/engines/containers.conf.d/50-husk.conf"),
        )
        .unwrap()
        .replace(
            "\"/usr/local/bin/husk\"",
            &format!("{:?}", crate::husk_bin()),
        )
        .lines()
        .filter(|l| l.trim() != "[engine]")
        .collect::<Vec<_>>()
        .join("\n");
        let conf = format!(
            "[containers]\n\
             netns = \"none\"\n\
             [engine]\n\
             cgroup_manager = \"systemd\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             static_dir = \"{d}/root/libpod\"\n\
             volume_path = \"{d}/root/volumes\"\n\
             {dropin}\n"
        );
        std::fs::write(dir.path().join("containers.conf"), conf).unwrap();
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n"
            ),
        )
        .unwrap();
        let tar = crate::rootfs_tar(dir.path());
        chown_user(dir.path());
        let p = UserPodman {
            dir,
            runtime: runtime.to_path_buf(),
        };
        p.run(&["import", &tar.to_string_lossy(), USER_IMAGE])
            .expect_ok();
        p
    }

    /// `podman --runtime RUNTIME ARGS...` as the user, with this instance's configuration.
    pub fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let conf = format!("CONTAINERS_CONF={}", d.join("containers.conf").display());
        let storage = format!(
            "CONTAINERS_STORAGE_CONF={}",
            d.join("storage.conf").display()
        );
        let runtime = self.runtime.to_string_lossy().into_owned();
        let mut a = vec![
            conf.as_str(),
            storage.as_str(),
            "podman",
            "--runtime",
            &runtime,
        ];
        a.extend_from_slice(args);
        as_user("env", &a)
    }

    /// The runtime's file name: the directory of its default state root under
    /// `$XDG_RUNTIME_DIR`.
    pub fn runtime_name(&self) -> String {
        self.runtime
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for UserPodman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.run(&["rmi", "--all", "--force"]);
    }
}

/// A directory for a runtime's `--root`, owned by the lane's user, removed on drop.
pub fn user_root() -> TempDir {
    let t = TempDir::new(&format!("rlroot{}", unique()));
    chown_user(t.path());
    t
}
