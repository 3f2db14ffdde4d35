//! `husk features` (runtime-spec features.md): what this build supports, generated from the
//! tables the code itself uses, so the report cannot drift from the behaviour.

use serde_json::{json, Value};

use crate::{attrs, caps, hooks, namespaces, rootfs, state};

/// The features document as JSON.
pub fn features() -> Value {
    let hooks: Vec<&str> = hooks::Kind::ALL.iter().map(|k| k.name()).collect();
    // The spec's names ("mount", "network"), which serde gives (Display gives "mnt").
    let namespaces: Vec<Value> = namespaces::ALL
        .iter()
        .map(|n| serde_json::to_value(n).unwrap_or_default())
        .collect();
    fn names(t: &[(&'static str, i64)]) -> Vec<&'static str> {
        t.iter().map(|(n, _)| *n).collect()
    }
    let cow = crate::cowfs::probe();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": state::OCI_VERSION,
        "hooks": hooks,
        "mountOptions": rootfs::known_mount_options(),
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps::CAPABILITIES,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::supported::ACTIONS,
                "operators": seccomp::supported::OPERATORS,
                "archs": seccomp::Arch::ALL.map(|a| a.oci_name()),
                "knownFlags": seccomp::supported::FLAGS,
                "supportedFlags": seccomp::supported::FLAGS,
            },
            // What this host can apply: support is always built in, so "compiled in" (the
            // spec's meaning) would say nothing an engine can use (docs/security.md).
            "apparmor": {"enabled": crate::lsm::apparmor_enabled()},
            "selinux": {"enabled": crate::lsm::selinux_enabled()},
            "intelRdt": {"enabled": false},
            "memoryPolicy": {"modes": names(attrs::MPOL_MODES), "flags": names(attrs::MPOL_FLAGS)},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": false},
        },
        "annotations": {
            "io.github.husk.version": env!("CARGO_PKG_VERSION"),
            // checkpoint/restore through CRIU's RPC, and the oldest CRIU accepted.
            "io.github.husk.checkpoint": "criu-rpc",
            "io.github.husk.criu.minVersion": format!(
                "{}.{}.{}",
                crate::MIN_CRIU_VERSION / 10000,
                crate::MIN_CRIU_VERSION / 100 % 100,
                crate::MIN_CRIU_VERSION % 100
            ),
            // The rootfs sources (docs/rootfs-sources.md), probed on this host.
            "io.github.husk.rootfs.sources": cow.sources.join(","),
            "io.github.husk.rootfs.overlay.options": cow.overlay_options.join(","),
            "io.github.husk.rootfs.overlay.idmap": cow.idmapped_layers.to_string(),
            "io.github.husk.rootfs.quotas": cow.quotas.join(","),
            // The resource view (docs/resource-view.md): its entries, and whether this host
            // has the FUSE device the server needs.
            "io.github.husk.resource-view.entries":
                procview::Entry::ALL.map(|e| e.name()).join(","),
            "io.github.husk.resource-view.fuse": crate::view::fuse_available().to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_match_the_code() {
        let f = features();
        // Every mount option claimed is one the option parser handles itself.
        for o in f["mountOptions"].as_array().unwrap() {
            assert!(rootfs::options_known(o.as_str().unwrap()), "{o}");
        }
        // The namespace names are the spec's ("mount", "network"...), all eight.
        let ns: Vec<&str> = f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            ns,
            ["mount", "cgroup", "uts", "ipc", "user", "pid", "network", "time"]
        );
        // It parses as oci-spec's Features type.
        let _: crate::oci_spec::runtime::Features = serde_json::from_value(f).unwrap();
    }
}
