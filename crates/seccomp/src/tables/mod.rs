//! Syscall tables, one file per architecture (generated: scripts/gen-syscalls).

pub mod aarch64;
pub mod i386;
pub mod x32;
pub mod x86_64;
