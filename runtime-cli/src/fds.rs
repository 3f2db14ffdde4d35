//! The fds husk's caller passed it, noted before husk opens any of its own: `--preserve-fds N`
//! hands fds 3 to 3+N-1 to the container, and a number the caller left closed would otherwise
//! be one of husk's own (its state dir, holding the lock: `delete` then waited forever).

use std::collections::BTreeSet;
use std::sync::OnceLock;

static INHERITED: OnceLock<BTreeSet<u32>> = OnceLock::new();

/// Notes the open fds; the first thing `main` does when `--preserve-fds` is on its command line.
pub(crate) fn note_inherited() {
    let listed: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // The listing's own fd is closed by now: its link is gone.
    let open = listed
        .into_iter()
        .filter(|fd| std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok())
        .collect();
    let _ = INHERITED.set(open);
}

/// Fails unless the caller passed every fd `--preserve-fds n` names.
pub(crate) fn check_preserved(n: u32) -> anyhow::Result<()> {
    let Some(open) = INHERITED.get() else {
        return Ok(());
    };
    if let Some(fd) = (3..3u32.saturating_add(n)).find(|fd| !open.contains(fd)) {
        anyhow::bail!(
            "--preserve-fds {n}: fd {fd} is not open (the container is given fds 3 to {}, which \
             the caller must pass open)",
            2 + n
        );
    }
    Ok(())
}
