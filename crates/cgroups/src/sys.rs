//! The crate's only unsafe code.

/// kill(2); errors (the process already gone) are ignored.
pub(crate) fn kill(pid: i32, sig: i32) {
    // SAFETY: kill with plain integers affects no memory of ours.
    unsafe { libc::kill(pid, sig) };
}
