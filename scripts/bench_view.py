"""scripts/bench --view N: the cost of the resource view (issue 18, docs/resource-view.md).

1. The cost of one read (open, read to the end, close) of /proc/meminfo, /proc/cpuinfo and
   /proc/stat inside a container, three ways: husk's view (the annotation
   io.github.husk.resource-view=on), lxcfs's files bind-mounted over the same paths (Debian's
   lxcfs, run by the bench on a private mountpoint), and the kernel's own files. Three
   containers (256 MiB limit each) sleep; every round runs, in each of them in turn (the order
   rotating), a python3 loop (the host's, bound in) doing N timed reads per file after N/20
   untimed ones; median and p99 per read over all rounds, in µs, and the ratio of medians to
   lxcfs's. python's own loop costs about 1 µs a read in every column alike.
2. "A view not asked for costs nothing": lifecycles (create, start, wait, delete of `true`,
   256 MiB limit) with the plain config, with `husk --resource-view off`, with the annotation
   `off`; and with the view on, both with the state root's server already running (another
   container keeps it: the steady state) and as the root's first container (create starts the
   server; delete waits for it to exit). Interleaved; `create` alone also tabled.
"""
import json
import os
import shutil
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ANNOTATION = "io.github.husk.resource-view"
FILES = ("/proc/meminfo", "/proc/cpuinfo", "/proc/stat")
LXCFS_FILES = ("meminfo", "cpuinfo", "stat", "uptime", "loadavg", "diskstats", "swaps")
LIMIT = 256 << 20

READER = r'''
import os, sys, time
n = int(sys.argv[1])
for f in sys.argv[2:]:
    def once():
        fd = os.open(f, os.O_RDONLY)
        while os.read(fd, 1 << 17):
            pass
        os.close(fd)
    for _ in range(max(10, n // 20)):
        once()
    lat = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fd = os.open(f, os.O_RDONLY)
        while os.read(fd, 1 << 17):
            pass
        os.close(fd)
        lat.append(clock() - t0)
    print(f, *lat)
'''


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bundle(work, name, args, cgroup=None, view=None, lxcfs=None, host_libs=False):
    """A busybox bundle running `args` with a 256 MiB limit; `view`: the annotation's value;
    `lxcfs`: its mountpoint, whose files are bound over /proc's; `host_libs`: the host's /usr,
    /lib, /lib64 and the bench's reader bound in (python3)."""
    b = os.path.join(work, name)
    sh(os.path.join(HERE, "mkbundle"), b, *args)
    p = os.path.join(b, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    cfg["linux"].setdefault("resources", {})["memory"] = {"limit": LIMIT}
    if cgroup:
        cfg["linux"]["cgroupsPath"] = cgroup
    if view is not None:
        cfg.setdefault("annotations", {})[ANNOTATION] = view
    mounts = cfg["mounts"]
    if host_libs:
        for d in ("/usr", "/lib", "/lib64"):
            if os.path.exists(d):
                mounts.append({"destination": d, "type": "bind", "source": d,
                               "options": ["rbind", "ro"]})
        mounts.append({"destination": "/bench", "type": "bind",
                       "source": os.path.join(work, "reader"), "options": ["rbind", "ro"]})
    if lxcfs:
        for f in LXCFS_FILES:
            mounts.append({"destination": f"/proc/{f}", "type": "bind",
                           "source": f"{lxcfs}/proc/{f}", "options": ["rbind", "ro"]})
        mounts.append({"destination": "/sys/devices/system/cpu", "type": "bind",
                       "source": f"{lxcfs}/sys/devices/system/cpu", "options": ["rbind", "ro"]})
    with open(p, "w") as f:
        json.dump(cfg, f)
    return b


class Lxcfs:
    """Debian's lxcfs on a private mountpoint (never the host's /var/lib/lxcfs)."""

    def __init__(self, work):
        self.mnt = os.path.join(work, "lxcfs")
        os.makedirs(self.mnt)
        self.had_run_dir = os.path.exists("/run/lxcfs")
        self.log = open(os.path.join(work, "lxcfs.log"), "w")
        self.proc = subprocess.Popen(
            ["lxcfs", "-f", "-l", "--enable-cfs", "-p", os.path.join(work, "lxcfs.pid"),
             self.mnt], stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while True:
            try:
                with open(os.path.join(self.mnt, "proc/meminfo")) as f:
                    f.readline()
                break
            except OSError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise RuntimeError(f"lxcfs did not come up on {self.mnt}")
                time.sleep(0.05)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
        self.log.close()
        if not self.had_run_dir:
            shutil.rmtree("/run/lxcfs", ignore_errors=True)


def reap_orphans():
    """The bench is a subreaper: the view's server processes end up its children."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def head1(rt, cid, path):
    p = subprocess.run(rt.cmd("exec", cid, "head", "-1", path), capture_output=True, text=True)
    return p.stdout.strip() or p.stderr.strip()


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def read_case(rt, work, reads, rounds):
    os.makedirs(os.path.join(work, "reader"))
    with open(os.path.join(work, "reader", "read.py"), "w") as f:
        f.write(READER)
    lx = Lxcfs(work)
    ways = ("husk view", "lxcfs", "kernel")
    ids = {}
    cg = f"/husk-bench-view-{os.getpid()}"
    try:
        for w, kw in zip(ways, ({"view": "on"}, {"lxcfs": lx.mnt}, {})):
            tag = w.split()[0]
            b = bundle(work, f"read-{tag}", ["sleep", "100000"], cgroup=f"{cg}/{tag}",
                       host_libs=True, **kw)
            cid = rt.id()
            rt.call("create", "--bundle", b, cid)
            rt.call("start", cid)
            ids[w] = cid
        seen = {w: head1(rt, ids[w], "/proc/meminfo") for w in ways}
        for w in ways[:2]:
            if seen[w] != "MemTotal:         262144 kB":
                raise RuntimeError(f"{w}: /proc/meminfo begins {seen[w]!r}, not the limit")
        lat = {(w, f): [] for w in ways for f in FILES}
        for i in range(rounds):
            for w in ways[i % 3:] + ways[:i % 3]:
                p = subprocess.run(rt.cmd("exec", ids[w], "python3", "/bench/read.py",
                                          str(reads), *FILES),
                                   capture_output=True, text=True, check=True)
                for line in p.stdout.splitlines():
                    f, *xs = line.split()
                    lat[(w, f)] += [int(x) / 1000 for x in xs]
    finally:
        for cid in ids.values():
            subprocess.run(rt.cmd("delete", "--force", cid), capture_output=True)
        lx.close()
        reap_orphans()
        for h in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(os.path.join("/sys/fs/cgroup", h, cg.lstrip("/")))
            except OSError:
                pass
    out = [f"### One read inside a container: {reads} reads per file per round, {rounds} "
           "interleaved rounds", "",
           "open + read to EOF + close, timed in the container by python3's perf_counter_ns; "
           f"first lines seen: " + "; ".join(f"{w}: `{seen[w]}`" for w in ways) + ".", "",
           "| file | way | median µs | p99 µs | median / lxcfs's |", "|---|---|---|---|---|"]
    for f in FILES:
        ref = statistics.median(lat[("lxcfs", f)])
        for w in ways:
            xs = lat[(w, f)]
            med = statistics.median(xs)
            out.append(f"| {f} | {w} | {med:.1f} | {pct(xs, 0.99):.1f} | {med / ref:.2f} |")
    return "\n".join(out) + "\n"


def timed_lifecycle(rt, b, pidfile, reap, *pre):
    """create (returned alone too), start, wait, delete; `pre`: global flags."""
    cid = rt.id()
    t0 = time.perf_counter()
    rt.call(*pre, "create", "--bundle", b, "--pid-file", pidfile, cid)
    t1 = time.perf_counter()
    pid = int(open(pidfile).read())
    rt.call(*pre, "start", cid)
    reap(pid)
    rt.call(*pre, "delete", cid)
    return time.perf_counter() - t0, t1 - t0


def lifecycle_case(rt_class, rt, work, iterations, reap, summary):
    pidfile = os.path.join(work, "view.pid")
    plain = bundle(work, "lc-plain", ["true"])
    off = bundle(work, "lc-off", ["true"], view="off")
    on = bundle(work, "lc-on", ["true"], view="on")
    holder = bundle(work, "lc-holder", ["sleep", "100000"], view="on")
    # Roots: one for the configs without a view; one where a holder keeps the server up; one
    # where every view container is the first.
    rts = {k: rt_class(f"husk-{k}", rt.binary, os.path.join(work, f"root-view-{k}"))
           for k in ("none", "steady", "first")}
    hid = rts["steady"].id()
    rts["steady"].call("create", "--bundle", holder, hid)
    cases = {
        "plain config": (rts["none"], plain, ()),
        "`--resource-view off`": (rts["none"], plain, ("--resource-view", "off")),
        "annotation `off`": (rts["none"], off, ()),
        "view on, server running": (rts["steady"], on, ()),
        "view on, first container": (rts["first"], on, ()),
    }
    names = list(cases)
    total = {n: [] for n in names}
    create = {n: [] for n in names}
    try:
        for i in range(iterations):
            for n in names[i % len(names):] + names[:i % len(names)]:
                r, b, pre = cases[n]
                t, c = timed_lifecycle(r, b, pidfile, reap, *pre)
                total[n].append(t)
                create[n].append(c)
                reap_orphans()
    finally:
        rts["steady"].call("delete", "--force", hid, check=False)
        reap_orphans()
    left = [k for k, r in rts.items() if os.path.exists(os.path.join(r.root, ".procview"))]
    out = [summary(f"Lifecycle of `true` with and without the view, {iterations} interleaved "
                   "iterations (husk)", total, 1000.0, "ms", ("plain config",)),
           summary("`create` alone, same runs", create, 1000.0, "ms", ("plain config",))]
    if left:
        out.append(f"A server directory was left in: {', '.join(left)}.\n")
    return "\n".join(out)


def view_case(rt, work, reads, rounds, iterations, rt_class, reap, summary):
    """The markdown of both parts. `rt` is husk's Runtime (scripts/bench's class `rt_class`),
    `reap(pid)` and `summary(title, per_case, unit_scale, unit, refs)` are scripts/bench's."""
    if not shutil.which("lxcfs"):
        raise SystemExit("scripts/bench --view: lxcfs is missing (apt-get install lxcfs)")
    out = [f"### The resource view (`--view {reads}`)", ""]
    work = os.path.join(work, "view")
    os.makedirs(work)
    if rounds:
        out.append(read_case(rt, work, reads, rounds))
    if iterations:
        out.append(lifecycle_case(rt_class, rt, work, iterations, reap, summary))
    return "\n".join(out)
