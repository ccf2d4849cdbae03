/* ascend_tp_ref.c - plain loops that say what Ascend's MoE-TP all-gather and reduce must output. */
#include "reference/ascend_tp_ref.h"

#include <stdlib.h>
#include <string.h>

int ep_ascend_tp_ref_local_expert(const struct ep_ascend_ref *ref, size_t m)
{
	const int32_t *r = ref->rows + 3 * m;
	int K = ref->p.num_topk, L = ref->num_local;
	if (r[2] >= K) /* a shared expert's row (slot K + j): a shared-expert rank's one local expert */
		return 0;
	return (int)(ep_ascend_ref_ids(ref, r[0])[(size_t)r[1] * K + r[2]] % L);
}

/* expert_token_nums over every block: counts per local expert, or their prefix. */
static void token_nums(const struct ep_ascend_ref *refs, int moe_tp, int64_t *out)
{
	int L = refs[0].num_local, R = refs[0].p.num_ranks;
	for (int el = 0; el < L; el++) {
		out[el] = 0;
		for (int i = 0; i < moe_tp; i++) {
			const int32_t *c = refs[i].ep_recv_counts;
			out[el] += c[el * R + R - 1] - (el ? c[el * R - 1] : 0);
		}
	}
	for (int el = 1; refs[0].p.counts_prefix && el < L; el++)
		out[el] += out[el - 1];
}

/* One block: the rows of the member with world rank src, from row `first` of the gathered output. */
static void check_block(const struct ep_ascend_ref *ref, int src, size_t first, const struct ep_ascend_tp_out *a,
			uint8_t *row, struct ep_check_report *rep)
{
	const struct ep_ascend_params *p = &ref->p;
	size_t rb = ep_ascend_row_bytes(p);
	for (size_t m = 0; m < ref->num_recv; m++) {
		const int32_t *r = ref->rows + 3 * m;
		float scale;
		ep_ascend_ref_row(ref, m, row, &scale);
		/* the row's source named as (member, row) so a block from the wrong peer reads plainly */
		ep_compare_row(rep, "expand_x", p->quant ? EP_ELEM_I8 : EP_ELEM_BF16, row,
			       (const uint8_t *)a->expand_x + (first + m) * rb, (size_t)p->hidden,
			       (int64_t)(first + m), src, r[1]);
		if (p->quant)
			ep_compare_row(rep, "dynamic_scales", EP_ELEM_F32, &scale, a->dynamic_scales + first + m, 1,
				       (int64_t)(first + m), src, r[1]);
	}
}

void ep_ascend_tp_ref_check_gather(const struct ep_ascend_ref *refs, int moe_tp, int g,
				   const struct ep_ascend_tp_out *a, struct ep_check_report *rep)
{
	int L = refs[0].num_local, RL = refs[0].num_counts;
	size_t total = 0, rb = ep_ascend_row_bytes(&refs[0].p);
	int32_t tp_counts[moe_tp];
	int64_t nums[L > 0 ? L : 1];
	for (int i = 0; i < moe_tp; i++) {
		total += refs[i].num_recv;
		tp_counts[i] = (int32_t)refs[i].num_recv;
	}
	token_nums(refs, moe_tp, nums);
	ep_report_scalar(rep, "expand_x.rows", (long long)total, (long long)a->num_recv);
	ep_compare_handle_row(rep, "tp_recv_counts", EP_ELEM_I32, tp_counts, a->tp_recv_counts, (size_t)moe_tp, 0, -1,
			      -1);
	ep_compare_row(rep, "expert_token_nums", EP_ELEM_I64, nums, a->expert_token_nums, (size_t)L, 0, -1, -1);
	for (int b = 0; b < moe_tp; b++)
		ep_compare_handle_row(rep, "ep_recv_counts", EP_ELEM_I32, refs[(g + b) % moe_tp].ep_recv_counts,
				      a->ep_recv_counts + (size_t)b * RL, (size_t)RL, b, -1, -1);
	if (total != a->num_recv)
		return;
	uint8_t *row = malloc(rb + 1);
	if (!row) {
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
		return;
	}
	size_t first = 0;
	for (int b = 0; b < moe_tp; b++) {
		int i = (g + b) % moe_tp;
		check_block(&refs[i], refs[i].me * moe_tp + i, first, a, row, rep);
		first += refs[i].num_recv;
	}
	free(row);
}

void ep_ascend_tp_ref_check_reduce(const struct ep_ascend_ref *ref, const uint16_t *reduced,
				   struct ep_check_report *rep)
{
	int H = ref->p.hidden;
	uint8_t *row = malloc(2 * (size_t)H + 1);
	uint16_t *want = malloc(2 * (size_t)H + 2);
	if (!row || !want) {
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
	} else {
		for (size_t m = 0; m < ref->num_recv; m++) {
			float scale;
			ep_ascend_ref_row(ref, m, row, &scale);
			ep_ascend_ref_expert(ref, ref->me, ep_ascend_tp_ref_local_expert(ref, m), row, scale, want);
			ep_compare_row(rep, "moe_tp_reduced_x", EP_ELEM_BF16, want, reduced + m * (size_t)H, (size_t)H,
				       (int64_t)m, -1, -1);
		}
	}
	free(row);
	free(want);
}
