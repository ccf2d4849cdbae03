#!/bin/sh
# state_test.sh - every rank's state as one block: on SIGUSR1 while the run
# goes on (its result unchanged), and when a point ends stuck, with the
# likely culprit named in the block and in the JSON error; the source x
# destination matrix of the op in flight (a stalled or stopped rank's pairs
# and only those are suspect), node 0's block gathered across nodes, and a
# link cut between two nodes blamed on the link, not on a rank.
# Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
small="-r 3 -t 32 --hidden 256 -e 12 -k 3"

# SIGUSR1 mid-run: the block on stderr, the run goes on and passes
# shellcheck disable=SC2086
# (40000 iterations: about 3 s on 2 quiet cores, longer under load; the signal comes 0.5 s after rank 2 runs)
"$EPBENCH" intranode $small -n 40000 -w 0 --op dispatch --progress off -q --json "$tmp/usr1.json" \
	>"$tmp/out" 2>"$tmp/err" &
pid=$!
bg="$bg $pid"
wait_rank epbench-r2 >/dev/null
sleep 0.5
kill -USR1 "$pid" 2>/dev/null
wait "$pid"
got=$?
cat "$tmp/err" >>"$tmp/out"
[ "$got" -eq 0 ] && ok "usr1_run_goes_on" || bad "usr1_run_goes_on" "exit $got"
grep -q "^# state of 3 ranks (SIGUSR1; the run goes on):" "$tmp/err" && ok "usr1_block" || bad "usr1_block" "no block"
[ "$(grep -cE '^#  +[0-2] +[0-9]+ ' "$tmp/err")" -eq 3 ] && ok "usr1_line_per_rank" || bad "usr1_line_per_rank" "not 3 lines"
grep -q '"verdict": "PASS"' "$tmp/usr1.json" && ok "usr1_result_kept" || bad "usr1_result_kept" "no PASS in JSON"

# a hung rank: the block when the point ends, the culprit in the error
# shellcheck disable=SC2086
run "hang_ends" 4 30 intranode $small -n 3 -w 0 --fault hang:2 --timeout 2 --json "$tmp/hang.json"
expect "hang_block" "^# state of 3 ranks \(the point ends stuck\):"
expect "hang_culprit" "^# likely: rank 2 \(phase fault.hang\) holds up ranks 0, 1 and waits for no one"
grep -q "likely: rank 2 (phase fault.hang) holds up" "$tmp/hang.json" && ok "hang_culprit_in_json" ||
	bad "hang_culprit_in_json" "not in the JSON error"

# a stopped rank process (a debugger, SIGSTOP): named as stopped
# shellcheck disable=SC2086
"$EPBENCH" intranode $small -n 400000 -w 0 --op dispatch --timeout 2 --progress off -q >"$tmp/out" 2>&1 &
pid=$!
bg="$bg $pid"
r1=$(wait_rank epbench-r1)
sleep 0.5
kill -STOP "$r1" 2>/dev/null
wait "$pid"
got=$?
[ "$got" -eq 4 ] && ok "stopped_ends" || bad "stopped_ends" "exit $got"
expect "stopped_named" "^# likely: rank 1 is stopped \(SIGSTOP or a debugger\) in phase [a-z.]+; ranks 0, 2 wait for it"
# suspects RANK: every suspect pair line of the block involves RANK, and there is one
suspects() {
	grep -E '^#   +[0-9]+ -> [0-9]+ +(missing|not started|no answer)' "$tmp/out" >"$tmp/pairs"
	[ -s "$tmp/pairs" ] && ! grep -vqE "^#   +($1 -> [0-9]+|[0-9]+ -> +$1 ) " "$tmp/pairs"
}

# a rank stalled from iteration 1: its row and column are the suspects, the rest held
# shellcheck disable=SC2086
run "stall_ends" 4 30 intranode $small -n 3 -w 0 --fault stall:2@1 --timeout 2 --json "$tmp/stall.json"
expect "stall_matrix" "^# traffic of op dispatch #[0-9]+ \(rows and bytes arrived/expected"
suspects 2 && ok "stall_only_its_pairs" || bad "stall_only_its_pairs" "a suspect pair without rank 2, or none"
[ "$(wc -l <"$tmp/pairs")" -eq 4 ] && ok "stall_row_and_column" || bad "stall_row_and_column" "$(wc -l <"$tmp/pairs") suspect pairs, want 4"
expect "stall_held" "^#   +0 -> 1 +held \(rank 2\)"
expect "stall_grid" "^#   +2 +0/\?\* +0/\?\* +-$"
expect "stall_culprit" "^# likely: .*by traffic: rank 2 never arrived anywhere"
grep -q "rank 2 never arrived anywhere.*missing pairs: 0->2 " "$tmp/stall.json" && ok "stall_in_json" ||
	bad "stall_in_json" "no traffic verdict and pairs in the JSON error"
# the whole block as printed, in the point's JSON (state_block): rank lines, the pairs, the culprit
python3 - "$tmp/stall.json" <<'PY' && ok "stall_block_in_json" || bad "stall_block_in_json" "see above"
import json, sys
b = json.load(open(sys.argv[1]))["points"][0]["state_block"]
assert b.startswith("# state of 3 ranks"), b[:80]
assert "fault.hang" in b and "# traffic of op" in b and "# likely: rank 2 " in b and "never arrived anywhere" in b, b
PY

# low-latency (pulls): a stalled rank's rows are the only suspects
run "ll_stall_ends" 4 30 low-latency -r 3 -t 16 --hidden 256 -e 12 -k 3 -n 3 -w 0 --fault stall:1@1 --timeout 2
expect "ll_stall_matrix" "^# traffic of op ll\.(dispatch|combine) #[0-9]+ "
suspects 1 && ok "ll_stall_only_its_pairs" || bad "ll_stall_only_its_pairs" "a suspect pair without rank 1, or none"
expect "ll_stall_culprit" "^# likely: .*by traffic: rank 1 never arrived anywhere"

# a stopped rank process: any suspect pair is its own, and the culprit names it
# shellcheck disable=SC2086
"$EPBENCH" intranode $small -n 400000 -w 0 --timeout 2 --progress off -q >"$tmp/out" 2>&1 &
pid=$!
bg="$bg $pid"
r1=$(wait_rank epbench-r1)
sleep 0.5
kill -STOP "$r1" 2>/dev/null
wait "$pid"
got=$?
[ "$got" -eq 4 ] && ok "stopped_both_ends" || bad "stopped_both_ends" "exit $got"
expect "stopped_matrix" "^# traffic of op (dispatch|combine) #[0-9]+ "
if grep -qE '^#   +[0-9]+ -> [0-9]+ +(missing|not started)' "$tmp/out"; then
	suspects 1 && ok "stopped_only_its_pairs" || bad "stopped_only_its_pairs" "a suspect pair without rank 1"
else
	ok "stopped_only_its_pairs" # stopped between two ops: nothing in flight is missing
fi
expect "stopped_culprit" "^# likely: rank 1 is stopped"

# internode: node 0 gathers node 1's share; the hung rank on node 1 is the culprit
run "nodes_hang_ends" 4 40 internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 8 -k 2 \
	-n 3 -w 0 --fault hang:3 --timeout 3 --json "$tmp/nodes.json"
expect "nodes_gathered" "^# state of 4 ranks on 2 nodes \(.*gathered by node 0\):"
expect "nodes_remote_line" "^#   +3 +[0-9]+ +[A-Z] fault.hang "
expect "nodes_tcp_path" "^#   +[0-9]+ -> [0-9]+ .* tcp 127\.0\.0\.1:[0-9]+ -> tcp 127\.0\.0\.1:[0-9]+$"
suspects 3 && ok "nodes_only_its_pairs" || bad "nodes_only_its_pairs" "a suspect pair without rank 3"
expect "nodes_culprit" "^# likely: rank 3 never arrived anywhere"
grep -q "likely: rank 3 never arrived anywhere" "$tmp/nodes.json" && ok "nodes_in_json" || bad "nodes_in_json" "not in the JSON error"
python3 - "$tmp/nodes.json" <<'PY' && ok "nodes_block_in_json" || bad "nodes_block_in_json" "see above"
import json, sys
b = json.load(open(sys.argv[1]))["points"][0]["state_block"]
assert "gathered by node 0" in b and "fault.hang" in b and "# likely: rank 3" in b, b
PY

# SIGUSR1 to a multi-node launcher: node 0 gathers the block, the run goes on and passes
# (6000 iterations: about 6 s on 2 quiet cores; the signal comes 1 s after the last rank runs)
"$EPBENCH" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 8 -k 2 -n 6000 -w 0 \
	--op dispatch --progress off -q --json "$tmp/nusr1.json" >"$tmp/out" 2>&1 &
pid=$!
bg="$bg $pid"
wait_rank epbench-r3 >/dev/null
sleep 1
kill -USR1 "$pid" 2>/dev/null
wait "$pid"
got=$?
[ "$got" -eq 0 ] && ok "nodes_usr1_run_goes_on" || bad "nodes_usr1_run_goes_on" "exit $got"
expect "nodes_usr1_gathered" "^# state of 4 ranks on 2 nodes \(SIGUSR1; the run goes on; gathered by node 0\):"
[ "$(grep -caE '^#  +[0-3] +[0-9]+ ' "$tmp/out")" -eq 4 ] && ok "nodes_usr1_line_per_rank" || bad "nodes_usr1_line_per_rank" "not 4 lines"
grep -q '"verdict": "PASS"' "$tmp/nusr1.json" && ok "nodes_usr1_result_kept" || bad "nodes_usr1_result_kept" "no PASS in JSON"

# a node that does not answer (node 1 and its ranks stopped): named, its
# pairs read as "no answer"; then it goes on, so that the job can end
"$EPBENCH" internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 8 -k 2 \
	-n 400000 -w 0 --op dispatch --timeout 3 --progress off -q >"$tmp/out" 2>&1 &
pid=$!
bg="$bg $pid"
sleep 2.5
n1=$(pgrep -P "$pid" -x epbench-n1)
stopped="$n1 $(pgrep -P "$n1" | tr '\n' ' ')"
# shellcheck disable=SC2086
kill -STOP $stopped 2>/dev/null
i=0
while [ $i -lt 200 ] && ! grep -q "did not answer" "$tmp/out"; do sleep 0.1; i=$((i + 1)); done
# shellcheck disable=SC2086
kill -CONT $stopped 2>/dev/null
wait "$pid"
got=$?
[ "$got" -eq 4 ] && ok "silent_node_ends" || bad "silent_node_ends" "exit $got"
expect "silent_node_named" "^# node 1 did not answer within [0-9.]+ s: its ranks are unknown"
expect "silent_node_pairs" "^#   +[0-9]+ -> [0-9]+ +no answer "

# a link cut between the two nodes: blamed on the link, not on a rank
run "link_down_ends" 4 40 internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 8 -k 2 \
	-n 3 -w 0 --fault link-down:0-1@1 --timeout 3 --json "$tmp/link.json"
# (every rail between the nodes is cut; a rail whose ranks had not yet used
# it when the first failure ended the point may show as pending: then the
# one rail seen failing is named, still a link)
link="link (node 0 <-> node 1: only pairs between these nodes|rank [02] <-> rank [02]: only this pair's rows|rank [13] <-> rank [13]: only this pair's rows) are missing"
expect "link_down_culprit" "^# likely: $link"
grep -qE "likely: $link" "$tmp/link.json" && ok "link_down_in_json" || bad "link_down_in_json" "not in the JSON error"
expect "link_down_no_rank" "^# likely: link"
run "link_down_one_host" 2 10 intranode $small -n 3 --fault link-down:0-1
expect "link_down_one_host_says" "link-down:0-1 needs a run across nodes"
run "link_down_outside" 2 10 internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 8 -k 2 \
	--fault link-down:0-2
expect "link_down_outside_says" "link-down:0-2 targets a node outside the job \(nodes 0 to 1\)"
# qp-error is the verbs way to break a link (tests/soft_roce_test.sh runs it there); over tcp it is a usage error
run "qp_error_needs_verbs" 2 60 internode --local-nodes --nodes 2 --ranks-per-node 1 -t 32 --hidden 256 -e 4 -k 2 \
	-n 3 -w 0 --timeout 5 --transport tcp --fault qp-error:0-1@1
expect "qp_error_needs_verbs_says" "--fault qp-error needs --transport verbs \(this run uses tcp\)"
finish state_test.sh
