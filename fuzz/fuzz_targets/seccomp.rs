//! The seccomp compiler on arbitrary profiles: it never panics, and every program it returns
//! fits the kernel's limit and runs to a return value for any syscall.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccomp::bpf::{run, SeccompData};
use seccomp::Arch;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = serde_json::from_slice::<oci_spec_profile::Profile>(data) else {
        return;
    };
    let Ok(f) = seccomp::compile(&p) else { return };
    assert!(f.program.len() <= 4096);
    for a in Arch::ALL {
        for nr in [0u32, 1, 59, 110, 435, 999, 0x4000_0000, 0x4000_006e, u32::MAX] {
            let d = SeccompData {
                nr: nr as i32,
                arch: a.audit(),
                instruction_pointer: 0,
                args: [0, 1, u64::MAX, 0x1_0000_0000, 7, 0xffff_ffff],
            };
            run(&f.program, &d).expect("the program runs to a return value");
        }
    }
});

mod oci_spec_profile {
    pub type Profile = libcontainer::oci_spec::runtime::LinuxSeccomp;
}
