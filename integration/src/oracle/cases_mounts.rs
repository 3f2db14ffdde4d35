//! More cases about mounts, masks and the rootfs.

#[allow(unused_imports)]
use super::cases::*;
#[allow(unused_imports)]
use super::*;

/// Mount point, mount options, fs type of the mounts under /proc, /sys (but /sys/fs/cgroup,
/// which husk lays out differently on purpose) and /etc; then whether /proc/kcore reads.
const MASKS: &str = "grep -E ' /(proc|sys|etc)' /proc/self/mountinfo | grep -v ' /sys/fs/cgroup' \
    | awk '{for(i=7;$i!=\"-\";i++);print $5,$6,$(i+1)}'; head -c 10 /proc/kcore | wc -c";

/// A user namespace mapping the container's 0..65536 to the host's 100000..
fn userns() -> Value {
    json!({"linux": {
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "mount"}, {"type": "user"}],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}})
}

pub fn more_cases(all: &mut Vec<Case>) {
    mask_cases(all);
    bind_cases(all);
    tmpfs_cases(all);
}

fn mask_cases(all: &mut Vec<Case>) {
    let masks: &[(&str, Value, Value)] = &[
        (
            "duplicate",
            json!(["/proc/kcore", "/proc/kcore", "/proc/acpi", "/proc/acpi/"]),
            json!([]),
        ),
        (
            "dirs-share-tmpfs",
            json!(["/proc/acpi", "/proc/scsi", "/sys/firmware"]),
            json!([]),
        ),
        (
            "missing-path",
            json!(["/proc/no-such", "/no/such"]),
            json!(["/no/such/ro"]),
        ),
        ("file-and-dir", json!(["/proc/kcore", "/etc"]), json!([])),
        ("readonly-dir", json!([]), json!(["/proc/sys", "/etc"])),
        ("relative", json!(["proc/kcore"]), json!(["proc/sys"])),
    ];
    for (name, masked, ro) in masks {
        all.push(
            case(&format!("masks-nocg/{name}"))
                .sh(MASKS)
                .patch(json!({"linux": {"maskedPaths": masked, "readonlyPaths": ro}}))
                .run_text()
                .done(),
        );
    }
    // One tmpfs superblock behind every masked directory (the same device numbers).
    all.push(
        case("masks-nocg/one-superblock")
            .sh(
                "awk '$5==\"/proc/acpi\"||$5==\"/proc/scsi\"||$5==\"/sys/firmware\"{print $3}' \
                 /proc/self/mountinfo | sort -u | wc -l",
            )
            .patch(json!({"linux": {"maskedPaths": ["/proc/acpi", "/proc/scsi", "/sys/firmware"]}}))
            .run_text()
            .done(),
    );
}

fn bind_cases(all: &mut Vec<Case>) {
    let flags = "grep ' /mnt/b ' /proc/self/mountinfo | awk '{print $6}'";
    // A nosuid,nodev,noexec,noatime source (a tmpfs an earlier mount makes, bound by its host
    // path inside the container's mount namespace): which flags explicit options keep.
    let binds: &[(&str, Value)] = &[
        ("none", json!(["bind"])),
        ("suid", json!(["bind", "suid"])),
        ("ro", json!(["bind", "ro"])),
        ("nodiratime", json!(["bind", "nodiratime"])),
        ("relatime", json!(["bind", "relatime"])),
        ("atime", json!(["bind", "atime"])),
        ("strictatime-nodev", json!(["bind", "strictatime", "nodev"])),
        ("private", json!(["bind", "private"])),
        ("sync", json!(["bind", "sync"])),
        ("rw", json!(["bind", "rw"])),
        ("defaults", json!(["bind", "defaults"])),
        ("x-option", json!(["bind", "x-foo"])),
    ];
    for (name, opts) in binds {
        all.push(
            case(&format!("mounts-bind-flags/{name}"))
                .file("rootfs/mnt/t/.keep", "")
                .sh(flags)
                .patch(json!({"mounts": mounts_plus(json!([
                    {"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                     "options": ["nosuid", "nodev", "noexec", "noatime"]},
                    {"destination": "/mnt/b", "type": "bind", "source": "{bundle}/rootfs/mnt/t",
                     "options": opts}]))}))
                .run_text()
                .done(),
        );
    }
    // A bind source that exists only in the container's mount namespace (inside an earlier
    // bind): found there, and a file source makes a file mount point.
    all.push(
        case("mounts/bind-source-from-earlier-mount")
            .file("src/f", "data\n")
            .file("rootfs/mnt/a/.keep", "")
            .sh("cat /mnt/file; stat -c %F /mnt/file")
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/mnt/a", "type": "bind", "source": "{bundle}/src", "options": ["bind"]},
                {"destination": "/mnt/file", "type": "bind", "source": "{bundle}/rootfs/mnt/a/f",
                 "options": ["bind"]}]))}))
            .run_text()
            .done(),
    );
    // Mount mappings without `idmap`, in a user namespace: on-disk 0 is the host's 100000,
    // the container's root.
    all.push(
        case("mounts/idmap-bind-userns")
            .file("src/f", "data\n")
            // The container's root may not create mount points in the host root's /mnt.
            .file("rootfs/mnt/x/.keep", "")
            .file("rootfs/mnt/plain/.keep", "")
            .sh("stat -c '%u %g' /mnt/x/f /mnt/plain/f")
            .patch(userns())
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/mnt/x", "type": "bind", "source": "{bundle}/src", "options": ["bind"],
                 "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}],
                 "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}]},
                {"destination": "/mnt/plain", "type": "bind", "source": "{bundle}/src",
                 "options": ["bind"]}]))}))
            .run_text()
            .done(),
    );
    all.push(
        case("mounts/idmap-on-tmpfs")
            .sh("true")
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs",
                 "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                 "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]))}))
            .run_text()
            .done(),
    );
    // In a user namespace, a bind source behind a directory only the host's root may enter.
    all.push(
        case("mounts/bind-source-private-dir-userns")
            .file("priv/src/f", "data\n")
            .file("rootfs/mnt/x/.keep", "")
            .step(&["@chmod", "700", "{bundle}/priv"])
            .sh("cat /mnt/x/f")
            .patch(userns())
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/mnt/x", "type": "bind", "source": "{bundle}/priv/src",
                 "options": ["bind"]}]))}))
            .run_text()
            .done(),
    );
    // A file bind onto a dangling symlink.
    all.push(
        case("mounts/dangling-symlink-file-target")
            .file("src/f", "data\n")
            .step(&["@symlink", "/nowhere/file", "{bundle}/rootfs/mnt/flink"])
            .sh("cat /mnt/flink")
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/mnt/flink", "type": "bind", "source": "{bundle}/src/f",
                 "options": ["bind"]}]))}))
            .run_text()
            .done(),
    );
    // A dangling symlink whose target is relative, then one to a path climbing out of the root.
    for (name, to) in [
        ("relative", "../nowhere/rel"),
        ("dotdot", "../../../../../escape"),
    ] {
        all.push(
            case(&format!("mounts/dangling-symlink-{name}"))
                .step(&["@symlink", to, "{bundle}/rootfs/mnt/link"])
                .sh("grep ' /mnt\\| /nowhere\\| /escape' /proc/self/mountinfo | awk '{print $5}'")
                .patch(json!({"mounts": mounts_plus(json!([
                    {"destination": "/mnt/link/sub", "type": "tmpfs", "source": "tmpfs"}]))}))
                .run_text()
                .done(),
        );
    }
}

fn tmpfs_cases(all: &mut Vec<Case>) {
    // A read-only tmpfs with a mount beneath it: the mount point is made before it turns
    // read-only.
    all.push(
        case("mounts/ro-tmpfs-with-submount")
            .sh("grep ' /mnt/ro' /proc/self/mountinfo | awk '{print $5,$6}'")
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/mnt/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
                {"destination": "/mnt/ro/sub", "type": "tmpfs", "source": "tmpfs"}]))}))
            .run_text()
            .done(),
    );
    // The mode of /tmp (1777) and of a 0711 directory go to the tmpfs over them, an explicit
    // mode= wins.
    all.push(
        case("mounts/tmpfs-mode-sticky-and-explicit")
            .file("rootfs/mnt/y/.keep", "")
            .step(&["@chmod", "711", "{bundle}/rootfs/mnt/y"])
            .sh("stat -c '%n %a' /tmp /mnt/y /mnt/z; grep ' /tmp ' /proc/self/mountinfo | \
                 awk '{for(i=7;$i!=\"-\";i++);print $(i+3)}'")
            .patch(json!({"mounts": mounts_plus(json!([
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/mnt/y", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/mnt/z", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]}]))}))
            .run_text()
            .done(),
    );
    // sysfs onto a symlink is refused like proc.
    all.push(
        case("mounts/symlinked-sys")
            .sh("true")
            .step(&["@symlink", "tmp", "{bundle}/rootfs/sys"])
            .run_text()
            .done(),
    );
}
