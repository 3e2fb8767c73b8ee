#!/bin/sh
# Build the benchmarks with buildtype=release in build-bench/ and run them
# all (or the ones named: bench/run.sh bench_store_full ...). Each prints its
# figures beside their limits and beside the previous run's figures from
# bench/results/<name>.json, which it then overwrites.
#
#   BENCH_SCALE=0.1 bench/run.sh   shrink every size for a quick try (the
#                                  results then go to build-bench/results/,
#                                  not the committed ones)
#   BENCH_DIR=/path bench/run.sh   scratch dir (default build-bench/tmp, on the
#                                  repository's file system)
# Root is needed for the cold figures (drop_caches); without it they say so.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
scale="${BENCH_SCALE:-1}"
dir="${BENCH_DIR:-$build/tmp}"

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release -Dtests=false
fi
all="bench_store_full bench_store_incr bench_store_read bench_store_open bench_store_clean bench_melt bench_freeze bench_track bench_tree bench_shm"
# only the benchmarks (and what they link): the rest of the tree is not
# needed here and its release build must not stop a measurement
ninja -C "$build" $(for b in $all; do echo "bench/$b"; done) >/dev/null

if [ "$scale" = 1 ]; then
	results="$root/bench/results"
else
	results="$build/results"
fi
mkdir -p "$dir" "$results"

names="$*"
[ -n "$names" ] || names="$all"

failed=0
for b in $names; do
	exe="$build/bench/$b"
	if [ ! -x "$exe" ]; then
		echo "$b: not built (is the store on this branch? src/store/txn.c)" >&2
		failed=$((failed + 1))
		continue
	fi
	echo "== $b  ($(date -u +%H:%M:%S) UTC)"
	if ! "$exe" --dir "$dir" --json "$results/$b.json" --scale "$scale"; then
		echo "$b: FAILED" >&2
		failed=$((failed + 1))
	fi
	echo
done
rmdir "$dir" 2>/dev/null || true
echo "results in $results; $failed benchmark(s) failed"
[ "$failed" -eq 0 ]
