//! The architectures the compiler has syscall tables for, as the kernel names them in
//! `seccomp_data.arch` (AUDIT_ARCH_*) and as OCI profiles name them (SCMP_ARCH_*).

use oci_spec::runtime::Arch as OciArch;

use crate::tables;

/// x32 syscalls run under AUDIT_ARCH_X86_64 with this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
}

impl Arch {
    /// Every architecture with a table, in the order `features` reports them.
    pub const ALL: [Arch; 4] = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64];

    /// The architecture this program runs as.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Arch::X32
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else {
            Arch::X86_64
        }
    }

    /// `seccomp_data.arch` of a task of this ABI (x32 shares x86_64's).
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xc000_003e,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xc000_00b7,
        }
    }

    /// Whether syscall arguments are 64 bits wide (else only the low 32 bits are compared,
    /// as libseccomp does).
    pub fn wide_args(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// The OCI (libseccomp) name.
    pub fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// The architecture of an OCI name; `None` for those without a table here (a task of
    /// such an ABI gets the bad-architecture action).
    pub fn from_oci(a: OciArch) -> Option<Arch> {
        match a {
            OciArch::ScmpArchNative => Some(Arch::native()),
            OciArch::ScmpArchX86_64 => Some(Arch::X86_64),
            OciArch::ScmpArchX86 => Some(Arch::X86),
            OciArch::ScmpArchX32 => Some(Arch::X32),
            OciArch::ScmpArchAarch64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::x86_64::TABLE,
            Arch::X86 => tables::i386::TABLE,
            Arch::X32 => tables::x32::TABLE,
            Arch::Aarch64 => tables::aarch64::TABLE,
        }
    }

    /// The number of syscall `name` on this architecture, if it has one.
    pub fn syscall(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| t[i].1)
    }

    /// Every syscall name this architecture has.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.table().iter().map(|(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_known_numbers_match() {
        for a in Arch::ALL {
            let t = a.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{a:?} not sorted");
        }
        assert_eq!(Arch::X86_64.syscall("getppid"), Some(110));
        assert_eq!(Arch::X86.syscall("getppid"), Some(64));
        assert_eq!(Arch::X32.syscall("getppid"), Some(X32_SYSCALL_BIT | 110));
        assert_eq!(Arch::Aarch64.syscall("getppid"), Some(173));
        assert_eq!(Arch::X86_64.syscall("clone3"), Some(435));
        assert_eq!(Arch::X86.syscall("socketcall"), Some(102));
        assert_eq!(Arch::X86_64.syscall("socketcall"), None);
        assert_eq!(Arch::Aarch64.syscall("open"), None);
        assert_eq!(Arch::X86_64.syscall("file_setattr"), Some(469));
    }
}
