//! More cases about mounts, masks and the rootfs.

#[allow(unused_imports)]
use super::cases::*;
#[allow(unused_imports)]
use super::*;

pub fn more_cases(_all: &mut Vec<Case>) {}
