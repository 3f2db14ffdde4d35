//! A small assembler with labels. Classic BPF jumps only forward, and a conditional jump
//! reaches at most 255 instructions: `assemble` inserts an unconditional jump (32-bit reach)
//! after any conditional jump whose target is farther, until every offset fits.

use crate::bpf::{Insn, ABS, ALU, AND, JA, JMP, K, LD, RET, W};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Op {
    Place(Label),
    Ld(u32),
    And(u32),
    Ret(u32),
    Ja(Label),
    Jump {
        code: u16,
        k: u32,
        t: Label,
        f: Label,
    },
}

#[derive(Default)]
pub struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn place(&mut self, l: Label) {
        self.ops.push(Op::Place(l));
    }
    /// A = the 32-bit word at `off` in seccomp_data.
    pub fn ld(&mut self, off: u32) {
        self.ops.push(Op::Ld(off));
    }
    pub fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }
    pub fn ret(&mut self, v: u32) {
        self.ops.push(Op::Ret(v));
    }
    pub fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }
    /// `if A <code> k goto t else goto f` (code: JEQ, JGT, JGE, JSET).
    pub fn jump(&mut self, code: u16, k: u32, t: Label, f: Label) {
        self.ops.push(Op::Jump { code, k, t, f });
    }

    fn positions(&self) -> Vec<usize> {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for op in &self.ops {
            match op {
                Op::Place(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
        pos
    }

    pub fn assemble(mut self) -> Vec<Insn> {
        loop {
            let pos = self.positions();
            let mut out = Vec::with_capacity(self.ops.len());
            let mut n = 0usize;
            let mut changed = false;
            let ops = std::mem::take(&mut self.ops);
            for op in ops {
                match op {
                    Op::Jump { code, k, t, f } => {
                        let far = |l: Label| pos[l.0] - (n + 1) > 255;
                        let (mut t2, mut f2) = (t, f);
                        let mut tramp = Vec::new();
                        for (target, slot) in [(t, &mut t2), (f, &mut f2)] {
                            if far(target) {
                                let l = Label(self.labels);
                                self.labels += 1;
                                *slot = l;
                                tramp.push(Op::Place(l));
                                tramp.push(Op::Ja(target));
                            }
                        }
                        changed |= !tramp.is_empty();
                        out.push(Op::Jump {
                            code,
                            k,
                            t: t2,
                            f: f2,
                        });
                        out.extend(tramp);
                        n += 1;
                    }
                    Op::Place(_) => out.push(op),
                    _ => {
                        out.push(op);
                        n += 1;
                    }
                }
            }
            self.ops = out;
            if !changed {
                break;
            }
        }
        let pos = self.positions();
        let mut prog = Vec::new();
        for op in &self.ops {
            let here = prog.len();
            // Every jump is forward by construction.
            let off = |l: Label| {
                let p = pos[l.0];
                assert!(p > here && p != usize::MAX, "backward or unplaced label");
                p - here - 1
            };
            match *op {
                Op::Place(_) => continue,
                Op::Ld(o) => prog.push(Insn::new(LD | W | ABS, 0, 0, o)),
                Op::And(k) => prog.push(Insn::new(ALU | AND | K, 0, 0, k)),
                Op::Ret(v) => prog.push(Insn::new(RET | K, 0, 0, v)),
                Op::Ja(l) => prog.push(Insn::new(JMP | JA, 0, 0, off(l) as u32)),
                Op::Jump { code, k, t, f } => {
                    prog.push(Insn::new(JMP | code | K, off(t) as u8, off(f) as u8, k))
                }
            }
        }
        prog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{run, SeccompData, JEQ};

    #[test]
    fn far_targets_get_trampolines() {
        let mut a = Asm::default();
        let (t, f) = (a.label(), a.label());
        a.ld(0);
        a.jump(JEQ, 7, t, f);
        a.place(f);
        for _ in 0..600 {
            a.ret(1);
        }
        a.place(t);
        a.ret(2);
        let p = a.assemble();
        let d = |nr| SeccompData {
            nr,
            ..Default::default()
        };
        assert_eq!(run(&p, &d(7)), Ok(2));
        assert_eq!(run(&p, &d(8)), Ok(1));
    }
}
