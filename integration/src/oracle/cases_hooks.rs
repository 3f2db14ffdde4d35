//! More cases about hooks.

#[allow(unused_imports)]
use super::cases::*;
#[allow(unused_imports)]
use super::*;

pub fn more_cases(_all: &mut Vec<Case>) {}
