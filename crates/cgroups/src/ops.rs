//! Freezing, stats and process listing of a container's cgroups (issue 3; bodies by the
//! operations work).

use crate::{Manager, Result};

impl Manager {
    /// Freezes (`true`) or thaws every process (v1 freezer.state, v2 cgroup.freeze), waiting
    /// until the kernel reports the new state.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let _ = frozen;
        Ok(())
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        false
    }
}
