/* oracle_ascend_tp.h - golden and verify of Ascend's MoE-TP stage in a layer (--ep-semantics ascend, moe_tp > 1).
 *
 * parallel-semantics.md sections 3-5, reference/ascend_tp_ref.h. World rank
 * w = q moe_tp + g is EP rank q of MoE-EP group g. Each rank's folder holds
 * the tensors cli/ascend_tp.c's --dump writes, in its dtypes and shapes, so
 * golden equals a run's dump byte for byte: inputs dispatch_x, expert_ids,
 * expert_scales (smooth_scales [E][H] with --smooth-scales, shared_expert_x
 * with --bias 1); ep_dispatch: assist_info_for_combine [A 128] (w's own
 * rows); moe_tp_gather: expand_x [moe_tp A][H] and dynamic_scales
 * [moe_tp A] (block b = member (g + b) % moe_tp's rows, w's own first, zeros
 * past them), ep_recv_counts [moe_tp R L] (each block's, in block order),
 * tp_recv_counts [moe_tp] (by member), expert_token_nums [L] (over every
 * block); experts: expert_outputs (w's stand-in on every gathered row);
 * moe_tp_reduce: moe_tp_reduced_x [n_own][H]; ep_combine: x [T][H];
 * attn_tp_gather: attn_tp_gathered_x. A is Ascend's: BS moe_ep min(L, K),
 * or a shared-expert rank's when larger (--shared-experts: EP ranks
 * [0, S_r) of each MoE-EP group, whose MoE-TP groups then hold shared
 * ranks only; their ep_recv_counts [moe_tp R], expert_token_nums [1];
 * smooth_scales [S_n + E][H]). --comm-quant int8 changes x only: the EP
 * return carries the reduced rows as int8 (reference/ascend_ref.h).
 * Every phase's expectation follows from the inputs through reference/
 * (never from a library's earlier phase). Verify checks the phases in
 * order, the first wrong one named; assist_info_for_combine,
 * ep_recv_counts and tp_recv_counts are handles (the footer's handles
 * line).
 */
#ifndef EP_ORACLE_ASCEND_TP_H
#define EP_ORACLE_ASCEND_TP_H

#include "cli/golden.h"

/* Golden: every world rank's tensors into dir and gd->m. 0 or -errno. */
int ep_ascend_tp_golden(struct ep_golden *gd, const char *dir);
/* Verify: prints the phases' report; returns the exit status. */
int ep_ascend_tp_verify(const struct ep_oracle_manifest *m, const char *dir);

#endif
