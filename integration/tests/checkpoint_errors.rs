//! checkpoint and restore given bad input (issue 15): a clear error, the container and the
//! host unchanged, nothing left behind.

use std::fs;
use std::path::Path;
use std::time::Duration;

use integration::ckpt::*;
use integration::*;

#[test]
fn checkpoint_refuses_created_and_stopped_and_takes_paused() {
    let Some(c) = criu() else { return };
    let rt = Runtime::new();
    let b = Bundle::sh(SHM_COUNTER);
    let images = rt.work().join("images");
    let img = images.to_str().unwrap();
    let id = rt.id();
    rt.create(&b, &id);
    husk(&rt, &c, &["checkpoint", "--image-path", img, &id])
        .expect_err()
        .expect_msg("is created: only a running or paused container can be checkpointed");
    assert_eq!(rt.status(&id), "created");
    assert!(!images.exists(), "a refused checkpoint made the image dir");
    rt.exec(&["start", &id]).expect_ok();
    shm_count_past(&rt, &id, 3);
    // Paused, as containerd's shim leaves it before a checkpoint: dumped, and left paused.
    rt.exec(&["pause", &id]).expect_ok();
    husk(
        &rt,
        &c,
        &["checkpoint", "--leave-running", "--image-path", img, &id],
    )
    .expect_ok();
    assert_eq!(rt.status(&id), "paused");
    assert!(images.join("inventory.img").is_file());
    rt.exec(&["resume", &id]).expect_ok();
    let v = shm_count(&rt, &id);
    assert!(shm_count_past(&rt, &id, v) > v, "not running after resume");
    rt.exec(&["kill", &id, "KILL"]).expect_ok();
    rt.wait_status(&id, "stopped", Duration::from_secs(60));
    let images2 = rt.work().join("images2");
    husk(
        &rt,
        &c,
        &["checkpoint", "--image-path", images2.to_str().unwrap(), &id],
    )
    .expect_err()
    .expect_msg("is stopped: only a running or paused container can be checkpointed");
    assert!(!images2.exists(), "a refused checkpoint made the image dir");
}

#[test]
fn restore_refuses_bad_image_dirs_and_leaves_nothing() {
    let Some(c) = criu() else { return };
    let rt = Runtime::new();
    let b = Bundle::sh(SHM_COUNTER);
    let log = log_file(&rt, "log");
    let missing = rt.work().join("missing");
    let empty = rt.work().join("empty");
    fs::create_dir(&empty).unwrap();
    for (dir, want) in [
        (&missing, "does not exist"),
        (&empty, "holds no checkpoint (no inventory.img)"),
    ] {
        let id = rt.id();
        let o = restore(&rt, &c, &log, &b, dir, &id).expect_err();
        let text = fs::read_to_string(rt.work().join("log")).unwrap();
        assert!(text.contains(want), "{o}\n{text}");
        assert_nothing_remains(&rt, &id, None);
    }
    // A checkpoint of another container (other args) is refused before CRIU runs.
    let src = Bundle::sh(SHM_COUNTER);
    let id = rt.id();
    let _l2 = run_counter(&rt, &c, &src, &id);
    let images = rt.work().join("images");
    husk(
        &rt,
        &c,
        &["checkpoint", "--image-path", images.to_str().unwrap(), &id],
    )
    .expect_ok();
    let other = Bundle::sh("sleep 1000");
    let id2 = rt.id();
    restore(&rt, &c, &log, &other, &images, &id2).expect_err();
    let text = fs::read_to_string(rt.work().join("log")).unwrap();
    assert!(
        text.contains("whose config differs from the bundle's"),
        "{text}"
    );
    assert_nothing_remains(&rt, &id2, None);
    // Corrupted images: CRIU fails, its log line is quoted, nothing is left.
    let corrupt = rt.work().join("corrupt");
    fs::create_dir(&corrupt).unwrap();
    for e in fs::read_dir(&images).unwrap().flatten() {
        fs::copy(e.path(), corrupt.join(e.file_name())).unwrap();
    }
    let core = fs::read_dir(&corrupt)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("core-")
        })
        .expect("a core image");
    fs::write(&core, b"garbage").unwrap();
    let id3 = rt.id();
    restore(&rt, &c, &log, &src, &corrupt, &id3).expect_err();
    let text = fs::read_to_string(rt.work().join("log")).unwrap();
    assert!(
        text.contains("criu restore failed") && text.contains("restore.log"),
        "{text}"
    );
    assert!(
        corrupt.join("restore.log").is_file(),
        "CRIU's log was not kept"
    );
    assert_nothing_remains(&rt, &id3, None);
    // Restore onto an existing id.
    restore(&rt, &c, &log, &src, &images, &id).expect_ok();
    restore(&rt, &c, &log, &src, &images, &id).expect_err();
    let text = fs::read_to_string(rt.work().join("log")).unwrap();
    assert!(
        text.contains(&format!("container with id {id} already exists")),
        "{text}"
    );
    assert_eq!(
        rt.status(&id),
        "running",
        "the existing container was disturbed"
    );
}

#[test]
fn missing_or_old_criu_is_named() {
    let rt = Runtime::new();
    let b = Bundle::sh(SHM_COUNTER);
    let id = rt.id();
    rt.exec(&["run", "-d", "--bundle", &b.path_str(), &id])
        .expect_ok();
    let img = rt.work().join("images");
    rt.exec(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        &id,
    ])
    .expect_err()
    .expect_msg("CRIU binary /nonexistent/criu does not exist");
    // Without --criu, $PATH is searched.
    rt.cmd(&["checkpoint", "--image-path", img.to_str().unwrap(), &id])
        .env("PATH", "/nonexistent")
        .run()
        .expect_err()
        .expect_msg("criu not found on $PATH");
    // Debian 12's CRIU 3.17 (scripts/criu old): its version is named and refused.
    let old = std::env::var("HUSK_OLD_CRIU")
        .ok()
        .or_else(|| {
            let cached = "/var/tmp/husk-criu/debian12/usr/sbin/criu";
            Path::new(cached).is_file().then(|| cached.to_string())
        })
        .ok_or(());
    match old {
        Ok(old) => {
            rt.exec(&[
                "--criu",
                &old,
                "checkpoint",
                "--image-path",
                img.to_str().unwrap(),
                &id,
            ])
            .expect_err()
            .expect_msg("CRIU 3.17")
            .expect_msg("husk needs CRIU 4.0 or newer");
        }
        Err(()) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("no old CRIU under CI=true (scripts/setup unpacks it: scripts/criu old)")
        }
        Err(()) => eprintln!("no old CRIU (scripts/criu old): its refusal is not checked"),
    }
    assert_eq!(rt.status(&id), "running");
    assert!(!img.exists());
}

#[test]
fn restore_killed_midway_is_cleaned_by_delete_force() {
    let Some(c) = criu() else { return };
    let rt = Runtime::new();
    let mut b = Bundle::sh(SHM_COUNTER);
    // A prestart hook that waits: it runs while CRIU restores (setup-namespaces), so the
    // restore is killed there, its rootfs bound and its cgroups made.
    let flag = rt.work().join("hook-ran");
    b.edit(|cfg| {
        cfg["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("[ -e {0} ] || {{ touch {0}; exit 0; }}; touch {0}.2; sleep 60", flag.display())]}]});
    });
    let id = rt.id();
    let log = run_counter(&rt, &c, &b, &id);
    let images = rt.work().join("images");
    husk(
        &rt,
        &c,
        &["checkpoint", "--image-path", images.to_str().unwrap(), &id],
    )
    .expect_ok();
    let (mut child, ..) = rt
        .cmd(&[
            "--criu",
            &c,
            "restore",
            "-d",
            "--bundle",
            &b.path_str(),
            "--image-path",
            images.to_str().unwrap(),
            &id,
        ])
        .fd(std::os::fd::AsRawFd::as_raw_fd(&log.1), 1)
        .spawn();
    let second = rt.work().join("hook-ran.2");
    let start = std::time::Instant::now();
    while !second.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the restore's hook never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains("criu-root"),
        "the killed restore had its rootfs bound"
    );
    rt.exec(&["delete", "--force", &id]).expect_ok();
    let start = std::time::Instant::now();
    while !processes_for(&id).is_empty() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains("criu-root"));
    assert_nothing_remains(&rt, &id, None);
}
