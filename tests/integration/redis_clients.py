#!/usr/bin/env python3
"""Redis clients that reconnect, for test_redis.sh: N threads, each on
one persistent connection, SET c<K>:<i> <i> for i = 0, 1, ...; on a reset
or end of file it connects again and sends the unanswered command again.

    redis_clients.py PORT N STATUSFILE STOPFILE

STATUSFILE, kept up to date: one line per client
    client K acked A reconnects R errors E
acked: replies +OK received (those keys must all be in redis); errors:
replies that were not +OK. Ends when STOPFILE exists (or after 10 min)."""
import os
import socket
import sys
import threading
import time


def main():
    port, n, statusfile, stopfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    state = [[0, 0, 0] for _ in range(n)]
    lock = threading.Lock()
    deadline = time.monotonic() + 600

    def write_status():
        with lock:  # one writer at a time: they share the temporary file
            text = "".join("client %d acked %d reconnects %d errors %d\n" % (k, *s)
                           for k, s in enumerate(state))
            with open(statusfile + ".tmp", "w") as f:
                f.write(text)
            os.replace(statusfile + ".tmp", statusfile)

    def connect():
        while time.monotonic() < deadline and not os.path.exists(stopfile):
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                time.sleep(0.05)
        return None

    def run(k):
        s, buf = connect(), b""
        while s and time.monotonic() < deadline and not os.path.exists(stopfile):
            i = state[k][0]
            cmd = b"SET c%d:%d %d\r\n" % (k, i, i)
            try:
                s.sendall(cmd)
                while b"\r\n" not in buf:
                    data = s.recv(4096)
                    if not data:
                        raise ConnectionResetError("end of file")
                    buf += data
            except OSError:
                s.close()
                buf = b""
                state[k][1] += 1
                s = connect()
                continue
            line, buf = buf.split(b"\r\n", 1)
            if line == b"+OK":
                state[k][0] += 1
            else:
                state[k][2] += 1
            write_status()
            time.sleep(0.005)
        if s:
            s.close()

    write_status()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    write_status()


if __name__ == "__main__":
    main()
