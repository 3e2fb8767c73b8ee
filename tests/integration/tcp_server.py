#!/usr/bin/env python3
"""The peer outside the group for tcpconv.c: per connection, sends stream 1
at a steady rate (it goes on while the client is frozen: its bytes wait in
its send buffer and are retransmitted) and checks stream 0, byte by byte.

    tcp_server.py PORTFILE STATUSFILE TOTAL

Writes the port it listens on (loopback, chosen by the kernel) to PORTFILE,
and keeps STATUSFILE up to date, one line per connection:
    conn N sent S recv R open|ok|bad:REASON|closed:REASON
ok: both streams complete and byte-exact; closed: the connection ended
before (reset or end of file), with the bytes until then exact."""
import os
import socket
import sys
import threading
import time

CHUNK = 8192
TICK = 0.01
PERIOD_MS = 500  # reading pauses for 4/5 of each period (see tcpconv.c)


def stream_byte(stream, i):
    return (i * 131 + (i >> 13) * 7 + stream * 29) & 0xFF


def stream_bytes(stream, start, n):
    return bytes(stream_byte(stream, i) for i in range(start, start + n))


class Conn:
    def __init__(self, n):
        self.n, self.sent, self.recv, self.state = n, 0, 0, "open"


def main():
    portfile, statusfile, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conns, lock = [], threading.Lock()

    def write_status():
        with lock:  # one writer at a time: they share the temporary file
            text = "".join("conn %d sent %d recv %d %s\n" % (c.n, c.sent, c.recv, c.state)
                           for c in conns)
            tmp = statusfile + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, statusfile)

    def serve(sock, c):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        deadline = time.monotonic() + 600
        try:
            while (c.sent < total or c.recv < total) and time.monotonic() < deadline:
                if c.sent < total and not pending:
                    pending = stream_bytes(1, c.sent, min(CHUNK, total - c.sent))
                if pending:
                    try:
                        n = sock.send(pending)
                        c.sent += n
                        pending = pending[n:]
                    except BlockingIOError:
                        pass
                try:
                    # (once all is in, the client may be gone: no end of file to see)
                    if c.recv == total or time.monotonic() * 1000 % PERIOD_MS >= PERIOD_MS / 5:
                        raise BlockingIOError
                    data = sock.recv(65536)
                    if not data:
                        c.state = "closed:eof"
                        return
                    if data != stream_bytes(0, c.recv, len(data)):
                        c.state = "bad:stream-0-at-%d" % c.recv
                        return
                    c.recv += len(data)
                except BlockingIOError:
                    pass
                write_status()
                time.sleep(TICK)
            c.state = "ok" if c.sent == total and c.recv == total else "bad:timeout"
        except OSError as e:
            c.state = "closed:%s" % (e.strerror or e).replace(" ", "-")
        finally:
            write_status()
            time.sleep(0.5)
            sock.close()

    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.replace(tmp, portfile)
    write_status()
    ls.settimeout(600)
    while True:
        try:
            s, _ = ls.accept()
        except OSError:
            return
        with lock:
            c = Conn(len(conns) + 1)
            conns.append(c)
        threading.Thread(target=serve, args=(s, c), daemon=True).start()


if __name__ == "__main__":
    main()
