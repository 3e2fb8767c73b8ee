# A python3 process that forks all the time, for test_lazyfork.sh: it holds
# MIB MiB of patterned memory; every child hashes all of it, checks it
# against the hash taken at start, writes to it (plain memory, copied on
# write) and exits 0 if it matched, 1 if not. The parent checks its own copy
# every CHECK forks and appends "PASS N", "FAIL N ..." (N: forks so far) to
# OUT; a child that exits non-zero is "FAIL N child ...", and says first
# which pages it found wrong ("FAIL N in child ...").
# With QUICK_MS, while a child hashes, the parent forks a quick child every
# QUICK_MS ms that checks a few pages and exits: forks keep coming however
# long a hash takes (a slow machine), into every window a test widens.
# usage: python3 forkloop.py OUT MIB CHECK [QUICK_MS]
import ctypes
import hashlib
import os
import random
import sys
import time

out, mib, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
quick_ms = float(sys.argv[4]) if len(sys.argv) > 4 else 0
data = bytearray(mib << 20)
npages = len(data) // 4096


def head(i):
    return ((i * 4096 * 2654435761) % (1 << 64)).to_bytes(8, "little")


for i in range(npages):
    data[i * 4096:i * 4096 + 8] = head(i)
want = hashlib.sha256(data).hexdigest()


def say(line):
    with open(out, "a") as f:
        f.write(line + "\n")


def page_wrong(i):
    page = data[i * 4096:(i + 1) * 4096]
    if page[:8] == head(i) and not any(page[8:]):
        return None
    base = ctypes.addressof((ctypes.c_char * len(data)).from_buffer(data))
    what = "zeros" if not any(page) else "head %s" % bytes(page[:8]).hex()
    return "page %d at %#x: %s" % (i, base + i * 4096, what)


def bad_pages(pages):
    """Where the memory is wrong: the first few pages, their address, what
    they hold (zeros, or another head)."""
    bad = []
    for i in pages:
        w = page_wrong(i)
        if w:
            bad.append(w)
            if len(bad) == 4:
                break
    return "; ".join(bad)


def hashing_child(n):
    ok = hashlib.sha256(data).hexdigest() == want
    if not ok:
        say("FAIL %d in child %d: %s" % (n, os.getpid(),
                                         bad_pages(range(npages)) or "every page right (the hash differed)"))
    data[4096] ^= 0xff
    os._exit(0 if ok and data[4096] != data[8192] else 1)


def quick_child(n):
    bad = bad_pages(random.sample(range(npages), 16))
    if bad:
        say("FAIL %d in quick child %d: %s" % (n, os.getpid(), bad))
    os._exit(1 if bad else 0)


def reap(pid, st, n):
    if st != 0:
        say("FAIL %d child %d status %#x" % (n, pid, st))


def quick_forks(pid, n):
    """Fork quick children until the hashing child pid ends: its status.
    They are reaped as they end, never waited for one by one: a child
    the pager holds stopped a while must not stop the forks."""
    kids, main_st = set(), None
    while main_st is None or kids:
        while True:
            try:
                done, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not done:
                break
            if done == pid:
                main_st = st
            else:
                kids.discard(done)
                reap(done, st, n)
        time.sleep(quick_ms / 1000)
        if main_st is None and len(kids) < 16:
            q = os.fork()
            if q == 0:
                quick_child(n)
            kids.add(q)
    return main_st


n = 0
while True:
    n += 1
    pid = os.fork()
    if pid == 0:
        hashing_child(n)
    st = quick_forks(pid, n) if quick_ms else os.waitpid(pid, 0)[1]
    reap(pid, st, n)
    if n % every == 0:
        ok = hashlib.sha256(data).hexdigest() == want
        say("PASS %d" % n if ok else "FAIL %d: %s" % (n, bad_pages(range(npages))))
