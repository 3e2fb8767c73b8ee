# A python3 program with MIB MiB of patterned memory that checks itself:
# every INTERVAL s it hashes all of it and appends "N PASS" or "N FAIL" to
# OUT (N counts the checks, so a test sees it go on after a melt).
# usage: python3 memcheck.py OUT MIB INTERVAL
import hashlib
import sys
import time

out, mib, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
data = bytearray(mib << 20)
for i in range(0, len(data), 4096):
    data[i:i + 8] = ((i * 2654435761) % (1 << 64)).to_bytes(8, "little")
want = hashlib.sha256(data).hexdigest()
n = 0
while True:
    n += 1
    ok = hashlib.sha256(data).hexdigest() == want
    with open(out, "a") as f:
        f.write("%d %s\n" % (n, "PASS" if ok else "FAIL"))
    time.sleep(interval)
