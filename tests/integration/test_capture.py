#!/usr/bin/env python3
"""Capture side of the engine, on real processes (needs root).

Each zdtm workload sets state up and prints it; the driver adopts and
snapshots it with the cryo command, reads the image back through
`cryo inspect --json` and `cryo store cat` (the store API), checks it says
what the workload set up, then lets the workload check itself: it must
still be running unharmed (PASS). Also: refusals leave the process
untouched, a failed or killed snapshot leaves no half snapshot, and real
programs (sleep, python3, redis-server) are captured repeatedly.

usage: test_capture.py CRYO WORKLOAD_DIR      exit 0 / 1 / 77 (skipped)
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CRYO, WDIR = sys.argv[1], sys.argv[2]
if os.geteuid() != 0:
    print("SKIP: needs root")
    sys.exit(77)

HOME = tempfile.mkdtemp(prefix="cryo-it-")
SCRATCH = tempfile.mkdtemp(prefix="cryo-it-files-")
ENV = dict(os.environ, CRYO_HOME=HOME)
ENV.pop("CRYO_FAULT", None)
FAILS = []
PG = 4096


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def cryo(*args, env=None, timeout=120):
    return subprocess.run([CRYO, *args], env=env or ENV, capture_output=True, text=True,
                          timeout=timeout)


def inspect(name, snap=None):
    args = ["inspect", name, "--json"] + (["--snapshot", str(snap)] if snap else [])
    r = cryo(*args)
    if r.returncode != 0:
        check(False, f"inspect {name}: {r.stderr.strip()}")
        return None
    return json.loads(r.stdout)


def page(name, snap, space, vpn):
    r = subprocess.run([CRYO, "store", "cat", name, str(snap), hex(vpn), "--space", str(space),
                        "--raw"], env=ENV,
                       capture_output=True, timeout=60)
    return r.stdout if r.returncode == 0 else None


def pat(r, i, off):
    return (r * 31 + i * 7 + off % 251 + 1) & 0xff


def pattern_page(r, i):
    return bytes(pat(r, i, o) for o in range(PG))


def proc_state(pid):
    st = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                st[k] = v.strip()
    except FileNotFoundError:
        return None
    return st


def maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def history(name):
    r = cryo("history", name, "--json")
    return json.loads(r.stdout) if r.returncode == 0 else []


class Workload:
    def __init__(self, argv, name):
        self.name = name
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  text=True)
        self.vals = {}
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                break
            line = line.strip()
            if line == "ready":
                self.pid = self.p.pid
                return
            parts = line.split()
            self.vals.setdefault(parts[0], []).append(parts[1:])
        raise RuntimeError(f"{argv[0]} never got ready")

    def finish(self):
        """SIGUSR2: the workload checks its own state and says PASS/FAIL."""
        try:
            os.kill(self.p.pid, signal.SIGUSR2)
            out, _ = self.p.communicate(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.p.kill()
            out = "(no answer)"
        return out.strip()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def untouched(pid):
    st = proc_state(pid)
    return st is not None and st["TracerPid"] == "0" and st["State"][0] in "RS"


def zdtm(name, *args):
    return Workload([os.path.join(WDIR, "zdtm_" + name), *args], name)


def adopt(w, name=None):
    r = cryo("adopt", str(w.pid), "--name", name or w.name)
    check(r.returncode == 0, f"adopt {name or w.name}: {r.stderr.strip() or 'ok'}")
    return r.returncode == 0


def snap(name, n=1):
    ok = True
    for _ in range(n):
        r = cryo("snap", name)
        ok = ok and check(r.returncode == 0, f"snap {name}: {r.stdout.strip() or r.stderr.strip()}")
    return ok


# ---------------------------------------------------------------- scenarios

def t_threads():
    w = zdtm("threads_regs")
    if not adopt(w):
        return w.kill()
    snap(w.name, 2)
    img = inspect(w.name)
    threads = img["processes"][0]["core"]["threads"] if img else []
    check(len(threads) == 9, f"threads: 9 in the image (got {len(threads)})")
    check(threads and threads[0]["tid"] == w.pid, "threads: leader first")
    check(threads and int(threads[0]["regs"]["orig_rax"], 16) == 128,
          "threads: main stopped in rt_sigtimedwait (sigwait)")
    for (i, r12), (_, x0) in zip(w.vals["r12"], w.vals["xmm0"]):
        r12, x0 = int(r12, 16), int(x0, 16)
        found = [t for t in threads if int(t["regs"]["r12"], 16) == r12]
        ok = len(found) == 1
        if ok:
            t = found[0]
            ok = (int(t["regs"]["r13"], 16) == (~r12 & (2**64 - 1)) and
                  int(t["xmm"][0][-16:], 16) == x0 and t["xstate_len"] > 512)
        check(ok, f"threads: thread {i} has r12/r13/xmm0 as set")
    out = w.finish()
    check(out.endswith("PASS"), f"threads: still running after 3 snapshots: {out[-80:]}")


def t_signals():
    w = zdtm("signals")
    if not adopt(w):
        return w.kill()
    img = inspect(w.name)
    core = img["processes"][0]["core"]
    rtmin = int(w.vals["sigrtmin"][0][0])
    sa = {s["sig"]: s for s in core["sigactions"]}
    u1 = sa.get(10)
    check(u1 is not None and int(u1["handler"], 16) == int(w.vals["handler"][0][0], 16),
          "signals: SIGUSR1 handler address")
    flags = int(u1["flags"], 16) if u1 else 0
    check(flags & 0x4 and flags & 0x10000000 and flags & 0x08000000,
          "signals: SA_SIGINFO|SA_RESTART|SA_ONSTACK")
    check(u1 and int(u1["mask"], 16) & (1 << 1), "signals: handler mask holds SIGINT")
    check(13 in sa and int(sa[13]["handler"], 16) == 1, "signals: SIGPIPE ignored")
    check(10 in core["shared_pending"], "signals: SIGUSR1 pending for the process")
    t0 = core["threads"][0]
    check(rtmin + 1 in t0["pending"], "signals: SIGRTMIN+1 pending for the thread")
    mask = int(t0["sigmask"], 16)
    check(all(mask & (1 << (s - 1)) for s in (10, 12, rtmin + 1)), "signals: blocked mask")
    sp, size = w.vals["altstack"][0]
    check(int(t0["altstack_sp"], 16) == int(sp, 16) and t0["altstack_size"] == int(size),
          "signals: sigaltstack")
    real = [i for i in core["itimers"] if i["which"] == 0][0]
    check(real["interval_us"] == 50_000_000 and 0 < real["value_us"] <= 100_000_000,
          f"signals: ITIMER_REAL {real}")
    tm = core["timers"]
    check(len(tm) == 1 and tm[0]["signo"] == rtmin + 2 and tm[0]["interval_ns"] == 10**10
          and 0 < tm[0]["value_ns"] <= 200 * 10**9 and tm[0]["clock"] == 1,
          f"signals: POSIX timer {tm}")
    check(core["umask"] == 0o27, "signals: umask 027")
    check(core["nice"] == 5, "signals: nice 5")
    check(core["pdeath_sig"] == 1 and core["child_subreaper"] == 1, "signals: pdeath, subreaper")
    check(len(core["rlimits"]) == 16 and core["creds"]["uid"] == [0, 0, 0, 0],
          "signals: rlimits and creds")
    out = w.finish()
    check(out.endswith("PASS"), f"signals: process state unchanged after snap: {out[-80:]}")


def t_files():
    w = zdtm("files", SCRATCH)
    if not adopt(w):
        return w.kill()
    img = inspect(w.name)
    fds = {f["fd"]: f for f in img["processes"][0]["fds"]}
    fd = {x[0]: int(x[1]) for x in w.vals["fd"]}
    a, b = fds[fd["a"]], fds[fd["b"]]
    check(a["kind"] == "reg" and a["pos"] == 1234 and a["flags"] & 3 == os.O_RDWR,
          "files: file a at offset 1234, O_RDWR")
    check(b["kind"] == "reg" and b["pos"] == 5 and b["flags"] & os.O_APPEND and b["cloexec"],
          "files: file b O_APPEND, cloexec, offset 5")
    d = fds[fd["deleted"]]
    check(d["kind"] == "reg" and "deleted" in d["describe"] and d["pos"] == 777,
          f"files: deleted file saved: {d['describe']}")
    m = fds[fd["memfd"]]
    check(m["kind"] == "memfd" and m["pos"] == 4321 and "zdtm-memfd" in m["describe"]
          and "seals 0x6" in m["describe"], f"files: memfd {m['describe']}")
    pr, pw = fds[fd["pipe_r"]], fds[fd["pipe_w"]]
    check(pr["kind"] == "pipe" and "20 bytes buffered" in pr["describe"],
          f"files: pipe read end with its bytes: {pr['describe']}")
    check(pw["kind"] == "pipe" and "write end" in pw["describe"], "files: pipe write end")
    check(fds[fd["dir"]]["kind"] == "dir", "files: directory")
    check(fds[fd["zero"]]["kind"] == "dev" and fds[fd["urandom"]]["kind"] == "dev" and
          fds[fd["urandom"]]["flags"] & os.O_NONBLOCK, "files: /dev/zero, /dev/urandom")
    check(fds[1]["kind"] == "ext", "files: stdout (pipe to the driver) reconnected by policy")
    # contents through the store: space numbers from the descriptions
    sn = img["snapshot"]
    msp = int(m["describe"].split("space ")[1].split()[0])
    dsp = int(d["describe"].split("space ")[1].split(")")[0])
    def fpage(r, i, size):
        # files.c writes byte k of a file as pat(r, k // PG, k); zeros past the end
        return bytes(pat(r, i, i * PG + o) if i * PG + o < size else 0 for o in range(PG))
    check(page(w.name, sn, msp, 1) == fpage(3, 1, 9000), "files: memfd page 1 in the store")
    check(page(w.name, sn, dsp, 2) == fpage(2, 2, 10000),
          "files: deleted file page 2 (partial) in the store")
    out = w.finish()
    check(out.endswith("PASS"), f"files: offsets and pipe bytes intact after snap: {out[-80:]}")


def t_mappings():
    w = zdtm("mappings", SCRATCH)
    if not adopt(w):
        return w.kill()
    img = inspect(w.name)
    p = img["processes"][0]
    def vma_at(a):
        for v in p["mm"]["vmas"]:
            if int(v["start"], 16) <= a < int(v["end"], 16):
                return v
        return None
    addr = {x[0]: int(x[1], 16) for x in w.vals["map"]}
    want = {"anon": ("anon-private", 8), "hidden": ("anon-private", 1),
            "shared": ("anon-shared", 0), "fpriv": ("file-private", 2),
            "fshared": ("file-shared", 0), "guard": ("anon-private", 0)}
    for k, (kind, pages) in want.items():
        v = vma_at(addr[k])
        check(v is not None and v["kind"] == kind and v["pages"] == pages,
              f"mappings: {k} is {kind} with {pages} pages stored "
              f"(got {v and v['kind']}, {v and v['pages']})")
    sh = vma_at(addr["shared"])
    check(sh and sh.get("shmem_pages") == 5, "mappings: shared anon: 5 pages in its shmem space")
    sn, sp = img["snapshot"], p["space"]
    check(page(w.name, sn, sp, addr["anon"] // PG + 3) == pattern_page(4, 3),
          "mappings: anon page 3 bytes")
    check(page(w.name, sn, sp, addr["hidden"] // PG + 1) == pattern_page(5, 1),
          "mappings: PROT_NONE page bytes")
    check(page(w.name, sn, sp, addr["fpriv"] // PG + 5) == pattern_page(8, 5),
          "mappings: modified private file page bytes")
    check(sh and page(w.name, sn, sh["shmem_space"], 2) == pattern_page(6, 2),
          "mappings: shared anon page 2 bytes")
    kinds = {v["path"] for v in p["mm"]["vmas"] if v["kind"] == "special"}
    check("[vdso]" in kinds, f"mappings: special mappings kept by name: {sorted(kinds)}")
    out = w.finish()
    check(out.endswith("PASS"), f"mappings: memory intact after snap: {out[-80:]}")


REFUSED = (
    # kind given to zdtm_refused, what the refusal must say (FD: its fd)
    ("socket", ["fd FD: a queued message carries file descriptors", "cannot be saved yet",
                "netlink socket, NETLINK_ROUTE"]),
    ("flightheld", ["fd FD: a queued message carries file descriptors", "cannot be saved yet",
                    "eventfd", "holds it too"]),
    ("io_uring", ["cannot capture fd FD (io_uring instance", "not supported yet"]),
    ("fanotify", ["cannot capture fd FD (fanotify group", "not supported yet"]),
    ("userfaultfd", ["cannot capture fd FD (userfaultfd of the program's own", "not supported yet"]),
    ("perf_event", ["cannot capture fd FD (perf_event counter", "not supported yet"]),
    ("bpf", ["cannot capture fd FD (BPF map", "not supported yet"]),
    ("netlink", ["cannot capture fd FD (netlink socket, NETLINK_ROUTE", "not supported yet"]),
    ("packet", ["cannot capture fd FD (packet socket, raw", "not supported yet"]),
    ("mqueue", ["cannot capture fd FD (POSIX message queue", "not supported yet"]),
    ("pidfd", ["fd FD: a pidfd to pid", "that several processes of the group share",
               "cannot be saved yet"]),
)


def t_refused():
    for kind, words in REFUSED:
        w = zdtm("refused", kind)
        before = maps(w.pid)
        r = cryo("adopt", str(w.pid), "--name", "ref-" + kind)
        fdn = w.vals["fd"][0][0]
        # what is refused is named, with its fd and the reason
        said = all(x.replace("FD", fdn) in r.stderr for x in words)
        check(r.returncode == 1 and said, f"refused {kind}: {r.stderr.strip()}")
        time.sleep(0.05)
        check(untouched(w.pid), f"refused {kind}: running and untraced after the refusal")
        check(maps(w.pid) == before, f"refused {kind}: no mapping left behind")
        check(not os.path.exists(os.path.join(HOME, "groups", "ref-" + kind)),
              f"refused {kind}: not registered")
        check(cryo("history", "ref-" + kind).returncode != 0, f"refused {kind}: no snapshot")
        out = w.finish()
        check(out.endswith("PASS"), f"refused {kind}: process unharmed: {out[-80:]}")


def t_traced():
    """A process someone else traces is refused, and left to its tracer."""
    st = shutil.which("strace")
    if not st:
        print("skip traced: no strace")
        return
    w = zdtm("refused", "eventfd")
    tr = subprocess.Popen([st, "-p", str(w.pid), "-o", "/dev/null"], stderr=subprocess.DEVNULL)
    for _ in range(100):
        if proc_state(w.pid)["TracerPid"] != "0":
            break
        time.sleep(0.05)
    r = cryo("adopt", str(w.pid), "--name", "traced")
    check(r.returncode == 1 and f"being traced by pid {tr.pid}" in r.stderr,
          f"traced: refused with the reason: {r.stderr.strip()}")
    check(proc_state(w.pid)["TracerPid"] == str(tr.pid), "traced: still traced by its tracer")
    tr.terminate()
    tr.wait()
    time.sleep(0.05)
    out = w.finish()
    check(out.endswith("PASS"), f"traced: process unharmed: {out[-80:]}")


def t_fault():
    w = zdtm("bigmem", "64")
    if not adopt(w, "fault"):
        return w.kill()
    before = maps(w.pid)
    env = dict(ENV, CRYO_FAULT="dump.pages.eio")
    r = cryo("snap", "fault", env=env)
    check(r.returncode == 1, f"fault: snap fails at dump.pages.eio: {r.stderr.strip()}")
    check(len(history("fault")) == 1, "fault: no second snapshot")
    check(untouched(w.pid) and maps(w.pid) == before, "fault: process untouched")
    check(snap("fault"), "fault: the next snap works")
    out = w.finish()
    check(out.endswith("PASS"), f"fault: memory intact: {out[-80:]}")


def t_race():
    """Kill the target while its snapshot is being taken."""
    for i, delay in enumerate((0.0, 0.005, 0.02, 0.06, 0.15)):
        name = f"race{i}"
        w = zdtm("bigmem", "256")
        if not adopt(w, name):
            w.kill()
            continue
        p = subprocess.Popen([CRYO, "snap", name], env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        w.p.kill()
        w.p.wait()
        out, err = p.communicate(timeout=120)
        snaps = history(name)
        if p.returncode == 0:
            ok = len(snaps) == 2 and inspect(name) is not None
        else:
            ok = len(snaps) == 1
        check(ok, f"race: kill after {delay * 1000:.0f} ms: snap rc {p.returncode}, "
                  f"{len(snaps)} snapshots ({err.strip()[:100]})")
    r = cryo("store", "fsck")
    check(r.returncode == 0, f"race: store fsck clean: {r.stdout.strip()[-100:]}{r.stderr.strip()}")


def t_sleep():
    p = subprocess.Popen(["sleep", "1000"])
    r = cryo("adopt", str(p.pid), "--name", "sleep")
    check(r.returncode == 0, f"sleep: adopt {r.stderr.strip()}")
    snap("sleep", 3)
    check(untouched(p.pid), "sleep: still sleeping, untraced")
    img = inspect("sleep")
    check(img and img["processes"][0]["core"]["comm"] == "sleep", "sleep: comm in the image")
    r = cryo("inspect", "sleep", "--snapshot", "2")
    check(r.returncode == 0 and "group sleep snapshot 2" in r.stdout and "threads: 1" in r.stdout
          and "[vdso]" in r.stdout and "/usr/bin/sleep" in r.stdout, "sleep: inspect (text) of snapshot 2")
    r = cryo("history", "sleep")
    check(r.returncode == 0 and r.stdout.startswith("NUMBER") and len(r.stdout.splitlines()) == 5,
          "sleep: history (text) lists 4 snapshots")
    r = cryo("freeze", "sleep")
    check(r.returncode == 0, f"sleep: freeze {r.stdout.strip()}{r.stderr.strip()}")
    p.wait(timeout=10)
    check(p.returncode == -9, "sleep: gone after freeze")
    img = inspect("sleep")
    check(img and img["frozen"], "sleep: newest snapshot is a freeze")
    check(len(history("sleep")) == 5, "sleep: 5 snapshots in history")
    with open(os.path.join(HOME, "groups", "sleep")) as f:
        check("state frozen" in f.read(), "sleep: registry says frozen")
    r = cryo("snap", "sleep")
    check(r.returncode == 1 and "frozen" in r.stderr, "sleep: snap of a frozen group refused")


PY = r"""
import signal, sys, threading, time
state = {"k%d" % i: i * i for i in range(10000)}
count = [0]
def tick():
    while True:
        count[0] += 1
        time.sleep(0.001)
threading.Thread(target=tick, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
print("ready", flush=True)
signal.sigwait([signal.SIGUSR2])
c = count[0]
time.sleep(0.05)
ok = count[0] > c and all(state["k%d" % i] == i * i for i in range(10000))
print("PASS" if ok else "FAIL", flush=True)
"""


def t_python():
    w = Workload(["python3", "-c", PY], "python")
    if adopt(w):
        snap("python", 3)
        img = inspect("python")
        check(img and len(img["processes"][0]["core"]["threads"]) == 2, "python: 2 threads")
    out = w.finish()
    check(out.endswith("PASS"), f"python: live state intact after 4 snapshots: {out[-80:]}")


def t_redis():
    exe = shutil.which("redis-server")
    if not exe:
        print("skip redis: not installed")
        return
    sock = os.path.join(HOME, "redis.sock")
    # No TCP at all (--port 0); a unix socket, as redis needs to listen.
    p = subprocess.Popen([exe, "--port", "0", "--save", "", "--appendonly", "no",
                          "--unixsocket", sock], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    cli = shutil.which("redis-cli")
    if cli:
        subprocess.run([cli, "-s", sock, "set", "k", "v42"], capture_output=True, timeout=10)
    r = cryo("adopt", str(p.pid), "--name", "redis")
    if r.returncode == 0:
        check(snap("redis", 2), "redis: snapshots")
    else:
        # An honest refusal: the reason must name the fd and its kind.
        check("cannot capture fd" in r.stderr and "not supported yet" in r.stderr,
              f"redis: refused with the reason: {r.stderr.strip()}")
        print(f"note: redis-server is refused: {r.stderr.strip()}")
    time.sleep(0.05)
    check(untouched(p.pid), "redis: still running, untraced")
    if cli:
        g = subprocess.run([cli, "-s", sock, "get", "k"], capture_output=True, text=True,
                           timeout=10)
        check(g.stdout.strip() == "v42", f"redis: answers with its data after: {g.stdout.strip()}")
    p.kill()
    p.wait()


def t_freeze_threads():
    w = zdtm("threads_regs")
    w.name = "frozen-threads"
    if not adopt(w):
        return w.kill()
    r = cryo("freeze", w.name)
    check(r.returncode == 0, f"freeze threads: {r.stdout.strip()}{r.stderr.strip()}")
    w.p.wait(timeout=10)
    check(w.p.returncode == -9, "freeze threads: process ended")
    img = inspect(w.name)
    check(img and img["frozen"] and len(img["processes"][0]["core"]["threads"]) == 9,
          "freeze threads: image holds 9 threads")


def t_roundtrip():
    """freeze -> melt -> snap -> freeze -> melt, then the workload checks
    itself. Runs only where `cryo melt` exists (the restore half)."""
    if cryo("help", "melt").returncode != 0:
        print("skip roundtrip: this cryo has no melt")
        return
    for args in (["threads_regs"], ["signals"], ["files", SCRATCH], ["mappings", SCRATCH],
                 ["bigmem", "64"]):
        name = "rt-" + args[0]
        out = os.path.join(HOME, name + ".out")
        with open(out, "w") as f:
            p = subprocess.Popen([os.path.join(WDIR, "zdtm_" + args[0]), *args[1:]], stdout=f)
        for _ in range(300):
            with open(out) as f:
                if "ready" in f.read():
                    break
            time.sleep(0.05)
        ok = cryo("adopt", str(p.pid), "--name", name).returncode == 0
        ok = ok and cryo("freeze", name).returncode == 0
        p.wait(timeout=10)
        for step in ("melt", "snap", "freeze", "melt"):
            if ok:
                r = cryo(step, name)
                ok = check(r.returncode == 0, f"roundtrip {args[0]}: {step} "
                                              f"{r.stdout.strip()}{r.stderr.strip()}")
                time.sleep(0.2)
        if not ok:
            continue
        os.kill(p.pid, signal.SIGUSR2)
        text = ""
        for _ in range(100):
            with open(out) as f:
                text = f.read()
            if "PASS" in text or "FAIL" in text:
                break
            time.sleep(0.1)
        check(text.rstrip().endswith("PASS"),
              f"roundtrip {args[0]}: state intact after 2 melts: {text.strip()[-60:]}")
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main():
    t_start = time.time()
    tests = [t_threads, t_signals, t_files, t_mappings, t_refused, t_traced, t_fault, t_race, t_sleep,
             t_python, t_redis, t_freeze_threads, t_roundtrip]
    only = os.environ.get("CRYO_IT_ONLY")
    for t in tests:
        if only and t.__name__ not in only.split(","):
            continue
        print(f"--- {t.__name__}", flush=True)
        try:
            t()
        except Exception as e:  # a crash of the driver is a failure, not a skip
            check(False, f"{t.__name__} raised {type(e).__name__}: {e}")
    print(f"{len(FAILS)} failures, {time.time() - t_start:.1f} s")
    if not FAILS:
        shutil.rmtree(HOME, ignore_errors=True)
    else:
        print(f"CRYO_HOME kept: {HOME}")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
