//! pause / resume / ps / events / update of running containers.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use integration::*;

const T: Duration = Duration::from_secs(10);

/// A container printing an increasing counter (about 50 lines a second) with a `sleep`
/// child beside it; returns its id and the file with its stdout.
fn counter(rt: &Runtime, b: &Bundle) -> (String, PathBuf) {
    let id = rt.id();
    let out = rt.work().join(format!("{id}.out"));
    rt.create_to(b, &id, &out);
    rt.exec(&["start", &id]).expect_ok();
    let start = Instant::now();
    while lines(&out) < 3 {
        assert!(start.elapsed() < T, "the counter does not count");
        std::thread::sleep(Duration::from_millis(20));
    }
    (id, out)
}

fn counter_bundle() -> Bundle {
    Bundle::sh("sleep 1000 & i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done")
}

fn lines(p: &std::path::Path) -> usize {
    fs::read_to_string(p).unwrap_or_default().lines().count()
}

/// Whether the counter advances within 400 ms.
fn advances(p: &std::path::Path) -> bool {
    let before = lines(p);
    std::thread::sleep(Duration::from_millis(400));
    lines(p) > before
}

/// The container's directory in the v1 freezer hierarchy.
fn freezer_state(id: &str) -> String {
    let dir = cgroup_dirs_for(id)
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/freezer"))
        .unwrap_or_else(|| panic!("no freezer cgroup for {id}"));
    fs::read_to_string(dir.join("freezer.state"))
        .unwrap()
        .trim()
        .to_string()
}

/// The container's directory in the v1 hierarchy mounted at `/sys/fs/cgroup/<name>`.
fn v1_dir(id: &str, name: &str) -> PathBuf {
    let mount = PathBuf::from("/sys/fs/cgroup").join(name);
    cgroup_dirs_for(id)
        .into_iter()
        .find(|d| d.starts_with(&mount))
        .unwrap_or_else(|| panic!("no {name} cgroup for {id}"))
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, out) = counter(&rt, &b);
    assert_eq!(freezer_state(&id), "THAWED");

    rt.exec(&["pause", &id]).expect_ok();
    assert_eq!(rt.status(&id), "paused");
    assert_eq!(freezer_state(&id), "FROZEN");
    assert!(!advances(&out), "a paused container kept counting");
    // list shows it too.
    let list = rt.exec(&["list", "--format", "json"]).expect_ok();
    assert!(list.stdout.contains("\"paused\""), "{list}");

    // Not pausable twice, not startable.
    rt.exec(&["pause", &id]).expect_err();
    if !is_runc() {
        rt.exec(&["start", &id]).expect_err().expect_msg("paused");
    }

    rt.exec(&["resume", &id]).expect_ok();
    assert_eq!(rt.status(&id), "running");
    assert_eq!(freezer_state(&id), "THAWED");
    assert!(advances(&out), "a resumed container does not count");
    rt.exec(&["resume", &id]).expect_err();

    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn delete_force_of_a_paused_container() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, _out) = counter(&rt, &b);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.exec(&["pause", &id]).expect_ok();
    assert_eq!(rt.status(&id), "paused");
    // Without --force a paused container is not deleted.
    rt.exec(&["delete", &id]).expect_err();
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(wait_pid_gone(pid, T), "init {pid} survived delete --force");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn kill_of_a_paused_container() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, _out) = counter(&rt, &b);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.exec(&["pause", &id]).expect_ok();
    // Other signals stay pending while paused (as runc).
    rt.exec(&["kill", &id, "SIGCONT"]).expect_ok();
    assert_eq!(rt.status(&id), "paused");
    // SIGKILL thaws it so that it dies (as runc).
    rt.exec(&["kill", &id, "9"]).expect_ok();
    assert!(
        wait_pid_gone(pid, T),
        "init {pid} survived SIGKILL while paused"
    );
    rt.wait_status(&id, "stopped", T);
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn kill_all_of_a_paused_container() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, _out) = counter(&rt, &b);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.exec(&["pause", &id]).expect_ok();
    rt.exec(&["kill", "--all", &id, "KILL"]).expect_ok();
    assert!(
        wait_pid_gone(pid, T),
        "init {pid} survived kill --all while paused"
    );
    rt.wait_status(&id, "stopped", T);
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn pause_of_created_and_stopped_containers() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let id = rt.id();
    rt.create(&b, &id);
    // A created container can be paused and resumed (as runc).
    rt.exec(&["pause", &id]).expect_ok();
    assert_eq!(rt.status(&id), "paused");
    rt.exec(&["resume", &id]).expect_ok();
    assert_eq!(rt.status(&id), "created");
    rt.exec(&["start", &id]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    rt.exec(&["pause", &id])
        .expect_err()
        .expect_msg("container not running");
    rt.exec(&["resume", &id])
        .expect_err()
        .expect_msg("not paused");
    rt.exec(&["events", "--stats", &id])
        .expect_err()
        .expect_msg("not running");
    rt.exec(&["update", "--pids-limit", "5", &id])
        .expect_err()
        .expect_msg("container not running");
    // As runc: the (empty) cgroup of a stopped container is listed.
    let o = rt.exec(&["ps", &id]).expect_ok();
    assert_eq!(o.stdout.lines().count(), 1, "only the header: {o}");
    let o = rt.exec(&["ps", "-f", "json", &id]).expect_ok();
    assert_eq!(o.stdout.trim(), "null", "as runc: {o}");
    rt.exec(&["delete", &id]).expect_ok();
    rt.exec(&["pause", &id])
        .expect_err()
        .expect_msg("does not exist");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn ps_lists_the_init_and_its_child() {
    let rt = Runtime::new();
    let b = Bundle::sh("sleep 1000 & wait");
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let start = Instant::now();
    let pids = loop {
        let o = rt.exec(&["ps", "--format", "json", &id]).expect_ok();
        let pids: Vec<i64> =
            serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("ps json: {e}: {o}"));
        if pids.len() >= 2 || start.elapsed() > T {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.contains(&init), "{pids:?} lacks the init {init}");
    assert_eq!(pids.len(), 2, "init and its sleep child: {pids:?}");
    let child = *pids.iter().find(|&&p| p != init).unwrap();

    // The table: ps -ef's header and one row per process of the container.
    let o = rt.exec(&["ps", &id]).expect_ok();
    let mut rows = o.stdout.lines();
    let header = rows.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{o}");
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), 2, "{o}");
    for pid in [init, child] {
        assert!(
            rows.iter()
                .any(|r| r.split_whitespace().nth(1) == Some(&pid.to_string())),
            "no row for {pid}: {o}"
        );
    }
    // ps options after the id go to ps.
    let o = rt.exec(&["ps", &id, "-o", "pid,comm"]).expect_ok();
    assert!(
        o.stdout.starts_with("    PID COMMAND") || o.stdout.contains("COMMAND"),
        "{o}"
    );
    assert!(o.stdout.contains("sleep"), "{o}");
    rt.exec(&["ps", "--format", "xml", &id])
        .expect_err()
        .expect_msg("invalid format");

    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

fn stats_line(line: &str, id: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], id, "{v}");
    v
}

#[test]
fn events_stats_once() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, _out) = counter(&rt, &b);
    let o = rt.exec(&["events", "--stats", &id]).expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{o}");
    let v = stats_line(lines[0], &id);
    let data = &v["data"];
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(
        data["memory"]["usage"]["limit"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(data["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(data["cpu"]["usage"]["percpu"].is_array(), "{v}");
    assert!(
        data["blkio"].is_object() && data["hugetlb"].is_object(),
        "{v}"
    );
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn events_interval_streams_stats() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, _out) = counter(&rt, &b);
    let (mut child, _argv, out, err) = rt.cmd(&["events", "--interval", "1s", &id]).spawn();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "events exited early: {}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let text = fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        (2..=4).contains(&lines.len()),
        "expected 2-3 lines in 2.5 s: {text}"
    );
    for l in &lines {
        let v = stats_line(l, &id);
        assert!(
            v["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
            "{v}"
        );
    }
    rt.exec(&["events", "--interval", "0s", &id]).expect_err();
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn events_end_when_the_container_stops() {
    if skip_for_runc("runc events keeps polling a stopped container") {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1"]);
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();
    let o = rt
        .cmd(&["events", "--interval", "200ms", &id])
        .timeout(T)
        .run()
        .expect_ok();
    assert!(!o.stdout.is_empty(), "{o}");
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn events_report_oom() {
    let rt = Runtime::new();
    // Fills the /dev/shm tmpfs (64 MiB): its pages are charged to the container's memory
    // cgroup, limited to 16 MiB below.
    let b = Bundle::sh("sleep 0.5; head -c 60000000 /dev/zero > /dev/shm/fill; sleep 1000");
    let id = rt.id();
    rt.create(&b, &id);
    let mem = v1_dir(&id, "memory");
    fs::write(mem.join("memory.limit_in_bytes"), "16777216").unwrap();
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        fs::write(mem.join("memory.memsw.limit_in_bytes"), "16777216").unwrap();
    }
    let (mut child, _argv, out, err) = rt.cmd(&["events", "--interval", "10s", &id]).spawn();
    rt.exec(&["start", &id]).expect_ok();
    let start = Instant::now();
    let text = loop {
        let text = fs::read_to_string(&out).unwrap_or_default();
        if text.contains("\"oom\"") || start.elapsed() > T {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let oom: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|v| v["type"] == "oom")
        .collect();
    assert!(
        !oom.is_empty(),
        "no oom event: {text}\nstderr: {}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    assert_eq!(oom[0], json!({"type": "oom", "id": id}));
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn update_a_running_container() {
    let rt = Runtime::new();
    let b = counter_bundle();
    let (id, _out) = counter(&rt, &b);
    rt.exec(&[
        "update",
        "--memory",
        "64m",
        "--cpu-share",
        "512",
        "--pids-limit",
        "20",
        &id,
    ])
    .expect_ok();
    let read = |ctl: &str, f: &str| {
        fs::read_to_string(v1_dir(&id, ctl).join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("pids", "pids.max"), "20");

    // linux.resources JSON on stdin, as docker sends it.
    let res = rt.work().join("res.json");
    fs::write(&res, r#"{"pids":{"limit":30},"cpu":{"shares":256}}"#).unwrap();
    rt.cmd(&["update", "--resources", "-", &id])
        .stdin(fs::File::open(&res).unwrap().into())
        .run()
        .expect_ok();
    assert_eq!(read("pids", "pids.max"), "30");
    assert_eq!(read("cpu", "cpu.shares"), "256");
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");

    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn update_refuses_bad_values_and_rdt() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["update", "--l3-cache-schema", "L3:0=f", &id])
        .expect_err()
        .expect_msg("Intel RDT");
    rt.exec(&["update", "--mem-bw-schema", "MB:0=50", &id])
        .expect_err()
        .expect_msg("Intel RDT");
    rt.exec(&["update", "--cpu-share", "lots", &id])
        .expect_err()
        .expect_msg("cpu-share");
    let bad = rt.work().join("bad.json");
    fs::write(&bad, "{not json").unwrap();
    let o = rt
        .exec(&["update", "-r", bad.to_str().unwrap(), &id])
        .expect_err();
    if !is_runc() {
        o.expect_msg("linux.resources");
    }
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}
