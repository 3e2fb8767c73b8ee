#!/bin/bash
# cryo hibernate / resume: three groups (two python3 programs checking 48
# MiB of memory each, a sleep) frozen in one command, their processes
# gone and their memory freed; resume melts them lazily, the most recently
# used first, and each program passes its check again. Every group is
# stopped before the first freeze; one whose freeze fails runs on. A
# second resume and a hibernate with nothing running say so and succeed.
# usage: test_hibernate.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

MC=$(dirname "$0")/memcheck.py
setsid python3 "$MC" "$T/a" 48 0.2 </dev/null >/dev/null 2>&1 & A=$!; disown
setsid python3 "$MC" "$T/b" 48 0.2 </dev/null >/dev/null 2>&1 & B=$!; disown
setsid sleep 600 </dev/null >/dev/null 2>&1 & S=$!; disown
trap 'kill -9 $A $B $S 2>/dev/null; rm -rf "$T"' EXIT
until_ok() { for _ in $(seq "$1"); do "${@:2}" && return 0; sleep 0.1; done; return 1; }
has() { [ -s "$1" ]; }
until_ok 300 has "$T/a" && until_ok 300 has "$T/b" || fail "memcheck never started"
check 0 "adopt a" "$CRYO" adopt "$A" --name a
check 0 "adopt b" "$CRYO" adopt "$B" --name b
check 0 "adopt sleep" "$CRYO" adopt "$S" --name s
ps_state() { "$CRYO" ps --json | python3 -c "import json,sys; print({g['name']: g['state'] for g in json.load(sys.stdin)}.get('$1'))"; }

sleep 1 # the programs run again after the adopts touched every process
check 0 "hibernate" "$CRYO" hibernate
grep -q '^\[3/3\]' "$OUT" && grep -q "hibernated 3 groups" "$OUT" &&
	pass "progress per group and a summary: $(tail -1 "$OUT")" || fail "hibernate output"
for g in a b s; do
	[ "$(ps_state $g)" = frozen ] && pass "$g frozen" || fail "$g is $(ps_state $g)"
done
sleep 0.5
gone() { ! kill -0 "$1" 2>/dev/null || grep -q zombie /proc/$1/status 2>/dev/null; }
gone "$A" && gone "$B" && gone "$S" && pass "their processes are gone" || fail "a process lives on"
# the sleep never ran since adopt, the programs ran last: they come first
order=$(tr '\n' ' ' <"$CRYO_HOME/hibernate.list")
[ "$(tail -1 "$CRYO_HOME/hibernate.list")" = s ] &&
	pass "most recently used first: $order" || fail "order: $order"

sleep 2 # pid 1 reaps the frozen processes in its own time
na=$(wc -l <"$T/a"); nb=$(wc -l <"$T/b")
check 0 "resume" "$CRYO" resume
grep -q "resumed 3 groups" "$OUT" && pass "resume summary: $(tail -1 "$OUT")" || fail "resume output"
for g in a b s; do
	st=$(ps_state $g)
	[ "$st" = running ] || [ "$st" = paging ] && pass "$g $st" || fail "$g is $st"
done
more() { [ "$(wc -l <"$1")" -gt "$2" ]; }
until_ok 300 more "$T/a" $((na + 1)) && until_ok 300 more "$T/b" $((nb + 1)) &&
	! grep -q FAIL "$T/a" "$T/b" && pass "both programs checked their memory after resume" ||
	fail "after resume: a $(tail -1 "$T/a"), b $(tail -1 "$T/b")"
kill -0 "$S" 2>/dev/null && pass "sleep runs again as pid $S" || fail "sleep not back"
[ ! -e "$CRYO_HOME/hibernate.list" ] && pass "the list is gone once all are back" || fail "list left"

check 0 "a second resume" "$CRYO" resume
grep -q "nothing to resume" "$OUT" && pass "says there is nothing to resume" || fail "second resume output"

# every group is stopped (ptrace) before the first freeze: while that one
# is held 1.5 s inside an injected syscall, the others are stopped too
tracer() { awk '/^TracerPid:/ {print $2}' /proc/$1/status 2>/dev/null; }
# alive, in a ptrace stop (a frozen one is gone, or a zombie)
held() { grep -Eq '^State:[[:space:]]*t' /proc/$1/status 2>/dev/null && [ "$(tracer $1)" != 0 ]; }
traced_all() { for p in $A $B $S; do held $p || return 1; done; }
sleep 1 # all paged in: nothing waits for a pager
env CRYO_FAULT=proc.inject.slow@1 "$CRYO" hibernate >"$T/hib2" 2>&1 &
H=$!
until_ok 100 traced_all && pass "hibernate stops every group before freezing the first" ||
	fail "not all stopped at once: tracers $(tracer $A) $(tracer $B) $(tracer $S)"
wait $H && grep -q "hibernated 3 groups" "$T/hib2" && pass "and then freezes them all" || fail "hibernate: $(tail -2 "$T/hib2")"
check 0 "resume" "$CRYO" resume
# a group whose freeze fails runs on, untraced: held, then let go
sleep 1
env CRYO_FAULT=dump.pages.eio@1 "$CRYO" hibernate >"$T/hib3" 2>&1
first=$(head -1 "$CRYO_HOME/hibernate.list")
grep -q "NOT frozen" "$T/hib3" && [ "$(ps_state "$first")" = running ] && grep -q "hibernated 2 groups" "$T/hib3" &&
	pass "a freeze that fails ($first): the others are frozen, it runs on" || fail "failed freeze: $(cat "$T/hib3")"
p1=$(case $first in a) echo $A;; b) echo $B;; s) echo $S;; esac)
[ "$(tracer $p1)" = 0 ] && ! grep -Eq '^State:[[:space:]]*t' /proc/$p1/status && pass "and it is neither traced nor stopped" ||
	fail "$first: tracer $(tracer $p1), $(grep State /proc/$p1/status)"
check 0 "resume the others" "$CRYO" resume
"$CRYO" freeze a >/dev/null 2>&1; "$CRYO" freeze b >/dev/null 2>&1; "$CRYO" freeze s >/dev/null 2>&1
check 0 "hibernate with nothing running" "$CRYO" hibernate
grep -q "nothing to hibernate" "$OUT" && pass "says there is nothing to hibernate" || fail "output"
check 2 "hibernate takes no argument" "$CRYO" hibernate extra
done_testing
