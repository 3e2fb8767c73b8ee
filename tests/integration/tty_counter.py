#!/usr/bin/env python3
"""A program that lives on a terminal, for test_term.sh: prints "count N"
every 0.2 s; keys: '+' adds 1000, 's' prints the window size, 't' prints
its terminal settings, 'q' exits with status 3. It puts the terminal in
cbreak mode without echo, so a melt that loses the settings shows."""
import os, select, signal, sys, termios, tty, fcntl, struct

def size():
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
    return f"{rows}x{cols}"

if not os.isatty(0):
    print("FAIL: stdin is not a terminal", flush=True)
    sys.exit(1)
tty.setcbreak(0)
a = termios.tcgetattr(0)
a[3] &= ~termios.ECHO
termios.tcsetattr(0, termios.TCSANOW, a)
signal.signal(signal.SIGWINCH, lambda s, f: print(f"winch {size()}", flush=True))
n = 0
print(f"tty ok on {os.ttyname(0)}", flush=True)
while True:
    r, _, _ = select.select([0], [], [], 0.2)
    if r:
        k = os.read(0, 1)
        if k == b"+":
            n += 1000
        elif k == b"s":
            print(f"size {size()}", flush=True)
        elif k == b"t":
            l = termios.tcgetattr(0)[3]
            print("settings echo=%s icanon=%s ctty=%s" % (
                "on" if l & termios.ECHO else "off", "on" if l & termios.ICANON else "off",
                "yes" if os.tcgetpgrp(0) == os.getpgrp() else "no"), flush=True)
        elif k == b"q":
            sys.exit(3)
    else:
        n += 1
        print(f"count {n}", flush=True)
