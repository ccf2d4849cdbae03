#!/bin/sh
# ascend_nodes_test.sh - `internode --ep-semantics ascend` (parallel-semantics.md sections 4-5) across emulated
# nodes over TCP: 2x2, 2x4 and 3x2 in bf16 and int8, with smoothing scales, shared experts, prefix counts, int8
# combine transport and shared_expert_x, and a parallel configuration's layer (moe_tp = 1), each checked byte for
# byte with the handles line; the same bytes as one host; faults (a corrupt row named at its rank, a damaged
# handle, a hang named with its phase and peer, exit 4, no orphans, nothing left in /dev/shm, a cut link);
# Ascend's MoE-TP stage across nodes (MoE-TP groups in a node, the strided MoE-EP groups over the network) at
# 2x2 and 2x4 in bf16 and int8, with int8 combine transport and with shared experts (the same bytes as one
# host), the same bytes as one host, a hang and a corrupt gathered block named; a layer
# (moe_tp = 1) whose attention-TP group holds whole nodes: checked, its node lines, the same bytes as one host,
# a corrupt gathered row named, a hang in attn_tp_gather named with its phase and peer; MoE-TP groups of whole
# nodes (the MoE-TP gather and reduce over the network): checked, node lines, the same bytes as one host, a hang
# in moe_tp_gather named with its phase and peer; with an attention-TP group of whole nodes too (moe_tp > 1):
# the same bytes as one host, a hang in attn_tp_gather named;
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
# an attention-TP group of whole nodes (tp = 4 over 2 nodes x 2): the gather over the collective's full mesh,
# its node lines with the bytes put to the other node (wire) and those within the node (nvl)
if cluster "2x2_layer_attn_tp_whole_nodes" 0 60 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=1,moe_ep=4 -e 8 \
	-k 2 $small --uneven-tokens 1; then
	expect "attn_tp_whole_nodes_pass" "^# verdict: PASS"
	expect "attn_tp_whole_nodes_link" "^#   link 1->0 attn_tp_gather +[0-9.]+[KM]? in"
	expect "attn_tp_whole_nodes_node_line" "^# +0 [a-z0-9.-]+ +2 attn_tp_gather +[0-9.]+ +[0-9.]+[KM] +[0-9.]+[KM] +[0-9.]+[KM] "
	expect "attn_tp_whole_nodes_layer_bytes" "^# layer bytes: attn_tp_gather .*wire +[0-9.]+[KM]? intra +[0-9.]+[KM] inter"
fi
# the same world on one host (two attention-DP groups of 2 nodes each, 4 x 2 ranks): every tensor,
# attn_tp_gathered_x among them, byte for byte the same
atw="-t 16 --hidden 128 -e 16 -k 3 -n 1 -w 0 --seed 7 --ep-semantics ascend --parallel dp=2,tp=4,moe_tp=1,moe_ep=8 --uneven-tokens 1 --dtype int8"
if cluster "4x2_attn_tp_whole_nodes_dump" 0 60 4 --ranks-per-node 2 $atw --timeout 20 --dump "$tmp/a2"; then
	timeout -k 2 60 "$EPBENCH" intranode -r 8 $atw --num-groups 4 --num-topk-groups 4 --dump "$tmp/a1" >"$tmp/out" 2>&1
	if [ "$?" -eq 0 ] && [ -f "$tmp/a1/rank7/attn_tp_gathered_x.npy" ] && diff -r "$tmp/a1" "$tmp/a2" >"$tmp/out" 2>&1
	then ok "attn_tp_whole_nodes_same_bytes_as_one_host"
	else bad "attn_tp_whole_nodes_same_bytes_as_one_host" "dumps of 4 nodes x 2 ranks and of -r 8 differ"; fi
fi

# Ascend's MoE-TP stage across nodes: every phase checked byte for byte, the MoE-TP and attention phases in a node
tp_phases() {
	got=$(awk '$1 ~ /^[0-9]+$/ && NF > 10 {print $4}' "$tmp/out" | tr '\n' ' ')
	[ "$got" = "ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather " ] && ok "$1" || bad "$1" "phases '$got'"
}
if cluster "2x2_moe_tp_bf16" 0 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 4 -k 2 $small; then
	expect "2x2_moe_tp_pass" "^# verdict: PASS"
	expect "2x2_moe_tp_handles_line" "^# handles: .*tp_recv_counts\) in the check above, 0 wrong elements; data tensors: 0 wrong$"
	expect "2x2_moe_tp_dispatch_crosses" "^#   link 1->0 ep_dispatch +[0-9.]+[KM]? in"
	tp_phases "2x2_moe_tp_phases"
fi
cluster "2x2_moe_tp_int8_smooth_prefix_shared_x" 0 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 \
	-e 4 -k 2 $small --dtype int8 --smooth-scales --expert-counts prefix --bias 1 --uneven-tokens 1
if cluster "2x4_moe_tp_int8" 0 90 2 --ranks-per-node 4 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -e 8 -k 2 -t 16 \
	--hidden 256 -n 2 -w 1 --timeout 20 --ep-semantics ascend --dtype int8; then
	expect "2x4_moe_tp_int8_pass" "^# verdict: PASS"
fi
cluster "2x4_moe_tp4_bf16_zipf" 0 90 2 --ranks-per-node 4 --parallel dp=4,tp=2,moe_tp=4,moe_ep=2 -e 8 -k 3 $small \
	--routing zipf:1.2 --masked-ratio 0.2
cluster "2x4_moe_tp_bf16_tp2" 0 90 2 --ranks-per-node 4 --parallel dp=4,tp=2,moe_tp=2,moe_ep=4 -e 8 -k 2 $small \
	--sp-pad zero --tokens-per-dp 29 --uneven-tokens 1
# with int8 combine transport (of the reduced rows) and with shared experts (EP ranks [0, S_r) of each MoE-EP
# group); the shared case's dump equals one host's
cluster "2x2_moe_tp_int8_comm_quant" 0 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 4 -k 2 \
	$small --dtype int8 --smooth-scales --comm-quant int8
tps="-t 16 --hidden 128 -e 4 -k 2 -n 1 -w 0 --seed 5 --ep-semantics ascend --parallel dp=2,tp=4,moe_tp=2,moe_ep=4"
tps="$tps --shared-experts 1 --shared-expert-ranks 2 --comm-quant int8 --bias 1 --uneven-tokens 1"
if cluster "2x4_moe_tp_shared_comm_quant_dump" 0 90 2 --ranks-per-node 4 $tps --timeout 20 --dump "$tmp/s2"; then
	timeout -k 2 90 "$EPBENCH" intranode -r 8 $tps --num-groups 2 --num-topk-groups 2 --dump "$tmp/s1" >"$tmp/out" 2>&1
	if [ "$?" -eq 0 ] && [ -f "$tmp/s1/rank7/moe_tp_reduced_x.npy" ] && diff -r "$tmp/s1" "$tmp/s2" >"$tmp/out" 2>&1
	then ok "moe_tp_shared_same_bytes_as_one_host"
	else bad "moe_tp_shared_same_bytes_as_one_host" "dumps of 2 nodes x 4 ranks and of -r 8 differ"; fi
fi
# the same world on one host: every tensor of every phase byte for byte the same
tpw="-t 24 --hidden 256 -e 8 -k 3 -n 1 -w 0 --seed 5 --ep-semantics ascend --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 --uneven-tokens 1"
for dt in bf16 int8; do
	if cluster "2x4_moe_tp_${dt}_dump" 0 90 2 --ranks-per-node 4 $tpw --dtype $dt --timeout 20 --dump "$tmp/t2_$dt"; then
		timeout -k 2 90 "$EPBENCH" intranode -r 8 $tpw --dtype $dt --num-groups 2 --num-topk-groups 2 \
			--dump "$tmp/t1_$dt" >"$tmp/out" 2>&1
		if [ "$?" -eq 0 ] && [ -f "$tmp/t1_$dt/rank7/moe_tp_reduced_x.npy" ] && diff -r "$tmp/t1_$dt" "$tmp/t2_$dt" >"$tmp/out" 2>&1
		then ok "moe_tp_${dt}_same_bytes_as_one_host"
		else bad "moe_tp_${dt}_same_bytes_as_one_host" "dumps of 2 nodes x 4 ranks and of -r 8 differ"; fi
	fi
done

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
# a layer's golden across nodes: the manifest records the nodes, verify internode reads it
run "golden_internode_layer" 0 60 golden internode --nodes 2 --ranks-per-node 2 $one \
	--parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --out "$tmp/g2"
run "verify_internode_layer" 0 60 verify internode "$tmp/g2" --ep-semantics ascend

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
if cluster "attn_tp_whole_nodes_corrupt_gathered" 1 60 2 $f -n 1 -w 0 --parallel dp=1,tp=4,moe_tp=1,moe_ep=4 \
	--fault bitflip:2:attn_tp_gathered_x; then
	expect "attn_tp_whole_nodes_corrupt_named" "first: rank 2: attn_tp_gathered_x\[[0-9]+\]\[[0-9]+\]"
fi
if cluster "attn_tp_whole_nodes_hang_exit_4" 4 60 2 $f -n 4 -w 0 --parallel dp=1,tp=4,moe_tp=1,moe_ep=4 \
	--fault hang:1:attn_tp_gather; then
	expect "attn_tp_whole_nodes_hang_named_phase_and_peer" \
		"rank [23] \(node 1\) in phase attn_tp_gather: tcp: no signal from rank [01] \(node 0\)"
	expect "attn_tp_whole_nodes_hang_named_rank" "rank 1 made no progress .* in phase fault\.hang"
fi
tpf="--ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -e 4 -k 2 -t 32 --hidden 256 --ep-semantics ascend --timeout 4"
if cluster "moe_tp_corrupt_gathered_block" 1 60 2 $tpf -n 1 -w 0 --fault bitflip:1:moe_tp_gathered_x; then
	expect "moe_tp_corrupt_gathered_block_named" "first: rank 1: expand_x\[[0-9]+\]\[[0-9]+\]: .*\(row from rank [0-9]+ token [0-9]+\)"
fi
if cluster "moe_tp_hang_exit_4" 4 60 2 $tpf -n 4 -w 0 --fault hang:1; then
	# rank 1 is member 1 of MoE-TP group 0, EP rank 0 of MoE-EP group 1 = {1, 3}: rank 3 waits for it
	expect "moe_tp_hang_named_phase_and_peer" "rank 3 \(node 1\) in phase [a-z_.]+: tcp: no signal from rank 1 \(node 0\)"
	expect "moe_tp_hang_named_rank" "rank 1 made no progress .* in phase fault\.hang"
fi
# MoE-TP groups of whole nodes (cli/ascend_tpnet.h): the gather and the reduce cross nodes, checked, node lines;
# the same bytes as one host (4 nodes x 2: MoE-EP groups over the network too); a hang named with phase and peer
tpn="-t 16 --hidden 128 -e 8 -k 3 -n 1 -w 0 --seed 5 --ep-semantics ascend --uneven-tokens 1 --timeout 20"
if cluster "2x2_moe_tp_whole_nodes" 0 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=4,moe_ep=1 $tpn; then
	expect "2x2_moe_tp_whole_nodes_pass" "^# verdict: PASS"
	tp_phases "2x2_moe_tp_whole_nodes_phases"
	expect "2x2_moe_tp_whole_nodes_gather_crosses" "^#   link 1->0 moe_tp_gather +[0-9.]+[KM]? in"
	expect "2x2_moe_tp_whole_nodes_reduce_crosses" "^#   link 0->1 moe_tp_reduce +[0-9.]+[KM]? in"
fi
# 4 x 2 with the attention-TP group of whole nodes too (tp = moe_tp = 4): both gathers and the reduce cross nodes
tpn4="$tpn --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 --dtype int8"
if cluster "4x2_moe_tp_attn_tp_whole_nodes_int8_dump" 0 90 4 --ranks-per-node 2 $tpn4 --dump "$tmp/w2"; then
	expect "4x2_attn_tp_whole_nodes_gather_crosses" "^#   link 1->0 attn_tp_gather +[0-9.]+[KM]? in"
	timeout -k 2 90 "$EPBENCH" intranode -r 8 $tpn4 --num-groups 2 --num-topk-groups 2 --dump "$tmp/w1" >"$tmp/out" 2>&1
	if [ "$?" -eq 0 ] && [ -f "$tmp/w1/rank7/moe_tp_reduced_x.npy" ] && diff -r "$tmp/w1" "$tmp/w2" >"$tmp/out" 2>&1
	then ok "moe_tp_whole_nodes_same_bytes_as_one_host"
	else bad "moe_tp_whole_nodes_same_bytes_as_one_host" "dumps of 4 nodes x 2 ranks and of -r 8 differ"; fi
fi
# MoE-TP groups of whole nodes holding a shared-expert rank (EP rank 0 of each MoE-EP group), int8 combine transport
cluster "4x2_moe_tp_whole_nodes_shared_comm_quant" 0 90 4 --ranks-per-node 2 $tpn --parallel dp=2,tp=4,moe_tp=4,moe_ep=2 \
	-e 4 --shared-experts 1 --shared-expert-ranks 1 --comm-quant int8
if cluster "moe_tp_whole_nodes_hang_exit_4" 4 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=4,moe_ep=1 \
	-e 8 -k 2 -t 16 --hidden 128 -n 4 -w 0 --ep-semantics ascend --timeout 4 --fault hang:3:moe_tp_gather; then
	# rank 3 is member 3 of MoE-TP group 0 = [0..3] (nodes 0 and 1): ranks 0 and 1 wait for it over the network
	expect "moe_tp_whole_nodes_hang_named_phase_and_peer" \
		"rank [01] \(node 0\) in phase moe_tp_gather[a-z.]*: tcp: no signal from rank [23] \(node 1\)"
	expect "moe_tp_whole_nodes_hang_named_rank" "rank 3 made no progress .* in phase fault\.hang"
fi
if cluster "moe_tp_attn_tp_whole_nodes_hang_exit_4" 4 60 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 \
	-e 8 -k 2 -t 16 --hidden 128 -n 4 -w 0 --ep-semantics ascend --timeout 4 --fault hang:1:attn_tp_gather; then
	expect "moe_tp_attn_tp_whole_nodes_hang_named_phase_and_peer" \
		"rank [23] \(node 1\) in phase attn_tp_gather: tcp: no signal from rank [01] \(node 0\)"
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
refused "layer_tp_straddles_nodes" "tp must divide the ranks of a node or be a multiple of them" --nodes 2 \
	--ranks-per-node 3 -e 12 -k 2 $small --parallel dp=3,tp=2,moe_tp=1,moe_ep=6
refused "layer_moe_tp_shared_ranks_fill_moe_ep" "--shared-expert-ranks 2 leaves no MoE rank of moe_ep 2" --nodes 2 \
	--ranks-per-node 2 -e 8 -k 2 $small --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --shared-experts 1 --shared-expert-ranks 2
refused "soak_across_nodes" "soak" --nodes 2 --ranks-per-node 2 -e 8 -k 2 $small --soak 3
refused "experts_not_multiple" "--num-experts 8 is not a multiple of the 3 MoE ranks" --nodes 2 --ranks-per-node 2 \
	-e 8 -k 2 $small --shared-experts 1 --shared-expert-ranks 1
[ -z "$(live_ranks)" ] && ok "no_rank_left" || bad "no_rank_left" "$(live_ranks)"
finish ascend_nodes_test.sh
