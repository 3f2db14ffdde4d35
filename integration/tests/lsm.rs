//! AppArmor and SELinux applied to containers. This host's kernel has neither LSM; the guests
//! of `scripts/vm-lane lsm-test` have one each and set HUSK_LSM=apparmor or selinux. Elsewhere
//! each test says why it returns early (process.rs checks the refusals on a host without them).
//! Every test checks what the kernel reports: /proc/self/attr/current, `ls -Z`, a denied write.

use std::fs;
use std::path::Path;
use std::process::Command;

use integration::*;

fn lane(lsm: &str, test: &str) -> bool {
    if std::env::var("HUSK_LSM").as_deref() == Ok(lsm) {
        return false;
    }
    eprintln!("{test}: skipped: needs the {lsm} guest (scripts/vm-lane lsm-test)");
    true
}

/// Runs a host command, returning (success, stdout + stderr).
fn sh(cmd: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), s)
}

/// /proc/PID/attr/current of a host-visible pid, without the trailing NUL or newline.
fn attr_current(pid: i64) -> String {
    fs::read_to_string(format!("/proc/{pid}/attr/current"))
        .unwrap()
        .trim_end_matches(['\0', '\n'])
        .to_string()
}

fn pid_of(rt: &Runtime, id: &str) -> i64 {
    rt.state(id)["pid"].as_i64().unwrap()
}

// ---------------------------------------------------------------- AppArmor

/// A profile loaded for one test, removed when dropped.
struct Profile {
    name: String,
    file: TempDir,
}

impl Profile {
    /// Loads `name` with `rules` besides the ones every container profile needs: files,
    /// capabilities and networking allowed (the rules under test narrow them), and signals
    /// from husk (unconfined) received, or `kill` could not reach the container.
    fn load(name: &str, rules: &str) -> Profile {
        let file = TempDir::new("apparmor");
        let text = format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  \
             capability,\n  network,\n  umount,\n  signal (receive) peer=unconfined,\n  \
             signal (send,receive) peer={name},\n{rules}}}\n"
        );
        let path = file.path().join("profile");
        fs::write(&path, text).unwrap();
        let (ok, out) = sh("apparmor_parser", &["-r", path.to_str().unwrap()]);
        assert!(ok, "apparmor_parser -r {name}: {out}");
        Profile {
            name: name.to_string(),
            file,
        }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let path = self.file.path().join("profile");
        let _ = sh("apparmor_parser", &["-R", path.to_str().unwrap()]);
    }
}

fn profile_name(what: &str) -> String {
    format!("husk-test-{what}-{}", unique())
}

#[test]
fn apparmor_profile_confines_the_container() {
    if lane("apparmor", "apparmor_profile_confines_the_container") {
        return;
    }
    let p = Profile::load(&profile_name("notmp"), "  deny /tmp/** w,\n");
    let rt = Runtime::new();
    let writable = |c: &mut Value| c["root"]["readonly"] = json!(false);
    let mut b = Bundle::sh(
        "echo $(cat /proc/self/attr/current); (echo x > /tmp/x) 2>&1; echo y > /y && cat /y",
    );
    b.edit(|c| {
        writable(c);
        c["process"]["apparmorProfile"] = json!(p.name)
    });
    let out = rt.output(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{} (enforce)", p.name), "{out}");
    assert!(
        lines[1].contains("Permission denied"),
        "writing /tmp/x is denied: {out}"
    );
    assert_eq!(lines[2], "y", "writing / is allowed: {out}");
    // The same container without the profile writes /tmp/x and is unconfined.
    let mut b = Bundle::sh("echo $(cat /proc/self/attr/current); echo x > /tmp/x && cat /tmp/x");
    b.edit(writable);
    let out = rt.output(&b);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["unconfined", "x"],
        "{out}"
    );
}

#[test]
fn apparmor_exec_inherits_or_takes_its_flag() {
    if lane("apparmor", "apparmor_exec_inherits_or_takes_its_flag") {
        return;
    }
    let p1 = Profile::load(&profile_name("init"), "");
    let p2 = Profile::load(&profile_name("exec"), "  deny /etc/** r,\n");
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| c["process"]["apparmorProfile"] = json!(p1.name));
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    assert_eq!(
        attr_current(pid_of(&rt, &id)),
        format!("{} (enforce)", p1.name)
    );
    let o = rt
        .exec(&["exec", &id, "cat", "/proc/self/attr/current"])
        .expect_ok();
    assert_eq!(o.stdout.trim(), format!("{} (enforce)", p1.name));
    let o = rt
        .exec(&[
            "exec",
            "--apparmor",
            &p2.name,
            &id,
            "cat",
            "/proc/self/attr/current",
        ])
        .expect_ok();
    assert_eq!(o.stdout.trim(), format!("{} (enforce)", p2.name));
    // p2's rule holds in the exec'd process: /etc is unreadable there, not in the init's.
    rt.exec(&["exec", "--apparmor", &p2.name, &id, "cat", "/etc/passwd"])
        .expect_err()
        .expect_msg("Permission denied");
    let o = rt.exec(&["exec", &id, "cat", "/etc/passwd"]).expect_ok();
    assert!(o.stdout.starts_with("root:"), "{o}");
    // husk's signals reach the confined init.
    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(20));
    rt.exec(&["delete", &id]).expect_ok();
}

#[test]
fn apparmor_unloaded_profile_is_refused() {
    if lane("apparmor", "apparmor_unloaded_profile_is_refused") {
        return;
    }
    let missing = profile_name("missing");
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["apparmorProfile"] = json!(missing));
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg(&format!("applying AppArmor profile \\\"{missing}\\\""))
        .expect_msg("no profile of that name is loaded");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    // exec: refused the same way, the container keeps only its init.
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    rt.exec(&["exec", "--apparmor", &missing, &id, "true"])
        .expect_err()
        .expect_msg("no profile of that name is loaded");
    let ps = rt.exec(&["ps", &id]).expect_ok();
    assert_eq!(ps.stdout.lines().count(), 2, "{}", ps.stdout);
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

/// A profile shaped as the one docker loads for every container (`docker-default`: files,
/// network and capabilities allowed; mounts, /proc/kcore, /proc/sysrq-trigger and the host's
/// security filesystem denied), under docker's name, with the config docker writes for it.
#[test]
fn apparmor_docker_shaped_profile() {
    if lane("apparmor", "apparmor_docker_shaped_profile") {
        return;
    }
    let _p = Profile::load(
        "docker-default",
        "  deny mount,\n  deny /proc/kcore rwklx,\n  deny /proc/sysrq-trigger rwklx,\n  \
         deny /sys/kernel/security/** rwklx,\n  ptrace (trace,read,tracedby,readby) \
         peer=docker-default,\n",
    );
    let rt = Runtime::new();
    // /proc/kcore is masked (a bind of /dev/null): readable, and empty, without the profile.
    let script = "echo $(cat /proc/self/attr/current); cat /proc/kcore 2>&1; echo rc=$?";
    let mut b = Bundle::sh(script);
    b.edit(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
    let out = rt.output(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "docker-default (enforce)", "{out}");
    assert!(lines[1].contains("Permission denied"), "{out}");
    assert_eq!(lines[2], "rc=1", "{out}");
    let out = rt.output(&Bundle::sh(script));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["unconfined", "rc=0"],
        "{out}"
    );
}

/// docker itself (Debian's dockerd, in the AppArmor guest: vfs storage, no networking) with
/// husk as an added runtime: docker generates and loads its `docker-default` profile, names it
/// in the config.json it hands husk, and the container runs under it.
/// scripts/vm/docker-apparmor does the docker part and prints what it saw.
#[test]
fn apparmor_docker_runs_husk_under_docker_default() {
    if lane("apparmor", "apparmor_docker_runs_husk_under_docker_default") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let o = Command::new("sh")
        .arg(root.join("scripts/vm/docker-apparmor"))
        .args(["--guest", husk_bin().to_str().unwrap()])
        .current_dir(&root)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("attr/current = docker-default (enforce)"),
        "{out}"
    );
    assert!(
        out.contains("process.apparmorProfile = docker-default"),
        "{out}"
    );
}

#[test]
fn apparmor_features_report_the_host() {
    if lane("apparmor", "apparmor_features_report_the_host") {
        return;
    }
    let rt = Runtime::new();
    let f: serde_json::Value =
        serde_json::from_str(&rt.exec(&["features"]).expect_ok().stdout).unwrap();
    assert_eq!(f["linux"]["apparmor"]["enabled"], json!(true));
    assert_eq!(f["linux"]["selinux"]["enabled"], json!(false));
}

// ---------------------------------------------------------------- SELinux

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

/// A process label and a file label of the guest's policy (Debian's refpolicy has no
/// container_t; the lane passes what it found).
fn labels() -> (String, String) {
    (
        env_or(
            "HUSK_SELINUX_PROCESS_LABEL",
            "system_u:system_r:svirt_t:s0:c1,c2",
        ),
        env_or(
            "HUSK_SELINUX_FILE_LABEL",
            "system_u:object_r:svirt_image_t:s0:c1,c2",
        ),
    )
}

/// The label `ls -Z` shows for `path`.
fn ls_label(path: &Path) -> String {
    let (ok, out) = sh("ls", &["-Zd", path.to_str().unwrap()]);
    assert!(ok, "ls -Zd {}: {out}", path.display());
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `label` with another MCS pair, for a second process label.
fn with_categories(label: &str, cats: &str) -> String {
    let parts: Vec<&str> = label.splitn(5, ':').collect();
    format!("{}:{}:{}:{}:{cats}", parts[0], parts[1], parts[2], parts[3])
}

#[test]
fn selinux_process_label_applies() {
    if lane("selinux", "selinux_process_label_applies") {
        return;
    }
    let (plabel, _) = labels();
    let rt = Runtime::new();
    // The init lists its keys (its own session keyring among them) where the host can read.
    let mut b = Bundle::sh("cat /proc/keys > /dev/shm/keys; exec sleep 100");
    b.edit(|c| {
        c["process"]["selinuxLabel"] = json!(plabel);
        // runc's default config masks /proc/keys.
        c["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    });
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let pid = pid_of(&rt, &id);
    assert_eq!(attr_current(pid), plabel);
    // exec: the container's label, or --process-label's.
    let o = rt
        .exec(&["exec", &id, "cat", "/proc/self/attr/current"])
        .expect_ok();
    assert_eq!(o.stdout.trim_end_matches(['\0', '\n']), plabel);
    let other = with_categories(&plabel, "c3,c4");
    let o = rt
        .exec(&[
            "exec",
            "--process-label",
            &other,
            &id,
            "cat",
            "/proc/self/attr/current",
        ])
        .expect_ok();
    assert_eq!(o.stdout.trim_end_matches(['\0', '\n']), other);
    // The session keyring the init joined carries the label (runc's SetKeyLabel): its id
    // from the container's /proc/keys, its label from the host (KEYCTL_GET_SECURITY).
    let keys_file = Path::new("/proc")
        .join(pid.to_string())
        .join("root/dev/shm/keys");
    let keys = (0..100)
        .find_map(|_| {
            let k = fs::read_to_string(&keys_file).unwrap_or_default();
            if k.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                None
            } else {
                Some(k)
            }
        })
        .unwrap_or_default();
    let ses = keys
        .lines()
        .find(|l| l.ends_with("_ses: empty") || l.contains(" _ses"))
        .unwrap_or_else(|| panic!("no session keyring in {keys:?}"));
    let key = i64::from_str_radix(ses.split_whitespace().next().unwrap(), 16).unwrap();
    assert_eq!(key_security(key), plabel, "{ses}");
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

/// keyctl(KEYCTL_GET_SECURITY): a key's SELinux label.
fn key_security(key: i64) -> String {
    const KEYCTL_GET_SECURITY: libc::c_long = 17;
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; the kernel writes at most that much.
    let n = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_SECURITY,
            key as libc::c_long,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    assert!(
        n > 0,
        "keyctl get_security {key}: {}",
        std::io::Error::last_os_error()
    );
    String::from_utf8_lossy(&buf[..n as usize])
        .trim_end_matches('\0')
        .to_string()
}

#[test]
fn selinux_mount_label_on_the_container_mounts() {
    if lane("selinux", "selinux_mount_label_on_the_container_mounts") {
        return;
    }
    let (plabel, flabel) = labels();
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| {
        c["process"]["selinuxLabel"] = json!(plabel);
        c["linux"]["mountLabel"] = json!(flabel);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "size=1m"]
        }));
        c["linux"]["maskedPaths"] = json!(["/proc/acpi", "/proc/kcore"]);
    });
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let root = Path::new("/proc")
        .join(pid_of(&rt, &id).to_string())
        .join("root");
    // tmpfs (context=), /dev (tmpfs), devpts (context=), mqueue (an xattr on its root), and
    // the tmpfs that masks a directory.
    for p in [
        "scratch",
        "dev",
        "dev/pts",
        "dev/mqueue",
        "dev/shm",
        "proc/acpi",
    ] {
        assert_eq!(ls_label(&root.join(p)), flabel, "/{p}");
    }
    // What the container's own mounts show: context= in the tmpfs's super options.
    let mi = fs::read_to_string(root.with_file_name("mountinfo")).unwrap();
    let scratch = mi.lines().find(|l| l.contains(" /scratch ")).unwrap();
    assert!(scratch.contains("context="), "{scratch}");
    rt.exec(&["delete", "--force", &id]).expect_ok();
}

#[test]
fn selinux_relabel_on_request() {
    if lane("selinux", "selinux_relabel_on_request") {
        return;
    }
    let (_, flabel) = labels();
    let private = TempDir::new("relabel-Z");
    let shared = TempDir::new("relabel-z");
    for d in [&private, &shared] {
        fs::create_dir(d.path().join("sub")).unwrap();
        fs::write(d.path().join("sub/file"), "x").unwrap();
    }
    let rt = Runtime::new();
    let mut b = Bundle::sh("cat /private/sub/file /shared/sub/file");
    b.edit(|c| {
        c["linux"]["mountLabel"] = json!(flabel);
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/private", "type": "bind",
            "source": private.path(), "options": ["rbind", "Z"]}));
        m.push(json!({"destination": "/shared", "type": "bind",
            "source": shared.path(), "options": ["rbind", "z"]}));
    });
    assert_eq!(rt.output(&b), "xx");
    let level_s0 = {
        let parts: Vec<&str> = flabel.splitn(4, ':').collect();
        format!("{}:{}:{}:s0", parts[0], parts[1], parts[2])
    };
    for p in ["", "sub", "sub/file"] {
        assert_eq!(ls_label(&private.path().join(p)), flabel, "Z: {p}");
        assert_eq!(ls_label(&shared.path().join(p)), level_s0, "z: {p}");
    }
}

#[test]
fn selinux_invalid_label_is_refused() {
    if lane("selinux", "selinux_invalid_label_is_refused") {
        return;
    }
    let bad = "system_u:system_r:husk_no_such_type_t:s0";
    let rt = Runtime::new();
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["process"]["selinuxLabel"] = json!(bad));
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg(bad)
        .expect_msg("not a valid context in the loaded policy");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn selinux_features_report_the_host() {
    if lane("selinux", "selinux_features_report_the_host") {
        return;
    }
    let rt = Runtime::new();
    let f: serde_json::Value =
        serde_json::from_str(&rt.exec(&["features"]).expect_ok().stdout).unwrap();
    assert_eq!(f["linux"]["selinux"]["enabled"], json!(true));
    assert_eq!(f["linux"]["apparmor"]["enabled"], json!(false));
}
