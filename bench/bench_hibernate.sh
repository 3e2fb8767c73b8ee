#!/bin/bash
# bench_hibernate: `cryo hibernate` and `cryo resume` of 8 groups totalling
# 4 GiB (issue 5). Each group is a python3 process with 512 MiB of random
# (incompressible) bytes, adopted (its first snapshot), then rewriting one
# page in ten, so hibernate writes ~10% of the memory. Printed beside, from
# the same run: the disk's write bandwidth for the bytes hibernate wrote
# (dd, fdatasync), and for resume the time to read the same 4 GiB of image
# from a cold page cache (dd), beside the previous run
# (bench/results/bench_hibernate.json).
#
# Also printed: the CPU time hibernate used (user + sys, its threads
# included) beside its wall time. Freezes run one after another; when the
# CPU time is nearly the wall time, hibernate is one core's work, and the
# most a parallel capture could give on this 2-core machine is half of it
# -- with one store writer, and only if the second core is free. BUSY=1: each group spins on a CPU between its
# snapshots (hibernate stops every group first: the syscalls a freeze
# injects run in the group's own threads, which would otherwise wait
# behind the groups still running).
#
# usage (root): [BUSY=1] bench/bench_hibernate.sh [CRYO] [GROUPS] [MIB_EACH]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
CRYO=${1:-$root/build-bench/src/cli/cryo}
N=${2:-8}
MIB=${3:-512}
BUSY=${BUSY:-0}
RESULTS=${BENCH_RESULTS:-$root/bench/results/bench_hibernate.json}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -x "$CRYO" ] || { echo "bench_hibernate: no cryo at $CRYO (bench/run.sh builds it)" >&2; exit 1; }

export CRYO_HOME=$(mktemp -d /var/tmp/cryo-bench-hib.XXXXXX)
pids=()
cleanup() {
	kill -9 "${pids[@]}" 2>/dev/null || true
	for g in $(seq "$N"); do kill -9 "$(cat "$CRYO_HOME/g$g.pid" 2>/dev/null)" 2>/dev/null || true; done
	rm -rf "$CRYO_HOME"
}
trap cleanup EXIT
now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

"$CRYO" store init --size $((N * MIB * 3 + 1024))M >/dev/null
for i in $(seq "$N"); do
	setsid python3 -c '
import os, signal, sys, time
b = bytearray(os.urandom(int(sys.argv[1]) << 20))
def rewrite(sig, frame):
    for i in range(0, len(b), 40960):
        b[i:i + 8] = os.urandom(8)
signal.signal(signal.SIGUSR1, rewrite)
open(sys.argv[2], "w").write("ready")
while True:
    if sys.argv[3] == "1":
        sum(range(100000))
    else:
        time.sleep(1)
' "$MIB" "$CRYO_HOME/ready$i" "$BUSY" </dev/null >/dev/null 2>&1 &
	pids+=($!)
	disown
done
for i in $(seq "$N"); do
	until [ -s "$CRYO_HOME/ready$i" ]; do sleep 0.1; done
	"$CRYO" adopt "${pids[$((i - 1))]}" --name "g$i" >/dev/null
done
kill -USR1 "${pids[@]}"
sleep 2
drop
t0=$(now)
/usr/bin/time -f "%U %S" -o "$CRYO_HOME/hib.cpu" "$CRYO" hibernate --json >"$CRYO_HOME/hib.json"
t1=$(now)
sleep 2 # pid 1 reaps the frozen processes
drop
t2=$(now)
"$CRYO" resume --json >"$CRYO_HOME/res.json"
t3=$(now)
while ls "$CRYO_HOME"/pager/*.state >/dev/null 2>&1; do sleep 0.01; done
t4=$(now)
alive=0
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done

# limits, same run
dd if=/dev/zero of="$CRYO_HOME/ddw" bs=4M count=256 conv=fdatasync 2>"$CRYO_HOME/ddw.txt"
rm -f "$CRYO_HOME/ddw"
drop
dd if="$CRYO_HOME/store" of=/dev/null bs=4M count=$((N * MIB / 4)) 2>"$CRYO_HOME/ddr.txt"

python3 - "$RESULTS" "$N" "$MIB" "$t0" "$t1" "$t2" "$t3" "$t4" "$alive" \
	"$CRYO_HOME/hib.json" "$CRYO_HOME/res.json" "$CRYO_HOME/ddw.txt" "$CRYO_HOME/ddr.txt" \
	"$CRYO_HOME/hib.cpu" "$BUSY" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, re, sys
path, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2, t3, t4 = (float(x) for x in sys.argv[4:9])
alive = int(sys.argv[9])
hib, res = json.load(open(sys.argv[10])), json.load(open(sys.argv[11]))
cpu = sum(float(x) for x in open(sys.argv[14]).read().split()[:2])
busy, load = sys.argv[15] == "1", sys.argv[16]
def rate(f):  # dd's bytes/s from its last line
    m = re.search(r"(\d+) bytes .* s, ", open(f).read())
    secs = float(re.search(r"copied, ([\d.]+) s", open(f).read()).group(1))
    return int(m.group(1)) / secs
wbw, rbw = rate(sys.argv[12]), rate(sys.argv[13])
written = hib["pages"] * 4096
total = n * mib << 20
figs = [
    ("hibernate_s", "hibernate (s)", t1 - t0, written / wbw,
     f"disk write of the {written / 2**20:.0f} MiB written"),
    ("hibernate_cpu_s", "hibernate, its CPU time (s)", cpu, t1 - t0,
     "its wall time; x1: one core busy all along"),
    ("resume_running_s", "resume, all running (s)", t3 - t2, None, ""),
    ("resume_all_in_s", "resume, every page in (s)", t4 - t2, total / rbw,
     f"disk read of {total / 2**20:.0f} MiB (dd, cold)"),
]
prev = {}
try:
    prev = {f["key"]: f["value"] for f in json.load(open(path)).get("figures", [])}
except Exception:
    pass
print(f"bench_hibernate: {n} groups x {mib} MiB (random bytes), 10% rewritten after the first "
      f"snapshot{', each spinning on a CPU' if busy else ''}; frozen {hib['frozen']}, "
      f"melted {res['melted']}, {alive} running after; load average {load} at the end")
for key, label, v, lim, ll in figs:
    p = prev.get(key)
    lims = f"limit {lim:8.3f} ({ll}), x{v / lim:.2f}" if lim else ""
    ps = f"{p:8.3f}" if p is not None else f"{'-':>8}"
    print(f"  {label:<28} {v:9.3f} | prev {ps} | {lims}")
json.dump({"name": "bench_hibernate",
           "figures": [{"key": k, "value": v} for k, _, v, _, _ in figs],
           "notes": f"{n} groups x {mib} MiB{' busy' if busy else ''}; disk write {wbw / 1e6:.0f} MB/s, "
                    f"read {rbw / 1e6:.0f} MB/s; load {load}"},
          open(path, "w"), indent=1)
PY
