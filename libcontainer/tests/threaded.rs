//! The library may be called from a multi-threaded program: the container's processes are
//! cloned from one thread while others hold malloc's and stdio's locks. A child that took such
//! a lock before exec would hang forever; this runs many containers while four threads
//! allocate without pause, and requires every one to finish.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use libcontainer::{CreateOptions, RunOptions, RunOutcome, Runtime};

#[test]
fn containers_from_a_busy_multithreaded_caller() {
    let dir = support::temp_dir("threads");
    let bundle = support::busybox_bundle(&dir.join("bundle"), &["true"]).unwrap();
    let runtime = Runtime::new(dir.join("state"));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<Vec<u8>> = (0..64).map(|i| vec![t as u8; 16 + i * 97]).collect();
                    n += std::hint::black_box(format!("{}", v[3].len())).len();
                }
                n
            })
        })
        .collect();
    // A hang is the failure this test looks for: turn it into a message instead of a stuck CI.
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(600));
        eprintln!("containers_from_a_busy_multithreaded_caller: still running after 600 s, a child is stuck");
        std::process::abort();
    });
    let opts = CreateOptions::new(&bundle);
    let mut outcomes = Vec::new();
    for i in 0..100 {
        outcomes.push(runtime.run(
            &format!("threads-{}-{i}", std::process::id()),
            &opts,
            RunOptions::default(),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        assert!(w.join().unwrap() > 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
    for (i, o) in outcomes.into_iter().enumerate() {
        assert_eq!(o.unwrap(), RunOutcome::Exited(0), "run {i}");
    }
    assert!(runtime.list().unwrap().is_empty());
}
