//! A busybox bundle for the library's own examples and tests (from Debian's busybox-static).

include!("busybox.rs");
