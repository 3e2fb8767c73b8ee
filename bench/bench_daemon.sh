#!/bin/bash
# bench_daemon: cryod's own CPU use while it keeps N idle groups (sleep
# processes) persistent at a short interval (issue 4: 50 groups, 5 s).
# Prints cryod's CPU time per second of wall time (a share of one core),
# the snapshots it took and the CPU per snapshot, beside the previous run
# (bench/results/bench_daemon.json). There is no physical limit to put
# beside it; the share of one core is the figure.
#
# usage (root): bench/bench_daemon.sh [CRYO] [GROUPS] [INTERVAL_S] [SECONDS]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
CRYO=${1:-$root/build-bench/src/cli/cryo}
N=${2:-50}
INTERVAL=${3:-5}
SECS=${4:-60}
RESULTS=${BENCH_RESULTS:-$root/bench/results/bench_daemon.json}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -x "$CRYO" ] || { echo "bench_daemon: no cryo at $CRYO (meson setup build-bench; ninja -C build-bench)" >&2; exit 1; }

export CRYO_HOME=$(mktemp -d /var/tmp/cryo-bench-daemon.XXXXXX)
pids=()
cleanup() {
	"$CRYO" daemon stop >/dev/null 2>&1 || true
	kill -9 "${pids[@]}" 2>/dev/null || true
	rm -rf "$CRYO_HOME"
}
trap cleanup EXIT

"$CRYO" store init --size 2G >/dev/null
for i in $(seq "$N"); do
	setsid sleep 100000 </dev/null >/dev/null 2>&1 &
	pids+=($!)
	disown
done
sleep 0.5
for i in $(seq "$N"); do
	"$CRYO" adopt "${pids[$((i - 1))]}" --name "idle$i" >/dev/null
done
"$CRYO" daemon start --interval "$INTERVAL" --max-age $((INTERVAL * 10)) >/dev/null
dpid=$("$CRYO" daemon status | awk 'NR == 1 {print $NF}')
ticks=$(getconf CLK_TCK)
# cryod and its worker (which does the snapshots), not yet reaped children
# included: cutime/cstime count only reaped ones
cpu() {
	local w
	w=$(pgrep -P "$dpid" -x cryod-worker | head -1)
	awk '{s += $14 + $15} END {print s}' "/proc/$dpid/stat" ${w:+"/proc/$w/stat"}
}
snaps() { "$CRYO" daemon status | awk '$1 == "group" { for (i = 3; i < NF; i++) if ($i == "weak" || $i == "force") s += $(i + 1) } END { print s + 0 }'; }
# let it take the first round, then measure a steady stretch
sleep $((INTERVAL + 2))
c0=$(cpu); s0=$(snaps); t0=$(date +%s.%N)
sleep "$SECS"
c1=$(cpu); s1=$(snaps); t1=$(date +%s.%N)

python3 - "$RESULTS" "$N" "$INTERVAL" "$c0" "$c1" "$s0" "$s1" "$t0" "$t1" "$ticks" <<'PY'
import json, os, sys
path, n, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c0, c1, s0, s1 = (int(x) for x in sys.argv[4:8])
t0, t1, ticks = float(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10])
wall = t1 - t0
cpu_s = (c1 - c0) / ticks
snaps = s1 - s0
figs = {
    "cpu_share": cpu_s / wall,
    "snapshots_per_s": snaps / wall,
    "cpu_ms_per_snapshot": cpu_s * 1e3 / snaps if snaps else float("nan"),
}
prev = {}
try:
    prev = {f["key"]: f["value"] for f in json.load(open(path)).get("figures", [])}
except Exception:
    pass
load = os.getloadavg()
print(f"bench_daemon: {n} idle groups, interval {interval:g} s, {wall:.0f} s measured; load {load[0]:.2f}")
labels = {"cpu_share": ("cryod+worker CPU, share of a core", ""),
          "snapshots_per_s": ("snapshots per second", f"expected {n / interval:.1f}"),
          "cpu_ms_per_snapshot": ("CPU per snapshot (ms)", "")}
for k, v in figs.items():
    label, extra = labels[k]
    p = prev.get(k)
    print(f"  {label:<34} {v:10.4f} | prev {p if p is not None else '-':>10} {extra}")
json.dump({"name": "bench_daemon",
           "figures": [{"key": k, "value": v} for k, v in figs.items()],
           "notes": f"{n} idle sleep groups, interval {interval:g} s, load {load[0]:.2f}"},
          open(path, "w"), indent=1)
PY
