/* moe_layer_net.c - allgather mode across nodes: the world all-gather and reduce over the rail peers.
 *
 * parallel-semantics.md section 2, allgather mode, when the world spans
 * nodes (a node job). Rank (n, l) talks over the network only to its rail
 * peers (m, l), m != n, as internode's ranks do; inside a node the node's
 * shared memory carries the rest:
 *   world_gather  each rank puts its slice (x, top-k ids, weights) into
 *                 every rail peer's receive region (block n); after a node
 *                 barrier every rank copies the W slices in world order:
 *                 its node's from the published slots, node m's from the
 *                 receive region of the local rank that talks to node m's
 *                 rank of the same local index.
 *   world_reduce  each rank puts, to rail peer (m, l), its partial rows of
 *                 node m's slices (contiguous in the world order); then
 *                 every owner sums, over world ranks ascending, the partials
 *                 of its rows: its node's from their partial slots, node m's
 *                 rank (m, l') from local rank l''s receive region (block m).
 *   attn_tp_gather (a group of whole nodes, either mode): each rank puts
 *                 its combined rows to its rail peers on the group's other
 *                 nodes, then every rank copies the group's tp slices as the
 *                 world gather does.
 * The MoE-TP gather and reduce of a group of whole nodes use the same rail
 * exchange (layer_net_ready, layer_net_wait_data; cli/moe_layer_tpnet.c).
 * Reuse: before every put a rank signals each rail peer "ready" (its node
 * is done with the previous contents: every rank passed the closing node
 * barrier of the last op) and waits for theirs; then data, one signal.
 * Signals are counted per peer (expect[m], or in a2a mode the internode
 * collective's count when the peer is of the EP group), barriers included. Every wait
 * has the transport's deadline, every node barrier the waiter's.
 */
#include <errno.h>
#include <string.h>

#include "cli/moe_layer.h"
#include "collectives/combine_kernels.h"
#include "collectives/error.h"
#include "collectives/group.h"

/* The transport's regions: this rank's receive region (node arena), the
 * node's published slices and its partial rows (put sources). */
enum { NET_RECV, NET_SLICES, NET_PARTIALS, NET_COMBINED };
_Static_assert(EP_NET_AREAS + 2 < EP_TRANSPORT_MAX_REGIONS, "the layer's regions follow internode's");

size_t layer_net_recv_bytes(const struct layer_state *st)
{
	size_t N = (size_t)(st->W / st->P), S = (size_t)st->sl.max_slice, H = (size_t)st->eshape.hidden;
	size_t K = (size_t)st->eshape.num_topk;
	size_t gather = S * (2 * H + 12 * K), reduce = (size_t)st->P * S * 2 * H, attn = S * 2 * H, b = attn;
	if (st->allgather)
		b = gather > reduce ? gather : reduce;
	else if (st->moe_tp > st->P && layer_tpnet_block_bytes(st) > b)
		b = layer_tpnet_block_bytes(st);
	return ep_align_up(N * b, EP_PAGE);
}

int layer_net_spans(const struct layer_state *st)
{
	return st->nodes_job && (st->allgather || st->tp > st->P || st->moe_tp > st->P);
}

int layer_net_fail(struct layer_state *st, int rc, const char *what)
{
	return ep_endpoint_fail(&st->net, rc, what);
}

int layer_net_bind(struct layer_state *st, const struct layer_net_regions *r)
{
	int rc, peers[EP_MAX_NODES], n = 0, N = st->W / st->P;
	char *mine = (char *)r->recv + (size_t)(st->me % st->P) * layer_net_recv_bytes(st);
	st->recv = r->recv;
	st->net_recv_id = NET_RECV;
	if ((rc = ep_endpoint_open(&st->net, st->env, st->W)))
		return rc;
	st->net_up = 1;
	if ((rc = ep_transport_reg_mem(&st->net.net, NET_RECV, mine, layer_net_recv_bytes(st))) ||
	    (rc = ep_transport_reg_mem(&st->net.net, NET_SLICES, r->slices, r->slices_bytes)) ||
	    (rc = ep_transport_reg_mem(&st->net.net, NET_PARTIALS, r->partials, r->partials_bytes)) ||
	    (rc = ep_transport_reg_mem(&st->net.net, NET_COMBINED, r->combined, r->combined_bytes)))
		return layer_net_fail(st, rc, "network buffers");
	for (int m = 0; m < N; m++)
		if (m != st->node)
			peers[n++] = m * st->P + st->me % st->P;
	return ep_endpoint_connect(&st->net, peers, n, "its rail peers");
}

int layer_net_bind_a2a(struct layer_state *st, void *source, size_t source_bytes)
{
	char *mine = (char *)st->recv + (size_t)(st->me % st->P) * layer_net_recv_bytes(st);
	int rc, recv_id = EP_NET_AREAS + 1, source_id = EP_NET_AREAS + 2; /* after internode's regions */
	st->net_recv_id = recv_id;
	if ((rc = ep_transport_reg_mem(&st->net.net, recv_id, mine, layer_net_recv_bytes(st))) ||
	    (rc = ep_transport_reg_mem(&st->net.net, source_id, source, source_bytes)))
		return layer_net_fail(st, rc, "network buffers");
	return 0;
}

static int rail(const struct layer_state *st, int m)
{
	return m * st->P + st->me % st->P;
}

/* Adds the rail peer on node m unless it is this node's or already in peers. */
static int add_peer(const struct layer_state *st, int m, int *peers, int n)
{
	for (int i = 0; i < n; i++)
		if (peers[i] == rail(st, m))
			return n;
	if (m != st->node)
		peers[n++] = rail(st, m);
	return n;
}

int layer_net_add_peers(const struct layer_state *st, int *peers, int n)
{
	int mtp = st->moe_tp / st->P, atp = st->tp / st->P;
	for (int j = 0; st->moe_tp > st->P && j < mtp; j++)
		n = add_peer(st, st->q * mtp + j, peers, n); /* the MoE-TP group's nodes */
	for (int j = 0; st->tp > st->P && j < atp; j++)
		n = add_peer(st, st->d * atp + j, peers, n); /* the attention-TP group's */
	return n;
}

/* The signals consumed from the rail peer on node m: the internode
 * collective's count when m holds a rank of this rank's EP group (a2a:
 * one counter per peer, shared), else the layer's own. */
static uint32_t *consumed(struct layer_state *st, int m)
{
	int k = st->allgather ? -1 : layer_ep_rank_on(st, m);
	return k >= 0 ? &st->icoll.expect[k] : &st->expect[m];
}

/* One more signal from the rail peer of every node in [first, first + count)
 * but this one; with arrival, when each came (ns after t0). */
int layer_net_wait_data(struct layer_state *st, int first, int count, int64_t t0, int64_t *arrival)
{
	int rc;
	for (int m = first; m < first + count; m++)
		if (m != st->node) {
			uint32_t *c = consumed(st, m);
			if ((rc = ep_transport_wait(&st->net.net, rail(st, m), *c + 1)))
				return layer_net_fail(st, rc, "waiting for a rail peer");
			++*c;
			if (arrival)
				arrival[m] = ep_now_ns() - t0;
		}
	return 0;
}

int layer_net_signal(struct layer_state *st, int m)
{
	int rc = ep_transport_signal(&st->net.net, rail(st, m));
	return rc ? layer_net_fail(st, rc, "signalling a rail peer") : 0;
}

static int signal_rails(struct layer_state *st, int first, int count)
{
	int rc;
	for (int m = first; m < first + count; m++)
		if (m != st->node && (rc = layer_net_signal(st, m)))
			return rc;
	return 0;
}

int layer_net_ready(struct layer_state *st, int first, int count)
{
	int rc = signal_rails(st, first, count);
	return rc ? rc : layer_net_wait_data(st, first, count, 0, NULL);
}

static int wait_rails(struct layer_state *st)
{
	return layer_net_wait_data(st, 0, st->W / st->P, 0, NULL);
}

int layer_net_barrier(struct layer_state *st)
{
	int rc;
	ep_set_phase(st->env->waiter, "cluster barrier");
	if ((rc = ep_barrier(st->env->waiter)) || (rc = signal_rails(st, 0, st->W / st->P)))
		return rc;
	return wait_rails(st);
}

/* Rows of the world order before world rank r's slice, and node m's rows. */
static size_t rows_before(const struct layer_state *st, int r)
{
	size_t n = 0;
	for (int q = 0; q < r; q++)
		n += (size_t)ep_slice_len(&st->sl, q);
	return n;
}

/* The receive region of local rank l, its block for node m; a gather block
 * holds x [S][H] | ids [S][K] | weights [S][K], a reduce block P S rows. */
char *layer_net_recv_block(const struct layer_state *st, int l, int m, size_t block)
{
	return (char *)st->recv + (size_t)l * layer_net_recv_bytes(st) + (size_t)m * block;
}

/* This rank's slice to every rail peer, block `node`. */
static int put_slice(struct layer_state *st)
{
	size_t S = (size_t)st->sl.max_slice, H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk;
	size_t n = (size_t)ep_slice_len(&st->sl, st->me), at = (size_t)(st->me % st->P) * S;
	size_t block = S * (2 * H + 12 * K), base = (size_t)st->node * block;
	struct ep_transport *t = &st->net.net;
	int rc = 0;
	for (int m = 0; !rc && m < st->W / st->P; m++) {
		if (m == st->node)
			continue;
		int q = rail(st, m);
		st->net_bytes[LAYER_OP_WORLD_GATHER][m] = n * (H * 2 + K * 12);
		if ((n && ((rc = ep_transport_put(t, q, st->area.ag_x + at * H, st->net_recv_id, base, n * H * 2)) ||
			   (rc = ep_transport_put(t, q, st->area.ag_idx + at * K, st->net_recv_id, base + S * H * 2, n * K * 8)) ||
			   (rc = ep_transport_put(t, q, st->area.ag_w + at * K, st->net_recv_id, base + S * (H * 2 + K * 8), n * K * 4)))) ||
		    (rc = ep_transport_signal(t, q)))
			return layer_net_fail(st, rc, "putting the slice to a rail peer");
	}
	return 0;
}

/* The W slices in world order, from the node's slots and the receive regions. */
static void copy_slices(struct layer_state *st)
{
	size_t S = (size_t)st->sl.max_slice, H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk;
	size_t block = S * (2 * H + 12 * K), at = 0;
	for (int r = 0; r < st->W; r++) {
		size_t n = (size_t)ep_slice_len(&st->sl, r), l = (size_t)(r % st->P);
		const uint16_t *x = st->area.ag_x + l * S * H;
		const int64_t *idx = st->area.ag_idx + l * S * K;
		const float *w = st->area.ag_w + l * S * K;
		if (r / st->P != st->node) {
			char *b = layer_net_recv_block(st, (int)l, r / st->P, block);
			x = (const uint16_t *)b, idx = (const int64_t *)(b + S * H * 2), w = (const float *)(b + S * (H * 2 + K * 8));
		}
		memcpy((uint16_t *)st->gx + at * H, x, n * H * 2);
		memcpy(st->gidx + at * K, idx, n * K * 8);
		memcpy(st->gw + at * K, w, n * K * 4);
		at += n;
	}
	st->grows = at;
}

int layer_net_world_gather(struct layer_state *st)
{
	int64_t t0 = ep_now_ns(), arrival[EP_MAX_NODES] = {0};
	int rc, N = st->W / st->P;
	ep_set_phase(st->env->waiter, "world_gather");
	if ((rc = layer_net_ready(st, 0, N)) || /* ready: the peers' nodes read the last contents */
	    (rc = put_slice(st)) || (rc = layer_net_wait_data(st, 0, N, t0, arrival)) || (rc = ep_barrier(st->env->waiter)))
		return rc;
	ep_endpoint_arrived(&st->net, LAYER_OP_WORLD_GATHER, arrival);
	copy_slices(st);
	rc = ep_barrier(st->env->waiter);
	st->stage = rc ? STAGE_NONE : STAGE_GATHERED;
	return rc;
}

/* This rank's partial rows of node m's slices to its rail peer there. */
static int put_partials(struct layer_state *st)
{
	size_t H = (size_t)st->eshape.hidden, block = (size_t)st->P * (size_t)st->sl.max_slice * H * 2;
	const uint16_t *mine = layer_partials(st, st->me);
	for (int m = 0; m < st->W / st->P; m++) {
		if (m == st->node)
			continue;
		size_t first = rows_before(st, m * st->P), rows = rows_before(st, (m + 1) * st->P) - first;
		int q = rail(st, m), rc;
		st->net_bytes[LAYER_OP_WORLD_REDUCE][m] = rows * H * 2;
		if ((rows && (rc = ep_transport_put(&st->net.net, q, mine + first * H, st->net_recv_id,
						    (size_t)st->node * block, rows * H * 2))) ||
		    (rc = ep_transport_signal(&st->net.net, q)))
			return layer_net_fail(st, rc, "putting partial rows to a rail peer");
	}
	return 0;
}

int layer_net_world_reduce(struct layer_state *st)
{
	size_t H = (size_t)st->eshape.hidden, block = (size_t)st->P * (size_t)st->sl.max_slice * H * 2;
	size_t mine = rows_before(st, st->me), node_first = rows_before(st, st->node * st->P);
	const uint16_t *parts[st->W];
	int64_t t0 = ep_now_ns(), arrival[EP_MAX_NODES] = {0};
	int rc, N = st->W / st->P;
	ep_set_phase(st->env->waiter, "world_reduce");
	if ((rc = layer_net_ready(st, 0, N)) || (rc = put_partials(st)) || (rc = layer_net_wait_data(st, 0, N, t0, arrival)))
		return rc;
	ep_endpoint_arrived(&st->net, LAYER_OP_WORLD_REDUCE, arrival);
	for (int q = 0; q < st->W; q++) /* world rank q's partials of this rank's rows */
		parts[q] = q / st->P == st->node
			? layer_partials(st, q) + mine * H
			: (const uint16_t *)layer_net_recv_block(st, q % st->P, q / st->P, block) + (mine - node_first) * H;
	rc = ep_group_reduce(st->env->waiter, parts, st->W, 0, (size_t)ep_slice_len(&st->sl, st->me), H,
			     layer_combined(st, st->me));
	st->stage = rc ? STAGE_NONE : STAGE_COMBINED;
	return rc;
}

/* This rank's combined rows to the rail peers of nodes [first, first + count), block `node`. */
static int put_combined(struct layer_state *st, int first, int count)
{
	size_t H = (size_t)st->eshape.hidden, block = (size_t)st->sl.max_slice * H * 2;
	size_t n = (size_t)ep_slice_len(&st->sl, st->me);
	for (int m = first; m < first + count; m++) {
		if (m == st->node)
			continue;
		int q = rail(st, m), rc;
		st->net_bytes[LAYER_OP_ATTN_GATHER][m] = n * H * 2;
		if ((n && (rc = ep_transport_put(&st->net.net, q, layer_combined(st, st->me), st->net_recv_id,
						 (size_t)st->node * block, n * H * 2))) ||
		    (rc = ep_transport_signal(&st->net.net, q)))
			return layer_net_fail(st, rc, "putting combined rows to a rail peer");
	}
	return 0;
}

/* The attention-TP group holds nodes [d tp / P, (d + 1) tp / P): each rank
 * puts its combined rows to its rail peers there, then copies the group's
 * tp slices in rank order, its node's from their slots. */
int layer_net_attn_gather(struct layer_state *st)
{
	size_t H = (size_t)st->eshape.hidden, block = (size_t)st->sl.max_slice * H * 2, at = 0;
	int64_t t0 = ep_now_ns(), arrival[EP_MAX_NODES] = {0};
	int rc, count = st->tp / st->P, first = st->d * count;
	ep_set_phase(st->env->waiter, "attn_tp_gather");
	if ((rc = layer_net_ready(st, first, count)) || (rc = put_combined(st, first, count)) ||
	    (rc = layer_net_wait_data(st, first, count, t0, arrival)) || (rc = ep_barrier(st->env->waiter)))
		return rc;
	ep_endpoint_arrived(&st->net, LAYER_OP_ATTN_GATHER, arrival);
	for (int r = st->d * st->tp; r < (st->d + 1) * st->tp; r++) {
		size_t n = (size_t)ep_slice_len(&st->sl, r);
		const void *from = r / st->P == st->node ? (const void *)layer_combined(st, r)
							 : (const void *)layer_net_recv_block(st, r % st->P, r / st->P, block);
		memcpy(st->attn.out + at * H, from, n * H * 2);
		at += n;
	}
	return ep_barrier(st->env->waiter);
}
