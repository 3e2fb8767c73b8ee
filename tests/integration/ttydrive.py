#!/usr/bin/env python3
"""Drive `cryo attach NAME` on a pseudo-terminal, as a user would.

usage: ttydrive.py CRYO NAME [--rows R --cols C] [STEP...]
  STEP: "wait:SECONDS" read the screen for that long; "key:TEXT" type
  TEXT; "resize:RxC" change the window size; "detach" type Ctrl-\\.
Prints everything the screen showed, then "exit N" (attach's status)."""
import fcntl, os, pty, select, struct, sys, termios, time

cryo, name = sys.argv[1], sys.argv[2]
steps = sys.argv[3:]
rows, cols = 24, 80
if steps[:1] == ["--size"]:
    rows, cols = map(int, steps[1].split("x"))
    steps = steps[2:]

pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.execv(cryo, [cryo, "attach", name])
out = bytearray()

def read_for(secs):
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                return False
            if not d:
                return False
            out.extend(d)
    return True

for s in steps:
    kind, _, arg = s.partition(":")
    if kind == "wait":
        read_for(float(arg))
    elif kind == "key":
        os.write(fd, arg.encode())
    elif kind == "resize":
        r, c = map(int, arg.split("x"))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))
        os.kill(pid, 28)  # SIGWINCH, as a terminal emulator sends it
    elif kind == "detach":
        os.write(fd, b"\x1c")
read_for(1.0)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print(f"\nexit {os.waitstatus_to_exitcode(status)}")
