//! The command line itself: --version, single-dash long flags, --log with --log-format json.

use std::fs;

use integration::*;

#[test]
fn version_three_lines() {
    let rt = Runtime::new();
    let o = rt.cmd_noroot(&["--version"]).run().expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    let name = husk_bin()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        lines[0].starts_with(&format!("{name} version ")),
        "first line {:?}",
        lines[0]
    );
    assert!(lines[1].starts_with("commit: "), "{o}");
    assert!(lines[2].starts_with("spec: "), "{o}");
    if skip_for_runc("runc prints spec 1.0.2-dev and go/libseccomp lines") {
        return;
    }
    assert_eq!(lines.len(), 3, "{o}");
    assert_eq!(lines[2], "spec: 1.3.0");
    // `-v` is the same
    let v = rt.cmd_noroot(&["-v"]).run().expect_ok();
    assert_eq!(v.stdout, o.stdout);
}

#[test]
fn single_dash_long_flags() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "100"]);
    let id = rt.id();
    let root = rt.root_str();
    rt.cmd_noroot(&["-root", &root, "create", "-bundle", &b.path_str(), &id])
        .run()
        .expect_ok();
    assert!(rt.root().join(&id).is_dir(), "-root not honoured");
    let o = rt
        .cmd_noroot(&["-root", &root, "list", "-q"])
        .run()
        .expect_ok();
    assert_eq!(o.stdout.trim(), id);
    let o = rt
        .cmd_noroot(&["-root", &root, "list", "-format", "json"])
        .run()
        .expect_ok();
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v[0]["id"], id.as_str());
    rt.cmd_noroot(&["-root", &root, "delete", "-force", &id])
        .run()
        .expect_ok();
    assert_nothing_remains(&rt, &id, Some(b.path()));
}

#[test]
fn log_json_last_line_is_the_error() {
    let rt = Runtime::new();
    let log = rt.work().join("log.json");
    let id = rt.id();
    rt.exec(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &id,
    ])
    .expect_err();
    let text = fs::read_to_string(&log).unwrap();
    let last = text.lines().last().expect("log is empty");
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(v["level"], "error", "{last}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(v.get("time").is_some(), "{last}");

    // a create failure: the msg names the cause (the missing rootfs)
    let mut b = Bundle::new(&["true"]);
    b.edit(|c| c["root"]["path"] = json!("missing-root-dir"));
    let id = rt.id();
    rt.exec(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        &b.path_str(),
        &id,
    ])
    .expect_err();
    let text = fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap();
    let v: Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["level"], "error");
    assert!(
        v["msg"].as_str().unwrap().contains("missing-root-dir"),
        "{last}"
    );
}

#[test]
fn unknown_command_is_named() {
    let rt = Runtime::new();
    let o = rt.exec(&["no-such-command"]).expect_err();
    // runc: "No help topic for 'no-such-command'"
    o.expect_msg("no-such-command");
}
