//! containerd-shim-husk-v2: containerd's shim v2 task API over ttrpc with husk's library linked
//! in, so no runtime binary is executed on any request. containerd runs it three ways (its
//! `runtime/v2` shim protocol, see docs/shim.md):
//!
//! * `... -id ID start` in the bundle: find or spawn the serving shim for the container's group
//!   and print its ttrpc address;
//! * `... -id ID` (no action): the serving shim, listening on the socket `start` handed it;
//! * `... -id ID -bundle DIR delete`: clean up after a shim that died, printing a
//!   DeleteResponse.

mod async_api;
mod error;
mod events;
mod flags;
mod metrics;
mod monitor;
mod mounts;
mod procs;
mod serve;
mod service;
mod service_api;
mod start;
mod stdio;
mod sys;

use std::io::Write;

fn main() {
    let flags = match flags::Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => fail(&e),
    };
    if flags.version {
        println!(
            "containerd-shim-husk-v2:\n  Version: {}\n  Runtime: husk (linked in)",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    let r = match flags.action.as_deref() {
        Some("start") => start::start(&flags).map(|addr| {
            print!("{addr}");
            let _ = std::io::stdout().flush();
        }),
        Some("delete") => start::delete(&flags).map(|resp| {
            let _ = std::io::stdout().write_all(&resp);
            let _ = std::io::stdout().flush();
        }),
        None => serve::serve(&flags),
        Some(other) => Err(format!("unknown action {other:?} (start, delete, or none)")),
    };
    if let Err(e) = r {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("containerd-shim-husk-v2: {msg}");
    std::process::exit(1);
}
