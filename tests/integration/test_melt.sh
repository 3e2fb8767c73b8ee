#!/bin/bash
# `cryo melt` from the command line (root): a frozen sleep is melted with
# its pid, not our child, not traced, its registry entry running again; a
# second melt while it runs says "pid N is in use"; a missing group is one
# clear line.
# usage: test_melt.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

check 0 "store init" "$CRYO" store init --size 256M
setsid sleep 30 </dev/null >/dev/null 2>&1 &
PID=$!
sleep 0.3
check 0 "adopt sleep $PID" "$CRYO" adopt "$PID" --name napper
check 0 "freeze napper" "$CRYO" freeze napper
wait "$PID" 2>/dev/null

check 0 "melt napper" "$CRYO" melt napper
check_out "^melted napper: pid $PID runs again" "melt says the pid"
if [ -d /proc/$PID ] && [ "$(cat /proc/$PID/comm)" = sleep ]; then
	pass "pid $PID is sleep again"
else
	fail "pid $PID is not a running sleep after melt"
fi
ppid=$(awk '/^PPid:/ {print $2}' /proc/$PID/status)
tracer=$(awk '/^TracerPid:/ {print $2}' /proc/$PID/status)
if [ "$ppid" != $$ ] && [ "$tracer" = 0 ]; then
	pass "not our child (ppid $ppid), not traced"
else
	fail "ppid $ppid tracer $tracer"
fi

if grep -q "^state running" "$CRYO_HOME/groups/napper" && grep -q "^pid $PID\$" "$CRYO_HOME/groups/napper"; then
	pass "registry: napper running as $PID"
else
	fail "registry after melt: $(cat "$CRYO_HOME/groups/napper")"
fi

check 1 "melt while it runs" "$CRYO" melt napper
check_err1
check_err "pid $PID is in use" "the error names the pid"

check 1 "melt of an unknown group" "$CRYO" melt nosuch
check_err1

check 0 "melt --snapshot 1 --json after a kill" bash -c "kill -9 $PID; sleep 0.05; '$CRYO' melt napper --snapshot 1 --json"
check_json "melt --json"
kill -9 "$PID" 2>/dev/null
check 2 "melt without a name" "$CRYO" melt
done_testing
