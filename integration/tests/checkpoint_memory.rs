//! checkpoint and restore keep 256 MiB of random bytes (issue 15): in the container's /dev/shm
//! and in a process's own memory, checksummed before and after. Host only: under the v2 lane's
//! TCG the fill outlasts the tests' waits.

use std::time::{Duration, Instant};

use integration::ckpt::*;
use integration::*;

#[test]
fn shm_bytes_keep_their_checksum() {
    let Some(c) = criu() else { return };
    let rt = Runtime::new();
    let mut b = Bundle::sh(&format!(
        "head -c 268435456 /dev/urandom > /dev/shm/buf; sha256sum /dev/shm/buf > /dev/shm/sum; {SHM_COUNTER}"
    ));
    // Room for the 256 MiB (the default /dev/shm is 64 MiB).
    b.edit(|cfg| {
        for m in cfg["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev/shm" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "mode=1777", "size=300m"]);
            }
        }
    });
    let id = rt.id();
    let log = run_counter(&rt, &c, &b, &id);
    let before = rt
        .exec(&["exec", &id, "cat", "/dev/shm/sum"])
        .expect_ok()
        .stdout;
    assert!(before.contains("/dev/shm/buf"), "{before}");
    let images = rt.work().join("images");
    husk(
        &rt,
        &c,
        &["checkpoint", "--image-path", images.to_str().unwrap(), &id],
    )
    .expect_ok();
    restore(&rt, &c, &log, &b, &images, &id).expect_ok();
    let after = rt
        .exec(&["exec", &id, "sha256sum", "/dev/shm/buf"])
        .expect_ok()
        .stdout;
    assert_eq!(
        before.trim(),
        after.trim(),
        "256 MiB of random bytes changed"
    );
}

#[test]
fn process_memory_keeps_its_checksum() {
    let Some(c) = criu() else { return };
    let rt = Runtime::new();
    // 256 MiB of random bytes in a process's own (anonymous) memory: it writes their checksum,
    // and again whenever asked, from the buffer it holds.
    let mut b = Bundle::new(&[
        "/usr/bin/python3",
        "-c",
        "import os,hashlib,time\n\
         buf=os.urandom(256<<20)\n\
         open('/dev/shm/sum','w').write(hashlib.sha256(buf).hexdigest())\n\
         while True:\n\
         \x20if os.path.exists('/dev/shm/ask'):\n\
         \x20 os.unlink('/dev/shm/ask')\n\
         \x20 open('/dev/shm/again','w').write(hashlib.sha256(buf).hexdigest())\n\
         \x20time.sleep(0.05)",
    ]);
    b.with_host_libs();
    let id = rt.id();
    let log = log_file(&rt, "log");
    logged(
        &rt,
        &c,
        &log,
        &["run", "-d", "--bundle", &b.path_str(), &id],
    )
    .expect_ok();
    let read = |rt: &Runtime, f: &str| rt.exec(&["exec", &id, "cat", f]).stdout.trim().to_string();
    let start = Instant::now();
    while read(&rt, "/dev/shm/sum").len() != 64 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checksum written"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = read(&rt, "/dev/shm/sum");
    let images = rt.work().join("images");
    husk(
        &rt,
        &c,
        &["checkpoint", "--image-path", images.to_str().unwrap(), &id],
    )
    .expect_ok();
    restore(&rt, &c, &log, &b, &images, &id).expect_ok();
    rt.exec(&["exec", &id, "touch", "/dev/shm/ask"]).expect_ok();
    let start = Instant::now();
    while read(&rt, "/dev/shm/again").len() != 64 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checksum after restore"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        read(&rt, "/dev/shm/again"),
        before,
        "the restored buffer differs"
    );
}
