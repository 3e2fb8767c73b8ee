#!/bin/bash
# Pids taken at melt (issue 6): a tree (bash, its sleep, and a C program
# with 3 threads that checks its own getpid/gettid/getppid/getpgrp/getsid,
# /proc/self, /proc/thread-self, /proc/self/stat, NSpid and /proc/self/task
# against what it saved before any freeze) is frozen; other processes take
# its pids (clone3 set_tid: exactly those pids, and one thread's tid); the
# melt goes into a new pid namespace where every process and thread has its
# old pid, `cryo ps` and `cryo inspect` show both pids, a /proc of its own
# is mounted and mounts propagate host -> group only. Then: snapshot and
# freeze in the namespace, melt into one again; the pids freed, back on the
# host; --no-pidns keeps the old error, --pidns goes into one anyway;
# kill -9 of the namespace's init ends the group and recover brings it
# back; SIGTERM to the init reaches the root and the init exits with the
# root's status; a single process (threads, no children) melted lazily
# with its pager into a namespace, snapshotted there; a zombie child
# frozen in a namespace that its parent's wait still finds.
# usage: test_pidns.sh CRYO WORKLOAD
. "$(dirname "$0")/../cli/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
W=${2:?usage: $0 CRYO WORKLOAD}
case "$W" in /*) ;; *) W=$(pwd)/$W ;; esac

# until_n SECONDS CMD...: poll CMD every 0.05 s
until_n() { local n=$(($1 * 20)); shift; for _ in $(seq $n); do "$@" && return 0; sleep 0.05; done; return 1; }
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
all_gone() { for p in "$@"; do gone "$p" || return 1; done; }
all_free() { for p in "$@"; do [ ! -e "/proc/$p" ] || return 1; done; }
nspid() { awk '/^NSpid:/ {$1 = ""; print substr($0, 2)}' "/proc/$1/status" 2>/dev/null; }
field() { "$CRYO" ps --json | python3 -c "
import json, sys
g = [g for g in json.load(sys.stdin) if g['name'] == sys.argv[1]]
print(g[0][sys.argv[2]] if g else 'no-group')" "$1" "$2"; }

WD=$T/w
MNT=$T/mnt
TK=
INITS=
# ids NAME: H, I = the group's host pid and its namespace's init (if any)
ids() {
	H=$(field "$1" pid)
	I=$(field "$1" ns_init_pid)
	[ "$I" != None ] && INITS="$INITS $I"
}
cleanup() {
	[ -n "$TK" ] && kill -9 "$TK" 2>/dev/null
	# an init's death ends everything in its namespace
	for p in $INITS $(pgrep -fx "cryo-init pidtree"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = cryo-init ] && kill -9 "$p"
	done
	for p in $(pgrep -f "$T/"); do kill -9 "$p"; done 2>/dev/null
	umount -R "$MNT" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

round=0
# check_self WHAT: the workload checks itself once more, PASS/FAIL
check_self() {
	round=$((round + 1))
	touch "$WD/check.$round"
	until_n 10 test -s "$WD/result.$round"
	local r
	r=$(cat "$WD/result.$round" 2>/dev/null)
	case "$r" in
	PASS*) pass "$1: the program checks itself: $r" ;;
	*) fail "$1: the program's check: ${r:-no answer}" ;;
	esac
}

# take PID...: processes with exactly these pids, until untake
take() {
	rm -f "$T/taken"
	until_n 5 all_free "$@" || fail "pids $* not free to take"
	setsid "$W" take "$T" "$@" </dev/null >/dev/null 2>&1 &
	TK=$!
	disown
	until_n 5 test -s "$T/taken"
	[ "$(cat "$T/taken" 2>/dev/null)" = ok ] && pass "pids $* taken by other processes" ||
		fail "taking pids $*: $(cat "$T/taken" 2>/dev/null)"
}
untake() {
	kill -9 "$TK"
	TK=
	until_n 5 all_free "$P" "$S" "$WP" "$T2" || fail "the taken pids were not freed"
}

check 0 "store init" "$CRYO" store init --size 512M
mkdir -p "$MNT" "$WD"
mount -t tmpfs cryo-pidns "$MNT" && mount --make-shared "$MNT" ||
	fail "a shared tmpfs for the propagation checks"
host_procs=$(grep -c ' /proc ' /proc/self/mountinfo)

# ---- the tree: bash, sleep, the workload with 3 threads ----
setsid bash -c "trap 'kill \$(jobs -p) 2>/dev/null; wait; exit 7' TERM
sleep 1000 &
'$W' run '$WD' 3 &
wait" </dev/null >/dev/null 2>&1 &
P=$!
disown
until_n 10 test -s "$WD/ids" || fail "the workload never started"
read -r _ WP _ _ _ _ _ _ _ _ T2 _ < "$WD/ids"
S=$(pgrep -P "$P" -x sleep)
[ -n "$WP" ] && [ -n "$S" ] && [ -n "$T2" ] || fail "ids: $(cat "$WD/ids")"
echo "# root bash $P, sleep $S, workload $WP (threads $(cut -d' ' -f10- "$WD/ids"))"
check_self "before any freeze"
check 0 "adopt the tree" "$CRYO" adopt "$P" --name pidtree
check 0 "freeze it" "$CRYO" freeze pidtree
until_n 5 all_gone "$P" "$S" "$WP" || fail "the tree is still there after freeze"

# ---- 1. its pids taken: melted into a new pid namespace ----
take "$P" "$S" "$WP" "$T2"
check 0 "melt with its pids taken" "$CRYO" melt pidtree
check_out "^melted pidtree: pid $P runs again in a new pid namespace, host pid [0-9]+ " \
	"melt says the root has its pid in a new pid namespace"
check_err "pid $P is in use \(by pidtaker\): melting into a new pid namespace" "and why"
ids pidtree
[ "$(field pidtree ns_pid)" = "$P" ] && [ "$H" != "$P" ] &&
	pass "ps --json: pid $H (the host's), ns_pid $P (the program's), ns_init_pid $I" ||
	fail "ps --json: pid $H ns_pid $(field pidtree ns_pid)"
check 0 "ps" "$CRYO" ps
check_out "^pidtree +$H +running .* $P\$" "ps shows the host pid and the pid in its namespace"
[ "$(nspid "$H")" = "$H $P" ] && pass "NSpid of the root: $(nspid "$H")" ||
	fail "NSpid of the root: $(nspid "$H")"
inner=$(for k in $(pgrep -P "$H"); do nspid "$k" | awk '{print $2}'; done | sort -n | tr '\n' ' ')
[ "$inner" = "$(printf '%s\n' "$S" "$WP" | sort -n | tr '\n' ' ')" ] &&
	pass "the root's children have their old pids inside: $inner" ||
	fail "children of $H inside: '$inner', want $S $WP"
if [ "$(cat "/proc/$I/comm" 2>/dev/null)" = cryo-init ] && [ "$(nspid "$I")" = "$I 1" ] &&
   [ "$(awk '{print $4}' "/proc/$H/stat")" = "$I" ]; then
	pass "the root's parent is cryo-init, pid 1 of the namespace (host pid $I)"
else
	fail "init $I: comm $(cat "/proc/$I/comm" 2>&1), NSpid $(nspid "$I"), root's ppid $(awk '{print $4}' "/proc/$H/stat")"
fi
check_self "in a new pid namespace"
[ "$(grep -c ' /proc ' /proc/self/mountinfo)" = "$host_procs" ] &&
	[ "$(grep -c ' /proc ' "/proc/$H/mountinfo")" -gt "$host_procs" ] &&
	pass "a /proc of its own inside; the host's mounts are untouched" ||
	fail "/proc mounts: host $(grep -c ' /proc ' /proc/self/mountinfo), inside $(grep -c ' /proc ' "/proc/$H/mountinfo")"
mkdir -p "$MNT/later" "$MNT/inside"
mount -t tmpfs later "$MNT/later" && echo hi > "$MNT/later/f"
[ "$(cat "/proc/$H/root$MNT/later/f" 2>/dev/null)" = hi ] &&
	pass "a mount the host makes later (under a shared mount) is seen inside" ||
	fail "the host's later mount is not seen inside"
nsenter -t "$H" -m mount -t tmpfs inside "$MNT/inside"
if nsenter -t "$H" -m mountpoint -q "$MNT/inside" && ! mountpoint -q "$MNT/inside"; then
	pass "a mount made inside stays inside"
else
	fail "a mount made inside: inside $(nsenter -t "$H" -m mountpoint "$MNT/inside" 2>&1), host $(mountpoint "$MNT/inside" 2>&1)"
fi

# ---- 2. snapshots in the namespace; frozen there, melted into one again ----
check 0 "snap it in its namespace" "$CRYO" snap pidtree
check 0 "inspect" "$CRYO" inspect pidtree
check_out "in a pid namespace \(pids as its programs saw them\)" "inspect: the group was in a pid namespace"
check_out "^process $P \(bash\) ppid 1 " "inspect: the root by its pid inside, its parent the init"
check_out "^  host pid $H \(pid $P in its pid namespace\)" "inspect: and its host pid"
check_out "^process $WP \(pidns_workload\) ppid $P pgid $P sid $P" "inspect: the workload by its pids inside"
check 0 "freeze it in its namespace" "$CRYO" freeze pidtree
until_n 5 all_gone "$H" "$I" && pass "the group and its init are gone after the freeze" ||
	fail "after freeze: root $H $(gone "$H" || echo alive), init $I $(gone "$I" || echo alive)"
check 0 "melt, its pids still taken" "$CRYO" melt pidtree
check_out "^melted pidtree: pid $P runs again in a new pid namespace" "into a new namespace again"
ids pidtree
check_self "frozen in a namespace, melted into another"

# ---- 3. the pids free again: back on the host ----
untake
check 0 "freeze" "$CRYO" freeze pidtree
until_n 5 all_gone "$(field pidtree pid)" || fail "still there after freeze"
until_n 5 all_free "$P" "$S" "$WP" "$T2"
check 0 "melt with its pids free" "$CRYO" melt pidtree
check_out "^melted pidtree: pid $P runs again \(" "back on the host, no namespace"
[ "$(nspid "$P")" = "$P" ] && [ "$(field pidtree pid)" = "$P" ] && [ "$(field pidtree ns_pid)" = None ] &&
	pass "host pid $P again, NS-PID none" ||
	fail "after melt on the host: NSpid $(nspid "$P"), ps pid $(field pidtree pid) ns_pid $(field pidtree ns_pid)"
check_self "back on the host"

# ---- 4. --no-pidns: the old error; --pidns: a namespace anyway ----
check 0 "freeze" "$CRYO" freeze pidtree
until_n 5 all_gone "$P" "$S" "$WP"
take "$P" "$S" "$WP" "$T2"
check 1 "melt --no-pidns with its pids taken" "$CRYO" melt pidtree --no-pidns
check_err1
check_err "pid $P is in use \(by pidtaker\)" "the error names the pid and who has it"
sleep 0.2
[ "$(field pidtree state)" = frozen ] && ! pgrep -f "$WD" >/dev/null &&
	pass "nothing of the group was left; it stays frozen" ||
	fail "after the refusal: state $(field pidtree state), $(pgrep -af "$WD")"
untake
# a melt into a namespace that fails leaves nothing: its init goes too
half_made() { pgrep -f "melt pidtree|cryo-init pidtree" >/dev/null; }
for fp in restore.child.fail restore.regs.fail; do
	check 1 "melt --pidns, failing at $fp" env CRYO_FAULT=$fp "$CRYO" melt pidtree --pidns
	until_n 5 eval '! half_made' && [ "$(field pidtree state)" = frozen ] &&
		pass "$fp: no process and no init left, still frozen" ||
		fail "$fp: left: $(pgrep -af "melt pidtree|cryo-init pidtree")"
done
check 0 "melt --pidns with its pids free" "$CRYO" melt pidtree --pidns
check_out "^melted pidtree: pid $P runs again in a new pid namespace" "--pidns: into one anyway"
ids pidtree
check_self "--pidns with free pids"

# ---- 5. kill -9 of the namespace's init; recover ----
ids pidtree
take "$P" "$S" "$WP" "$T2"
check 0 "snap" "$CRYO" snap pidtree
kill -9 "$I"
until_n 5 all_gone "$I" "$H" && ! pgrep -f "$WD" >/dev/null &&
	pass "kill -9 of the init ($I) ended every process of the group" ||
	fail "after kill -9 of the init: $(pgrep -af "$WD")"
[ "$(field pidtree state)" = exited ] && pass "ps: pidtree exited" || fail "ps: pidtree $(field pidtree state)"
check 0 "recover" "$CRYO" recover
check_out "^recovered pidtree: pid $P runs again in a new pid namespace, host pid [0-9]+" \
	"recover melts it into a new namespace, its pids being taken"
ids pidtree
check_self "recovered"

# ---- 6. SIGTERM to the init reaches the root; the init exits as it did ----
check 0 "freeze" "$CRYO" freeze pidtree
until_n 5 all_gone "$(field pidtree pid)"
# melt under a subreaper: the init, nobody's child, is reparented to it
python3 -c '
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
rc = subprocess.run(sys.argv[2:]).returncode
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    with open(sys.argv[1], "a") as f:
        f.write("%d %d\n" % (pid, os.waitstatus_to_exitcode(st)))
' "$T/reaped" "$CRYO" melt pidtree >"$T/melt6" 2>&1 &
REAPER=$!
until_n 10 grep -q "^melted pidtree" "$T/melt6" || fail "melt under a subreaper: $(cat "$T/melt6")"
ids pidtree
check_self "melted under a subreaper"
kill -TERM "$I"
# the melt's pager, orphaned too, may be reaped first (it exits 0)
until_n 10 grep -q "^$I " "$T/reaped"
if grep -qx "$I 7" "$T/reaped" && all_gone "$H" && ! pgrep -f "$WD" >/dev/null; then
	pass "SIGTERM to the init: bash's trap ran, the group ended, the init exited 7 as bash did"
else
	fail "after SIGTERM to the init $I: reaped '$(cat "$T/reaped" 2>/dev/null)', left: $(pgrep -af "$WD")"
fi
kill -9 "$I" 2>/dev/null
wait "$REAPER" 2>/dev/null
untake

# ---- 7. one process (threads, no children): a lazy melt, its pager, in a namespace ----
WD=$T/one
round=0
mkdir -p "$WD"
setsid "$W" run "$WD" 2 root </dev/null >/dev/null 2>&1 &
P=$!
disown
until_n 10 test -s "$WD/ids" || fail "the second workload never started"
read -r _ _ _ _ _ _ _ _ _ _ T2 _ < "$WD/ids"
S=$P
WP=$P
check 0 "adopt one process" "$CRYO" adopt "$P" --name one
check 0 "freeze it" "$CRYO" freeze one
until_n 5 all_gone "$P"
take "$P" "$T2"
check 0 "melt it lazily, its pid and a tid taken" "$CRYO" melt one
check_out "^melted one: pid $P runs again in a new pid namespace" "into a new pid namespace"
ids one
[ "$(nspid "$H")" = "$H $P" ] && pass "NSpid: $(nspid "$H")" || fail "NSpid of $H: $(nspid "$H")"
check_self "melted lazily in a namespace"
check 0 "snap (waits until all is paged in)" "$CRYO" snap one
check 0 "inspect" "$CRYO" inspect one
check_out "^  host pid $H \(pid $P in its pid namespace\)" "its snapshot in the namespace has both pids"
want=$(awk '/^  fds:/ {f = 1; next} f && /^    / {print $1; next} {f = 0}' "$OUT" | sort -n | tr '\n' ' ')
have=$(ls "/proc/$H/fd" | sort -n | tr '\n' ' ')
[ -n "$want" ] && [ "$want" = "$have" ] && pass "it has exactly its own fds: $have" ||
	fail "fds of $H: $have; its snapshot's: $want"
check 0 "freeze it" "$CRYO" freeze one
until_n 5 all_gone "$H" "$I" && pass "it and its init are gone" || fail "left after freeze: $H $I"
untake

# ---- 8. a zombie child, frozen twice in a namespace: its parent's wait finds it ----
Z=$T/zres
setsid python3 -c "
import os, sys, time
z = os.fork()
if z == 0:
    os._exit(3)
open(sys.argv[1] + '.pid', 'w').write('%d %d' % (os.getpid(), z))
while not os.path.exists(sys.argv[1] + '.go'):
    time.sleep(0.05)
p, st = os.waitpid(z, 0)
ok = p == z and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 3
open(sys.argv[1], 'w').write(('PASS' if ok else 'FAIL') + ' pid %d waited for %d: status %d' % (os.getpid(), p, st))
" "$Z" </dev/null >/dev/null 2>&1 &
disown
until_n 10 test -s "$Z.pid" || fail "python never started"
read -r P ZP < "$Z.pid"
check 0 "adopt python with a zombie child" "$CRYO" adopt "$P" --name pidzomb
check 0 "freeze it" "$CRYO" freeze pidzomb
until_n 5 all_free "$P" "$ZP"
take "$P" "$ZP"
check 0 "melt it, its pid and its zombie's taken" "$CRYO" melt pidzomb
check_out "^melted pidzomb: pid $P runs again in a new pid namespace" "into a new pid namespace"
ids pidzomb
check 0 "freeze it in its namespace" "$CRYO" freeze pidzomb
check 0 "inspect" "$CRYO" inspect pidzomb
check_out "^zombie $ZP ppid $P pgid $P sid $P: exited with 3" "the zombie by its pids inside"
check_out "^  host pid [0-9]+ \(pid $ZP in its pid namespace\)" "and its host pid"
until_n 5 all_gone "$H" "$I"
check 0 "melt it again, the pids still taken" "$CRYO" melt pidzomb
ids pidzomb
touch "$Z.go"
until_n 10 test -s "$Z"
case "$(cat "$Z" 2>/dev/null)" in
"PASS pid $P waited for $ZP: status 768") pass "python (pid $P inside) waits for its zombie $ZP: status 3" ;;
*) fail "python's wait: $(cat "$Z" 2>/dev/null)" ;;
esac
untake
done_testing
