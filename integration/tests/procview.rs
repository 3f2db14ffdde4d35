//! The resource view (docs/resource-view.md) on this hybrid host: containers that ask for it
//! read /proc and /sys files computed from their own v1 cgroups by the state root's
//! `husk-procview` server; each test asserts what a program in the container sees, and that
//! the server, its mount and its cgroups are gone once the last container is deleted.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration::*;

const ANNOTATION: &str = "io.github.husk.resource-view";
const HIERARCHIES: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "unified",
];

/// A parent cgroup for the test's containers, removed (best effort) on drop; declared before
/// the Runtime so the containers go first.
struct Parent(String);

impl Parent {
    fn new(tag: &str) -> Parent {
        Parent(format!("husk-it-pv-{tag}-{}", std::process::id()))
    }
    fn child(&self) -> String {
        format!("/{}/c{}", self.0, unique())
    }
}

/// Whether the host is pure cgroup v2 (the VM lane).
fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl Drop for Parent {
    fn drop(&mut self) {
        let mut dirs: Vec<PathBuf> = HIERARCHIES
            .iter()
            .map(|h| Path::new("/sys/fs/cgroup").join(h).join(&self.0))
            .collect();
        dirs.push(Path::new("/sys/fs/cgroup").join(&self.0));
        // The named systemd hierarchy, where this host has one (husk joins it too).
        dirs.push(Path::new("/sys/fs/cgroup/systemd").join(&self.0));
        for dir in dirs {
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

/// A bundle running `script` in cgroup `path` with `resources`, the view asked for by the
/// annotation (`view`: its value), the host's /usr and /lib bound in (python3).
fn view_bundle(script: &str, path: &str, resources: Value, view: &str) -> Bundle {
    let mut b = cgroup_bundle(script, path, resources);
    b.with_host_libs();
    let view = view.to_string();
    b.edit(move |c| {
        c["annotations"][ANNOTATION] = json!(view);
    });
    b
}

/// Runs `script` in a fresh container with the view; returns its stdout (exit 0 asserted)
/// and checks that nothing remains afterwards.
fn run_view(resources: Value, script: &str) -> String {
    let parent = Parent::new(&format!("r{}", unique()));
    let rt = Runtime::new();
    let path = parent.child();
    let b = view_bundle(script, &path, resources, "on");
    let id = rt.id();
    let o = rt.run(&b, &id);
    rt.exec(&["delete", "--force", &id]);
    assert!(o.ok(), "container failed: {o}");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    assert_view_server_gone(rt.root());
    o.stdout
}

fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

const MIB256: u64 = 256 * 1024 * 1024;

#[test]
fn free_and_cpu_count_follow_the_limits() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let out = run_view(
        json!({"memory": {"limit": MIB256},
               "cpu": {"quota": 150000, "period": 100000, "cpus": "0-1", "mems": "0"}}),
        "free; python3 -c 'import os; print(\"cpus\", os.cpu_count())'; \
         grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; \
         grep ' /proc/meminfo ' /proc/self/mountinfo",
    );
    let mem = out.lines().find(|l| l.starts_with("Mem:")).unwrap();
    assert_eq!(
        mem.split_whitespace().nth(1),
        Some("262144"),
        "busybox free: {out}"
    );
    assert!(out.contains("cpus 2\n"), "{out}");
    assert!(out.contains("\n2\n0-1\n"), "{out}");
    assert!(out.contains("fuse.husk-procview"), "{out}");

    let out = run_view(
        json!({"memory": {"limit": MIB256},
               "cpu": {"quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"}}),
        "python3 -c 'import os; print(\"cpus\", os.cpu_count())'; \
         grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; \
         ls -d /sys/devices/system/cpu/cpu[0-9]*",
    );
    assert_eq!(
        out, "cpus 1\n1\n0\n/sys/devices/system/cpu/cpu0\n",
        "quota 0.5 CPU"
    );
}

#[test]
fn mem_available_moves_with_an_allocation() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    // The allocation is touched (bytearray zero-fills) and held while meminfo is read again.
    let out = run_view(
        json!({"memory": {"limit": 512 * 1024 * 1024}}),
        "python3 -c '
def avail():
    for l in open(\"/proc/meminfo\"):
        if l.startswith(\"MemAvailable:\"):
            return int(l.split()[1])
a = avail()
x = bytearray(100 * 1024 * 1024)
b = avail()
print(\"before\", a, \"after\", b)
'",
    );
    let w: Vec<&str> = out.split_whitespace().collect();
    let (a, b): (i64, i64) = (w[1].parse().unwrap(), w[3].parse().unwrap());
    let moved = a - b;
    assert!(
        (92_000..=112_000).contains(&moved),
        "MemAvailable moved by {moved} kB for 102400 kB: {out}"
    );
    assert!(a <= 512 * 1024, "MemAvailable {a} kB above the 512M limit");
}

#[test]
fn uptime_stat_and_loadavg_are_the_containers() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("stat");
    let rt = Runtime::new();
    let path = parent.child();
    // 11 s of one busy process (two 5 s load samples), then the files are read.
    let b = view_bundle(
        "end=$(( $(date +%s) + 11 )); while [ $(date +%s) -lt $end ]; do :; done; \
         cat /proc/uptime /proc/loadavg; head -1 /proc/stat",
        &path,
        json!({"cpu": {"cpus": "0-1", "mems": "0"}}),
        "on",
    );
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", &b.path_str(), &id]);
    assert!(o.ok(), "{o}");
    // The cgroup's own CPU time, read while the stopped container's cgroup still exists.
    let usage_ns: u64 = if pure_v2() {
        let stat = fs::read_to_string(
            Path::new("/sys/fs/cgroup")
                .join(path.trim_start_matches('/'))
                .join("cpu.stat"),
        )
        .unwrap();
        field(&stat, "usage_usec") * 1000
    } else {
        fs::read_to_string(
            Path::new("/sys/fs/cgroup/cpuacct")
                .join(path.trim_start_matches('/'))
                .join("cpuacct.usage"),
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
    };
    rt.exec(&["delete", "--force", &id]).expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let up: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    let host_up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (9.5..20.0).contains(&up),
        "uptime {up} s for a container of ~11 s (host {host_up} s)"
    );
    let load1: f64 = lines[1].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        load1 > 0.0 && load1 <= 1.5,
        "load of one busy process: {}",
        lines[1]
    );
    let cpu: Vec<u64> = lines[2]
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    // user + system in USER_HZ ticks against the cgroup's nanoseconds (read after the cat:
    // the difference is what ran after /proc/stat was read, a few ticks).
    let ticks = cpu[0] + cpu[2];
    let cg_ticks = usage_ns / 10_000_000;
    assert!(
        ticks <= cg_ticks + 2 && cg_ticks - ticks.min(cg_ticks) <= 30,
        "stat says {ticks} ticks, the cgroup {cg_ticks}: {}",
        lines[2]
    );
    // Busy for ~10 s, on a host that runs other tests too: well above nothing.
    assert!(ticks >= 100, "10 s of busy loop gave {ticks} ticks");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    assert_view_server_gone(rt.root());
}

#[test]
fn busybox_cat_reads_the_view_through_sendfile() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("cat");
    let rt = Runtime::new();
    // busybox cat copies with sendfile(2), which splices through the page cache up to the
    // file's size (procfs's size 0 would give nothing); run twice so the second open finds
    // the first snapshot's pages and size.
    let mut b = cgroup_bundle(
        "for i in 1 2; do cat /proc/meminfo | head -1; cat /proc/uptime | wc -w; \
         cat /proc/cpuinfo | grep -c ^processor; cat /sys/devices/system/cpu/online; done",
        &parent.child(),
        json!({"memory": {"limit": MIB256}, "cpu": {"quota": 50000, "period": 100000}}),
    );
    b.edit(|c| c["annotations"][ANNOTATION] = json!("on"));
    let out = rt.output(&b);
    let once = "MemTotal:         262144 kB\n2\n1\n0\n";
    assert_eq!(out, format!("{once}{once}"));
    assert_view_server_gone(rt.root());
}

#[test]
fn diskstats_counts_the_containers_own_io() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    if std::env::var_os("HUSK_LANE").is_some() {
        // The lane guest's writable dirs are tmpfs: no block device to write to directly.
        eprintln!("diskstats_counts_the_containers_own_io: needs a block device (the host)");
        return;
    }
    let parent = Parent::new("disk");
    let rt = Runtime::new();
    let data = rt.work().join("data");
    fs::create_dir_all(&data).unwrap();
    // Before any I/O the file is empty; 4 MiB written with O_DIRECT (blkio v1 counts direct
    // I/O) then shows as 8192 sectors written on the device holding the directory.
    let mut b = view_bundle(
        "wc -c < /proc/diskstats; dd if=/dev/zero of=/data/f bs=1M count=4 oflag=direct 2>/dev/null; \
         cat /proc/diskstats",
        &parent.child(),
        json!({}),
        "on",
    );
    let src = data.to_string_lossy().to_string();
    b.edit(move |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind"]}),
        )
    });
    let out = rt.output(&b);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "{out}");
    let written: Vec<u64> = lines
        .map(|l| l.split_whitespace().nth(9).unwrap().parse().unwrap())
        .collect();
    assert!(written.contains(&8192), "sectors written: {out}");
    assert_view_server_gone(rt.root());
}

#[test]
fn a_view_not_asked_for_is_not_there() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("off");
    let rt = Runtime::new();
    let path = parent.child();
    let b = view_bundle(
        "grep -c husk-procview /proc/self/mountinfo; head -1 /proc/meminfo",
        &path,
        json!({"memory": {"limit": MIB256}}),
        "off",
    );
    let out = rt.output(&b);
    assert!(out.starts_with("0\nMemTotal:"), "{out}");
    assert_ne!(field(&out[2..], "MemTotal:"), 262144);
    assert!(
        !rt.root().join(".procview").exists(),
        "a server dir for no view"
    );
}

#[test]
fn bad_values_and_configs_are_refused() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("bad");
    let rt = Runtime::new();
    for (value, words) in [
        ("yes please", vec![ANNOTATION, "yes please", "meminfo"]),
        ("meminfo,memory", vec![ANNOTATION, "memory"]),
    ] {
        let b = view_bundle("true", &parent.child(), json!({}), value);
        let id = rt.id();
        let mut o = rt
            .exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err();
        for w in words {
            o = o.expect_msg(w);
        }
        assert_nothing_remains(&rt, &id, Some(b.path()));
        assert!(!rt.root().join(".procview").exists());
    }
    // No /proc in the config: nowhere to put the view.
    let mut b = view_bundle("true", &parent.child(), json!({}), "on");
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.retain(|m| m["destination"] != "/proc");
    });
    let id = rt.id();
    rt.exec(&["create", "--bundle", &b.path_str(), &id])
        .expect_err()
        .expect_msg("no /proc");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    assert_view_server_gone(rt.root());
    // The runtime-wide flag takes the same values.
    let b = Bundle::sh("true");
    rt.exec(&[
        "--resource-view",
        "bogus",
        "run",
        "--bundle",
        &b.path_str(),
        "x",
    ])
    .expect_err()
    .expect_msg("--resource-view");
}

#[test]
fn no_fuse_device_is_a_clear_error() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("nofuse");
    let rt = Runtime::new();
    let b = view_bundle("true", &parent.child(), json!({}), "on");
    let id = rt.id();
    // In a private mount namespace /dev/fuse is /dev/null: not the FUSE device.
    let script = format!(
        "mount --make-rprivate / && mount --bind /dev/null /dev/fuse && exec {} --root {} create --bundle {} {id}",
        husk_bin().display(),
        rt.root_str(),
        b.path_str()
    );
    let o = Cmd::program("unshare", rt.work())
        .args(&["-m", "sh", "-c", &script])
        .run()
        .expect_err()
        .expect_msg("/dev/fuse");
    assert!(!o.stderr.contains("panicked"), "{o}");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    assert_view_server_gone(rt.root());
}

#[test]
fn user_namespaced_containers_see_the_view() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    if std::env::var_os("HUSK_LANE").is_some() {
        // The v2 lane's guest runs its tests chrooted, where the kernel refuses new user
        // namespaces (clone3: EPERM); the host runs this test.
        eprintln!("user_namespaced_containers_see_the_view: not in the chrooted lane guest");
        return;
    }
    let parent = Parent::new("userns");
    let rt = Runtime::new();
    let path = parent.child();
    let mut b = view_bundle(
        "id -u; head -1 /proc/meminfo; cat /sys/devices/system/cpu/online",
        &path,
        json!({"memory": {"limit": MIB256},
               "cpu": {"quota": 50000, "period": 100000}}),
        "on",
    );
    b.with_userns(300000);
    let out = rt.output(&b);
    let want = "0\nMemTotal:         262144 kB\n0\n";
    assert_eq!(out, want);
    assert_view_server_gone(rt.root());
}

#[test]
fn one_server_serves_many_containers_and_leaves_with_the_last() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("many");
    let rt = Runtime::new();
    let mut ids = Vec::new();
    let mut bundles = Vec::new();
    for (i, mib) in [64u64, 128, 192].into_iter().enumerate() {
        let b = view_bundle(
            "sleep 60",
            &parent.child(),
            json!({"memory": {"limit": mib * 1024 * 1024}}),
            if i == 2 { "meminfo" } else { "on" },
        );
        let id = rt.id();
        rt.create(&b, &id);
        rt.exec(&["start", &id]).expect_ok();
        ids.push((id, mib));
        bundles.push(b);
    }
    let servers_now = view_servers(rt.root());
    assert_eq!(
        servers_now.len(),
        2,
        "one keeper and one worker: {servers_now:?}"
    );
    for (id, mib) in &ids {
        let o = rt
            .exec(&["exec", id, "head", "-1", "/proc/meminfo"])
            .expect_ok();
        assert_eq!(field(&o.stdout, "MemTotal:"), mib * 1024, "{id}");
    }
    // Only meminfo for the third: its cpuinfo is the kernel's.
    let o = rt
        .exec(&[
            "exec",
            &ids[2].0,
            "grep",
            "-c",
            "husk-procview",
            "/proc/self/mountinfo",
        ])
        .expect_ok();
    assert_eq!(o.stdout.trim(), "1");
    for (id, _) in &ids[..2] {
        rt.exec(&["delete", "--force", id]).expect_ok();
    }
    // Still serving the last one.
    assert_eq!(view_servers(rt.root()), servers_now);
    let o = rt
        .exec(&["exec", &ids[2].0, "head", "-1", "/proc/meminfo"])
        .expect_ok();
    assert_eq!(field(&o.stdout, "MemTotal:"), 192 * 1024);
    rt.exec(&["delete", "--force", &ids[2].0]).expect_ok();
    for ((id, _), b) in ids.iter().zip(&bundles) {
        assert_nothing_remains(&rt, id, Some(b.path()));
    }
    assert_view_server_gone(rt.root());
}

// ---- sysinfo(2): busybox `free` and `uptime` (seccomp user notification) ----

/// A plain busybox container (its own `free` and `uptime`, which read sysinfo(2), not /proc)
/// with 256 MiB and the view.
fn busybox_view(script: &str, path: &str) -> Bundle {
    let mut b = cgroup_bundle(script, path, json!({"memory": {"limit": MIB256}}));
    b.edit(|c| {
        c["annotations"][ANNOTATION] = json!("on");
    });
    b
}

/// The total of busybox free's `Mem:` line (KiB).
fn free_total(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("Mem:"))
        .unwrap_or_else(|| panic!("no Mem: line in {out:?}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The host's uptime in seconds.
fn host_uptime() -> u64 {
    let t = fs::read_to_string("/proc/uptime").unwrap();
    t.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn busybox_free_and_uptime_read_the_containers_sysinfo() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("sysinfo");
    let rt = Runtime::new();
    let b = busybox_view("free; echo ---; uptime", &parent.child());
    let out = rt.output(&b);
    let (free, up) = out.split_once("---\n").unwrap();
    assert_eq!(free_total(free), 262144, "{out}");
    // busybox: " HH:MM:SS up 0 min,  load average: 0.00, 0.00, 0.00" for a fresh container.
    // That tells it from the host's only on a host up for more than a minute (not the VM
    // lane's fresh guest), which the host run checks.
    assert!(up.contains("up 0 min"), "{up:?}");
    if host_uptime() > 120 {
        let host = Cmd::program("busybox", rt.work()).arg("uptime").run();
        assert!(!host.stdout.contains("up 0 min"), "{host}");
    }
    assert!(up.contains("load average: 0.00, 0.00, 0.00"), "{up:?}");
    assert_view_server_gone(rt.root());
}

#[test]
fn busybox_free_in_a_user_namespace_reads_the_containers_sysinfo() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    if std::env::var_os("HUSK_LANE").is_some() {
        // As user_namespaced_containers_see_the_view: the lane's chroot refuses CLONE_NEWUSER.
        eprintln!("busybox_free_in_a_user_namespace_reads_the_containers_sysinfo: host only");
        return;
    }
    let parent = Parent::new("sysinfo-userns");
    let rt = Runtime::new();
    let mut b = busybox_view("id -u; free", &parent.child());
    b.with_userns(300000);
    let out = rt.output(&b);
    assert!(out.starts_with("0\n"), "{out}");
    assert_eq!(free_total(&out), 262144, "{out}");
    assert_view_server_gone(rt.root());
}

#[test]
fn a_profile_with_its_own_agent_keeps_the_hosts_sysinfo_with_a_warning() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("sysinfo-agent");
    let rt = Runtime::new();
    let mut b = busybox_view("free", &parent.child());
    // The profile's agent is never asked: its rule names a syscall busybox free does not make.
    let sock = rt.work().join("their-agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let sock_s = sock.to_string_lossy().to_string();
    b.edit(move |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock_s,
            "syscalls": [{"names": ["getrandom"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let id = rt.id();
    let o = rt.run(&b, &id);
    rt.exec(&["delete", "--force", &id]);
    assert!(o.ok(), "{o}");
    let want = format!(
        "sysinfo(2) stays the host's: the config's seccomp profile has its own agent at {}",
        sock.display()
    );
    assert_eq!(o.stderr.matches(&want).count(), 1, "{}", o.stderr);
    let host_total = field(&fs::read_to_string("/proc/meminfo").unwrap(), "MemTotal:");
    assert_eq!(free_total(&o.stdout), host_total, "{}", o.stdout);
    assert_view_server_gone(rt.root());
}

/// The worker's pid of `rt`'s server, once it has written it.
fn worker_pid(rt: &Runtime) -> i32 {
    let f = rt.root().join(".procview").join("worker.pid");
    let t = Instant::now();
    loop {
        if let Some(p) = fs::read_to_string(&f)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return p;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no {}", f.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the server's worker is a process other than `old`.
fn new_worker(rt: &Runtime, old: i32) -> i32 {
    let t = Instant::now();
    loop {
        let p = worker_pid(rt);
        if p != old && Path::new(&format!("/proc/{p}")).exists() {
            return p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no worker after {old}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sysinfo_answers_survive_a_restart_and_a_killed_worker() {
    if skip_for_runc("the resource view is husk's") {
        return;
    }
    let parent = Parent::new("sysinfo-restart");
    let rt = Runtime::new();
    let n = 500;
    // Each iteration runs free in a subshell with awk: about 5 ms, so 500 outlast the
    // disturbances below (asserted).
    let script = format!(
        "echo start; bad=0; i=0; while [ $i -lt {n} ]; do \
           t=$(free | awk '/^Mem:/ {{print $2}}'); \
           [ \"$t\" = 262144 ] || {{ bad=$((bad+1)); echo \"got $t\"; }}; \
           i=$((i+1)); \
         done; echo \"done $i bad $bad\""
    );
    let b = busybox_view(&script, &parent.child());
    let id = rt.id();
    let (mut child, _, out, err) = rt.cmd(&["run", "--bundle", &b.path_str(), &id]).spawn();
    let t = Instant::now();
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("start")
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the loop did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let procview = husk_bin().with_file_name("husk-procview");
    let mut events = Vec::new();
    // A restart (SIGHUP to the keeper: a new worker replaces the old one).
    let w0 = worker_pid(&rt);
    std::thread::sleep(Duration::from_millis(200));
    let o = std::process::Command::new(&procview)
        .args(["restart", "--root", &rt.root_str()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let w1 = new_worker(&rt, w0);
    events.push(format!("restart {w0} -> {w1}"));
    // SIGKILL of the worker, twice (the keeper starts another each time). A read the killed
    // worker had taken comes back only through FUSE_NOTIFY_RESEND (kernel 6.9): on older
    // kernels (the v2 lane's 6.1) it would wait for good, as docs/resource-view.md says, so
    // only the graceful restart is done there.
    if !kernel_resends() {
        eprintln!("kernel before 6.9 (no FUSE_NOTIFY_RESEND): no SIGKILL of the worker");
        let status = wait_bounded(&mut child, Duration::from_secs(180));
        let stdout = fs::read_to_string(&out).unwrap_or_default();
        rt.exec(&["delete", "--force", &id]);
        assert!(status.is_some_and(|s| s.success()), "{status:?} {stdout}");
        assert!(
            stdout.contains(&format!("done {n} bad 0")),
            "{stdout} ({events:?})"
        );
        assert_view_server_gone(rt.root());
        return;
    }
    let mut w = w1;
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(300));
        kill_pid(w);
        let next = new_worker(&rt, w);
        events.push(format!("killed {w} -> {next}"));
        w = next;
    }
    // The keeper re-executes itself (SIGUSR2) and keeps the listeners: the worker killed
    // next is replaced by one that gets them from the new keeper image.
    let keeper: i32 = fs::read_to_string(rt.root().join(".procview").join("keeper.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let o = std::process::Command::new("kill")
        .args(["-USR2", &keeper.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::thread::sleep(Duration::from_millis(300));
    kill_pid(w);
    let next = new_worker(&rt, w);
    events.push(format!("keeper re-exec; killed {w} -> {next}"));
    let still_looping = child.try_wait().unwrap().is_none();
    let status = wait_bounded(&mut child, Duration::from_secs(180));
    let stdout = fs::read_to_string(&out).unwrap_or_default();
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    rt.exec(&["delete", "--force", &id]);
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} {stdout} {stderr}"
    );
    assert!(
        still_looping,
        "the loop ended before the disturbances: {events:?}"
    );
    assert!(
        stdout.contains(&format!("done {n} bad 0")),
        "{stdout} ({events:?})"
    );
    eprintln!("{events:?}: {}", stdout.trim());
    assert_view_server_gone(rt.root());
}

/// Whether the running kernel has FUSE_NOTIFY_RESEND (6.9 and later).
fn kernel_resends() -> bool {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = r
        .trim()
        .split(['.', '-'])
        .map(|x| x.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 9)
}

/// SIGKILL to `pid` (a server process of this test's state root).
fn kill_pid(pid: i32) {
    let o = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "kill {pid}");
}
