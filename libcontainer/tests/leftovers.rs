//! A create that fails after its init exists leaves no process behind, even without a cgroup
//! to kill it by. The only test of its binary, so the process's children are its alone.

mod support;

use libcontainer::{CgroupDriver, Console, CreateOptions, Error, Runtime};
use support::{busybox_rootfs, temp_dir, unique_id};

/// Every child of this process (living or not yet reaped), from each thread's list.
fn children() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[test]
fn a_failed_console_handover_leaves_no_init() {
    let dir = temp_dir("leftovers");
    let bundle = dir.join("bundle");
    busybox_rootfs(&bundle).unwrap();
    let rt = Runtime::new(dir.join("state"));
    let _cleanup = support::Cleanup(rt.clone(), dir.clone());
    let spec = support::busybox_tty_spec(&["true"]);
    let mut opts = CreateOptions::from_spec(&bundle, spec);
    // The pty master goes to a socket nobody listens on: the init exists by then.
    opts.console = Console::Socket(dir.join("no-console.sock"));
    opts.cgroup_driver = CgroupDriver::Disabled;
    let id = unique_id("leftovers");
    match rt.create(&id, &opts) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("console socket"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(!rt.root().join(&id).exists());
    assert_eq!(children(), Vec::<String>::new());
}
