//! Runs a container limited to 64 MiB and half a CPU with the resource view: its
//! /proc/meminfo and /sys/devices/system/cpu/online come from its own cgroup (served by
//! `husk-procview`, started on demand and gone after the run): as root,
//! `cargo build && cargo run -p libcontainer --example resource_view`.

#[path = "../tests/support/mod.rs"]
mod support;

use libcontainer::oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, Spec,
};
use libcontainer::{CreateOptions, ResourceView, RunOptions, RunOutcome, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = support::temp_dir("example-view");
    // The container checks what it sees: exit 0 only if both files show its limits.
    let bundle = support::busybox_bundle(
        &dir.join("bundle"),
        &[
            "sh",
            "-c",
            "head -1 /proc/meminfo; cat /sys/devices/system/cpu/online; \
             grep -q '^MemTotal: *65536 kB' /proc/meminfo && \
             [ \"$(cat /sys/devices/system/cpu/online)\" = 0 ]",
        ],
    )?;
    let mut spec = Spec::load(bundle.join("config.json"))?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_cgroups_path(Some(
        format!("/husk-example-view-{}", std::process::id()).into(),
    ));
    linux.set_resources(Some(
        LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(64 << 20).build()?)
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000)
                    .period(100_000u64)
                    .build()?,
            )
            .build()?,
    ));
    spec.set_linux(Some(linux));

    let mut opts = CreateOptions::from_spec(&bundle, spec);
    opts.resource_view = Some(ResourceView::all());
    // The server binary: cargo puts it beside this example's directory (target/debug).
    opts.procview_binary = std::env::current_exe()?
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("husk-procview"));
    let state = dir.join("state");
    let runtime = Runtime::new(&state);
    let outcome = runtime.run("view-example", &opts, RunOptions::default())?;
    println!("container exited: {outcome:?}");
    assert_eq!(outcome, RunOutcome::Exited(0));
    // The last container of this state root is gone, and so is its server.
    assert!(!state.join(".procview").exists());

    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
