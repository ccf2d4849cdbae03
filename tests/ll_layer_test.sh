#!/bin/sh
# ll_layer_test.sh - low-latency mode's MoE layer with moe_tp > 1 on one host (cli/ll_layer.c; across nodes: ll_layer_nodes_test.sh;
# parallel-semantics.md section 3 with DeepEP semantics): DeepEP's low-latency dispatch and
# combine inside each strided MoE-EP group, the MoE-TP gather of the members' receive layouts,
# the reduce in rotation order and the attention-TP gather run and are checked bit for bit on 4
# and 8 ranks (bf16, fp8, UE8M0, uneven slices, soak, rotating routing, redundant experts); a
# damaged output of each phase is caught at its rank (exit 1), a hang is named (exit 4), and what
# is not built is refused with one line (exit 2). The gather from the wrong member and the reduce
# out of rotation order are mutants in tests/mutants_test.sh. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=low-latency
. "$(dirname "$0")/lib.sh"
small="--hidden 256 -e 8 -k 4 -n 2 -w 1"

# layer NAME RANKS SPEC ARGS...: a run that must pass
layer() {
	name=$1 ranks=$2 spec=$3; shift 3
	run "$name" 0 180 low-latency -r "$ranks" --parallel "$spec" "$@"
	expect "${name}_pass" "verdict: PASS"
}
# phases NAME REGEX...: the table's op rows, in order, are exactly these
phases() {
	name=$1; shift
	got=$(awk '$1 ~ /^[0-9]+$/ && NF > 10 {print $4}' "$tmp/out" | tr '\n' ' ')
	[ "$got" = "$* " ] && ok "$name" || bad "$name" "phases '$got', want '$* '"
}
all="ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather"

layer "bf16_4" 4 dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small
phases "bf16_4_phases" $all
expect "bf16_4_checked" "^# check: .* 0 wrong elements"
layer "fp8_4" 4 dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --dtype fp8
layer "fp8_8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 512 -e 16 -k 4 -n 2 -w 1 --dtype fp8
phases "fp8_8_phases" $all
layer "bf16_8_uneven" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 10 --hidden 256 -e 16 -k 4 -n 2 -w 1 --uneven-tokens 1 --sp-pad replicate0 --tokens-per-dp 37
layer "fp8_ue8m0_4_uneven" 4 dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 --hidden 512 -e 8 -k 4 -n 2 -w 1 --dtype fp8 --round-scale --ue8m0 --uneven-tokens 1
layer "moe_tp_4_ep_1" 4 dp=1,tp=4,moe_tp=4,moe_ep=1 -t 16 $small --uneven-tokens 1
layer "moe_tp_4_8_fp8" 8 dp=1,tp=8,moe_tp=4,moe_ep=2 -t 8 $small -k 3 --dtype fp8 --uneven-tokens 1
layer "no_attn_tp_4" 4 dp=4,tp=1,moe_tp=2,moe_ep=2 -t 16 $small
phases "no_attn_tp_4_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine
layer "max_dispatch_tokens_8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --num-max-dispatch-tokens-per-rank 32
layer "redundant_experts_8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --redundant-experts 4 --eplb-load zipf:1.2
layer "rotating_4" 4 dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small --routing rotating:1 -n 4
# --zero-copy: the MoE-TP reduce writes straight into the combine buffer; --hook: EP dispatch and combine's send
# and receive phases timed alone (DeepEP's return_recv_hook)
layer "zero_copy_4" 4 dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --zero-copy
phases "zero_copy_4_phases" $all
layer "hook_4" 4 dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small --hook
phases "hook_4_phases" ep_dispatch moe_tp_gather moe_tp_reduce ep_combine ep_dispatch-send ep_dispatch-recv ep_combine-send ep_combine-recv attn_tp_gather
layer "hook_zero_copy_8_fp8" 8 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 512 -e 16 -k 4 -n 2 -w 1 --dtype fp8 --hook --zero-copy
layer "hook_zero_copy_4_combine_only" 4 dp=1,tp=4,moe_tp=4,moe_ep=1 -t 16 $small --hook --zero-copy --uneven-tokens 1 --op combine
run "soak_4" 0 120 low-latency -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small --soak 4
expect "soak_4_passes" "^# soak: 4 passes .*: 0 failed"

# a damaged output of each phase is caught, named at its rank and tensor
run "dispatch_corrupt" 1 60 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --fault corrupt:2
expect "dispatch_corrupt_named" "first: rank 2: packed_recv_x"
run "gathered_block_damaged" 1 60 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --fault bitflip:1:moe_tp_gathered_x
expect "gathered_block_damaged_named" "first: rank 1: moe_tp_gathered_x"
run "reduced_damaged" 1 60 low-latency -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --dtype fp8 --fault bitflip:5:moe_tp_reduced_x
expect "reduced_damaged_named" "first: rank 5: moe_tp_reduced_x"
run "zero_copy_reduced_damaged" 1 60 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --zero-copy --fault bitflip:2:moe_tp_reduced_x
expect "zero_copy_reduced_damaged_named" "first: rank 2: moe_tp_reduced_x"
run "hook_combined_damaged" 1 60 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --hook --zero-copy --op combine --fault bitflip:1:combined_x
expect "hook_combined_damaged_named" "first: rank 1: combined_x"
run "combined_damaged" 1 60 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --fault bitflip:3:combined_x
expect "combined_damaged_named" "first: rank 3: combined_x"
run "replica_moved" 1 60 low-latency -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --redundant-experts 4 --eplb-load zipf:1.2 --fault replica:3
expect "replica_moved_said" "WRONG DATA"
run "soak_fault_found" 1 120 low-latency -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small --soak 4 --fault corrupt:2@2
expect "soak_fault_found_pass" "^# soak: first failure in pass 2 \\(seed 2\\): rank 2: packed_recv_x"

# a hang is named in world ranks (rank 2's EP group is {0, 2})
run "hang_named" 4 60 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --fault hang:2 --timeout 2
expect "hang_named_rank" "waiting for rank 2 \\(rank 2 is in phase fault.hang\\)"
expect "hang_traffic_in_world_ranks" "by traffic: rank 2 never arrived anywhere: its rows to rank 0 are missing"

# refused with one line, exit 2, nothing spawned
refused() {
	name=$1 said=$2; shift 2
	run "$name" 2 10 low-latency -r 4 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small "$@"
	expect "${name}_said" "$said"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "${name}_one_line" || bad "${name}_one_line" "$(cat "$tmp/out")"
}
# one rank per node: MoE-TP and attention-TP groups both of whole nodes
refused "moe_tp_and_attn_whole_nodes" "MoE-TP groups of whole nodes and an attention-TP group of whole nodes .* is not built" \
	--local-nodes --nodes 4 --ranks-per-node 1
refused "allgather" "in low-latency mode the layer runs all-to-all" --moe-comm allgather
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish ll_layer_test.sh
