#!/bin/sh
# ascend_nodes_test.sh - `internode --ep-semantics ascend` (parallel-semantics.md sections 4-5) across emulated
# nodes over TCP: 2x2, 2x4 and 3x2 in bf16 and int8, with smoothing scales, shared experts, prefix counts, int8
# combine transport and shared_expert_x, and a parallel configuration's layer (moe_tp = 1), each checked byte for
# byte with the handles line; the same bytes as one host; faults (a corrupt row named at its rank, a damaged
# handle, a hang named with its phase and peer, exit 4, no orphans, nothing left in /dev/shm, a cut link);
# refusals that remain (exit 2, one line). Nodes run in network namespaces where the machine allows it, else on
# loopback (case names say which). Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=internode
. "$(dirname "$0")/lib.sh"
cluster_init
shm_before=$(ls /dev/shm | wc -l)
small="-t 48 --hidden 256 -n 2 -w 1 --timeout 20 --ep-semantics ascend"

# runs: every tensor checked, PASS, the handles verdict line as on one host
if cluster "2x2_bf16" 0 60 2 --ranks-per-node 2 -e 8 -k 2 $small; then
	expect "2x2_pass" "^# verdict: PASS"
	expect "2x2_handles_line" "^# handles: .* 0 wrong elements; data tensors: 0 wrong$"
	expect "2x2_link_rows" "^#   link 1->0 combine +[0-9.]+[KM]? in"
fi
cluster "2x4_int8" 0 90 2 --ranks-per-node 4 -e 16 -k 4 $small --dtype int8 --payload narrow
cluster "2x4_int8_smooth_shared_comm_quant" 0 90 2 --ranks-per-node 4 -e 12 -k 4 $small --dtype int8 \
	--smooth-scales --shared-experts 1 --shared-expert-ranks 2 --comm-quant int8 --bias 1 --expert-counts prefix
cluster "3x2_bf16_shared_masked_uneven" 0 90 3 --ranks-per-node 2 -e 12 -k 3 $small --shared-experts 2 \
	--shared-expert-ranks 2 --masked-ratio 0.2 --uneven-tokens 1
cluster "3x2_int8_comm_quant_zipf" 0 90 3 --ranks-per-node 2 -e 18 -k 4 $small --dtype int8 --comm-quant int8 \
	--routing zipf:1.2
cluster "2x2_rotating_routing" 0 60 2 --ranks-per-node 2 -e 8 -k 2 $small --routing rotating:1 -n 3
if cluster "2x4_layer_int8" 0 90 2 --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 -e 16 -k 4 $small \
	--dtype int8; then
	expect "2x4_layer_attn_gather_row" " attn_tp_gather "
	expect "2x4_layer_handles_line" "^# handles: .* 0 wrong elements; data tensors: 0 wrong$"
fi
cluster "2x2_layer_bf16_comm_quant" 0 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 -e 8 -k 2 \
	$small --comm-quant int8 --sp-pad zero

# The same job on one host (the same group-limited routing): every tensor byte for byte the same.
one="-t 32 --hidden 256 -e 12 -k 3 -n 1 -w 0 --seed 5 --ep-semantics ascend --dtype int8 --shared-experts 1 --shared-expert-ranks 1 --comm-quant int8"
if cluster "2x2_dump" 0 60 2 --ranks-per-node 2 $one --timeout 20 --dump "$tmp/d2"; then
	timeout -k 2 60 "$EPBENCH" intranode -r 4 $one --num-groups 2 --num-topk-groups 2 --dump "$tmp/d1" >"$tmp/out" 2>&1
	if [ "$?" -eq 0 ] && [ -f "$tmp/d1/rank3/expand_x.npy" ] && diff -r "$tmp/d1" "$tmp/d2" >"$tmp/out" 2>&1; then
		ok "same_bytes_as_one_host"
	else bad "same_bytes_as_one_host" "dumps of 2 nodes x 2 ranks and of -r 4 differ"; fi
fi

# golden and verify name the job's subcommand; the tensors are the ones a run across nodes checks
run "golden_internode" 0 60 golden internode --nodes 2 --ranks-per-node 2 $one --bias 1 --out "$tmp/g"
run "verify_internode" 0 60 verify internode "$tmp/g" --ep-semantics ascend
expect "verify_internode_handles_line" "^# handles: .* 0 wrong elements; data tensors: 0 wrong$"

# faults: wrong data named at its rank; a damaged handle on its own line; a hang named with phase and peer
f="--ranks-per-node 2 -e 8 -k 2 -t 32 --hidden 256 --ep-semantics ascend --timeout 4"
if cluster "corrupt_row_wrong_data" 1 60 2 $f -n 1 -w 0 --dtype int8 --fault corrupt:3; then
	expect "corrupt_row_named" "first: rank 3: expand_x\[[0-9]+\]\[[0-9]+\]: .*\(row from rank [0-9]+ token [0-9]+\)"
fi
if cluster "assist_damaged_handles" 1 60 2 $f -n 1 -w 0 --fault bitflip:2:assist_info_for_combine; then
	expect "assist_damaged_handles_line" "^# handles: .* 1 wrong element;"
fi
if cluster "hang_exit_4" 4 60 2 $f -n 4 -w 0 --fault hang:1; then
	expect "hang_named_phase_and_peer" "rank [0-9] \(node 1\) in phase dispatch\.[a-z]+: tcp: no signal from rank 1 \(node 0\)"
	expect "hang_named_rank" "rank 1 made no progress .* in phase fault\.hang"
fi
if cluster "link_down_exit_4" 4 60 2 $f -n 4 -w 0 --fault link-down:0-1@1; then
	expect "link_down_named" "rank [0-9] \(node [01]\) in phase [a-z.]+: tcp: "
fi
sleep 1
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
[ "$(ls /dev/shm | wc -l)" -eq "$shm_before" ] && ok "nothing_left_in_dev_shm" || bad "nothing_left_in_dev_shm" "$(ls /dev/shm)"

# refusals that remain: one line, exit 2, before any rank exists
refused() {
	name=$1 pattern=$2; shift 2
	run "$name" 2 10 internode --local-nodes "$@"
	expect "${name}_said" "$pattern"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "${name}_one_line" || bad "${name}_one_line" "$(wc -l <"$tmp/out") lines"
}
refused "layer_tp_across_nodes" "tp must divide the ranks of a node" --nodes 2 --ranks-per-node 2 -e 8 -k 2 $small \
	--parallel dp=1,tp=4,moe_tp=1,moe_ep=4
refused "layer_moe_tp" "Ascend's MoE-TP stage \(moe_tp > 1\) runs on one host" --nodes 2 --ranks-per-node 2 -e 8 -k 2 $small \
	--parallel dp=2,tp=2,moe_tp=2,moe_ep=2
refused "soak_across_nodes" "soak" --nodes 2 --ranks-per-node 2 -e 8 -k 2 $small --soak 3
refused "experts_not_multiple" "--num-experts 8 is not a multiple of the 3 MoE ranks" --nodes 2 --ranks-per-node 2 \
	-e 8 -k 2 $small --shared-experts 1 --shared-expert-ranks 1
[ -z "$(live_ranks)" ] && ok "no_rank_left" || bad "no_rank_left" "$(live_ranks)"
finish ascend_nodes_test.sh
