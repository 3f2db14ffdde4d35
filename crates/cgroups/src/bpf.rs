//! cgroup v2 device control: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) built from the
//! OCI device rules and attached to the container's cgroup.
//!
//! Semantics (runc's device filter): the rules are taken in order and the LAST rule matching a
//! request decides; nothing matching means deny. A rule matches a request (type, major, minor,
//! access) when its type is `a` or the request's type, its major/minor is `None` (wildcard) or
//! equal, and the requested access is a subset of the rule's access. [`emulate`] is that
//! definition in plain Rust; [`program`] compiles the same thing to eBPF: one block per rule,
//! last rule first, each returning the rule's verdict when it matches.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::fs::io_err;
use crate::sys::{self, BpfInsn};
use crate::{Error, Result};

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The name husk's programs are loaded with: how a re-apply finds the one to replace.
pub const PROG_NAME: &str = "husk_devices";
/// Device programs call no helper at all, so no GPL-only one: any license string is accepted.
const LICENSE: &CStr = c"Apache-2.0";

/// Device type of a request (`bpf_cgroup_dev_ctx.access_type`, low 16 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    Block = 1,
    Char = 2,
}

/// Access bits (`bpf_cgroup_dev_ctx.access_type`, high 16 bits).
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One rule, checked and normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// None: `a` (any type).
    typ: Option<DevType>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

/// `"rwm"` (any order, any subset) to access bits; `None` and `""` mean all of them.
pub fn parse_access(s: Option<&str>) -> Result<u32> {
    let s = s.unwrap_or("");
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    s.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        _ => Err(Error::Invalid(format!(
            "device rule access {s:?}: only r, w and m are allowed"
        ))),
    })
}

fn number(what: &str, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        // runc's wildcard is -1
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::Invalid(format!("device rule {what} {n} out of range"))),
    }
}

fn rule(r: &LinuxDeviceCgroup) -> Result<Rule> {
    let typ = match r.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::B) => Some(DevType::Block),
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DevType::Char),
        Some(t) => {
            return Err(Error::Invalid(format!(
                "device rule type {t:?}: only a, b, c and u can be controlled"
            )))
        }
    };
    Ok(Rule {
        allow: r.allow(),
        typ,
        major: number("major", r.major())?,
        minor: number("minor", r.minor())?,
        access: parse_access(r.access().as_deref())?,
    })
}

fn rules_of(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    rules.iter().map(rule).collect()
}

impl Rule {
    fn matches(&self, typ: DevType, major: u32, minor: u32, access: u32) -> bool {
        self.typ.map_or(true, |t| t == typ)
            && self.major.map_or(true, |m| m == major)
            && self.minor.map_or(true, |m| m == minor)
            && access & !self.access == 0
    }
}

/// Whether `rules` allow `access` (ACC_* bits) to the device `typ major:minor`: the last
/// matching rule decides, default deny. Invalid rules deny everything.
pub fn emulate(
    rules: &[LinuxDeviceCgroup],
    typ: DevType,
    major: u32,
    minor: u32,
    access: u32,
) -> bool {
    let Ok(rules) = rules_of(rules) else {
        return false;
    };
    rules
        .iter()
        .rev()
        .find(|r| r.matches(typ, major, minor, access))
        .is_some_and(|r| r.allow)
}

// ---- the program ----

// opcodes (class | op | source)
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const JNE32_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JNE32_X: u8 = 0x5e; // BPF_JMP32 | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// registers: r1 ctx, r2 access_type, r3 type, r4 access, r5 major, r6 minor, r7 scratch
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The eBPF program for `rules`.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<BpfInsn>> {
    Ok(compile(&rules_of(rules)?))
}

fn compile(rules: &[Rule]) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_W, R2, R1, 0, 0), // r2 = ctx->access_type
        insn(MOV32_X, R3, R2, 0, 0),
        insn(AND32_K, R3, 0, 0, 0xffff), // r3 = type
        insn(MOV32_X, R4, R2, 0, 0),
        insn(RSH32_K, R4, 0, 0, 16), // r4 = access
        insn(LDX_W, R5, R1, 4, 0),   // r5 = ctx->major
        insn(LDX_W, R6, R1, 8, 0),   // r6 = ctx->minor
    ];
    for r in rules.iter().rev() {
        // (instruction, is a jump to the end of the block)
        let mut block: Vec<(BpfInsn, bool)> = Vec::new();
        if let Some(t) = r.typ {
            block.push((insn(JNE32_K, R3, 0, 0, t as i32), true));
        }
        if let Some(m) = r.major {
            block.push((insn(JNE32_K, R5, 0, 0, m as i32), true));
        }
        if let Some(m) = r.minor {
            block.push((insn(JNE32_K, R6, 0, 0, m as i32), true));
        }
        if r.access != ACC_ALL {
            // (access & rule) != access: asks for more than the rule covers
            block.push((insn(MOV32_X, R7, R4, 0, 0), false));
            block.push((insn(AND32_K, R7, 0, 0, r.access as i32), false));
            block.push((insn(JNE32_X, R7, R4, 0, 0), true));
        }
        let unconditional = block.is_empty();
        block.push((insn(MOV32_K, R0, 0, 0, r.allow as i32), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, jump)) in block.into_iter().enumerate() {
            if jump {
                ins.off = (len - i - 1) as i16;
            }
            p.push(ins);
        }
        if unconditional {
            // matches everything: earlier rules and the default are unreachable, which the
            // verifier refuses
            return p;
        }
    }
    p.push(insn(MOV32_K, R0, 0, 0, 0)); // default deny
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Runs `prog` on a device request as the kernel would (the few opcodes [`program`] emits);
/// for checking the generator against [`emulate`] without a kernel.
pub fn interpret(prog: &[BpfInsn], typ: DevType, major: u32, minor: u32, access: u32) -> u32 {
    let ctx = [(access << 16) | typ as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_W => {
                assert_eq!(src, R1 as usize, "loads only from the ctx");
                r[dst] = ctx[i.off as usize / 4] as u64;
            }
            MOV32_K => r[dst] = i.imm as u32 as u64,
            MOV32_X => r[dst] = r[src] as u32 as u64,
            AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            JNE32_K if r[dst] as u32 != i.imm as u32 => pc += i.off as usize,
            JNE32_X if r[dst] as u32 != r[src] as u32 => pc += i.off as usize,
            JNE32_K | JNE32_X => {}
            EXIT => return r[0] as u32,
            c => panic!("opcode {c:#x} not emitted by program()"),
        }
    }
}

// ---- loading and attaching ----

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map(OwnedFd::from)
        .map_err(io_err(dir))
}

/// The programs attached to the cgroup `dir` itself for device control: (id, name).
pub fn attached(dir: &Path) -> Result<Vec<(u32, String)>> {
    let cg = open_dir(dir)?;
    Ok(attached_fds(dir, &cg)?
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect())
}

fn attached_fds(dir: &Path, cg: &OwnedFd) -> Result<Vec<(u32, String, Option<OwnedFd>)>> {
    let ids = sys::bpf_prog_query(cg.as_fd(), BPF_CGROUP_DEVICE).map_err(io_err(dir))?;
    let mut out = Vec::new();
    for id in ids {
        match sys::bpf_prog_get_fd_by_id(id) {
            Ok(fd) => {
                let name = sys::bpf_prog_name(fd.as_fd()).map_err(io_err(dir))?;
                out.push((id, name, Some(fd)));
            }
            // detached and freed in between
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(io_err(dir)(e)),
        }
    }
    Ok(out)
}

/// Builds the program for `rules` (in order, last match wins, default deny as runc) and
/// attaches it to the v2 cgroup `dir` (BPF_F_ALLOW_MULTI), then detaches every program husk
/// attached there before. While both are attached the kernel requires both to allow, so an
/// update never opens a window with more access than either rule set grants.
pub fn apply_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(rules)?;
    let prog = sys::bpf_prog_load(
        BPF_PROG_TYPE_CGROUP_DEVICE,
        BPF_CGROUP_DEVICE,
        &insns,
        LICENSE,
        PROG_NAME,
    )
    .map_err(|(source, log)| {
        if log.is_empty() {
            io_err(dir)(source)
        } else {
            Error::Invalid(format!(
                "loading the device program for {}: {source}; verifier: {log}",
                dir.display()
            ))
        }
    })?;
    let cg = open_dir(dir)?;
    let old = attached_fds(dir, &cg)?;
    sys::bpf_prog_attach(
        cg.as_fd(),
        prog.as_fd(),
        BPF_CGROUP_DEVICE,
        BPF_F_ALLOW_MULTI,
    )
    .map_err(io_err(dir))?;
    for (_, name, fd) in old {
        if name != PROG_NAME {
            continue;
        }
        if let Some(fd) = fd {
            match sys::bpf_prog_detach(cg.as_fd(), fd.as_fd(), BPF_CGROUP_DEVICE) {
                // detached by someone else in between
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                r => r.map_err(io_err(dir))?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    /// `"a *:* rwm"`-style rule (`allow` true for allow).
    pub(crate) fn r(allow: bool, spec: &str) -> LinuxDeviceCgroup {
        let f: Vec<&str> = spec.split_whitespace().collect();
        let typ = match f[0] {
            "a" => LinuxDeviceType::A,
            "b" => LinuxDeviceType::B,
            "c" => LinuxDeviceType::C,
            t => panic!("{t}"),
        };
        let (ma, mi) = f[1].split_once(':').unwrap();
        let num = |s: &str| {
            if s == "*" {
                None
            } else {
                Some(s.parse::<i64>().unwrap())
            }
        };
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(f[2]);
        if let Some(n) = num(ma) {
            b = b.major(n);
        }
        if let Some(n) = num(mi) {
            b = b.minor(n);
        }
        b.build().unwrap()
    }

    const R: u32 = ACC_READ;
    const W: u32 = ACC_WRITE;
    const M: u32 = ACC_MKNOD;

    fn rule_sets() -> Vec<Vec<LinuxDeviceCgroup>> {
        vec![
            vec![],
            vec![r(false, "a *:* rwm")],
            vec![r(true, "a *:* rwm")],
            vec![r(false, "a *:* rwm"), r(true, "c 1:3 rwm")],
            vec![
                r(false, "a *:* rwm"),
                r(true, "c *:* m"),
                r(true, "b 7:* r"),
            ],
            vec![r(true, "c 1:3 rwm"), r(false, "c 1:3 w")],
            vec![r(false, "c 1:3 w"), r(true, "c 1:3 rwm")],
            vec![
                r(true, "a *:* rwm"),
                r(false, "b *:* rwm"),
                r(true, "b 7:0 rw"),
            ],
            vec![r(true, "c 1:* rw"), r(false, "c *:5 r"), r(true, "a 5:* m")],
            // the catch-all makes the first rule unreachable: the generator must drop it
            vec![
                r(true, "c 1:3 r"),
                r(true, "a *:* rwm"),
                r(false, "c 1:5 rw"),
            ],
        ]
    }

    fn requests() -> Vec<(DevType, u32, u32, u32)> {
        let mut v = Vec::new();
        for t in [DevType::Block, DevType::Char] {
            for ma in [0, 1, 5, 7, 4095] {
                for mi in [0, 3, 5, 1 << 19] {
                    for acc in 1..=7 {
                        v.push((t, ma, mi, acc));
                    }
                }
            }
        }
        v
    }

    #[test]
    fn emulator_last_match_wins_default_deny() {
        let e = |rules: &[LinuxDeviceCgroup], t, ma, mi, acc| emulate(rules, t, ma, mi, acc);
        use DevType::*;
        assert!(!e(&[], Char, 1, 3, R));
        let deny_all_null = [r(false, "a *:* rwm"), r(true, "c 1:3 rwm")];
        assert!(e(&deny_all_null, Char, 1, 3, R | W));
        assert!(e(&deny_all_null, Char, 1, 3, M));
        assert!(!e(&deny_all_null, Char, 1, 5, R));
        assert!(!e(&deny_all_null, Block, 1, 3, R));
        // later deny of w wins over the earlier allow, for any request that includes w... and
        // for r alone the deny rule (w only) does not match, so the allow decides
        let later_deny = [r(true, "c 1:3 rwm"), r(false, "c 1:3 w")];
        assert!(!e(&later_deny, Char, 1, 3, W));
        assert!(e(&later_deny, Char, 1, 3, R));
        assert!(e(&later_deny, Char, 1, 3, R | W), "rw is not a subset of w");
        let earlier_deny = [r(false, "c 1:3 w"), r(true, "c 1:3 rwm")];
        assert!(e(&earlier_deny, Char, 1, 3, W));
        // wildcards
        let wild = [
            r(false, "a *:* rwm"),
            r(true, "c *:* m"),
            r(true, "b 7:* r"),
        ];
        assert!(e(&wild, Char, 200, 9, M));
        assert!(!e(&wild, Char, 200, 9, R));
        assert!(e(&wild, Block, 7, 12, R));
        assert!(!e(&wild, Block, 7, 12, W));
        assert!(!e(&wild, Block, 7, 12, R | W));
        assert!(!e(&wild, Block, 8, 0, R));
        assert!(!e(&wild, Block, 7, 0, M));
    }

    #[test]
    fn access_parsing() {
        assert_eq!(parse_access(None).unwrap(), ACC_ALL);
        assert_eq!(parse_access(Some("")).unwrap(), ACC_ALL);
        assert_eq!(parse_access(Some("mr")).unwrap(), R | M);
        assert!(parse_access(Some("rx")).is_err());
        let bad = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .major(-5i64)
            .build()
            .unwrap();
        assert!(program(&[bad]).is_err());
    }

    #[test]
    fn program_agrees_with_emulator() {
        for rules in rule_sets() {
            let prog = program(&rules).unwrap();
            for (t, ma, mi, acc) in requests() {
                let want = emulate(&rules, t, ma, mi, acc);
                let got = interpret(&prog, t, ma, mi, acc);
                assert_eq!(
                    got, want as u32,
                    "rules {rules:?}, request {t:?} {ma}:{mi} access {acc}"
                );
            }
        }
    }

    #[test]
    fn program_has_no_unreachable_code() {
        // a catch-all rule ends the program: nothing after its exit
        let p = program(&[r(true, "c 1:3 r"), r(true, "a *:* rwm")]).unwrap();
        assert_eq!(p.len(), 7 + 2);
        assert_eq!(p.last().unwrap().code, EXIT);
        let p = program(&[r(false, "a *:* rwm"), r(true, "c 1:3 rwm")]).unwrap();
        assert_eq!(p.len(), 7 + 5 + 2);
    }
}
