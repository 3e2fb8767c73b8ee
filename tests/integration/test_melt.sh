#!/bin/bash
# `cryo melt` from the command line (root): a frozen sleep is melted with
# its pid, not our child, not traced, its registry entry running again,
# with exactly its own fds (eager and lazy); a
# second melt while it runs says "pid N is in use"; a missing group is one
# clear line.
# usage: test_melt.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

check 0 "store init" "$CRYO" store init --size 256M
setsid sleep 30 </dev/null >/dev/null 2>&1 &
PID=$!
sleep 0.3
fdlist() { ls -l "/proc/$1/fd" | awk 'NR > 1 { print $9, $10, ($11 ~ /^pipe:/ ? "pipe" : $11) }'; }
FDS=$(fdlist "$PID")
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
# the pager stops it briefly once all is in (to close the process's uffd)
for _ in $(seq 50); do
	tracer=$(awk '/^TracerPid:/ {print $2}' /proc/$PID/status)
	[ "$tracer" = 0 ] && break
	sleep 0.1
done
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

# exactly its fds: none of cryo's (its report pipe was once seized into
# a process that had not closed it yet), melted eagerly and lazily
for mode in --eager --lazy; do
	[ "$mode" = --lazy ] && mode=
	check 0 "freeze and melt ${mode:-lazily}" bash -c "'$CRYO' freeze napper && '$CRYO' melt napper $mode"
	# a lazy melt keeps its uffd (fd 1000+) until every page is in
	for _ in $(seq 100); do [ -e "$CRYO_HOME/pager/napper.state" ] || break; sleep 0.1; done
	now=$(fdlist "$PID")
	[ "$now" = "$(echo "$FDS" | sed 's|-> pipe$|-> '"$CRYO_HOME"'/log/napper.log|')" ] || [ "$now" = "$FDS" ] &&
		pass "after melt ${mode:-lazily} it has its own fds and no other" ||
		fail "fds after melt ${mode:-lazily}: $(echo "$now" | tr '\n' ';') before: $(echo "$FDS" | tr '\n' ';')"
done
check 1 "melt while it runs" "$CRYO" melt napper
check_err1
check_err "pid $PID is in use" "the error names the pid"

check 1 "melt of an unknown group" "$CRYO" melt nosuch
check_err1

check 0 "melt --snapshot 1 --json after a kill" bash -c "kill -9 $PID; sleep 0.05; '$CRYO' melt napper --snapshot 1 --json"
check_json "melt --json"
kill -9 "$PID" 2>/dev/null
check 2 "melt without a name" "$CRYO" melt

# a log the program appends to: grown since the snapshot is not a change
# it could notice; a file it reads and writes is
LOGF=$T/app.log
setsid bash -c "exec 3>>'$LOGF' 4<>'$T/data'; while :; do echo tick >&3; sleep 0.05; done" \
	</dev/null >/dev/null 2>&1 &
A=$!
until [ -s "$LOGF" ]; do sleep 0.05; done
check 0 "adopt a program appending to a log" "$CRYO" adopt "$A" --name appender
n=$(wc -l < "$LOGF")
until [ "$(wc -l < "$LOGF")" -gt $((n + 5)) ]; do sleep 0.05; done
kill -9 "$A"
sleep 0.1
check 0 "melt it after the log grew" "$CRYO" melt appender
n=$(wc -l < "$LOGF")
sleep 0.5
[ "$(wc -l < "$LOGF")" -gt "$n" ] && pass "it appends to its log again" || fail "the log does not grow after melt"
kill -9 "$A"
sleep 0.1
echo changed >> "$T/data"
check 1 "melt refused: a file it reads and writes changed" "$CRYO" melt appender
check_err "data changed since the snapshot \\(its size differs\\)" "the error says which file and how"
done_testing
