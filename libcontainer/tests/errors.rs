//! Every `Error` variant an engine acts on, each produced by a real failure (as root) and
//! matched by type, not by text; a failed create leaves no state behind.

mod support;

use std::path::Path;

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::{CreateOptions, Error, HookFailure, HookKind, Runtime, Status};
use support::{busybox_bundle, busybox_spec, temp_dir, unique_id};

/// `spec` with the JSON edit `f` applied (fields oci-spec has no setter shortcut for).
fn edit(spec: &Spec, f: impl FnOnce(&mut serde_json::Value)) -> Spec {
    let mut v = serde_json::to_value(spec).unwrap();
    f(&mut v);
    serde_json::from_value(v).unwrap()
}

struct Fixture {
    dir: std::path::PathBuf,
    bundle: std::path::PathBuf,
    rt: Runtime,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir = temp_dir(tag);
        let bundle = busybox_bundle(&dir.join("b"), &["true"]).unwrap();
        Fixture {
            rt: Runtime::new(dir.join("state")),
            dir,
            bundle,
        }
    }

    /// A create of `spec` that must fail; checks it left no state directory.
    fn create_fails(&self, spec: Spec) -> Error {
        let id = unique_id("err");
        let err = self
            .rt
            .create(&id, &CreateOptions::from_spec(&self.bundle, spec))
            .expect_err("create should fail");
        assert!(
            !self.rt.root().join(&id).exists(),
            "{id} left behind after: {err}"
        );
        err
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for s in self.rt.list().unwrap_or_default() {
            let _ = self.rt.container(&s.id).and_then(|c| c.delete(true));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn lookup_and_state_errors() {
    let f = Fixture::new("err-state");
    match f.rt.container("no-such") {
        Err(Error::NotFound(id)) => assert_eq!(id, "no-such"),
        other => panic!("{other:?}"),
    }
    match f.rt.create("a/b", &CreateOptions::new(&f.bundle)) {
        Err(Error::InvalidId { id, .. }) => assert_eq!(id, "a/b"),
        other => panic!("{other:?}"),
    }
    let sleeper = busybox_spec(&["sleep", "100"]);
    let id = unique_id("err-dup");
    let opts = CreateOptions::from_spec(&f.bundle, sleeper);
    let c = f.rt.create(&id, &opts).unwrap();
    match f.rt.create(&id, &opts) {
        Err(Error::AlreadyExists(dup)) => assert_eq!(dup, id),
        other => panic!("{other:?}"),
    }
    match c.exec(&libcontainer::ExecOptions::default()) {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("needs a command"), "{msg}"),
        other => panic!("{other:?}"),
    }
    c.start().unwrap();
    match c.start() {
        Err(Error::WrongState { status, .. }) => assert_eq!(status, Status::Running),
        other => panic!("{other:?}"),
    }
    let pidfd = c.pidfd().unwrap();
    c.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(pidfd.wait().unwrap(), 128 + libc::SIGKILL);
    match c.kill(libc::SIGTERM, false) {
        Err(Error::NotRunning) => {}
        other => panic!("{other:?}"),
    }
    c.delete(false).unwrap();
    // A system call of the runtime itself: the errno is there to match.
    let e = Runtime::new("/proc/version/x").list().unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
}

#[test]
fn config_errors_name_the_field() {
    let f = Fixture::new("err-config");
    // config.json that does not parse: the JSON path of the bad field.
    let b = f.dir.join("bad");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(
        b.join("config.json"),
        br#"{"ociVersion": "1.3.0", "process": {"args": 3}}"#,
    )
    .unwrap();
    match f.rt.create(&unique_id("err"), &CreateOptions::new(&b)) {
        Err(Error::Config { path, field, .. }) => {
            assert_eq!(path, b.join("config.json"));
            assert_eq!(field.as_deref(), Some("process.args"));
        }
        other => panic!("{other:?}"),
    }
    let spec = busybox_spec(&["true"]);
    let relative_cwd = edit(&spec, |v| v["process"]["cwd"] = "relative".into());
    match f.create_fails(relative_cwd) {
        Error::InvalidConfig { field, msg } => {
            assert_eq!(field, "process.cwd");
            assert!(msg.contains("absolute"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let rdt = edit(&spec, |v| {
        v["linux"]["intelRdt"] = serde_json::json!({"closID": "x"})
    });
    match f.create_fails(rdt) {
        Error::Unsupported { feature, .. } => assert_eq!(feature, "linux.intelRdt"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn executable_errors() {
    let f = Fixture::new("err-exec");
    match f.create_fails(busybox_spec(&["no-such-program"])) {
        Error::ExecutableNotFound { name, msg } => {
            assert_eq!(name, "no-such-program");
            // runc's wording, which engines match on.
            assert!(msg.contains("executable file not found in $PATH"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    match f.create_fails(busybox_spec(&["/no/such/file"])) {
        Error::ExecutableNotFound { name, .. } => assert_eq!(name, "/no/such/file"),
        other => panic!("{other:?}"),
    }
    // A directory is not executable.
    match f.create_fails(busybox_spec(&["/bin"])) {
        Error::NotExecutable { path, errno, .. } => {
            assert_eq!((path.as_str(), errno), ("/bin", libc::EACCES))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hook_errors_say_which_hook_and_how() {
    let f = Fixture::new("err-hook");
    let spec = busybox_spec(&["true"]);
    // Run by the runtime (createRuntime), and by the container's init (createContainer).
    let runtime_hook = edit(&spec, |v| {
        v["hooks"] = serde_json::json!({"createRuntime": [
            {"path": "/bin/true"}, {"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}]})
    });
    match f.create_fails(runtime_hook) {
        Error::Hook {
            kind,
            index,
            path,
            failure,
            ..
        } => {
            assert_eq!((kind, index), (HookKind::CreateRuntime, 1));
            assert_eq!(path, Path::new("/bin/sh"));
            assert_eq!(failure, HookFailure::Exited(5));
        }
        other => panic!("{other:?}"),
    }
    let container_hook = edit(&spec, |v| {
        v["hooks"] = serde_json::json!({"createContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})
    });
    match f.create_fails(container_hook) {
        Error::Hook {
            kind,
            index,
            failure,
            ..
        } => {
            assert_eq!((kind, index), (HookKind::CreateContainer, 0));
            assert_eq!(failure, HookFailure::Exited(3));
        }
        other => panic!("{other:?}"),
    }
    let slow = edit(&spec, |v| {
        v["hooks"] = serde_json::json!({"prestart": [
            {"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]})
    });
    match f.create_fails(slow) {
        Error::Hook { kind, failure, .. } => {
            assert_eq!(kind, HookKind::Prestart);
            assert_eq!(failure, HookFailure::TimedOut(1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mount_setup_and_cgroup_errors() {
    let f = Fixture::new("err-mount");
    let spec = busybox_spec(&["true"]);
    let n = spec.mounts().as_ref().map_or(0, Vec::len);
    let bad_fs = edit(&spec, |v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/mnt", "type": "nosuchfs", "source": "none"}))
    });
    match f.create_fails(bad_fs) {
        Error::Mount {
            destination,
            index,
            errno,
            ..
        } => {
            assert_eq!(destination, Path::new("/mnt"));
            assert_eq!(index, Some(n));
            assert_eq!(errno, libc::ENODEV);
        }
        other => panic!("{other:?}"),
    }
    // A step of the container's set-up other than a mount: a sysctl the kernel refuses.
    let sysctl = edit(&spec, |v| {
        v["linux"]["sysctl"] = serde_json::json!({"kernel.msgmax": "not-a-number"})
    });
    match f.create_fails(sysctl) {
        Error::Setup { errno, msg } => {
            assert_eq!(errno, Some(libc::EINVAL));
            assert!(msg.contains("kernel.msgmax"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // A cgroup file that refuses its value names the file.
    let cpus = edit(&spec, |v| {
        v["linux"]["resources"] = serde_json::json!({"cpu": {"cpus": "4095"}})
    });
    match f.create_fails(cpus) {
        Error::Cgroup(e @ libcontainer::cgroups::Error::ResourceIo { .. }) => {
            let libcontainer::cgroups::Error::ResourceIo { ref path, .. } = e else {
                unreachable!()
            };
            assert!(path.ends_with("cpuset.cpus"), "{}", path.display());
            assert!(Error::Cgroup(e).raw_os_error().is_some());
        }
        other => panic!("{other:?}"),
    }
}
