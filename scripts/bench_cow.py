"""scripts/bench --cow N: the cost of the root filesystems husk makes (docs/rootfs-sources.md).

1. N interleaved iterations of the lifecycle (create, start, wait, delete of `true`) on a plain
   directory, on a 3-layer overlay husk makes and removes, and on a btrfs snapshot husk makes
   and removes (with and without a 64 MiB qgroup), on a loop-backed btrfs made for the run.
2. The memory of M running containers (--cow-containers, default 200) from one image: through
   an overlay of the image against M plain copies of it. The image and copies are made first
   and evicted from the page cache file by file; each container then reads the image's 4 MiB
   data file and busybox, and sleeps. The table gives the growth of the host's page cache
   (Cached) and of its memory in use (MemTotal - MemFree) over the starts. Shared layers keep
   one copy of each file in the page cache; copies keep M.
"""
import json
import os
import shutil
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def edit(bundle, fn):
    p = os.path.join(bundle, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    fn(cfg)
    with open(p, "w") as f:
        json.dump(cfg, f)


def bundle_with(work, name, args, annotations=None, root=None):
    """A bundle (config only: the root comes from the annotations or `root`)."""
    b = os.path.join(work, name)
    sh(os.path.join(HERE, "mkbundle"), b, *args)

    def fix(cfg):
        cfg["root"] = {"path": root or os.path.join(b, "rootfs"), "readonly": False}
        if annotations:
            cfg["annotations"] = annotations
    edit(b, fix)
    return b


def meminfo():
    m = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            m[k] = int(v.split()[0]) * 1024
    return m


def layers(work, tag):
    """The image as 3 layers: busybox (bottom), /etc, a 4 MiB data file (top)."""
    base = os.path.join(work, f"{tag}-l1")
    sh(os.path.join(HERE, "mkbundle"), base + "-b", "true")
    shutil.move(os.path.join(base + "-b", "rootfs"), base)
    shutil.rmtree(base + "-b")
    mid = os.path.join(work, f"{tag}-l2")
    os.makedirs(os.path.join(mid, "etc"))
    with open(os.path.join(mid, "etc", "motd"), "w") as f:
        f.write("layer 2\n")
    top = os.path.join(work, f"{tag}-l3")
    os.makedirs(top)
    with open(os.path.join(top, "blob"), "wb") as f:
        f.write(os.urandom(4 << 20))
    return [top, mid, base]


def overlay_annotations(lower, c):
    return {"io.github.husk.rootfs": "overlay",
            "io.github.husk.rootfs.layers": ":".join(lower),
            "io.github.husk.rootfs.upper": os.path.join(c, "upper"),
            "io.github.husk.rootfs.work": os.path.join(c, "work")}


class Btrfs:
    """A 2 GiB loop-backed btrfs with quotas on; commit=1 so deleted snapshots go quickly."""

    def __init__(self, work):
        self.img, self.mnt = os.path.join(work, "btrfs.img"), os.path.join(work, "btrfs")
        sh("truncate", "-s", "2G", self.img)
        sh("mkfs.btrfs", "-q", self.img)
        os.makedirs(self.mnt)
        sh("mount", "-o", "loop,commit=1", self.img, self.mnt)
        sh("btrfs", "quota", "enable", self.mnt)

    def close(self):
        subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)


def cow_case(rt, work, iterations, containers, lifecycle, summary):
    """The markdown of both tables. `rt` is husk's Runtime; `lifecycle(rt, bundle, pidfile)`
    and `summary(title, per_case, unit_scale, unit, refs)` are scripts/bench's."""
    out = ["### Root filesystems husk makes (`--cow`)", ""]
    pidfile = os.path.join(work, "cow.pid")
    lower = layers(work, "img")
    fs = Btrfs(work)
    try:
        sub = os.path.join(fs.mnt, "img")
        sh("btrfs", "subvolume", "create", sub)
        sh("cp", "-a", lower[2] + "/.", sub)
        cases = {
            "plain directory": bundle_with(work, "cow-plain", ["true"]),
            "overlay, 3 layers": bundle_with(
                work, "cow-ovl", ["true"], overlay_annotations(lower, os.path.join(work, "c-ovl"))),
            "btrfs snapshot": bundle_with(work, "cow-snap", ["true"], {
                "io.github.husk.rootfs": "btrfs", "io.github.husk.rootfs.subvolume": sub,
                "io.github.husk.rootfs.snapshot": os.path.join(fs.mnt, "c1")}),
            "btrfs snapshot, 64M quota": bundle_with(work, "cow-snapq", ["true"], {
                "io.github.husk.rootfs": "btrfs", "io.github.husk.rootfs.subvolume": sub,
                "io.github.husk.rootfs.snapshot": os.path.join(fs.mnt, "c2"),
                "io.github.husk.rootfs.quota": "64M"}),
        }
        names = list(cases)
        res = {n: [] for n in names}
        for i in range(iterations):
            for n in names[i % len(names):] + names[:i % len(names)]:
                res[n].append(lifecycle(rt, cases[n], pidfile))
        out.append(summary(f"Lifecycle of `true` by root filesystem, {iterations} interleaved "
                           "iterations (husk)", res, 1000.0, "ms", ("plain directory",)))
    finally:
        fs.close()
    if containers:
        out.append(memory_case(rt, work, containers))
    return "\n".join(out)


def drop_cache(top):
    """Evicts the files under `top` from the page cache (per file: posix_fadvise, no global
    drop), so that what the containers read afterwards is what the page cache gains."""
    sh("sync")
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def memory_case(rt, work, n):
    rows = []
    script = ["sh", "-c", "cat /blob /bin/busybox >/dev/null; exec sleep 100000"]
    for mode in ("overlay of one image", "plain copies"):
        tag = "mo" if mode.startswith("overlay") else "mc"
        top = os.path.join(work, tag)
        os.makedirs(top)
        lower = layers(top, "img")
        bundles = []
        for i in range(n):
            if tag == "mo":
                bundles.append(bundle_with(top, f"b{i}", script,
                                           overlay_annotations(lower, os.path.join(top, f"c{i}"))))
            else:
                root = os.path.join(top, f"r{i}")
                os.makedirs(root)
                for layer in reversed(lower):
                    sh("cp", "-a", layer + "/.", root)
                bundles.append(bundle_with(top, f"b{i}", script, root=root))
        drop_cache(top)
        before = meminfo()
        ids = []
        t0 = time.perf_counter()
        try:
            for b in bundles:
                cid = rt.id()
                rt.call("run", "--detach", "--bundle", b, cid)
                ids.append(cid)
            took = time.perf_counter() - t0
            time.sleep(3)  # every container has read its files
            after = meminfo()
            cached = (after["Cached"] - before["Cached"]) / 1e6
            used = ((after["MemTotal"] - after["MemFree"])
                    - (before["MemTotal"] - before["MemFree"])) / 1e6
            rows.append(f"| {mode} | {n} | {cached:.0f} | {cached / n:.2f} | {used:.0f} | "
                        f"{used / n:.2f} | {took:.1f} |")
        finally:
            for cid in ids:
                subprocess.run(rt.cmd("delete", "--force", cid), capture_output=True)
            shutil.rmtree(top, ignore_errors=True)
    return (f"### Memory of {n} running containers from one image (husk)\n\n"
            "The image and its copies are made first and evicted from the page cache (per file); "
            "then the containers start, each reading the image's 4 MiB data file and busybox "
            "(1.2 MB) before it sleeps. The deltas are between just before the first start and "
            "3 s after the last; `memory used` is MemTotal - MemFree, page cache included.\n\n"
            "| root | containers | page cache MB | per container | memory used MB | per container "
            "| seconds to start all |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
