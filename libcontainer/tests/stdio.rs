//! The container's stdio as the library's caller gives it: pipes it gets back, fds it owns,
//! /dev/null, and a pty master returned; for the init (`create`) and for `spawn_exec`. As root.

mod support;

use std::io::{Read, Write};

use libcontainer::{Console, Container, CreateOptions, ExecOptions, Runtime, Stdio};
use support::{busybox_bundle, temp_dir, unique_id};

/// Creates and starts a container of `bundle` with `opts`; returns it with its init.
fn started(rt: &Runtime, opts: &CreateOptions) -> (Container, libcontainer::Process) {
    let mut c = rt.create(&unique_id("stdio"), opts).unwrap();
    let p = c.take_process().expect("create returns the init");
    c.start().unwrap();
    (c, p)
}

fn read_all(f: &mut Option<std::fs::File>) -> String {
    let mut s = String::new();
    f.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn piped_stdout_and_stderr_are_captured_to_eof() {
    let dir = temp_dir("stdio-pipes");
    let bundle = busybox_bundle(
        &dir.join("b"),
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
    )
    .unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    let mut opts = CreateOptions::new(&bundle);
    opts.stdout = Stdio::piped();
    opts.stderr = Stdio::piped();
    let (c, mut p) = started(&rt, &opts);
    // read_to_string returns only at EOF: the container held the last write ends.
    assert_eq!(read_all(&mut p.stdout), "to-out\n");
    assert_eq!(read_all(&mut p.stderr), "to-err\n");
    assert_eq!(p.wait().unwrap(), 3);
    assert!(p.stdin.is_none(), "stdin was not piped");
    c.delete(false).unwrap();
}

#[test]
fn piped_stdin_is_fed_and_its_eof_seen() {
    let dir = temp_dir("stdio-stdin");
    let bundle = busybox_bundle(&dir.join("b"), &["cat"]).unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    let mut opts = CreateOptions::new(&bundle);
    opts.stdin = Stdio::piped();
    opts.stdout = Stdio::piped();
    let (c, mut p) = started(&rt, &opts);
    let mut input = p.stdin.take().unwrap();
    input.write_all(b"fed through the pipe\n").unwrap();
    // cat exits only when it sees EOF on stdin: closing our end must be the last one.
    drop(input);
    assert_eq!(read_all(&mut p.stdout), "fed through the pipe\n");
    assert_eq!(p.wait().unwrap(), 0);
    c.delete(false).unwrap();
}

#[test]
fn stdio_by_owned_fd_and_null() {
    let dir = temp_dir("stdio-fd");
    let bundle = busybox_bundle(
        &dir.join("b"),
        &["sh", "-c", "cat; echo written-by-the-container"],
    )
    .unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    let log = dir.join("out.log");
    let mut opts = CreateOptions::new(&bundle);
    opts.stdin = Stdio::null();
    opts.stdout = Stdio::from(std::fs::File::create(&log).unwrap());
    let (c, p) = started(&rt, &opts);
    // stdin is /dev/null: cat ends at once, with nothing.
    assert_eq!(p.wait().unwrap(), 0);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "written-by-the-container\n"
    );
    c.delete(false).unwrap();
}

/// Reads a pty master until the slave side is gone (EIO).
fn read_pty(master: std::os::fd::OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("reading the pty: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn pty_master_is_returned() {
    let dir = temp_dir("stdio-pty");
    let bundle = dir.join("b");
    support::busybox_rootfs(&bundle).unwrap();
    let spec = support::busybox_tty_spec(&["sh", "-c", "tty; echo on-the-pty"]);
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    let mut opts = CreateOptions::from_spec(&bundle, spec);
    opts.console = Console::Return;
    let (c, mut p) = started(&rt, &opts);
    let out = read_pty(p.pty.take().expect("the pty master"));
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("on-the-pty"), "{out:?}");
    assert_eq!(p.wait().unwrap(), 0);
    c.delete(false).unwrap();

    // `run` returns no Process to hand the pty to: Console::Return is refused there.
    let spec = support::busybox_tty_spec(&["true"]);
    let opts = CreateOptions::from_spec(&bundle, spec);
    match rt.run(&unique_id("stdio-run-pty"), &opts, Default::default()) {
        Err(libcontainer::Error::InvalidConfig { field, msg }) => {
            assert_eq!(field, "process.terminal");
            assert!(msg.contains("Console::Return"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(rt.list().unwrap().is_empty());

    // A terminal and pipes together: refused, nothing left behind.
    let spec = support::busybox_tty_spec(&["true"]);
    let mut opts = CreateOptions::from_spec(&bundle, spec);
    opts.stdout = Stdio::piped();
    let id = unique_id("stdio-pty-pipe");
    match rt.create(&id, &opts) {
        Err(libcontainer::Error::InvalidConfig { field, .. }) => {
            assert_eq!(field, "process.terminal")
        }
        other => panic!("{other:?}"),
    }
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn exec_process_stdio_and_pty() {
    let dir = temp_dir("stdio-exec");
    let bundle = busybox_bundle(&dir.join("b"), &["sleep", "100"]).unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    let (c, init) = started(&rt, &CreateOptions::new(&bundle));

    let mut o = ExecOptions::new(["sh", "-c", "read x; echo got-$x; echo err-$x >&2; exit 4"]);
    o.stdin = Stdio::piped();
    o.stdout = Stdio::piped();
    o.stderr = Stdio::piped();
    let mut p = c.spawn_exec(&o).unwrap();
    p.stdin.take().unwrap().write_all(b"line\n").unwrap();
    assert_eq!(read_all(&mut p.stdout), "got-line\n");
    assert_eq!(read_all(&mut p.stderr), "err-line\n");
    assert_eq!(p.wait().unwrap(), 4);

    let mut o = ExecOptions::new(["sh", "-c", "tty; echo exec-on-pty"]);
    o.tty = true;
    // `exec` waits and returns no Process: the pty cannot be handed out there.
    match c.exec(&o) {
        Err(libcontainer::Error::InvalidArgument(msg)) => {
            assert!(msg.contains("Console::Return"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    let mut p = c.spawn_exec(&o).unwrap();
    let out = read_pty(p.pty.take().expect("the exec's pty master"));
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("exec-on-pty"), "{out:?}");
    assert_eq!(p.wait().unwrap(), 0);

    c.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(init.wait().unwrap(), 128 + libc::SIGKILL);
    c.delete(false).unwrap();
    assert!(rt.list().unwrap().is_empty());
}

/// What each fd of `pid` is ("pipe:[123]", "socket:[456]", a path).
fn fds_of(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_created_init_holds_none_of_the_callers_other_fds() {
    use std::os::fd::AsRawFd;
    let dir = temp_dir("stdio-leak");
    let bundle = busybox_bundle(&dir.join("b"), &["true"]).unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    // A connection the caller has open (close-on-exec, as every fd std opens): before exec,
    // only an explicit close keeps it out of the init, which waits for `start` for as long as
    // the caller likes (another thread's connection, another container's pipe...).
    let (ours, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let ours = std::fs::read_link(format!("/proc/self/fd/{}", ours.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut opts = CreateOptions::new(&bundle);
    opts.stdout = Stdio::piped();
    let mut c = rt.create(&unique_id("leak"), &opts).unwrap();
    let mut p = c.take_process().unwrap();
    let held = fds_of(p.pid());
    assert!(
        !held.contains(&ours),
        "the created init holds the caller's {ours}: {held:?}"
    );
    // Its own stdout pipe it does hold, on fd 1.
    let fd1 = std::fs::read_link(format!("/proc/{}/fd/1", p.pid())).unwrap();
    assert!(fd1.to_string_lossy().starts_with("pipe:"), "{fd1:?}");
    c.start().unwrap();
    assert_eq!(read_all(&mut p.stdout), "");
    assert_eq!(p.wait().unwrap(), 0);
    c.delete(false).unwrap();
}
