#!/bin/bash
# Established TCP connections across freeze and melt (root). tcpconv.c is
# the group, a C program holding a conversation that checks itself (two
# byte streams, each byte a function of its offset); tcp_server.py is its
# peer outside the group, which checks its half too and goes on sending
# while the client is frozen.
#   - freeze --tcp-established, three times (lazy, eager, and twice in one
#     conversation): the conversation goes on byte-exact, on the same
#     connection, which the server never saw reset; the connection is held
#     (nftables) while frozen, the hold is gone after melt.
#   - the same snapshot melted a second time: the hold is gone, so the
#     connection comes back reset (a warning says why).
#   - freeze without the option, twice: the client sees a reset the way a
#     real one looks (POLLERR|POLLHUP, SO_ERROR ECONNRESET, the bytes it had
#     received, end of file, EPIPE) on the same fd, reconnects, and a new
#     conversation passes.
#   - snap mid-conversation (the process runs on): nothing is disturbed.
#   - both ends in the group (one process; parent and child): frozen and
#     melted twice each by default, and snapshotted, the conversation goes on.
#   - UDP sockets (one connected) frozen with datagrams queued: each gets
#     them back, in order, from their source addresses (udpq.py).
# usage: test_tcp.sh CRYO TCPCONV
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
TCPCONV=${2:?usage: $0 CRYO TCPCONV}
command -v nft >/dev/null && command -v ss >/dev/null ||
	{ echo "SKIP: nft (nftables) and ss (iproute2) are needed"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
TOTAL=3000000

until_n() { local n=$(($1 * 20)); shift; for _ in $(seq $n); do "$@" && return 0; sleep 0.05; done; return 1; }
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
# the client's established connection: "RECVQ SENDQ LOCALPORT"
conn_of() { ss -tnpH state established 2>/dev/null | grep "pid=$1," |
	awk '{n = split($3, a, ":"); print $1, $2, a[n]; exit}'; }
queued() { local q; q=$(conn_of "$1"); [ -n "$q" ] && [ "${q%% *}" -gt 0 ]; }
# the server's line of connection N: "conn N sent S recv R STATE"
srv_field() { awk -v c="$1" -v f="$2" '$2 == c {print $f}' "$T/status"; }
srv_sent() { srv_field "$1" 4; }
srv_recv() { srv_field "$1" 6; }
srv_state() { srv_field "$1" 7; }
nconns() { wc -l <"$T/status"; }
has_result() { [ -s "$1" ]; }
server_sent_more() { [ "$(srv_sent "$1")" -gt "$2" ]; }

cleanup() {
	[ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null
	for p in ${PIDS:-}; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

check 0 "store init" "$CRYO" store init --size 512M
python3 "$HERE/tcp_server.py" "$T/port" "$T/status" $TOTAL &
SRV=$!
until_n 10 has_result "$T/port" || fail "the server did not start"
PORT=$(cat "$T/port")

# start_client NAME MODE: the client as group NAME, adopted; sets CL
start_client() {
	rm -f "$T/res.$1"
	setsid "$TCPCONV" client "$PORT" $TOTAL "$T/res.$1" "$2" </dev/null >"$T/out.$1" 2>&1 &
	CL=$!
	disown
	PIDS="${PIDS:-} $CL"
	until_n 10 grep -q ready "$T/out.$1" || fail "$1: the client did not start"
	check 0 "$1: adopt the client" "$CRYO" adopt "$CL" --name "$1"
}

# ---- --tcp-established: the conversation goes on ----
queued_seen=0
for i in 1 2 3; do
	name=keep$i
	start_client $name keep
	conn=$(nconns)
	for round in 1 $([ $i = 3 ] && echo 2); do
		until_n 10 queued "$CL" || fail "$name: no bytes ever waited in the client's queue"
		lport=$(conn_of "$CL" | awk '{print $3}')
		check 0 "$name: freeze --tcp-established mid-conversation ($round)" \
			"$CRYO" freeze --tcp-established $name
		until_n 5 gone "$CL" || fail "$name: pid $CL still there after freeze"
		sent=$(srv_sent $conn)
		until_n 10 server_sent_more $conn "$sent" &&
			pass "$name: the server goes on sending while the client is frozen" ||
			fail "$name: the server's sent count stayed at $sent"
		if nft list set inet cryo hold4 2>/dev/null | grep -q "127.0.0.1 . $lport . 127.0.0.1 . $PORT"; then
			pass "$name: the connection is held while frozen (port $lport)"
		else
			fail "$name: no hold for port $lport: $(nft list set inet cryo hold4 2>&1 | tr '\n' ' ')"
		fi
		check 0 "$name: inspect" "$CRYO" inspect $name
		check_out "tcp 127.0.0.1:$lport -> 127.0.0.1:$PORT established, repaired, held" \
			"$name: inspect names the repaired, held connection"
		q=$(grep -o "repaired, held, [0-9]* bytes queued in" "$OUT" | grep -o "[0-9]* bytes" | cut -d' ' -f1)
		[ "${q:-0}" -gt 0 ] && queued_seen=$((queued_seen + 1))
		[ "$(srv_state $conn)" = open ] && pass "$name: the server's connection is still open" ||
			fail "$name: the server's connection: $(srv_state $conn)"
		eager=$([ $i = 2 ] && echo --eager)
		check 0 "$name: melt $eager ($round)" "$CRYO" melt $name $eager
		if nft list set inet cryo hold4 2>/dev/null | grep -q "127.0.0.1 . $lport . "; then
			fail "$name: the hold is still there after melt"
		else
			pass "$name: the hold is lifted at melt"
		fi
	done
	until_n 90 has_result "$T/res.$name" || fail "$name: no result in 90 s"
	if grep -q "^PASS client: $TOTAL bytes each way, byte-exact, no error, same fd and addresses" \
		"$T/res.$name"; then
		pass "$name: $(cat "$T/res.$name")"
	else
		fail "$name: $(cat "$T/res.$name" 2>/dev/null)"
	fi
	until_n 30 grep -q "^conn $conn .* ok$" "$T/status"
	[ "$(srv_state $conn)" = ok ] && [ "$(srv_recv $conn)" = $TOTAL ] &&
		pass "$name: the server's side of the conversation passed, never reset" ||
		fail "$name: the server's connection $conn: $(grep "^conn $conn " "$T/status")"
	[ "$(nconns)" = "$conn" ] && pass "$name: the server saw one connection" ||
		fail "$name: the server saw $(($(nconns) - conn + 1)) connections"
done
[ $queued_seen -gt 0 ] && pass "received bytes were queued at $queued_seen of 4 freezes" ||
	fail "no freeze found bytes queued: the queue path was not exercised"

# ---- the same snapshot again: held no more, so reset ----
check 0 "keep1: melt its last snapshot a second time" "$CRYO" melt keep1
check_err "not held since the freeze" "keep1: a warning says the connection was not held"
two_lines() { [ "$(wc -l <"$1")" -ge 2 ]; }
until_n 30 two_lines "$T/res.keep1"
tail -1 "$T/res.keep1" | grep -q "^FAIL error in keep mode: Connection reset by peer" &&
	pass "keep1 melted again: its connection came back reset" ||
	fail "keep1 melted again: $(tail -1 "$T/res.keep1")"

# ---- default: a reset the way a real one looks ----
for i in 1 2; do
	name=reset$i
	start_client $name reset
	conn=$(nconns)
	until_n 10 queued "$CL" || fail "$name: no bytes ever waited in the client's queue"
	check 0 "$name: freeze" "$CRYO" freeze $name
	check 0 "$name: inspect" "$CRYO" inspect $name
	check_out "established, reset at melt" "$name: inspect says it comes back reset"
	x=$(grep -o "reset at melt, [0-9]* bytes queued in" "$OUT" | grep -o "[0-9]* bytes" | cut -d' ' -f1)
	until_n 10 grep -q "^conn $conn .* closed:" "$T/status" &&
		pass "$name: the server saw the connection end ($(srv_state $conn))" ||
		fail "$name: the server's connection: $(srv_state $conn)"
	check 0 "$name: melt" "$CRYO" melt $name
	until_n 90 has_result "$T/res.$name" || fail "$name: no result in 90 s"
	grep -q "^PASS client: reset seen" "$T/res.$name" && pass "$name: $(cat "$T/res.$name")" ||
		fail "$name: $(cat "$T/res.$name" 2>/dev/null)"
	# the client is frozen in poll(), which reports the reset before any
	# read: what it reads after it is exactly what was queued
	grep -q "^reset seen: ${x:-none} bytes still read" "$T/out.$name" &&
		pass "$name: the $x bytes queued at the freeze are read after the reset" ||
		fail "$name: $x bytes were queued; $(cat "$T/out.$name")"
	until_n 30 grep -q "^conn $((conn + 1)) .* ok$" "$T/status"
	[ "$(srv_state $((conn + 1)))" = ok ] && pass "$name: the new conversation passed on the server" ||
		fail "$name: the server's new connection: $(grep "^conn $((conn + 1)) " "$T/status")"
done

# ---- snap: the process runs on undisturbed ----
start_client snap1 keep
conn=$(nconns)
until_n 10 queued "$CL"
check 0 "snap1: snap mid-conversation" "$CRYO" snap snap1
check 0 "snap1: snap again" "$CRYO" snap snap1
check 0 "snap1: inspect" "$CRYO" inspect snap1
check_out "established, reset at melt" "snap1: a snapshot keeps a connection to outside as reset"
until_n 90 has_result "$T/res.snap1" || fail "snap1: no result in 90 s"
grep -q "^PASS" "$T/res.snap1" && pass "snap1: $(cat "$T/res.snap1")" ||
	fail "snap1: $(cat "$T/res.snap1" 2>/dev/null)"
check 2 "snap --tcp-established is refused" "$CRYO" snap --tcp-established snap1

# ---- both ends in the group ----
for how in one fork; do
	name=pair$how
	rm -f "$T/res.$name"
	setsid "$TCPCONV" pair $TOTAL "$T/res.$name" $([ $how = fork ] && echo fork) \
		</dev/null >"$T/out.$name" 2>&1 &
	P=$!
	disown
	PIDS="$PIDS $P"
	until_n 10 grep -q ready "$T/out.$name" || fail "$name: did not start"
	check 0 "$name: adopt" "$CRYO" adopt "$P" --name $name
	check 0 "$name: snap mid-conversation" "$CRYO" snap $name
	for round in 1 2; do
		until_n 10 queued "$P"
		check 0 "$name: freeze ($round)" "$CRYO" freeze $name
		until_n 5 gone "$P" || fail "$name: still there after freeze"
		check 0 "$name: inspect" "$CRYO" inspect $name
		n=$(grep -c "established, repaired, peer in the group" "$OUT")
		[ "$n" = 2 ] && pass "$name: both ends repaired, peer in the group" ||
			fail "$name: $n ends repaired: $(grep tcp "$OUT")"
		check 0 "$name: melt ($round)" "$CRYO" melt $name $([ $round = 2 ] && echo --eager)
	done
	until_n 90 has_result "$T/res.$name" || fail "$name: no result in 90 s"
	grep -q "^PASS pair" "$T/res.$name" && pass "$name: $(cat "$T/res.$name")" ||
		fail "$name: $(cat "$T/res.$name" 2>/dev/null)"
done
# ---- UDP sockets keep their queued datagrams ----
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PEERP=$(free_port)
SRCP=$(free_port)
rm -f "$T/udp.ports" "$T/res.udp"
setsid python3 "$HERE/udpq.py" "$T/udp.ports" "$T/res.udp" "$PEERP" "$SRCP" </dev/null >"$T/out.udp" 2>&1 &
U=$!
disown
PIDS="${PIDS:-} $U"
until_n 10 has_result "$T/udp.ports" || fail "udp: did not start"
read -r AP BP <"$T/udp.ports"
python3 - "$AP" "$BP" "$PEERP" "$SRCP" <<'PY'
import socket, sys
ap, bp, peer, src = map(int, sys.argv[1:])
for port, frm, name in ((ap, src, "a"), (bp, peer, "b")):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", frm))
    for i in range(5):
        s.sendto(("%s-%d" % (name, i)).encode(), ("127.0.0.1", port))
    s.close()
PY
check 0 "udp: adopt" "$CRYO" adopt "$U" --name udp
check 0 "udp: freeze with datagrams queued" "$CRYO" freeze udp
check 0 "udp: inspect" "$CRYO" inspect udp
n=$(grep -c "udp 127.0.0.1:[0-9]*.*datagrams queued" "$OUT")
[ "$n" = 2 ] && pass "udp: both sockets saved with their datagrams" ||
	fail "udp: $n sockets with datagrams: $(grep udp "$OUT")"
check 0 "udp: melt" "$CRYO" melt udp
kill -USR1 "$U"
until_n 20 has_result "$T/res.udp" || fail "udp: no result"
grep -q "^PASS" "$T/res.udp" && pass "$(cat "$T/res.udp")" || fail "$(cat "$T/res.udp" 2>/dev/null)"

nft list table inet cryo 2>/dev/null | grep -q "elements" &&
	fail "holds left behind: $(nft list table inet cryo | grep -A1 elements | tr '\n' ' ')" ||
	pass "no hold is left behind"
done_testing
