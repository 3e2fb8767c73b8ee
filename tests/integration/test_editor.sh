#!/bin/bash
# Interactive programs on their terminal, driven through tmux as a user
# would: bash with a job in the foreground (cat) frozen and melted — the
# job is still the terminal's foreground and reads what is typed; vim in
# the middle of an edit frozen and melted — its screen comes back on
# attach, the edit goes on and is written; python talking to bash through
# a pty it opened itself (pty.fork) frozen and melted three times and
# killed and melted: the pair is made again and the talk goes on.
# usage: test_editor.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v tmux >/dev/null && command -v vim >/dev/null || { echo "SKIP: needs tmux and vim"; exit 77; }

TM=(tmux -L "cryo-editor-$$" -f /dev/null)
trap '"${TM[@]}" kill-server 2>/dev/null; kill -9 $KILL 2>/dev/null; rm -rf "$T"' EXIT
KILL=
until_ok() { local n=$(($1 * 10)); shift; for _ in $(seq $n); do "$@" && return 0; sleep 0.1; done; return 1; }
# attach NAME: a fresh tmux session whose one pane is `cryo attach NAME`
attach() {
	"${TM[@]}" kill-server 2>/dev/null
	"${TM[@]}" new-session -d -s ed -x 100 -y 30 "CRYO_HOME=$CRYO_HOME $CRYO attach $1"
}
keys() { "${TM[@]}" send-keys -t ed "$@"; }
screen() { "${TM[@]}" capture-pane -p -t ed 2>/dev/null; }
shows() { screen | grep -qE "$1"; }
pid_of() { "$CRYO" ps --json | python3 -c "import json,sys; print([g['pid'] for g in json.load(sys.stdin) if g['name']=='$1'][0])"; }
state_of() { "$CRYO" ps --json | python3 -c "import json,sys; print([g['state'] for g in json.load(sys.stdin) if g['name']=='$1'][0])"; }
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
stat_field() { awk -v f="$2" '{ sub(/.*\) /, ""); print $(f - 2) }' "/proc/$1/stat"; }

check 0 "store init" "$CRYO" store init --size 512M

# ---- bash with cat in the foreground ----
check 0 "run bash -i" "$CRYO" run --name sh --no-daemon -- bash --norc -i
B=$(pid_of sh)
KILL="$B"
attach sh
until_ok 5 shows '[$#] *$' || fail "no prompt: $(screen | tr '\n' '|')"
keys 'echo before; cat' Enter
until_ok 5 bash -c "pgrep -P $B -x cat >/dev/null" || fail "cat never started"
K=$(pgrep -P "$B" -x cat)
KILL="$B $K"
[ "$(stat_field "$K" 8)" = "$K" ] && pass "cat is the terminal's foreground group" ||
	fail "foreground before the freeze: $(stat_field "$K" 8), cat $K"
check 0 "freeze bash with cat in the foreground" "$CRYO" freeze sh
until_ok 5 gone "$B" || fail "bash still there after freeze"
check 0 "melt it" "$CRYO" melt sh
fg=$(stat_field "$K" 8)
if [ "$fg" = "$K" ] && [ "$(stat_field "$K" 3)" != T ]; then
	pass "after melt cat is the foreground again, not stopped"
else
	fail "after melt: foreground $fg, cat $K in state $(stat_field "$K" 3)"
fi
attach sh
sleep 0.3
keys 'typed after melt' Enter
typed_twice() { [ "$(screen | grep -c '^typed after melt')" -ge 2 ]; }
if until_ok 5 typed_twice; then
	pass "what is typed reaches cat (echoed by the terminal, written back by cat)"
else
	fail "screen after typing: $(screen | tr '\n' '|')"
fi
keys C-d
until_ok 5 gone "$K" || fail "cat did not end at Ctrl-D"
keys 'echo sum $((6 * 7))' Enter
until_ok 5 shows '^sum 42' && pass "bash takes the terminal back and runs a command" ||
	fail "after cat: $(screen | tr '\n' '|')"
keys 'exit 3' Enter
until_ok 5 gone "$B" || fail "bash did not exit"
# a melted program is not its holder's child: its status is not known
exited() { [ "$(state_of sh)" = exited ]; }
until_ok 5 exited && pass "ps shows it exited" || fail "ps: $("$CRYO" ps | tr '\n' '|')"

# ---- vim in the middle of an edit ----
F=$T/notes.txt
check 0 "run vim" "$CRYO" run --name ed --no-daemon -- vim -N -u NONE -i NONE -n "$F"
V=$(pid_of ed)
KILL="$V"
attach ed
until_ok 5 shows '^~ *$' || fail "vim never drew: $(screen | tr '\n' '|')"
keys i 'first line, typed before the freeze' Escape
until_ok 5 shows '^first line, typed before the freeze' || fail "vim did not show the text"
check 0 "freeze vim with an unsaved edit" "$CRYO" freeze ed
until_ok 5 gone "$V" || fail "vim still there after freeze"
[ -e "$F" ] && fail "the file exists before vim wrote it"
check 0 "melt vim" "$CRYO" melt ed
attach ed
until_ok 5 shows '^first line, typed before the freeze' && pass "attach shows vim's screen with the edit" ||
	fail "screen after melt: $(screen | tr '\n' '|')"
keys o 'second line, after the melt' Escape ':wq' Enter
until_ok 5 gone "$V" || fail "vim did not quit"
if [ "$(cat "$F" 2>/dev/null)" = "first line, typed before the freeze
second line, after the melt" ]; then
	pass "vim wrote both lines: the edit went on across the freeze"
else
	fail "the file: $(cat "$F" 2>&1 | tr '\n' '|')"
fi

# ---- a pty the group opened itself: python talks to bash through its master ----
PL=$T/ptyconv.log
setsid python3 "$(dirname "$0")/ptyconv.py" "$PL" </dev/null >/dev/null 2>&1 &
PY=$!
disown
KILL="$PY"
passes() { local n; n=$(grep -c '^PASS' "$PL" 2>/dev/null); echo "${n:-0}"; }
more_passes() { [ "$(passes)" -gt "$1" ]; }
until_ok 10 more_passes 2 || fail "python and bash never talked: $(tail -3 "$PL" 2>&1 | tr '\n' '|')"
SH=$(pgrep -P "$PY" bash)
KILL="$PY $SH"
check 0 "adopt python with bash on its pty" "$CRYO" adopt "$PY" --name pty
check_out "snapshot 1" "the first snapshot"
check 0 "inspect: the master and bash's controlling terminal" bash -c \
	"'$CRYO' inspect pty | grep -q 'ptmx.*master of /dev/pts/' && '$CRYO' inspect pty | grep -q \"tty.*controlling.*the group's own pty\""
# lazy, eager, lazy: bash forks at every round, also while the pager
# lets go (docs/DESIGN-pager.md "Letting go while a process forks")
for round in 1 2 3; do
	check 0 "freeze it ($round)" "$CRYO" freeze pty
	until_ok 5 gone "$PY" || fail "python still there after freeze $round"
	n=$(passes)
	mode=""
	[ $round = 2 ] && mode=--eager
	check 0 "melt it ($round${mode:+, $mode})" "$CRYO" melt $mode pty
	if until_ok 10 more_passes $((n + 3)); then
		pass "round $round: the conversation goes on through the new pty ($(tail -1 "$PL"))"
	else
		fail "round $round after melt: $(tail -3 "$PL" | tr '\n' '|')"
		for k in $PY $(pgrep -P "$PY") $(pgrep -P "$SH"); do
			echo "  pid $k: $(cat /proc/$k/comm) $(grep -E '^(State|TracerPid)' /proc/$k/status | tr '\n\t' '  ') wchan $(cat /proc/$k/wchan) uffds $(ls -l /proc/$k/fd 2>/dev/null | grep -c userfaultfd)"
		done
		tail -3 "$CRYO_HOME/log/pager-pty.log" | sed 's/^/  /'
		pgrep -af "cryo melt" | sed 's/^/  /'
	fi
done
[ "$(stat_field "$SH" 7)" != 0 ] && [ "$(stat_field "$SH" 8)" = "$SH" ] &&
	pass "bash has the new pty as its controlling terminal, in the foreground" ||
	fail "bash after melt: tty_nr $(stat_field "$SH" 7) tpgid $(stat_field "$SH" 8)"
check 0 "snap it" "$CRYO" snap pty
kill -STOP "$PY" "$SH"
kill -9 "$PY" "$SH"
until_ok 5 gone "$PY" || fail "kill -9 did not end python"
n=$(passes)
check 0 "melt it from the snapshot after kill -9" "$CRYO" melt --eager pty
until_ok 10 more_passes $((n + 3)) && pass "after kill -9 and melt it talks again" ||
	fail "after kill -9 and melt: $(tail -3 "$PL" | tr '\n' '|')"
grep -q '^FAIL' "$PL" && fail "a wrong answer: $(grep -m1 '^FAIL' "$PL")" || pass "no wrong answer in $(passes) rounds ($(grep -c '^LOST' "$PL") lost in flight)"
kill -9 "$PY" "$SH" 2>/dev/null
done_testing
