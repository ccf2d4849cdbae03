#!/bin/sh
# mutants_test.sh - the end-to-end check must catch the order, fusion and
# tail mistakes a collective can make (README, "How it checks"). Each mutant
# is epbench with one such mistake made on purpose in collectives/, built in
# a copy of the tree (only the changed file recompiles; always the plain
# build, whatever sanitizer the calling make has); its run with the
# payload named (wide, the default, or special where signed zeros are
# needed) must end in WRONG DATA (exit 1). The same run with --payload narrow
# is printed for comparison: that payload cannot see most of them. Ends with "N passed, N failed, N skipped".
set -u
SUBCOMMAND=intranode
. "$(dirname "$0")/lib.sh"
root=$(cd "$lib_here/.." && pwd)
src=$tmp/src
mkdir -p "$src"
(cd "$root" && cp -rp Makefile cli collectives reference reports scripts "$src"/ && { [ -d build ] && cp -rp build "$src"/; true; })

# mutant NAME FILE OLD NEW PAYLOAD ARGS...: replaces every OLD with NEW in
# FILE, builds, runs ARGS with PAYLOAD and with narrow; PAYLOAD must exit 1.
mutant() {
	name=$1 file=$2 old=$3 new=$4 payload=$5; shift 5
	cp -p "$root/$file" "$src/$file.orig"
	if ! python3 - "$src/$file" "$old" "$new" <<'PY'
import sys
p, old, new = sys.argv[1:4]
s = open(p).read()
if old not in s:
    sys.exit("mutation site not found in " + p + ": " + old)
open(p, "w").write(s.replace(old, new))
PY
	then bad "$name" "the code it mutates changed: update tests/mutants_test.sh"; return; fi
	if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$src" --no-print-directory -j2 SANITIZER= epbench >"$tmp/out" 2>&1; then
		bad "$name" "mutant does not build"
	else
		timeout -k 2 60 "$src/epbench" "$@" --payload narrow >"$tmp/narrow" 2>&1; narrow=$?
		timeout -k 2 60 "$src/epbench" "$@" --payload "$payload" >"$tmp/out" 2>&1; got=$?
		wrong=$(sed -n 's/^# check: .*, \([0-9]*\) wrong element.*/\1/p' "$tmp/out" | tail -n 1)
		nwrong=$(sed -n 's/^# check: .*, \([0-9]*\) wrong element.*/\1/p' "$tmp/narrow" | tail -n 1)
		echo "#   $name: $payload exit $got (${wrong:-?} wrong elements), narrow exit $narrow (${nwrong:-?})"
		[ "$got" -eq 1 ] && ok "$name" || bad "$name" "exit $got, want 1 (a mutant the check does not catch)"
	fi
	mv "$src/$file.orig" "$src/$file"
	touch "$src/$file"
}

small_ll="-r 4 -t 64 --hidden 512 -e 16 -k 4 -n 2 -w 1"
mutant "intranode_ranks_descending" collectives/intranode.c \
	"		ep_bf16_reduce_rows(rows, n, bias0 && bias1, (size_t)H, combined_x + off);" \
	"		for (int i_ = 0; i_ < n / 2; i_++) { const uint16_t *t_ = rows[i_]; rows[i_] = rows[n - 1 - i_]; rows[n - 1 - i_] = t_; }
		ep_bf16_reduce_rows(rows, n, bias0 && bias1, (size_t)H, combined_x + off);" \
	wide intranode -r 3 -t 256 --hidden 512 -e 12 -k 4 -n 2 -w 1
mutant "ll_slots_reversed" collectives/low_latency_kernels.c \
	"for (int j = 0; j < n; j++)" "for (int j = n - 1; j >= 0; j--)" \
	wide low-latency $small_ll
mutant "ll_multiply_add_unfused" collectives/low_latency_kernels.c \
	"typedef void (*reduce_fn)" \
	"__attribute__((noinline)) static float fmaf_unfused(float a, float b, float c) { volatile float p = a * b; return p + c; }
#define fmaf fmaf_unfused
typedef void (*reduce_fn)" \
	wide low-latency $small_ll
mutant "ll_tail_dropped" collectives/low_latency_kernels.c \
	"	for (; c < H; c++) {" "	for (; c < H && 0; c++) {" \
	wide low-latency -r 4 -t 64 --hidden 200 -e 16 -k 4 -n 2 -w 1
mutant "internode_nodes_descending" collectives/internode.c \
	"		for (int m = 0; m < N; m++) {
			if (!node_bits(ctx, t, m))" \
	"		for (int m = N - 1; m >= 0; m--) {
			if (!node_bits(ctx, t, m))" \
	wide internode --local-nodes --nodes 3 --ranks-per-node 1 -t 128 --hidden 256 -e 12 -k 4 -n 2 -w 1
mutant "internode_local_ranks_descending" collectives/internode.c \
	"	for (int d = 0; d < P; d++) {
		int32_t row = ctx->fwd_rows[(size_t)i * P + d];" \
	"	for (int d = P - 1; d >= 0; d--) {
		int32_t row = ctx->fwd_rows[(size_t)i * P + d];" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 3 -t 128 --hidden 256 -e 12 -k 4 -n 2 -w 1
mutant "internode_partial_truncated" collectives/internode.c \
	"	ep_bf16_reduce_rows(rows, n, 0, (size_t)H, (uint16_t *)rec);" \
	"	for (int c_ = 0; c_ < H; c_++) { float a_ = 0.0f; for (int j_ = 0; j_ < n; j_++) a_ += ep_bf16_to_f32(rows[j_][c_]); ((uint16_t *)rec)[c_] = (uint16_t)(ep_f32_bits(a_) >> 16); }" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 128 --hidden 256 -e 16 -k 4 -n 2 -w 1
mutant "combine_start_not_plus_zero" collectives/combine_kernels.c \
	"ep_bf16_to_f32(in[0][c + k]) + 0.0f;" "ep_bf16_to_f32(in[0][c + k]);" \
	special intranode -r 2 -t 256 --hidden 512 -e 8 -k 1 -n 2 -w 1
# the MoE layer of a parallel configuration (cli/moe_layer*.c): groups built wrong
layer="intranode -t 32 --hidden 256 -e 16 -k 4 -n 2 -w 1"
mutant "layer_rank_swapped_between_ep_groups" cli/moe_layer_ep.c \
	"char *mine = base + (size_t)(st->g % layer_group_slots(st)) * group_bytes;" "char *mine = base + (size_t)(st->me < 2 ? st->g ^ 1 : st->g) * group_bytes;" \
	wide $layer -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2
mutant "layer_moe_tp_block_from_wrong_peer" cli/moe_layer_phases.c \
	"		int p = (st->g + i) % st->moe_tp;
		const struct ep_recv_area" \
	"		int p = (st->g + i + (i > 0)) % st->moe_tp;
		const struct ep_recv_area" \
	wide $layer -r 8 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2
mutant "layer_moe_tp_reduce_not_rotated" cli/moe_layer_phases.c \
	"		int p = (st->g + i) % n, mine" "		int p = (n - 1 - i + st->g) % n, mine" \
	wide $layer -r 8 --parallel dp=2,tp=4,moe_tp=4,moe_ep=2
mutant "layer_world_reduce_descending" cli/moe_layer_phases.c \
	"		parts[r] = layer_partials(st, r) + off * H;" "		parts[r] = layer_partials(st, st->W - 1 - r) + off * H;" \
	wide $layer -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 --moe-comm allgather
mutant "layer_world_partial_unweighted" cli/moe_layer_phases.c \
	"volatile float product = ep_bf16_to_f32(y[c]) * w[j];" "volatile float product = ep_bf16_to_f32(y[c]) * (w[j] == w[j] ? 1.0f : w[j]);" \
	wide $layer -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 --moe-comm allgather
mutant "layer_world_partial_wrong_experts_held" cli/moe_layer_phases.c \
	"int64_t first = (int64_t)(st->me / st->moe_tp) * L;" "int64_t first = (int64_t)(st->me % st->moe_tp) * L;" \
	wide $layer -r 8 --parallel dp=2,tp=4,moe_tp=2,moe_ep=4 --moe-comm allgather
# --cached in the layer: the later phases take the handle's tensors (recv_src_idx, the top-k of
# the dispatch that made the handle) from another MoE-EP group's receive area, one host and across nodes
mutant "layer_cached_handle_of_other_group" cli/moe_layer_ep.c \
	"		handle_tensors(st, st->g);" "		handle_tensors(st, (st->g + 1) % st->moe_tp);" \
	wide $layer -r 4 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --cached
mutant "layer_cached_nodes_handle_of_other_group" cli/moe_layer_ep.c \
	"		handle_tensors(st, st->g);" "		handle_tensors(st, (st->g + 1) % st->moe_tp);" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --parallel dp=2,tp=2,moe_tp=2,moe_ep=2 --cached
mutant "layer_net_world_reduce_descending" cli/moe_layer_net.c \
	"		parts[q] = q / st->P == st->node" "		parts[st->W - 1 - q] = q / st->P == st->node" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --parallel dp=2,tp=2,moe_tp=1,moe_ep=4 --moe-comm allgather
mutant "layer_tpnet_block_from_wrong_peer" cli/moe_layer_tpnet.c \
	"	char *b = layer_net_recv_block(st, p % st->P, node_of(st, p)," "	char *b = layer_net_recv_block(st, (p + 1) % st->P, node_of(st, p)," \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 16 -k 4 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1
mutant "ascend_tpnet_block_from_wrong_member" cli/ascend_tpnet.c \
	"	const uint8_t *b = n->region + gather_at(n, p);" "	const uint8_t *b = n->region + gather_at(n, (p + 1) % n->moe_tp);" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 128 -e 8 -k 3 -n 1 -w 0 --ep-semantics ascend --parallel dp=2,tp=2,moe_tp=4,moe_ep=1
# Ascend semantics (collectives/ascend.c): the int8 scale as amax/127 instead of 1/(127/amax), the
# weighted sum fused (fmaf; its kernel is in combine_kernels.c) instead of Muls then Add, the slots summed
# backwards (shared experts first)
ascend="intranode --ep-semantics ascend -r 4 -t 64 --hidden 256 -e 12 -k 4 -n 2 -w 1"
mutant "ascend_scale_amax_over_127" collectives/ascend.c "	return 1.0f / ds;" "	return amax / 127.0f;" \
	wide $ascend --dtype int8
mutant "ascend_muls_add_fused" collectives/combine_kernels.c \
	"float p = ep_bf16_to_f32(r[k]) * wj;" "float p = 0.0f; acc[k] = __builtin_fmaf(ep_bf16_to_f32(r[k]), wj, acc[k]);" \
	wide $ascend
mutant "ascend_slots_backwards" collectives/ascend.c \
	"	for (int j = 0; j < K + p->shared_experts; j++) {" "	for (int j = K + p->shared_experts - 1; j >= 0; j--) {" \
	wide $ascend --shared-experts 1 --shared-expert-ranks 1
# Ascend across nodes (collectives/ascend_net.c): a remote block put at the sender's own staging offset
# instead of the receiver's row for (local expert, source rank): rows of other nodes out of source order
mutant "ascend_net_rows_at_sender_offset" collectives/ascend_net.c \
	"put_block(ctx, q, stage_row[e] - mine[e], ctx->next_row[e] - mine[e], mine[e]);" \
	"put_block(ctx, q, stage_row[e] - mine[e], stage_row[e] - mine[e], mine[e]);" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 64 --hidden 256 -e 8 -k 3 -n 2 -w 1 --ep-semantics ascend
# Ascend's MoE-TP stage (cli/ascend_tp.c): a gathered block taken from the wrong member, and the
# reduce summing the members' partials from member 0 instead of in rotation order from the owner
# (the same sum for two members: moe_tp 4 shows it)
mutant "ascend_tp_block_from_wrong_peer" cli/ascend_tp.c \
	"		int i = (st->g + b) % M;" "		int i = (st->g + b + (b > 0)) % M;" \
	wide intranode --ep-semantics ascend -r 4 -t 32 --hidden 256 -e 4 -k 2 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2
mutant "ascend_tp_reduce_not_rotated" cli/ascend_tp.c \
	"		int m = (st->g + k) % M;" "		int m = k;" \
	wide intranode --ep-semantics ascend -r 4 -t 32 --hidden 256 -e 4 -k 2 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1
# Ascend's MoE-TP stage with shared experts and with --comm-quant int8 (cli/ascend_tp.c): a shared-expert rank
# keeping its own partial instead of summing its MoE-TP group's (shared rows skipped by the reduce), and the
# partials quantised to int8 before the reduce instead of the reduced rows after it (section 5: step 1, then 4)
mutant "ascend_tp_shared_rows_not_reduced" cli/ascend_tp.c \
	"	rc = ep_group_reduce(st->env->waiter, parts, M, 1, st->rows_of[st->g], H, st->reduced);" \
	"	rc = ep_group_reduce(st->env->waiter, parts, st->q < st->geo.p.shared_ranks ? 1 : M, 1, st->rows_of[st->g], H, st->reduced);" \
	wide intranode --ep-semantics ascend -r 4 -t 32 --hidden 256 -e 2 -k 1 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 \
	--shared-experts 1 --shared-expert-ranks 1
mutant "ascend_tp_comm_quant_before_reduce" cli/ascend_tp.c \
	"st->gx + at * rb, g->p.quant ? st->gscales[at] : 0.0f, (int)H, out + at * H);" \
	"st->gx + at * rb, g->p.quant ? st->gscales[at] : 0.0f, (int)H, out + at * H),
				g->p.comm_quant ? ep_ascend_ref_comm_quant(out + at * H, (int)H, out + at * H) : (void)0;" \
	wide intranode --ep-semantics ascend -r 4 -t 32 --hidden 256 -e 4 -k 2 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 \
	--comm-quant int8
# Ascend's MoE-TP stage across nodes (cli/ascend_tp.c): MoE-EP group g's network peers taken from group g + 1,
# a rank swapped between EP groups (the signals still pair up, the rows land in the other group's areas)
mutant "ascend_tp_net_ep_group_swapped" cli/ascend_tp.c \
	"ep_ascend_net_group(&st->coll, g->moe_tp, st->g);" "ep_ascend_net_group(&st->coll, g->moe_tp, (st->g + 1) % g->moe_tp);" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 4 -k 2 -n 2 -w 1 --timeout 10 \
	--ep-semantics ascend --parallel dp=2,tp=2,moe_tp=2,moe_ep=2
# An Ascend layer's attention-TP group of whole nodes (cli/attn_gather.c over cli/ascend.c's full mesh): a
# member on another node read from the next member's block of the receive area (a gathered block from the wrong member)
mutant "ascend_attn_gather_block_from_wrong_member" cli/attn_gather.c \
	"? a->net->recv + (size_t)i * a->slot_rows" "? a->net->recv + (size_t)((i + 1) % a->tp) * a->slot_rows" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 32 --hidden 256 -e 8 -k 2 -n 2 -w 1 --timeout 10 \
	--ep-semantics ascend --parallel dp=1,tp=4,moe_tp=1,moe_ep=4
# the same with Ascend's MoE-TP stage (cli/ascend_tp.c: its attention-TP group of whole nodes over its own mesh)
mutant "ascend_tp_attn_gather_block_from_wrong_member" cli/attn_gather.c \
	"? a->net->recv + (size_t)i * a->slot_rows" "? a->net->recv + (size_t)((i + 1) % a->tp) * a->slot_rows" \
	wide internode --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 128 -e 8 -k 2 -n 1 -w 0 --timeout 10 \
	--ep-semantics ascend --parallel dp=1,tp=4,moe_tp=2,moe_ep=2
# Low-latency mode's MoE-TP stage (cli/ll_layer.c): a gathered block taken from the wrong member,
# and the reduce summing from member 0 instead of in rotation order from the owner (moe_tp 4 shows it)
mutant "ll_layer_block_from_wrong_member" cli/ll_layer.c \
	"copy_block(&st->cfg, &st->mouts[p]" \
	"copy_block(&st->cfg, &st->mouts[(p + (i > 0)) % st->moe_tp]" \
	wide low-latency -r 4 -t 16 --hidden 256 -e 8 -k 4 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2
mutant "ll_layer_reduce_not_rotated" cli/ll_layer.c \
	"st->q * st->moe_tp + p, (st->moe_tp - i) % st->moe_tp)" "st->q * st->moe_tp + i, (st->g - i + st->moe_tp) % st->moe_tp)" \
	wide low-latency -r 4 -t 16 --hidden 256 -e 8 -k 4 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=4,moe_ep=1
# ... with --zero-copy: the reduce's sums left in the private buffer while combine sends the combine
# buffer as it lies (what the buffer held before: the reduce must write it)
mutant "ll_layer_zero_copy_sums_not_in_combine_buffer" cli/ll_layer.c \
	"st->dst_rows[n] = dst + (e * RN + p) * H;" "st->dst_rows[n] = st->expert_out + (e * RN + p) * H;" \
	wide low-latency -r 4 -t 16 --hidden 256 -e 8 -k 4 -n 2 -w 1 --parallel dp=1,tp=4,moe_tp=2,moe_ep=2 --zero-copy
# ... across nodes: MoE-EP group g's network peers taken from group g + 1 (collectives/low_latency_int.h's
# world rank of a remote group rank; the waiter stays the group's own, so setup passes and the signals
# pair up, but group 0's rows land in group 1's receive areas and back)
mutant "ll_layer_net_ep_group_swapped" collectives/low_latency_int.h \
	"	return q * ctx->stride + ctx->base;" \
	"	return q * ctx->stride + (ctx->base + (q / ctx->cfg.ranks_per_node != ctx->node)) % ctx->stride;" \
	wide low-latency --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 8 -k 4 -n 2 -w 1 --timeout 10 \
	--parallel dp=2,tp=2,moe_tp=2,moe_ep=2
# ... and its attention-TP group of whole nodes over the rail peers (cli/attn_gather.c's rail mode): a
# member's rows put into the next member's block of the node's receive area (a block from the wrong member)
mutant "ll_layer_attn_rail_block_of_wrong_member" cli/attn_gather.c \
	"(size_t)(n->me % a->tp) * slot" "(size_t)((n->me + 1) % a->tp) * slot" \
	wide low-latency --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 8 -k 4 -n 2 -w 1 --timeout 10 \
	--parallel dp=1,tp=4,moe_tp=2,moe_ep=2
# ... and its MoE-TP groups of whole nodes (cli/ll_tpnet.c): a member's block on another node read
# from the next member's place in the region (a block from the wrong group member)
mutant "ll_tpnet_block_from_wrong_member" cli/ll_tpnet.c \
	"	uint8_t *b = n->region + gather_at(n, p);" "	uint8_t *b = n->region + gather_at(n, (p + 1) % n->moe_tp);" \
	wide low-latency --local-nodes --nodes 2 --ranks-per-node 2 -t 16 --hidden 256 -e 8 -k 4 -n 2 -w 1 --timeout 10 \
	--parallel dp=4,tp=1,moe_tp=4,moe_ep=1
finish mutants_test.sh
