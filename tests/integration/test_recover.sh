#!/bin/bash
# After kill -9 of every group process (what a crash leaves), `cryo recover`
# melts each group that was running from its newest snapshot: a python3
# counter goes on from the value it had at the snapshot, not from zero and
# not from where it was killed. A group still running and a frozen group
# are left alone; a second recover does nothing; `cryo ps` tells the states;
# `cryo rm` refuses a running group and forgets one.
# usage: test_recover.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

CNT=$T/count
start_counter() {
	setsid python3 "$(dirname "$0")/counter.py" "$CNT" 0.05 </dev/null >/dev/null 2>&1 &
	COUNTER=$!
	disown
}
count() { cat "$CNT" 2>/dev/null || echo 0; }
ps_state() { "$CRYO" ps --json | python3 -c "import json,sys; print({g['name']: g['state'] for g in json.load(sys.stdin)}.get('$1'))"; }

start_counter
setsid sleep 600 </dev/null >/dev/null 2>&1 & KEEP=$!; disown
setsid sleep 600 </dev/null >/dev/null 2>&1 & ICE=$!; disown
sleep 0.5
check 0 "adopt the counter" "$CRYO" adopt "$COUNTER" --name counter
check 0 "adopt a sleep that stays up" "$CRYO" adopt "$KEEP" --name keep
check 0 "adopt a sleep to freeze" "$CRYO" adopt "$ICE" --name ice
check 0 "freeze ice" "$CRYO" freeze ice
sleep 0.3
c1=$(count)
check 0 "snap the counter" "$CRYO" snap counter
c2=$(count)
sleep 1
kill -9 "$COUNTER"
c3=$(count)
[ "$c3" -gt $((c2 + 5)) ] && pass "the counter ran on after the snapshot ($c2 -> $c3)" ||
	fail "counter did not advance: $c2 -> $c3"
[ "$(ps_state counter)" = exited ] && pass "ps: counter exited" || fail "ps: counter $(ps_state counter)"
[ "$(ps_state keep)" = running ] && pass "ps: keep running" || fail "ps: keep $(ps_state keep)"
[ "$(ps_state ice)" = frozen ] && pass "ps: ice frozen" || fail "ps: ice $(ps_state ice)"

check 0 "recover" "$CRYO" recover
check_out "^recovered counter: pid $COUNTER runs again" "recover melts the counter with its pid"
check_out "^keep: still running as pid $KEEP" "recover leaves the running group"
check_out "recovered 1 group; 1 still running, 1 frozen, 0 failed" "recover's summary"
# the first value the melted counter writes: from its snapshot, not 0, not c3
for _ in $(seq 100); do v=$(count); [ "$v" != "$c3" ] && break; sleep 0.02; done
if [ "$v" -ge "$c1" ] && [ "$v" -le $((c2 + 2)) ]; then
	pass "counter resumes from its snapshot: $v (snapshot between $c1 and $c2, killed at $c3)"
else
	fail "counter resumed at $v; snapshot was between $c1 and $c2, killed at $c3"
fi
for _ in $(seq 100); do [ "$(count)" -gt "$v" ] && break; sleep 0.1; done
[ "$(count)" -gt "$v" ] && pass "and keeps counting ($(count))" || fail "counter stuck at $(count)"
[ -d /proc/$ICE ] && fail "recover melted the frozen group" || pass "the frozen group stays frozen"

check 0 "recover again" "$CRYO" recover
check_out "recovered 0 groups; 2 still running, 1 frozen, 0 failed" "a second recover does nothing"

check 1 "rm a running group" "$CRYO" rm counter
check_err1
check_err "runs as pid $COUNTER" "rm names the pid"
check 0 "rm ice" "$CRYO" rm ice
check 1 "history of a removed group" "$CRYO" history ice
[ "$(ps_state ice)" = None ] && pass "ps: ice is gone" || fail "ps: ice $(ps_state ice)"
check 1 "rm an unknown group" "$CRYO" rm nosuch
check_err1
check 0 "ps --json" "$CRYO" ps --json
check_json "ps --json"

# snap --weak / --all: an idle group is taken, a busy one skipped
setsid python3 -c 'while True: pass' </dev/null >/dev/null 2>&1 & SPIN=$!; disown
sleep 0.3
check 0 "adopt a spinner" "$CRYO" adopt "$SPIN" --name spin
check 0 "snap --weak of a sleeping group" "$CRYO" snap keep --weak
check_out "^keep: snap pid $KEEP: snapshot [0-9]+" "the idle group's weak snapshot is taken"
check 0 "snap --weak of a spinning group" "$CRYO" snap spin --weak
check_out "^spin: busy, weak snapshot skipped" "the busy group's weak snapshot is skipped"
check 0 "snap --all --force" "$CRYO" snap --all --force
n=$(grep -c ": snap pid [0-9]*: snapshot" "$OUT")
[ "$n" = 3 ] && pass "snap --all takes every running group ($n)" || fail "snap --all took $n, not 3: $(cat "$OUT")"
check 2 "snap with both --weak and --force" "$CRYO" snap keep --weak --force
check 2 "snap with a name and --all" "$CRYO" snap keep --all
check 2 "freeze does not take --weak" "$CRYO" freeze keep --weak
kill -9 "$SPIN"
check 0 "rm spin" "$CRYO" rm spin --force

# cryod --recover (what the systemd unit runs after a reboot): the
# counter, killed, comes back before cryod's first tick
check 0 "snap the counter" "$CRYO" snap counter
kill -9 "$COUNTER"
sleep 1
check 0 "daemon start --recover" "$CRYO" daemon start --recover --interval 100
back() { grep -q "recovered counter: pid $COUNTER runs again" "$CRYO_HOME/log/cryod.log"; }
for _ in $(seq 100); do back && break; sleep 0.1; done
back && pass "cryod --recover melted the counter (log: $(grep -o 'recovered 1 group.*' "$CRYO_HOME/log/cryod.log"))" ||
	fail "cryod --recover: $(tail -3 "$CRYO_HOME/log/cryod.log")"
v=$(count)
for _ in $(seq 100); do [ "$(count)" -gt "$v" ] && break; sleep 0.1; done
[ "$(count)" -gt "$v" ] && pass "the counter counts again ($(count))" || fail "counter stuck at $(count)"
check 0 "daemon stop" "$CRYO" daemon stop

check 0 "rm --force counter" "$CRYO" rm counter --force
kill -9 "$KEEP"
kill -9 "$COUNTER" 2>/dev/null
done_testing
