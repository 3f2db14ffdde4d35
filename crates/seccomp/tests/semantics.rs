//! The compiled program against a direct reading of the profile (the semantics written out
//! plainly below), over generated profiles and generated (arch, syscall, args) inputs, plus
//! fixed cases for each operator's word boundaries, ENOSYS, bad architectures and errors.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompOperator as Op};
use seccomp::bpf::{run, SeccompData};
use seccomp::{action, compile, ret, Arch, BAD_ARCH};
use serde_json::json;

mod common;
use common::{Rng, EDGES};

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

/// The profile read directly: what the kernel should return.
fn reference(p: &LinuxSeccomp, arch: Arch, nr: u32, args: [u64; 6]) -> u32 {
    let arches: Vec<Arch> = match p.architectures() {
        Some(l) if !l.is_empty() => l.iter().filter_map(|a| Arch::from_oci(*a)).collect(),
        _ => vec![Arch::native()],
    };
    if !arches.contains(&arch) {
        return BAD_ARCH;
    }
    let default = action(p.default_action(), p.default_errno_ret());
    let mut max = None;
    for s in p.syscalls().iter().flatten() {
        if action(s.action(), s.errno_ret()) == default {
            continue; // dropped, as runc drops it
        }
        for name in s.names() {
            if let Some(n) = arch.syscall(name) {
                max = max.max(Some(n));
                if n != nr {
                    continue;
                }
                let args_of = s.args().clone().unwrap_or_default();
                let holds = |a: &oci_spec::runtime::LinuxSeccompArg| {
                    let (x, v, v2) = if arch.wide_args() {
                        (args[a.index()], a.value(), a.value_two().unwrap_or(0))
                    } else {
                        (
                            args[a.index()] as u32 as u64,
                            a.value() as u32 as u64,
                            a.value_two().unwrap_or(0) as u32 as u64,
                        )
                    };
                    match a.op() {
                        Op::ScmpCmpEq => x == v,
                        Op::ScmpCmpNe => x != v,
                        Op::ScmpCmpLt => x < v,
                        Op::ScmpCmpLe => x <= v,
                        Op::ScmpCmpGt => x > v,
                        Op::ScmpCmpGe => x >= v,
                        // the datum masked too, as libseccomp
                        Op::ScmpCmpMaskedEq => x & v == v2 & v,
                    }
                };
                let mut idx: Vec<usize> = args_of.iter().map(|a| a.index()).collect();
                idx.sort();
                let dup = idx.windows(2).any(|w| w[0] == w[1]);
                let hit = if args_of.is_empty() {
                    true
                } else if dup {
                    args_of.iter().any(holds)
                } else {
                    args_of.iter().all(holds)
                };
                if hit {
                    return action(s.action(), s.errno_ret());
                }
            }
        }
    }
    let allowing = matches!(default & ret::ACTION_FULL, ret::ALLOW | ret::LOG);
    match max {
        Some(m) if !allowing && nr > m => ret::ERRNO | 38,
        _ => default,
    }
}

fn data(arch: Arch, nr: u32, args: [u64; 6]) -> SeccompData {
    SeccompData {
        nr: nr as i32,
        arch: arch.audit(),
        instruction_pointer: 0,
        args,
    }
}

const ACTS: [&str; 9] = seccomp::supported::ACTIONS;
const OPS: [&str; 7] = seccomp::supported::OPERATORS;

fn value(r: &mut Rng) -> u64 {
    if r.below(2) == 0 {
        *r.pick(&EDGES)
    } else {
        r.next() >> r.below(64)
    }
}

fn generated(r: &mut Rng, names: &[&str]) -> serde_json::Value {
    let arches = [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
    ];
    let mut archs: Vec<&str> = arches.iter().filter(|_| r.below(2) == 0).copied().collect();
    if archs.is_empty() {
        archs.push("SCMP_ARCH_X86_64");
    }
    let defaults = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRAP",
    ];
    let mut syscalls = Vec::new();
    for _ in 0..r.below(60) {
        let mut n: Vec<&str> = (0..1 + r.below(4)).map(|_| *r.pick(names)).collect();
        let act = *r.pick(&ACTS);
        if act == "SCMP_ACT_NOTIFY" {
            // Refused for the runtime's own calls (notify_is_refused_for_the_runtimes_own_calls).
            n.retain(|x| !matches!(*x, "write" | "sendmsg"));
        }
        let mut s = json!({"names": n, "action": act});
        if r.below(3) == 0 {
            s["errnoRet"] = json!(r.below(200));
        }
        if r.below(2) == 0 {
            let args: Vec<_> = (0..1 + r.below(3))
                .map(|_| {
                    json!({"index": r.below(6), "value": value(r), "valueTwo": value(r),
                           "op": r.pick(&OPS)})
                })
                .collect();
            s["args"] = json!(args);
        }
        syscalls.push(s);
    }
    json!({
        "defaultAction": r.pick(&defaults),
        "defaultErrnoRet": r.below(100),
        "architectures": archs,
        "listenerPath": "/run/agent.sock",
        "syscalls": syscalls,
    })
}

#[test]
fn generated_profiles_agree_with_the_reference() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let names: Vec<&str> = Arch::X86_64.names().take(400).collect();
    let mut checked = 0;
    for _ in 0..300 {
        let v = generated(&mut r, &names);
        let p = profile(v.clone());
        let f = compile(&p).unwrap_or_else(|e| panic!("{e}: {v}"));
        for _ in 0..300 {
            let arch = *r.pick(&Arch::ALL);
            // Mostly syscalls the profile names, on every argument edge.
            let nr = match r.below(4) {
                0 => r.below(600) as u32 | if arch == Arch::X32 { 0x4000_0000 } else { 0 },
                _ => {
                    let name = *r.pick(&names);
                    match arch.syscall(name) {
                        Some(n) => n,
                        None => continue,
                    }
                }
            };
            let args = [0; 6].map(|_| value(&mut r));
            let want = reference(&p, arch, nr, args);
            let got = run(&f.program, &data(arch, nr, args)).unwrap();
            assert_eq!(
                got, want,
                "{arch:?} nr {nr} args {args:x?}: got {got:#x}, want {want:#x}\nprofile {v}"
            );
            checked += 1;
        }
    }
    assert!(checked > 50_000, "{checked}");
}

#[test]
fn every_operator_at_the_word_boundaries() {
    for op in OPS {
        for &v in &EDGES {
            let p = profile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                              "args": [{"index": 2, "value": v, "valueTwo": v >> 3, "op": op}]}]
            }));
            let f = compile(&p).unwrap();
            for arch in [Arch::X86_64, Arch::X86] {
                for &x in &EDGES {
                    let args = [0, 0, x, 0, 0, 0];
                    let nr = arch.syscall("read").unwrap();
                    assert_eq!(
                        run(&f.program, &data(arch, nr, args)).unwrap(),
                        reference(&p, arch, nr, args),
                        "{op} {v:#x} on {x:#x} ({arch:?})"
                    );
                }
            }
        }
    }
}

#[test]
fn docker_like_profile() {
    let allowed: Vec<&str> = Arch::X86_64
        .names()
        .filter(|n| !["mount", "reboot", "kexec_load", "clone3", "personality"].contains(n))
        .filter(|n| *n <= "sync")
        .collect();
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"},
                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]
    }));
    let f = compile(&p).unwrap();
    let x = |name: &str, args: [u64; 6]| {
        run(
            &f.program,
            &data(Arch::X86_64, Arch::X86_64.syscall(name).unwrap(), args),
        )
        .unwrap()
    };
    assert_eq!(x("getppid", [0; 6]), ret::ALLOW);
    assert_eq!(x("mount", [0; 6]), ret::ERRNO | 1);
    assert_eq!(x("personality", [8, 0, 0, 0, 0, 0]), ret::ALLOW);
    assert_eq!(x("personality", [9, 0, 0, 0, 0, 0]), ret::ERRNO | 1);
    // Newer than anything named: ENOSYS, so a libc falls back.
    let max = allowed
        .iter()
        .map(|n| Arch::X86_64.syscall(n).unwrap())
        .max()
        .unwrap();
    assert_eq!(
        run(&f.program, &data(Arch::X86_64, max + 1, [0; 6])).unwrap(),
        ret::ERRNO | 38
    );
    // An architecture not listed.
    assert_eq!(
        run(&f.program, &data(Arch::Aarch64, 1, [0; 6])).unwrap(),
        BAD_ARCH
    );
    assert!(f.program.len() < 600, "{} instructions", f.program.len());
}

#[test]
fn x32_calls_need_x32_listed() {
    let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
                           "architectures": ["SCMP_ARCH_X86_64"]}));
    let f = compile(&p).unwrap();
    let nr = Arch::X32.syscall("getppid").unwrap();
    assert_eq!(
        run(&f.program, &data(Arch::X32, nr, [0; 6])).unwrap(),
        BAD_ARCH
    );
    assert_eq!(
        run(&f.program, &data(Arch::X86_64, 110, [0; 6])).unwrap(),
        ret::ALLOW
    );
}

#[test]
fn a_big_profile_still_fits() {
    // Every syscall with three argument tests: far jumps everywhere.
    let names: Vec<&str> = Arch::X86_64.names().collect();
    let syscalls: Vec<_> = names
        .iter()
        .map(|n| {
            json!({"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]})
        })
        .collect();
    let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
                           "architectures": ["SCMP_ARCH_X86_64"], "syscalls": syscalls}));
    let f = compile(&p).unwrap();
    assert!(f.program.len() > 256);
    for n in names.iter().step_by(7) {
        let nr = Arch::X86_64.syscall(n).unwrap();
        assert_eq!(
            run(&f.program, &data(Arch::X86_64, nr, [2, 0, 0, 0, 0, 0])).unwrap(),
            ret::ERRNO | 7,
            "{n}"
        );
        assert_eq!(
            run(&f.program, &data(Arch::X86_64, nr, [1, 0, 0, 0, 0, 0])).unwrap(),
            ret::ALLOW,
            "{n}"
        );
    }
}

#[test]
fn errors_and_flags() {
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
    assert!(
        e.to_string().contains("defaultAction SCMP_ACT_NOTIFY"),
        "{e}"
    );
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap_err();
    assert!(e.to_string().contains("listenerPath"), "{e}");
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})))
    .unwrap_err();
    assert!(
        e.to_string().contains("syscalls[0].args[0].index: 6"),
        "{e}"
    );
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/x", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["read", "no_such_call"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    assert_eq!(f.flags, 1 | 2 | 4 | 32 | 8 | 16);
    assert!(f.notify);
    assert_eq!(f.skipped, ["no_such_call"]);
    assert_eq!(action(Act::ScmpActErrno, None), ret::ERRNO | 1);
}

#[test]
fn notify_is_refused_for_the_runtimes_own_calls() {
    // write as runc refuses it; sendmsg carries husk's listener fd to the parent.
    for name in ["write", "sendmsg"] {
        let p = profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/l.sock",
            "syscalls": [{"names": ["mkdir", name], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        let Err(e) = compile(&p) else {
            panic!("NOTIFY on {name} was accepted")
        };
        let e = e.to_string();
        assert_eq!(
            e,
            format!("SCMP_ACT_NOTIFY cannot be used for the {name} syscall")
        );
    }
    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/l.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(compile(&p).is_ok());
}
