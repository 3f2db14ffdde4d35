//! Runs a container on an overlay root filesystem the library makes, with a 1-layer image
//! (busybox) under a layer holding /etc/motd; prints what the container read, then shows
//! its write landed in the upper, which is gone after the run: as root,
//! `cargo run -p libcontainer --example overlay`.

#[path = "../tests/support/mod.rs"]
mod support;

use libcontainer::cowfs::{OverlayOptions, OverlaySource};
use libcontainer::{CreateOptions, RootfsSource, RunOptions, RunOutcome, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = support::temp_dir("example-overlay");
    let bundle = support::busybox_bundle(
        &dir.join("bundle"),
        &["sh", "-c", "cat /etc/motd; echo hi > /written; ls /written"],
    )?;
    let top = dir.join("top");
    std::fs::create_dir_all(top.join("etc"))?;
    std::fs::write(top.join("etc/motd"), "from the top layer\n")?;

    // What `features` lists under io.github.husk.rootfs.sources, probed on this host.
    let support = libcontainer::cowfs::probe();
    println!("rootfs sources here: {:?}", support.sources);

    let mut opts = CreateOptions::new(&bundle);
    // The container writes to its root: the bundle's config has it read-only.
    let mut spec = libcontainer::oci_spec::runtime::Spec::load(bundle.join("config.json"))?;
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    opts.spec = Some(spec);
    opts.rootfs_source = Some(RootfsSource::Overlay(OverlaySource {
        layers: vec![top.clone(), bundle.join("rootfs")],
        upper: dir.join("c1/upper"),
        work: dir.join("c1/work"),
        options: OverlayOptions::default(),
        quota: None,
        idmap: false,
    }));
    let runtime = Runtime::new(dir.join("state"));
    let outcome = runtime.run("overlay-example", &opts, RunOptions::default())?;
    println!("container exited: {outcome:?}");
    assert_eq!(outcome, RunOutcome::Exited(0));
    // The write went to the upper (made and removed by husk), never to a layer.
    assert!(!top.join("written").exists() && !bundle.join("rootfs/written").exists());
    assert!(!dir.join("c1").exists());

    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
