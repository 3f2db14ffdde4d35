//! config.json as `create` reads it: parsing never panics, and what parses goes on through
//! the pure planning steps (seccomp compile, cgroup v1 and v2 resource plans) without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = libcontainer::parse_config(data) else {
        return;
    };
    let Some(linux) = spec.linux().as_ref() else {
        return;
    };
    if let Some(p) = linux.seccomp() {
        let _ = seccomp::compile(p);
    }
    if let Some(r) = linux.resources() {
        let _ = cgroups::v1::plan_v1(r);
        let _ = cgroups::v2::plan_v2(r);
    }
});
