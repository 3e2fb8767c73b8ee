#!/usr/bin/env bash
# Every test of cryo: installs the dependencies, builds two configurations
# (build/: debugoptimized; build-asan/: ASan + UBSan, with clang so the
# libFuzzer targets build too) and runs `meson test` in both.
#
#   bash tests/run.sh          the default, quick run
#   bash tests/run.sh --long   tests with a longer mode run it (CRYO_LONG=1),
#                              and build-asan/ runs the "slow" suite too
#
# The last line is always "N passed, N failed" (both configurations), taken
# from meson's testlog.json; the exit status is non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

long=0
for a in "$@"; do
	case "$a" in
	--long) long=1 ;;
	-h|--help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument '$a' (try --long)" >&2; exit 2 ;;
	esac
done
if [ $long = 1 ]; then
	export CRYO_LONG=1
fi
# A sanitizer finding fails the test that triggered it, never just a log line.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

passed=0
failed=0
skipped=0

finish() {
	[ "$skipped" -gt 0 ] && echo "($skipped skipped)"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

if ! bash scripts/deps.sh; then
	echo "run.sh: installing dependencies failed" >&2
	failed=1
	finish
fi

# count DIR [EXPECTED]: add the counts of DIR's testlog.json to the totals.
count() {
	local dir=$1
	local log=$dir/meson-logs/testlog.json
	local line
	if [ ! -s "$log" ]; then
		echo "run.sh: $1: no test log" >&2
		failed=$((failed + 1))
		return
	fi
	line=$(python3 - "$log" <<'PY'
import json, sys
ok = bad = skip = 0
for raw in open(sys.argv[1]):
    raw = raw.strip()
    if not raw:
        continue
    try:
        r = json.loads(raw).get("result", "")
    except ValueError:
        bad += 1
        continue
    if r in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif r == "SKIP":
        skip += 1
    else:   # FAIL, ERROR, TIMEOUT, UNEXPECTEDPASS
        bad += 1
print(ok, bad, skip)
PY
	) || { failed=$((failed + 1)); return; }
	set -- $line "$2"
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$((skipped + $3))
	echo "run.sh: $dir: $1 passed, $2 failed, $3 skipped"
	# Tests that never reported (meson was killed midway) count as failed.
	local ran=$(($1 + $2 + $3))
	if [ -n "$4" ] && [ "$ran" -lt "$4" ]; then
		echo "run.sh: $dir: only $ran of $4 tests reported; the rest count as failed" >&2
		failed=$((failed + $4 - ran))
	fi
}

# setup DIR ARGS...: configure once; later runs let ninja re-run meson.
setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		return 0
	fi
	rm -rf "$dir"
	meson setup "$dir" "$@"
}

# One configuration: configure, build, test. A failed build counts as one
# failure (its tests never ran).
run_config() {
	local dir=$1
	shift
	echo "run.sh: === $dir ==="
	rm -f "$dir/meson-logs/testlog.json"
	if ! setup "$dir" "$@" || ! ninja -C "$dir"; then
		echo "run.sh: $dir: build failed" >&2
		failed=$((failed + 1))
		return
	fi
	mult=1
	[ $long = 1 ] && mult=10
	local want rc before
	want=$(meson test -C "$dir" --list "${test_args[@]}" 2>/dev/null | grep -c " / ")
	meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult" "${test_args[@]}" </dev/null
	rc=$?
	before=$failed
	count "$dir" "$want"
	# meson failing with no failed test in its log (killed, crashed,
	# interrupted) is still a failure, never a quiet pass.
	if [ $rc -ne 0 ] && [ $failed -eq $before ]; then
		echo "run.sh: $dir: meson test exited $rc" >&2
		failed=$((failed + 1))
	fi
}

test_args=()
run_config build --buildtype=debugoptimized

asan_opts=(--buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false)
if [ -f tests/fuzz/meson.build ]; then
	asan_opts+=(-Dfuzz=true)
fi
# clang: libFuzzer ships with it, and a second compiler catches more.
# The quick run leaves the slowest integration tests (suite "slow": the
# long scenario lists, kill sweeps, TCP) to build/ alone, keeping the
# whole run near 15 minutes on 2 cores; --long runs them under the
# sanitizers too.
test_args=()
[ $long = 1 ] || test_args=(--no-suite slow)
CC=clang run_config build-asan "${asan_opts[@]}"

finish
