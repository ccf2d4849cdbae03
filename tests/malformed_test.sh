#!/bin/sh
# malformed_test.sh - every line of tests/malformed.list must be refused before
# anything runs: exit 2, nothing on stdout, exactly one line on stderr that
# holds the line's fragment (the quoted value), and no process or thread
# created (checked with strace when it is installed). The list covers every
# subcommand's option table.
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
list="$lib_here/malformed.list"
tracer=""
command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null && tracer=strace
[ -n "$tracer" ] || echo "# strace unavailable: 'nothing spawned' is checked by an empty stdout only"
n=0
while IFS= read -r line; do
	case "$line" in '#'*|'') continue ;; esac
	frag=${line%% :: *}
	args=${line#* :: }
	n=$((n + 1))
	eval "set -- $args"
	if [ -n "$tracer" ]; then
		# LeakSanitizer cannot run under ptrace (an ASan build); fuzz_options checks leaks here
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			timeout 20 strace -f -qq -e trace=fork,vfork,clone,clone3 -o "$tmp/trace" "$EPBENCH" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
	else
		timeout 20 "$EPBENCH" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
	fi
	got=$?
	why=""
	[ "$got" -eq 2 ] || why="exit $got"
	[ -s "$tmp/stdout" ] && why="$why; printed to stdout"
	[ "$(wc -l <"$tmp/stderr")" -eq 1 ] || why="$why; $(wc -l <"$tmp/stderr") lines on stderr"
	grep -qF -- "$frag" "$tmp/stderr" || why="$why; no '$frag' in: $(head -c 300 "$tmp/stderr")"
	[ -n "$tracer" ] && grep -qE "clone|fork" "$tmp/trace" && why="$why; spawned: $(grep -cE 'clone|fork' "$tmp/trace") processes/threads"
	if [ -z "$why" ]; then ok "malformed_$n"; else echo "      | epbench $args"; bad "malformed_$n" "$why"; fi
done <"$list"
[ "$n" -ge 100 ] && ok "at_least_100_invocations ($n)" || bad "at_least_100_invocations" "only $n"
finish malformed_test.sh
