#!/usr/bin/env python3
"""A program that holds a pty of its own (python's pty module, as tmux,
script or expect do): bash runs on the slave as its session leader with
the slave as its controlling terminal; we talk to it through the master.
Each round sends `echo R<3*i> $(stty size) $(tty)` and expects the answer
with the window size we set (33x77) and a /dev/pts path; writes
"PASS i" or, for a wrong answer, "FAIL i ..." to LOG. An answer that does
not come in 3 s (bytes in flight when frozen are not kept) is "LOST i",
and the next round goes on.
usage: ptyconv.py LOG"""
import fcntl, os, pty, select, struct, sys, termios, time

log = open(sys.argv[1], "a", buffering=1)
pid, m = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 77, 0, 0))
buf = b""


def answer(i, secs):
    """The line R<3i> ... or None."""
    global buf
    want = b"R%d " % (3 * i)
    end = time.time() + secs
    while time.time() < end:
        k = buf.find(want)
        if k >= 0 and buf.find(b"\n", k) > 0:
            line = buf[k:buf.find(b"\n", k)].strip()
            buf = buf[buf.find(b"\n", k) + 1:]
            return line
        r, _, _ = select.select([m], [], [], 0.1)
        if r:
            try:
                d = os.read(m, 4096)
            except OSError:
                return None
            if not d:
                return None
            buf += d
    return None


os.write(m, b"PS1=; stty -echo\n")
i = 0
while True:
    i += 1
    os.write(m, b"echo R$((%d*3)) $(stty size) $(tty)\n" % i)
    line = answer(i, 3)
    if line is None:
        log.write("LOST %d\n" % i)
        continue
    f = line.split()
    ok = len(f) == 4 and f[1:3] == [b"33", b"77"] and f[3].startswith(b"/dev/pts/")
    log.write("%s %d %s\n" % ("PASS" if ok else "FAIL", i, line.decode(errors="replace")))
    time.sleep(0.2)
