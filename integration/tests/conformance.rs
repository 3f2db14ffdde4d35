//! The spec checker (conformance/, `husk-conformance`) run inside containers under the runtime
//! under test, over the harness's generated configs (integration/src/conformance.rs): each field
//! group alone, then combinations; every check must pass and the checks each case is about must
//! have run. A last test shows the checker failing when the config claims what the container
//! does not have. scripts/conformance runs the same cases under runc and crun
//! (`CONFORMANCE_REPORT`), where failures are the point, so only then are they not asserted.

use integration::conformance::{checker, combinations, fields, run, unrunnable, Case};
use integration::*;

fn all_pass(cases: Vec<Case>) {
    let n = cases.len();
    let mut bad = Vec::new();
    for c in &cases {
        if let Some(why) = unrunnable(c) {
            eprintln!("SKIPPED {}: {why}", c.name);
            continue;
        }
        let r = run(c);
        if let Some(why) = r.failure {
            bad.push(format!("{}: {why}\n{}", r.name, r.output));
        }
    }
    if std::env::var_os("CONFORMANCE_REPORT").is_some() {
        return;
    }
    assert!(
        bad.is_empty(),
        "{} of {n} cases failed:\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

#[test]
fn each_field_alone() {
    all_pass(fields());
}

#[test]
fn combinations_of_fields() {
    all_pass(combinations());
}

/// The checker is not a rubber stamp: a config that claims a hostname, an env entry and a
/// read-only mount the container does not have gets `not ok` lines naming each field.
#[test]
fn the_checker_fails_on_a_mismatch() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["/conformance/husk-conformance", "/conformance/claimed.json"]);
    b.edit(|c| c["hostname"] = json!("real-host"));
    let dir = b.rootfs().join("conformance");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(checker(), dir.join("husk-conformance")).unwrap();
    let mut claimed: Value =
        serde_json::from_str(&std::fs::read_to_string(b.path().join("config.json")).unwrap())
            .unwrap();
    claimed["hostname"] = json!("claimed-host");
    claimed["process"]["env"] = json!(["NOT_SET=1"]);
    claimed["mounts"] = json!([{"destination": "/tmp", "type": "tmpfs", "options": ["ro"]}]);
    std::fs::write(dir.join("claimed.json"), claimed.to_string()).unwrap();
    let o = rt.run_new(&b);
    assert_eq!(o.code(), 1, "{o}");
    for want in [
        "not ok 1 - hostname: want \"claimed-host\", saw \"real-host\"",
        "- process.env[0]: want NOT_SET=1, saw absent",
        "- mounts[0] (/tmp): want a mount point, saw none",
    ] {
        assert!(o.stdout.contains(want), "missing {want:?}: {o}");
    }
}
