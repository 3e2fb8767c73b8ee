#!/bin/sh
# Fuzz the store's on-disk parsers with libFuzzer for SECONDS per target
# (default 60): a clang build with ASan + UBSan in build-fuzz/, a seed
# corpus from the fuzz drivers, crashes saved in build-fuzz/crashes/.
# Replay one with: build-fuzz/tests/fuzz/driver/<target>_driver FILE
set -eu
secs=${1:-60}
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$src/build-fuzz
if [ ! -d "$out" ]; then
	CC=clang meson setup "$out" "$src" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$out"
mkdir -p "$out/crashes"
export CRYO_LOG=quiet UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in fuzz_store_open fuzz_store_image; do
	corpus=$out/corpus/$t
	if [ ! -d "$corpus" ]; then
		mkdir -p "$corpus"
		"$out/tests/fuzz/driver/${t}_driver" --seeds "$corpus"
	fi
	case $t in
	fuzz_store_open) maxlen=4194304 ;;
	*) maxlen=4096 ;;
	esac
	echo "== $t for ${secs}s"
	"$out/tests/fuzz/$t" -max_total_time="$secs" -max_len="$maxlen" -rss_limit_mb=4096 \
		-artifact_prefix="$out/crashes/$t-" "$corpus" || status=1
done
[ $status -eq 0 ] && echo "fuzzing: no crash in ${secs}s per target" || echo "fuzzing: FAILED, see $out/crashes"
exit $status
