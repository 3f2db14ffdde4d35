//! `run -t` and `exec -t` in the foreground without a console socket, driven through a pty
//! the test owns, as `script` or a tmux pane would: husk gets the slave as stdin, stdout,
//! stderr and controlling terminal, and the test plays the user on the master. The calling
//! terminal is raw while the container runs and restored after it (normal exit, kill from
//! outside), its size reaches the container at start and on resize, ^C reaches the container's
//! shell, and output to a pipe has no "\r" added.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration::*;

/// The bound on each wait for output or exit: a failure, never a hang.
const T: Duration = Duration::from_secs(20);

/// A pty pair; the test holds both ends.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    /// A new pty of `rows` x `cols`; both fds close-on-exec from the start, so that no other
    /// test's child inherits them.
    fn new(rows: u16, cols: u16) -> Pty {
        let master: OwnedFd = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/ptmx")
            .unwrap()
            .into();
        // SAFETY: ioctls on the master we just opened; TIOCSPTLCK takes a pointer to an
        // int, TIOCGPTPEER open flags, and the new fd is ours alone.
        let slave = unsafe {
            let unlock: libc::c_int = 0;
            assert_eq!(
                libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock),
                0
            );
            let fd = libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            assert!(fd >= 0, "TIOCGPTPEER: {}", std::io::Error::last_os_error());
            std::os::fd::FromRawFd::from_raw_fd(fd)
        };
        let p = Pty { master, slave };
        p.resize(rows, cols);
        p
    }

    /// TIOCSWINSZ on the master: the kernel sends SIGWINCH to the pty's foreground process
    /// group (husk) when the size changes.
    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize through a valid pointer.
        assert_eq!(
            unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
            0
        );
    }

    /// The slave's termios: what the calling terminal is set to.
    fn termios(&self) -> libc::termios {
        // SAFETY: termios is plain data; tcgetattr fills it through a valid pointer.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self.slave.as_raw_fd(), &mut t), 0);
            t
        }
    }

    /// Types `s` on the keyboard.
    fn type_in(&self, s: &[u8]) {
        let mut f = File::from(self.master.try_clone().unwrap());
        std::io::Write::write_all(&mut f, s).unwrap();
    }

    /// Reads what the terminal shows until `want` appears (or T passes: the caller's
    /// assertion then fails on what was read).
    fn read_until(&self, want: &str) -> String {
        read_until(self.master.as_raw_fd(), want)
    }

    /// `cmd` on this terminal: stdin, stdout and stderr the slave (stdout `out` instead when
    /// given), in a new session whose controlling terminal it is, so that husk is the
    /// foreground process group that gets SIGWINCH.
    fn spawn(&self, mut cmd: Command, out: Option<Stdio>) -> Child {
        let fd = |p: &Pty| Stdio::from(p.slave.try_clone().unwrap());
        cmd.stdin(fd(self))
            .stdout(out.unwrap_or_else(|| fd(self)))
            .stderr(fd(self));
        // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }
}

fn read_until(fd: RawFd, want: &str) -> String {
    let deadline = Instant::now() + T;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(want) && Instant::now() < deadline {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, 100) } <= 0 {
            continue;
        }
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a termios that raw mode changes and a restore must bring back, comparable.
fn modes(t: &libc::termios) -> (u32, u32, u32, u32, u8, [u8; 32], u32, u32) {
    (
        t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, t.c_line, t.c_cc, t.c_ispeed, t.c_ospeed,
    )
}

/// `husk --root ROOT ARGS...` as a plain Command (the pty, not files, is its stdio).
fn husk(rt: &Runtime, args: &[&str]) -> Command {
    let mut c = Command::new(husk_bin());
    c.args(["--root", &rt.root_str()]).args(args);
    c
}

fn terminal_bundle(script: &str) -> Bundle {
    let mut b = Bundle::sh(script);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    b
}

#[track_caller]
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    wait_bounded(child, T).expect("husk did not exit")
}

/// `husk run` of a terminal bundle running `script` on a new pty of `rows` x `cols`, with the
/// container's first output up to "ready" (which it must print).
struct Session {
    b: Bundle,
    id: String,
    pty: Pty,
    before: libc::termios,
    husk: Child,
    ready: String,
}

fn session(rt: &Runtime, script: &str, rows: u16, cols: u16) -> Session {
    let b = terminal_bundle(script);
    let id = rt.id();
    let pty = Pty::new(rows, cols);
    let before = pty.termios();
    let husk = pty.spawn(husk(rt, &["run", "--bundle", &b.path_str(), &id]), None);
    let ready = pty.read_until("ready");
    assert!(ready.contains("ready"), "{ready:?}");
    Session {
        b,
        id,
        pty,
        before,
        husk,
        ready,
    }
}

impl Session {
    /// Waits for husk's exit; asserts that the calling terminal's modes are back and that
    /// nothing of the container remains.
    #[track_caller]
    fn finish(mut self, rt: &Runtime, after: &str) -> std::process::ExitStatus {
        let st = wait_exit(&mut self.husk);
        assert_eq!(
            modes(&self.pty.termios()),
            modes(&self.before),
            "terminal not restored after {after}"
        );
        assert_nothing_remains(rt, &self.id, Some(self.b.path()));
        st
    }
}

/// A container loop that prints its terminal's size at start and on each SIGWINCH, and ends
/// on a line "q". (busybox sh's `read` returns when a trapped signal arrives.)
const SIZE_LOOP: &str = "stty size; trap 'stty size' WINCH; echo ready; \
     while :; do read l; [ \"$l\" = q ] && break; done; echo bye";

#[test]
fn run_sizes_raw_mode_and_restore() {
    let rt = Runtime::new();
    let s = session(&rt, SIZE_LOOP, 37, 113);
    // runc 1.1.5 copies the size only after the container has started: a race.
    if !skip_for_runc("runc copies the terminal's size to the pty after the start") {
        assert!(
            s.ready.contains("37 113\r\nready"),
            "size at start: {:?}",
            s.ready
        );
    }
    let raw = s.pty.termios();
    assert_eq!(
        raw.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG),
        0,
        "calling terminal not raw while the container runs"
    );
    assert_eq!(raw.c_iflag & (libc::ICRNL | libc::IXON), 0);

    s.pty.resize(41, 99);
    let out = s.pty.read_until("41 99");
    assert!(out.contains("41 99"), "resize not seen inside: {out:?}");
    s.pty.resize(20, 70);
    let out = s.pty.read_until("20 70");
    assert!(
        out.contains("20 70"),
        "second resize not seen inside: {out:?}"
    );

    // Enter in a raw terminal is "\r"; the container's pty turns it into "\n".
    s.pty.type_in(b"q\r");
    let out = s.pty.read_until("bye");
    assert!(out.contains("bye"), "{out:?}");
    let st = s.finish(&rt, "a normal exit");
    assert_eq!(st.code(), Some(0));
}

#[test]
fn run_ctrl_c_reaches_the_container_and_kill_restores_the_terminal() {
    let rt = Runtime::new();
    let mut s = session(
        &rt,
        "trap 'echo got-int' INT; echo ready; while :; do read l; done",
        25,
        80,
    );
    s.pty.type_in(b"\x03");
    let out = s.pty.read_until("got-int");
    assert!(
        out.contains("got-int"),
        "^C did not reach the container: {out:?}"
    );
    assert!(s.husk.try_wait().unwrap().is_none(), "husk ended on ^C");
    assert_eq!(rt.status(&s.id), "running");

    rt.exec(&["kill", &s.id, "KILL"]).expect_ok();
    let st = s.finish(&rt, "the container was killed");
    assert_eq!(st.code(), Some(137), "{st:?}");
}

#[test]
fn run_signal_to_husk_is_forwarded_and_the_terminal_restored() {
    let rt = Runtime::new();
    let s = session(
        &rt,
        "trap 'echo got-term; exit 3' TERM; echo ready; while :; do read l; done",
        25,
        80,
    );
    kill(s.husk.id() as i32, libc::SIGTERM);
    let out = s.pty.read_until("got-term");
    assert!(out.contains("got-term"), "SIGTERM not forwarded: {out:?}");
    let st = s.finish(&rt, "a forwarded SIGTERM");
    assert_eq!((st.code(), st.signal()), (Some(3), None), "{st:?}");
}

#[test]
fn exec_tty_sizes_ctrl_c_and_restore() {
    let rt = Runtime::new();
    let b = Bundle::sh("sleep 1000");
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();

    let pty = Pty::new(29, 101);
    let before = pty.termios();
    let script = format!("trap 'echo got-int' INT; {SIZE_LOOP}");
    let mut husk = pty.spawn(husk(&rt, &["exec", "-t", &id, "sh", "-c", &script]), None);
    let out = pty.read_until("ready");
    // runc 1.1.5 copies the size only after the process has started: a race.
    if !skip_for_runc("runc copies the terminal's size to the pty after the start") {
        assert!(out.contains("29 101\r\nready"), "size at start: {out:?}");
    }
    assert!(out.contains("ready"), "{out:?}");
    pty.resize(33, 88);
    let out = pty.read_until("33 88");
    assert!(out.contains("33 88"), "resize not seen inside: {out:?}");

    pty.type_in(b"\x03");
    let out = pty.read_until("got-int");
    assert!(
        out.contains("got-int"),
        "^C did not reach the exec'd shell: {out:?}"
    );
    assert!(husk.try_wait().unwrap().is_none(), "husk exec ended on ^C");

    pty.type_in(b"q\r");
    let out = pty.read_until("bye");
    assert!(out.contains("bye"), "{out:?}");
    let st = wait_exit(&mut husk);
    assert_eq!(st.code(), Some(0));
    assert_eq!(modes(&pty.termios()), modes(&before));
    assert_eq!(rt.status(&id), "running", "the container outlives the exec");

    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// Output to a terminal passes through byte for byte: ordinary lines get "\r\n" from the
/// container's pty, and a program that turns output processing off gets exactly its bytes.
#[test]
fn run_output_to_a_terminal_is_passed_through() {
    let rt = Runtime::new();
    let b = terminal_bundle("echo a; stty -opost; printf 'x\\ny\\nEND'; stty opost");
    let id = rt.id();
    let pty = Pty::new(25, 80);
    let mut husk = pty.spawn(husk(&rt, &["run", "--bundle", &b.path_str(), &id]), None);
    let out = pty.read_until("END");
    assert!(out.contains("a\r\n"), "{out:?}");
    if !skip_for_runc("runc leaves output processing on in the calling terminal") {
        assert!(out.contains("x\ny\nEND"), "{out:?}");
    }
    assert_eq!(wait_exit(&mut husk).code(), Some(0));
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// `husk run -t ... | cmd` with stdin on a terminal: no "\r" in the pipe, and the terminal
/// keeps output processing (what `cmd` prints there is not staircased) and is restored.
#[test]
fn run_stdout_pipe_gets_newlines_untranslated() {
    let rt = Runtime::new();
    let b = terminal_bundle("echo a; echo b; printf 'c\\r\\n'");
    let id = rt.id();
    let pty = Pty::new(25, 80);
    let before = pty.termios();
    let mut husk = pty.spawn(
        husk(&rt, &["run", "--bundle", &b.path_str(), &id]),
        Some(Stdio::piped()),
    );
    let mut stdout = husk.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let st = wait_exit(&mut husk);
    assert_eq!(st.code(), Some(0));
    assert_eq!(reader.join().unwrap(), "a\nb\nc\r\n");
    assert_eq!(modes(&pty.termios()), modes(&before));
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// No terminal at all (stdin /dev/null, stdout a file): the same.
#[test]
fn run_without_any_terminal_gets_newlines_untranslated() {
    let rt = Runtime::new();
    let b = terminal_bundle("echo a; echo b");
    let id = rt.id();
    let o = rt.run(&b, &id);
    if o.code() != 0 && skip_for_runc("runc needs a terminal to run a terminal container") {
        return;
    }
    let o = o.expect_ok();
    assert_eq!(o.stdout, "a\nb\n");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// Without a PID namespace a process can outlive the init and keep writing to the pty: husk
/// still ends (it stops copying after a bounded drain) and the clean-up kills that process.
#[test]
fn run_ends_while_a_leftover_process_keeps_writing() {
    let rt = Runtime::new();
    let mut b = terminal_bundle("(while :; do echo spam; done) & echo main-done");
    b.edit(|c| remove_ns(c, "pid"));
    let id = rt.id();
    let pty = Pty::new(25, 80);
    let before = pty.termios();
    let mut husk = pty.spawn(
        husk(&rt, &["run", "--bundle", &b.path_str(), &id]),
        Some(Stdio::null()),
    );
    let st = wait_exit(&mut husk);
    assert_eq!(st.code(), Some(0), "{st:?}");
    assert_eq!(modes(&pty.termios()), modes(&before));
    assert_nothing_remains(&rt, &id, Some(b.path()));
}
