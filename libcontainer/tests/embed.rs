//! What an embedding program needs beyond the CLI's surface: a spec built in memory with no
//! config.json on disk, and warnings and events through a handler each `Runtime` owns. As root.

mod support;

use std::io::Read;
use std::sync::{Arc, Mutex};

use libcontainer::{CreateOptions, Notice, RunOptions, RunOutcome, Runtime, Stdio};
use support::{busybox_rootfs, busybox_spec, temp_dir, unique_id};

#[test]
fn spec_in_memory_runs_without_config_json() {
    let dir = temp_dir("embed-spec");
    let bundle = dir.join("bundle");
    busybox_rootfs(&bundle).unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());

    let mut spec = busybox_spec(&["sh", "-c", "echo from-memory $(hostname)"]);
    spec.set_hostname(Some("built-in-memory".into()));
    let mut opts = CreateOptions::from_spec(&bundle, spec);
    opts.stdout = Stdio::piped();
    let mut c = rt.create(&unique_id("embed"), &opts).unwrap();
    let mut p = c.take_process().unwrap();
    assert!(c.take_process().is_none(), "the init is handed out once");
    // The state records the spec (what `state`, `exec` and `delete` read later).
    assert_eq!(c.state().unwrap().bundle, bundle);
    c.start().unwrap();
    let mut out = String::new();
    p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "from-memory built-in-memory\n");
    assert_eq!(p.wait().unwrap(), 0);
    c.delete(false).unwrap();

    // `run` takes it too.
    let opts = CreateOptions::from_spec(&bundle, busybox_spec(&["sh", "-c", "exit 9"]));
    let outcome = rt
        .run(&unique_id("embed-run"), &opts, RunOptions::default())
        .unwrap();
    assert_eq!(outcome, RunOutcome::Exited(9));
    assert!(!bundle.join("config.json").exists());
    assert!(rt.list().unwrap().is_empty());
}

/// A notice, owned, for comparing.
fn owned(n: &Notice<'_>) -> String {
    match n {
        Notice::Warning { id, msg } => format!("warning {id}: {msg}"),
        Notice::Created { id, .. } => format!("created {id}"),
        Notice::Started { id, .. } => format!("started {id}"),
        Notice::Deleted { id } => format!("deleted {id}"),
        Notice::Signaled { id, signal, .. } => format!("signaled {id} {signal}"),
        Notice::Exec { id, .. } => format!("exec {id}"),
        other => format!("{other:?}"),
    }
}

fn recording(root: &std::path::Path) -> (Runtime, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let rt = Runtime::new(root).with_handler(move |n: &Notice<'_>| {
        log.lock().unwrap().push(owned(n));
    });
    (rt, seen)
}

#[test]
fn two_runtimes_keep_their_notices_apart() {
    let dir = temp_dir("embed-notices");
    let bundle = dir.join("bundle");
    busybox_rootfs(&bundle).unwrap();
    // A kernel memory limit: a warning on every layout (ignored by kernels >= 5.16, absent in v2).
    let spec = busybox_spec(&["true"]);
    let mut v = serde_json::to_value(&spec).unwrap();
    v["linux"]["resources"]["memory"] = serde_json::json!({"kernel": 1073741824});
    // The default spec's ambient set, not inheritable, would add warnings of its own.
    v["process"]["capabilities"]["ambient"] = serde_json::json!([]);
    let spec: libcontainer::oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();

    let (rt1, seen1) = recording(&dir.join("state1"));
    let (rt2, seen2) = recording(&dir.join("state2"));
    let _cleanup = (
        support::Cleanup(rt1.clone(), dir.clone()),
        support::Cleanup(rt2.clone(), dir.clone()),
    );
    let (id1, id2) = (unique_id("one"), unique_id("two"));
    // Interleaved, from two threads at once.
    std::thread::scope(|s| {
        for (rt, id) in [(&rt1, &id1), (&rt2, &id2)] {
            let opts = CreateOptions::from_spec(&bundle, spec.clone());
            s.spawn(move || {
                let outcome = rt.run(id, &opts, RunOptions::default()).unwrap();
                assert_eq!(outcome, RunOutcome::Exited(0));
            });
        }
    });
    for (seen, id) in [(seen1, &id1), (seen2, &id2)] {
        let seen = seen.lock().unwrap().clone();
        let warning = format!("warning {id}: linux.resources.memory.kernel is ignored: ");
        assert!(seen[0].starts_with(&warning), "{seen:?}");
        assert_eq!(
            seen[1..],
            [
                format!("created {id}"),
                format!("started {id}"),
                format!("deleted {id}"),
            ]
        );
    }
}
