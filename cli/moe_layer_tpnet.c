/* moe_layer_tpnet.c - the MoE-TP gather and reduce of a group that spans nodes (cli/moe_layer.h).
 *
 * parallel-semantics.md section 3 when P (ranks per node) divides moe_tp:
 * MoE-TP group q (world ranks q moe_tp + p) holds nodes [q M, q M + M),
 * M = moe_tp / P, all P ranks of each; member p is on node (q moe_tp + p)
 * / P with local index p % P. The mechanism is allgather mode's world
 * gather (cli/moe_layer_net.c): rank (n, l) talks over the network only to
 * its rail peers (m, l) of the group's other nodes; before a put it signals
 * each "ready" and waits for theirs (every rank of their node passed the
 * closing node barrier of the last op that read the receive regions), then
 * puts and signals once; the node's shared memory carries the rest.
 *   moe_tp_gather  each member puts to its rail peers its EP group's count
 *                  rows (R x R, from which a receiver reads how many rows
 *                  it got) and the rows it received in dispatch (x,
 *                  scales, top-k ids and weights, source index), block
 *                  `its node` of the peer's receive region; then every
 *                  member gathers in rotation order (block i from member
 *                  (g + i) % moe_tp) from its node's receive areas and,
 *                  for member p elsewhere, from the receive region of
 *                  local rank p % P, block p's node.
 *   moe_tp_reduce  each member puts, to its rail peer on node m, the
 *                  partial rows of every owner o on m (o's block of its
 *                  gathered order), slot o % P of block `its node`; every
 *                  owner then sums in rotation order with one rounding
 *                  (collectives/group.h, as on one node), member p's
 *                  partials from its node's slots or from local rank
 *                  p % P's region, block p's node, slot o % P.
 * The numerics are those of one node: the same blocks in the same order.
 */
#include <string.h>

#include "cli/moe_layer.h"
#include "collectives/group.h"

#define GATHER_TENSORS 5 /* x, x_scales, topk_idx, topk_weights, src_idx */

/* Bytes of one row of each gathered tensor, and where each starts in a gather block. */
static void tensor_bytes(const struct layer_state *st, size_t *bytes)
{
	const struct ep_shape *s = &st->eshape;
	size_t K = (size_t)s->num_topk;
	bytes[0] = ep_dtype_row_bytes(s->dtype, s->hidden);
	bytes[1] = 4 * (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	bytes[2] = 8 * K, bytes[3] = 4 * K, bytes[4] = 4;
}

static size_t counts_bytes(const struct layer_state *st)
{
	return ep_align_up(4 * (size_t)st->moe_ep * (size_t)st->moe_ep, 16);
}

static size_t tensor_at(const struct layer_state *st, int k)
{
	size_t bytes[GATHER_TENSORS], at = counts_bytes(st);
	tensor_bytes(st, bytes);
	for (int j = 0; j < k; j++)
		at += st->run->capacity * bytes[j];
	return at;
}

size_t layer_tpnet_block_bytes(const struct layer_state *st)
{
	size_t gather = tensor_at(st, GATHER_TENSORS);
	size_t reduce = (size_t)st->P * st->run->capacity * (size_t)st->eshape.hidden * 2;
	return ep_align_up(gather > reduce ? gather : reduce, 16);
}

static int node_of(const struct layer_state *st, int p)
{
	return (st->q * st->moe_tp + p) / st->P;
}

/* Rows EP rank q received, from the count rows [R][R] of its group. */
static size_t column(const struct layer_state *st, const int32_t *counts)
{
	size_t n = 0;
	for (int s = 0; s < st->moe_ep; s++)
		n += (size_t)counts[s * st->moe_ep + st->q];
	return n;
}

/* This member's count rows and received rows to its rail peers on the group's other nodes. */
static int put_rows(struct layer_state *st, int first, int count)
{
	const struct ep_recv_area *a = &st->gareas[st->g];
	const void *data[GATHER_TENSORS] = {a->x, a->x_scales, a->topk_idx, a->topk_weights, a->src_idx};
	size_t bytes[GATHER_TENSORS], rows = column(st, st->gcounts[st->g]), block = layer_tpnet_block_bytes(st);
	struct ep_transport *t = &st->net.net;
	tensor_bytes(st, bytes);
	for (int m = first; m < first + count; m++) {
		if (m == st->node)
			continue;
		int peer = m * st->P + st->me % st->P, rc;
		size_t base = (size_t)st->node * block, sent = 4 * (size_t)st->moe_ep * (size_t)st->moe_ep;
		if ((rc = ep_transport_put(t, peer, st->gcounts[st->g], st->net_recv_id, base, sent)))
			return layer_net_fail(st, rc, "putting MoE-TP rows to a rail peer");
		for (int k = 0; k < GATHER_TENSORS; k++)
			if (rows && bytes[k] && (rc = ep_transport_put(t, peer, data[k], st->net_recv_id,
								      base + tensor_at(st, k), rows * bytes[k])))
				return layer_net_fail(st, rc, "putting MoE-TP rows to a rail peer");
		st->net_bytes[LAYER_OP_MOE_TP_GATHER][m] = sent + rows * layer_row_bytes(st);
		if ((rc = layer_net_signal(st, m)))
			return rc;
	}
	return 0;
}

/* Member p's rows as the gather reads them: its node's receive area here, or the block from its node. */
static size_t member_rows(struct layer_state *st, int p, const void **data)
{
	if (node_of(st, p) == st->node) {
		const struct ep_recv_area *a = &st->gareas[p];
		data[0] = a->x, data[1] = a->x_scales, data[2] = a->topk_idx, data[3] = a->topk_weights, data[4] = a->src_idx;
		return column(st, st->gcounts[p]);
	}
	char *b = layer_net_recv_block(st, p % st->P, node_of(st, p), layer_tpnet_block_bytes(st));
	for (int k = 0; k < GATHER_TENSORS; k++)
		data[k] = b + tensor_at(st, k);
	return column(st, (const int32_t *)b);
}

int layer_tpnet_gather(struct layer_state *st)
{
	size_t bytes[GATHER_TENSORS];
	void *outs[GATHER_TENSORS] = {st->gx, st->gscales, st->gidx, st->gw, st->gsrc};
	struct ep_group_piece pieces[st->moe_tp * GATHER_TENSORS];
	int64_t t0 = ep_now_ns(), arrival[EP_MAX_NODES] = {0};
	int rc, count = st->moe_tp / st->P, first = st->q * count;
	tensor_bytes(st, bytes);
	ep_set_phase(st->env->waiter, "moe_tp_gather");
	if ((rc = layer_net_ready(st, first, count)) || (rc = put_rows(st, first, count)) ||
	    (rc = layer_net_wait_data(st, first, count, t0, arrival)) ||
	    (rc = ep_barrier(st->env->waiter))) /* every rank's blocks landed: their counts can be read */
		return rc;
	ep_endpoint_arrived(&st->net, LAYER_OP_MOE_TP_GATHER, arrival);
	st->grows = 0;
	for (int i = 0; i < st->moe_tp; i++) {
		int p = (st->g + i) % st->moe_tp;
		const void *data[GATHER_TENSORS];
		size_t rows = st->rows_of[p] = member_rows(st, p, data);
		for (int k = 0; k < GATHER_TENSORS; k++)
			pieces[i * GATHER_TENSORS + k] = (struct ep_group_piece){data[k], rows};
		st->grows += rows;
	}
	rc = ep_group_gather(st->env->waiter, pieces, st->moe_tp, GATHER_TENSORS, bytes, outs);
	st->stage = rc ? STAGE_NONE : STAGE_GATHERED;
	return rc;
}

/* Where owner p's rows start in this member's gathered order (block (p - g) mod moe_tp). */
static size_t block_first(const struct layer_state *st, int from, int p)
{
	int n = st->moe_tp;
	size_t off = 0;
	for (int j = 0; j < (p - from + n) % n; j++)
		off += st->rows_of[(from + j) % n];
	return off;
}

/* This member's partial rows of every owner on node m, to its rail peer there. */
static int put_partials(struct layer_state *st, int m)
{
	size_t H = (size_t)st->eshape.hidden, slot = st->run->capacity * H * 2;
	size_t base = (size_t)st->node * layer_tpnet_block_bytes(st);
	const uint16_t *mine = layer_partials(st, st->me);
	int peer = m * st->P + st->me % st->P, rc;
	st->net_bytes[LAYER_OP_MOE_TP_REDUCE][m] = 0;
	for (int o = m * st->P - st->q * st->moe_tp; o < (m + 1) * st->P - st->q * st->moe_tp; o++) {
		size_t rows = st->rows_of[o];
		st->net_bytes[LAYER_OP_MOE_TP_REDUCE][m] += rows * H * 2;
		if (rows && (rc = ep_transport_put(&st->net.net, peer, mine + block_first(st, st->g, o) * H, st->net_recv_id,
						   base + (size_t)(o % st->P) * slot, rows * H * 2)))
			return layer_net_fail(st, rc, "putting MoE-TP partials to a rail peer");
	}
	return layer_net_signal(st, m);
}

int layer_tpnet_reduce(struct layer_state *st)
{
	int n = st->moe_tp, count = n / st->P, first = st->q * count, rc;
	size_t H = (size_t)st->eshape.hidden, block = layer_tpnet_block_bytes(st);
	const uint16_t *parts[n];
	int64_t t0 = ep_now_ns(), arrival[EP_MAX_NODES] = {0};
	ep_set_phase(st->env->waiter, "moe_tp_reduce");
	if ((rc = layer_net_ready(st, first, count)))
		return rc;
	for (int m = first; m < first + count; m++)
		if (m != st->node && (rc = put_partials(st, m)))
			return rc;
	if ((rc = layer_net_wait_data(st, first, count, t0, arrival)))
		return rc;
	ep_endpoint_arrived(&st->net, LAYER_OP_MOE_TP_REDUCE, arrival);
	for (int i = 0; i < n; i++) {
		int p = (st->g + i) % n; /* p's gathered block of this member's rows */
		parts[i] = node_of(st, p) == st->node
			? layer_partials(st, st->q * n + p) + block_first(st, p, st->g) * H
			: (const uint16_t *)layer_net_recv_block(st, p % st->P, node_of(st, p), block) +
				  (size_t)(st->g % st->P) * st->run->capacity * H;
	}
	rc = ep_group_reduce(st->env->waiter, parts, n, 1, st->rows_of[st->g], H, layer_ep_combine_x(st));
	st->stage = rc ? STAGE_NONE : STAGE_REDUCED;
	return rc;
}
