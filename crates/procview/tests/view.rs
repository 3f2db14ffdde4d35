//! The resource view against the real kernel: a v1 cgroup (memory 256M, cpu quota
//! 50000/100000, cpuset 0-1, pids, blkio) with processes in it, and the files rendered for it.
//!
//! Needs root and v1 memory/cpu/cpuacct/cpuset/blkio hierarchies (v1 or hybrid host); skips
//! (saying why) otherwise. Run with `--test-threads=1`: the CPU numbers are sensitive to load.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use procview::view::{self, Loads};
use procview::{Entry, Error, Registration};

fn boottime_ns() -> u64 {
    let t = std::fs::read_to_string("/proc/uptime").unwrap();
    let up: f64 = t.split_whitespace().next().unwrap().parse().unwrap();
    (up * 1e9) as u64
}

/// A cgroup made for one test, destroyed (killing what runs in it) on drop.
struct Cg {
    mgr: cgroups::Manager,
    reg: Registration,
}

impl Cg {
    /// `None` (after saying why) when the host cannot run these tests.
    fn new(tag: &str) -> Option<Cg> {
        if euid() != 0 {
            eprintln!("skipped: not root");
            return None;
        }
        let path = PathBuf::from(format!("/husk-viewtest-{}-{tag}", std::process::id()));
        let mgr = cgroups::Manager::new(Some(&path), "x").expect("resolving the cgroup");
        let s = mgr.saved().clone();
        for c in ["memory", "cpu", "cpuacct", "cpuset", "blkio", "pids"] {
            if s.layout == cgroups::Layout::V2 || s.v1_dir(c).is_none() {
                eprintln!("skipped: no v1 {c} hierarchy (layout {:?})", s.layout);
                return None;
            }
        }
        mgr.create().expect("creating the cgroup");
        let cg = Cg {
            reg: Registration {
                cgroup: s,
                created_boottime_ns: boottime_ns(),
            },
            mgr,
        };
        cg.write("memory", "memory.limit_in_bytes", "268435456");
        cg.write("cpu", "cpu.cfs_period_us", "100000");
        cg.write("cpu", "cpu.cfs_quota_us", "50000");
        cg.write("cpuset", "cpuset.cpus", "0-1");
        cg.write("cpuset", "cpuset.mems", "0");
        Some(cg)
    }

    fn file(&self, controller: &str, file: &str) -> PathBuf {
        self.reg.cgroup.v1_dir(controller).unwrap().join(file)
    }

    fn write(&self, controller: &str, file: &str, value: &str) {
        let p = self.file(controller, file);
        std::fs::write(&p, value).unwrap_or_else(|e| panic!("writing {value} to {p:?}: {e}"));
    }

    fn read(&self, controller: &str, file: &str) -> String {
        std::fs::read_to_string(self.file(controller, file)).unwrap()
    }

    fn render(&self, e: Entry) -> String {
        let loads = Loads::default();
        self.render_with(e, &loads)
    }

    fn render_with(&self, e: Entry, loads: &Loads) -> String {
        let b = view::render(e, "c", &self.reg, loads).unwrap();
        String::from_utf8(b).unwrap()
    }

    /// Starts `cmd` with a pipe on stdin, moves it into the cgroup, then sends it a line:
    /// so everything it does after reading that line is the cgroup's.
    fn spawn(&self, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning the child");
        self.mgr
            .add(child.id() as i32, false, false)
            .expect("moving the child into the cgroup");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Proc {
            child,
            stdin,
            stdout,
        }
    }
}

impl Drop for Cg {
    fn drop(&mut self) {
        if let Err(e) = self.mgr.destroy() {
            eprintln!("destroying the test cgroup: {e}");
        }
    }
}

fn euid() -> u32 {
    // The owner of /proc/self is the effective uid.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        l
    }
    fn wait(mut self) {
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python(code: &str) -> Command {
    let mut c = Command::new("python3");
    c.args(["-c", code]);
    c
}

fn kb(meminfo: &str, key: &str) -> u64 {
    let l = meminfo
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in\n{meminfo}"));
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn meminfo_limit_and_allocation() {
    let Some(cg) = Cg::new("mem") else { return };
    let mut p = cg.spawn(&mut python(
        "import sys,time\nsys.stdin.readline()\nprint('ready',flush=True)\n\
         sys.stdin.readline()\nb=b'x'*(100<<20)\nprint('ok',flush=True)\ntime.sleep(60)",
    ));
    assert_eq!(p.line(), "ready\n");
    let before = cg.render(Entry::Meminfo);
    assert_eq!(kb(&before, "MemTotal"), 262144, "{before}");
    let host = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert_eq!(before.lines().count(), host.lines().count());
    p.stdin.write_all(b"alloc\n").unwrap();
    assert_eq!(p.line(), "ok\n");
    let after = cg.render(Entry::Meminfo);
    let drop = kb(&before, "MemAvailable") as i64 - kb(&after, "MemAvailable") as i64;
    eprintln!(
        "MemAvailable {} -> {} kB (drop {drop} kB); MemFree {} -> {}",
        kb(&before, "MemAvailable"),
        kb(&after, "MemAvailable"),
        kb(&before, "MemFree"),
        kb(&after, "MemFree")
    );
    assert!((92160..=112640).contains(&drop), "drop {drop} kB");
    assert!(kb(&after, "AnonPages") >= 100 * 1024);
    assert_eq!(kb(&after, "MemTotal"), 262144);
    let swaps = cg.render(Entry::Swaps);
    assert!(swaps.starts_with("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"));
    if std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .count()
        == 1
    {
        assert_eq!(swaps.lines().count(), 1);
        assert_eq!(kb(&after, "SwapTotal"), 0);
    }
}

#[test]
fn cpus_follow_quota_and_cpuset() {
    let Some(cg) = Cg::new("cpus") else { return };
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() == "0" {
        eprintln!("skipped: one CPU");
        return;
    }
    assert_eq!(view::visible_cpus(&cg.reg).unwrap(), vec![0]);
    assert_eq!(view::sys_cpu_online(&cg.reg).unwrap(), b"0\n");
    let ci = cg.render(Entry::Cpuinfo);
    assert_eq!(ci.matches("processor\t:").count(), 1, "{ci}");
    cg.write("cpu", "cpu.cfs_quota_us", "-1");
    assert_eq!(view::visible_cpus(&cg.reg).unwrap(), vec![0, 1]);
    assert_eq!(view::sys_cpu_online(&cg.reg).unwrap(), b"0-1\n");
    cg.write("cpuset", "cpuset.cpus", "1");
    assert_eq!(view::visible_cpus(&cg.reg).unwrap(), vec![1]);
    let ci = cg.render(Entry::Cpuinfo);
    assert!(ci.starts_with("processor\t: 0\n"), "{ci}");
    assert!(
        ci.contains("core id\t\t: 1\n") || !ci.contains("core id"),
        "{ci}"
    );
    cg.write("cpu", "cpu.cfs_quota_us", "150000");
    assert_eq!(view::visible_cpus(&cg.reg).unwrap(), vec![1]);
}

#[test]
fn stat_and_uptime_match_cpuacct() {
    let Some(cg) = Cg::new("stat") else { return };
    let p = cg.spawn(&mut python(
        "import sys,time\nsys.stdin.readline()\nt=time.monotonic()\n\
         while time.monotonic()-t<1.5: pass",
    ));
    p.wait();
    let usage: u64 = cg.read("cpuacct", "cpuacct.usage").trim().parse().unwrap();
    let stat = cg.render(Entry::Stat);
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let ticks = cpu[0] + cpu[2];
    let want = usage / 10_000_000;
    eprintln!(
        "stat: {}; cpuacct.usage {usage} ns",
        stat.lines().next().unwrap()
    );
    assert!(want >= 60, "the busy loop ran {want} ticks only");
    assert!(
        ticks.abs_diff(want) <= 5.max(want / 50),
        "{ticks} vs {want}"
    );
    // quota 50000/100000: one CPU shown.
    assert_eq!(stat.lines().filter(|l| l.starts_with("cpu")).count(), 2);
    assert!(stat.contains("\nbtime "), "{stat}");

    let up = cg.render(Entry::Uptime);
    let f: Vec<f64> = up.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let age = (boottime_ns() - cg.reg.created_boottime_ns) as f64 / 1e9;
    eprintln!("uptime {up:?}, age {age:.2} s");
    assert!((f[0] - age).abs() < 0.1, "{up} vs {age}");
    assert!(f[1] <= f[0] + 0.01);
    assert!(up.ends_with('\n'));
}

#[test]
fn loadavg_counts_busy_tasks() {
    let Some(cg) = Cg::new("load") else { return };
    let idle = cg.render(Entry::Loadavg);
    assert_eq!(idle, "0.00 0.00 0.00 0/0 0\n");
    let p = cg.spawn(&mut python(
        "import sys\nsys.stdin.readline()\nprint('busy',flush=True)\nwhile True: pass",
    ));
    let mut p = p;
    assert_eq!(p.line(), "busy\n");
    let mut loads = Loads::default();
    for _ in 0..3 {
        loads.sample([("c", &cg.reg)]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let l = cg.render_with(Entry::Loadavg, &loads);
    eprintln!("loadavg {l:?}");
    let f: Vec<&str> = l.split_whitespace().collect();
    assert_eq!(f.len(), 5, "{l}");
    assert!(f[0].parse::<f64>().unwrap() > 0.0, "{l}");
    assert_eq!(f[3].split_once('/').unwrap().1, "1", "{l}");
    assert_eq!(f[4], p.child.id().to_string(), "{l}");
    // Another container (never sampled) shows zeros.
    let other = view::render(Entry::Loadavg, "other", &cg.reg, &loads).unwrap();
    assert!(other.starts_with(b"0.00 0.00 0.00 "));
}

/// A directory on a block device (not tmpfs) to write to with O_DIRECT.
fn block_dir() -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    for d in ["/var/tmp", "/tmp", "/root"] {
        let Ok(m) = std::fs::metadata(d) else {
            continue;
        };
        let major = libc_major(m.dev());
        let minor = libc_minor(m.dev());
        if major != 0 && Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
            return Some((PathBuf::from(d), major));
        }
    }
    None
}

fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

#[test]
fn diskstats_after_direct_write() {
    let Some(cg) = Cg::new("disk") else { return };
    assert_eq!(cg.render(Entry::Diskstats), "");
    let Some((dir, major)) = block_dir() else {
        eprintln!("skipped: no directory on a block device to write to");
        return;
    };
    let file = dir.join(format!("husk-viewtest-{}", std::process::id()));
    let p = cg.spawn(Command::new("sh").args([
        "-c",
        "read x; exec dd if=/dev/zero of=\"$0\" bs=1M count=4 oflag=direct status=none",
        file.to_str().unwrap(),
    ]));
    p.wait();
    let _ = std::fs::remove_file(&file);
    let d = cg.render(Entry::Diskstats);
    eprintln!("diskstats {d:?}");
    let line = d
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&major.to_string()))
        .unwrap_or_else(|| panic!("no line for major {major}: {d:?}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 20, "{line}");
    let writes: u64 = f[7].parse().unwrap();
    let sectors: u64 = f[9].parse().unwrap();
    assert!(writes >= 1, "{line}");
    assert!(sectors >= 8192, "{line}");
}

#[test]
fn removed_cgroup_gives_enoent() {
    let Some(cg) = Cg::new("gone") else { return };
    cg.mgr.destroy().unwrap();
    for e in [Entry::Meminfo, Entry::Stat, Entry::Loadavg] {
        match view::render(e, "c", &cg.reg, &Loads::default()) {
            Err(Error::Io { what, source }) => {
                assert_eq!(source.raw_os_error(), Some(2), "{e:?}: {what}: {source}");
                assert!(what.contains("husk-viewtest"), "{what}");
            }
            r => panic!("{e:?}: {r:?}"),
        }
    }
    assert!(view::visible_cpus(&cg.reg).is_err());
}

/// procps and busybox `free` read the rendered meminfo (bind-mounted over /proc/meminfo in
/// a private mount namespace) and print the container's 256 MiB.
#[test]
fn free_reads_the_limit() {
    let Some(cg) = Cg::new("free") else { return };
    let text = cg.render(Entry::Meminfo);
    let file = std::env::temp_dir().join(format!("husk-viewtest-meminfo-{}", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    let out = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind \"$0\" /proc/meminfo || exit 99; \
             for f in 'free -k' 'busybox free -k'; do \
               command -v ${f%% *} >/dev/null || continue; echo \"== $f\"; $f; done",
            file.to_str().unwrap(),
        ])
        .output();
    let _ = std::fs::remove_file(&file);
    let out = match out {
        Ok(o) if o.status.code() != Some(99) && o.status.success() => o,
        r => {
            eprintln!("skipped: unshare/mount: {r:?}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    let mem = |tool: &str| -> Option<Vec<u64>> {
        let section = stdout.split("== ").find(|s| s.starts_with(tool))?;
        let l = section.lines().find(|l| l.starts_with("Mem:"))?;
        Some(
            l.split_whitespace()
                .skip(1)
                .map(|v| v.parse().unwrap())
                .collect(),
        )
    };
    let procps = mem("free -k").expect("procps free's Mem line");
    assert_eq!(procps[0], 262144, "{stdout}");
    assert!(procps[1] + procps[2] <= procps[0], "{stdout}");
    // busybox free takes total/used/free/shared/buffers from sysinfo(2), which a file
    // cannot change; only its "available" column (MemAvailable) is the container's.
    if let Some(bb) = mem("busybox free -k") {
        assert!(bb[5] <= 262144, "{stdout}");
    }
}
