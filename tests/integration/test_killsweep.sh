#!/bin/bash
# kill -9 of whatever is snapshotting or melting a group, in every state
# of every injected syscall (the fault point proc.inject.crash@N, N = 1,
# 2, ... until the command completes):
#   cryo snap    the group runs on untraced, passes its own check, no
#                snapshot appears, and a later snapshot works;
#   cryo freeze  the same, and the group is still running;
#   cryod        its worker killed while arming the write tracker on a
#                group's first snapshot: the same;
#   cryo melt    nothing half made is left (no process, no pager), the
#                group stays frozen, and a later melt works.
# The workload (sweep_workload.c) checks its read(), nanosleep(), flags
# and registers, queued signals, mask and memory.
# Default (about a minute here): every 3rd window of cryo snap, every 8th
# of freeze and arming, every 12th of melt, and the last few of each. CRYO_LONG=1: every window of
# each (about 8 minutes here).
# usage: test_killsweep.sh CRYO WORKLOAD
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
WL_BIN=${2:?usage: $0 CRYO WORKLOAD}
LONG=${CRYO_LONG:-0}
SNAP_STEP=3 STEP=8 MELT_STEP=12
[ "$LONG" = 1 ] && SNAP_STEP=1 STEP=1 MELT_STEP=1
RES=$T/result
trap 'kill -9 $WL 2>/dev/null; "$CRYO" daemon stop >/dev/null 2>&1; rm -rf "$T"' EXIT

# poll COND... for up to 5 s
until_ok() { for _ in $(seq 250); do "$@" && return 0; sleep 0.02; done; return 1; }
k=0
has_result() { grep -q "^$1 $k\b" "$RES" 2>/dev/null || grep -q "^FAIL" "$RES" 2>/dev/null; }
# ask the workload to check itself: "PASS k eintr=N"
wl_check() {
	k=$((k + 1))
	rm -f "$RES"
	kill -USR1 "$WL" 2>/dev/null || return 1
	until_ok has_result PASS
	grep -q "^PASS $k eintr=$1\$" "$RES"
}
# every thread of pid untraced and out of ptrace stops
untraced() {
	local s
	for s in /proc/$1/task/*/status; do
		[ -r "$s" ] || return 1
		grep -q "^TracerPid:[[:space:]]*0\$" "$s" || return 1
		grep -Eq "^State:[[:space:]]*[tZX]" "$s" && return 1
	done
	return 0
}
nsnaps() { "$CRYO" history sw --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
ps_state() { "$CRYO" ps --json | python3 -c "import json,sys; print({g['name']: g['state'] for g in json.load(sys.stdin)}.get('sw'))"; }
gone() { [ ! -d /proc/$1 ] || grep -Eq "^State:[[:space:]]*[ZX]" /proc/$1/status 2>/dev/null; }
no_pager() {
	local st=$CRYO_HOME/pager/sw.state p
	p=$(awk '{print $2}' "$st" 2>/dev/null)
	[ -z "$p" ] || gone "$p"
}
# windows to try, from lo to hi: every step-th, and the last three
picks() { local lo=$1 hi=$2 step=$3 n; for n in $(seq "$lo" "$hi"); do
	if [ $(( (n - lo) % step )) = 0 ] || [ "$n" -gt $((hi - 3)) ]; then echo "$n"; fi; done; }
bad=""
note_bad() { [ -n "$bad" ] || bad="$*"; }
# seconds since the section began (mark sets its start)
mark() { t_start=$(date +%s.%N); }
took() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f s", b-a}'; }

setsid "$WL_BIN" "$RES" </dev/null >/dev/null 2>&1 &
WL=$!
disown
until_ok has_result PASS
check 0 "adopt the workload" "$CRYO" adopt "$WL" --name sw
wl_check 0 && pass "the workload checks itself" || fail "workload: $(cat "$RES" 2>/dev/null)"

# ---- cryo snap ----
mark
n=1
tried=0
while :; do
	# every SNAP_STEP-th window; the count ends at the first run not killed
	if [ $(( (n - 1) % SNAP_STEP )) != 0 ]; then
		n=$((n + 1))
		continue
	fi
	before=$(nsnaps)
	env CRYO_FAULT=proc.inject.crash@$n "$CRYO" snap sw >/dev/null 2>&1
	rc=$?
	[ $rc = 0 ] && break
	[ $rc = 137 ] || { note_bad "snap, window $n: exit $rc, not killed"; break; }
	until_ok untraced "$WL" || note_bad "snap, window $n: the group is traced, stopped or dead"
	wl_check 0 || note_bad "snap, window $n: the workload says $(cat "$RES" 2>/dev/null)"
	[ "$(nsnaps)" = "$before" ] || note_bad "snap, window $n: a snapshot appeared ($before -> $(nsnaps))"
	"$CRYO" snap sw >/dev/null 2>&1 || note_bad "snap, window $n: a later snapshot failed"
	tried=$((tried + 1))
	n=$((n + 1))
	[ $n -gt 400 ] && { note_bad "snap: no end after 400 windows"; break; }
done
# the windows: up to the first run that completed (within SNAP_STEP)
W_SNAP=$((n - 1))
[ -z "$bad" ] && [ "$tried" -gt 10 ] &&
	pass "cryo snap killed in $tried of its ~$W_SNAP windows (every $SNAP_STEP): the group ran on untraced, passed its check, no snapshot appeared, a later one worked ($(took))" ||
	fail "cryo snap sweep ($tried windows): ${bad:-too few windows}"

# ---- cryod's worker arming the tracker ----
mark
# Where the arming starts: the windows of the worker's first snapshot of
# the group before its userfaultfd, from a debug log of one clean run.
bad=""
# cryod, then a force snapshot of every group asked for (SIGUSR2)
dstart() {
	env "$@" "$CRYO" daemon start --interval 100 --max-age 200 --tick 100 >/dev/null 2>&1 || return 1
	kill -USR2 "$("$CRYO" daemon status | awk 'NR == 1 {print $NF}')"
}
LOG=$CRYO_HOME/log/cryod.log
logged() { grep -q "$1" "$LOG" 2>/dev/null; }
rm -f "$LOG"
dstart CRYO_LOG=debug
until_ok logged "snapshot [0-9]* of sw" || note_bad "cryod took no snapshot of sw"
"$CRYO" daemon stop >/dev/null 2>&1
first=$(awk '/injection window/ {n++} /a userfaultfd made inside it/ {print n; exit}' "$LOG")
total=$(awk '/injection window/ {n++} /snapshot [0-9]* of sw/ {print n; exit}' "$LOG")
if [ -z "$first" ] || [ -z "$total" ]; then
	note_bad "no arming in the log of cryod's first snapshot"
	first=0 total=0
fi
lo=$((first + 1))
[ "$LONG" = 1 ] && lo=1
tried=0
for n in $(picks "$lo" "$total" "$STEP"); do
	rm -f "$LOG"
	# a new worker each time: it arms on its first snapshot of a group
	dstart CRYO_FAULT=proc.inject.crash@$n
	until_ok logged "the worker died during a snapshot of sw" || note_bad "arming, window $n: the worker was not killed"
	"$CRYO" daemon stop >/dev/null 2>&1
	until_ok untraced "$WL" || note_bad "arming, window $n: the group is traced, stopped or dead"
	wl_check 0 || note_bad "arming, window $n: the workload says $(cat "$RES" 2>/dev/null)"
	tried=$((tried + 1))
done
"$CRYO" snap sw >/dev/null 2>&1 || note_bad "arming: a later snapshot failed"
[ -z "$bad" ] && [ "$tried" -gt 2 ] &&
	pass "cryod's worker killed in $tried windows of arming the tracker (windows $lo-$total of its first snapshot): the group ran on untraced and passed its check ($(took))" ||
	fail "arming sweep: ${bad:-too few windows ($tried)}"

# ---- cryo freeze ----
mark
bad=""
tried=0
for n in $(picks 1 "$((W_SNAP + SNAP_STEP))" "$STEP"); do
	before=$(nsnaps)
	env CRYO_FAULT=proc.inject.crash@$n "$CRYO" freeze sw >/dev/null 2>&1
	rc=$?
	[ $rc = 0 ] && break
	[ $rc = 137 ] || { note_bad "freeze, window $n: exit $rc, not killed"; break; }
	until_ok untraced "$WL" || note_bad "freeze, window $n: the group is traced, stopped or dead"
	wl_check 0 || note_bad "freeze, window $n: the workload says $(cat "$RES" 2>/dev/null)"
	[ "$(nsnaps)" = "$before" ] || note_bad "freeze, window $n: a snapshot appeared"
	[ "$(ps_state)" = running ] || note_bad "freeze, window $n: ps says $(ps_state)"
	tried=$((tried + 1))
done
[ -z "$bad" ] && [ "$tried" -gt 2 ] &&
	pass "cryo freeze killed in $tried of its windows: the group ran on untraced, passed its check, stayed running ($(took))" ||
	fail "freeze sweep: ${bad:-too few windows ($tried)}"
if [ "$rc" != 0 ]; then
	"$CRYO" freeze sw >/dev/null 2>&1
	rc=$?
fi
until_ok gone "$WL"
[ "$rc" = 0 ] && [ "$(ps_state)" = frozen ] && gone "$WL" && pass "then a freeze that is not killed freezes it" ||
	fail "freeze after the sweep: exit $rc, ps $(ps_state)"

# ---- cryo melt ----
mark
bad=""
until_ok gone "$WL"
env CRYO_FAULT=restore.seize.crash "$CRYO" melt sw >/dev/null 2>&1
rc=$?
# made, waiting to be seized, when cryo died: it ends by itself
[ $rc = 137 ] && until_ok gone "$WL" && [ "$(ps_state)" = frozen ] &&
	pass "melt killed before the seize: the process it made ends by itself, the group stays frozen" ||
	fail "melt killed before the seize: exit $rc, pid $WL $(gone "$WL" && echo gone || echo "still there"), ps $(ps_state)"
tried=0
n=1
while :; do
	until_ok gone "$WL"
	env CRYO_FAULT=proc.inject.crash@$n "$CRYO" melt sw >/dev/null 2>&1
	rc=$?
	[ $rc = 0 ] && break
	[ $rc = 137 ] || { note_bad "melt, window $n: exit $rc, not killed"; break; }
	until_ok gone "$WL" || note_bad "melt, window $n: a half-made process is left ($(grep -E '^(State|TracerPid)' /proc/$WL/status 2>/dev/null | tr '\n' ' '))"
	until_ok no_pager || note_bad "melt, window $n: its pager is left"
	[ "$(ps_state)" = frozen ] || note_bad "melt, window $n: ps says $(ps_state)"
	tried=$((tried + 1))
	n=$((n + MELT_STEP))
	[ $n -gt 2000 ] && { note_bad "melt: no end after 2000 windows"; break; }
done
[ -z "$bad" ] && [ "$tried" -gt 2 ] &&
	pass "cryo melt killed in $tried of its windows: nothing half made was left, the group stayed frozen ($(took))" ||
	fail "melt sweep: ${bad:-too few windows ($tried)}"
[ "$rc" = 0 ] && until_ok untraced "$WL" && pass "then a melt that is not killed melts it" || fail "melt after the sweep: exit $rc"
# a melt gives an interrupted nanosleep EINTR (the sleeper sleeps the rest)
k=$((k + 1)); rm -f "$RES"; kill -USR1 "$WL"; until_ok has_result PASS
grep -q "^PASS $k " "$RES" && pass "the melted workload passes its check ($(cat "$RES"))" || fail "melted workload: $(cat "$RES" 2>/dev/null)"
k=$((k + 1)); rm -f "$RES"; kill -INT "$WL"; until_ok has_result PASS
grep -q "^PASS $k " "$RES" && pass "and its final check: queued signals taken with their values" || fail "final check: $(cat "$RES" 2>/dev/null)"
done_testing
