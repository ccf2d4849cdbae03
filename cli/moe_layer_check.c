/* moe_layer_check.c - every phase of the MoE layer against reference/, byte for byte. */
#include <stdlib.h>

#include "cli/moe_layer.h"

static const struct ep_row_names gathered_names = {"moe_tp_gathered_x", "moe_tp_gathered_x_scales",
						   "moe_tp_gathered_src_idx", "moe_tp_gathered_topk_idx",
						   "moe_tp_gathered_topk_weights"};

/* Block i of the gathered rows is member (g + i) % moe_tp's receive: what
 * that member's group reference says EP rank q receives. */
void layer_check_moe_tp_gather(struct layer_state *st, struct ep_check_report *rep)
{
	const struct ep_shape *s = &st->eshape;
	size_t K = (size_t)s->num_topk, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden), off = 0;
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, s->hidden);
	for (int i = 0; i < st->moe_tp; i++) {
		int p = (st->g + i) % st->moe_tp;
		struct ep_dispatch_out v = {.num_recv = st->rows_of[p], .recv_x = (const char *)st->gx + off * row_bytes,
					    .recv_x_scales = S ? st->gscales + off * S : NULL,
					    .recv_topk_idx = st->gidx + off * K, .recv_topk_weights = st->gw + off * K,
					    .recv_src_idx = st->gsrc + off};
		ep_reference_check_rows(layer_ref(st, p), &v, &gathered_names, rep);
		off += st->rows_of[p];
	}
}

/* Own rows: every member's partial summed in rotation order from this one. */
void layer_check_moe_tp_reduce(struct layer_state *st, struct ep_check_report *rep)
{
	const struct ep_reference *ref = layer_ref(st, st->g);
	size_t H = (size_t)st->eshape.hidden;
	const uint16_t *got = layer_ep_combine_x(st);
	uint16_t *want = malloc(2 * (H + 1));
	ep_report_scalar(rep, "moe_tp_reduced_rows", (long long)ref->num_recv, (long long)st->rows_of[st->g]);
	for (size_t m = 0; want && ref->num_recv == st->rows_of[st->g] && m < ref->num_recv; m++) {
		if (ep_reference_expert_output(ref, m, want))
			break;
		ep_compare_row(rep, "moe_tp_reduced_x", EP_ELEM_BF16, want, got + m * H, H, (int64_t)m,
			       ep_reference_world(ref, ref->row_src_rank[m]), ref->row_src_token[m]);
	}
	if (!want)
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
	free(want);
}

/* World rank r's token t as allgather mode holds it: bf16 x, top-k. */
static void world_token(const struct layer_state *st, int r, int t, uint16_t *x, const int64_t **idx,
			const float **w)
{
	int g = r % st->moe_tp, q = r / st->moe_tp;
	size_t K = (size_t)st->eshape.num_topk;
	ep_gen_bf16_row(st->env->run->cfg->seed, &st->routings[g], EP_STREAM_X, q, t, st->eshape.hidden, x);
	*idx = ep_reference_topk_idx(layer_ref(st, g), q) + (size_t)t * K;
	*w = ep_reference_topk_weights(layer_ref(st, g), q) + (size_t)t * K;
}

void layer_check_world_gather(struct layer_state *st, struct ep_check_report *rep)
{
	size_t H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk, at = 0;
	uint16_t x[H + 1];
	const int64_t *idx;
	const float *w;
	for (int r = 0; r < st->W; r++)
		for (int t = 0; t < ep_slice_len(&st->sl, r); t++, at++) {
			world_token(st, r, t, x, &idx, &w);
			ep_compare_row(rep, "world_gathered_x", EP_ELEM_BF16, x, (const uint16_t *)st->gx + at * H, H,
				       (int64_t)at, r, t);
			ep_compare_row(rep, "world_gathered_topk_idx", EP_ELEM_I64, idx, st->gidx + at * K, K, (int64_t)at,
				       r, t);
			ep_compare_row(rep, "world_gathered_topk_weights", EP_ELEM_F32, w, st->gw + at * K, K,
				       (int64_t)at, r, t);
		}
}

/* The expected output row of world rank r's token t, whichever mode. */
static int layer_output_row(struct layer_state *st, int r, int t, uint16_t *want)
{
	if (!st->allgather)
		return layer_ep_combined_row(st, r, t, want);
	const struct ep_shape *s = &st->eshape;
	struct ep_allgather_experts a = {.payload = st->io.payload, .world = st->W, .moe_tp = st->moe_tp,
					 .L = s->num_experts / st->moe_ep, .K = s->num_topk, .H = s->hidden};
	uint16_t x[s->hidden + 1];
	const int64_t *idx;
	const float *w;
	world_token(st, r, t, x, &idx, &w);
	return ep_allgather_row(&a, idx, w, x, want);
}

void layer_check_world_reduce(struct layer_state *st, struct ep_check_report *rep)
{
	size_t H = (size_t)st->eshape.hidden;
	uint16_t want[H + 1];
	const uint16_t *got = layer_combined(st, st->me);
	for (int t = 0; t < ep_slice_len(&st->sl, st->me); t++) {
		if (layer_output_row(st, st->me, t, want)) {
			ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
			return;
		}
		ep_compare_row(rep, "world_reduced_x", EP_ELEM_BF16, want, got + (size_t)t * H, H, t, st->me, t);
	}
}

/* The attention-TP gather's expectations (cli/attn_gather.h): slice lengths and rows. */
int layer_slice_len(void *p, int r)
{
	return ep_slice_len(&((struct layer_state *)p)->sl, r);
}

int layer_expected_row(void *p, int r, int t, uint16_t *want)
{
	return layer_output_row(p, r, t, want);
}
