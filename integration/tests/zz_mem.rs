use integration::*;
#[test]
fn shim_memory() {
    let Some(c) = Containerd::with_husk_shim() else { return };
    for i in 0..3 {
        let id = format!("m{i}");
        c.run(&["--detach", "--annotation", "io.containerd.runc.v2.group=g"], &id, &["sleep", "1000"]).expect_ok();
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for pid in c.shim_pids() {
        println!("{}", std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap());
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        for l in st.lines().filter(|l| l.starts_with("Vm") || l.starts_with("Rss") || l.starts_with("Threads")) { println!("{l}"); }
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
        let mut cur = String::new();
        for l in smaps.lines() {
            if l.split_whitespace().next().map_or(false, |w| w.contains('-')) { cur = l.to_string(); }
            if l.starts_with("Rss:") { let kb: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap(); if kb >= 64 { println!("{kb:>6} kB {cur}"); } }
        }
    }
    for i in 0..3 { let id = format!("m{i}"); let _ = c.ctr(&["tasks","kill","-s","SIGKILL",&id]); }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for i in 0..3 { let id = format!("m{i}"); let _ = c.ctr(&["tasks","delete",&id]); let _ = c.ctr(&["containers","delete",&id]); }
}
