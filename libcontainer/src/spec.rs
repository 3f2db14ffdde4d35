//! The default config.json that `husk spec` writes (owned by the CLI work).

use crate::oci_spec::runtime::Spec;

/// runc's default spec (`rootless`: the variant for an unprivileged user with a user namespace).
pub fn default_spec(rootless: bool) -> Spec {
    let _ = rootless;
    Spec::default()
}
