#!/usr/bin/env python3
"""docs/FORMAT.md must carry every OFFSET SIZE DESCRIPTION table of
src/store/format.h, row for row (whitespace aside), and name every crash
invariant I1..I8 the header states. Prints PASS/FAIL lines."""
import re
import sys

root = sys.argv[1]
hdr = open(f"{root}/src/store/format.h").read()
doc = open(f"{root}/docs/FORMAT.md").read()


def norm(s):
    return " ".join(s.split())


# Table rows: comment lines after an "OFFSET SIZE DESCRIPTION" line, up to
# the end of that comment; a row starts with an offset (and usually a size),
# continuation lines are indented text.
rows = []
for block in re.findall(r"/\*(.*?)\*/", hdr, re.S):
    lines = [re.sub(r"^\s*\* ?", "", l) for l in block.splitlines()]
    in_table = False
    for l in lines:
        if "OFFSET SIZE DESCRIPTION" in l:
            in_table = True
            continue
        if in_table:
            if not l.strip():
                in_table = False
                continue
            rows.append(norm(l))

doc_norm = norm(doc)
npass = nfail = 0
for r in rows:
    if r in doc_norm:
        npass += 1
    else:
        nfail += 1
        print(f"FAIL: format.h table row missing from FORMAT.md: {r}")
print(f"{'PASS' if not nfail else 'FAIL'}: {npass} of {len(rows)} table rows of format.h are in FORMAT.md")

for inv in re.findall(r"^ \* (I[0-9]+)\s", hdr, re.M):
    if re.search(rf"\*\*{inv}\b", doc):
        npass += 1
        print(f"PASS: FORMAT.md states {inv}")
    else:
        nfail += 1
        print(f"FAIL: FORMAT.md does not state {inv}")
if not rows:
    nfail += 1
    print("FAIL: no tables found in format.h")
print(f"{npass} passed, {nfail} failed")
sys.exit(1 if nfail else 0)
