#!/bin/bash
# redis-server, a real server, frozen and melted (root): it holds an epoll,
# TCP listeners on IPv4 and IPv6, an in-process pipe and 4 threads. After
# each melt it answers on its port with all of its data, and a counter
# goes on from where it was. A snapshot while a client is connected takes
# its connection and leaves redis running, untraced, the client served.
# Frozen while 4 clients that reconnect (redis_clients.py) are busy: by
# default each sees its connection reset and reconnects; with
# --tcp-established none notices; every key one was told +OK for is kept.
# usage: test_redis.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
	{ echo "SKIP: redis-server/redis-cli not installed"; exit 77; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rcli() { redis-cli -p "$PORT" "$@" 2>&1; }

check 0 "store init" "$CRYO" store init --size 256M
setsid redis-server --port "$PORT" --save '' --appendonly no --bind '127.0.0.1 ::1' \
	</dev/null >"$T/redis.log" 2>&1 &
PID=$!
disown
for _ in $(seq 100); do [ "$(rcli ping)" = PONG ] && break; sleep 0.05; done
seq 1000 | sed 's/.*/SET key:& val:&/' | redis-cli -p "$PORT" >/dev/null
rcli set counter 100 >/dev/null
[ "$(rcli dbsize)" = 1001 ] && pass "redis has 1001 keys" || fail "dbsize $(rcli dbsize)"

check 0 "adopt redis-server $PID" "$CRYO" adopt "$PID" --name redis
check 0 "snap redis" "$CRYO" snap redis
check 0 "inspect shows its fds" "$CRYO" inspect redis
check_out "epoll" "inspect: the epoll"
check_out "tcp 127.0.0.1:$PORT listening" "inspect: the IPv4 listener"
check_out "tcp6 \[::1\]:$PORT listening" "inspect: the IPv6 listener"

# A client connected: the snapshot takes its connection (as one that will
# come back reset), redis runs on untraced and the client is still served.
exec 9<>"/dev/tcp/127.0.0.1/$PORT"
check 0 "snap with a client connected" "$CRYO" snap redis
check 0 "inspect" "$CRYO" inspect redis
check_out "tcp 127.0.0.1:$PORT -> 127.0.0.1:[0-9]+ established, reset at melt" \
	"inspect names the client's connection"
tracer=$(awk '/^TracerPid:/ {print $2}' /proc/$PID/status)
state=$(awk '/^State:/ {print $2}' /proc/$PID/status)
[ "$tracer" = 0 ] && [ "$state" != T ] && [ "$(rcli ping)" = PONG ] &&
	pass "redis runs on, untraced, after the snapshot" ||
	fail "after the snapshot: tracer $tracer state $state"
printf 'PING\r\n' >&9
reply=$(timeout 5 head -c 7 <&9 | tr -d '\r\n')
[ "$reply" = +PONG ] && pass "the connected client is still served after the snapshot" ||
	fail "the connected client got '$reply'"
exec 9>&-
sleep 0.1

want=100
for i in 1 2 3; do
	check 0 "freeze redis ($i)" "$CRYO" freeze redis
	if [ "$(rcli ping)" != PONG ]; then pass "frozen redis is gone ($i)"; else fail "redis still answers after freeze"; fi
	check 0 "melt redis ($i)" "$CRYO" melt redis
	check_out "pid $PID runs again" "melt $i: the same pid"
	for _ in $(seq 50); do [ "$(rcli ping)" = PONG ] && break; sleep 0.05; done
	[ "$(rcli ping)" = PONG ] && pass "melt $i: PING" || fail "melt $i: no PONG"
	keys=$((1001 + i - 1))	# + the after:N of each earlier melt
	[ "$(rcli dbsize)" = $keys ] && [ "$(rcli get key:1)" = val:1 ] &&
		[ "$(rcli get key:777)" = val:777 ] && [ "$(rcli get key:1000)" = val:1000 ] &&
		pass "melt $i: all $keys keys" || fail "melt $i: dbsize $(rcli dbsize) key:777=$(rcli get key:777)"
	want=$((want + 1))
	got=$(rcli incr counter)
	[ "$got" = "$want" ] && pass "melt $i: counter goes on ($got)" || fail "melt $i: counter $got, expected $want"
	[ "$(redis-cli -h ::1 -p "$PORT" ping 2>&1)" = PONG ] &&
		pass "melt $i: IPv6 listener answers" || fail "melt $i: no answer on [::1]:$PORT"
	rcli set "after:$i" yes >/dev/null
done
[ "$(rcli get after:1)" = yes ] && pass "writes after a melt are kept by the next snapshot" ||
	fail "after:1 = $(rcli get after:1)"

# ---- frozen while clients are connected and busy ----
NCL=4
client_field() { awk -v k="$1" -v f="$2" '$2 == k {print $f}' "$T/clients"; }
acked_total() { awk '{s += $4} END {print s + 0}' "$T/clients" 2>/dev/null; }
busy_since() { [ "$(acked_total)" -gt "$1" ]; }
all_reconnected() {
	for k in $(seq 0 $((NCL - 1))); do [ "$(client_field $k 6)" -ge 1 ] || return 1; done
}
# keys_there: every key a client had an +OK for is in redis, with its value
keys_there() {
	local k a
	for k in $(seq 0 $((NCL - 1))); do
		a=$(client_field $k 4)
		for i in 0 $((a / 2)) $((a - 1)); do
			[ "$(rcli get "c$k:$i")" = "$i" ] || { echo "c$k:$i"; return 1; }
		done
	done
}
for mode in reset keep; do
	rm -f "$T/stop" "$T/clients"
	python3 "$(dirname "$0")/redis_clients.py" "$PORT" $NCL "$T/clients" "$T/stop" &
	CLP=$!
	for _ in $(seq 100); do busy_since 200 && break; sleep 0.05; done
	busy_since 200 && pass "$mode: $NCL clients busy ($(acked_total) replies)" || fail "$mode: clients not busy"
	opt=$([ $mode = keep ] && echo --tcp-established)
	check 0 "$mode: freeze redis $opt with $NCL clients connected" "$CRYO" freeze redis $opt
	check 0 "$mode: inspect" "$CRYO" inspect redis
	want=$([ $mode = keep ] && echo "repaired, held" || echo "reset at melt")
	n=$(grep -c "tcp 127.0.0.1:$PORT -> .* established, $want" "$OUT")
	[ "$n" -ge $NCL ] && pass "$mode: $n client connections saved ($want)" ||
		fail "$mode: $n client connections '$want' in: $(grep tcp "$OUT" | head -5)"
	before=$(acked_total)
	check 0 "$mode: melt redis" "$CRYO" melt redis
	for _ in $(seq 200); do busy_since $((before + 100)) && break; sleep 0.05; done
	busy_since $((before + 100)) && pass "$mode: the clients go on after melt ($(acked_total) replies)" ||
		fail "$mode: the clients stalled at $(acked_total) replies"
	if [ $mode = reset ]; then
		all_reconnected && pass "reset: every client saw its connection reset and reconnected" ||
			fail "reset: $(tr '\n' ';' <"$T/clients")"
	else
		[ "$(awk '{s += $6} END {print s + 0}' "$T/clients")" = 0 ] &&
			pass "keep: no client ever saw its connection end" ||
			fail "keep: $(tr '\n' ';' <"$T/clients")"
	fi
	touch "$T/stop"
	wait $CLP
	[ "$(awk '{s += $8} END {print s + 0}' "$T/clients")" = 0 ] && pass "$mode: no wrong reply" ||
		fail "$mode: wrong replies: $(tr '\n' ';' <"$T/clients")"
	missing=$(keys_there) && pass "$mode: every acknowledged key is there ($(acked_total) keys)" ||
		fail "$mode: acknowledged key $missing is missing"
	[ "$(rcli get key:777)" = val:777 ] && pass "$mode: the old keys are there" || fail "$mode: key:777 lost"
done
rcli shutdown nosave >/dev/null 2>&1
kill -9 "$PID" 2>/dev/null
done_testing
