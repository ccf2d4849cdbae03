#!/bin/sh
# tests/long/run.sh - what `make test-long` runs and CI does not (each case
# over ~30 s): long node runs, long fuzzing. Ends with the usual closing line.
#   EP_LONG_FUZZ_SECONDS  seconds per fuzz target (default 300)
set -u
SUBCOMMAND=internode
. "$(dirname "$0")/../lib.sh"
cd "$lib_here/../.."

# The false stall of issue 8: at -n 100000 a rank sorted its arrival times
# with an O(n^2) insertion sort after the timed loop, made no progress for
# over timeout + 5 s, and the launcher ended a healthy run with exit 4
# ("no rank made progress for 10 s ... in idle"). About 3-4 minutes here.
start=$(date +%s)
timeout -k 5 900 "$EPBENCH" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -k 4 -e 16 \
	-n 100000 -w 1 --timeout 5 >"$tmp/out" 2>&1
got=$?
echo "# internode -n 100000: exit $got after $(( $(date +%s) - start )) s"
[ "$got" -eq 0 ] && grep -q "verdict: PASS" "$tmp/out" && ok "internode_100000_iterations_no_false_stall" ||
	bad "internode_100000_iterations_no_false_stall" "exit $got"

# The same length in low-latency across nodes and on one host.
timeout -k 5 900 "$EPBENCH" low-latency --local-nodes --nodes 2 --ranks-per-node 1 -t 8 --hidden 512 -k 2 -e 8 \
	-n 100000 -w 1 --timeout 5 >"$tmp/out" 2>&1
got=$?
[ "$got" -eq 0 ] && ok "low_latency_nodes_100000_iterations" || bad "low_latency_nodes_100000_iterations" "exit $got"
timeout -k 5 900 "$EPBENCH" intranode -r 4 -t 16 --hidden 256 -k 4 -e 16 -n 200000 -w 1 --timeout 5 >"$tmp/out" 2>&1
got=$?
[ "$got" -eq 0 ] && ok "intranode_200000_iterations" || bad "intranode_200000_iterations" "exit $got"

# Long fuzzing of every parser.
make --no-print-directory fuzz FUZZ_SECONDS="${EP_LONG_FUZZ_SECONDS:-300}" >"$tmp/out" 2>&1
for t in case routing options result; do
	line=$(grep "^fuzz $t:" "$tmp/out")
	echo "# $line"
	case "$line" in *"no crash") ok "fuzz_long_$t" ;; *) bad "fuzz_long_$t" "${line:-no result line}" ;; esac
done
finish tests/long/run.sh
