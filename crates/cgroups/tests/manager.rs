//! Manager tests against the real kernel; must run as root. Every test uses its own cgroup
//! names and removes what it creates.

mod common;

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use cgroups::{Error, Layout, Manager, Saved};
use common::*;

fn sleeper() -> std::process::Child {
    Command::new("sleep").arg("1000").spawn().unwrap()
}

#[test]
fn relative_path_create_add_destroy() {
    let name = unique("rel");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    assert_eq!(m.saved().layout, Layout::Hybrid, "this host is hybrid");
    m.create().unwrap();
    for d in &m.saved().dirs {
        assert!(d.is_dir(), "{}", d.display());
        assert!(d.ends_with(&name));
    }
    let mut child = sleeper();
    let pid = child.id() as i32;
    m.add(pid, false, false).unwrap();
    assert_member(&m, pid, |own| below(own, &name));
    assert_eq!(m.pids().unwrap(), vec![pid]);

    m.destroy().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for d in &m.saved().dirs {
        assert!(!d.exists(), "{} still there", d.display());
    }
    assert_eq!(m.pids().unwrap(), Vec::<i32>::new());
}

#[test]
fn default_name_is_relative() {
    let name = unique("dflt");
    let m = Manager::new(None, &name).unwrap();
    let own = proc_cgroup("self");
    let mem = own.iter().find(|(_, c, _)| c == "memory").unwrap();
    let dir = m.saved().v1_dir("memory").unwrap();
    assert_eq!(
        dir,
        Path::new(&format!("/sys/fs/cgroup/memory{}", below(&mem.2, &name)))
    );
    assert_eq!(m.saved().dirs.len(), own.len());
}

#[test]
fn absolute_path_create_add_destroy() {
    let name = unique("abs");
    let m = Manager::new(Some(Path::new(&format!("/{name}"))), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    let s = m.saved();
    assert_eq!(
        s.unified.as_deref(),
        Some(Path::new(&format!("/sys/fs/cgroup/unified/{name}")))
    );
    assert_eq!(
        s.v1_dir("name=systemd"),
        Some(Path::new(&format!("/sys/fs/cgroup/systemd/{name}")))
    );
    m.create().unwrap();
    let mut child = sleeper();
    let pid = child.id() as i32;
    m.add(pid, false, false).unwrap();
    assert_member(&m, pid, |_| format!("/{name}"));

    m.destroy().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for d in &s.dirs {
        assert!(!d.exists(), "{} still there", d.display());
    }
}

#[test]
fn clone_into_cgroup_with_unified_fd() {
    let name = unique("clone3");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    m.create().unwrap();
    let fd = m.unified_fd().unwrap().expect("hybrid has a v2 dir");
    let pid = sys::clone_into_cgroup_pausing(fd.as_fd()).unwrap();
    let lines = proc_cgroup(&pid.to_string());
    let own_v2 = proc_cgroup("self")
        .into_iter()
        .find(|(i, _, _)| i == "0")
        .unwrap()
        .2;
    let v2 = lines
        .iter()
        .find(|(i, c, _)| i == "0" && c.is_empty())
        .unwrap();
    assert_eq!(v2.2, below(&own_v2, &name));
    assert_eq!(procs(m.saved().unified.as_ref().unwrap()), vec![pid]);

    m.add(pid, true, false).unwrap();
    assert_member(&m, pid, |own| below(own, &name));

    m.destroy().unwrap();
    let status = sys::waitpid(pid).unwrap();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    for d in &m.saved().dirs {
        assert!(!d.exists());
    }
}

#[test]
fn destroy_twice_and_never_created_is_ok() {
    let name = unique("twice");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    m.destroy().unwrap();
    m.create().unwrap();
    m.destroy().unwrap();
    m.destroy().unwrap();
    for d in &m.saved().dirs {
        assert!(!d.exists());
    }
}

#[test]
fn dotdot_and_root_refused() {
    for p in ["../x", "/a/../b", "a/..", "/", "."] {
        match Manager::new(Some(Path::new(p)), "unused") {
            Err(Error::Invalid(msg)) => assert!(msg.contains(p) || msg.contains(".."), "{msg}"),
            other => panic!("{p}: {other:?}"),
        }
    }
    assert!(matches!(
        Manager::new(None, "../up"),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn cpuset_levels_get_cpus_and_mems() {
    let top = unique("cpuset");
    let m = Manager::new(Some(Path::new(&format!("/{top}/a/b"))), "unused").unwrap();
    let root = Path::new("/sys/fs/cgroup/cpuset");
    let leaf = m.saved().v1_dir("cpuset").unwrap().to_path_buf();
    assert_eq!(leaf, root.join(&top).join("a/b"));
    // Intermediate levels are not the manager's (only leaves are removed): the test removes them.
    let parents: Vec<_> = m
        .saved()
        .dirs
        .iter()
        .map(|d| d.parent().unwrap().to_path_buf())
        .collect();
    let grandparents = parents.iter().map(|d| d.parent().unwrap().to_path_buf());
    let _c = Cleanup(&m, parents.iter().cloned().chain(grandparents).collect());
    m.create().unwrap();
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let want = read(root, f);
        assert!(!want.trim().is_empty());
        for d in [root.join(&top), root.join(&top).join("a"), leaf.clone()] {
            assert_eq!(read(&d, f), want, "{}/{f}", d.display());
        }
    }
    let mut child = sleeper();
    m.add(child.id() as i32, false, false).unwrap();
    m.destroy().unwrap();
    child.wait().unwrap();
    assert!(!leaf.exists());
    for p in &parents {
        assert!(p.exists(), "only the leaf is removed: {}", p.display());
    }
}

#[test]
fn sub_cgroups_are_listed_killed_and_removed() {
    let name = unique("sub");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    m.create().unwrap();
    let mut a = sleeper();
    let mut b = sleeper();
    m.add(a.id() as i32, false, false).unwrap();
    m.add(b.id() as i32, false, false).unwrap();
    // b moves to a nested cgroup in the pids and unified hierarchies, as a container might do.
    let mut subs = Vec::new();
    for d in [
        m.saved().v1_dir("pids").unwrap().to_path_buf(),
        m.saved().unified.clone().unwrap(),
    ] {
        let sub = d.join("inner/deeper");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("cgroup.procs"), b.id().to_string()).unwrap();
        subs.push(sub);
    }
    let mut want = vec![a.id() as i32, b.id() as i32];
    want.sort();
    assert_eq!(m.pids().unwrap(), want);
    m.destroy().unwrap();
    assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGKILL));
    for d in m.saved().dirs.iter().chain(&subs) {
        assert!(!d.exists(), "{}", d.display());
    }
}

#[test]
fn saved_round_trips_and_from_saved_destroys() {
    let name = unique("saved");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    m.create().unwrap();
    let json = serde_json::to_string(m.saved()).unwrap();
    let back: Saved = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, m.saved());
    let mut child = sleeper();
    let later = Manager::from_saved(back);
    later.add(child.id() as i32, false, false).unwrap();
    assert_eq!(later.pids().unwrap(), vec![child.id() as i32]);
    later.destroy().unwrap();
    child.wait().unwrap();
    for d in &m.saved().dirs {
        assert!(!d.exists());
    }
}

#[test]
fn destroy_refuses_to_kill_the_caller() {
    // An absolute path naming the caller's own memory cgroup (a container cannot own it).
    let own = proc_cgroup("self");
    let mem = &own.iter().find(|(_, c, _)| c == "memory").unwrap().2;
    if mem == "/" {
        return; // nothing to test on a host whose caller sits at the root
    }
    let m = Manager::new(Some(Path::new(mem)), "unused").unwrap();
    assert!(matches!(m.destroy(), Err(Error::Invalid(_))));
    assert!(Path::new("/sys/fs/cgroup/memory").join(&mem[1..]).exists());
}

#[test]
fn destroy_kills_a_process_that_keeps_forking() {
    let name = unique("fork");
    let m = Manager::new(Some(Path::new(&name)), "unused").unwrap();
    let _c = Cleanup(&m, vec![]);
    m.create().unwrap();
    // The shell is added before it starts forking: it waits for a line on stdin first.
    let mut sh = Command::new("sh")
        .args(["-c", "read go; while :; do sleep 1000 & done"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    m.add(sh.id() as i32, false, false).unwrap();
    use std::io::Write;
    sh.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let t = std::time::Instant::now();
    while m.pids().unwrap().len() < 5 && t.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        m.pids().unwrap().len() >= 5,
        "the shell forks into the cgroup"
    );
    m.destroy().unwrap();
    assert_eq!(sh.wait().unwrap().signal(), Some(libc::SIGKILL));
    for d in &m.saved().dirs {
        assert!(!d.exists(), "{}", d.display());
    }
}
