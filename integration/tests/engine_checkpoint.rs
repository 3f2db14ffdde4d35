//! Checkpoint and restore driven by the engines, with the runtime under test (`HUSK_BIN`;
//! `HUSK_BIN=/usr/sbin/runc` validates the tests against runc) and CRIU 4.1.1 (`HUSK_CRIU`,
//! default scripts/criu's cache; first on PATH as `criu`, since neither engine passes
//! `--criu`). Under CI=true a missing CRIU fails the test.
//!
//! The container is a counter whose state is only in memory (a token drawn at start and a
//! count, mirrored to /tmp/cnt): after a restore the token must be the same and the count at
//! least what it was before the checkpoint, and it must keep counting. What each engine passes
//! to the runtime is in the module docs of the tests below (observed with runc 1.1.5).

use std::path::{Path, PathBuf};

use integration::criu::*;
use integration::*;

/// The runtime's state directory for `id`: podman passes no `--root`, so the default one.
fn default_state(id: &str) -> PathBuf {
    Path::new(if is_runc() { "/run/runc" } else { "/run/husk" }).join(id)
}

fn podman() -> Option<Podman> {
    if criu_missing() {
        return None;
    }
    Podman::new()
}

/// `podman run -d --name NAME OPTS IMAGE sh -c COUNTER`; returns the container's id.
fn run_counter(p: &Podman, name: &str, opts: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(opts);
    a.extend([IMAGE, "sh", "-c", COUNTER]);
    let id = p.run(&a).expect_ok().stdout.trim().to_string();
    assert_eq!(id.len(), 64, "not a container id: {id:?}");
    id
}

fn inspect(p: &Podman, name: &str, format: &str) -> String {
    p.run(&["inspect", "--format", format, name])
        .expect_ok()
        .stdout
        .trim()
        .to_string()
}

/// The counter as `podman exec` reads it.
fn podman_count<'a>(p: &'a Podman, name: &'a str) -> impl Fn() -> String + 'a {
    move || p.run(&["exec", name, "cat", "/tmp/cnt"]).stdout
}

/// Asserts that the restored counter is the one that was checkpointed (same token, count at
/// least `before`) and that it keeps counting; returns the last count seen.
#[track_caller]
fn continues(read: impl Fn() -> String, token: &str, before: u64) -> u64 {
    let (t1, v1) = count_above(&read, before - 1);
    assert_eq!(
        t1, token,
        "a new counter, not the checkpointed one (count {v1})"
    );
    let (t2, v2) = count_above(&read, v1);
    assert_eq!(t2, token);
    v2
}

/// No container left in podman, and nothing of `ids` on the host: processes (conmon
/// included), cgroups, mounts, runtime state.
#[track_caller]
fn assert_podman_clean(p: &Podman, ids: &[&str]) {
    let o = p.run(&["ps", "-a", "--format", "{{.Names}}"]).expect_ok();
    assert_eq!(o.stdout.trim(), "", "{o}");
    assert_becomes_empty(|| {
        let mut left = Vec::new();
        for id in ids {
            left.extend(
                processes_for(id)
                    .into_iter()
                    .map(|(p, w)| format!("{p}: {w}")),
            );
            left.extend(cgroup_dirs_for(id).iter().map(|d| d.display().to_string()));
            left.extend(mounts_naming(id));
            let st = default_state(id);
            if st.exists() {
                left.push(format!("runtime state {}", st.display()));
            }
        }
        left
    });
}

/// A CRIU statistic of the one container in `podman ... --print-stats` output.
fn criu_stat(o: &Output, key: &str) -> u64 {
    let v: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o}"));
    v["container_statistics"][0]["criu_statistics"][key]
        .as_u64()
        .unwrap_or(0)
}

/// podman runs `RUNTIME checkpoint --help` (exit 0 = supported), then
/// `checkpoint --image-path <userdata>/checkpoint --work-path <userdata> ID` and
/// `delete --force ID`; conmon restores with `--log-format=json --log F restore --bundle
/// <userdata> --pid-file F --detach --image-path <userdata>/checkpoint --work-path <userdata> ID`.
#[test]
fn podman_checkpoint_then_restore_continues_the_counter() {
    let Some(p) = podman() else { return };
    let id = run_counter(&p, "ck", &[]);
    let (token, v0) = count_above(podman_count(&p, "ck"), 3);
    // --print-stats: podman reads CRIU's stats-dump from the work path it gave the runtime.
    let o = p
        .run(&["container", "checkpoint", "--print-stats", "ck"])
        .expect_ok();
    assert!(criu_stat(&o, "pages_written") > 0, "{o}");
    assert_eq!(
        inspect(&p, "ck", "{{.State.Status}} {{.State.Checkpointed}}"),
        "exited true"
    );
    // CRIU's images where podman looks for them, and the dumped processes gone.
    let images = inspect(&p, "ck", "{{.State.CheckpointPath}}");
    for f in ["inventory.img", "pstree.img", "descriptors.json"] {
        assert!(Path::new(&images).join(f).exists(), "no {f} in {images}");
    }
    assert_becomes_empty(|| {
        processes_for(&id)
            .into_iter()
            .map(|(p, w)| format!("{p}: {w}"))
            .collect()
    });
    let o = p
        .run(&["container", "restore", "--print-stats", "ck"])
        .expect_ok();
    assert!(criu_stat(&o, "pages_restored") > 0, "{o}");
    assert_eq!(
        inspect(
            &p,
            "ck",
            "{{.State.Status}} {{.State.Restored}} {{.OCIRuntime}}"
        ),
        "running true husk"
    );
    assert!(default_state(&id).join("state.json").exists() || is_runc());
    let v = continues(podman_count(&p, "ck"), &token, v0);
    // Its stdout is conmon's pipe again (handed to CRIU for the dumped one): the log goes on.
    let (t, _) = count_above(
        || {
            let o = p.run(&["logs", "ck"]);
            o.stdout.lines().last().unwrap_or_default().to_string()
        },
        v,
    );
    assert_eq!(t, token);
    // The restored container is an ordinary one: exec, stop and remove work.
    let o = p.run(&["exec", "ck", "cat", "/proc/1/cmdline"]).expect_ok();
    assert!(o.stdout.starts_with("sh\0-c\0"), "{o}");
    p.run(&["rm", "--force", "--time", "0", "ck"]).expect_ok();
    assert_podman_clean(&p, &[&id]);
}

/// `checkpoint --export` calls the runtime as a plain checkpoint; `restore --import F --name
/// NEW` restores under the new container's id, bundle and paths.
#[test]
fn podman_export_then_import_into_a_new_container() {
    let Some(p) = podman() else { return };
    let file = std::env::temp_dir().join(format!(
        "husk-ckpt-{}-{}.tar.gz",
        std::process::id(),
        unique()
    ));
    let _rm = RemoveOnDrop(file.clone());
    let f = file.to_string_lossy().into_owned();
    let src = run_counter(&p, "src", &[]);
    let (token, v0) = count_above(podman_count(&p, "src"), 3);
    p.run(&["container", "checkpoint", "--export", &f, "src"])
        .expect_ok();
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "export {f}: {size} bytes");
    assert_eq!(inspect(&p, "src", "{{.State.Status}}"), "exited");
    let o = p
        .run(&["container", "restore", "--import", &f, "--name", "dst"])
        .expect_ok();
    let dst = o.stdout.trim().to_string();
    assert!(dst.len() == 64 && dst != src, "{o}");
    assert_eq!(
        inspect(&p, "dst", "{{.Id}} {{.State.Status}} {{.State.Restored}}"),
        format!("{dst} running true")
    );
    assert!(default_state(&dst).join("state.json").exists() || is_runc());
    continues(podman_count(&p, "dst"), &token, v0);
    // The source is still there, checkpointed; both go.
    assert_eq!(inspect(&p, "src", "{{.State.Status}}"), "exited");
    p.run(&["rm", "--force", "--time", "0", "src", "dst"])
        .expect_ok();
    assert_podman_clean(&p, &[&src, &dst]);
}

/// With -t, conmon's restore adds `--console-socket /tmp/conmon-term.XXXXXX`; `-R` adds
/// `--leave-running` (podman 4.3 passes it twice); `--tcp-established` and `--file-locks` go
/// to the runtime as they are, on checkpoint and on restore.
#[test]
fn podman_tty_container_leave_running_then_restore_with_a_console() {
    let Some(p) = podman() else { return };
    let id = run_counter(&p, "tty", &["-t"]);
    let (token, v0) = count_above(podman_count(&p, "tty"), 3);
    let pid = inspect(&p, "tty", "{{.State.Pid}}");
    p.run(&["container", "checkpoint", "--leave-running", "tty"])
        .expect_ok();
    // Never stopped: the same process (podman does not mark it checkpointed), its images
    // written, the same counter counting on.
    assert_eq!(
        inspect(&p, "tty", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    let images = inspect(&p, "tty", "{{.State.CheckpointPath}}");
    assert!(
        Path::new(&images).join("inventory.img").exists(),
        "no inventory.img in {images}"
    );
    let v1 = continues(podman_count(&p, "tty"), &token, v0);
    // The flags podman passes through to both commands.
    let flags = ["--tcp-established", "--file-locks"];
    p.run(&[&["container", "checkpoint"][..], &flags, &["tty"]].concat())
        .expect_ok();
    assert_eq!(inspect(&p, "tty", "{{.State.Status}}"), "exited");
    p.run(&[&["container", "restore"][..], &flags, &["tty"]].concat())
        .expect_ok();
    assert_eq!(inspect(&p, "tty", "{{.State.Status}}"), "running");
    continues(podman_count(&p, "tty"), &token, v1);
    // pid 1's stdio is a terminal again: the new pty conmon got through the console socket.
    let o = p
        .run(&[
            "exec",
            "tty",
            "sh",
            "-c",
            "readlink /proc/1/fd/0; readlink /proc/1/fd/1",
        ])
        .expect_ok();
    let ttys: Vec<&str> = o.stdout.split_whitespace().collect();
    assert!(
        ttys.len() == 2 && ttys.iter().all(|t| t.starts_with("/dev/pts/")),
        "{o}"
    );
    p.run(&["rm", "--force", "--time", "0", "tty"]).expect_ok();
    assert_podman_clean(&p, &[&id]);
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn containerd() -> Option<Containerd> {
    if criu_missing() {
        return None;
    }
    Containerd::new()
}

/// The counter as `ctr tasks exec` reads it.
fn ctr_count<'a>(c: &'a Containerd, id: &'a str) -> impl Fn() -> String + 'a {
    move || {
        let e = format!("r{}", unique());
        c.ctr(&["tasks", "exec", "--exec-id", &e, id, "cat", "/tmp/cnt"])
            .stdout
    }
}

/// The value of `flag` in a logged runtime call.
fn flag_value(call: &str, flag: &str) -> Option<String> {
    let w: Vec<&str> = call.split_whitespace().collect();
    w.iter()
        .position(|a| *a == flag)
        .and_then(|i| w.get(i + 1))
        .map(|s| s.to_string())
}

fn kill_and_delete(c: &Containerd, id: &str) {
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", id])
        .expect_ok();
    c.wait_status(id, "STOPPED");
    c.ctr(&["tasks", "delete", id]).expect_ok();
    c.ctr(&["containers", "delete", id]).expect_ok();
}

/// The shim brackets the checkpoint with `pause`/`resume` and passes `checkpoint --image-path
/// /tmp/ctd-checkpointN --work-path <bundle>/work/criu-work --file-locks --leave-running ID`:
/// the runtime checkpoints a frozen container and leaves it frozen. The restore is `restore
/// --image-path /tmp/ctrd-checkpointN --work-path <bundle>/work --detach --pid-file
/// <bundle>/init.pid -no-subreaper --bundle <bundle> ID` (one dash), stdio the shim's pipes.
/// ctr 1.6 cannot restore what `ctr tasks checkpoint` makes (its index lacks the image name
/// `containers restore` wants), so this goes through `containers checkpoint --task`, the same
/// shim call.
#[test]
fn containerd_checkpoint_then_live_restore_continues_the_counter() {
    let Some(c) = containerd() else { return };
    let id = format!("ck{}", unique());
    c.run(&["--detach"], &id, &["sh", "-c", COUNTER])
        .expect_ok();
    c.wait_status(&id, "RUNNING");
    let (token, v0) = count_above(ctr_count(&c, &id), 3);
    let image = format!("localhost/husk-ckpt-{id}:1");
    c.ctr(&[
        "containers",
        "checkpoint",
        "--task",
        "--image",
        "--rw",
        &id,
        &image,
    ])
    .expect_ok();
    let call = c.wrapper.assert_called("checkpoint", &id);
    assert!(call.contains("--leave-running"), "{call}");
    c.wrapper.assert_called("pause", &id);
    c.wrapper.assert_called("resume", &id);
    // Left running (and resumed): the same counter goes on.
    c.wait_status(&id, "RUNNING");
    continues(ctr_count(&c, &id), &token, v0);
    kill_and_delete(&c, &id);
    c.ctr(&["containers", "restore", "--live", "--rw", &id, &image])
        .expect_ok();
    let call = c.wrapper.assert_called("restore", &id);
    // containerd 1.6's shim leaves the unpacked checkpoint behind: ours to remove.
    let _unpacked = flag_value(&call, "--image-path").map(|p| RemoveOnDrop(p.into()));
    c.wait_status(&id, "RUNNING");
    if !is_runc() {
        assert!(
            c.runtime_root().join(&id).join("state.json").exists(),
            "no runtime state for {id}"
        );
    }
    // The image holds the counter as it was at the checkpoint: at least v0.
    continues(ctr_count(&c, &id), &token, v0);
    let o = c
        .ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            "pid1",
            &id,
            "cat",
            "/proc/1/cmdline",
        ])
        .expect_ok();
    assert!(o.stdout.starts_with("sh\0-c\0"), "{o}");
    kill_and_delete(&c, &id);
    c.ctr(&["images", "remove", "--sync", &image]).expect_ok();
    c.assert_clean();
    assert_becomes_empty(|| mounts_naming(&id));
}

/// `ctr tasks checkpoint --exit`: `pause`, `checkpoint --image-path /tmp/ctd-checkpointN
/// --work-path <bundle>/work/criu-work ID` (no --leave-running), then `resume` of the stopped
/// container, whose failure the shim ignores. The checkpoint lands in ctr's image store.
#[test]
fn containerd_task_checkpoint_exit_stops_the_task() {
    let Some(c) = containerd() else { return };
    let id = format!("ckx{}", unique());
    c.run(&["--detach"], &id, &["sh", "-c", COUNTER])
        .expect_ok();
    c.wait_status(&id, "RUNNING");
    count_above(ctr_count(&c, &id), 3);
    let o = c.ctr(&["tasks", "checkpoint", "--exit", &id]).expect_ok();
    let image = o.stdout.trim().to_string();
    assert!(
        image.starts_with(&format!("containerd.io/checkpoint/{id}:")),
        "{o}"
    );
    let call = c.wrapper.assert_called("checkpoint", &id);
    assert!(!call.contains("--leave-running"), "{call}");
    assert!(
        flag_value(&call, "--work-path").is_some_and(|w| w.ends_with("/work/criu-work")),
        "{call}"
    );
    c.wait_status(&id, "STOPPED");
    let images = c.ctr(&["images", "list", "--quiet"]).expect_ok();
    assert!(images.stdout.lines().any(|l| l == image), "{images}");
    c.ctr(&["tasks", "delete", &id]).expect_ok();
    c.ctr(&["containers", "delete", &id]).expect_ok();
    c.ctr(&["images", "remove", "--sync", &image]).expect_ok();
    c.assert_clean();
    assert_becomes_empty(|| mounts_naming(&id));
}

/// husk's own shim (containerd-shim-husk-v2): Checkpoint is the library's checkpoint in the
/// shim, and a Create with a checkpoint its `restore_process` at Start. Left running
/// (`containers checkpoint --task`) the counter goes on; restored (`containers restore`) it
/// carries on from the checkpoint, in a process the shim reaps; with `tasks checkpoint --exit`
/// the task stops; both checkpoints land in ctr's image store.
#[test]
fn containerd_husk_shim_checkpoints() {
    if criu_missing() {
        return;
    }
    let Some(c) = Containerd::with_husk_shim() else {
        return;
    };
    let id = format!("hsck{}", unique());
    c.run(&["--detach"], &id, &["sh", "-c", COUNTER])
        .expect_ok();
    c.wait_status(&id, "RUNNING");
    let (token, v0) = count_above(ctr_count(&c, &id), 3);
    let image = format!("localhost/husk-shim-ckpt-{id}:1");
    c.ctr(&[
        "containers",
        "checkpoint",
        "--task",
        "--image",
        "--rw",
        &id,
        &image,
    ])
    .expect_ok();
    c.wait_status(&id, "RUNNING");
    continues(ctr_count(&c, &id), &token, v0);
    kill_and_delete(&c, &id);
    // A second container (ctr would store the first one's spec blob twice), checkpointed
    // with --exit.
    let id2 = format!("hsckx{}", unique());
    c.run(&["--detach"], &id2, &["sh", "-c", COUNTER])
        .expect_ok();
    c.wait_status(&id2, "RUNNING");
    count_above(ctr_count(&c, &id2), 3);
    let o = c.ctr(&["tasks", "checkpoint", "--exit", &id2]).expect_ok();
    let exited = o.stdout.trim().to_string();
    assert!(
        exited.starts_with(&format!("containerd.io/checkpoint/{id2}:")),
        "{o}"
    );
    c.wait_status(&id2, "STOPPED");
    let images = c.ctr(&["images", "list", "--quiet"]).expect_ok();
    assert!(images.stdout.lines().any(|l| l == exited), "{images}");
    assert!(images.stdout.lines().any(|l| l == image), "{images}");
    c.ctr(&["tasks", "delete", &id2]).expect_ok();
    c.ctr(&["containers", "delete", &id2]).expect_ok();
    // The first checkpoint restored: the same token, counting on from where it was.
    c.ctr(&["containers", "restore", "--live", "--rw", &id, &image])
        .expect_ok();
    c.wait_status(&id, "RUNNING");
    assert!(
        c.runtime_root().join(&id).join("state.json").exists(),
        "no husk state for the restored {id}"
    );
    continues(ctr_count(&c, &id), &token, v0);
    // Its exit reaches containerd through the shim's pidfd.
    c.ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .expect_ok();
    c.wait_status(&id, "STOPPED");
    let o = c.ctr(&["tasks", "delete", &id]).expect_ok();
    assert!(o.stdout.contains("137") || o.stderr.contains("137"), "{o}");
    c.ctr(&["containers", "delete", &id]).expect_ok();
    for i in [&image, &exited] {
        c.ctr(&["images", "remove", "--sync", i]).expect_ok();
    }
    assert_eq!(
        c.wrapper.calls(),
        Vec::<String>::new(),
        "a runtime binary ran"
    );
    c.assert_clean();
    assert_becomes_empty(|| mounts_naming(&id));
    assert_becomes_empty(|| mounts_naming(&id2));
}
