//! The ZFS source: a clone of a snapshot, mounted on the state dir's `rootfs`, with an
//! optional `quota`. (STUB on branch cow: helper-12 implements it on branch cowvm.)

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Made;
use crate::{Error, Result};

/// A ZFS clone rootfs: `dataset` is cloned from `snapshot` at create, destroyed at delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZfsSource {
    /// The image: a snapshot (`pool/images/alpine@v1`), left untouched.
    pub snapshot: String,
    /// The clone to make (`pool/containers/c1`); must not exist.
    pub dataset: String,
    /// A limit, in bytes, on what the container writes (the clone's `quota` property).
    pub quota: Option<u64>,
}

fn not_yet() -> Error {
    Error::config("annotations", "rootfs source: zfs is not implemented yet")
}

impl ZfsSource {
    /// Refuses a snapshot that does not exist and a dataset that does.
    pub(crate) fn validate(&self) -> Result<()> {
        Err(not_yet())
    }

    /// The undo steps: the dataset, the mountpoint and its mount.
    pub(crate) fn plan(&self, _mountpoint: &Path) -> Result<Made> {
        Err(not_yet())
    }

    /// `zfs clone -o mountpoint=legacy [-o quota=N] SNAPSHOT DATASET`, then mount(2) of type
    /// zfs on the mountpoint.
    pub(crate) fn make(&self, _made: &Made) -> Result<()> {
        Err(not_yet())
    }
}

/// `zfs destroy DATASET`; a dataset that does not exist is fine.
pub(crate) fn destroy(_dataset: &str) -> Result<()> {
    Ok(())
}
