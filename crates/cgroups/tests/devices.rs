//! cgroup v2 device programs against the real kernel (root): a child cloned into a test
//! cgroup of the unified hierarchy opens and mknods devices; denied requests give EPERM.
//! BPF_PROG_TEST_RUN does not support BPF_PROG_TYPE_CGROUP_DEVICE (no test_run op), hence the
//! real attach.

mod common;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use cgroups::bpf::{self, DevType, ACC_MKNOD, ACC_READ, ACC_WRITE};
use common::sys::{probe_in_cgroup, Op};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

/// The cgroup2 mount: /sys/fs/cgroup/unified on hybrid hosts, /sys/fs/cgroup on pure v2.
fn unified_mount() -> PathBuf {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for l in mi.lines() {
        let (pre, post) = l.split_once(" - ").unwrap();
        if post.split_whitespace().next() == Some("cgroup2") {
            return PathBuf::from(pre.split_whitespace().nth(4).unwrap());
        }
    }
    panic!("no cgroup2 mount")
}

/// A test cgroup `husk-bpf-test-<pid>-<n>` in the unified hierarchy, removed on drop.
struct TestCg {
    dir: PathBuf,
    tmp: PathBuf,
}
impl TestCg {
    fn new() -> TestCg {
        let name = common::unique("bpf").replace("husk-test-", "husk-bpf-test-");
        let dir = unified_mount().join(&name);
        std::fs::create_dir(&dir).unwrap();
        let tmp = std::env::temp_dir().join(&name);
        std::fs::create_dir(&tmp).unwrap();
        TestCg { dir, tmp }
    }
    fn fd(&self) -> OwnedFd {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.dir)
            .unwrap()
            .into()
    }
    /// errno (0 = allowed) of each op run by a child in this cgroup.
    fn probe(&self, ops: &[Op]) -> Vec<i32> {
        probe_in_cgroup(self.fd().as_fd(), ops).unwrap()
    }
    fn node(&self, name: &str) -> CString {
        CString::new(self.tmp.join(name).into_os_string().into_encoded_bytes()).unwrap()
    }
}
impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => break,
            }
        }
    }
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap()
}

fn open(path: &str, flags: i32) -> Op {
    Op::Open(CString::new(path).unwrap(), flags)
}

const EPERM: i32 = libc::EPERM;

fn husk_programs(dir: &Path) -> usize {
    bpf::attached(dir)
        .unwrap()
        .iter()
        .filter(|(_, n)| n == bpf::PROG_NAME)
        .count()
}

#[test]
fn deny_all_allow_null() {
    use LinuxDeviceType::*;
    let cg = TestCg::new();
    let rules = [
        rule(false, A, None, None, "rwm"),
        rule(true, C, Some(1), Some(3), "rwm"),
    ];
    bpf::apply_devices(&cg.dir, &rules).unwrap();
    let got = cg.probe(&[
        open("/dev/null", libc::O_RDWR),
        open("/dev/zero", libc::O_RDONLY),
        open("/dev/full", libc::O_WRONLY),
        Op::Mknod(cg.node("null"), libc::S_IFCHR, 1, 3),
        Op::Mknod(cg.node("zero"), libc::S_IFCHR, 1, 5),
    ]);
    assert_eq!(got, vec![0, EPERM, EPERM, 0, EPERM]);
    // and the emulator says the same
    assert!(bpf::emulate(
        &rules,
        DevType::Char,
        1,
        3,
        ACC_READ | ACC_WRITE
    ));
    assert!(!bpf::emulate(&rules, DevType::Char, 1, 5, ACC_READ));
    assert_eq!(husk_programs(&cg.dir), 1);
}

#[test]
fn wildcards() {
    use LinuxDeviceType::*;
    let cg = TestCg::new();
    let rules = [
        rule(false, A, None, None, "rwm"),
        rule(true, C, None, None, "m"),
        rule(true, B, Some(7), None, "r"),
    ];
    bpf::apply_devices(&cg.dir, &rules).unwrap();
    let mut ops = vec![
        Op::Mknod(cg.node("c1"), libc::S_IFCHR, 1, 3),
        Op::Mknod(cg.node("c2"), libc::S_IFCHR, 200, 7),
        open("/dev/null", libc::O_RDONLY),
        Op::Mknod(cg.node("b7"), libc::S_IFBLK, 7, 0),
    ];
    let mut want = vec![0, 0, EPERM, EPERM];
    if Path::new("/dev/loop0").exists() {
        ops.push(open("/dev/loop0", libc::O_RDONLY));
        ops.push(open("/dev/loop0", libc::O_WRONLY));
        want.extend([0, EPERM]);
    }
    assert_eq!(cg.probe(&ops), want);
    assert!(bpf::emulate(&rules, DevType::Block, 7, 9, ACC_READ));
    assert!(!bpf::emulate(&rules, DevType::Block, 7, 9, ACC_MKNOD));
}

#[test]
fn last_match_wins() {
    use LinuxDeviceType::*;
    let cg = TestCg::new();
    // allow everything, then deny /dev/zero, then allow reading it again
    let rules = [
        rule(true, A, None, None, "rwm"),
        rule(false, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(5), "r"),
        rule(false, C, Some(1), Some(7), "w"),
    ];
    bpf::apply_devices(&cg.dir, &rules).unwrap();
    let got = cg.probe(&[
        open("/dev/zero", libc::O_RDONLY),
        open("/dev/zero", libc::O_WRONLY),
        open("/dev/null", libc::O_RDWR),
        open("/dev/full", libc::O_WRONLY),
        open("/dev/full", libc::O_RDONLY),
    ]);
    assert_eq!(got, vec![0, EPERM, 0, EPERM, 0]);
    for (t, ma, mi, acc, ok) in [
        (DevType::Char, 1, 5, ACC_READ, true),
        (DevType::Char, 1, 5, ACC_WRITE, false),
        (DevType::Char, 1, 7, ACC_WRITE, false),
        (DevType::Char, 1, 7, ACC_READ, true),
    ] {
        assert_eq!(bpf::emulate(&rules, t, ma, mi, acc), ok);
    }
}

#[test]
fn reapply_replaces_the_program() {
    use LinuxDeviceType::*;
    let cg = TestCg::new();
    let deny_zero = [
        rule(true, A, None, None, "rwm"),
        rule(false, C, Some(1), Some(5), "rwm"),
    ];
    let deny_null = [
        rule(true, A, None, None, "rwm"),
        rule(false, C, Some(1), Some(3), "rwm"),
    ];
    bpf::apply_devices(&cg.dir, &deny_zero).unwrap();
    let ops = || {
        [
            open("/dev/null", libc::O_RDONLY),
            open("/dev/zero", libc::O_RDONLY),
        ]
    };
    assert_eq!(cg.probe(&ops()), vec![0, EPERM]);
    bpf::apply_devices(&cg.dir, &deny_null).unwrap();
    assert_eq!(husk_programs(&cg.dir), 1, "{:?}", bpf::attached(&cg.dir));
    assert_eq!(bpf::attached(&cg.dir).unwrap().len(), 1);
    assert_eq!(cg.probe(&ops()), vec![EPERM, 0]);
    bpf::apply_devices(&cg.dir, &deny_null).unwrap();
    assert_eq!(husk_programs(&cg.dir), 1);
}

#[test]
fn invalid_rules_are_refused_before_attaching() {
    let cg = TestCg::new();
    let bad = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .access("rwx")
        .build()
        .unwrap();
    assert!(bpf::apply_devices(&cg.dir, &[bad]).is_err());
    assert_eq!(bpf::attached(&cg.dir).unwrap().len(), 0);
}
