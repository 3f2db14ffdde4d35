//! The server against the real kernel (run as root, one at a time):
//! `cargo test -p procview --test server -- --test-threads=1`.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procview::{view, Layout, Registration};

const BIN: &str = env!("CARGO_BIN_EXE_husk-procview");
const ID: &str = "c1";

/// One test's state root, fake container and cgroup; everything is killed, unmounted and
/// removed on drop, also when the test fails.
struct Fixture {
    layout: Layout,
    cgroup: PathBuf,
    reg: Registration,
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn kill(pid: i32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Pids of live processes whose command line names `root`.
fn processes_of(root: &Path) -> Vec<i32> {
    let needle = root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("husk-procview") && cmd.contains(&needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

fn mountinfo_line(mnt: &Path) -> Option<String> {
    let m = mnt.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(m.as_str()))
        .map(str::to_string)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let root = PathBuf::from(format!("/tmp/procview-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(ID)).unwrap();
        let cgroup = PathBuf::from(format!(
            "/sys/fs/cgroup/memory/procview-test-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&cgroup).unwrap();
        let reg = Registration {
            cgroup: cgroups::Saved {
                layout: cgroups::Layout::Hybrid,
                dirs: vec![cgroup.clone()],
                unified: None,
                v1: vec![cgroups::V1Dir {
                    controllers: vec!["memory".into()],
                    dir: cgroup.clone(),
                }],
                systemd: None,
            },
            created_boottime_ns: 1,
        };
        let f = Fixture {
            layout: Layout::new(&root),
            cgroup,
            reg,
        };
        f.register();
        f
    }

    fn register(&self) {
        std::fs::write(
            self.layout.registration(ID),
            serde_json::to_vec(&self.reg).unwrap(),
        )
        .unwrap();
    }

    fn start(&self) {
        let g = procview::ensure_server(&self.layout, Some(Path::new(BIN))).unwrap();
        drop(g);
    }

    fn cpu(&self) -> PathBuf {
        self.layout.container(ID).join("cpu")
    }

    fn worker(&self) -> i32 {
        read_pid(&self.layout.worker_pid()).unwrap()
    }

    fn keeper(&self) -> i32 {
        read_pid(&self.layout.keeper_pid()).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.layout.log()).unwrap_or_default()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The worker first (it would start a new keeper), then the keeper, then anything of
        // this root still running (a keeper being started), until none is left.
        for p in [self.layout.worker_pid(), self.layout.keeper_pid()] {
            if let Some(pid) = read_pid(&p) {
                kill(pid, "KILL");
            }
        }
        // Stop them all first so none reacts to another's death, then kill.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let left = processes_of(&self.layout.root);
            if left.is_empty() {
                break;
            }
            for &pid in &left {
                kill(pid, "STOP");
            }
            for pid in left {
                kill(pid, "KILL");
            }
        }
        if mountinfo_line(&self.layout.mnt()).is_some() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.layout.mnt())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.layout.root);
        let _ = std::fs::remove_dir(&self.cgroup);
        std::thread::sleep(Duration::from_millis(50));
        for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(e.path().join(procview::keeper::CGROUP));
        }
    }
}

fn host(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new("/sys/devices/system/cpu").join(rel)).unwrap()
}

#[test]
fn serves_the_view_and_passes_sys_cpu_through() {
    let f = Fixture::new("serve");
    f.start();
    let line = mountinfo_line(&f.layout.mnt()).expect("mounted");
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|x| *x == "-").unwrap();
    assert_eq!(fields[dash + 1], "fuse.husk-procview", "{line}");
    assert!(fields[5].split(',').any(|o| o == "ro"), "{line}");
    eprintln!("mountinfo: {line}");

    // cpu/online is the view's (or its error's errno while the view is a stub).
    let got = std::fs::read(f.cpu().join("online"));
    match view::sys_cpu_online(&f.reg) {
        Ok(want) => assert_eq!(got.unwrap(), want),
        Err(e) => {
            let err = got.unwrap_err();
            eprintln!("cpu/online: view says {e}; read gives {err}");
            assert_eq!(err.raw_os_error(), Some(libc::EIO));
        }
    }
    // So are the /proc files.
    let got = std::fs::read(f.layout.container(ID).join("meminfo"));
    match view::render(
        procview::Entry::Meminfo,
        ID,
        &f.reg,
        &view::Loads::default(),
    ) {
        Ok(_) => assert!(got.unwrap().starts_with(b"MemTotal:")),
        Err(_) => {
            assert_eq!(got.unwrap_err().raw_os_error(), Some(libc::EIO));
            assert!(f.log().contains("meminfo"), "the render error is logged");
        }
    }

    // Passthrough: cpu0 is the host's first visible CPU.
    let visible = view::visible_cpus(&f.reg).unwrap_or_else(|_| {
        let s = String::from_utf8(host("online")).unwrap();
        procview::fs::parse_cpu_list(&s)
    });
    let core = std::fs::read(f.cpu().join("cpu0/topology/core_id")).unwrap();
    assert_eq!(core, host(&format!("cpu{}/topology/core_id", visible[0])));
    assert_eq!(
        std::fs::read(f.cpu().join("possible")).unwrap(),
        host("possible")
    );
    eprintln!(
        "cpu0/topology/core_id = {:?}, possible = {:?}",
        String::from_utf8_lossy(&core),
        String::from_utf8_lossy(&host("possible"))
    );
    // The listing has cpu0..cpu{k-1} only, and a symlink reads as the host's.
    let mut names: Vec<String> = std::fs::read_dir(f.cpu())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let cpus: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.strip_prefix("cpu")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert_eq!(cpus.len(), visible.len(), "{names:?}");
    assert!(names.contains(&"online".to_string()) && names.contains(&"possible".to_string()));
    let link = std::fs::read_link(f.cpu().join("cpu0/subsystem")).unwrap();
    assert_eq!(
        link,
        std::fs::read_link(format!(
            "/sys/devices/system/cpu/cpu{}/subsystem",
            visible[0]
        ))
        .unwrap()
    );
    assert!(std::fs::metadata(f.cpu().join(format!("cpu{}", visible.len()))).is_err());
    // Read-only, root-owned.
    let md = std::fs::metadata(f.layout.container(ID).join("meminfo")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o444, 0, 0));
    assert!(std::fs::OpenOptions::new()
        .write(true)
        .open(f.cpu().join("possible"))
        .is_err());
    // An unregistered id is not there.
    assert!(std::fs::metadata(f.layout.container("nope")).is_err());
    let s = procview::status(&f.layout);
    assert_eq!(s.containers, vec![ID.to_string()]);
    assert!(s.mounted && s.keeper.is_some() && s.worker.is_some());
    // ensure_server again finds it running: same keeper.
    let k = f.keeper();
    f.start();
    assert_eq!(f.keeper(), k);
}

/// Reads `core_id` (fresh opens and one long-lived open file) until told to stop and at least
/// `min` times; returns (reads, failures).
fn reader(
    path: PathBuf,
    min: usize,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let want = std::fs::read(&path).unwrap();
        let held = std::fs::File::open(&path).unwrap();
        let mut fails = Vec::new();
        let mut n = 0;
        while n < min || !stop.load(Ordering::Relaxed) {
            match std::fs::read(&path) {
                Ok(b) if b == want => {}
                Ok(b) => fails.push(format!("read {n}: {b:?}")),
                Err(e) => fails.push(format!("read {n}: {e}")),
            }
            let mut buf = [0u8; 64];
            match held.read_at(&mut buf, 0) {
                Ok(k) if buf[..k] == want[..] => {}
                Ok(k) => fails.push(format!("held read {n}: {:?}", &buf[..k])),
                Err(e) => fails.push(format!("held read {n}: {e}")),
            }
            n += 1;
            count.store(n, Ordering::Relaxed);
        }
        (n, fails)
    })
}

#[test]
fn a_killed_or_replaced_worker_loses_no_read() {
    let f = Fixture::new("worker");
    f.start();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let t = reader(
        f.cpu().join("cpu0/topology/core_id"),
        2000,
        stop.clone(),
        count.clone(),
    );
    wait_for("reads", 10, || count.load(Ordering::Relaxed) > 200);

    let old = f.worker();
    kill(old, "KILL");
    wait_for("a new worker", 15, || {
        read_pid(&f.layout.worker_pid()).is_some_and(|p| p != old && alive(p))
    });
    let new = f.worker();
    eprintln!("worker {old} killed; worker {new} took over");
    let at = count.load(Ordering::Relaxed);
    wait_for("reads through the new worker", 10, || {
        count.load(Ordering::Relaxed) > at + 200
    });

    let mut pids = vec![new];
    for _ in 0..5 {
        procview::restart(&f.layout).unwrap();
        let p = f.worker();
        assert!(!pids.contains(&p));
        pids.push(p);
        let at = count.load(Ordering::Relaxed);
        wait_for("reads after a restart", 10, || {
            count.load(Ordering::Relaxed) > at + 50
        });
    }
    eprintln!("workers after 5 restarts: {pids:?}");
    stop.store(true, Ordering::Relaxed);
    let (n, fails) = t.join().unwrap();
    eprintln!(
        "{n} reads (twice each: fresh open and a held file), {} failed",
        fails.len()
    );
    assert!(n >= 2000);
    assert!(fails.is_empty(), "{fails:?}\nlog:\n{}", f.log());
    // Old workers are gone; the mount still answers.
    for p in &pids[..pids.len() - 1] {
        wait_for("an old worker to exit", 10, || !alive(*p));
    }
    assert!(!alive(old));
    assert!(procview::status(&f.layout).mounted);
    assert!(f.log().contains("resend: true"), "{}", f.log());
}

#[test]
fn a_killed_keeper_is_replaced_by_the_worker() {
    let f = Fixture::new("keeper");
    f.start();
    let want = host("cpu0/topology/core_id");
    let (k, w) = (f.keeper(), f.worker());
    kill(k, "KILL");
    wait_for("a new keeper", 10, || {
        read_pid(&f.layout.keeper_pid()).is_some_and(|p| p != k && alive(p))
    });
    let k2 = f.keeper();
    eprintln!("keeper {k} killed; worker {w} started keeper {k2}");
    assert_eq!(f.worker(), w);
    assert_eq!(
        std::fs::read(f.cpu().join("cpu0/topology/core_id")).unwrap(),
        want
    );
    // The new keeper does a keeper's job: it restarts a killed worker.
    kill(w, "KILL");
    wait_for("a new worker", 15, || {
        read_pid(&f.layout.worker_pid()).is_some_and(|p| p != w && alive(p))
    });
    assert_eq!(
        std::fs::read(f.cpu().join("cpu0/topology/core_id")).unwrap(),
        want
    );
    assert!(mountinfo_line(&f.layout.mnt()).is_some());
    // SIGUSR2: the keeper re-executes itself (same pid) and adopts the running worker.
    let w2 = f.worker();
    kill(k2, "USR2");
    let adopted = format!("keeper {k2} adopts worker {w2}");
    wait_for("the re-executed keeper", 10, || f.log().contains(&adopted));
    assert_eq!((f.keeper(), f.worker()), (k2, w2));
    assert!(alive(k2) && alive(w2));
    assert_eq!(
        std::fs::read(f.cpu().join("cpu0/topology/core_id")).unwrap(),
        want
    );
    eprintln!("SIGUSR2: keeper {k2} re-executed and adopted worker {w2}");
}

#[test]
fn the_server_exits_when_idle() {
    let f = Fixture::new("idle");
    f.start();
    let (k, w) = (f.keeper(), f.worker());
    let cg: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(procview::keeper::CGROUP))
        .filter(|p| p.is_dir())
        .collect();
    assert!(!cg.is_empty(), "the keeper moved into its cgroups");
    let procs = std::fs::read_to_string(cg[0].join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == k.to_string()), "{procs}");
    // Registered: SIGTERM does not stop it.
    procview::stop_if_idle(&f.layout).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(k) && procview::status(&f.layout).mounted);

    std::fs::remove_file(f.layout.registration(ID)).unwrap();
    procview::stop_if_idle(&f.layout).unwrap();
    wait_for(".procview removed", 10, || !f.layout.dir.exists());
    wait_for("keeper and worker gone", 10, || !alive(k) && !alive(w));
    assert!(mountinfo_line(&f.layout.mnt()).is_none());
    assert!(processes_of(&f.layout.root).is_empty());
    for p in &cg {
        assert!(!p.exists(), "{} left", p.display());
    }
}

#[test]
fn no_dev_fuse_is_named_and_leaves_nothing() {
    let f = Fixture::new("nofuse");
    let script = format!(
        "mount --bind /dev/null /dev/fuse && exec {BIN} start --root {} --binary {BIN}",
        f.layout.root.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("status {:?}, stderr: {err}", out.status.code());
    assert!(!out.status.success());
    assert!(
        err.contains("/dev/fuse") && err.contains("load the fuse module"),
        "{err}"
    );
    assert!(!f.layout.dir.exists());
    assert!(mountinfo_line(&f.layout.mnt()).is_none());
    assert!(processes_of(&f.layout.root).is_empty());
    // And the library says the same in-process when the device is missing: (checked above
    // through the CLI, which calls ensure_server).
    let mut s = String::new();
    let _ = std::io::Cursor::new(err.as_bytes()).read_to_string(&mut s);
    assert!(s.contains("10:229") || s.contains("no such device"), "{s}");
}

#[test]
fn a_cgroup_gone_while_registered_is_a_read_error_not_a_hang() {
    let f = Fixture::new("gone");
    f.start();
    let meminfo = f.layout.container(ID).join("meminfo");
    assert!(std::fs::read(&meminfo).unwrap().starts_with(b"MemTotal:"));
    // The container's memory cgroup disappears (its registration stays): reads fail at
    // once with the cgroup file's errno, and the server keeps serving.
    std::fs::remove_dir(&f.cgroup).unwrap();
    let err = std::fs::read(&meminfo).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert!(
        f.log().contains("memory"),
        "the cause is logged: {}",
        f.log()
    );
    assert!(std::fs::read(f.cpu().join("possible")).is_ok());
}
