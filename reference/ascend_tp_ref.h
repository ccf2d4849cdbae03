/* ascend_tp_ref.h - the reference for Ascend's MoE-TP stage (parallel-semantics.md sections 3-5, moe_tp > 1).
 *
 * World rank w = q moe_tp + g is EP rank q of MoE-EP group g; its MoE-TP
 * group holds EP rank q of every group. refs[i] is group i's Ascend
 * reference (reference/ascend_ref.h) at EP rank q, each with the MoE-TP
 * expert of group i (reference/moe_layer_ref.h: the members' stand-ins,
 * each of its world rank, summed in rotation order from i, one rounding).
 *
 * The gathered dispatch outputs of member g, in Ascend's layout generalised
 * from tp = 2 by rotation: block b = member (g + b) % moe_tp's own rows
 * (block 0 = g's), one after another:
 *   expand_x, dynamic_scales  the blocks' rows;
 *   ep_recv_counts            each block's R L inclusive prefix sums, in block order;
 *   tp_recv_counts [moe_tp]   [i] = member i's rows (by MoE-TP rank, not block);
 *   expert_token_nums [L]     **choice** for L > 1: per local expert the rows of
 *                             every block summed (counts), or their inclusive
 *                             prefix over experts; L = 1: all gathered rows.
 * tp_recv_counts and ep_recv_counts are handles (ep_compare_handle_row).
 */
#ifndef EP_ASCEND_TP_REF_H
#define EP_ASCEND_TP_REF_H

#include <stddef.h>
#include <stdint.h>

#include "reference/ascend_ref.h"
#include "reference/compare.h"

/* Member g's gathered outputs as the run holds them. */
struct ep_ascend_tp_out {
	size_t num_recv;                  /* rows of every block */
	const void *expand_x;             /* [num_recv][row bytes] */
	const float *dynamic_scales;      /* [num_recv] (quant), else NULL */
	const int32_t *ep_recv_counts;    /* [moe_tp][R L] */
	const int32_t *tp_recv_counts;    /* [moe_tp] */
	const int64_t *expert_token_nums; /* [L] */
};

/* The gathered outputs of member g of a MoE-TP group of moe_tp (refs [moe_tp]). */
void ep_ascend_tp_ref_check_gather(const struct ep_ascend_ref *refs, int moe_tp, int g,
				   const struct ep_ascend_tp_out *a, struct ep_check_report *rep);

/* Member g's reduced rows (bf16 [n_own][H], the combine's expand_x): row m
 * is refs[g]'s expert (in.expert, the MoE-TP sum) on its own row m. */
void ep_ascend_tp_ref_check_reduce(const struct ep_ascend_ref *ref, const uint16_t *reduced,
				   struct ep_check_report *rep);

/* The local expert of ref's own row m (from its routing; 0 for a shared expert's row). */
int ep_ascend_tp_ref_local_expert(const struct ep_ascend_ref *ref, size_t m);

#endif
