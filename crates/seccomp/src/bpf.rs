//! Classic BPF as seccomp uses it: the instruction layout (`struct sock_filter`), the opcodes
//! the compiler emits, `struct seccomp_data`, and an interpreter that runs a program over it
//! (for tests, and for comparing programs from other compilers).

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
}

// Opcode parts (linux/bpf_common.h).
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;
pub const W: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IMM: u16 = 0x00;
pub const MEM: u16 = 0x60;
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
pub const A: u16 = 0x10;
pub const AND: u16 = 0x50;
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;

/// `struct seccomp_data`: what a filter sees of a syscall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at byte offset `off`, as a little-endian kernel loads it.
    fn word(&self, off: u32) -> Option<u32> {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let o = off as usize;
        (off % 4 == 0 && o + 4 <= 64).then(|| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()))
    }
}

/// Why a program could not be run to a return value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("instruction {0}: unsupported opcode {1:#x}")]
    Opcode(usize, u16),
    #[error("instruction {0}: load from offset {1} outside seccomp_data")]
    Load(usize, u32),
    #[error("instruction {0}: jump out of the program")]
    Jump(usize),
    #[error("ran off the end of the program")]
    End,
    #[error("instruction {0}: division by zero")]
    DivZero(usize),
}

/// Runs `prog` over `d` as the kernel would, returning the filter's result.
pub fn run(prog: &[Insn], d: &SeccompData) -> Result<u32, RunError> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        let class = i.code & 0x07;
        let src = if i.code & X != 0 { x } else { i.k };
        pc += 1;
        match class {
            LD | LDX => {
                let v = match i.code & 0xe0 {
                    ABS => d.word(i.k).ok_or(RunError::Load(pc - 1, i.k))?,
                    IMM => i.k,
                    MEM => *mem.get(i.k as usize).ok_or(RunError::Load(pc - 1, i.k))?,
                    _ => return Err(RunError::Opcode(pc - 1, i.code)),
                };
                if class == LD {
                    a = v
                } else {
                    x = v
                }
            }
            ST | STX => {
                let slot = mem
                    .get_mut(i.k as usize)
                    .ok_or(RunError::Load(pc - 1, i.k))?;
                *slot = if class == ST { a } else { x };
            }
            ALU => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => a.checked_div(src).ok_or(RunError::DivZero(pc - 1))?,
                    0x40 => a | src,
                    AND => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(src).ok_or(RunError::DivZero(pc - 1))?,
                    0xa0 => a ^ src,
                    _ => return Err(RunError::Opcode(pc - 1, i.code)),
                }
            }
            JMP => {
                let off = match i.code & 0xf0 {
                    JA => i.k as usize,
                    op => {
                        let t = match op {
                            JEQ => a == src,
                            JGT => a > src,
                            JGE => a >= src,
                            JSET => a & src != 0,
                            _ => return Err(RunError::Opcode(pc - 1, i.code)),
                        };
                        if t {
                            i.jt as usize
                        } else {
                            i.jf as usize
                        }
                    }
                };
                pc = pc.checked_add(off).ok_or(RunError::Jump(pc - 1))?;
                if pc > prog.len() {
                    return Err(RunError::Jump(pc - 1));
                }
            }
            RET => return Ok(if i.code & 0x18 == A { a } else { i.k }),
            MISC => {
                if i.code & 0xf8 == 0 {
                    x = a
                } else {
                    a = x
                }
            }
            _ => return Err(RunError::Opcode(pc - 1, i.code)),
        }
    }
    Err(RunError::End)
}
