//! The default config.json that `husk spec` writes (owned by the CLI work).
//!
//! It is runc's `runc spec` (and `runc spec --rootless`) template, field by field, except for
//! `ociVersion`, which is the version husk implements.

use std::path::PathBuf;

use crate::oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// runc's default spec (`rootless`: the variant for an unprivileged user with a user namespace,
/// mapping container root to the caller's effective uid and gid).
pub fn default_spec(rootless: bool) -> Spec {
    let caps: crate::oci_spec::runtime::Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    // The builders start from oci-spec's own defaults: clear what runc does not write.
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .ambient(caps)
        .build()
        .expect("static capabilities");
    capabilities.set_inheritable(None);
    let process = ProcessBuilder::default()
        .terminal(true)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("user"),
        )
        .args(vec!["sh".to_string()])
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "TERM=xterm".to_string(),
        ])
        .cwd("/")
        .capabilities(capabilities)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(1024u64)
            .soft(1024u64)
            .build()
            .expect("rlimit")])
        .no_new_privileges(true)
        .build()
        .expect("static process");

    let mut namespaces = vec![LinuxNamespaceType::Pid];
    if !rootless {
        namespaces.push(LinuxNamespaceType::Network);
    }
    namespaces.extend([
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]);
    if rootless {
        namespaces.push(LinuxNamespaceType::User);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .expect("namespace")
        })
        .collect::<Vec<_>>();

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(strings(MASKED_PATHS))
        .readonly_paths(strings(READONLY_PATHS));
    if rootless {
        let (uid, gid) = effective_ids();
        let map = |host: u32| {
            vec![LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(1u32)
                .build()
                .expect("id mapping")]
        };
        linux = linux.uid_mappings(map(uid)).gid_mappings(map(gid));
    } else {
        linux = linux.resources(
            LinuxResourcesBuilder::default()
                .devices(vec![LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .expect("device rule")])
                .build()
                .expect("resources"),
        );
    }

    let mut linux = linux.build().expect("static linux section");
    if rootless {
        linux.set_resources(None);
    }
    let mut spec = SpecBuilder::default()
        .version(crate::OCI_VERSION)
        .process(process)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()
                .expect("root"),
        )
        .hostname("runc")
        .mounts(default_mounts(rootless))
        .linux(linux)
        .build()
        .expect("static spec");
    spec.set_annotations(None);
    spec
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut b = MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ(typ)
        .source(PathBuf::from(source));
    if !options.is_empty() {
        b = b.options(strings(options));
    }
    b.build().expect("static mount")
}

fn default_mounts(rootless: bool) -> Vec<Mount> {
    let mut devpts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if !rootless {
        devpts.push("gid=5");
    }
    let sys = if rootless {
        mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )
    };
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount("/dev/pts", "devpts", "devpts", &devpts),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        sys,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// The effective uid and gid of this process (second field of the Uid:/Gid: lines of
/// /proc/self/status); 0 if unreadable.
fn effective_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Uid:"), field("Gid:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Sorts the capability arrays (oci-spec keeps them in a HashSet) and drops ociVersion.
    fn normalize(mut v: Value) -> Value {
        v.as_object_mut().unwrap().remove("ociVersion");
        if let Some(caps) = v
            .pointer_mut("/process/capabilities")
            .and_then(Value::as_object_mut)
        {
            for set in caps.values_mut() {
                if let Some(a) = set.as_array_mut() {
                    a.sort_by_key(|x| x.as_str().unwrap_or_default().to_string());
                }
            }
        }
        v
    }

    fn ours(rootless: bool) -> Value {
        serde_json::to_value(default_spec(rootless)).unwrap()
    }

    #[test]
    fn spec_key_fields() {
        let v = ours(false);
        assert_eq!(v["ociVersion"], "1.3.0");
        assert_eq!(v["hostname"], "runc");
        assert_eq!(v["root"]["path"], "rootfs");
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["process"]["terminal"], true);
        assert_eq!(v["process"]["args"][0], "sh");
        assert!(v["process"]["capabilities"].get("inheritable").is_none());
        assert!(v.get("annotations").is_none());
        assert_eq!(v["mounts"].as_array().unwrap().len(), 7);
        assert_eq!(
            v["linux"]["resources"]["devices"][0],
            serde_json::json!({"allow": false, "access": "rwm"})
        );
        assert_eq!(v["linux"]["namespaces"][1]["type"], "network");
        let r = ours(true);
        assert!(r["linux"].get("resources").is_none());
        assert_eq!(r["linux"]["namespaces"][4]["type"], "user");
        assert_eq!(r["mounts"][5]["options"][0], "rbind");
        assert_eq!(r["linux"]["uidMappings"][0]["size"], 1);
    }

    /// Compares with what the installed runc writes, when there is one.
    #[test]
    fn spec_matches_runc() {
        let runc = std::path::Path::new("/usr/sbin/runc");
        if !runc.exists() {
            // CI installs runc: there its absence is a broken install step, not a skip.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "/usr/sbin/runc is missing under CI=true (install the Debian package runc)"
            );
            eprintln!("no /usr/sbin/runc: skipped");
            return;
        }
        for rootless in [false, true] {
            let dir = std::env::temp_dir()
                .join(format!("husk-spec-test-{}-{rootless}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut cmd = std::process::Command::new(runc);
            cmd.arg("spec").current_dir(&dir);
            if rootless {
                cmd.arg("--rootless");
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{out:?}");
            let theirs: Value =
                serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(
                normalize(ours(rootless)),
                normalize(theirs),
                "rootless={rootless}"
            );
        }
    }
}
