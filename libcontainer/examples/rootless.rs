//! The library from an unprivileged program: runs the bundle given (a config with a user
//! namespace, as `husk spec --rootless` writes) with its state under the directory given, and
//! prints how the container exited. As an ordinary user:
//! `cargo run -p libcontainer --example rootless -- $XDG_RUNTIME_DIR/husk BUNDLE`.
//!
//! Nothing differs from a root caller: the maps beyond the caller's own ID go through
//! newuidmap/newgidmap, and a cgroup the caller may not create is done without
//! (`Rootless::Auto`, the default of `CreateOptions`).

use libcontainer::{CreateOptions, RunOptions, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(state), Some(bundle)) = (args.next(), args.next()) else {
        eprintln!("usage: rootless STATE_DIR BUNDLE");
        std::process::exit(2);
    };
    let runtime = Runtime::new(state).with_handler(|n| {
        if let libcontainer::Notice::Warning { msg, .. } = n {
            eprintln!("warning: {msg}");
        }
    });
    let id = format!("rootless-example-{}", std::process::id());
    let outcome = runtime.run(&id, &CreateOptions::new(bundle), RunOptions::default())?;
    match outcome {
        libcontainer::RunOutcome::Exited(code) => println!("container exited: exit code {code}"),
        other => println!("container: {other:?}"),
    }
    Ok(())
}
