#!/bin/bash
# cryod's control socket, with two users: root runs cryod and adopts a
# process of its own and one of another user (uid 4242, made up for the
# test with setpriv). That user, through the socket, sees only its own
# group, can snapshot it (weak too), freeze, melt and rm it, attach to its
# terminal (cryod passes the connection: the holder's socket is root's),
# and is refused root's groups, which are left untouched. Malformed
# requests get an error reply and cryod stays.
# usage: test_ctl.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
U=4242
AS=(setpriv --reuid=$U --regid=$U --clear-groups env CRYO_HOME="$CRYO_HOME")
trap '"$CRYO" daemon stop >/dev/null 2>&1; kill -9 $ROOTP $USERP 2>/dev/null; rm -rf "$T"' EXIT
chmod 755 "$T"		# the other user reaches CRYO_HOME/cryod.sock under it

setsid sleep 600 </dev/null >/dev/null 2>&1 & ROOTP=$!; disown
setsid setpriv --reuid=$U --regid=$U --clear-groups sleep 600 </dev/null >/dev/null 2>&1 & USERP=$!; disown
sleep 0.3
check 0 "root adopts its own process" "$CRYO" adopt $ROOTP --name rootsleep
check 0 "root adopts uid $U's process" "$CRYO" adopt $USERP --name usersleep
check 1 "without cryod, another user is told to ask root" "${AS[@]}" "$CRYO" ps
check_err "cryod is not running" "the reason says cryod"
check 0 "daemon start" "$CRYO" daemon start --interval 100 --max-age 1000

check 0 "uid $U: ps" "${AS[@]}" "$CRYO" ps --json
check_json "ps --json"
n=$(python3 -c 'import json,sys; print(" ".join(g["name"] for g in json.load(open(sys.argv[1]))))' "$OUT")
[ "$n" = usersleep ] && pass "uid $U sees only its own group ($n)" || fail "uid $U sees: $n"
check 0 "root: ps" "$CRYO" ps
check_out "^rootsleep " "root sees every group"

snaps() { "$CRYO" history "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
r0=$(snaps rootsleep)
check 1 "uid $U: snap root's group" "${AS[@]}" "$CRYO" snap rootsleep
check_err "rootsleep is not yours" "refused with the reason"
[ "$(snaps rootsleep)" = "$r0" ] && pass "root's group untouched" || fail "root's group got a snapshot"
u0=$(snaps usersleep)
check 0 "uid $U: snap its own group" "${AS[@]}" "$CRYO" snap usersleep
check_out "^usersleep: snapshot [0-9]+" "the snapshot is taken"
[ "$(snaps usersleep)" -gt "$u0" ] && pass "its group has one more snapshot" || fail "no new snapshot"
check 0 "uid $U: snap --weak its idle group" "${AS[@]}" "$CRYO" snap usersleep --weak
check_out "^usersleep: snapshot [0-9]+" "an idle group's weak snapshot is taken"
check 1 "uid $U: snap a group that does not exist" "${AS[@]}" "$CRYO" snap nosuch
check_err "no group named nosuch" "says so"
check 1 "uid $U: snap --all" "${AS[@]}" "$CRYO" snap --all
check 1 "uid $U: freeze root's group" "${AS[@]}" "$CRYO" freeze rootsleep
check_err "rootsleep is not yours" "refused with the reason"
kill -0 $ROOTP && pass "root's process runs on" || fail "root's process is gone"
check 0 "uid $U: freeze its own group" "${AS[@]}" "$CRYO" freeze usersleep
check_out "^usersleep: frozen in snapshot [0-9]+" "frozen"
gone() { ! kill -0 $USERP 2>/dev/null || [ "$(awk '/^State:/ {print $2}' /proc/$USERP/status 2>/dev/null)" = Z ]; }
until_ok() { for _ in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }
until_ok gone && pass "its process ended" || fail "its process still runs"
check 0 "uid $U: ps" "${AS[@]}" "$CRYO" ps
check_out "^usersleep +[0-9]+ +frozen" "it sees its frozen group (the owner the snapshot records)"

# melt through cryod: its own frozen group comes back as its uid; root's
# frozen group is refused
check 0 "root freezes its group" "$CRYO" freeze rootsleep
check 1 "uid $U: melt root's frozen group" "${AS[@]}" "$CRYO" melt rootsleep
check_err "rootsleep: it is not yours" "refused with the reason"
check 1 "uid $U: melt with options" "${AS[@]}" "$CRYO" melt usersleep --eager
check_err "only root melts with options" "says why"
sleep 2 # pid 1 reaps the frozen process in its own time
check 0 "uid $U: melt its own group" "${AS[@]}" "$CRYO" melt usersleep
check_out "^melted usersleep: pid $USERP runs again" "melted with its pid"
uid_of() { awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$1/status 2>/dev/null; }
[ "$(uid_of $USERP)" = "$U $U $U $U" ] && pass "it runs as uid $U again" || fail "uids: $(uid_of $USERP)"
check 1 "uid $U: melt it again while it runs" "${AS[@]}" "$CRYO" melt usersleep
check_err "is running" "refused: it runs"
check 0 "root melts its own group" "$CRYO" melt rootsleep

# rm through cryod: its own group only, and not while it runs (unless
# --force); root's running and frozen groups are refused
check 1 "uid $U: rm its running group" "${AS[@]}" "$CRYO" rm usersleep
check_err "usersleep runs as pid" "refused: it runs"
check 1 "uid $U: rm root's running group" "${AS[@]}" "$CRYO" rm rootsleep
check_err "group rootsleep is not yours" "refused with the reason"
check 1 "uid $U: rm --store" "${AS[@]}" "$CRYO" rm usersleep --store /tmp/nosuch
check_err "only root names a store" "says why"
# (a lazy melt pages in a moment longer: cryod says try again)
frz() { "${AS[@]}" "$CRYO" freeze usersleep >/dev/null 2>&1; }
until_ok frz && pass "uid $U: freeze its group again" || fail "uid $U: freeze its group again"
until_ok gone
check 0 "uid $U: rm its frozen group" "${AS[@]}" "$CRYO" rm usersleep
check_out "^removed usersleep" "removed"
check 0 "root: ps" "$CRYO" ps
grep -q "^usersleep " "$OUT" && fail "usersleep is still listed" || pass "usersleep is gone for root too"
check 0 "root freezes its group" "$CRYO" freeze rootsleep
check 1 "uid $U: rm root's frozen group" "${AS[@]}" "$CRYO" rm rootsleep
check_err "group rootsleep is not yours" "refused (the owner its snapshot records)"
[ "$(snaps rootsleep)" -ge 1 ] && pass "root's snapshots are kept" || fail "root's group lost its snapshots"
check 1 "uid $U: rm a group that does not exist" "${AS[@]}" "$CRYO" rm nosuch
check_err "no group named nosuch" "says so"
check 0 "root melts its group" "$CRYO" melt rootsleep

# attach through cryod: the holder's socket is root's (0600); cryod
# connects for the owner of the group's process and passes the fd
HERE=$(cd "$(dirname "$0")" && pwd)
cat >"$T/cryo-as-user" <<SH
#!/bin/sh
exec setpriv --reuid=$U --regid=$U --clear-groups env CRYO_HOME="$CRYO_HOME" "$CRYO" "\$@"
SH
chmod 755 "$T/cryo-as-user"
# (in /, which uid $U may enter: python will not start where it cannot)
check 0 "root runs a counter as uid $U on a terminal" "$CRYO" run --name userterm -- setpriv --reuid=$U --regid=$U --clear-groups sh -c "cd / && exec python3 $HERE/tty_counter.py"
check 0 "root runs one of its own" "$CRYO" run --name rootterm -- python3 "$HERE/tty_counter.py"
sleep 0.6
python3 "$HERE/ttydrive.py" "$T/cryo-as-user" userterm wait:0.6 key:t wait:0.4 detach >"$T/screen" 2>&1
grep -q "settings echo=off icanon=off ctty=yes" "$T/screen" && grep -q "detached from userterm" "$T/screen" &&
	pass "uid $U attaches to its group's terminal (keys reach it, Ctrl-\\ detaches)" ||
	fail "uid $U attach: $(tail -c 300 "$T/screen")"
check 1 "uid $U: attach root's group" "${AS[@]}" "$CRYO" attach rootterm
check_err "group rootterm is not yours" "refused with the reason"
check 1 "uid $U: attach a group without a terminal" "${AS[@]}" "$CRYO" attach rootsleep
check_err "not yours" "refused: root's, and no terminal anyway"
check 1 "uid $U: attach a group that does not exist" "${AS[@]}" "$CRYO" attach nosuch
check_err "no group named nosuch" "says so"
pid_of() { "$CRYO" ps --json | python3 -c "import json,sys; print([g['pid'] for g in json.load(sys.stdin) if g['name']=='$1'][0])"; }
TP="$(pid_of userterm) $(pid_of rootterm)"
for g in userterm rootterm; do "$CRYO" rm --force "$g" >/dev/null 2>&1; done
kill -9 $TP 2>/dev/null

# malformed requests: an error reply each, cryod stays up
python3 - "$CRYO_HOME/cryod.sock" >"$T/garbage" 2>&1 <<'PY'
import socket, sys
for payload in [b"", b"\xff" * 100, b"\x0a\x03abc", b"\x0a\x02ps\x12", b"x" * 70000, b"\x0a\x04nope"]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.send(payload)
    r = s.recv(70000)
    print(len(r), r[:2].hex())
    s.close()
# a client that sends nothing is dropped, not waited for
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.settimeout(5)
print("silent", len(s.recv(100)))
PY
[ "$(grep -c "^[0-9]* 08" "$T/garbage")" = 6 ] && pass "6 malformed requests: 6 error replies" || fail "replies: $(cat "$T/garbage")"
grep -q "^silent 0" "$T/garbage" && pass "a silent client is dropped" || fail "silent client: $(tail -1 "$T/garbage")"
check 0 "cryod still runs" "$CRYO" daemon status
check 0 "uid $U: ps still works" "${AS[@]}" "$CRYO" ps
done_testing
