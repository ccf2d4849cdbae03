/* moe_layer_phases.c - the MoE layer's phases around EP dispatch and combine (cli/moe_layer.h). */
#include <string.h>

#include "cli/moe_layer.h"
#include "collectives/group.h"
#include "collectives/numeric.h"
#include "reference/transform.h"

#define GATHER_TENSORS 5 /* x, x_scales, topk_idx, topk_weights, src_idx */

size_t layer_row_bytes(const struct layer_state *st)
{
	const struct ep_shape *s = &st->eshape;
	size_t K = (size_t)s->num_topk, H = (size_t)s->hidden;
	if (st->allgather)
		return H * 2 + K * 12;
	return ep_dtype_row_bytes(s->dtype, s->hidden) + 4 * (size_t)ep_dtype_num_scales(s->dtype, s->hidden) + K * 12 + 4;
}

/* Rows EP rank q of group i received: the column of the counts every rank published. */
static size_t group_recv(const struct layer_state *st, int i)
{
	const int32_t *counts = st->gcounts[i];
	size_t n = 0;
	for (int s = 0; s < st->moe_ep; s++)
		n += (size_t)counts[s * st->moe_ep + st->q];
	return n;
}

int layer_moe_tp_gather(struct layer_state *st)
{
	if (st->nodes_job && st->moe_tp > st->P) /* the group spans nodes (cli/moe_layer_tpnet.c) */
		return layer_tpnet_gather(st);
	const struct ep_shape *s = &st->eshape;
	size_t K = (size_t)s->num_topk;
	size_t bytes[GATHER_TENSORS] = {ep_dtype_row_bytes(s->dtype, s->hidden),
					4 * (size_t)ep_dtype_num_scales(s->dtype, s->hidden), 8 * K, 4 * K, 4};
	void *outs[GATHER_TENSORS] = {st->gx, st->gscales, st->gidx, st->gw, st->gsrc};
	struct ep_group_piece pieces[st->moe_tp * GATHER_TENSORS];
	st->grows = 0;
	for (int i = 0; i < st->moe_tp; i++) {
		int p = (st->g + i) % st->moe_tp;
		const struct ep_recv_area *a = &st->gareas[p];
		size_t rows = st->rows_of[p] = group_recv(st, p);
		const void *data[GATHER_TENSORS] = {a->x, a->x_scales, a->topk_idx, a->topk_weights, a->src_idx};
		for (int k = 0; k < GATHER_TENSORS; k++)
			pieces[i * GATHER_TENSORS + k] = (struct ep_group_piece){data[k], rows};
		st->grows += rows;
	}
	ep_set_phase(st->env->waiter, "moe_tp_gather");
	int rc = ep_group_gather(st->env->waiter, pieces, st->moe_tp, GATHER_TENSORS, bytes, outs);
	st->stage = rc ? STAGE_NONE : STAGE_GATHERED;
	return rc;
}

/* The expert stand-in of this member (its shard) on every gathered row, and
 * the combine weights of its own rows. Local, untimed. */
int layer_moe_tp_partials(struct layer_state *st)
{
	const struct ep_shape *s = &st->eshape;
	int H = s->hidden, K = s->num_topk, S = ep_dtype_num_scales(s->dtype, H);
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, H);
	uint16_t xb[H > 0 ? H : 1];
	uint16_t *out = layer_partials(st, st->me);
	ep_set_phase(st->env->waiter, "experts");
	for (size_t k = 0; k < st->grows; k++) {
		ep_dispatched_row_to_bf16(s, (const char *)st->gx + k * row_bytes, S ? st->gscales + k * (size_t)S : NULL, xb);
		ep_expert_transform(st->io.payload, st->me, ep_row_expert(st->gidx + k * (size_t)K, K), xb, H,
				    out + k * (size_t)H);
	}
	float *cw = layer_ep_combine_w(st);
	for (size_t m = 0; m < st->rows_of[st->g]; m++) /* block 0: own rows */
		for (int j = 0; j < K; j++)
			cw[m * (size_t)K + j] = ep_expert_weight(st->me, (int)st->gidx[m * (size_t)K + j], st->gw[m * (size_t)K + j]);
	return 0;
}

int layer_moe_tp_reduce(struct layer_state *st)
{
	if (st->nodes_job && st->moe_tp > st->P)
		return layer_tpnet_reduce(st);
	int n = st->moe_tp, H = st->eshape.hidden;
	const uint16_t *parts[n];
	for (int i = 0; i < n; i++) {
		int p = (st->g + i) % n, mine = (st->g - p + n) % n; /* p's gathered block of this member's rows */
		size_t off = 0;
		for (int j = 0; j < mine; j++)
			off += st->rows_of[(p + j) % n];
		parts[i] = layer_partials(st, st->q * n + p) + off * (size_t)H;
	}
	ep_set_phase(st->env->waiter, "moe_tp_reduce");
	int rc = ep_group_reduce(st->env->waiter, parts, n, 1, st->rows_of[st->g], (size_t)H,
				 layer_ep_combine_x(st));
	st->stage = rc ? STAGE_NONE : STAGE_REDUCED;
	return rc;
}

int layer_world_gather(struct layer_state *st)
{
	size_t H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk, S = (size_t)st->sl.max_slice;
	size_t bytes[3] = {2 * H, 8 * K, 4 * K};
	void *outs[3] = {st->gx, st->gidx, st->gw};
	struct ep_group_piece pieces[st->W * 3];
	st->grows = 0;
	for (int r = 0; r < st->W; r++) {
		size_t rows = (size_t)ep_slice_len(&st->sl, r), at = (size_t)r * S;
		pieces[r * 3] = (struct ep_group_piece){st->area.ag_x + at * H, rows};
		pieces[r * 3 + 1] = (struct ep_group_piece){st->area.ag_idx + at * K, rows};
		pieces[r * 3 + 2] = (struct ep_group_piece){st->area.ag_w + at * K, rows};
		st->grows += rows;
	}
	ep_set_phase(st->env->waiter, "world_gather");
	int rc = ep_group_gather(st->env->waiter, pieces, st->W, 3, bytes, outs);
	st->stage = rc ? STAGE_NONE : STAGE_GATHERED;
	return rc;
}

/* One gathered token's partial on this rank (allgather mode, written apart
 * from reference/moe_layer_ref.c, which checks it): the slots whose expert
 * this rank holds (a shard of: its EP rank's L experts), in slot order,
 * y_j = the stand-in of this world rank for the local expert, the sum
 * acc = acc + (y_j * w_j) from +0 with the product and the sum rounded
 * apart (volatile: no fused multiply-add), then one bf16 rounding. */
static void world_partial(const struct layer_state *st, const int64_t *idx, const float *w, const uint16_t *x,
			  uint16_t *out, float *acc, uint16_t *y)
{
	int H = st->eshape.hidden, K = st->eshape.num_topk, L = st->eshape.num_experts / st->moe_ep;
	int64_t first = (int64_t)(st->me / st->moe_tp) * L;
	for (int c = 0; c < H; c++)
		acc[c] = 0.0f;
	for (int j = 0; j < K; j++) {
		if (idx[j] < first || idx[j] >= first + L)
			continue;
		ep_expert_transform(st->io.payload, st->me, (int)(idx[j] - first), x, H, y);
		for (int c = 0; c < H; c++) {
			volatile float product = ep_bf16_to_f32(y[c]) * w[j];
			acc[c] += product;
		}
	}
	for (int c = 0; c < H; c++)
		out[c] = ep_f32_to_bf16(acc[c]);
}

/* This rank's partial output of every token of the world. Local, untimed. */
int layer_world_partials(struct layer_state *st)
{
	size_t H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk;
	float acc[H + 1];
	uint16_t y[H + 1];
	uint16_t *out = layer_partials(st, st->me);
	ep_set_phase(st->env->waiter, "experts");
	for (size_t k = 0; k < st->grows; k++)
		world_partial(st, st->gidx + k * K, st->gw + k * K, (const uint16_t *)st->gx + k * H, out + k * H, acc, y);
	return 0;
}

int layer_world_reduce(struct layer_state *st)
{
	size_t H = (size_t)st->eshape.hidden, off = 0;
	for (int r = 0; r < st->me; r++)
		off += (size_t)ep_slice_len(&st->sl, r);
	const uint16_t *parts[st->W];
	for (int r = 0; r < st->W; r++)
		parts[r] = layer_partials(st, r) + off * H;
	ep_set_phase(st->env->waiter, "world_reduce");
	int rc = ep_group_reduce(st->env->waiter, parts, st->W, 0, (size_t)ep_slice_len(&st->sl, st->me), H,
				 layer_combined(st, st->me));
	st->stage = rc ? STAGE_NONE : STAGE_COMBINED;
	return rc;
}
