#!/bin/bash
# A process that forks all the time (forkloop.py: 32 MiB it hashes, every
# child checks its copy and exits with the result; between them quick
# children every 5 ms that check a few pages), melted lazily again and
# again. Two windows are widened by fault points: the let-go
# (pager.letgo.slow: for 300 ms nothing is read once all is in), so the
# process forks into it: the forking thread waits in the kernel for its
# fork event, and cannot stop for ptrace until the pager reads it; and the
# first event read while paging in (pager.event.slow: 50 ms between its
# read and its handling, during which no copy may land). Checked each round:
#   - the pager lets go (its state file goes) and no process holds a
#     userfaultfd after;
#   - the checks go on and no check, the children's included, fails;
#   - over the rounds, the pager read forks while letting go (its log).
# A last round melts without the fault point. ROUNDS: 3 (up to 7 more until
# a fork fell into a let-go), 10 with CRYO_LONG.
# usage: test_lazyfork.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

ROUNDS=3
[ "${CRYO_LONG:-0}" = 1 ] && ROUNDS=10
LOG=$T/checks
setsid python3 "$(dirname "$0")/forkloop.py" "$LOG" 32 20 5 </dev/null >/dev/null 2>&1 &
R=$!
disown
trap 'kill -9 $R $(pgrep -P $R) 2>/dev/null; "$CRYO" daemon stop >/dev/null 2>&1; rm -rf "$T"' EXIT

until_ok() { for _ in $(seq "$1"); do "${@:2}" && return 0; sleep 0.1; done; return 1; }
passes() { local n; n=$(grep -c '^PASS' "$LOG" 2>/dev/null); echo "${n:-0}"; }
more_passes() { [ "$(passes)" -gt "$1" ]; }
no_fail() { ! grep -q FAIL "$LOG" 2>/dev/null; }
STATE=$CRYO_HOME/pager/fk.state
PLOG=$CRYO_HOME/log/pager-fk.log
not_paging() { [ ! -f "$STATE" ]; }
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
uffds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -c userfaultfd; }
late_forks() { grep -o '[0-9]* forks while letting go' "$PLOG" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
where() {
	for p in $R $(pgrep -P $R); do
		echo "  pid $p: $(grep -E '^(State|TracerPid)' /proc/$p/status 2>/dev/null | tr '\n\t' '  ') wchan $(cat /proc/$p/wchan 2>/dev/null)"
	done
	tail -2 "$PLOG" 2>/dev/null | sed 's/^/  /'
}

until_ok 300 more_passes 1 || fail "forkloop never checked: $(tail -2 "$LOG" 2>&1)"
check 0 "adopt the forking process" "$CRYO" adopt "$R" --name fk
# round: FAULT-POINT (or "") and a name
round() {
	local n held=""
	check 0 "freeze ($2)" "$CRYO" freeze fk
	until_ok 50 gone "$R" || fail "still there after freeze ($2)"
	n=$(passes)
	check 0 "melt lazily ($2)" env CRYO_FAULT="$1" "$CRYO" melt fk
	if until_ok 300 not_paging; then
		pass "$2: the pager let go"
	else
		fail "$2: still paging after 30 s"
		where
	fi
	until_ok 300 more_passes $((n + 1)) && pass "$2: checks go on ($(tail -1 "$LOG"))" ||
		fail "$2: no check passed since the melt: $(tail -2 "$LOG" | tr '\n' ';')"
	for p in $R $(pgrep -P $R); do [ "$(uffds "$p")" = 0 ] || held="$held $p"; done
	[ -z "$held" ] && pass "$2: no process holds a userfaultfd" ||
		fail "$2: still holding a userfaultfd:$held"
}
# A fork falls into a round's let-go often, not always (the forking thread
# waits there for its event, so one fork a round at most): up to MORE
# rounds more until one did.
MORE=7
i=0
while [ $i -lt $ROUNDS ] || { [ "$(late_forks)" = 0 ] && [ $i -lt $((ROUNDS + MORE)) ]; }; do
	i=$((i + 1))
	round pager.letgo.slow,pager.event.slow "round $i, let-go and an event widened"
done
[ "$(late_forks)" -ge 1 ] && pass "the pager read $(late_forks) forks while letting go, over $i rounds" ||
	fail "no fork fell into the let-go in $i rounds: $(grep 'all in' "$PLOG" | tail -2)"
round "" "last round"
no_fail && pass "no check failed, the children's included ($(passes) passed)" ||
	fail "a FAIL line: $(grep FAIL "$LOG" | head -3 | tr '\n' ';')"
kill -9 $R $(pgrep -P $R) 2>/dev/null
done_testing
