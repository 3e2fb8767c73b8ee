#!/usr/bin/env python3
"""UDP sockets with datagrams queued across freeze and melt, for
test_tcp.sh. Binds `a` (unconnected) and `b` (connected to PEERPORT) on
loopback, writes "APORT BPORT" to PORTFILE, waits for SIGUSR1 without
reading, then reads what is queued: `a` must hold a-0 .. a-4, each from
SRCPORT, `b` must hold b-0 .. b-4 from PEERPORT and still be connected to
it. Writes "PASS ..." or "FAIL ..." to RESULT.

    udpq.py PORTFILE RESULT PEERPORT SRCPORT"""
import os
import signal
import socket
import sys

portfile, result, peer, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
N = 5


def finish(ok, msg):
    with open(result, "a") as f:
        f.write("%s %s\n" % ("PASS" if ok else "FAIL", msg))
    sys.exit(0 if ok else 1)


signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a.bind(("127.0.0.1", 0))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.bind(("127.0.0.1", 0))
b.connect(("127.0.0.1", peer))
with open(portfile + ".tmp", "w") as f:
    f.write("%d %d\n" % (a.getsockname()[1], b.getsockname()[1]))
os.replace(portfile + ".tmp", portfile)
signal.sigwait([signal.SIGUSR1])
for s, name, port in ((a, "a", src), (b, "b", peer)):
    s.setblocking(False)
    for i in range(N):
        try:
            data, frm = s.recvfrom(100)
        except BlockingIOError:
            finish(False, "%s: only %d datagrams" % (name, i))
        want = ("%s-%d" % (name, i)).encode()
        if data != want or frm != ("127.0.0.1", port):
            finish(False, "%s: datagram %d is %r from %r, want %r from port %d" %
                   (name, i, data, frm, want, port))
    try:
        extra = s.recv(100)
        finish(False, "%s: an extra datagram %r" % (name, extra))
    except BlockingIOError:
        pass
if b.getpeername() != ("127.0.0.1", peer):
    finish(False, "b is connected to %r" % (b.getpeername(),))
finish(True, "udp: %d datagrams queued on each socket, in order, from their sources; "
       "b still connected" % N)
