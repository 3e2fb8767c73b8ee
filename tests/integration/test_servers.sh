#!/bin/bash
# Real servers frozen and melted while clients use them (root):
# `python3 -m http.server` answers requests before and after each melt
# (a request in progress at the freeze is retried by its client and
# served, the file it serves byte for byte the same); redis-server serves
# a redis-benchmark run before the freeze and another after the melt (the
# first run's connections are gone; new clients connect and every request
# succeeds), with its keys kept.
# usage: test_servers.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
until_n() { local n=$1; shift; for _ in $(seq $((n * 20))); do "$@" && return 0; sleep 0.05; done; return 1; }

check 0 "store init" "$CRYO" store init --size 512M

# ---- python3 -m http.server ----
W=$T/www
mkdir -p "$W"
head -c 300000 /dev/urandom >"$W/blob"
echo "hello from cryo" >"$W/index.txt"
HP=$(free_port)
(cd "$W" && exec setsid python3 -m http.server "$HP" --bind 127.0.0.1 </dev/null >"$T/http.log" 2>&1) &
H=$!
disown
get() { curl -sf --max-time 5 --retry 5 --retry-all-errors --retry-delay 0 "http://127.0.0.1:$HP/$1"; }
until_n 10 get index.txt >/dev/null || fail "http.server never answered"
[ "$(get index.txt)" = "hello from cryo" ] && pass "http.server answers" || fail "http.server: '$(get index.txt)'"
check 0 "adopt http.server $H" "$CRYO" adopt "$H" --name http
for i in 1 2 3; do
	check 0 "freeze http.server ($i)" "$CRYO" freeze http
	until_n 5 gone "$H" || fail "http.server still there after freeze $i"
	# a client asking while it is frozen: refused, it retries until melted
	( get blob >"$T/during.$i" ) &
	CL=$!
	sleep 0.2
	if [ $((i % 2)) = 1 ]; then
		check 0 "melt http.server ($i, lazy)" "$CRYO" melt http
	else
		check 0 "melt http.server ($i, eager)" "$CRYO" melt --eager http
	fi
	check_out "pid $H runs again" "melt $i: the same pid"
	wait "$CL" && cmp -s "$T/during.$i" "$W/blob" &&
		pass "melt $i: the request made while frozen was served, byte for byte" ||
		fail "melt $i: the request made while frozen: $(stat -c %s "$T/during.$i" 2>/dev/null) bytes"
	[ "$(get index.txt)" = "hello from cryo" ] && get blob | cmp -s - "$W/blob" &&
		pass "melt $i: http.server answers new requests" || fail "melt $i: no answer"
done
kill -9 "$H" 2>/dev/null

# ---- redis-server with redis-benchmark ----
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	RP=$(free_port)
	setsid redis-server --port "$RP" --save '' --appendonly no --bind 127.0.0.1 \
		</dev/null >"$T/redis.log" 2>&1 &
	R=$!
	disown
	pong() { [ "$(redis-cli -p "$RP" ping 2>/dev/null)" = PONG ]; }
	until_n 10 pong || fail "redis never answered"
	bench() {
		redis-benchmark -p "$RP" -c 8 -n 20000 -r 1000 -t set,get,incr -q 2>&1 | tr '\r' '\n' |
			grep -E '^(SET|GET|INCR): [0-9.]+ requests per second' >"$T/bench.$1"
		[ "$(wc -l <"$T/bench.$1")" = 3 ]
	}
	bench before && pass "redis-benchmark before: $(tr '\n' ' ' <"$T/bench.before")" ||
		fail "redis-benchmark before the freeze failed"
	keys=$(redis-cli -p "$RP" dbsize)
	check 0 "adopt redis-server $R" "$CRYO" adopt "$R" --name redis
	check 0 "freeze redis" "$CRYO" freeze redis
	until_n 5 gone "$R" || fail "redis still there after freeze"
	check 0 "melt redis" "$CRYO" melt redis
	until_n 10 pong || fail "redis never answered after melt"
	[ "$(redis-cli -p "$RP" dbsize)" = "$keys" ] && pass "redis keeps its $keys keys" ||
		fail "redis: dbsize $(redis-cli -p "$RP" dbsize), was $keys"
	bench after && pass "redis-benchmark after melt: $(tr '\n' ' ' <"$T/bench.after")" ||
		fail "redis-benchmark after melt: $(cat "$T/bench.after")"
	kill -9 "$R" 2>/dev/null
else
	echo "SKIP: redis-server/redis-benchmark not installed: its half not run"
	fail "redis-benchmark is not installed (scripts/deps.sh installs redis-tools)"
fi
done_testing
