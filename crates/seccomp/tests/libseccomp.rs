//! Differential tests against libseccomp (Debian's libseccomp2, loaded with dlopen at test
//! time: husk never links it). For generated profiles, the program libseccomp exports and
//! ours are both run in the BPF interpreter over generated (arch, syscall, args) inputs and
//! must return the same action. Also: our syscall tables against libseccomp's.
//!
//! Profiles list one architecture each, and test each argument at most once: libseccomp
//! 2.5.4 miscompiles some multi-architecture profiles and some ORed rules on one argument
//! (second_architecture_block and ored_rules_on_one_argument show a case of each, with our
//! answer checked against the profile). Where the two differ by design, inputs avoid it:
//! syscalls numbered above every one the profile names get ENOSYS from us (as runc patches
//! into libseccomp's program), and each syscall appears in one rule entry (libseccomp's order
//! among overlapping argument rules is its own).

use std::ffi::{c_char, c_int, c_uint, c_void, CString};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompArg};
use seccomp::bpf::{run, Insn, SeccompData};
use seccomp::{action, compile, ret, Arch};
use serde_json::json;

mod common;
use common::{Rng, EDGES};

#[repr(C)]
struct ArgCmp {
    arg: c_uint,
    op: c_uint,
    a: u64,
    b: u64,
}

struct Lib {
    init: extern "C" fn(u32) -> *mut c_void,
    arch_add: extern "C" fn(*mut c_void, u32) -> c_int,
    arch_remove: extern "C" fn(*mut c_void, u32) -> c_int,
    rule_add_array: extern "C" fn(*mut c_void, u32, c_int, c_uint, *const ArgCmp) -> c_int,
    resolve: extern "C" fn(*const c_char) -> c_int,
    resolve_arch: extern "C" fn(u32, *const c_char) -> c_int,
    export_bpf: extern "C" fn(*mut c_void, c_int) -> c_int,
    release: extern "C" fn(*mut c_void),
}

/// A symbol as the function type it is declared with.
///
/// # Safety
/// `p` must be a function with the signature `T` names.
unsafe fn cast<T: Copy>(p: *mut c_void) -> T {
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: same size; the caller vouches for the signature.
    unsafe { std::mem::transmute_copy(&p) }
}

/// libseccomp, or None (said) where it is not installed; under CI its absence fails.
fn lib() -> Option<Lib> {
    // SAFETY: dlopen/dlsym with valid NUL-terminated names; each symbol is cast to the
    // signature libseccomp 2.5 declares for it in seccomp.h.
    unsafe {
        let h = libc::dlopen(c"libseccomp.so.2".as_ptr(), libc::RTLD_NOW);
        if h.is_null() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "libseccomp.so.2 is missing under CI=true (install the Debian package libseccomp2)"
            );
            eprintln!("skipped: libseccomp.so.2 not found");
            return None;
        }
        let sym = |n: &std::ffi::CStr| {
            let p = libc::dlsym(h, n.as_ptr());
            assert!(!p.is_null(), "{n:?} missing from libseccomp");
            p
        };
        Some(Lib {
            init: cast(sym(c"seccomp_init")),
            arch_add: cast(sym(c"seccomp_arch_add")),
            arch_remove: cast(sym(c"seccomp_arch_remove")),
            rule_add_array: cast(sym(c"seccomp_rule_add_array")),
            resolve: cast(sym(c"seccomp_syscall_resolve_name")),
            resolve_arch: cast(sym(c"seccomp_syscall_resolve_name_arch")),
            export_bpf: cast(sym(c"seccomp_export_bpf")),
            release: cast(sym(c"seccomp_release")),
        })
    }
}

/// libseccomp's architecture token (SCMP_ARCH_*: x32 has its own, unlike AUDIT_ARCH).
fn token(a: Arch) -> u32 {
    match a {
        Arch::X86_64 => 0xc000_003e,
        Arch::X86 => 0x4000_0003,
        Arch::X32 => 0x4000_003e,
        Arch::Aarch64 => 0xc000_00b7,
    }
}

/// The profile built with libseccomp, as runc builds it, exported.
fn libseccomp_program(l: &Lib, p: &LinuxSeccomp, arches: &[Arch]) -> Vec<Insn> {
    let default = action(p.default_action(), p.default_errno_ret());
    let ctx = (l.init)(default);
    assert!(!ctx.is_null());
    if !arches.contains(&Arch::X86_64) {
        assert_eq!((l.arch_remove)(ctx, 0xc000_003e), 0);
    }
    for &a in arches {
        if a != Arch::X86_64 {
            assert_eq!((l.arch_add)(ctx, token(a)), 0, "arch_add {a:?}");
        }
    }
    for s in p.syscalls().iter().flatten() {
        let act = action(s.action(), s.errno_ret());
        if act == default {
            continue;
        }
        let args: Vec<LinuxSeccompArg> = s.args().clone().unwrap_or_default();
        let cmp: Vec<ArgCmp> = args
            .iter()
            .map(|a| ArgCmp {
                arg: a.index() as c_uint,
                op: a.op() as c_uint,
                a: a.value(),
                b: a.value_two().unwrap_or(0),
            })
            .collect();
        let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
        idx.sort();
        let dup = idx.windows(2).any(|w| w[0] == w[1]);
        for name in s.names() {
            let c = CString::new(name.as_str()).unwrap();
            let nr = (l.resolve)(c.as_ptr());
            assert!(nr != -1, "{name} unknown to libseccomp");
            let sets: Vec<&[ArgCmp]> = if dup {
                cmp.chunks(1).collect()
            } else {
                vec![&cmp[..]]
            };
            for set in sets {
                let r = (l.rule_add_array)(ctx, act, nr, set.len() as c_uint, set.as_ptr());
                assert_eq!(r, 0, "rule_add {name} {act:#x}: {r}");
            }
        }
    }
    // SAFETY: a fresh memfd owned here.
    let fd = unsafe { libc::memfd_create(c"bpf".as_ptr(), 0) };
    assert!(fd >= 0);
    assert_eq!((l.export_bpf)(ctx, fd), 0);
    (l.release)(ctx);
    // SAFETY: fd is open and ours; File takes it over.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    use std::io::{Read, Seek};
    f.rewind().unwrap();
    f.read_to_end(&mut bytes).unwrap();
    bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[test]
fn tables_agree_with_libseccomp() {
    let Some(l) = lib() else { return };
    let mut compared = 0;
    for a in Arch::ALL {
        for name in a.names() {
            let c = CString::new(name).unwrap();
            let theirs = (l.resolve_arch)(token(a), c.as_ptr());
            if theirs < 0 {
                continue; // newer than libseccomp 2.5.4, or a pseudo-syscall there
            }
            assert_eq!(a.syscall(name), Some(theirs as u32), "{a:?} {name}");
            compared += 1;
        }
    }
    assert!(compared > 1200, "{compared}");
}

#[test]
fn generated_profiles_agree_with_libseccomp() {
    let Some(l) = lib() else { return };
    let mut r = Rng(0x5eed_1234_abcd_0001);
    // Names every architecture's table and libseccomp both know, numbered the same.
    let names: Vec<&str> = Arch::X86_64
        .names()
        .filter(|n| {
            let c = CString::new(*n).unwrap();
            Arch::ALL.iter().all(|&a| {
                let theirs = (l.resolve_arch)(token(a), c.as_ptr());
                match a.syscall(n) {
                    Some(ours) => theirs == ours as c_int,
                    None => theirs < 0,
                }
            })
        })
        .collect();
    assert!(names.len() > 250, "{}", names.len());
    let acts = [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
    ];
    let ops = seccomp::supported::OPERATORS;
    let mut checked = 0;
    for round in 0..200 {
        // One architecture per profile: see second_architecture_block for why.
        let arches = vec![*r.pick(&Arch::ALL)];
        // 32-bit ABIs compare one word: keep values to 32 bits when one is listed.
        let narrow = arches.iter().any(|a| !a.wide_args());
        let value = |r: &mut Rng| {
            let v = if r.below(2) == 0 {
                *r.pick(&EDGES)
            } else {
                r.next() >> r.below(64)
            };
            if narrow {
                v & 0xffff_ffff
            } else {
                v
            }
        };
        let mut pool: Vec<&str> = names.clone();
        let mut syscalls = Vec::new();
        for _ in 0..1 + r.below(40) {
            let mut ns = Vec::new();
            for _ in 0..1 + r.below(3) {
                if pool.is_empty() {
                    break;
                }
                let i = r.below(pool.len() as u64) as usize;
                ns.push(pool.swap_remove(i));
            }
            let mut s = json!({"names": ns, "action": r.pick(&acts)});
            if r.below(3) == 0 {
                s["errnoRet"] = json!(r.below(200));
            }
            if r.below(2) == 0 {
                // Distinct indices (ANDed). One index tested twice (ORed rules) is left out:
                // see ored_rules_on_one_argument.
                let first = r.below(6);
                let args: Vec<_> = (0..1 + r.below(3))
                    .map(|k| {
                        let idx = (first + k) % 6;
                        json!({"index": idx, "value": value(&mut r), "valueTwo": value(&mut r),
                               "op": r.pick(&ops)})
                    })
                    .collect();
                s["args"] = json!(args);
            }
            syscalls.push(s);
        }
        let v = json!({
            "defaultAction": r.pick(&["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS",
                                      "SCMP_ACT_TRAP", "SCMP_ACT_LOG"]),
            "defaultErrnoRet": r.below(100),
            "architectures": arches.iter().map(|a| a.oci_name()).collect::<Vec<_>>(),
            "syscalls": syscalls,
        });
        let p: LinuxSeccomp = serde_json::from_value(v.clone()).unwrap();
        let ours = compile(&p).unwrap().program;
        let theirs = libseccomp_program(&l, &p, &arches);
        let default = action(p.default_action(), p.default_errno_ret());
        let allowing = matches!(default & ret::ACTION_FULL, ret::ALLOW | ret::LOG);
        for _ in 0..400 {
            let arch = *r.pick(&Arch::ALL);
            let named: Vec<u32> = p
                .syscalls()
                .iter()
                .flatten()
                .filter(|s| action(s.action(), s.errno_ret()) != default)
                .flat_map(|s| s.names().iter().filter_map(|n| arch.syscall(n)))
                .collect();
            let nr = match (r.below(3), named.is_empty()) {
                (0, _) | (_, true) => {
                    let n = *r.pick(&names);
                    match arch.syscall(n) {
                        Some(x) => x,
                        None => continue,
                    }
                }
                _ => *r.pick(&named),
            };
            // Above every named syscall we answer ENOSYS (runc's patch); libseccomp does not.
            if !allowing && named.iter().all(|&m| nr > m) && arches.contains(&arch) {
                continue;
            }
            let d = SeccompData {
                nr: nr as i32,
                arch: arch.audit(),
                instruction_pointer: 0,
                args: [0; 6].map(|_| value(&mut r)),
            };
            let (a, b) = (run(&ours, &d).unwrap(), run(&theirs, &d).unwrap());
            if a != b {
                let min = shrink(&l, &v, &arches, &d);
                panic!(
                    "minimal disagreeing profile for {arch:?} nr {nr} args {:x?}:\n{min}",
                    d.args
                );
            }
            assert_eq!(
                a, b,
                "round {round}: {arch:?} nr {nr} args {:x?}: ours {a:#x}, libseccomp {b:#x}\n{v}",
                d.args
            );
            checked += 1;
        }
    }
    assert!(checked > 40_000, "{checked}");
    eprintln!("{checked} inputs agreed");
}

/// One argument tested by several ORed rules (runc splits such a rule in three): libseccomp
/// 2.5.4 reuses the accumulator across the rules and compares the low word of the argument
/// with the high word of the next datum, so 0xffffffff passes `>= 2^64-1`. Ours answers as
/// the profile says; libseccomp's answer is printed, not asserted (it is its bug).
#[test]
fn ored_rules_on_one_argument() {
    let v = json!({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"action":"SCMP_ACT_LOG","names":["clock_getres"],"args":[
        {"index":2,"op":"SCMP_CMP_GE","value":18446744073709551615u64},
        {"index":2,"op":"SCMP_CMP_GE","value":866620805080806434u64},
        {"index":2,"op":"SCMP_CMP_LE","value":383}]}]});
    let p: LinuxSeccomp = serde_json::from_value(v).unwrap();
    let ours = compile(&p).unwrap().program;
    let theirs = lib().map(|l| libseccomp_program(&l, &p, &[Arch::X86_64]));
    for (x, logged) in [
        (0xffff_ffffu64, false),
        (100, true),
        (1000, false),
        (866620805080806434, true),
        (u64::MAX, true),
    ] {
        let d = SeccompData {
            nr: Arch::X86_64.syscall("clock_getres").unwrap() as i32,
            arch: Arch::X86_64.audit(),
            instruction_pointer: 0,
            args: [0, 0, x, 0, 0, 0],
        };
        let want = if logged { ret::LOG } else { ret::ALLOW };
        assert_eq!(run(&ours, &d).unwrap(), want, "{x:#x}");
        if let Some(t) = &theirs {
            eprintln!(
                "{x:#x}: libseccomp {:#x}, want {want:#x}",
                run(t, &d).unwrap()
            );
        }
    }
}

/// The smallest profile (by removing entries, names and args) on which ours and libseccomp's
/// programs still disagree for `d`.
fn shrink(l: &Lib, v: &serde_json::Value, arches: &[Arch], d: &SeccompData) -> serde_json::Value {
    let differs = |v: &serde_json::Value| {
        let p: LinuxSeccomp = serde_json::from_value(v.clone()).unwrap();
        let ours = compile(&p).unwrap().program;
        let theirs = libseccomp_program(l, &p, arches);
        run(&ours, d).unwrap() != run(&theirs, d).unwrap()
    };
    let mut cur = v.clone();
    loop {
        let mut smaller = None;
        let n = cur["syscalls"].as_array().unwrap().len();
        'outer: for i in 0..n {
            let mut c = cur.clone();
            c["syscalls"].as_array_mut().unwrap().remove(i);
            if differs(&c) {
                smaller = Some(c);
                break;
            }
            for field in ["names", "args"] {
                let m = cur["syscalls"][i][field].as_array().map_or(0, |a| a.len());
                for j in 0..m {
                    let mut c = cur.clone();
                    c["syscalls"][i][field].as_array_mut().unwrap().remove(j);
                    if c["syscalls"][i]["names"].as_array().unwrap().is_empty() {
                        continue;
                    }
                    if differs(&c) {
                        smaller = Some(c);
                        break 'outer;
                    }
                }
            }
        }
        match smaller {
            Some(c) => cur = c,
            None => return cur,
        }
    }
}

/// Two architectures: libseccomp 2.5.4 drops the reload of the syscall number when moving to
/// aarch64's block after an x86_64 rule for a syscall aarch64 lacks (`rename`), and compares
/// the architecture word with aarch64's syslog number, so the rule is never hit. Ours kills as
/// the profile says; libseccomp's answer is printed, not asserted.
#[test]
fn second_architecture_block() {
    let v = json!({"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "defaultAction": "SCMP_ACT_LOG",
        "syscalls": [{"action": "SCMP_ACT_KILL_PROCESS", "names": ["syslog"],
                      "args": [{"index": 3, "op": "SCMP_CMP_GT", "value": 0}]},
                     {"action": "SCMP_ACT_ALLOW", "names": ["rename"]}]});
    let p: LinuxSeccomp = serde_json::from_value(v).unwrap();
    let ours = compile(&p).unwrap().program;
    let d = SeccompData {
        nr: Arch::Aarch64.syscall("syslog").unwrap() as i32,
        arch: Arch::Aarch64.audit(),
        instruction_pointer: 0,
        args: [0, 0, 0, 5, 0, 0],
    };
    assert_eq!(run(&ours, &d).unwrap(), ret::KILL_PROCESS);
    if let Some(l) = lib() {
        let theirs = libseccomp_program(&l, &p, &[Arch::X86_64, Arch::Aarch64]);
        eprintln!(
            "libseccomp: {:#x}, want {:#x}",
            run(&theirs, &d).unwrap(),
            ret::KILL_PROCESS
        );
    }
}
