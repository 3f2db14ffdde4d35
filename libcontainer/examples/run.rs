//! Runs `echo hello from a container` in a busybox container, as root:
//! `cargo run -p libcontainer --example run`.

#[path = "../tests/support/mod.rs"]
mod support;

use libcontainer::{CreateOptions, RunOptions, RunOutcome, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = support::temp_dir("example");
    let bundle = support::busybox_bundle(&dir.join("bundle"), &["echo", "hello from a container"])?;
    let runtime = Runtime::new(dir.join("state"));

    // create + start + wait + delete in one call; `create`, `Container::start`, `state`,
    // `kill` and `delete` are the same steps one at a time.
    let outcome = runtime.run(
        "example",
        &CreateOptions::new(&bundle),
        RunOptions::default(),
    )?;
    println!("container exited: {outcome:?}");

    std::fs::remove_dir_all(&dir)?;
    assert_eq!(outcome, RunOutcome::Exited(0));
    Ok(())
}
