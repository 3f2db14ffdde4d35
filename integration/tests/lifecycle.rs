//! create / start / state / kill / delete / run / list: the lifecycle and its observable state.

use std::fs;
use std::time::Duration;

use integration::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn create_start_stop_delete() {
    let rt = Runtime::new();
    let b = Bundle::sh("read x; echo done");
    let id = rt.id();
    let pidfile = rt.work().join("pid");
    // stdin of the container: a FIFO we hold open so `read` blocks until we write.
    let fifo = rt.work().join("in");
    host("mkfifo", &[fifo.to_str().unwrap()]);
    let rw = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let out = rt.work().join("out");
    rt.cmd(&[
        "create",
        "--bundle",
        &b.path_str(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ])
    .stdin(rw.try_clone().unwrap().into())
    .stdout_to(&out)
    .run()
    .expect_ok();

    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid_alive(pid), "init pid {pid} has no /proc entry");
    let pf = fs::read_to_string(&pidfile).unwrap();
    assert_eq!(pf.trim().parse::<i64>().unwrap(), pid, "--pid-file content");
    assert!(rt.root().join(&id).is_dir(), "state dir");

    rt.exec(&["start", &id]).expect_ok();
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.state(&id)["pid"].as_i64().unwrap(), pid);

    use std::io::Write;
    (&rw).write_all(b"go\n").unwrap();
    rt.wait_status(&id, "stopped", T);
    assert_eq!(fs::read_to_string(&out).unwrap(), "done\n");

    rt.exec(&["delete", &id]).expect_ok();
    assert!(!rt.root().join(&id).exists(), "delete leaves the state dir");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn state_json_fields_through_lifecycle() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.edit(|c| c["annotations"] = json!({"org.example.key": "value", "a": "b"}));
    let id = rt.id();
    rt.create(&b, &id);
    let check = |st: &Value, status: &str| {
        assert_eq!(st["id"], id.as_str());
        assert_eq!(st["status"], status);
        assert!(
            st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
            "{st}"
        );
        let bundle = fs::canonicalize(b.path()).unwrap();
        assert_eq!(st["bundle"].as_str().unwrap(), bundle.to_str().unwrap());
        assert_eq!(st["annotations"]["org.example.key"], "value", "{st}");
        assert_eq!(st["annotations"]["a"], "b");
    };
    let st = rt.state(&id);
    check(&st, "created");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    rt.exec(&["start", &id]).expect_ok();
    let st = rt.state(&id);
    check(&st, "running");
    assert_eq!(st["pid"].as_i64().unwrap(), pid);
    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    let st = rt.state(&id);
    check(&st, "stopped");
    assert!(wait_pid_gone(pid, T), "stopped but pid {pid} lives");
    if !is_runc() {
        // runtime-spec: pid is required only while created or running; husk reports 0.
        assert_eq!(st["pid"].as_i64().unwrap_or(0), 0, "{st}");
    }
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn run_exit_status() {
    let rt = Runtime::new();
    let b = Bundle::sh("exit 3");
    let id = rt.id();
    let o = rt.run(&b, &id);
    assert_eq!(o.code(), 3, "{o}");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn run_killed_by_signal_is_128_plus_n() {
    let rt = Runtime::new();
    // Without a pid namespace: a pid-1 shell cannot SIGKILL itself.
    let mut b = Bundle::sh("kill -9 $$");
    b.edit(|c| remove_ns(c, "pid"));
    let id = rt.id();
    let o = rt.run(&b, &id);
    assert_eq!(o.code(), 137, "{o}");
    let mut b = Bundle::sh("kill -15 $$; sleep 5");
    b.edit(|c| remove_ns(c, "pid"));
    let id2 = rt.id();
    let o = rt.run(&b, &id2);
    assert_eq!(o.code(), 143, "{o}");
    assert_nothing_remains(&rt, &id, Some(b.path()));
    assert_nothing_remains(&rt, &id2, Some(b.path()));
}

#[test]
fn run_prints_container_output() {
    let rt = Runtime::new();
    let b = Bundle::new(&["echo", "hello from busybox"]);
    let id = rt.id();
    let o = rt.run(&b, &id).expect_ok();
    assert_eq!(o.stdout, "hello from busybox\n");
    assert!(
        !rt.root().join(&id).exists(),
        "run leaves state of an exited container"
    );
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn run_detach() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    let o = rt
        .cmd(&["run", "--detach", "--bundle", &b.path_str(), &id])
        .run()
        .expect_ok();
    assert_eq!(o.code(), 0);
    let st = rt.state(&id);
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x00100\x00");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(wait_pid_gone(pid, T), "pid {pid} survived");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn list_table_json_quiet() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let a = rt.id();
    let c = rt.id();
    rt.create(&b, &a);
    rt.create(&b, &c);
    rt.exec(&["start", &c]).expect_ok();

    let o = rt.exec(&["list"]).expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{o}"
    );
    let row = |id: &str| -> Vec<String> {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} missing from list: {o}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row(&a)[2], "created");
    assert_eq!(row(&c)[2], "running");
    assert_eq!(row(&c)[1], rt.state(&c)["pid"].to_string());
    assert_eq!(
        row(&c)[3],
        fs::canonicalize(b.path()).unwrap().to_str().unwrap()
    );
    assert_eq!(row(&c)[5], "root");

    let o = rt.exec(&["list", "--format", "json"]).expect_ok();
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2, "{v}");
    let get = |id: &str| arr.iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(get(&a)["status"], "created");
    assert_eq!(get(&c)["status"], "running");

    let o = rt.exec(&["list", "-q"]).expect_ok();
    let mut ids: Vec<&str> = o.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(ids, want);

    rt.exec(&["delete", "--force", &a]).expect_ok();
    rt.exec(&["delete", "--force", &c]).expect_ok();
    let o = rt.exec(&["list", "-q"]).expect_ok();
    assert_eq!(o.stdout.trim(), "");
}

fn kill_with(sig: &str) {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    let pidfile = rt.work().join("pid");
    rt.exec(&[
        "run",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert!(pid_alive(pid));
    let pf = fs::read_to_string(&pidfile).unwrap();
    assert_eq!(pf.trim(), pid.to_string());
    rt.exec(&["kill", &id, sig]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    assert!(wait_pid_gone(pid, T), "kill {sig}: pid {pid} still there");
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn kill_named_signal() {
    kill_with("KILL");
}

#[test]
fn kill_sig_prefixed_signal() {
    kill_with("SIGKILL");
}

#[test]
fn kill_numeric_signal() {
    kill_with("9");
}

#[test]
fn kill_term_is_delivered_to_handler() {
    // The signal number reaches the process: a trap sees SIGUSR1 (10).
    let rt = Runtime::new();
    let b = Bundle::sh(
        "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.05; done",
    );
    let id = rt.id();
    let out = rt.work().join("out");
    rt.create_to(&b, &id, &out);
    rt.exec(&["start", &id]).expect_ok();
    let start = std::time::Instant::now();
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(start.elapsed() < T);
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.exec(&["kill", &id, "10"]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    assert_eq!(fs::read_to_string(&out).unwrap(), "ready\ngot-usr1\n");
}

#[test]
fn kill_all() {
    let rt = Runtime::new();
    // No pid namespace: the children would outlive their parent's death unless --all
    // reaches them too.
    let mut b = Bundle::sh("sleep 100 & sleep 100 & wait");
    b.edit(|c| remove_ns(c, "pid"));
    let id = rt.id();
    rt.exec(&["run", "--detach", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // wait for the two sleeps
    let start = std::time::Instant::now();
    let children = |pid: i64| {
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
    };
    while children(pid).split_whitespace().count() < 2 {
        assert!(start.elapsed() < T, "children never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kids: Vec<i64> = children(pid)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    rt.exec(&["kill", "--all", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    let start = std::time::Instant::now();
    while kids.iter().any(|&k| pid_alive(k)) || pid_alive(pid) {
        assert!(start.elapsed() < T, "kill --all left {kids:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn kill_stopped_container_says_not_running() {
    let rt = Runtime::new();
    let b = Bundle::new(&["true"]);
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();
    rt.wait_status(&id, "stopped", T);
    rt.exec(&["kill", &id, "KILL"])
        .expect_err()
        .expect_msg("container not running");
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn delete_running_fails_force_works() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.exec(&["run", "--detach", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let o = rt.exec(&["delete", &id]).expect_err();
    if !is_runc() {
        // runc: "cannot delete container t-... that is not stopped: running"
        o.expect_msg("running");
    }
    assert_eq!(
        rt.status(&id),
        "running",
        "failed delete changed the container"
    );
    assert!(pid_alive(pid));
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(wait_pid_gone(pid, T), "pid {pid} survived");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// runtime-spec: deleting a container that is not stopped MUST fail, created included (runc
/// and crun kill it instead; runtime-tools' `delete` checks this).
#[test]
fn delete_created_without_force_fails_and_changes_nothing() {
    if skip_for_runc("runc deletes a created container without --force") {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.exec(&["delete", &id])
        .expect_err()
        .expect_msg("is created: cannot delete a container that is not stopped without --force");
    assert_eq!(rt.status(&id), "created");
    assert!(pid_alive(pid));
    // and it still starts
    rt.exec(&["start", &id]).expect_ok();
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn delete_force_created_container() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.create(&b, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(wait_pid_gone(pid, T), "pid {pid} survived");
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn delete_of_a_missing_id() {
    // `delete --force` of an unknown id succeeds silently, as runc's (engines call it after
    // every failed create); without --force, and for other commands, it is an error.
    let rt = Runtime::new();
    let id = rt.id();
    let o = rt.exec(&["delete", "--force", &id]).expect_ok();
    assert_eq!(o.stderr, "");
    rt.exec(&["delete", &id])
        .expect_err()
        .expect_msg("does not exist");
    rt.exec(&["state", &id])
        .expect_err()
        .expect_msg("does not exist");
}

#[test]
fn start_twice_fails() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.create(&b, &id);
    rt.exec(&["start", &id]).expect_ok();
    let o = rt.exec(&["start", &id]).expect_err();
    if !is_runc() {
        // runc: "cannot start an already running container"
        o.expect_msg("running");
    } else {
        o.expect_msg("running container");
    }
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn run_keep_leaves_the_stopped_container() {
    let rt = Runtime::new();
    let b = Bundle::sh("exit 4");
    let id = rt.id();
    let o = rt.exec(&["run", "--keep", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(o.code(), 4, "{o}");
    assert_eq!(rt.status(&id), "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    rt.exec(&["delete", &id]).expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// Without a pid namespace, a process the container orphans is reparented to `run` (a child
/// subreaper, as in runc), or past it with `--no-subreaper`. The container prints its
/// parent's pid (husk's) and the orphan's new parent.
#[test]
fn run_subreaper_adopts_orphans_unless_disabled() {
    for (flag, adopted) in [(None, true), (Some("--no-subreaper"), false)] {
        let rt = Runtime::new();
        let mut b = Bundle::sh(
            "sh -c 'sleep 2 & echo $! > /dev/shm/orphan'; sleep 0.3; \
             echo husk=$PPID; grep PPid /proc/$(cat /dev/shm/orphan)/status",
        );
        b.edit(|c| remove_ns(c, "pid"));
        let id = rt.id();
        let mut args = vec!["run"];
        args.extend(flag);
        let bundle = b.path().to_str().unwrap().to_string();
        args.extend(["--bundle", &bundle, &id]);
        let o = rt.exec(&args).expect_ok();
        let husk = o
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("husk="))
            .unwrap()
            .trim()
            .to_string();
        let parent = o
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(parent == husk, adopted, "{flag:?}: {o}");
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
}

/// The init is known by pid and start time: if the recorded start time no longer matches the
/// process behind the pid (as after pid reuse), husk treats the container as stopped and
/// signals nothing.
#[test]
fn recycled_pid_is_never_signalled() {
    if skip_for_runc("husk's state.json layout") {
        return;
    }
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    rt.create(&b, &id).expect_ok();
    rt.exec(&["start", &id]).expect_ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let path = rt.root().join(&id).join("state.json");
    let saved = std::fs::read_to_string(&path).unwrap();
    let mut v: Value = serde_json::from_str(&saved).unwrap();
    let start = v["pid_start"].as_u64().unwrap();
    v["pid_start"] = json!(start + 1);
    std::fs::write(&path, v.to_string()).unwrap();

    assert_eq!(rt.status(&id), "stopped");
    rt.exec(&["kill", &id, "KILL"])
        .expect_err()
        .expect_msg("container not running");
    assert!(pid_alive(pid), "the process behind the pid was signalled");

    std::fs::write(&path, saved).unwrap();
    assert_eq!(rt.status(&id), "running");
    rt.exec(&["delete", "--force", &id]).expect_ok();
    assert!(wait_pid_gone(pid, std::time::Duration::from_secs(5)));
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

/// state.json is replaced by swapping a new file in (RENAME_EXCHANGE) and unlinking the old
/// one: after each update only state.json (and create's recovery record) is there, holding the
/// new status.
#[test]
fn state_updates_leave_no_temporary_file() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(rt.root().join(&id))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') || n.ends_with(".json"))
            .filter(|n| n != "recovery.json")
            .collect();
        v.sort();
        v
    };
    rt.create(&b, &id);
    assert_eq!(names(), ["state.json"]);
    if !is_runc() {
        assert!(rt.root().join(&id).join("recovery.json").exists());
    }
    rt.exec(&["start", &id]).expect_ok();
    assert_eq!(names(), ["state.json"]);
    assert_eq!(rt.status(&id), "running");
    rt.exec(&["pause", &id]).expect_ok();
    assert_eq!(names(), ["state.json"]);
    assert_eq!(rt.status(&id), "paused");
}
