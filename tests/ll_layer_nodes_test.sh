#!/bin/sh
# ll_layer_nodes_test.sh - low-latency mode's MoE layer with moe_tp > 1 across emulated nodes
# (cli/ll_layer.c): the MoE-TP groups inside a node over shared memory, each strided MoE-EP
# group's low-latency dispatch and combine over TCP; an attention-TP group of whole nodes
# (tp a multiple of the ranks of a node) gathered over the rail peers; MoE-TP groups of whole nodes
# (moe_tp a multiple of the ranks of a node) gathered and reduced over the network
# (cli/ll_tpnet.c). 2x2, 2x4 and 4x2 runs
# (bf16, fp8, UE8M0; --zero-copy, --hook) pass every phase bit for bit, with the same checked bytes, rows and bytes
# per phase as the same layer on one host; a gathered block damaged on a rank of node 1 is
# named (exit 1); a hung rank is named with its phase and the rank waiting for it (exit 4),
# inside the attention gather and the MoE-TP gather across nodes too; what is not built is refused
# with one line (exit 2). MoE-EP group peers swapped across nodes, an attention block put into the
# wrong member's place and a MoE-TP block read from the wrong member are mutants in
# tests/mutants_test.sh. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=low-latency
. "$(dirname "$0")/lib.sh"
cluster_init
small="--hidden 256 -e 8 -k 4 -n 2 -w 1 --timeout 20"
all="ep_dispatch moe_tp_gather moe_tp_reduce ep_combine attn_tp_gather"

# phases NAME REGEX...: the table's op rows, in order, are exactly these
phases() {
	name=$1; shift
	got=$(awk '$1 ~ /^[0-9]+$/ && NF > 10 {print $4}' "$tmp/out" | tr '\n' ' ')
	[ "$got" = "$* " ] && ok "$name" || bad "$name" "phases '$got', want '$* '"
}
# what a run checked, and each phase's rows and bytes per rank: equal on one host and across nodes
same_as() { grep -E '^# check:' "$1"; awk '$1 ~ /^[0-9]+$/ && NF > 10 {print $4, $5, $6}' "$1"; }

# nodes NAME NODES PER SPEC ARGS...: the layer on NODES x PER ranks must pass, and check
# what the same layer checks on one host, with the same rows and bytes per phase
nodes() {
	nm=$1 n=$2 per=$3 spec=$4; shift 4
	cluster "$nm" 0 90 "$n" --ranks-per-node "$per" --parallel "$spec" "$@" || return 1
	expect "${nm}_pass" "verdict: PASS"
	expect "${nm}_checked" "^# check: .* 0 wrong elements"
	phases "${nm}_phases" $all
	cp "$tmp/out" "$tmp/nodes"
	timeout -k 2 90 "$EPBENCH" low-latency -r $((n * per)) --parallel "$spec" "$@" >"$tmp/out" 2>&1
	if [ -n "$(same_as "$tmp/nodes")" ] && [ "$(same_as "$tmp/out")" = "$(same_as "$tmp/nodes")" ]; then
		ok "${nm}_as_one_host"
	else
		bad "${nm}_as_one_host" "$(same_as "$tmp/nodes" | tr '\n' ';') vs one host"
	fi
	cp "$tmp/nodes" "$tmp/out"
}

if nodes "bf16_2x2" 2 2 dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small; then
	expect "bf16_2x2_dispatch_link" "^#   link 0->1 ep_dispatch +[0-9.]+[KM]? in"
	expect "bf16_2x2_combine_link" "^#   link 1->0 ep_combine +[0-9.]+[KM]? in"
	expect "bf16_2x2_gather_in_node" "^#   link 0->1 moe_tp_gather +0 in"
fi
nodes "fp8_2x4" 2 4 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --timeout 20 --dtype fp8
nodes "zero_copy_2x2" 2 2 dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small --zero-copy
cluster "hook_zero_copy_2x2" 0 90 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small --hook --zero-copy
expect "hook_zero_copy_2x2_pass" "verdict: PASS"
nodes "fp8_ue8m0_2x4_moe_tp_4_uneven" 2 4 dp=4,tp=2,moe_tp=4,moe_ep=2 -t 8 --hidden 512 -e 8 -k 3 -n 2 -w 1 \
	--timeout 20 --dtype fp8 --round-scale --ue8m0 --uneven-tokens 1
# an attention-TP group of whole nodes (tp a multiple of P): its rows cross the network
if nodes "bf16_2x2_attn_whole_nodes" 2 2 dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 $small; then
	expect "bf16_2x2_attn_whole_nodes_link" "^#   link 0->1 attn_tp_gather +[0-9.]+[KM]? in"
	expect "bf16_2x2_attn_whole_nodes_arrival" "^#   link 1->0 attn_tp_gather +[0-9.]+[KM]? in +[0-9.]+ us"
fi
nodes "fp8_4x2_two_attn_groups_of_whole_nodes" 4 2 dp=2,tp=4,moe_tp=2,moe_ep=4 -t 8 --hidden 256 -e 8 -k 3 -n 2 -w 1 \
	--timeout 20 --dtype fp8 --uneven-tokens 1
nodes "bf16_2x4_moe_tp_4_attn_whole_nodes" 2 4 dp=1,tp=8,moe_tp=4,moe_ep=2 -t 8 $small
# MoE-TP groups of whole nodes (moe_tp a multiple of P): the gather and reduce cross the network
# (tp 1: no attention gather)
all="ep_dispatch moe_tp_gather moe_tp_reduce ep_combine"
if nodes "bf16_2x2_moe_tp_whole_nodes" 2 2 dp=4,tp=1,moe_tp=4,moe_ep=1 -t 16 $small; then
	expect "bf16_2x2_moe_tp_whole_nodes_gather_link" "^#   link 0->1 moe_tp_gather +[0-9.]+[KM]? in +[0-9.]+ us"
	expect "bf16_2x2_moe_tp_whole_nodes_reduce_link" "^#   link 1->0 moe_tp_reduce +[0-9.]+[KM]? in +[0-9.]+ us"
fi
all="$all attn_tp_gather"
nodes "fp8_4x2_moe_tp_whole_nodes_ep_across" 4 2 dp=4,tp=2,moe_tp=4,moe_ep=2 -t 8 --hidden 256 -e 8 -k 3 -n 2 -w 1 \
	--timeout 20 --dtype fp8 --uneven-tokens 1

# a gathered block damaged on rank 3 (node 1) is named at its rank and tensor
cluster "gathered_block_damaged" 1 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 $small \
	--fault bitflip:3:moe_tp_gathered_x
expect "gathered_block_damaged_named" "first: rank 3: moe_tp_gathered_x"

# a hang on node 1 is named in world ranks: rank 3 is EP rank 1 of group 1, whose other rank is 1 (node 0)
cluster "hang_named" 4 60 2 --ranks-per-node 2 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 -t 16 \
	--hidden 256 -e 8 -k 4 -n 2 -w 1 --fault hang:3 --timeout 8
expect "hang_named_waiter_phase_peer" "rank 1 \\(node 0\\) in phase ll\\.dispatch\\.recv: tcp: no signal from rank 3 \\(node 1\\)"
expect "hang_named_hung_rank" "rank 3 made no progress for .* in phase fault\\.hang"
# a hang inside the attention gather across nodes: named with its phase and the rank that waits
cluster "attn_hang_named" 4 60 2 --ranks-per-node 2 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 -t 16 \
	--hidden 256 -e 8 -k 4 -n 2 -w 1 --fault hang:3:attn_tp_gather --timeout 5
expect "attn_hang_named_waiter_phase_peer" "in phase attn_tp_gather: tcp: no signal from rank [23] \\(node 1\\)"
expect "attn_hang_named_hung_rank" "rank 3 made no progress for .* in phase fault\\.hang"
# a hang inside the MoE-TP gather of a group of whole nodes: named with its phase and the rank that waits
cluster "tpnet_hang_named" 4 60 2 --ranks-per-node 2 --parallel dp=4,tp=1,moe_tp=4,moe_ep=1 -t 16 \
	--hidden 256 -e 8 -k 4 -n 2 -w 1 --fault hang:3:moe_tp_gather --timeout 5
expect "tpnet_hang_named_waiter_phase_peer" "in phase moe_tp_gather: tcp: no signal from rank [23] \\(node 1\\)"
expect "tpnet_hang_named_hung_rank" "rank 3 made no progress for .* in phase fault\\.hang"

# refused with one line, exit 2, nothing spawned
refused() {
	name=$1 said=$2 spec=$3; shift 3
	run "$name" 2 10 low-latency --local-nodes --nodes 2 --ranks-per-node 2 --parallel "$spec" -t 16 $small "$@"
	expect "${name}_said" "$said"
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && ok "${name}_one_line" || bad "${name}_one_line" "$(cat "$tmp/out")"
}
refused "moe_tp_and_attn_whole_nodes" "MoE-TP groups of whole nodes and an attention-TP group of whole nodes .* is not built" \
	dp=1,tp=4,moe_tp=4,moe_ep=1
refused "moe_tp_whole_nodes_dump" "--dump in low-latency mode with MoE-TP groups of whole nodes is not built" \
	dp=4,tp=1,moe_tp=4,moe_ep=1 --dump "$tmp/d"
[ -z "$(live_ranks)" ] && ok "no_orphans" || bad "no_orphans" "$(live_ranks)"
finish ll_layer_nodes_test.sh
