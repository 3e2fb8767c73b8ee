#!/bin/bash
# Lazy melt of a process tree: python3, its two children, each with 64 MiB
# of patterned memory it hashes and checks (memtree.py). One pager serves
# the whole tree; it is slowed (fault point pager.slow) so the test acts
# while pages are out. Checked:
#   - the state file lists every process; `cryo ps` says paging;
#   - the root forks while paging in: its child gets its own copy of its
#     userfaultfd from the pager (two in its fd table: its parent's,
#     inherited, and its own) and is listed in the state file;
#   - kill -9 of the pager: every process, the forked child too, waits on
#     its faults (never runs on missing memory: no FAIL line, each alive in
#     handle_userfault); ps says stalled; cryod ends every process of the
#     group with a message; recover brings the tree back and it passes;
#   - once all is in, no process of the tree holds a userfaultfd.
# usage: test_lazytree.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

LOG=$T/checks
setsid python3 "$(dirname "$0")/memtree.py" "$LOG" 64 2 0.3 </dev/null >/dev/null 2>&1 &
R=$!
disown
trap 'kill -9 $R $(pgrep -P $R) 2>/dev/null; "$CRYO" daemon stop >/dev/null 2>&1; rm -rf "$T"' EXIT

until_ok() { for _ in $(seq "$1"); do "${@:2}" && return 0; sleep 0.1; done; return 1; }
checks() { local n; n=$(grep -c "^$1 .* PASS" "$LOG" 2>/dev/null); echo "${n:-0}"; }
more_checks() { [ "$(checks "$1")" -gt "$2" ]; }
no_fail() { ! grep -q FAIL "$LOG" 2>/dev/null; }
ps_state() { "$CRYO" ps --json | python3 -c "import json,sys; print({g['name']: g['state'] for g in json.load(sys.stdin)}.get('$1'))"; }
STATE=$CRYO_HOME/pager/mt.state
pager_pid() { awk 'NR == 1 {print $2}' "$STATE" 2>/dev/null; }
paging() { [ -f "$STATE" ]; }
not_paging() { ! paging; }
listed() { grep -q "^proc $1 " "$STATE" 2>/dev/null; }
uffds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -c userfaultfd; }
kids_of() { pgrep -P "$1" | sort -n | tr '\n' ' '; }
alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
all_gone() { for p in "$@"; do alive "$p" && return 1; done; return 0; }
# every one of NAMES passes a check after this point
all_check() {
	local name n ok=0
	for name in "$@"; do
		n=$(checks "$name")
		until_ok 300 more_checks "$name" "$n" || { fail "$name: no check passed"; ok=1; }
	done
	no_fail || { fail "a FAIL line: $(grep FAIL "$LOG" | head -3 | tr '\n' ';')"; ok=1; }
	return $ok
}

all_check root kid1 kid2 && pass "the tree checks its memory: $(tail -3 "$LOG" | tr '\n' ' ')"
KIDS=$(kids_of $R)
touch "$LOG.hold"
sleep 0.5
check 0 "adopt the tree" "$CRYO" adopt "$R" --name mt
check 0 "freeze it" "$CRYO" freeze mt
until_ok 50 all_gone $R $KIDS || fail "the tree is still there after freeze"

# ---- melt (lazy, pager slowed); the root forks while pages are out ----
export CRYO_FAULT=pager.slow
check 0 "melt the tree (lazy, pager slowed)" "$CRYO" melt mt
unset CRYO_FAULT
paging && pass "a pager works after melt returned (pid $(pager_pid))" || fail "no pager state after melt"
n=0
for k in $KIDS; do listed "$k" && n=$((n + 1)); done
[ "$n" = 2 ] && pass "the state file lists the root and its 2 children" ||
	fail "state file: $(tr '\n' ';' < "$STATE" 2>/dev/null)"
[ "$(ps_state mt)" = paging ] && pass "ps: mt paging" || fail "ps: mt $(ps_state mt)"
touch "$LOG.fork"
new_kid() { F=$(pgrep -P $R | grep -vxF "$(echo $KIDS | tr ' ' '\n')" | head -1); [ -n "$F" ]; }
until_ok 100 new_kid || fail "the root never forked"
has_copy() { [ "$(uffds "$F")" -ge 2 ] && listed "$F"; }
if until_ok 100 has_copy; then
	pass "pid $F, forked while paging in, holds its own userfaultfd copy ($(uffds "$F") in its fds) and is in the state file"
else
	fail "forked child $F: $(uffds "$F") userfaultfds, state: $(tr '\n' ';' < "$STATE" 2>/dev/null)"
fi

# ---- kill -9 of the pager: every process waits, none runs on missing memory ----
pp=$(pager_pid)
kill -9 "$pp"
until_ok 50 all_gone "$pp" || fail "pager $pp still there"
rm -f "$LOG.hold"
touch "$LOG.go2"
lines=$(wc -l < "$LOG")
sleep 2
waiting=0
for p in $R $KIDS $F; do
	w=$(cat "/proc/$p/wchan" 2>/dev/null)
	[ "$w" = handle_userfault ] && waiting=$((waiting + 1)) || echo "  pid $p: wchan '$w'"
done
if [ "$waiting" = 4 ] && [ "$(wc -l < "$LOG")" = "$lines" ] && no_fail; then
	pass "pager $pp killed: all 4 processes (the forked child too) wait in handle_userfault, no check ran"
else
	fail "pager killed: $waiting of 4 waiting, lines $lines -> $(wc -l < "$LOG"), FAIL lines $(grep -c FAIL "$LOG")"
fi
[ "$(ps_state mt)" = stalled ] && pass "ps: mt stalled" || fail "ps: mt $(ps_state mt)"
check 0 "daemon start" "$CRYO" daemon start --interval 100 --max-age 200 --tick 100
until_ok 100 all_gone $R $KIDS $F && pass "cryod ended every process of the group, the forked child too" ||
	fail "still there: $(for p in $R $KIDS $F; do alive $p && echo -n "$p "; done)"
grep -q "its pager (pid $pp) died.*the group of pid $R" "$CRYO_HOME/log/cryod.log" &&
	pass "cryod's log says why: $(grep -o "its pager (pid $pp) died[^']*" "$CRYO_HOME/log/cryod.log")" ||
	fail "cryod's log: $(tail -3 "$CRYO_HOME/log/cryod.log" | tr '\n' ';')"
no_fail && pass "no FAIL line ever written" || fail "a FAIL line: $(grep FAIL "$LOG" | head -3)"
check 0 "daemon stop" "$CRYO" daemon stop
until_ok 50 not_paging || fail "state file left"
free_pids() { for p in $R $KIDS $F; do [ -d "/proc/$p" ] && return 1; done; return 0; }
until_ok 100 free_pids || fail "the killed processes were never reaped"

# ---- recover: the tree comes back (the root forks again: OUT.fork is there) ----
check 0 "recover melts the tree again" "$CRYO" recover
all_check root kid1 kid2 fork && pass "recovered: every process, and the root's new fork, passes its check"
until_ok 300 not_paging || fail "still paging after 30 s"
held=""
for p in $R $(pgrep -P $R); do [ "$(uffds "$p")" = 0 ] || held="$held $p"; done
[ -z "$held" ] && pass "all in: no process of the tree holds a userfaultfd" ||
	fail "still holding a userfaultfd:$held"
kill -9 $R $(pgrep -P $R) 2>/dev/null
done_testing
