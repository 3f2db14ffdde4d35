//! husk's own containerd shim (containerd-shim-husk-v2, runtime `io.containerd.husk.v2`) driven
//! through ctr against a private containerd 1.6 per test (`Containerd::with_husk_shim`). Every
//! test checks that no runtime binary was executed (the wrapper named `runc` and `husk` on the
//! daemon's PATH logs nothing: the library is linked into the shim), what the containers saw,
//! and that nothing is left: no container, task, shim process, bundle, state, cgroup or FIFO
//! (ctr's FIFOs go to the test's own `--fifo-dir`).

use std::time::Duration;

use integration::*;

#[track_caller]
fn assert_no_runtime_exec(c: &Containerd) {
    assert_eq!(
        c.wrapper.calls(),
        Vec::<String>::new(),
        "a runtime binary ran"
    );
}

#[test]
fn run_output_and_exit_codes() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("out{}", unique());
    let o = c.run(
        &["--rm"],
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(o.code(), 3, "{o}");
    assert_eq!(o.stdout, "out\n");
    assert!(o.stderr.contains("err"), "{o}");
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

/// `ctr events` running in the background, its lines collected.
struct Events {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Events {
    fn start(c: &Containerd) -> Events {
        use std::io::BufRead;
        let mut cmd = c.ctr_cmd(&["events"]);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(l);
            }
        });
        // ctr subscribes before it prints anything: give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        Events { child, lines }
    }

    /// The first event of `topic` about container `id` (for /tasks/exit: of its init),
    /// waiting up to 30 s.
    #[track_caller]
    fn wait(&self, topic: &str, id: &str) -> String {
        let init = format!("\"id\":\"{id}\"");
        for _ in 0..300 {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| {
                l.split_whitespace().any(|w| w == topic)
                    && l.contains(&format!("\"container_id\":\"{id}\""))
                    && (topic != "/tasks/exit" || l.contains(&init))
            }) {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no {topic} event for {id}: {:#?}",
            self.lines.lock().unwrap()
        );
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn missing_executable_names_the_cause_and_leaves_nothing() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("missing{}", unique());
    let o = c.run(&["--rm"], &id, &["/no/such/binary"]);
    assert_ne!(o.code(), 0, "{o}");
    let msg = "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory";
    assert!(o.stderr.contains(msg), "{o}");
    // ctr keeps the container record of a failed task; removing it is ctr's part.
    let _ = c.ctr(&["containers", "delete", &id]);
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn stdin_reaches_the_container_and_closes() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("in{}", unique());
    let mut cmd = c.ctr_cmd(&[
        "run",
        "--rm",
        "--runtime",
        HUSK_RUNTIME,
        CTR_IMAGE,
        &id,
        "sh",
        "-c",
        "cat; echo done",
    ]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"line one\nline two\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "line one\nline two\ndone\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn terminal_run() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("tty{}", unique());
    let o = in_pty(&c.ctr_cmd(&[
        "run",
        "--rm",
        "--tty",
        "--runtime",
        HUSK_RUNTIME,
        CTR_IMAGE,
        &id,
        "sh",
        "-c",
        "tty; ls -l /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2",
    ]));
    assert!(o.stdout.contains("/dev/pts/0"), "{o}");
    // All three streams are the terminal.
    assert_eq!(o.stdout.matches("-> /dev/pts/0").count(), 3, "{o}");
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn detached_exec_pause_resume_kill_and_events() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let ev = Events::start(&c);
    let id = format!("d{}", unique());
    c.run(
        &["--detach"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1 > /tmp/sig' USR1; while :; do sleep 0.1; done",
        ],
    )
    .expect_ok();
    let line = c.wait_status(&id, "RUNNING");
    let pid = line.split_whitespace().nth(1).unwrap().to_string();
    ev.wait("/tasks/create", &id);
    assert!(ev
        .wait("/tasks/start", &id)
        .contains(&format!("\"pid\":{pid}")));
    // The init is the shim's child: no runtime process in between.
    assert_eq!(c.shim_pids(), vec![ppid(pid.parse().unwrap())]);
    let o = c
        .ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            &id,
            "sh",
            "-c",
            "echo exec-ok; cat /proc/1/cmdline",
        ])
        .expect_ok();
    assert!(o.stdout.starts_with("exec-ok\nsh"), "{o}");
    ev.wait("/tasks/exec-added", &id);
    ev.wait("/tasks/exec-started", &id);
    let o = c.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e2",
        &id,
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(o.code(), 4, "{o}");
    let o = in_pty(&c.ctr_cmd(&["tasks", "exec", "--tty", "--exec-id", "e3", &id, "tty"]));
    assert!(o.stdout.contains("/dev/pts/"), "{o}");
    // A running exec's id cannot be reused.
    c.ctr(&[
        "tasks",
        "exec",
        "--detach",
        "--exec-id",
        "long",
        &id,
        "sleep",
        "30",
    ])
    .expect_ok();
    let o = c.ctr(&["tasks", "exec", "--exec-id", "long", &id, "true"]);
    assert_ne!(o.code(), 0, "{o}");
    assert!(o.stderr.contains("already exists"), "{o}");
    let o = c.ctr(&["tasks", "ps", &id]).expect_ok();
    assert!(
        o.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid)),
        "{o}"
    );
    c.ctr(&["tasks", "kill", "--signal", "SIGUSR1", &id])
        .expect_ok();
    let mut got = String::new();
    for _ in 0..50 {
        got = c
            .ctr(&["tasks", "exec", "--exec-id", "cat", &id, "cat", "/tmp/sig"])
            .stdout;
        if got.contains("got-usr1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got.trim(), "got-usr1");
    c.ctr(&["tasks", "pause", &id]).expect_ok();
    c.wait_status(&id, "PAUSED");
    ev.wait("/tasks/paused", &id);
    let frozen = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/freezer{}/freezer.state",
        c.cgroup(&id)
    ));
    if !is_pure_v2() {
        assert_eq!(frozen.unwrap().trim(), "FROZEN");
    }
    c.ctr(&["tasks", "resume", &id]).expect_ok();
    c.wait_status(&id, "RUNNING");
    ev.wait("/tasks/resumed", &id);
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .expect_ok();
    c.wait_status(&id, "STOPPED");
    let exit = ev.wait("/tasks/exit", &id);
    assert!(exit.contains("\"exit_status\":137"), "{exit}");
    let o = c.ctr(&["tasks", "delete", &id]).expect_ok();
    assert!(o.stdout.contains("137") || o.stderr.contains("137"), "{o}");
    ev.wait("/tasks/delete", &id);
    c.ctr(&["containers", "delete", &id]).expect_ok();
    c.remove_ctr_fifos("long");
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn oom_kill_gives_137_and_an_oom_event() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let ev = Events::start(&c);
    let id = format!("oom{}", unique());
    let o = c.run(
        &["--rm", "--memory-limit", "33554432"],
        &id,
        &["sh", "-c", "head -c 67108864 /dev/zero | tail > /dev/null"],
    );
    assert_eq!(o.code(), 137, "{o}");
    ev.wait("/tasks/oom", &id);
    assert!(ev.wait("/tasks/exit", &id).contains("\"exit_status\":137"));
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

/// A detached container, running until killed; returns its init's pid.
fn detached(c: &Containerd, id: &str, opts: &[&str], script: &str) -> i32 {
    let mut a = vec!["run", "--runtime", HUSK_RUNTIME, "--detach"];
    a.extend_from_slice(opts);
    a.extend_from_slice(&[CTR_IMAGE, id, "sh", "-c", script]);
    // ctr wants a terminal of its own for --tty, even detached.
    if opts.contains(&"--tty") {
        in_pty(&c.ctr_cmd(&a)).expect_ok();
    } else {
        c.ctr(&a).expect_ok();
    }
    let line = c.wait_status(id, "RUNNING");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn kill_and_delete(c: &Containerd, id: &str) {
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", id])
        .expect_ok();
    c.wait_status(id, "STOPPED");
    c.ctr(&["tasks", "delete", id]).expect_ok();
    c.ctr(&["containers", "delete", id]).expect_ok();
}

fn any_json(
    type_url: &str,
    v: &Value,
) -> containerd_shim_protos::protobuf::well_known_types::any::Any {
    let mut a = containerd_shim_protos::protobuf::well_known_types::any::Any::new();
    a.type_url = type_url.into();
    a.value = v.to_string().into_bytes();
    a
}

#[test]
fn update_stats_and_resize() {
    use containerd_shim_protos::api;
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("up{}", unique());
    detached(
        &c,
        &id,
        &["--tty", "--memory-limit", "50331648"],
        "while :; do stty size > /tmp/size; sleep 0.1; done",
    );
    let cg = c.cgroup(&id);
    let read = |h: &str, f: &str| {
        let p = format!("/sys/fs/cgroup/{h}{cg}/{f}");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .trim()
            .to_string()
    };
    let client = c.shim_client(&id);
    // Update: what docker and CRI send, linux.resources as JSON in an Any.
    let mut req = api::UpdateTaskRequest::new();
    req.id = id.clone();
    req.resources = Some(any_json(
        "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
        &json!({"memory": {"limit": 67108864}, "cpu": {"shares": 256}, "pids": {"limit": 50}}),
    ))
    .into();
    client.task.update(client.ctx(), &req).expect("update");
    if !is_pure_v2() {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("cpu", "cpu.shares"), "256");
        assert_eq!(read("pids", "pids.max"), "50");
    }
    // Stats, as ctr decodes them.
    let o = c.ctr(&["tasks", "metrics", &id]).expect_ok();
    let metric = |name: &str| {
        o.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {name} in {o}"))
            .to_string()
    };
    if !is_pure_v2() {
        assert_eq!(metric("memory.limit_in_bytes"), "67108864");
        assert_eq!(metric("pids.limit"), "50");
        assert!(metric("pids.current").parse::<u64>().unwrap() >= 1);
        assert!(metric("memory.usage_in_bytes").parse::<u64>().unwrap() > 0);
    }
    // ResizePty on the init's terminal, seen by `stty size` inside.
    let mut req = api::ResizePtyRequest::new();
    req.id = id.clone();
    req.width = 123;
    req.height = 45;
    client.task.resize_pty(client.ctx(), &req).expect("resize");
    let mut size = String::new();
    for _ in 0..50 {
        size = c
            .ctr(&["tasks", "exec", "--exec-id", "sz", &id, "cat", "/tmp/size"])
            .stdout;
        if size.trim() == "45 123" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(size.trim(), "45 123");
    kill_and_delete(&c, &id);
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn bad_requests_get_the_cause_and_leave_nothing() {
    use containerd_shim_protos::api;
    use containerd_shim_protos::ttrpc::Code;
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("bad{}", unique());
    detached(&c, &id, &[], "sleep 1000");
    let client = c.shim_client(&id);
    // An unknown container.
    let mut st = api::StateRequest::new();
    st.id = "nosuch".into();
    let (code, msg) = rpc_error(client.task.state(client.ctx(), &st));
    assert_eq!(code, Code::NOT_FOUND, "{msg}");
    assert!(msg.contains("nosuch"), "{msg}");
    // An exec whose process spec is malformed: the field is named.
    let mut ex = api::ExecProcessRequest::new();
    ex.id = id.clone();
    ex.exec_id = "x1".into();
    ex.spec = Some(any_json(
        "types.containerd.io/opencontainers/runtime-spec/1/Process",
        &json!({"args": "not-a-list", "cwd": "/"}),
    ))
    .into();
    let (code, msg) = rpc_error(client.task.exec(client.ctx(), &ex));
    assert_eq!(code, Code::INVALID_ARGUMENT, "{msg}");
    assert!(msg.contains("args"), "{msg}");
    // An exec id in use.
    ex.spec = Some(any_json(
        "types.containerd.io/opencontainers/runtime-spec/1/Process",
        &json!({"args": ["sleep", "100"], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
    ))
    .into();
    client.task.exec(client.ctx(), &ex).expect("exec");
    let (code, msg) = rpc_error(client.task.exec(client.ctx(), &ex));
    assert_eq!(code, Code::ALREADY_EXISTS, "{msg}");
    // Its Start fails with the library's message (no such executable), and the exec can go.
    let mut ex2 = ex.clone();
    ex2.exec_id = "x2".into();
    ex2.spec = Some(any_json(
        "types.containerd.io/opencontainers/runtime-spec/1/Process",
        &json!({"args": ["/nope"], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
    ))
    .into();
    client.task.exec(client.ctx(), &ex2).expect("exec x2");
    let mut s = api::StartRequest::new();
    s.id = id.clone();
    s.exec_id = "x2".into();
    let (_, msg) = rpc_error(client.task.start(client.ctx(), &s));
    assert!(
        msg.contains("/nope") && msg.contains("no such file or directory"),
        "{msg}"
    );
    // A second container on this shim whose config is malformed: nothing of it is left.
    let bundle = c.dir.join("badbundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion": "1.0.2", "process": {"args": 5}}"#,
    )
    .unwrap();
    let mut cr = api::CreateTaskRequest::new();
    cr.id = format!("{id}-b");
    cr.bundle = bundle.to_string_lossy().into_owned();
    let (code, msg) = rpc_error(client.task.create(client.ctx(), &cr));
    assert_eq!(code, Code::INVALID_ARGUMENT, "{msg}");
    assert!(msg.contains("args"), "{msg}");
    assert!(!c.runtime_root().join(&cr.id).exists());
    // Kill of an unknown exec.
    let mut k = api::KillRequest::new();
    k.id = id.clone();
    k.exec_id = "nosuch".into();
    k.signal = 9;
    let (code, _) = rpc_error(client.task.kill(client.ctx(), &k));
    assert_eq!(code, Code::NOT_FOUND);
    kill_and_delete(&c, &id);
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

/// The parent of `pid` (field 4 of /proc/PID/stat).
fn ppid(pid: i32) -> i32 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    st.rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn containers_of_a_group_share_one_shim() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let base = unique();
    let ids: Vec<String> = (0..3).map(|i| format!("g{base}x{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        // runc's shim's two grouping annotations, the CRI one for the last.
        let ann = if i < 2 {
            "io.containerd.runc.v2.group=pod1".to_string()
        } else {
            "io.kubernetes.cri.sandbox-id=pod1".to_string()
        };
        let env = format!("WHO={id}");
        detached(&c, id, &["--annotation", &ann, "--env", &env], "sleep 1000");
    }
    let lone = format!("lone{base}");
    detached(&c, &lone, &[], "sleep 1000");
    // pod1's three containers in one shim, the lone one in its own.
    assert_eq!(c.shim_pids().len(), 2, "{:?}", c.shim_pids());
    // ids[0]'s init is a child of the group's shim.
    let group_shim = ppid(
        c.wait_status(&ids[0], "RUNNING")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap(),
    );
    for id in &ids {
        let o = c
            .ctr(&[
                "tasks",
                "exec",
                "--exec-id",
                "h",
                id,
                "sh",
                "-c",
                "echo $WHO",
            ])
            .expect_ok();
        assert_eq!(o.stdout.trim(), id.as_str(), "{o}");
    }
    // The group's shim stays while any of its containers does.
    for (n, id) in ids.iter().enumerate() {
        kill_and_delete(&c, id);
        if n < 2 {
            assert!(
                pid_alive(group_shim.into()),
                "the group's shim left with containers in it"
            );
        }
    }
    for _ in 0..100 {
        if !pid_alive(group_shim.into()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !pid_alive(group_shim.into()),
        "the group's shim stayed after its last container"
    );
    kill_and_delete(&c, &lone);
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn fifty_containers_in_parallel() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let base = unique();
    let outs: Vec<(String, Output)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let id = format!("par{base}x{i}");
                let cmd = c.ctr_cmd(&[
                    "run",
                    "--rm",
                    "--runtime",
                    HUSK_RUNTIME,
                    CTR_IMAGE,
                    &id,
                    "sh",
                    "-c",
                    &format!("echo hello-{i}; sleep 0.2"),
                ]);
                s.spawn(move || (id, bounded(cmd, Duration::from_secs(300))))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (id, o)) in outs.iter().enumerate() {
        assert_eq!(o.code(), 0, "{id}: {o}");
        assert_eq!(o.stdout, format!("hello-{i}\n"), "{id}: {o}");
    }
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn containers_survive_a_containerd_restart() {
    let Some(mut c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("rs{}", unique());
    let pid = detached(&c, &id, &[], "sleep 1000");
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1);
    c.restart();
    // The same task, the same shim: containerd found it again from the bundle's address.
    let line = c.wait_status(&id, "RUNNING");
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(pid.to_string().as_str()),
        "{line}"
    );
    assert_eq!(c.shim_pids(), shims);
    let o = c
        .ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "after",
            &id,
            "echo",
            "still-here",
        ])
        .expect_ok();
    assert_eq!(o.stdout, "still-here\n");
    // The exit reaches the restarted containerd.
    let ev = Events::start(&c);
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .expect_ok();
    assert!(ev.wait("/tasks/exit", &id).contains("\"exit_status\":137"));
    c.wait_status(&id, "STOPPED");
    c.ctr(&["tasks", "delete", &id]).expect_ok();
    c.ctr(&["containers", "delete", &id]).expect_ok();
    assert_no_runtime_exec(&c);
    c.assert_clean();
}

#[test]
fn a_killed_shim_is_cleaned_up() {
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("k{}", unique());
    let pid = detached(&c, &id, &[], "sleep 1000");
    let bundle = c.bundles().into_iter().find(|b| b.ends_with(&id)).unwrap();
    let addr = std::fs::read_to_string(bundle.join("address")).unwrap();
    let sock = addr.trim().trim_start_matches("unix://").to_string();
    assert!(std::path::Path::new(&sock).exists());
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1);
    host("kill", &["-9", &shims[0].to_string()]);
    // containerd sees the connection go and runs `containerd-shim-husk-v2 ... delete`, which
    // removes the container: the init is killed, its state, cgroup and rootfs mount go.
    for _ in 0..200 {
        if !pid_alive(pid.into())
            && !std::path::Path::new(&sock).exists()
            && c.ctr(&["tasks", "list", "--quiet"])
                .stdout
                .trim()
                .is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !pid_alive(pid.into()),
        "the container outlived its shim's cleanup"
    );
    let _ = c.ctr(&["tasks", "delete", &id]);
    c.ctr(&["containers", "delete", &id]).expect_ok();
    assert!(
        !std::path::Path::new(&sock).exists(),
        "the dead shim's socket {sock} is left"
    );
    c.remove_ctr_fifos(&id);
    assert_no_runtime_exec(&c);
    c.assert_clean();
}
