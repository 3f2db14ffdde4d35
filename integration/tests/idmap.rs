//! Id-mapped bind mounts (`idmap`, `ridmap`; the mount's uidMappings/gidMappings, or else the
//! container's): ownership as seen through the mount, what a write through it stores on disk,
//! submounts with and without `ridmap`, and the configurations refused.

use std::fs;
use std::os::unix::fs::MetadataExt;

use integration::*;

fn maps(host: u32) -> (Value, Value) {
    (
        json!([{"containerID": 0, "hostID": host, "size": 1}]),
        json!([{"containerID": 0, "hostID": host, "size": 1}]),
    )
}

/// A host directory with a root-owned file and one owned by 5:5.
fn source(rt: &Runtime) -> std::path::PathBuf {
    let src = rt.work().join(format!("idsrc{}", unique()));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("rootfile"), "r").unwrap();
    fs::write(src.join("f5"), "5").unwrap();
    host("chown", &["5:5", src.join("f5").to_str().unwrap()]);
    src
}

#[test]
fn mount_mappings_change_the_owners_seen() {
    if skip_for_runc("runc 1.1.5 has no id-mapped mounts") {
        return;
    }
    let rt = Runtime::new();
    let src = source(&rt);
    let (u, g) = maps(1000);
    let mut b = Bundle::sh(
        "stat -c '%n %u %g' /m/rootfile /m/f5 /plain/rootfile /noopt/rootfile; \
         grep ' /m ' /proc/self/mountinfo",
    );
    b.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/m", "type": "bind", "source": src,
                      "options": ["bind", "idmap"], "uidMappings": u, "gidMappings": g}));
        m.push(
            json!({"destination": "/plain", "type": "bind", "source": src,
                      "options": ["bind"]}),
        );
        // Mappings without the `idmap` option id-map the bind too (as runc does).
        m.push(
            json!({"destination": "/noopt", "type": "bind", "source": src,
                      "options": ["bind"], "uidMappings": u, "gidMappings": g}),
        );
    });
    let o = rt.run_new(&b).expect_ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    // On-disk 0 is the mapping's 0 → host 1000; 5 is outside the mapping → overflow id.
    assert_eq!(lines[0], "/m/rootfile 1000 1000", "{o}");
    assert_eq!(lines[1], "/m/f5 65534 65534", "{o}");
    assert_eq!(lines[2], "/plain/rootfile 0 0", "{o}");
    assert_eq!(lines[3], "/noopt/rootfile 1000 1000", "{o}");
    assert!(lines[4].contains("idmapped"), "{o}");
}

#[test]
fn container_mappings_when_the_mount_has_none() {
    if skip_for_runc("runc 1.1.5 has no id-mapped mounts") {
        return;
    }
    let rt = Runtime::new();
    let src = source(&rt);
    let mut b = Bundle::sh(
        "stat -c '%u' /m/rootfile; echo x > /m/made && stat -c '%u' /m/made; \
         stat -c '%u' /plain/rootfile",
    );
    b.with_userns(200000).edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/m", "type": "bind", "source": src,
                      "options": ["bind", "idmap"]}));
        m.push(
            json!({"destination": "/plain", "type": "bind", "source": src,
                      "options": ["bind"]}),
        );
    });
    let o = rt.run_new(&b).expect_ok();
    // The container's root owns the host's root files through the mount, and its writes are
    // stored as root on disk; without the mapping they are nobody's.
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "65534"],
        "{o}"
    );
    assert_eq!(fs::metadata(src.join("made")).unwrap().uid(), 0);
}

#[test]
fn ridmap_maps_submounts_idmap_does_not() {
    if skip_for_runc("runc 1.1.5 has no id-mapped mounts") {
        return;
    }
    let rt = Runtime::new();
    let src = source(&rt);
    let sub = src.join("sub");
    fs::create_dir_all(&sub).unwrap();
    host("mount", &["-t", "tmpfs", "tmpfs", sub.to_str().unwrap()]);
    let _g = MountGuard(sub.clone());
    fs::write(sub.join("inner"), "i").unwrap();
    let (u, g) = maps(1000);
    for (opt, want) in [("ridmap", "1000"), ("idmap", "0")] {
        let mut b = Bundle::sh("stat -c '%u' /m/rootfile /m/sub/inner");
        b.edit(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/m", "type": "bind", "source": src,
                       "options": ["rbind", opt], "uidMappings": u, "gidMappings": g}));
        });
        let o = rt.run_new(&b).expect_ok();
        assert_eq!(
            o.stdout.split_whitespace().collect::<Vec<_>>(),
            ["1000", want],
            "{opt}: {o}"
        );
    }
}

#[test]
fn bad_id_mapped_mounts_are_refused() {
    if skip_for_runc("runc 1.1.5 has no id-mapped mounts") {
        return;
    }
    let rt = Runtime::new();
    let src = source(&rt);
    let (u, _) = maps(1000);
    for (mount, want) in [
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                   "uidMappings": u, "gidMappings": u}),
            "id-mapped mounts are only supported for bind mounts",
        ),
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                   "uidMappings": u, "gidMappings": u}),
            "id-mapped mounts are only supported for bind mounts",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
            "an id-mapped mount needs uidMappings and gidMappings",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": src, "options": ["bind", "idmap"],
                   "uidMappings": u}),
            "uidMappings and gidMappings go together",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": src,
                   "options": ["bind", "idmap=uids=0-1000-1"]}),
            "mappings in the option are not supported",
        ),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.edit(|c| c["mounts"].as_array_mut().unwrap().push(mount.clone()));
        let id = rt.id();
        rt.exec(&["create", "--bundle", &b.path_str(), &id])
            .expect_err()
            .expect_msg(want);
        assert_nothing_remains(&rt, &id, Some(b.path()));
    }
}

#[test]
fn a_root_behind_a_directory_the_container_s_root_cannot_search() {
    // runc 1.1.5 fails this ("error preparing rootfs: mount ...: permission denied"): its
    // child looks the path up.
    if skip_for_runc("husk clones such a root in the parent") {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::sh("ls /bin/busybox; id -u");
    b.with_userns(210000);
    // The rootfs moves under a 0700 root-owned directory: 210000 cannot search it.
    let locked = rt.work().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::rename(b.rootfs(), locked.join("rootfs")).unwrap();
    let root = locked.join("rootfs");
    b.edit(|cfg| cfg["root"]["path"] = json!(root.to_str().unwrap()));
    let o = rt.run(&b, &rt.id()).expect_ok();
    assert_eq!(o.stdout, "/bin/busybox\n0\n", "{o}");
}
