#!/usr/bin/env bash
# A power cut in the middle of a commit (the store.commit.crash fault point
# SIGKILLs the writer there): the store opens, fsck is clean, the committed
# snapshots are all there, byte for byte, and the cut one is not.
. "$(dirname "$0")/lib.sh"
need_store

S=$T/store
st() { "$CRYO" store "$@" --store "$S"; }

check 0 "init" st init --size 128M --segment-size 1M
check 0 "snapshot 1" st demo-write vm --pages 4000
check 0 "snapshot 2" st demo-write vm --change 10
check 0 "snapshot 3" st demo-write vm --change 10
for sn in 1 2 3; do
	for vpn in 0 1 2 3 17 1000 3999; do
		st cat vm $sn $vpn >"$T/p.$sn.$vpn" 2>&1
	done
done

last="CRYO_FAULT=store.commit.crash cryo store demo-write vm --change 50"
CRYO_FAULT=store.commit.crash "$CRYO" store demo-write vm --change 50 --store "$S" >"$OUT" 2>"$ERR"
rc=$?
[ "$rc" = 137 ] && pass "writer killed mid-commit (exit $rc)" || fail "writer exit $rc, expected 137 (SIGKILL)"

check 0 "fsck after the cut" st fsck
check_out '0 problems' "no problems"
check 0 "ls after the cut" st ls vm
n=$(grep -c '^vm ' "$OUT")
[ "$n" = 3 ] && pass "3 snapshots, the cut one is not there" || fail "$n snapshots after the cut"
bad=0
for sn in 1 2 3; do
	for vpn in 0 1 2 3 17 1000 3999; do
		st cat vm $sn $vpn >"$T/q" 2>&1
		cmp -s "$T/q" "$T/p.$sn.$vpn" || bad=$((bad + 1))
	done
done
[ $bad = 0 ] && pass "21 pages of snapshots 1-3 read back identical" || fail "$bad pages differ after the cut"

# Recovery is idempotent (I5): opening twice more changes nothing.
st ls --json >"$T/ls1"
st stat >/dev/null
st ls --json >"$T/ls2"
cmp -s "$T/ls1" "$T/ls2" && pass "reopen gives the same listing" || fail "listing changed on reopen"
check 0 "a new snapshot after the cut" st demo-write vm --change 5
check_out '^vm snapshot 4:' "numbering goes on at 4"
check 0 "fsck at the end" st fsck

done_testing
