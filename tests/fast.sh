#!/bin/sh
# fast.sh - runs tests/fast.list against $EPBENCH (one line per case, each
# with a 60 s deadline) and ends with "N passed, N failed, N skipped". Used by
# `make test-fast`, which .ci/run calls for the ASan and UBSan builds, where
# a sanitizer report (in any rank) fails the case.
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
cd "$lib_here/.."
TMP=$tmp
n=0
while IFS= read -r line; do
	case "$line" in '#'*|'') continue ;; esac
	want=${line%% :: *}
	args=${line#* :: }
	n=$((n + 1))
	eval "set -- $args"
	timeout -k 2 60 "$EPBENCH" "$@" >"$tmp/out" 2>&1
	got=$?
	if grep -qE "ERROR: (Address|Leak|Thread)Sanitizer|runtime error:" "$tmp/out"; then
		bad "fast_$n" "sanitizer report (epbench $args)"
	elif [ "$got" -ne "$want" ]; then
		bad "fast_$n" "exit $got, want $want (epbench $args)"
	else
		ok "fast_$n: $args"
	fi
done <tests/fast.list
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish fast.sh
