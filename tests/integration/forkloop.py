# A python3 process that forks all the time, for test_lazyfork.sh: it holds
# MIB MiB of patterned memory; every child hashes all of it, checks it
# against the hash taken at start, writes to it (plain memory, copied on
# write) and exits 0 if it matched, 1 if not. The parent checks its own copy
# every CHECK forks and appends "PASS N", "FAIL N ..." (N: forks so far) to
# OUT; a child that exits non-zero is "FAIL N child ...".
# usage: python3 forkloop.py OUT MIB CHECK
import hashlib
import os
import sys

out, mib, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = bytearray(mib << 20)
for i in range(0, len(data), 4096):
    data[i:i + 8] = ((i * 2654435761) % (1 << 64)).to_bytes(8, "little")
want = hashlib.sha256(data).hexdigest()


def say(line):
    with open(out, "a") as f:
        f.write(line + "\n")


n = 0
while True:
    n += 1
    pid = os.fork()
    if pid == 0:
        ok = hashlib.sha256(data).hexdigest() == want
        data[4096] ^= 0xff
        os._exit(0 if ok and data[4096] != data[8192] else 1)
    _, st = os.waitpid(pid, 0)
    if st != 0:
        say("FAIL %d child %d status %#x" % (n, pid, st))
    if n % every == 0:
        ok = hashlib.sha256(data).hexdigest() == want
        say("%s %d" % ("PASS" if ok else "FAIL", n))
