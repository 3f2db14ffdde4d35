//! The resource view's server replaced under load (issue 18): 50 containers, each with the
//! view and a 256 MiB memory limit, read /proc/meminfo in a loop while the server's worker is
//! replaced 20 times gracefully (`husk-procview restart --root R` and SIGHUP to the keeper,
//! alternately) and SIGKILLed 5 times (the keeper starts a new one and has the kernel resend
//! the reads in flight). Every read in every container must have seen the container's own
//! MemTotal; the mounts still read afterwards; nothing of the server remains after the last
//! delete.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration::*;

const ANNOTATION: &str = "io.github.husk.resource-view";
const HIERARCHIES: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "unified",
];
const CONTAINERS: usize = 50;
const GRACEFUL: usize = 20;
const KILLS: usize = 5;
/// Reads (all containers together) that must land after each replacement before the next.
const READS_BETWEEN: u64 = 200;

/// A parent cgroup for the test's containers, removed (best effort) on drop; declared before
/// the Runtime so the containers go first.
struct Parent(String);

impl Parent {
    fn new() -> Parent {
        Parent(format!("husk-it-pvr-{}", std::process::id()))
    }
    fn child(&self, n: usize) -> String {
        format!("/{}/c{n}", self.0)
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        // The named systemd hierarchy too, where this host has one (husk joins it).
        for h in HIERARCHIES.iter().chain(&["systemd"]) {
            let dir = Path::new("/sys/fs/cgroup").join(h).join(&self.0);
            if let Ok(rd) = fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
            for _ in 0..50 {
                match fs::remove_dir(&dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// The loop each container runs: it waits for /ctl/go, then reads the first line of
/// /proc/meminfo until /ctl/stop appears, counting reads that show the 256 MiB limit (`i`)
/// and the others (`f`, the first such read's output kept in /out/err); each read appends
/// the count so far to /out/n. At the end `i f` goes to /out/result and the container stays
/// up for the exec.
const LOOP: &str = r#"
while [ ! -e /ctl/go ]; do sleep 0.1; done
i=0; f=0
while [ ! -e /ctl/stop ]; do
  if head -1 /proc/meminfo | grep -q '^MemTotal: *262144 kB'; then
    i=$((i+1))
  else
    f=$((f+1))
    [ -e /out/err ] || head -1 /proc/meminfo > /out/err 2>&1
  fi
  echo $((i+f)) >> /out/n
done
echo $i $f > /out/result
exec sleep 100000
"#;

/// The live pid in one of the server's pid files.
fn pid_in(path: &Path) -> Option<i32> {
    pid_file(path)
}

/// Waits (bounded: a server that never replaces its worker fails here) until the worker pid
/// file names a live process other than `old`, and returns it.
#[track_caller]
fn wait_new_worker(rt: &Runtime, old: i32, what: &str) -> i32 {
    let file = rt.root().join(".procview").join("worker.pid");
    let t = Instant::now();
    loop {
        if let Some(p) = pid_in(&file) {
            if p != old {
                return p;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no new worker after {what} (old {old}); server log:\n{}",
            fs::read_to_string(rt.root().join(".procview").join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The reads done so far by all containers: the last line of each one's /out/n (appended
/// to, one write per line, so the last line is always whole).
fn reads_so_far(outs: &[PathBuf]) -> u64 {
    outs.iter()
        .map(|o| {
            fs::read_to_string(o.join("n"))
                .unwrap_or_default()
                .lines()
                .last()
                .map_or(0, |l| l.trim().parse::<u64>().unwrap())
        })
        .sum()
}

/// Waits (bounded) until the containers have done `more` reads beyond `from`.
#[track_caller]
fn wait_reads(outs: &[PathBuf], from: u64, more: u64, what: &str) -> u64 {
    let t = Instant::now();
    loop {
        let now = reads_so_far(outs);
        if now >= from + more {
            return now;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "only {} reads after {what} (want {more})",
            now.saturating_sub(from)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reads_survive_worker_restarts_and_kills() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new();
    let rt = Runtime::new();
    let server_bin = husk_bin().parent().unwrap().join("husk-procview");
    let ctl = rt.work().join("ctl");
    fs::create_dir_all(&ctl).unwrap();
    let mut containers = Vec::new();
    for n in 0..CONTAINERS {
        let out = rt.work().join(format!("out{n}"));
        fs::create_dir_all(&out).unwrap();
        let mut b = cgroup_bundle(
            LOOP,
            &parent.child(n),
            json!({"memory": {"limit": 256u64 * 1024 * 1024}}),
        );
        let (ctl_s, out_s) = (ctl.display().to_string(), out.display().to_string());
        b.edit(move |c| {
            c["annotations"][ANNOTATION] = json!("on");
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(
                json!({"destination": "/ctl", "type": "bind", "source": ctl_s,
                          "options": ["rbind", "ro"]}),
            );
            m.push(
                json!({"destination": "/out", "type": "bind", "source": out_s,
                          "options": ["rbind", "rw"]}),
            );
        });
        let id = rt.id();
        rt.create(&b, &id);
        rt.exec(&["start", &id]).expect_ok();
        containers.push((id, b, out));
    }
    let outs: Vec<PathBuf> = containers.iter().map(|c| c.2.clone()).collect();
    let keeper_file = rt.root().join(".procview").join("keeper.pid");
    let keeper = pid_in(&keeper_file).expect("a live keeper after the creates");
    let mut worker =
        pid_in(&rt.root().join(".procview").join("worker.pid")).expect("a live worker");
    assert_eq!(view_servers(rt.root()), {
        let mut v = vec![keeper, worker];
        v.sort();
        v
    });

    fs::write(ctl.join("go"), "").unwrap();
    let mut reads = wait_reads(&outs, 0, READS_BETWEEN, "the start");
    // 25 replacements: every fifth a SIGKILL of the worker, the others graceful (the CLI and
    // SIGHUP to the keeper in turn); each waits for the new worker, then for reads through it.
    let (mut graceful, mut kills) = (0, 0);
    for k in 0..GRACEFUL + KILLS {
        let what = if k % 5 == 4 {
            kills += 1;
            signal_pid(worker, libc::SIGKILL);
            "SIGKILL of the worker"
        } else {
            graceful += 1;
            if graceful % 2 == 1 {
                Cmd::program(&server_bin.to_string_lossy(), rt.work())
                    .args(&["restart", "--root", &rt.root_str()])
                    .run()
                    .expect_ok();
                "husk-procview restart"
            } else {
                signal_pid(keeper, libc::SIGHUP);
                "SIGHUP to the keeper"
            }
        };
        worker = wait_new_worker(&rt, worker, what);
        reads = wait_reads(&outs, reads, READS_BETWEEN, what);
    }
    assert_eq!((graceful, kills), (GRACEFUL, KILLS));
    assert_eq!(
        pid_in(&keeper_file),
        Some(keeper),
        "the keeper was replaced"
    );
    assert_eq!(view_servers(rt.root()), {
        let mut v = vec![keeper, worker];
        v.sort();
        v
    });

    fs::write(ctl.join("stop"), "").unwrap();
    let (mut total, mut failed) = (0u64, 0u64);
    for (id, _, out) in &containers {
        let result = out.join("result");
        let t = Instant::now();
        while !result.exists() || fs::read_to_string(&result).unwrap().trim().is_empty() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{id}: no result after the stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = fs::read_to_string(&result).unwrap();
        let v: Vec<u64> = r.split_whitespace().map(|x| x.parse().unwrap()).collect();
        let (i, f) = (v[0], v[1]);
        let err = fs::read_to_string(out.join("err")).unwrap_or_default();
        assert_eq!(f, 0, "{id}: {f} failed reads of {}; first: {err}", i + f);
        assert!(i > 0, "{id}: no read at all");
        total += i;
        failed += f;
    }
    println!(
        "{CONTAINERS} containers: {total} reads of /proc/meminfo, {failed} failed, across \
         {GRACEFUL} graceful restarts and {KILLS} SIGKILLs of the worker"
    );

    // The mounts still read, in every container.
    for (id, _, _) in &containers {
        let o = rt.exec(&["exec", id, "head", "-1", "/proc/meminfo"]);
        assert!(
            !o.stderr.contains("not connected"),
            "{id}: the view's mount is dead: {o}"
        );
        let o = o.expect_ok();
        assert_eq!(o.stdout, "MemTotal:         262144 kB\n", "{id}");
    }

    for (id, _, _) in &containers {
        rt.exec(&["delete", "--force", id]).expect_ok();
    }
    for (id, b, _) in &containers {
        assert_nothing_remains(&rt, id, Some(b.path()));
    }
    assert_view_server_gone(rt.root());
    assert!(!pid_alive(keeper as i64), "keeper {keeper} still runs");
    assert!(!pid_alive(worker as i64), "worker {worker} still runs");
}
