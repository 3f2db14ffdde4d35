//! Runs the built `husk` binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn husk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_husk"))
        .args(args)
        .output()
        .expect("running husk")
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("husk-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_has_three_lines() {
    for flag in ["--version", "-v", "-version"] {
        let out = husk(&[flag]);
        assert!(out.status.success());
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        assert_eq!(lines[0], "husk version 0.1.0");
        let commit = lines[1].strip_prefix("commit: ").unwrap();
        assert!(
            commit == "unknown"
                || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{commit}"
        );
        assert_eq!(lines[2], "spec: 1.3.0");
    }
}

#[test]
fn spec_writes_config_once() {
    let dir = TempDir::new("spec");
    let bundle = dir.path("");
    let out = husk(&["spec", "--bundle", &bundle]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["ociVersion"], "1.3.0");
    assert_eq!(v["process"]["args"][0], "sh");
    assert_eq!(v["linux"]["namespaces"][1]["type"], "network");

    let out = husk(&["spec", "-b", &bundle, "--rootless"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("File config.json exists. Remove it first"));

    std::fs::remove_file(dir.0.join("config.json")).unwrap();
    let out = husk(&["spec", "-b", &bundle, "--rootless"]);
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["linux"]["namespaces"][4]["type"], "user");
}

#[test]
fn unknown_flag_exits_1() {
    for args in [
        &["--xyz", "list"][..],
        &["list", "-xyz"],
        &["state", "--bogus=1", "x"],
    ] {
        let out = husk(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("flag provided but not defined: -"),
            "{stderr}"
        );
        assert!(
            stderr.starts_with("time=\"") && stderr.contains(" level=error msg="),
            "{stderr}"
        );
    }
}

#[test]
fn wrong_argument_count() {
    let out = husk(&["create"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(r#"\"create\" requires exactly 1 argument(s)"#));
}

#[test]
fn checkpoint_and_restore_take_runcs_flags() {
    let out = husk(&["checkpoint", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    for f in [
        "--image-path",
        "--leave-running",
        "--pre-dump",
        "--manage-cgroups-mode",
        "--empty-ns",
    ] {
        assert!(text(&out.stdout).contains(f), "checkpoint --help lacks {f}");
    }
    let out = husk(&["restore", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    for f in [
        "--bundle value, -b value",
        "--detach, -d",
        "--console-socket",
        "--lsm-mount-context",
    ] {
        assert!(text(&out.stdout).contains(f), "restore --help lacks {f}");
    }
}

#[test]
fn missing_container_state_logs_json_error_last() {
    let dir = TempDir::new("state");
    let root = dir.path("root");
    let log = dir.path("log.json");
    // An existing line is kept: the log is appended to.
    std::fs::write(
        &log,
        "{\"level\":\"info\",\"msg\":\"before\",\"time\":\"x\"}\n",
    )
    .unwrap();
    let out = husk(&[
        "--root",
        &root,
        "--log",
        &log,
        "--log-format",
        "json",
        "--debug",
        "state",
        "nosuch",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    // With a log file, stderr gets the plain message (as runc).
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end(), "container nosuch does not exist");

    let data = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = data
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines.len() >= 3, "{data}");
    assert_eq!(lines[0]["msg"], "before");
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l["level"] == "debug"),
        "{data}"
    );
    let last = lines.last().unwrap();
    let keys: Vec<_> = last.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["level", "msg", "time"]);
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("does not exist"));
}

#[test]
fn list_of_an_empty_root() {
    let dir = TempDir::new("list");
    let root = dir.path("root");
    // As runc 1.5: a --root that does not exist is an error (the default root lists nothing).
    let out = husk(&["--root", &root, "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no such file or directory"),
        "{out:?}"
    );
    std::fs::create_dir(&root).unwrap();
    let out = husk(&["--root", &root, "list"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    );
    let out = husk(&["--root", &root, "list", "--format=json"]);
    assert_eq!(text(&out.stdout), "null\n");
    let out = husk(&["--root", &root, "list", "-q"]);
    assert_eq!(text(&out.stdout), "");
}
