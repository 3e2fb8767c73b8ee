"""Two python processes talking over a socketpair, for test_tree.sh.

The parent sends a number, the child answers with the number plus one; the
parent checks every answer and appends "ok N" to LOG each 100 rounds, or
"FAIL ..." once. Some rounds leave a message queued in each direction when
cryo stops them; after a melt the conversation must go on exactly.
usage: sockpair.py LOG
"""
import os
import socket
import struct
import sys
import time

log = sys.argv[1]
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
if os.fork() == 0:
    a.close()
    while True:
        n = struct.unpack("<Q", b.recv(8))[0]
        time.sleep(0.001)
        b.send(struct.pack("<Q", n + 1))
b.close()
n = 0
while True:
    a.send(struct.pack("<Q", n))
    a.send(struct.pack("<Q", n + 1000000000))   # a second message queued behind
    got = struct.unpack("<Q", a.recv(8))[0]
    got2 = struct.unpack("<Q", a.recv(8))[0]
    with open(log, "a") as f:
        if got != n + 1 or got2 != n + 1000000001:
            f.write(f"FAIL sent {n} got {got} {got2}\n")
            sys.exit(1)
        if n % 100 == 0:
            f.write(f"ok {n}\n")
    n += 1
