#!/bin/bash
# Lazy melt with a real program: python3 with 192 MiB of patterned memory
# that hashes all of it every 0.3 s and writes PASS or FAIL. `cryo melt`
# returns while its memory is still out; a pager process brings it in
# (slowed here by the fault point pager.slow so the test can act while
# pages are out). Checked: the program passes its check after every melt;
# `cryo ps` shows it paging; a snapshot waits until all is in; kill -9 of
# cryod while it pages in changes nothing; kill -9 of the pager leaves the
# program waiting on its faults (never running on missing memory) until
# cryod ends it with a message, and recover brings it back; --eager uses
# no pager; the next melt prefetches what the program touched first.
# usage: test_lazy.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

LOG=$T/checks
PLOG=$CRYO_HOME/log/pager-mc.log
setsid python3 "$(dirname "$0")/memcheck.py" "$LOG" 192 0.3 </dev/null >/dev/null 2>&1 &
MC=$!
disown
trap 'kill -9 $MC 2>/dev/null; "$CRYO" daemon stop >/dev/null 2>&1; rm -rf "$T"' EXIT

until_ok() { for _ in $(seq "$1"); do "${@:2}" && return 0; sleep 0.1; done; return 1; }
checks() { cat "$LOG" 2>/dev/null | wc -l; }
more_checks() { [ "$(checks)" -gt "$1" ]; }
no_fail() { ! grep -q FAIL "$LOG"; }
ps_state() { "$CRYO" ps --json | python3 -c "import json,sys; print({g['name']: g['state'] for g in json.load(sys.stdin)}.get('$1'))"; }
pager_pid() { awk '{print $2}' "$CRYO_HOME/pager/mc.state" 2>/dev/null; }
paging() { [ -f "$CRYO_HOME/pager/mc.state" ]; }
not_paging() { ! paging; }
ins() { grep -c "all in" "$PLOG" 2>/dev/null || echo 0; }
# melt_checked WHAT: after a melt, the program goes on checking and passes
melt_checked() {
	local n
	n=$(checks)
	until_ok 300 more_checks $((n + 1)) && no_fail &&
		pass "$1: program checked its memory after the melt: $(tail -1 "$LOG")" ||
		fail "$1: checks $n -> $(checks), $(grep -c FAIL "$LOG") FAIL"
}

until_ok 300 more_checks 0 || fail "memcheck never started"
check 0 "adopt python3 with 192 MiB" "$CRYO" adopt "$MC" --name mc
check 0 "freeze it" "$CRYO" freeze mc

# 1. lazy melt, slowed pager: returns while memory is out
export CRYO_FAULT=pager.slow
check 0 "melt (lazy, pager slowed)" "$CRYO" melt mc
unset CRYO_FAULT
paging && pass "a pager works after melt returned (pid $(pager_pid))" || fail "no pager state after melt"
[ "$(ps_state mc)" = paging ] && pass "ps: mc paging" || fail "ps: mc $(ps_state mc)"
t0=$(date +%s.%N)
check 0 "snap while paging in: waits, then takes it" "$CRYO" snap mc
not_paging && pass "the snapshot came after the pager finished" || fail "snapshot taken while paging"
grep -q "all in after" "$PLOG" && pass "pager log: $(grep "all in" "$PLOG" | tail -1)" ||
	fail "pager log has no summary"
[ -s "$CRYO_HOME/pager/mc.touched" ] && pass "pager recorded the pages touched first" ||
	fail "no mc.touched"
ls -l /proc/$MC/fd 2>/dev/null | grep -q userfaultfd && fail "the program still holds a userfaultfd" ||
	pass "the program's copy of the uffd is closed once all is in"
melt_checked "lazy melt"

# 2. kill -9 of cryod while a melted program pages in: the pager is not
# cryod's, nothing changes
check 0 "daemon start" "$CRYO" daemon start --interval 100 --max-age 200 --tick 100
check 0 "freeze" "$CRYO" freeze mc
n0=$(ins)
export CRYO_FAULT=pager.slow
check 0 "melt (slowed) under cryod" "$CRYO" melt mc
unset CRYO_FAULT
kill -9 "$("$CRYO" daemon status | awk 'NR == 1 {print $NF}')"
until_ok 600 not_paging && [ "$(ins)" -gt "$n0" ] &&
	pass "with cryod killed, the pager brought everything in" || fail "paging did not finish"
melt_checked "after kill -9 of cryod"
check 0 "daemon start again" "$CRYO" daemon start --interval 100 --max-age 200 --tick 100

# 3. kill -9 of the pager (cryod stopped, to watch): faults wait, never
# wrong memory; ps says stalled; cryod, started, ends the program
check 0 "daemon stop" "$CRYO" daemon stop
check 0 "freeze" "$CRYO" freeze mc
export CRYO_FAULT=pager.slow
check 0 "melt (slowed)" "$CRYO" melt mc
unset CRYO_FAULT
pp=$(pager_pid)
kill -9 "$pp"
sleep 0.5
n=$(checks)
sleep 1.5
wchan=$(cat /proc/$MC/wchan 2>/dev/null)
if [ "$(checks)" = "$n" ] && no_fail && [ "$wchan" = handle_userfault ]; then
	pass "pager $pp killed: the program waits in $wchan, no check ran on missing memory"
else
	fail "pager killed: checks $n -> $(checks), FAIL lines $(grep -c FAIL "$LOG"), wchan $wchan"
fi
[ "$(ps_state mc)" = stalled ] && pass "ps: mc stalled" || fail "ps: mc $(ps_state mc)"
check 0 "daemon start" "$CRYO" daemon start --interval 100 --max-age 200 --tick 100
gone() { ! kill -0 "$MC" 2>/dev/null || grep -q zombie /proc/$MC/status 2>/dev/null; }
until_ok 100 gone && pass "cryod ended the program whose pager died" || fail "program still there"
grep -q "its pager (pid $pp) died" "$CRYO_HOME/log/cryod.log" &&
	pass "cryod's log says why: $(grep -o "its pager (pid $pp) died[^;]*" "$CRYO_HOME/log/cryod.log")" ||
	fail "nothing in cryod's log"
no_fail && pass "no FAIL line ever written" || fail "a FAIL line"
check 0 "daemon stop" "$CRYO" daemon stop
until_ok 50 not_paging || fail "state file left"
sleep 2 # pid 1 reaps the killed program
check 0 "recover melts it again" "$CRYO" recover
melt_checked "recovered after its pager died"

# 4. --eager: no pager
check 0 "freeze" "$CRYO" freeze mc
n0=$(ins)
check 0 "melt --eager" "$CRYO" melt --eager mc
not_paging && [ "$(ins)" = "$n0" ] && pass "eager melt started no pager" || fail "a pager ran"
melt_checked "eager melt"

check 2 "bad flag is a usage error" "$CRYO" melt --eagerly mc
done_testing
