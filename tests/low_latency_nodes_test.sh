#!/bin/sh
# low_latency_nodes_test.sh - end-to-end cases of `epbench low-latency` across emulated nodes over TCP.
# Nodes run in network namespaces joined by a bridge (scripts/netns-cluster.sh)
# where the machine allows it, else on loopback with --local-nodes; case names
# say which ("_netns" / "_loopback"). Fault cases start node processes by
# hand on loopback, as on two hosts. Every case runs under a deadline; the
# script ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=low-latency
. "$(dirname "$0")/lib.sh"
cluster_init

# Nodes x ranks, dtypes, cast variants, hook, zero copy, uneven tokens.
small="-t 24 --hidden 256 -k 4 -n 2 -w 1 --timeout 20"
if cluster "tcp_2x1_bf16" 0 60 2 --ranks-per-node 1 -e 8 $small; then
	expect "banner_names_nodes_and_transport" "^# low-latency: 2 nodes x 1 ranks .*num_max_dispatch_tokens_per_rank"
	expect "table_has_node_and_link_rows" "^#   link 1->0 dispatch +[0-9.]+[KM]? in"
fi
cluster "tcp_2x2_fp8" 0 60 2 --ranks-per-node 2 -e 16 --dtype fp8 -t 24 --hidden 512 -k 4 -n 2 -w 1 --timeout 20
cluster "tcp_3x1_masked_uneven" 0 60 3 --ranks-per-node 1 -e 12 --masked-ratio 0.3 --uneven-tokens 1 $small
cluster "tcp_3x2_ue8m0_hook_zero_copy" 0 90 3 --ranks-per-node 2 -e 24 --dtype fp8 --round-scale --ue8m0 \
	--hook --zero-copy -t 16 --hidden 512 -k 4 -n 2 -w 1 --timeout 20 && expect "hook_ops_reported" " combine-recv "
cluster "tcp_2x2_zipf_n_above_tokens" 0 60 2 --ranks-per-node 2 -e 16 --routing zipf:1.2 \
	--num-max-dispatch-tokens-per-rank 40 $small
if cluster "tcp_2x2_json_dump" 0 60 2 --ranks-per-node 2 -e 16 --dtype fp8 --json "$tmp/r.json" --dump "$tmp/d2" \
	-t 20 --hidden 512 -k 4 -n 2 -w 1 --seed 3; then
	if command -v python3 >/dev/null; then
		python3 - "$tmp/r.json" <<'PY' >"$tmp/out" 2>&1 && ok "json_nodes_links_and_bytes" || bad "json_nodes_links_and_bytes" "see above"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "low-latency" and d["verdict"] == "PASS", (d["command"], d["verdict"])
p = d["points"][0]
assert p["check"]["wrong_elements"] == 0 and p["check"]["compared_bytes"] > 0
ops = {o["op"]: o for o in p["ops"]}
assert set(ops) == {"dispatch", "combine", "dispatch+combine"}, set(ops)
assert len(p["nodes"]) == 2 and len(p["links"]) == 2, (p["nodes"], p["links"])
PY
	else
		skipped "json_nodes_links_and_bytes" "python3 missing"
	fi
	# The same job on one host with 4 ranks: every tensor byte for byte the same.
	timeout -k 2 60 "$EPBENCH" low-latency -r 4 -e 16 --dtype fp8 --dump "$tmp/d1" -t 20 --hidden 512 -k 4 -n 2 -w 1 \
		--seed 3 >"$tmp/out" 2>&1
	if [ "$?" -eq 0 ] && diff -r "$tmp/d1" "$tmp/d2" >"$tmp/out" 2>&1; then ok "same_bytes_as_one_host"
	else bad "same_bytes_as_one_host" "dumps of 2 nodes x 2 ranks and of -r 4 differ"; fi
fi
if cluster "corrupt_byte_wrong_data" 1 60 2 --ranks-per-node 2 -e 16 $small --fault corrupt:3; then
	expect "corrupt_byte_named" "rank 3: packed_recv_x\[[0-9]+\]\[[0-9]+\]\[128\]: expected .* \(row from rank [0-9]+ token [0-9]+\)"
fi
if cluster "dead_rank_ends_job" 4 40 2 --ranks-per-node 2 -e 16 -t 24 --hidden 256 -k 4 -n 50 -w 1 --timeout 5 --fault die:2; then
	expect "dead_rank_named" "rank 2"
fi

# One node is today's one-host run; a sweep of ranks cannot cross nodes.
timeout -k 2 30 "$EPBENCH" low-latency --nodes 1 --ranks-per-node 2 -e 8 $small >"$tmp/out" 2>&1
c=$?
if [ "$c" -eq 0 ] && grep -q "transport shm" "$tmp/out" && grep -qE "^ +2 +24 +256 dispatch " "$tmp/out"; then
	ok "one_node_runs_on_this_host"
else bad "one_node_runs_on_this_host" "exit $c, or not a 2-rank shared-memory run"; fi
timeout -k 2 10 "$EPBENCH" low-latency --local-nodes --nodes 2 -r 2,4 -e 8 $small >"$tmp/out" 2>&1
c=$?
[ "$c" -eq 2 ] && grep -q "cannot be swept across nodes" "$tmp/out" && ok "rank_sweep_across_nodes_refused" ||
	bad "rank_sweep_across_nodes_refused" "exit $c"

# Node processes started by hand on loopback, as on two hosts (start_node).
tiny="--nodes 2 --ranks-per-node 1 -t 16 --hidden 512 -e 4 -k 2 -n 1 -w 0 --timeout 10 --dtype fp8"

next_port
start_node $tiny --zero-copy --node-rank 0 --master 127.0.0.1:$port >"$tmp/n0" 2>&1; p0=$last
start_node $tiny --node-rank 1 --master 127.0.0.1:$port >"$tmp/n1" 2>&1; p1=$last
timeout 20 sh -c "while kill -0 $p0 2>/dev/null || kill -0 $p1 2>/dev/null; do sleep 0.1; done"
wait $p0; c0=$?; wait $p1; c1=$?
cat "$tmp/n0" "$tmp/n1" >"$tmp/out"
if [ "$c0" -eq 2 ] && [ "$c1" -eq 2 ] && grep -q -- "--zero-copy differs: node 0 has 1, node 1 has 0" "$tmp/n0"; then
	ok "mismatched_ll_option_refused_on_both"
else bad "mismatched_ll_option_refused_on_both" "exits $c0/$c1, want 2/2 and a line naming --zero-copy"; fi

next_port
env NNODES=2 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 30 "$EPBENCH" low-latency --ranks-per-node 1 \
	-t 16 --hidden 256 -e 4 -k 2 -n 1 -w 0 --timeout 10 >"$tmp/c0" 2>&1 &
q0=$!
env NNODES=2 NODE_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 30 "$EPBENCH" low-latency --ranks-per-node 1 \
	-t 16 --hidden 256 -e 4 -k 2 -n 1 -w 0 --timeout 10 >"$tmp/c1" 2>&1
c1=$?
wait $q0; c0=$?
cat "$tmp/c0" "$tmp/c1" >"$tmp/out"
if [ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] && grep -q "from NNODES, NODE_RANK" "$tmp/c0" && grep -q "verdict PASS" "$tmp/c1"; then
	ok "convention_master_env"
else bad "convention_master_env" "exits $c0/$c1, or no banner naming NNODES, NODE_RANK"; fi

# A node killed mid-run ends the job on the other at once; a stalled one
# (SIGSTOP) within the timeout, named with the rank it stalls.
long="--nodes 2 --ranks-per-node 2 -t 64 --hidden 512 -e 16 -k 4 -n 1000000 -w 1 --check 0 --timeout 3"
node_fault killed_node_ends_job_within_timeout KILL 2 4 "rank [23] \(node 1\)|node 1" $long
# (on a loaded host the stop may land before the ranks connected: then node 1's ranks are named as unanswered)
node_fault stalled_node_named_within_timeout STOP 2 9 "rank [23] \(node 1\)|node 1 did not answer \(ranks 2, 3\)" $long

# verbs: forced without a device is an environment error, said plainly.
timeout 20 "$EPBENCH" low-latency --local-nodes --nodes 2 --ranks-per-node 1 -t 16 --hidden 128 -e 4 -k 2 -n 1 -w 0 \
	--transport verbs >"$tmp/out" 2>&1
c=$?
if grep -q "no RDMA device" "$tmp/out"; then
	[ "$c" -eq 3 ] && ok "verbs_forced_without_device_exit_3" || bad "verbs_forced_without_device_exit_3" "exit $c"
else
	skipped "verbs_forced_without_device_exit_3" "this host has an RDMA device (exit $c); the verbs path itself is not exercised here"
fi
skipped "verbs_transfer" "needs an RDMA device; tests/soft_roce_test.sh runs low-latency between two Soft-RoCE guests"

finish low_latency_nodes_test.sh
