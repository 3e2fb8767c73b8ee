#!/bin/bash
# cryo run / attach: a program on a terminal the holder keeps; attach and
# detach through a pty driven like a user (ttydrive.py: keys, resizes,
# Ctrl-\); after kill -9 of the program and its terminal, recover melts it
# on a fresh terminal with its settings, attach works again and the
# counter goes on from its snapshot; freeze and melt keep the terminal
# too; the exit status of a program that quits is recorded.
# usage: test_term.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
trap '"$CRYO" daemon stop >/dev/null 2>&1; kill -9 $(pgrep -f tty_counter.py) 2>/dev/null; rm -rf "$T"' EXIT

drive() { python3 "$HERE/ttydrive.py" "$CRYO" "$@" >"$T/screen" 2>&1; }
screen_has() { grep -qE "$1" "$T/screen"; }
last_count() { grep -aoE 'count [0-9]+' "$T/screen" | tail -1 | cut -d' ' -f2; }
pid_of() { "$CRYO" ps --json | python3 -c "import json,sys; print([g['pid'] for g in json.load(sys.stdin) if g['name']=='$1'][0])"; }
until_ok() { for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }

check 0 "run a counter on its own terminal" "$CRYO" run --name tc -- python3 "$HERE/tty_counter.py"
check_out "^tc runs as pid [0-9]+ on /dev/pts/[0-9]+; 'cryo attach tc'" "run says where it runs"
check_out "^started cryod for .* as pid [0-9]+" "run starts cryod to keep it persistent"
check 0 "cryod runs" "$CRYO" daemon status
P=$(pid_of tc)
H=$(ps -o ppid= -p "$P" | tr -d ' ')
[ "$(cat /proc/$H/comm)" = cryo-term ] && pass "its terminal is held by cryo-term ($H)" || fail "holder of $P is $(cat /proc/$H/comm)"
sleep 0.6

# attach: what it wrote meanwhile, keys, settings, resize, detach
drive tc --size 30x100 wait:0.4 key:+ wait:0.5 key:t wait:0.3 resize:50x132 wait:0.4 key:s wait:0.3 detach
screen_has "tty ok on /dev/pts/" && pass "attach shows what it wrote before" || fail "no replay: $(head -c 300 "$T/screen")"
c=$(last_count)
[ "${c:-0}" -ge 1000 ] && pass "a key reaches it ('+' made count $c)" || fail "count ${c:-none} after '+'"
screen_has "settings echo=off icanon=off ctty=yes" && pass "it owns the terminal (controlling, cbreak, no echo)" || fail "settings: $(grep settings "$T/screen")"
screen_has "winch 50x132" && screen_has "size 50x132" && pass "a resize reaches it" || fail "resize not seen: $(grep -E 'winch|size' "$T/screen" | tr '\n' ' ')"
screen_has "detached from tc" && screen_has "^exit 0" && pass "Ctrl-\\ detaches (exit 0)" || fail "detach: $(tail -3 "$T/screen")"
kill -0 "$P" 2>/dev/null && pass "it runs on, detached" || fail "it died at detach"

# crash: snapshot, then kill -9 the program and its terminal
drive tc wait:0.3 detach
at_snap=$(last_count)		# the snapshot's count is this or a little more
check 0 "snap" "$CRYO" snap tc
sleep 8				# it counts on past its snapshot (~40)
kill -9 "$P" "$H"
check 0 "recover after kill -9 of the program and its terminal" "$CRYO" recover
check_out "^recovered tc: pid $P runs again" "recover melts it with its pid"
until_ok kill -0 "$P"
drive tc wait:0.6 key:t wait:0.3 detach
screen_has "settings echo=off icanon=off ctty=yes" && pass "after recover: a fresh terminal with its old settings" || fail "after recover: $(grep -E 'settings' "$T/screen") $(tail -2 "$T/screen")"
c=$(last_count)
[ -n "$c" ] && [ "$c" -ge "${at_snap:-0}" ] && [ "$c" -le $((at_snap + 28)) ] && pass "the counter goes on from its snapshot ($c; ~$at_snap at the snapshot)" ||
	fail "counter ${c:-none} after recover (~$at_snap at the snapshot)"

# freeze and melt: the terminal comes back again
check 0 "freeze" "$CRYO" freeze tc
check 0 "melt" "$CRYO" melt tc
drive tc wait:0.6 key:t wait:0.3 detach
screen_has "settings echo=off icanon=off ctty=yes" && screen_has "count" && pass "after freeze and melt: attach works" || fail "after melt: $(tail -3 "$T/screen")"

# a second attach takes the terminal from the first
python3 "$HERE/ttydrive.py" "$CRYO" tc wait:2 >"$T/first" 2>&1 &
sleep 0.7
drive tc wait:0.3 detach
wait
grep -q "attached elsewhere" "$T/first" && pass "a second attach takes over from the first" || fail "first attach: $(tail -2 "$T/first")"

# quitting: the holder records how it ended and goes away
check 0 "run a second counter" "$CRYO" run --name q -- python3 "$HERE/tty_counter.py"
grep -q "started cryod" "$OUT" && fail "a second cryod started" || pass "the running cryod is used"
sleep 0.5
drive q wait:0.3 key:q wait:0.5
until_ok test -f "$CRYO_HOME/term/q.exit"
[ "$(cat "$CRYO_HOME/term/q.exit" 2>/dev/null)" = "exited 3" ] && pass "its exit status is recorded (exited 3)" || fail "exit file: $(cat "$CRYO_HOME/term/q.exit" 2>&1)"
check 0 "ps" "$CRYO" ps
check_out "^q +[0-9]+ +exited\(3\)" "ps shows the group exited with its status"

# bad input
check 1 "attach to a group with no terminal" "$CRYO" attach nosuch
check_err1
check 1 "run a command that does not exist" "$CRYO" run --name bad -- /nonexistent/program
check_err "No such file" "run says why"
check 2 "run with no command" "$CRYO" run --name x
done_testing
