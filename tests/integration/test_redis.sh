#!/bin/bash
# redis-server, a real server, frozen and melted (root): it holds an epoll,
# TCP listeners on IPv4 and IPv6, an in-process pipe and 4 threads. After
# each melt it answers on its port with all of its data, and a counter
# goes on from where it was. A snapshot while a client is connected is
# refused (an established connection cannot come back alone yet) and
# leaves redis running, untraced.
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

# A client connected: refused, redis untouched.
exec 9<>"/dev/tcp/127.0.0.1/$PORT"
check 1 "snap with a client connected" "$CRYO" snap redis
check_err "TCP connection|connected" "the refusal names the connection"
tracer=$(awk '/^TracerPid:/ {print $2}' /proc/$PID/status)
state=$(awk '/^State:/ {print $2}' /proc/$PID/status)
[ "$tracer" = 0 ] && [ "$state" != T ] && [ "$(rcli ping)" = PONG ] &&
	pass "redis runs on, untraced, after the refused snapshot" ||
	fail "after the refused snapshot: tracer $tracer state $state"
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
rcli shutdown nosave >/dev/null 2>&1
kill -9 "$PID" 2>/dev/null
done_testing
