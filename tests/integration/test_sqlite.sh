#!/bin/bash
# sqlite3, the command-line shell, on a terminal of its own (cryo run),
# frozen and melted in the middle of a write transaction: its rows not yet
# committed live only in its memory and its journal, and its lock on the
# database is what keeps everyone else out. After each melt (lazy, then
# eager) another sqlite3 must still be refused the write ("database is
# locked": the lock came back), must not see the rows, and the melted
# shell commits them; the database passes integrity_check. Then a melt
# while an outside process holds the lock fails, named, and leaves nothing
# running; once that process lets go, the melt works and commits.
# usage: test_sqlite.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: needs sqlite3"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
DB=$T/db
HOLDER=
trap 'pkill -9 -f "^sqlite3 $DB\$"; "$CRYO" rm --force sql >/dev/null 2>&1; "$CRYO" daemon stop >/dev/null 2>&1; [ -n "$HOLDER" ] && kill -9 $HOLDER 2>/dev/null; rm -rf "$T"' EXIT

CR=$'\r'
drive() { python3 "$HERE/ttydrive.py" "$CRYO" sql "$@" >"$T/screen" 2>&1; }
pid_of() { "$CRYO" ps --json | python3 -c "import json,sys; print([g['pid'] for g in json.load(sys.stdin) if g['name']=='$1'][0])"; }
outside() { sqlite3 -cmd ".timeout 0" "$DB" "$@" 2>&1; }
gone() { ! kill -0 "$1" 2>/dev/null; }
until_ok() { for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
# the shell's answer to "SELECT 'sum', sum(x) ...": sum|N
sum_on_screen() { grep -aoE "sum\|[0-9]+" "$T/screen" | tail -1 | cut -d'|' -f2; }

check 0 "run sqlite3 on its own terminal" "$CRYO" run --name sql -- sqlite3 "$DB"
P=$(pid_of sql)
drive wait:0.5 key:$'CREATE TABLE t(x);\r' wait:0.3 key:$'BEGIN; INSERT INTO t VALUES(1),(2),(3);\r' wait:0.5 detach
[ "$(outside "SELECT count(*) FROM t")" = 0 ] && pass "before the freeze: the rows are not committed" ||
	fail "before the freeze, another sqlite3 sees: $(outside "SELECT count(*) FROM t")"
outside "INSERT INTO t VALUES(50)" | grep -q "database is locked" && pass "before the freeze: the shell's lock keeps writers out" ||
	fail "before the freeze, a writer was not refused"

n=3
for how in "" --eager; do
	check 0 "freeze in the middle of the transaction" "$CRYO" freeze sql
	until_ok gone "$P" || fail "sqlite3 still runs after freeze"
	check 0 "melt it${how:+ $how}" "$CRYO" melt $how sql
	out=$(outside "INSERT INTO t VALUES(99)")
	echo "$out" | grep -q "database is locked" && pass "after melt${how:+ $how}: a writer is still refused (the lock came back)" ||
		fail "after melt${how:+ $how}: another sqlite3 could write: $out"
	c=$(outside "SELECT count(*) FROM t")
	[ "$c" = $((n - 3)) ] && pass "after melt: the rows are still not committed ($c)" || fail "after melt: another sqlite3 counts $c rows"
	n=$((n + 1))
	drive wait:0.3 key:$"INSERT INTO t VALUES($n); COMMIT; SELECT 'sum', sum(x) FROM t;$CR" wait:0.6 detach
	want=$((n * (n + 1) / 2))
	[ "$(sum_on_screen)" = "$want" ] && pass "the melted shell goes on and commits (sum $want)" ||
		fail "the melted shell: $(tail -c 300 "$T/screen" | tr '\r\n' '  ')"
	[ "$(outside "SELECT sum(x) FROM t")" = "$want" ] && pass "another sqlite3 sees the commit" ||
		fail "another sqlite3 sees sum $(outside "SELECT sum(x) FROM t"), expected $want"
	[ "$(outside "PRAGMA integrity_check")" = ok ] && pass "integrity_check: ok" || fail "integrity_check: $(outside "PRAGMA integrity_check")"
	n=$((n + 3))
	drive wait:0.3 key:$"BEGIN; INSERT INTO t VALUES($((n - 2))),($((n - 1))),($n);$CR" wait:0.5 detach
done

# an outside process takes the lock while the shell is frozen
check 0 "freeze again in a transaction" "$CRYO" freeze sql
until_ok gone "$P" || fail "sqlite3 still runs after freeze"
python3 -c "
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('BEGIN IMMEDIATE')
print('held', flush=True)
time.sleep(60)" "$DB" >"$T/holder" 2>&1 &
HOLDER=$!
until_ok grep -q held "$T/holder"
check 1 "melt while another process holds the lock" "$CRYO" melt sql
check_err "lock on bytes .*another process holds a lock on them now" "refused, naming the lock"
until_ok gone "$P" && ! pgrep -f "^sqlite3 $DB\$" >/dev/null && pass "nothing of it is left running" || fail "a process was left: $(pgrep -af "^sqlite3 $DB\$")"
kill -9 $HOLDER; wait $HOLDER 2>/dev/null; HOLDER=
check 0 "melt once the lock is free" "$CRYO" melt sql
n=$((n + 1))
drive wait:0.3 key:$"INSERT INTO t VALUES($n); COMMIT; SELECT 'sum', sum(x) FROM t;$CR" wait:0.6 detach
want=$((n * (n + 1) / 2))
[ "$(outside "SELECT sum(x) FROM t")" = "$want" ] && pass "it commits after all (sum $want)" ||
	fail "after the refused melt: sum $(outside "SELECT sum(x) FROM t"), expected $want; $(tail -c 200 "$T/screen" | tr '\r\n' '  ')"
[ "$(outside "PRAGMA integrity_check")" = ok ] && pass "integrity_check: ok" || fail "integrity_check: $(outside "PRAGMA integrity_check")"
done_testing
