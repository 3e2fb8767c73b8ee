# A python3 process tree for test_lazytree.sh: the root and KIDS children,
# each with MIB MiB of patterned memory of its own; each hashes all of it
# every INTERVAL s and appends "NAME N PASS" or "NAME N FAIL" to OUT (NAME:
# root, kid1, kid2, ...; N counts its checks).
#
# While OUT.hold exists nobody checks (the test keeps pages out). Once
# OUT.fork exists the root forks "fork", which waits for OUT.go2, then
# checks its copy of the root's memory the same way.
# usage: python3 memtree.py OUT MIB KIDS INTERVAL
import hashlib
import os
import sys
import time

out, mib, kids, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


def pattern(seed):
    data = bytearray(mib << 20)
    for i in range(0, len(data), 4096):
        data[i:i + 8] = (((i + seed) * 2654435761) % (1 << 64)).to_bytes(8, "little")
    return data


def say(line):
    with open(out, "a") as f:
        f.write(line + "\n")


def checking(name, data, want, may_fork):
    n = 0
    forked = False
    while True:
        while True:
            if may_fork and not forked and os.path.exists(out + ".fork"):
                forked = True
                if os.fork() == 0:
                    while not os.path.exists(out + ".go2"):
                        time.sleep(0.02)
                    checking("fork", data, want, False)
            if not os.path.exists(out + ".hold"):
                break
            time.sleep(0.02)
        n += 1
        ok = hashlib.sha256(data).hexdigest() == want
        say("%s %d %s" % (name, n, "PASS" if ok else "FAIL"))
        time.sleep(interval)


for k in range(1, kids + 1):
    if os.fork() == 0:
        mine = pattern(k)
        checking("kid%d" % k, mine, hashlib.sha256(mine).hexdigest(), False)
root = pattern(0)
checking("root", root, hashlib.sha256(root).hexdigest(), True)
