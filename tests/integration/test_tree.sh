#!/bin/bash
# Process trees with real programs, each melted lazily (the default: one
# pager serves every process of the tree) and again with --eager: a shell
# pipeline `bash -c 'yes | head -c N | wc -c'` frozen mid-stream and
# melted (every process with its pid under its parent, the pipes between
# them with the bytes in flight: the count comes out exactly N); the same
# pipeline snapshotted while it runs, killed with -9 and melted from that
# snapshot; `make -j2` frozen while both jobs run, finishing after melt;
# two python processes talking over a socketpair, frozen
# mid-conversation; a zombie child whose status its parent waits for after
# melt. A lazy melt must have started a pager that served the tree and
# ended; an eager one none. Then bash with 40 children, melted lazily (its
# one pager serves 41 processes and then closes every copy of their
# userfaultfds); python's mmap shared over fork, still shared after melt.
# usage: test_tree.sh CRYO
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

N=4000000000
kids() { pgrep -P "$1" | sort -n | tr '\n' ' '; }
comms() { for k in $(pgrep -P "$1" | sort -n); do cat "/proc/$k/comm"; done | tr '\n' ' '; }
# until_n SECONDS CMD...: poll CMD every 0.05 s
until_n() { local n=$(($1 * 20)); shift; for _ in $(seq $n); do "$@" && return 0; sleep 0.05; done; return 1; }
has_kids() { [ "$(pgrep -P "$1" | wc -l)" -ge "$2" ]; }
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
pipeline() {
	setsid bash -c "yes | head -c $N | wc -c > $1" </dev/null >/dev/null 2>&1 &
	P=$!
	disown
	until_n 10 has_kids $P 3 || fail "the pipeline never started its 3 processes"
	sleep 0.3
}
# tree_ins NAME: how many times NAME's pager said it brought all in
tree_ins() { local n; n=$(grep -c "all in after" "$CRYO_HOME/log/pager-$1.log" 2>/dev/null); echo "${n:-0}"; }
more_ins() { [ "$(tree_ins "$1")" -gt "$2" ]; }
# melt_tree MODE NAME WHAT: melt NAME lazily (MODE lazy) or with --eager
melt_tree() {
	local n0
	n0=$(tree_ins "$2")
	if [ "$1" = lazy ]; then
		check 0 "$3" "$CRYO" melt "$2"
	else
		check 0 "$3 (--eager)" "$CRYO" melt --eager "$2"
	fi
	MELT_N0=$n0
}
# paged_as MODE NAME: after the tree ran, how its memory came in
paged_as() {
	if [ "$1" = lazy ]; then
		until_n 30 more_ins "$2" "$MELT_N0" &&
			pass "$2: one pager served the tree: $(grep "all in after" "$CRYO_HOME/log/pager-$2.log" | tail -1 | cut -c1-160)" ||
			fail "$2: no pager brought the tree in"
	else
		[ "$(tree_ins "$2")" = "$MELT_N0" ] && [ ! -e "$CRYO_HOME/pager/$2.state" ] &&
			pass "$2: eager: no pager" || fail "$2: an eager melt started a pager"
	fi
}

check 0 "store init" "$CRYO" store init --size 512M

for m in lazy eager; do
echo "# ---- $m melts ----"
# ---- freeze mid-stream, melt ----
pipeline "$T/count1-$m"
before=$(kids $P)
check 0 "adopt the pipeline" "$CRYO" adopt "$P" --name pipe1-$m
check 0 "freeze it mid-stream" "$CRYO" freeze pipe1-$m
[ -s "$T/count1-$m" ] && fail "the pipeline ended before the freeze: $(cat "$T/count1-$m")"
until_n 5 gone "$P" || fail "pid $P still there after freeze"
check 0 "inspect shows 4 processes" bash -c "'$CRYO' inspect pipe1-$m | grep -c '^process' | grep -qx 4"
melt_tree $m pipe1-$m "melt pipe1"
check_out "^melted pipe1-$m: pid $P runs again" "melt names the root's pid"
after=$(kids $P)
# read at once: the pipeline may finish (and its children exit) soon after
kid_sid=$(awk '{print $6}' "/proc/$(pgrep -P $P | head -1)/stat" 2>/dev/null)
if [ "$after" = "$before" ] && [ "$(comms $P)" = "yes head wc " ]; then
	pass "children back with their pids under bash: $after($(comms $P))"
else
	fail "children after melt: '$after' ($(comms $P)), before: '$before'"
fi
if [ "$(awk '{print $6}' /proc/$P/stat)" = "$P" ] &&
   [ "$kid_sid" = "$P" ]; then
	pass "bash leads its session, its children are in it"
else
	fail "sessions after melt: $(ps -o pid,ppid,pgid,sid,comm -p "$P" --ppid "$P" | tr '\n' ';')"
fi
until_n 120 gone "$P" || fail "the pipeline did not finish in 120 s"
paged_as $m pipe1-$m
if [ "$(cat "$T/count1-$m" 2>/dev/null)" = "$N" ]; then
	pass "wc counted exactly $N bytes across the freeze"
else
	fail "wc counted '$(cat "$T/count1-$m" 2>/dev/null)', want $N"
fi

# ---- snapshot while it runs, kill -9, melt ----
pipeline "$T/count2-$m"
check 0 "adopt a second pipeline" "$CRYO" adopt "$P" --name pipe2-$m
check 0 "snap it while it runs" "$CRYO" snap pipe2-$m
if [ "$(pgrep -P "$P" | wc -l)" = 3 ] && ! gone "$P"; then
	pass "the tree runs on after the snapshot"
else
	fail "after snap: $(ps -o pid,stat,comm -p "$P" --ppid "$P" | tr '\n' ';')"
fi
all=$(echo "$P" $(kids $P))
kill -STOP $all		# all at once: wc must not see head die and write its count
kill -9 $all
until_n 5 gone "$P" || fail "kill -9 did not end $P"
melt_tree $m pipe2-$m "melt pipe2 from the snapshot"
until_n 120 gone "$P" || fail "the melted pipeline did not finish in 120 s"
paged_as $m pipe2-$m
if [ "$(cat "$T/count2-$m" 2>/dev/null)" = "$N" ]; then
	pass "after kill -9 and melt, wc counted exactly $N bytes"
else
	fail "wc counted '$(cat "$T/count2-$m" 2>/dev/null)' after kill -9 and melt, want $N"
fi

# ---- make -j2 ----
M=$T/proj-$m
mkdir -p "$M"
printf 'all: a b\n\techo built > all\na:\n\tsleep 2; echo A > a\nb:\n\tsleep 2; echo B > b\n' > "$M/Makefile"
setsid bash -c "cd '$M' && exec make -j2" </dev/null >"$T/make-$m.out" 2>&1 &
P=$!
disown
has_sleeps() { [ "$(pgrep -f '^sleep 2' | wc -l)" -ge 2 ]; }
until_n 10 has_sleeps || fail "make never started both jobs"
check 0 "adopt make -j2" "$CRYO" adopt "$P" --name make-$m
check 0 "freeze make-$m with both jobs running" "$CRYO" freeze make-$m
[ -e "$M/a" ] || [ -e "$M/b" ] && fail "a job finished before the freeze"
until_n 5 gone "$P" || fail "make still there after freeze"
melt_tree $m make-$m "melt make"
until_n 30 gone "$P" || fail "make did not finish in 30 s after melt"
paged_as $m make-$m
if [ "$(cat "$M/a" "$M/b" "$M/all" 2>/dev/null | tr '\n' ' ')" = "A B built " ]; then
	pass "make finished both jobs and the target after melt"
else
	fail "make after melt: a=$(cat "$M/a" 2>&1) b=$(cat "$M/b" 2>&1) all=$(cat "$M/all" 2>&1); output: $(tr '\n' ';' < "$T/make-$m.out")"
fi
# ---- python processes talking over a socketpair ----
SLOG=$T/sockpair-$m.log
setsid python3 "$(dirname "$0")/sockpair.py" "$SLOG" </dev/null >/dev/null 2>&1 &
P=$!
disown
lines() { { wc -l < "$SLOG"; } 2>/dev/null || echo 0; }
more_lines() { [ "$(lines)" -gt "$1" ]; }
until_n 10 more_lines 2 || fail "the python pair never talked"
check 0 "adopt the python pair" "$CRYO" adopt "$P" --name pair-$m
check 0 "freeze it mid-conversation" "$CRYO" freeze pair-$m
n=$(lines)
melt_tree $m pair-$m "melt the pair"
if until_n 20 more_lines $((n + 2)) && ! grep -q FAIL "$SLOG"; then
	pass "the conversation goes on after melt: $(tail -1 "$SLOG")"
else
	fail "after melt: $(tail -3 "$SLOG" | tr '\n' ';')"
fi
paged_as $m pair-$m
kill -9 "$P" $(pgrep -P "$P") 2>/dev/null

# ---- a zombie: python's child exited, not waited for ----
Z=$T/zres-$m
setsid python3 -c "
import os, sys, time
z = os.fork()
if z == 0:
    os._exit(3)
open(sys.argv[1] + '.pid', 'w').write(str(os.getpid()))
while not os.path.exists(sys.argv[1] + '.go'):
    time.sleep(0.05)
p, st = os.waitpid(z, 0)
ok = p == z and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 3
open(sys.argv[1], 'w').write('PASS' if ok else 'FAIL pid %d status %d' % (p, st))
" "$Z" </dev/null >/dev/null 2>&1 &
disown
until_n 10 test -s "$Z.pid" || fail "python never started"
P=$(cat "$Z.pid")
check 0 "adopt python with a zombie child" "$CRYO" adopt "$P" --name zomb-$m
check 0 "freeze it" "$CRYO" freeze zomb-$m
check 0 "inspect shows the zombie and its status" bash -c "'$CRYO' inspect zomb-$m | grep -q '^zombie .*exited with 3'"
melt_tree $m zomb-$m "melt it"
touch "$Z.go"
until_n 10 test -s "$Z"
if [ "$(cat "$Z" 2>/dev/null)" = PASS ]; then
	pass "after melt, python's wait finds its zombie child's status 3"
else
	fail "python's wait after melt: $(cat "$Z" 2>/dev/null)"
fi
paged_as $m zomb-$m
done

# ---- a wide tree: 40 children (the capture's tables grow while it stops them) ----
setsid bash -c 'for i in $(seq 40); do sleep 1000 & done; wait' </dev/null >/dev/null 2>&1 &
P=$!
disown
until_n 10 has_kids $P 40 || fail "bash never started its 40 sleeps"
before=$(kids $P)
check 0 "adopt bash with 40 children" "$CRYO" adopt "$P" --name wide
check 0 "freeze the wide tree" "$CRYO" freeze wide
until_n 5 gone "$P" || fail "pid $P still there after freeze"
MELT_N0=$(tree_ins wide)
check 0 "melt the wide tree" "$CRYO" melt wide
if [ "$(kids $P)" = "$before" ]; then
	pass "all 40 children back with their pids"
else
	fail "children after melt: '$(kids $P)', before: '$before'"
fi
paged_as lazy wide
no_uffd() { for k in $P $(kids $P); do ls -l "/proc/$k/fd" 2>/dev/null | grep -q userfaultfd && return 1; done; return 0; }
until_n 10 no_uffd && pass "all in: none of the 41 processes holds a userfaultfd" ||
	fail "a process of the wide tree still holds a userfaultfd"
kill -9 "$P" $(pgrep -P "$P") 2>/dev/null

# ---- memory shared between processes: python's mmap over fork ----
# The child echoes byte 100 of the shared page into byte 200; after melt
# the parent's writes must still reach it and its echo come back.
S=$T/shm
mkdir -p "$S"
setsid python3 -c "
import mmap, os, sys, time
d = sys.argv[1]
m = mmap.mmap(-1, 4096)
m[0:5] = b'hello'
kid = os.fork()
if kid == 0:
    while True:
        m[200] = m[100]
        time.sleep(0.01)
open(d + '/pid', 'w').write(str(os.getpid()))
while not os.path.exists(d + '/go'):
    time.sleep(0.02)
ok = m[0:5] == b'hello'
for v in (7, 42, 99):
    m[100] = v
    t = time.time()
    while m[200] != v and time.time() - t < 5:
        time.sleep(0.01)
    ok = ok and m[200] == v
open(d + '/res', 'w').write('PASS' if ok else 'FAIL %r %d' % (bytes(m[0:5]), m[200]))
os.kill(kid, 9)
os.waitpid(kid, 0)
" "$S" </dev/null >/dev/null 2>&1 &
disown
until_n 10 test -s "$S/pid" || fail "python never forked"
P=$(cat "$S/pid")
until_n 10 has_kids "$P" 1 || fail "python's child never started"
check 0 "adopt python sharing an mmap with its child" "$CRYO" adopt "$P" --name shm
check 0 "freeze it" "$CRYO" freeze shm
until_n 5 gone "$P" || fail "pid $P still there after freeze"
check 0 "melt it" "$CRYO" melt shm
touch "$S/go"
until_n 10 test -s "$S/res"
if [ "$(cat "$S/res" 2>/dev/null)" = PASS ]; then
	pass "after melt, parent and child still share the mmap: each write seen by the other"
else
	fail "python's shared mmap after melt: $(cat "$S/res" 2>/dev/null)"
fi
until_n 10 gone "$P" || kill -9 "$P" $(pgrep -P "$P") 2>/dev/null
done_testing
