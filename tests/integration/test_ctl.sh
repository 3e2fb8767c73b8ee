#!/bin/bash
# cryod's control socket, with two users: root runs cryod and adopts a
# process of its own and one of another user (uid 4242, made up for the
# test with setpriv). That user, through the socket, sees only its own
# group, can snapshot it (weak too) and freeze it, and is refused root's
# group, which is left untouched. Malformed requests get an error reply and
# cryod stays.
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
