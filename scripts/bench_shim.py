"""scripts/bench --shim N: husk's containerd shim against containerd's Go runc shim (docs/shim.md).

Three configurations, on a private containerd 1.6 (its own root, state, sockets and namespace,
the CRI plugin off) with a busybox image imported from a docker-archive tar:

  husk-shim     `ctr run --runtime io.containerd.husk.v2`: containerd-shim-husk-v2 (first on the
                daemon's PATH), husk's library linked in, no runtime binary executed;
  go-shim+husk  containerd-shim-runc-v2 (the default runtime) with husk as its runc
                (`ctr run --runc-binary target/static/husk`);
  go-shim+runc  containerd-shim-runc-v2 with runc (`--runc-binary /usr/sbin/runc`).

1. `ctr run --rm IMAGE ID true`, N interleaved iterations (each runs every configuration once,
   the order rotating, after one untimed run each): median, p10, p90 in ms, the ratio of
   medians to go-shim+runc and the median of per-iteration ratios.
2. Shim memory per running container: M containers (`ctr run --detach ... sleep 100000`, M from
   --shim-containers), then the VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) of
   every shim serving this containerd (containerd-shim-husk-v2 or containerd-shim-runc-v2 with
   `-address` its socket), summed and divided by M; ungrouped (a shim per container) and
   grouped (the annotation io.containerd.runc.v2.group=g1 on all M: one shim serves them all).
   Then `ctr task kill -s SIGKILL`, `ctr task delete`, `ctr container delete` of every one, and
   a check that no task, container or shim is left.

Everything (tasks, containers, image, daemon, shims, cgroups /sys/fs/cgroup/*/<namespace>,
runtime state under /run/containerd/{husk,runc}/<namespace>, mounts, the temp dir) is removed
at the end, also on error.
"""
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
IMAGE = "localhost/husk-bench-busybox:latest"
HUSK_RUNTIME = "io.containerd.husk.v2"
GROUP = "io.containerd.runc.v2.group"
REF = "go-shim+runc"
SHIMS = ("containerd-shim-husk-v2", "containerd-shim-runc-v2")
RUNC = "/usr/sbin/runc"


def static_bins():
    """husk and its shim from $CARGO_TARGET_DIR (or <repo>/target) /static/, built by
    scripts/build only when absent."""
    d = os.path.join(os.path.abspath(os.environ.get("CARGO_TARGET_DIR")
                                     or os.path.join(TOP, "target")), "static")
    husk, shim = os.path.join(d, "husk"), os.path.join(d, "containerd-shim-husk-v2")
    if not (os.access(husk, os.X_OK) and os.access(shim, os.X_OK)):
        subprocess.run([os.path.join(HERE, "build")], check=True, stdout=subprocess.DEVNULL)
    return husk, shim


def version(*cmd):
    """The first line of `cmd`'s output, with the next one when the first ends in ':'."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return "?"
    lines = [" ".join(l.split()) for l in out.splitlines() if l.strip()]
    return " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines or ["?"])[0]


def docker_archive(work, tag):
    """The busybox rootfs (scripts/mkbundle's) as a docker-archive tar: one layer, a config
    named by its sha256, a manifest.json (integration/src/enginekit.rs's layout)."""
    tmp, img = os.path.join(work, "image-bundle"), os.path.join(work, "image")
    subprocess.run([os.path.join(HERE, "mkbundle"), tmp, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    os.makedirs(img)
    layer = os.path.join(img, "layer.tar")
    subprocess.run(["tar", "-C", os.path.join(tmp, "rootfs"), "-cf", layer, "."], check=True)

    def sha(p):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha(layer)}"]}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    with open(os.path.join(img, cfg_name), "wb") as f:
        f.write(config)
    with open(os.path.join(img, "manifest.json"), "w") as f:
        json.dump([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["layer.tar"]}], f)
    out = os.path.join(work, "image.tar")
    subprocess.run(["tar", "-C", img, "-cf", out, "."], check=True)
    shutil.rmtree(tmp)
    shutil.rmtree(img)
    return out


def mounts_under(top):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == top or mp.startswith(top + "/"):
                found.append(mp)
    return found


def reap_zombies(keep):
    """The bench is a child subreaper: shims that daemonize are reparented to it, and their
    exits are ours to reap (all but `keep`, the daemon's pid, which Popen waits for)."""
    me = os.getpid()
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == keep:
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if st[0] == "Z" and int(st[1]) == me:
            try:
                os.waitpid(int(e), os.WNOHANG)
            except ChildProcessError:
                pass


class Containerd:
    """A private containerd (integration/src/containerd.rs's setup), its namespace, the image."""

    def __init__(self, work, shim):
        self.dir = os.path.join(work, "ctrd")
        self.ns = f"husk-bench-{os.getpid()}"
        self.sock = os.path.join(self.dir, "c.sock")
        self.daemon, self.ids = None, set()
        bindir = os.path.join(self.dir, "bin")
        os.makedirs(bindir)
        os.symlink(shim, os.path.join(bindir, "containerd-shim-husk-v2"))
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write(f'version = 2\nroot = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.sock}"\n'
                    f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n')
        env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", ""))
        self.log = open(os.path.join(self.dir, "containerd.log"), "wb")
        # Its own session: a ^C reaches the bench, whose teardown still needs the daemon.
        self.daemon = subprocess.Popen(["containerd", "--config", cfg], env=env,
                                       stdin=subprocess.DEVNULL, stdout=self.log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            if self.daemon.poll() is not None or time.monotonic() > end:
                raise RuntimeError("containerd did not come up: " + self.log_tail())
            time.sleep(0.1)

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "containerd.log"), errors="replace") as f:
                return " / ".join(f.read().splitlines()[-5:])
        except OSError:
            return "?"

    def ctr(self, *args, check=True, timeout=120):
        p = subprocess.run(["ctr", "--address", self.sock, "--namespace", self.ns, *args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {p.stderr.strip()[-400:]}")
        return p

    def quiet_list(self, what):
        return self.ctr(what, "list", "--quiet").stdout.split()

    def shim_pids(self):
        pids = []
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                with open(f"/proc/{e}/cmdline", "rb") as f:
                    args = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if (os.path.basename(args[0]) in SHIMS
                    and any(a == "-address" and b == self.sock for a, b in zip(args, args[1:]))):
                pids.append(int(e))
        return pids

    def socket_files(self):
        """The shims' sockets of this daemon and namespace that exist: /run/containerd/s/
        <sha256 of address/namespace/id-or-group>, both shims' scheme."""
        names = set(self.ids) | {"g1"}
        return [p for p in (os.path.join("/run/containerd/s", hashlib.sha256(
            f"{self.sock}/{self.ns}/{n}".encode()).hexdigest()) for n in names)
            if os.path.exists(p)]

    def left(self):
        """What this daemon's namespace still holds: tasks, containers, shims."""
        return ([f"task {t}" for t in self.quiet_list("tasks")]
                + [f"container {c}" for c in self.quiet_list("containers")]
                + [f"shim process {p}" for p in self.shim_pids()])

    def host_left(self, torn_down):
        """What is left outside the daemon: cgroups and runtime state of containers (after the
        teardown: of the namespace itself), shim sockets, mounts."""
        out = []
        dirs = [os.path.join("/sys/fs/cgroup", h, self.ns) for h in os.listdir("/sys/fs/cgroup")]
        dirs += [os.path.join(b, self.ns) for b in ("/run/containerd/husk", "/run/containerd/runc")]
        for d in dirs:
            if torn_down:
                out += [d] if os.path.exists(d) else []
            elif os.path.isdir(d):
                out += [os.path.join(d, e) for e in os.listdir(d)
                        if os.path.isdir(os.path.join(d, e))]
        out += [f"socket {s}" for s in self.socket_files()]
        out += [f"mount {m}" for m in mounts_under(self.dir)]
        return out

    def close(self):
        """Removes everything, the daemon last but one and the directory last."""
        if self.daemon and self.daemon.poll() is None:
            try:
                for t in self.quiet_list("tasks"):
                    self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", t, check=False)
                    self.ctr("tasks", "delete", "--force", t, check=False)
                for c in self.quiet_list("containers"):
                    self.ctr("containers", "delete", c, check=False)
                self.ctr("images", "remove", "--sync", IMAGE, check=False)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.log.close()
        for pid in self.shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        reap_zombies(None)
        for h in os.listdir("/sys/fs/cgroup"):
            top = os.path.join("/sys/fs/cgroup", h, self.ns)
            for d, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        for base in ("/run/containerd/husk", "/run/containerd/runc"):
            shutil.rmtree(os.path.join(base, self.ns), ignore_errors=True)
        for s in self.socket_files():
            try:
                os.unlink(s)
            except OSError:
                pass
        for _ in range(3):
            for m in reversed(mounts_under(self.dir)):
                subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def config_args(husk):
    return {"husk-shim": ["--runtime", HUSK_RUNTIME],
            "go-shim+husk": ["--runc-binary", husk],
            "go-shim+runc": ["--runc-binary", RUNC]}


def slug(name):
    """A container id part: ids allow only [A-Za-z0-9] and single [._-] between them."""
    return name.replace("+", "-")


def timed_run(c, args, cid):
    c.ids.add(cid)
    t0 = time.perf_counter()
    c.ctr("run", "--rm", *args, IMAGE, cid, "true")
    dt = time.perf_counter() - t0
    reap_zombies(c.daemon.pid)
    return dt


def which_runtime(c, name, cid):
    """Checks that the runtime asked for is the one that ran: the state file husk (a `phase`)
    or runc (an `init_process_pid`) left in the shim's runtime root."""
    base = "/run/containerd/husk" if name == "husk-shim" else "/run/containerd/runc"
    try:
        with open(os.path.join(base, c.ns, cid, "state.json")) as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        return f"no readable state.json ({e})"
    got = "husk" if "phase" in st else "runc" if "init_process_pid" in st else "?"
    want = "runc" if name == REF else "husk"
    return None if got == want else f"the state is {got}'s, not {want}'s"


def memory(c, name, args, m, grouped):
    """M sleeping containers: (shims, RSS bytes, PSS bytes, runtime check error)."""
    ids = [f"m-{slug(name)}-{m}-{'g' if grouped else 'u'}-{i}" for i in range(m)]
    extra = ["--annotation", f"{GROUP}=g1"] if grouped else []
    started = []
    try:
        for cid in ids:
            c.ids.add(cid)
            c.ctr("run", "--detach", *args, *extra, IMAGE, cid, "sleep", "100000")
            started.append(cid)
        time.sleep(1)  # the shims are done with the starts
        reap_zombies(c.daemon.pid)
        pids = c.shim_pids()
        rss = pss = 0
        for p in pids:
            with open(f"/proc/{p}/status") as f:
                rss += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) * 1024
            with open(f"/proc/{p}/smaps_rollup") as f:
                pss += next(int(l.split()[1]) for l in f if l.startswith("Pss:")) * 1024
        wrong = which_runtime(c, name, ids[0])
    finally:
        for cid in started:
            c.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        for cid in started:
            end = time.monotonic() + 30
            while c.ctr("task", "delete", cid, check=False).returncode != 0:
                if time.monotonic() > end:
                    raise RuntimeError(f"{name}: task {cid} not deleted 30 s after SIGKILL")
                time.sleep(0.05)
        for cid in started:
            c.ctr("container", "delete", cid)
    end = time.monotonic() + 10
    while (left := c.left()):
        if time.monotonic() > end:
            raise RuntimeError(f"{name}: left after deleting {m} containers: {', '.join(left)}")
        time.sleep(0.1)
        reap_zombies(c.daemon.pid)
    return len(pids), rss, pss, wrong


def run_table(res, iterations, pct):
    ref = res.get(REF, [])
    lines = [f"### `ctr run --rm IMAGE ID true`, {iterations} interleaved iterations", "",
             "| configuration | median ms | p10 | p90 | ratio of medians to go-shim+runc "
             "| median of per-iteration ratios |", "|---|---|---|---|---|---|"]
    for n, xs in res.items():
        per = statistics.median(a / b for a, b in zip(xs, ref)) if ref else float("nan")
        lines.append(f"| {n} | {statistics.median(xs) * 1000:.2f} | {pct(xs, 0.1) * 1000:.2f} "
                     f"| {pct(xs, 0.9) * 1000:.2f} | "
                     + (f"{statistics.median(xs) / statistics.median(ref):.2f}" if ref else "-")
                     + (f" | {per:.2f} |" if ref else " | - |"))
    if "husk-shim" in res and ref:
        r = statistics.median(res["husk-shim"]) / statistics.median(ref)
        lines.append(f"\nhusk-shim / go-shim+runc, medians: {r:.2f}x (target: at most 0.6x).")
    return "\n".join(lines) + "\n"


def shim_case(work, iterations, containers, pct):
    """The markdown of both tables; `pct(xs, p)` is scripts/bench's."""
    husk, shim = static_bins()
    base = tempfile.mkdtemp(prefix="shim-", dir=work)
    c = None
    try:
        tar = docker_archive(base, IMAGE)
        c = Containerd(base, shim)
        c.ctr("image", "import", tar)
        cfgs = config_args(husk)
        out = ["### containerd shims (`--shim`): husk's against containerd's Go runc shim", "",
               f"A private containerd (namespace {c.ns}), a busybox image from a docker-archive "
               "tar. husk-shim: `ctr run --runtime io.containerd.husk.v2`; go-shim+X: "
               "containerd-shim-runc-v2 with `ctr run --runc-binary X`. Versions: "
               + "; ".join(f"{version(*cmd)} ({cmd[0]})" for cmd in (
                   ("containerd", "--version"), (shim, "--version"),
                   ("containerd-shim-runc-v2", "-v"), (husk, "--version"), (RUNC, "--version")))
               + f". Binary sizes: containerd-shim-husk-v2 {os.path.getsize(shim)} bytes, "
               f"containerd-shim-runc-v2 {os.path.getsize(shutil.which('containerd-shim-runc-v2'))}"
               " bytes.", ""]
        ok = []
        for n, args in cfgs.items():
            try:
                timed_run(c, args, f"w-{slug(n)}")
                ok.append(n)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                out.append(f"- {n}: left out, its first `ctr run` failed: {e}")
        if len(ok) < len(cfgs):
            out.append("")
        res = {n: [] for n in ok}
        for i in range(iterations):
            for n in ok[i % len(ok):] + ok[:i % len(ok)]:
                res[n].append(timed_run(c, cfgs[n], f"r-{slug(n)}-{i}"))
        if iterations and ok:
            out.append(run_table(res, iterations, pct))
        rows, per = [], {}
        for m in containers:
            for grouped in (False, True):
                for n in ok[m % len(ok):] + ok[:m % len(ok)]:
                    shims, rss, pss, wrong = memory(c, n, cfgs[n], m, grouped)
                    per[(n, m, grouped)] = (rss / m, pss / m, shims, wrong)
                for n in ok:
                    rss, pss, shims, wrong = per[(n, m, grouped)]
                    ref = per.get((REF, m, grouped))
                    ratio = (f"{rss / ref[0]:.3f} | {pss / ref[1]:.3f}" if ref else "- | -")
                    rows.append(f"| {n} | {m} | {'one group' if grouped else 'one each'} | "
                                f"{shims} | {rss / 1e6:.2f} | {pss / 1e6:.2f} | {ratio} |"
                                + (f" **{wrong}**" if wrong else ""))
        if rows:
            out.append("### Shim memory per running container\n\n"
                       "M containers sleeping (`ctr run --detach`); the VmRSS and the Pss of every "
                       "shim process serving this containerd, summed, divided by M. `one each`: "
                       "a shim per container; `one group`: all M with the annotation "
                       f"`{GROUP}=g1` (one shim serves them). Target for husk-shim: at most 1/5 "
                       "of go-shim's.\n\n"
                       "| configuration | containers | grouping | shim processes | RSS MB per container "
                       "| PSS MB per container | RSS ratio to go-shim+runc | PSS ratio to "
                       "go-shim+runc |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
        left = c.left() + c.host_left(False)
        out.append(f"Left after the runs: {', '.join(left) if left else 'nothing'} (tasks, "
                   "containers, shims, containers' cgroups and runtime state, shim sockets, "
                   "mounts).")
    finally:
        left = []
        if c:
            c.close()
            left = [f"shim process {p}" for p in c.shim_pids()] + c.host_left(True)
            if left:
                print(f"scripts/bench --shim: left after the teardown: {', '.join(left)}",
                      file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
    out.append(f"Left after the teardown: {', '.join(left) if left else 'nothing'}.\n")
    return "\n".join(out)
