#!/usr/bin/env bash
# Bad stores: each command fails with exit 1 and one line naming the
# problem; never a crash (a signal, a sanitizer report) and never a write.
. "$(dirname "$0")/lib.sh"
need_store

"$CRYO" store init --size 64M --segment-size 256K --store "$T/good" >/dev/null \
	|| { echo "FAIL: cannot make a store"; exit 1; }
"$CRYO" store demo-write a --pages 64 --store "$T/good" >/dev/null \
	|| { echo "FAIL: cannot write a snapshot"; exit 1; }

: >"$T/empty"
head -c $((1 << 20)) /dev/urandom >"$T/garbage"
head -c $((1 << 20)) /dev/zero >"$T/zeros"
cp "$(command -v bash)" "$T/foreign"
head -c 8192 "$T/good" >"$T/truncated-8k"
head -c $((1 << 20)) "$T/good" >"$T/truncated-1m"
cp "$T/good" "$T/badsuper"
printf 'XXXXXXXX' | dd of="$T/badsuper" conv=notrunc bs=1 seek=0 status=none
cp "$T/good" "$T/badslots"
dd if=/dev/urandom of="$T/badslots" conv=notrunc bs=4096 seek=1 count=2 status=none

for f in empty garbage zeros foreign truncated-8k truncated-1m badsuper badslots; do
	cp "$T/$f" "$T/$f.orig"
	for cmd in stat ls fsck; do
		check 1 "store $cmd on $f" "$CRYO" store $cmd --store "$T/$f"
		check_err1
	done
	check 1 "store demo-write on $f" "$CRYO" store demo-write x --store "$T/$f"
	check_err1
	cmp -s "$T/$f" "$T/$f.orig" && pass "$f left unchanged" || fail "$f was written to"
done

# Damaged blocks inside the first segment (64 KiB on): whether open
# notices or only fsck does, the answer is exit 1 and one line.
cp "$T/good" "$T/baddata"
dd if=/dev/urandom of="$T/baddata" conv=notrunc bs=4096 seek=$((64 / 4 + 1)) count=8 status=none
check 1 "fsck on a store with corrupt blocks" "$CRYO" store fsck --store "$T/baddata"
check_err1

done_testing
