#!/bin/sh
# internode_test.sh - end-to-end cases of `epbench internode`: emulated nodes over TCP.
# Nodes run in network namespaces joined by a bridge (scripts/netns-cluster.sh)
# where the machine allows it, else on loopback with --local-nodes; case names
# say which ("_netns" / "_loopback"). Every case runs under a deadline; the
# script ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=internode
. "$(dirname "$0")/lib.sh"
cluster_init

small="-t 96 --hidden 256 -k 4 -n 2 -w 1 --timeout 20"
cluster "tcp_2x1" 0 60 2 --ranks-per-node 1 -e 8 $small
cluster "tcp_2x2_bias2" 0 60 2 --ranks-per-node 2 -e 16 --bias 2 $small
cluster "tcp_2x4_fp8" 0 90 2 --ranks-per-node 4 -e 32 --dtype fp8 $small
cluster "tcp_3x1_masked" 0 60 3 --ranks-per-node 1 -e 12 --masked-ratio 0.3 $small
cluster "tcp_3x3_fp8_bias2" 0 90 3 --ranks-per-node 3 -e 18 --dtype fp8 --bias 2 $small
cluster "tcp_3x4_group_limited" 0 120 3 --ranks-per-node 4 -e 24 --num-topk-groups 2 -t 64 --hidden 128 -k 4 -n 2 -w 1 --timeout 30
cluster "tcp_2x2_int8_no_topk_cached" 0 60 2 --ranks-per-node 2 -e 16 --dtype int8 --with-topk 0 --cached $small
cluster "tcp_3x2_uneven_tokens_fp8" 0 60 3 --ranks-per-node 2 -e 24 --uneven-tokens 1 --dtype fp8 --bias 1 $small
# a lone row's combine partial is sent as the row itself (not with two biases,
# where -0 decides): special values through both paths
cluster "tcp_2x1_special_bias2" 0 60 2 --ranks-per-node 1 -e 8 --payload special --bias 2 $small
cluster "tcp_2x2_special_bias1" 0 60 2 --ranks-per-node 2 -e 16 --payload special --bias 1 $small
# many chunks a link: payloads landed in the rail peer's area and in the buffer, chunk by chunk
cluster "tcp_2x2_many_chunks_fp8" 0 90 2 --ranks-per-node 2 -e 16 --dtype fp8 -t 2048 --hidden 2048 -k 4 -n 2 -w 1 --timeout 30
if cluster "tcp_2x2_json_dump" 0 60 2 --ranks-per-node 2 -e 16 $small --json "$tmp/r.json" --dump "$tmp/dump"; then
	grep -q '"links"' "$tmp/r.json" && grep -q '"nodes"' "$tmp/r.json" && ok "json_has_nodes_and_links" ||
		bad "json_has_nodes_and_links" "no nodes/links in $tmp/r.json"
	n=0
	for q in 0 1 2 3; do [ -s "$tmp/dump/rank$q/combined_x.npy" ] && [ -s "$tmp/dump/rank$q/num_tokens_per_rdma_rank.npy" ] && n=$((n + 1)); done
	[ "$n" -eq 4 ] && ok "dump_every_rank_of_every_node" || bad "dump_every_rank_of_every_node" "$n of 4 ranks dumped"
	grep -q "slowest node: .*slowest link: node" "$tmp/out" && ok "slowest_node_and_link_named" ||
		bad "slowest_node_and_link_named" "no 'slowest node ... slowest link' line"
fi
if cluster "corrupt_byte_wrong_data" 1 60 2 --ranks-per-node 2 -e 16 $small --fault corrupt:3; then
	grep -q "rank 3: recv_x\[" "$tmp/out" && ok "corrupt_byte_named" || bad "corrupt_byte_named" "no mismatch naming rank 3 recv_x"
fi

# Two node processes on loopback, started by hand as on two hosts.
# pair NAME ARGS0 -- ARGS1: runs node 0 and node 1 in the background.
tiny="--nodes 2 --ranks-per-node 1 -t 32 --hidden 128 -e 4 -k 2 -n 1 -w 0 --timeout 10"

next_port
start_node $tiny --hidden 256 --node-rank 0 --master 127.0.0.1:$port >"$tmp/n0" 2>&1; p0=$last
start_node $tiny --hidden 512 --node-rank 1 --master 127.0.0.1:$port >"$tmp/n1" 2>&1; p1=$last
timeout 20 sh -c "while kill -0 $p0 2>/dev/null || kill -0 $p1 2>/dev/null; do sleep 0.1; done"
wait $p0; c0=$?; wait $p1; c1=$?
cat "$tmp/n0" "$tmp/n1" >"$tmp/out"
if [ "$c0" -eq 2 ] && [ "$c1" -eq 2 ] && grep -q -- "--hidden differs: node 0 has 256, node 1 has 512" "$tmp/n0" &&
	grep -q -- "--hidden differs" "$tmp/n1"; then ok "mismatched_config_refused_on_both"
else bad "mismatched_config_refused_on_both" "exits $c0/$c1, want 2/2 and a line naming --hidden"; fi

next_port
start=$(date +%s)
timeout 30 "$EPBENCH" internode $tiny --node-rank 1 --master 127.0.0.1:$port --timeout 3 >"$tmp/out" 2>&1
c=$?
took=$(( $(date +%s) - start ))
if [ "$c" -eq 4 ] && grep -q "cannot reach the master (node 0) at 127.0.0.1:$port" "$tmp/out" && [ "$took" -le 8 ]; then
	ok "unreachable_master_exit_4_names_address"
else bad "unreachable_master_exit_4_names_address" "exit $c after ${took}s"; fi

# A node killed mid-run ends the job on the other within the timeout; a
# stalled one (SIGSTOP) likewise, named with the rank it stalls.
long="--nodes 2 --ranks-per-node 2 -t 128 --hidden 512 -e 16 -k 4 -n 1000000 -w 1 --check 0 --timeout 5"
node_fault killed_node_ends_job_within_timeout KILL 3 6 "node 1" $long
# (on a loaded host the stop may land before the ranks connected: then node 1's ranks are named as unanswered)
node_fault stalled_node_named_within_timeout STOP 3 12 "rank [23] \(node 1\)|node 1 did not answer \(ranks 2, 3\)" $long

# A rank that dies on one node: every node ends, naming it.
if cluster "dead_rank_ends_job" 4 40 2 --ranks-per-node 2 -e 16 -t 64 --hidden 256 -k 4 -n 50 -w 1 --timeout 5 --fault die:2; then
	grep -q "rank 2" "$tmp/out" && ok "dead_rank_named" || bad "dead_rank_named" "no line naming rank 2"
fi

# Launch conventions: the same two-node job under each launcher's variables.
convention() { # NAME GREP ENV0 -- ENV1
	name=$1 pattern=$2 e0=$3 e1=$4
	next_port
	env $(echo "$e0" | sed "s/PORT/$port/g") "$EPBENCH" internode --ranks-per-node 1 -t 32 --hidden 128 -e 4 -k 2 -n 1 -w 0 --timeout 10 >"$tmp/c0" 2>&1 &
	q0=$!
	env $(echo "$e1" | sed "s/PORT/$port/g") "$EPBENCH" internode --ranks-per-node 1 -t 32 --hidden 128 -e 4 -k 2 -n 1 -w 0 --timeout 10 >"$tmp/c1" 2>&1
	c1=$?
	wait $q0; c0=$?
	cat "$tmp/c0" "$tmp/c1" >"$tmp/out"
	if [ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] && grep -q "$pattern" "$tmp/c0" && grep -q "$pattern" "$tmp/c1"; then ok "convention_$name"
	else bad "convention_$name" "exits $c0/$c1, or no banner naming '$pattern'"; fi
}
convention master_env "from NNODES, NODE_RANK" \
	"NNODES=2 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=PORT" "NNODES=2 NODE_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=PORT"
convention mpirun "OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK" \
	"OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=PORT" \
	"OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=PORT"
convention srun "SLURM_NNODES, SLURM_NODEID.*first host of SLURM_JOB_NODELIST" \
	"SLURM_NNODES=2 SLURM_NODEID=0 SLURM_JOB_NODELIST=localhost MASTER_PORT=PORT" \
	"SLURM_NNODES=2 SLURM_NODEID=1 SLURM_JOB_NODELIST=localhost MASTER_PORT=PORT"
convention torchrun "torchrun" \
	"TORCHELASTIC_RUN_ID=t WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=PORT" \
	"TORCHELASTIC_RUN_ID=t WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 GROUP_RANK=1 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=PORT"

# verbs: forced without a device is an environment error, said plainly.
timeout 20 "$EPBENCH" internode --local-nodes --nodes 2 --ranks-per-node 1 -t 16 --hidden 128 -e 4 -k 2 -n 1 -w 0 --transport verbs >"$tmp/out" 2>&1
c=$?
if grep -q "no RDMA device" "$tmp/out"; then
	[ "$c" -eq 3 ] && ok "verbs_forced_without_device_exit_3" || bad "verbs_forced_without_device_exit_3" "exit $c"
else
	skipped "verbs_forced_without_device_exit_3" "this host has an RDMA device (exit $c); the verbs path itself is not exercised here"
fi
skipped "verbs_transfer" "needs an RDMA device; tests/soft_roce_test.sh runs it between two Soft-RoCE guests"

finish internode_test.sh
