#!/usr/bin/env bash
# The cryo demo: install dependencies, build, then
#  1. a real process (python3 counting in memory) is adopted and snapshotted,
#     killed with kill -9, and melted: it counts on from its snapshot, same pid;
#  2. the store survives a power cut in the middle of a commit.
#
# Snapshots are taken by hand here (`cryo snap`): the daemon that takes them
# by itself is not built yet. Everything runs in a temporary CRYO_HOME;
# nothing under /var/lib/cryo is touched. Needs root (ptrace, clone3 set_tid).
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "installing dependencies"
bash scripts/deps.sh

say "building cryo"
if [ ! -f build/build.ninja ]; then
	meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build >/dev/null
CRYO=$(pwd)/build/src/cli/cryo
cryo() { "$CRYO" "$@"; }

CRYO_HOME=$(mktemp -d "${TMPDIR:-/tmp}/cryo-demo.XXXXXX")
export CRYO_HOME
trap 'rm -rf "$CRYO_HOME"' EXIT
echo "CRYO_HOME=$CRYO_HOME"

say "a new store: one sparse 256 MiB file, cut into 1 MiB segments"
run cryo store init --size 256M --segment-size 1M

say "a real process: python3 counting in memory, 10 times a second"
out=$CRYO_HOME/counter.out
(setsid python3 -u -c '
import time
n = 0
while True:
    n += 1
    print("count", n)
    time.sleep(0.1)
' </dev/null 2>&1 | cat >>"$out") &
disown
for _ in $(seq 50); do
	PID=$(pgrep -n -f 'print\("count", n\)' || true)
	[ -n "$PID" ] && [ -s "$out" ] && break
	sleep 0.1
done
[ -n "$PID" ] || { echo "demo: FAILED: the counter did not start" >&2; exit 1; }
cleanup_counter() { kill -9 "$PID" 2>/dev/null || true; }
trap 'cleanup_counter; rm -rf "$CRYO_HOME"' EXIT
sleep 1
run cryo adopt "$PID" --name counter
sleep 1
run cryo snap counter
at_snap=$(tail -n 1 "$out")
echo "(around the snapshot it had printed: $at_snap)"
sleep 1
at_kill=$(tail -n 1 "$out")
echo "(it went on to: $at_kill)"

say "kill -9: the process is gone, its memory with it"
run kill -9 "$PID"
sleep 0.3
[ ! -d /proc/"$PID" ] || [ "$(awk '/^State:/ {print $2}' /proc/"$PID"/status)" = Z ] ||
	{ echo "demo: FAILED: $PID still alive after kill -9" >&2; exit 1; }

say "melt: the process comes back from its snapshot, with its pid"
run cryo melt counter
sleep 1
log=$CRYO_HOME/log/counter.log
echo "(its stdout went to a pipe whose reader is gone; by policy it is now appended to $log)"
first=$(head -n 1 "$log"); last=$(tail -n 1 "$log")
echo "after melt it printed: $first ... $last"
n_snap=${at_snap#count }; n_kill=${at_kill#count }; n_first=${first#count }
# the snapshot was taken a moment before $at_snap was read: it resumes
# within a few counts of it, well below where it was when killed
if [ "$n_first" -lt $((n_snap - 5)) ] || [ "$n_first" -gt $((n_snap + 1)) ] ||
   [ "$n_first" -ge "$n_kill" ] || [ "$(cat /proc/"$PID"/comm)" != python3 ]; then
	echo "demo: FAILED: expected pid $PID counting on from about $n_snap, got '$first'" >&2
	exit 1
fi
echo "pid $PID counts on from its snapshot (killed at $at_kill, back at $first): its memory came back"
cleanup_counter

say "three snapshots of an object 'editor': one full, two incremental"
run cryo store demo-write editor --pages 8192
run cryo store demo-write editor --change 5
run cryo store demo-write editor --change 2
echo "(an incremental snapshot writes only the changed pages and index nodes)"
run cryo store ls

# Keep a few pages of each snapshot to compare after the power cut.
ref=$CRYO_HOME/ref
mkdir "$ref"
for sn in 1 2 3; do
	for vpn in 0 7 100 4095 8191; do
		cryo store cat editor $sn $vpn >"$ref/$sn.$vpn"
	done
done

say "power cut: a fourth snapshot (all 8192 pages rewritten) is killed in the middle of its commit"
echo "(CRYO_FAULT=store.commit.crash@5 makes the writer SIGKILL itself just before the 5th chunk"
echo " of its commit goes to disk, as a power cut would stop it: 4 chunks are written, the commit is not)"
printf '$ CRYO_FAULT=store.commit.crash@5 cryo store demo-write editor --change 100\n'
set +e
CRYO_FAULT=store.commit.crash@5 "$CRYO" store demo-write editor --change 100
rc=$?
set -e
if [ $rc -ne 137 ]; then
	echo "demo: FAILED: the writer exited with $rc instead of being killed (137)" >&2
	exit 1
fi
echo "(the writer died: exit $rc = killed by SIGKILL)"

say "after the cut: the store opens, recovers, and checks clean"
run cryo store fsck
run cryo store ls

n=$(cryo store ls editor --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
if [ "$n" != 3 ]; then
	echo "demo: FAILED: expected snapshots 1-3 after the cut, found $n" >&2
	exit 1
fi
bad=0
for sn in 1 2 3; do
	for vpn in 0 7 100 4095 8191; do
		cryo store cat editor $sn $vpn | cmp -s - "$ref/$sn.$vpn" || bad=$((bad + 1))
	done
done
if [ $bad -ne 0 ]; then
	echo "demo: FAILED: $bad sampled pages differ after the cut" >&2
	exit 1
fi
echo "snapshots 1-3 are intact (15 sampled pages byte-identical); the cut snapshot 4 is not there"

say "life goes on: the next snapshot commits as number 4"
run cryo store demo-write editor --change 1
run cryo store stat

say "demo: OK"
