#!/usr/bin/env bash
# cryo store on a real store: init (and refusing to overwrite), stat, ls,
# demo-write, cat, fsck, gc, each as text and as --json.
. "$(dirname "$0")/lib.sh"
need_store

S=$T/store
st() { "$CRYO" store "$@" --store "$S"; }

check 0 "init --size 64M --segment-size 1M" st init --size 64M --segment-size 1M
check_out 'segments +[0-9]+ of 1\.0 MiB' "init shows the geometry"
[ -f "$S" ] && pass "store file exists" || fail "no store file"
blocks=$(stat -c %b "$S"); size=$(stat -c %s "$S")
[ "$size" = $((64 << 20)) ] && pass "file is 64 MiB" || fail "file size $size"
[ $((blocks * 512)) -lt $((size / 4)) ] && pass "file is sparse ($((blocks / 2)) KiB allocated)" \
	|| fail "file is not sparse ($((blocks / 2)) KiB allocated)"
cp "$S" "$T/before"
check 1 "init twice refuses" st init --size 64M
check_err1
check_err 'already exists' "and says the store exists"
cmp -s "$S" "$T/before" && pass "the refused init left the store untouched" || fail "init twice changed the store"

# $CRYO_HOME default, created 0700.
check 0 "init in CRYO_HOME" "$CRYO" store init --size 128M --segment-size 512K --codec zstd
[ "$(stat -c %a "$CRYO_HOME")" = 700 ] && pass "CRYO_HOME is 0700" || fail "CRYO_HOME mode $(stat -c %a "$CRYO_HOME")"
check 0 "stat in CRYO_HOME" "$CRYO" store stat
check_out 'codec +zstd' "codec chosen at init"

check 0 "stat of an empty store" st stat
check_out '^snapshots +0$' "no snapshots yet"
check 0 "stat --json" st stat --json
check_json "stat --json"
check 0 "ls of an empty store" st ls
check_out '^OBJECT +SNAP +TIME +PAGES +ZERO +RECORDS +WRITTEN$' "ls header"
check 0 "ls --json of an empty store" st ls --json
check_json "ls --json"

# Three snapshots: a full one and two incrementals.
check 0 "demo-write full" st demo-write vm --pages 2000
check_out '^vm snapshot 1: 2000 pages' "snapshot 1 of 2000 pages"
check 0 "demo-write 5% change" st demo-write vm --change 5
check_out '^vm snapshot 2: 2000 pages' "snapshot 2 keeps 2000 pages"
check 0 "demo-write 1% change --json" st demo-write vm --change 1 --json
check_json "demo-write --json"
w1=$(st ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["written"])')
w3=$(st ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[2]["written"])')
[ -n "$w1" ] && [ -n "$w3" ] && [ "$w3" -lt $((w1 / 10)) ] \
	&& pass "1% incremental wrote $w3 bytes, full wrote $w1" \
	|| fail "1% incremental wrote $w3 bytes, full wrote $w1"
check 0 "demo-write another object" st demo-write 'we"ird\name' --pages 10
check 1 "demo-write with a space in the name" st demo-write 'two words'
check_err1
check_err 'invalid object name' "says the name is invalid"
check 0 "ls" st ls
n=$(grep -c '^vm ' "$OUT")
[ "$n" = 3 ] && pass "ls shows 3 snapshots of vm" || fail "ls shows $n snapshots of vm"
check 0 "ls OBJECT" st ls vm
check 1 "ls of a missing object" st ls nosuch
check_err1
check 0 "ls --json with a quoted name" st ls --json
check_json "ls --json with quotes"

# cat: a page, the same page from two snapshots, a record.
check 0 "cat a page" st cat vm 1 5
check_out '^vm snapshot 1 page 0x5: (data|zero)$' "cat names the page"
cp "$OUT" "$T/page5.s1"
check 0 "cat --raw" st cat vm 1 0x5 --raw
[ "$(wc -c <"$OUT")" = 4096 ] && pass "--raw gives 4096 bytes" || fail "--raw gave $(wc -c <"$OUT") bytes"
check 0 "cat newest" st cat vm newest 5
check 0 "cat --record demo" st cat vm 2 --record demo --raw
check_out '^demo-write seed=1 gen=2 pages=2000 change=5' "record written by demo-write"
check 1 "cat a page past the end" st cat vm 1 999999
check_err1
check 1 "cat a missing snapshot" st cat vm 9 0
check_err1
check 1 "cat a missing record" st cat vm 1 --record nope
check_err1
# Rewrites are deterministic: a page of snapshot 1 reads the same again.
check 0 "cat page again" st cat vm 1 5
cmp -s "$OUT" "$T/page5.s1" && pass "same page, same bytes" || fail "page 5 of snapshot 1 changed"

check 0 "fsck" st fsck
check_out '0 problems' "fsck is clean"
check 0 "fsck --json" st fsck --json
check_json "fsck --json"
check 0 "gc" st gc
check_out '^gc ' "gc reports"
check 0 "gc --json" st gc --json
check_json "gc --json"
check 0 "fsck after gc" st fsck
check 0 "cat after gc" st cat vm 1 5
cmp -s "$OUT" "$T/page5.s1" && pass "page survives gc" || fail "page 5 of snapshot 1 changed by gc"

done_testing
