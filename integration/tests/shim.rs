//! husk's own containerd shim (containerd-shim-husk-v2, runtime `io.containerd.husk.v2`) driven
//! through ctr against a private containerd 1.6 per test (`Containerd::with_husk_shim`). Every
//! test checks that no runtime binary was executed (the wrapper named `runc` and `husk` on the
//! daemon's PATH logs nothing: the library is linked into the shim), what the containers saw,
//! and that nothing is left: no container, task, shim process, bundle, state or cgroup.

use std::time::Duration;

use integration::*;

/// Polls `ctr task ls` until `id`'s status is `want`.
fn wait_status(c: &Containerd, id: &str, want: &str) -> String {
    let mut line = String::new();
    for _ in 0..200 {
        let o = c.ctr(&["tasks", "list"]).expect_ok();
        line = o
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_default()
            .to_string();
        if line.split_whitespace().nth(2) == Some(want) {
            return line;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("task {id} is not {want}: {line:?}");
}

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
