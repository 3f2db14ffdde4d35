//! containerd's rootfs mounts (a snapshot: overlay, or a bind of a directory) made on
//! `bundle/rootfs` before the container is created, and removed when it is deleted.

use std::path::Path;

use containerd_shim_protos::api::Mount;

use crate::sys;

/// mount(8)-style options split into flags and the data string.
fn parse_options(opts: &[String]) -> (libc::c_ulong, bool, String) {
    let mut flags: libc::c_ulong = 0;
    let mut propagation_or_remount = false;
    let mut data = Vec::new();
    for o in opts {
        let (set, clear) = match o.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "noatime" => (libc::MS_NOATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "remount" => {
                propagation_or_remount = true;
                (libc::MS_REMOUNT, 0)
            }
            "defaults" | "async" | "atime" | "auto" | "noauto" => (0, 0),
            _ => {
                data.push(o.clone());
                (0, 0)
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, propagation_or_remount, data.join(","))
}

/// Mounts every one of `mounts` on `target`, in order (containerd gives one for a snapshot).
/// On failure the ones made are unmounted again.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<(), String> {
    for (i, m) in mounts.iter().enumerate() {
        let (flags, _, data) = parse_options(&m.options);
        let fstype = if m.type_ == "bind" { "none" } else { &m.type_ };
        let r = sys::mount(&m.source, target, fstype, flags, &data).and_then(|_| {
            // A read-only bind needs a remount to become read-only.
            if flags & libc::MS_BIND != 0 && flags & libc::MS_RDONLY != 0 {
                sys::mount(
                    "",
                    target,
                    "",
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                    "",
                )
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            if i > 0 {
                unmount_rootfs(target);
            }
            return Err(format!(
                "mounting rootfs component {} ({}, source {}) on {}: {e}",
                i,
                m.type_,
                m.source,
                target.display()
            ));
        }
    }
    Ok(())
}

/// Unmounts everything on `target` (lazily if busy); quiet when nothing is mounted.
pub fn unmount_rootfs(target: &Path) {
    for _ in 0..32 {
        match sys::umount(target, 0) {
            Ok(()) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let _ = sys::umount(target, libc::MNT_DETACH);
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o: Vec<String> = [
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l",
            "ro",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (f, _, d) = parse_options(&o);
        assert_eq!(f, libc::MS_RDONLY);
        assert_eq!(d, "index=off,workdir=/w,upperdir=/u,lowerdir=/l");
        let (f, _, d) = parse_options(&["rbind".to_string(), "rw".to_string()]);
        assert_eq!(f, libc::MS_BIND | libc::MS_REC);
        assert!(d.is_empty());
    }
}
