# A live counter for the daemon and recover tests: counts in memory and
# writes the count to FILE (atomically) every PERIOD seconds. After a melt
# it goes on from the count its snapshot held.
# usage: python3 counter.py FILE PERIOD
import os
import sys
import time

path, period = sys.argv[1], float(sys.argv[2])
n = 0
while True:
    n += 1
    with open(path + ".tmp", "w") as f:
        f.write(str(n))
    os.rename(path + ".tmp", path)
    time.sleep(period)
