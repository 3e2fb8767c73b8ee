#!/usr/bin/env bash
# docs/cryo.1 grows with the commands: every command `cryo help` lists, every
# subcommand of every family (hidden ones too) and every fault point has
# its entry. Usage: test_manpage.sh CRYO MANPAGE
. "$(dirname "$0")/lib.sh"
MAN=${2:?usage: $0 cryo docs/cryo.1}

# The roff source with its escapes undone, as one searchable text.
text=$(sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/^\.[A-Z]* //' "$MAN")
has() { grep -Fq -- "$1" <<<"$text"; }

cmds=$("$CRYO" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/^Commands:/ {print $1}')
for cmd in $cmds; do
	has "cryo $cmd" && pass "man page has 'cryo $cmd'" || fail "man page lacks 'cryo $cmd'"
	subs=$("$CRYO" help "$cmd" | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/^Commands:/ {print $1}')
	[ "$cmd" = store ] && subs="$subs demo-write"
	for sub in $subs; do
		has "cryo $cmd $sub" && pass "man page has 'cryo $cmd $sub'" \
			|| fail "man page lacks 'cryo $cmd $sub'"
	done
done
for fp in $(sed -n 's/.*X(FP_[A-Z_]*, *"\([a-z.]*\)".*/\1/p' "$(dirname "$MAN")/../src/common/fault.h"); do
	has "$fp" && pass "man page names fault point $fp" || fail "man page lacks fault point $fp"
done
# roff that man itself accepts without warnings.
if command -v groff >/dev/null; then
	w=$(groff -man -Tutf8 -ww "$MAN" 2>&1 >/dev/null)
	[ -z "$w" ] && pass "groff: no warnings" || fail "groff warns: $w"
fi

done_testing
