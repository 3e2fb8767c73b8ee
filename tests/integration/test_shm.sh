#!/bin/bash
# Memory shared between the processes of a group comes back shared, not
# copied (shm_workload.c: MAP_SHARED anonymous memory mapped three times
# in one process, a memfd with and without its fd, a deleted file, a
# shared file, a System V segment attached twice, a removed one).
#
# Three processes, five rounds: freeze + melt (lazy asked), freeze + melt
# --eager, snap + writes after it + kill -9 + melt from the snapshot (the
# segment that stayed in the kernel gets the snapshot's bytes back),
# freeze + melt refused while an outsider attaches the segment, while its
# key and then its id belong to another segment (each refusal leaves no
# process and no segment behind), then melted with the segment made again
# under its id; freeze + melt. After each melt every process writes its
# marker and must see the others' (one object), and what was there before
# the freeze. The same with one process (its melt is lazy). A tree whose
# segment an outsider attaches is refused at adopt, left running.
# usage: test_shm.sh CRYO SHM_WORKLOAD
. "$(dirname "$0")/../cli/lib.sh"
WL=${2:?usage: test_shm.sh CRYO SHM_WORKLOAD}
case "$WL" in /*) ;; *) WL=$(pwd)/$WL ;; esac
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }

# until_n SECONDS CMD...: poll CMD every 0.02 s
until_n() { local n=$(($1 * 50)); shift; for _ in $(seq $n); do "$@" && return 0; sleep 0.02; done; return 1; }
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
all_gone() { for p in "$@"; do gone "$p" || return 1; done; }
all_there() { for f in "$@"; do [ -e "$f" ] || return 1; done; }
# the /proc/sysvipc/shm line of segment ID (key shmid perms size ...), or nothing
seg() { awk -v id="$1" '$2 == id' /proc/sysvipc/shm; }
segs_with_key() { awk -v k="$(($1))" '$1 == k' /proc/sysvipc/shm | wc -l; }
# the inode of the mapping at ADDR (hex) of PID
map_ino() { awk -v a="$2" '$1 ~ "^"a"-" {print $5}' "/proc/$1/maps"; }

check 0 "store init" "$CRYO" store init --size 512M

KEYS=()
cleanup_segs() {
	for k in "${KEYS[@]}"; do
		for id in $(awk -v k="$((k))" '$1 == k {print $2}' /proc/sysvipc/shm); do
			ipcrm -m "$id" 2>/dev/null
		done
	done
}
trap 'cleanup_segs; rm -rf "$T"' EXIT

# start NAME NPROC ROUNDS: the workload in $W, its pids in $PIDS
start() {
	W=$T/$1
	mkdir -p "$W"
	KEY=$(printf '0x5c%02x%04x' $((RANDOM % 256)) $RANDOM)
	KEYS+=("$KEY")
	setsid "$WL" "$W" "$2" "$3" "$KEY" </dev/null >"$W/out" 2>&1 &
	P=$!
	disown
	local want=()
	for i in $(seq 0 $(($2 - 1))); do want+=("$W/ready-$i"); done
	if ! until_n 10 all_there "${want[@]}"; then
		fail "$1: the workload never got ready: $(cat "$W"/res-0-* 2>/dev/null)"
		return 1
	fi
	PIDS="$P $(pgrep -P "$P" | sort -n | tr '\n' ' ')"
	read -r ANON MEMFD SYSVA ID GONE < "$W/layout"
	return 0
}

# round NAME N NPROC: let round N run, expect PASS from every process
round() {
	local want=() res
	touch "$W/go-$2"
	for i in $(seq 0 $(($3 - 1))); do want+=("$W/res-$2-$i"); done
	if ! until_n 20 all_there "${want[@]}"; then
		fail "$1 round $2: no result from every process ($(ls "$W" | tr '\n' ' '))"
		return
	fi
	sleep 0.05
	res=$(cat "${want[@]}" | sort -u)
	if [ "$res" = PASS ]; then
		pass "$1 round $2: each of $3 processes saw the others' writes and its memory from before"
	else
		fail "$1 round $2: $res"
	fi
}

freeze() {
	check 0 "$1: freeze" "$CRYO" freeze "$1"
	until_n 5 all_gone $PIDS || fail "$1: processes still there after freeze"
}

# a melt that must fail with REASON, leaving no process and no new segment
melt_refused() {
	local name=$1 reason=$2 what=$3 before
	before=$(segs_with_key "$KEY")
	check 1 "$name: melt refused: $what" "$CRYO" melt "$name"
	check_err "$reason" "$name: the error says why: $what"
	if all_gone $PIDS && [ "$(segs_with_key "$KEY")" = "$before" ]; then
		pass "$name: nothing left behind by the refused melt"
	else
		fail "$name: after the refused melt: $(ps -o pid,stat,comm -p "${PIDS// /,}" | tr '\n' ';') segments $(segs_with_key "$KEY") (were $before)"
	fi
}

# ---- three processes ----
if start tree 3 5; then
	N=tree
	check 0 "tree: adopt the 3 processes" "$CRYO" adopt "$P" --name $N
	freeze $N
	if [ -n "$(seg "$ID")" ] && [ -z "$(seg "$GONE")" ]; then
		pass "tree: after freeze the segment stays, the removed one is gone"
	else
		fail "tree: after freeze: segment $ID '$(seg "$ID")', removed $GONE '$(seg "$GONE")'"
	fi
	check 0 "tree: inspect" "$CRYO" inspect $N
	check_out "^sysv-shm $ID key $KEY " "tree: inspect shows the segment"
	check_out "^sysv-shm $GONE .* removed" "tree: inspect shows the removed segment"
	check_out "sysv-shm .*\[System V shm $ID\]" "tree: inspect shows its attaches"
	check 0 "tree: melt (lazy asked)" "$CRYO" melt $N
	inos=$(for p in $PIDS; do map_ino "$p" "$ANON"; done | sort -u | wc -l)
	nmaps=$(grep -c "/dev/zero (deleted)" "/proc/$P/maps")
	if [ "$inos" = 1 ] && [ "$nmaps" -ge 3 ]; then
		pass "tree: the anonymous region is one object in all 3 processes, mapped $nmaps times in the root"
	else
		fail "tree: anonymous region: $inos inodes across the processes, $nmaps mappings in the root"
	fi
	round $N 1 3

	freeze $N
	check 0 "tree: melt --eager" "$CRYO" melt --eager $N
	round $N 2 3

	check 0 "tree: snap while it runs" "$CRYO" snap $N
	touch "$W/scribble-3"
	until_n 10 all_there "$W/scribbled-3-0" "$W/scribbled-3-1" "$W/scribbled-3-2" ||
		fail "tree: the processes never wrote after the snapshot"
	rm "$W/scribble-3"	# or the melted processes, back before it, would write again
	kill -STOP $PIDS
	kill -9 $PIDS
	until_n 5 all_gone $PIDS || fail "tree: kill -9 did not end them"
	check 0 "tree: melt from the snapshot after kill -9" "$CRYO" melt $N
	round $N 3 3

	freeze $N
	"$WL" attach "$ID" > "$T/outsider" 2>&1 &
	O=$!
	until_n 5 grep -q attached "$T/outsider" || fail "the outsider never attached"
	melt_refused $N "System V shared memory $ID .*attached by 1 mapping of processes that are not the melted group's" "an outsider attaches the segment"
	kill $O; wait $O 2>/dev/null
	ipcrm -m "$ID"
	blocker=$("$WL" make "$KEY" 4096)
	melt_refused $N "System V shared memory key $KEY is taken by segment $blocker" "its key is another segment's"
	ipcrm -m "$blocker"
	echo "$ID" > /proc/sys/kernel/shm_next_id
	blocker=$("$WL" make 0 8192)
	if [ "$blocker" = "$ID" ]; then
		melt_refused $N "System V shared memory id $ID is taken by another segment" "its id is another segment's"
	else
		fail "could not make a segment with id $ID (got $blocker)"
	fi
	ipcrm -m "$blocker"
	check 0 "tree: melt with the segment gone: made again" "$CRYO" melt $N
	if seg "$ID" | awk -v k="$((KEY))" '{exit !($1 == k && $3 == 640 && $7 == 4)}'; then
		pass "tree: segment $ID made again with its key, mode 640, 4 attaches"
	else
		fail "tree: segment $ID after melt: '$(seg "$ID")'"
	fi
	round $N 4 3

	freeze $N
	check 0 "tree: melt" "$CRYO" melt $N
	round $N 5 3
	until_n 10 all_gone $PIDS || fail "tree: the workload did not end after its last round"
fi

# ---- one process: a lazy melt of its own ----
if start single 1 2; then
	N=single
	"$WL" attach "$ID" > "$T/outsider1" 2>&1 &
	O=$!
	until_n 5 grep -q attached "$T/outsider1" || fail "the outsider never attached"
	check 1 "single: adopt refused while an outsider attaches its segment" "$CRYO" adopt "$P" --name $N
	check_err "System V shared memory $ID .*also attached by processes outside the group" "single: the error says why"
	if [ "$(awk '/^TracerPid/ {print $2}' "/proc/$P/status")" = 0 ] && ! gone "$P"; then
		pass "single: runs on untouched after the refusal"
	else
		fail "single: after the refusal: $(cat /proc/$P/status | head -3 | tr '\n' ' ')"
	fi
	kill $O; wait $O 2>/dev/null
	check 0 "single: adopt" "$CRYO" adopt "$P" --name $N
	freeze $N
	check 0 "single: melt (lazy)" "$CRYO" melt $N
	round $N 1 1
	check 0 "single: snap" "$CRYO" snap $N
	touch "$W/scribble-2"
	until_n 10 all_there "$W/scribbled-2-0" || fail "single: never wrote after the snapshot"
	rm "$W/scribble-2"
	kill -9 "$P"
	until_n 5 gone "$P" || fail "single: kill -9 did not end it"
	check 0 "single: melt --eager from the snapshot" "$CRYO" melt --eager $N
	round $N 2 1
	until_n 10 gone "$P" || fail "single: did not end after its last round"
fi
done_testing
