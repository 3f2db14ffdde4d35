//! The compiler: a profile becomes, per architecture, a binary search over syscall-number
//! ranges (runs of numbers with the same outcome), so a syscall costs about log2(runs)
//! comparisons, not one per rule; syscalls whose rules test arguments get a block of their own.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

use crate::arch::{Arch, X32_SYSCALL_BIT};
use crate::asm::{Asm, Label};
use crate::bpf::{Insn, JEQ, JGE, JGT};
use crate::{flag, ret, Error, Filter};

/// What a filter returns for `a` (with `errno` for ERRNO and TRACE; EPERM if unset, as runc).
pub fn action(a: Act, errno: Option<u32>) -> u32 {
    let e = errno.unwrap_or(libc_eperm()) & 0xffff;
    match a {
        Act::ScmpActKill | Act::ScmpActKillThread => ret::KILL_THREAD,
        Act::ScmpActKillProcess => ret::KILL_PROCESS,
        Act::ScmpActTrap => ret::TRAP,
        Act::ScmpActErrno => ret::ERRNO | e,
        Act::ScmpActTrace => ret::TRACE | e,
        Act::ScmpActLog => ret::LOG,
        Act::ScmpActAllow => ret::ALLOW,
        Act::ScmpActNotify => ret::USER_NOTIF,
    }
}

const fn libc_eperm() -> u32 {
    1
}

const ENOSYS: u32 = 38;
/// libseccomp's default for a task of an architecture the filter does not list.
pub const BAD_ARCH: u32 = ret::KILL_THREAD;

#[derive(Clone, Copy, Debug)]
struct Cond {
    idx: usize,
    op: Op,
    v: u64,
    v2: u64,
}

#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    ret: u32,
}

/// The outcome of a run of syscall numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Ret(u32),
    Block(u32),
}

pub fn compile(p: &LinuxSeccomp) -> Result<Filter, Error> {
    let default = action(p.default_action(), p.default_errno_ret());
    if p.default_action() == Act::ScmpActNotify {
        return Err(Error::NotifyDefault);
    }
    let arches = arches(p);
    // Rules per architecture and syscall number, in profile order.
    let mut rules: BTreeMap<Arch, BTreeMap<u32, Vec<Rule>>> = BTreeMap::new();
    let mut notify = false;
    let mut skipped = Vec::new();
    for (si, s) in p.syscalls().iter().flatten().enumerate() {
        let r = action(s.action(), s.errno_ret());
        if r == default {
            // What the default does anyway; dropped as runc drops it (libseccomp refuses it),
            // so it does not shadow a later rule for the same syscall.
            continue;
        }
        if s.action() == Act::ScmpActNotify {
            notify = true;
            // write: as runc refuses it (its init reports the listener with write); sendmsg:
            // husk's init sends the listener with it.
            if let Some(n) = s
                .names()
                .iter()
                .find(|n| matches!(n.as_str(), "write" | "sendmsg"))
            {
                return Err(Error::NotifyRefused(n.clone()));
            }
        }
        let args = s.args().clone().unwrap_or_default();
        let mut conds = Vec::new();
        for (ai, a) in args.iter().enumerate() {
            if a.index() > 5 {
                return Err(Error::ArgIndex {
                    field: format!("syscalls[{si}].args[{ai}].index"),
                    index: a.index(),
                });
            }
            conds.push(Cond {
                idx: a.index(),
                op: a.op(),
                v: a.value(),
                v2: a.value_two().unwrap_or(0),
            });
        }
        // Conditions on distinct arguments are ANDed; when one argument is tested twice, each
        // condition becomes a rule of its own (ORed), as runc does.
        let mut seen = [false; 6];
        let dup = conds
            .iter()
            .any(|c| std::mem::replace(&mut seen[c.idx], true));
        let rs: Vec<Rule> = if dup {
            conds
                .iter()
                .map(|c| Rule {
                    conds: vec![*c],
                    ret: r,
                })
                .collect()
        } else {
            vec![Rule { conds, ret: r }]
        };
        for name in s.names() {
            let mut known = false;
            for &a in &arches {
                if let Some(nr) = a.syscall(name) {
                    known = true;
                    let list = rules.entry(a).or_default().entry(nr).or_default();
                    list.extend(rs.iter().cloned());
                }
            }
            if !known && !skipped.contains(name) {
                skipped.push(name.clone());
            }
        }
    }
    if notify && p.listener_path().is_none() {
        return Err(Error::NotifyWithoutListener);
    }
    // Unknown syscalls newer than every one the profile names get ENOSYS, so that a libc
    // falls back (clone3 to clone) instead of failing on EPERM, as runc does.
    let enosys = !matches!(default & ret::ACTION_FULL, ret::ALLOW | ret::LOG);

    let mut asm = Asm::default();
    asm.ld(4);
    // One entry per AUDIT_ARCH (x86_64 and x32 share one), the native one first.
    let mut groups: Vec<(u32, Vec<Arch>)> = Vec::new();
    for &a in &arches {
        match groups.iter_mut().find(|g| g.0 == a.audit()) {
            Some(g) => g.1.push(a),
            None => groups.push((a.audit(), vec![a])),
        }
    }
    let bad = asm.label();
    let group_labels: Vec<Label> = groups.iter().map(|_| asm.label()).collect();
    for (g, l) in groups.iter().zip(&group_labels) {
        let next = asm.label();
        asm.jump(JEQ, g.0, *l, next);
        asm.place(next);
    }
    asm.ret(BAD_ARCH);
    let mut blocks: Vec<(Label, Arch, u32)> = Vec::new();
    for (g, l) in groups.iter().zip(&group_labels) {
        asm.place(*l);
        asm.ld(0);
        let sec = |asm: &mut Asm, blocks: &mut Vec<(Label, Arch, u32)>, a: Arch| {
            section(asm, blocks, a, rules.get(&a), default, enosys)
        };
        let has = |a| g.1.contains(&a);
        if g.0 == Arch::X86_64.audit() {
            let (l64, l32) = (asm.label(), asm.label());
            let (t, f) = match (has(Arch::X86_64), has(Arch::X32)) {
                (true, true) => (l32, l64),
                (true, false) => (bad, l64),
                _ => (l32, bad),
            };
            asm.jump(JGE, X32_SYSCALL_BIT, t, f);
            if has(Arch::X86_64) {
                asm.place(l64);
                sec(&mut asm, &mut blocks, Arch::X86_64);
            }
            if has(Arch::X32) {
                asm.place(l32);
                sec(&mut asm, &mut blocks, Arch::X32);
            }
        } else {
            sec(&mut asm, &mut blocks, g.1[0]);
        }
    }
    for (l, a, nr) in blocks {
        asm.place(l);
        let list = &rules[&a][&nr];
        for r in list {
            let fail = asm.label();
            rule(&mut asm, a, r, fail);
            asm.place(fail);
        }
        asm.ret(default);
    }
    asm.place(bad);
    asm.ret(BAD_ARCH);
    let program: Vec<Insn> = asm.assemble();
    if program.len() > 4096 {
        return Err(Error::TooLong(program.len()));
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagTsync => flag::TSYNC,
            Flag::SeccompFilterFlagLog => flag::LOG,
            Flag::SeccompFilterFlagSpecAllow => flag::SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => flag::WAIT_KILLABLE_RECV,
        };
    }
    if !notify {
        // It only qualifies the listener's waits; the kernel refuses it without one.
        flags &= !flag::WAIT_KILLABLE_RECV;
    } else {
        flags |= flag::NEW_LISTENER;
        if flags & flag::TSYNC != 0 {
            // The kernel takes TSYNC with a listener only if told to report ESRCH.
            flags |= flag::TSYNC_ESRCH;
        }
    }
    Ok(Filter {
        program,
        flags,
        notify,
        skipped,
    })
}

/// The architectures a profile covers (its list, or the native one), each once.
fn arches(p: &LinuxSeccomp) -> Vec<Arch> {
    let mut v = vec![Arch::native()];
    if let Some(list) = p.architectures() {
        if !list.is_empty() {
            v.clear();
            // The native architecture first: its tasks are the common case.
            let mut known: Vec<Arch> = list.iter().filter_map(|a| Arch::from_oci(*a)).collect();
            known.sort_by_key(|a| *a != Arch::native());
            for a in known {
                if !v.contains(&a) {
                    v.push(a);
                }
            }
        }
    }
    v
}

/// One architecture's dispatch (A holds the syscall number): a binary search over runs.
fn section(
    asm: &mut Asm,
    blocks: &mut Vec<(Label, Arch, u32)>,
    a: Arch,
    rules: Option<&BTreeMap<u32, Vec<Rule>>>,
    default: u32,
    enosys: bool,
) {
    let empty = BTreeMap::new();
    let rules = rules.unwrap_or(&empty);
    let lo = if a == Arch::X32 { X32_SYSCALL_BIT } else { 0 };
    let mut runs: Vec<(u32, Key)> = Vec::new();
    let mut push = |start: u32, k: Key| match runs.last() {
        Some(&(_, last)) if last == k => {}
        _ => runs.push((start, k)),
    };
    let mut cursor = lo;
    for (&nr, list) in rules {
        if nr > cursor {
            push(cursor, Key::Ret(default));
        }
        // A first rule without conditions decides alone.
        let k = match list.first() {
            Some(r) if r.conds.is_empty() => Key::Ret(r.ret),
            _ => Key::Block(nr),
        };
        push(nr, k);
        cursor = nr + 1;
    }
    let tail = if enosys && !rules.is_empty() {
        ret::ERRNO | ENOSYS
    } else {
        default
    };
    push(cursor, Key::Ret(tail));
    let mut labels: BTreeMap<u32, Label> = BTreeMap::new();
    tree(asm, &runs, &mut |asm, nr| {
        *labels.entry(nr).or_insert_with(|| {
            let l = asm.label();
            blocks.push((l, a, nr));
            l
        })
    });
}

fn tree(asm: &mut Asm, runs: &[(u32, Key)], block: &mut dyn FnMut(&mut Asm, u32) -> Label) {
    if let [(_, k)] = runs {
        match *k {
            Key::Ret(v) => asm.ret(v),
            Key::Block(nr) => {
                let l = block(asm, nr);
                asm.ja(l);
            }
        }
        return;
    }
    let mid = runs.len() / 2;
    let (left, right) = (asm.label(), asm.label());
    asm.jump(JGE, runs[mid].0, right, left);
    asm.place(left);
    tree(asm, &runs[..mid], block);
    asm.place(right);
    tree(asm, &runs[mid..], block);
}

/// A rule's conditions, ANDed: all true → return its action; any false → `fail`.
fn rule(asm: &mut Asm, a: Arch, r: &Rule, fail: Label) {
    let ok = asm.label();
    for (i, c) in r.conds.iter().enumerate() {
        let next = if i + 1 == r.conds.len() {
            ok
        } else {
            asm.label()
        };
        cond(asm, a, c, next, fail);
        if next != ok {
            asm.place(next);
        }
    }
    asm.place(ok);
    asm.ret(r.ret);
}

/// One argument test: to `t` if it holds, else to `f`. 64-bit arguments are compared as
/// two 32-bit words, high first; on 32-bit ABIs only the low word exists.
fn cond(asm: &mut Asm, a: Arch, c: &Cond, t: Label, f: Label) {
    let lo_off = 16 + 8 * c.idx as u32;
    let hi_off = lo_off + 4;
    let (vhi, vlo) = ((c.v >> 32) as u32, c.v as u32);
    // MASKED_EQ compares with the datum masked too, as libseccomp does: (x & m) == (d & m).
    let d = c.v2 & c.v;
    let (v2hi, v2lo) = ((d >> 32) as u32, d as u32);
    // (jump on the last word, then-target, else-target) after the high word passed.
    let (op, t, f) = match c.op {
        Op::ScmpCmpEq => (JEQ, t, f),
        Op::ScmpCmpNe => (JEQ, f, t),
        Op::ScmpCmpGt => (JGT, t, f),
        Op::ScmpCmpLe => (JGT, f, t),
        Op::ScmpCmpGe => (JGE, t, f),
        Op::ScmpCmpLt => (JGE, f, t),
        Op::ScmpCmpMaskedEq => {
            if a.wide_args() {
                let next = asm.label();
                asm.ld(hi_off);
                asm.and(vhi);
                asm.jump(JEQ, v2hi, next, f);
                asm.place(next);
            }
            asm.ld(lo_off);
            asm.and(vlo);
            asm.jump(JEQ, v2lo, t, f);
            return;
        }
    };
    if a.wide_args() {
        asm.ld(hi_off);
        let next = asm.label();
        if op == JEQ {
            asm.jump(JEQ, vhi, next, f);
        } else {
            // Greater in the high word decides; equal goes on to the low word.
            let eq = asm.label();
            asm.jump(JGT, vhi, t, eq);
            asm.place(eq);
            asm.jump(JEQ, vhi, next, f);
        }
        asm.place(next);
    }
    asm.ld(lo_off);
    asm.jump(op, vlo, t, f);
}
