#!/usr/bin/env bash
# The command's contract without a store: exit codes, --help everywhere,
# --version, usage errors.
. "$(dirname "$0")/lib.sh"

check 2 "no arguments is a usage error" "$CRYO"
check_err '^cryo: ' "usage error says why"
check 0 "--version" "$CRYO" --version
check_out '^cryo [0-9]+\.[0-9]+' "--version prints the version"
check 0 "version command" "$CRYO" version
check 0 "--help" "$CRYO" --help
check_out '^Usage: cryo' "--help prints usage"
check 0 "help" "$CRYO" help
check 2 "unknown command" "$CRYO" frobnicate
check_err "unknown command 'frobnicate'" "unknown command named"
check 2 "unknown top-level option" "$CRYO" --frob
check 2 "help for an unknown command" "$CRYO" help frobnicate
check 2 "unknown store command" "$CRYO" store frobnicate
check 2 "store without a command" "$CRYO" store

# Every command listed by help, and every subcommand of every family,
# answers --help with exit 0 and `cryo help ...` the same way. The hidden
# dev command is checked by name.
cmds=$("$CRYO" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/^Commands:/ {print $1}')
[ -n "$cmds" ] && pass "help lists commands: $(echo $cmds)" || fail "help lists no commands"
for cmd in $cmds; do
	check 0 "cryo $cmd --help" "$CRYO" "$cmd" --help
	check 0 "cryo help $cmd" "$CRYO" help "$cmd"
	subs=$(sed -n '/^Commands:/,/^$/p' "$OUT" | awk 'NF && !/^Commands:/ {print $1}')
	[ "$cmd" = store ] && subs="$subs demo-write"
	for sub in $subs; do
		check 0 "cryo $cmd $sub --help" "$CRYO" "$cmd" "$sub" --help
		check_out '^Usage: cryo' "cryo $cmd $sub --help prints usage"
		check 0 "cryo help $cmd $sub" "$CRYO" help "$cmd" "$sub"
	done
done
check 0 "demo-write is documented" "$CRYO" help store demo-write
"$CRYO" help store >"$OUT"
if grep -q demo-write "$OUT"; then fail "demo-write is hidden from 'cryo help store'"; else pass "demo-write is hidden from 'cryo help store'"; fi

# Usage errors: bad option values, stray arguments, unknown options.
check 2 "store init --size garbage" "$CRYO" store init --size 12Q --store "$T/s"
check_err "size" "names the bad option"
check 2 "store init --size without value" "$CRYO" store init --size
check 2 "store init --segment-size not 4K-aligned" "$CRYO" store init --segment-size 1001K --store "$T/s"
check 2 "store init --codec unknown" "$CRYO" store init --codec gzip --store "$T/s"
check 2 "store init too small for 8 segments" "$CRYO" store init --size 1M --store "$T/s"
check 2 "store stat with a stray argument" "$CRYO" store stat extra
check 2 "store ls --bogus" "$CRYO" store ls --bogus
check 2 "store cat without a vpn" "$CRYO" store cat obj 1
check 2 "store cat with a bad snapshot" "$CRYO" store cat obj zero 0
check 2 "store demo-write --change 150" "$CRYO" store demo-write obj --change 150
check 2 "store demo-write without object" "$CRYO" store demo-write
[ ! -e "$T/s" ] && pass "usage errors created nothing" || fail "a usage error created $T/s"

# A missing store is a failure (1) with one line, not a usage error.
check 1 "store stat on a missing store" "$CRYO" store stat --store "$T/nope"
check_err1
check 1 "store ls on a missing CRYO_HOME" "$CRYO" store ls
check_err1
check 1 "store stat on a directory" "$CRYO" store stat --store "$T"
check_err1

done_testing
