# Shared by the cli tests: sourced, with the cryo binary as $1.
#
#   check RC "what" cmd args...   run cmd, expect exit status RC
#   check_err1                    the last command's stderr is exactly one
#                                 line "cryo: ..."
#   check_out PATTERN "what"      the last stdout matches an extended regex
#   done_testing                  summary line, exit status
#
# Each check prints "PASS: ..." or "FAIL: ..." with what it saw.

set -u

CRYO=${1:?usage: $0 path/to/cryo}
case "$CRYO" in /*) ;; *) CRYO=$(pwd)/$CRYO ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/cryo-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
export CRYO_HOME=$T/home
unset CRYO_LOG CRYO_FAULT
OUT=$T/stdout
ERR=$T/stderr
npass=0
nfail=0
last=""

pass() { npass=$((npass + 1)); echo "PASS: $*"; }
fail() {
	nfail=$((nfail + 1))
	echo "FAIL: $*"
	echo "  command: $last"
	sed 's/^/  stdout: /' "$OUT" | head -20
	sed 's/^/  stderr: /' "$ERR" | head -20
}

# The store commands need src/store; builds that link the ENOSYS stand-in
# (meson sets CRYO_STORE_STUB) skip the tests that use a real store.
need_store() {
	if [ -n "${CRYO_STORE_STUB:-}" ]; then
		echo "SKIP: the store is not built yet (src/store/txn.c missing)"
		exit 77
	fi
}

# check RC WHAT CMD...
check() {
	local want=$1 what=$2 rc
	shift 2
	last="$*"
	"$@" >"$OUT" 2>"$ERR" </dev/null
	rc=$?
	if [ "$rc" = "$want" ]; then
		pass "$what (exit $rc)"
	else
		fail "$what: exit $rc, expected $want"
	fi
}

# The one-line-reason rule for failures.
check_err1() {
	local n
	n=$(wc -l <"$ERR")
	if [ "$n" = 1 ] && grep -q '^cryo: ' "$ERR"; then
		pass "one line on stderr: $(cat "$ERR")"
	else
		fail "expected one 'cryo: ' line on stderr, got $n lines"
	fi
}

check_out() {
	if grep -Eq -- "$1" "$OUT"; then
		pass "$2"
	else
		fail "$2: stdout does not match /$1/"
	fi
}

check_err() {
	if grep -Eq -- "$1" "$ERR"; then
		pass "$2"
	else
		fail "$2: stderr does not match /$1/"
	fi
}

# stdout is one valid JSON document.
check_json() {
	if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT" 2>/dev/null; then
		pass "$1: valid JSON"
	else
		fail "$1: stdout is not valid JSON"
	fi
}

done_testing() {
	echo "$npass passed, $nfail failed"
	[ "$nfail" = 0 ]
	exit $?
}
