/* ascend_net.c - the network half of Ascend's dispatch/combine: counts, rows and slots to the ranks of other nodes.
 *
 * MC2 is a direct full mesh (no node forwarding): every rank of another
 * node is a transport peer. A peer's area has the layout of this rank's
 * (ascend.c), registered as region ASCEND_NET_AREA, so a put names the
 * byte offset the data would have in this rank's own area. Every
 * collective send (counts, rows, slots, barrier) ends with exactly one
 * signal to each remote rank, so a rank waits for `net_sends` signals from
 * each: the count of its own sends so far. Put sources are in this rank's
 * staging area and stay unchanged until the signal after them returns.
 */
#include "collectives/ascend_int.h"

#include <stdatomic.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/sync.h"
#include "collectives/traffic.h"
#include "collectives/transport/transport.h"

int ep_ascend_attach_net(struct ep_ascend *ctx, struct ep_transport *net)
{
	struct ascend_area a = ep_ascend_area(ctx, ctx->rank);
	if (ctx->P >= ctx->p.num_ranks)
		return 0; /* one host: nothing to reach */
	if (ctx->p.num_ranks / ctx->P > EP_ASCEND_MAX_NODES)
		return -EINVAL;
	ctx->net = net;
	return ep_transport_reg_mem(net, ASCEND_NET_AREA, a.base, a.bytes);
}

void ep_ascend_net_group(struct ep_ascend *ctx, int stride, int base)
{
	ctx->peer_stride = stride;
	ctx->peer_base = base;
}

/* EP rank q's transport peer: its world rank. */
static int peer(const struct ep_ascend *ctx, int q)
{
	return q * ctx->peer_stride + ctx->peer_base;
}

void ep_ascend_net_ledger(struct ep_ascend *ctx, uint32_t *ledger)
{
	ctx->ledger = ledger;
}

int ep_ascend_peers(const struct ep_ascend *ctx, int *peers)
{
	int n = 0;
	for (int q = 0; ctx->net && q < ctx->p.num_ranks; q++)
		if (!ascend_is_local(ctx, q))
			peers[n++] = peer(ctx, q);
	return n;
}

/* A transport failure: one line naming this rank, its node, its phase and the transport's account (the peer). */
static int net_fail(struct ep_ascend *ctx, int rc)
{
	struct ep_waiter *w = ctx->waiter;
	ep_sync_fail(w, rc, "rank %d (node %d) in phase %s: %s", peer(ctx, ctx->rank), ctx->node,
		     atomic_load(&w->sync->ctl[w->rank].phase), ctx->net->error);
	return rc;
}

int ep_ascend_net_signal(struct ep_ascend *ctx)
{
	int R = ctx->p.num_ranks;
	for (int i = 1; ctx->net && i < R; i++) {
		int q = (ctx->rank + i) % R, rc;
		if (ascend_is_local(ctx, q))
			continue;
		if ((rc = ep_transport_signal(ctx->net, peer(ctx, q))))
			return net_fail(ctx, rc);
		if (ctx->ledger)
			ctx->ledger[peer(ctx, q)]++;
	}
	ctx->net_sends++;
	return 0;
}

void ep_ascend_net_start(struct ep_ascend *ctx)
{
	ctx->start_ns = ep_now_ns();
	memset(ctx->arrival_ns, 0, sizeof(ctx->arrival_ns));
}

int ep_ascend_net_wait(struct ep_ascend *ctx, int record)
{
	int R = ctx->p.num_ranks;
	for (int i = 1; ctx->net && i < R; i++) {
		int q = (ctx->rank + i) % R;
		if (ascend_is_local(ctx, q))
			continue;
		int64_t t0 = ep_now_ns();
		ep_traffic_waits(ctx->waiter->traffic, peer(ctx, ctx->rank), peer(ctx, q)); /* for the state block */
		int rc = ep_transport_wait(ctx->net, peer(ctx, q), ctx->ledger ? ctx->ledger[peer(ctx, q)] : ctx->net_sends);
		ctx->waiter->wait_ns += ep_now_ns() - t0;
		if (rc)
			return net_fail(ctx, rc);
		ep_traffic_waits(ctx->waiter->traffic, peer(ctx, ctx->rank), -1);
		int64_t t = ep_now_ns() - ctx->start_ns;
		if (record && t > ctx->arrival_ns[q / ctx->P])
			ctx->arrival_ns[q / ctx->P] = t;
	}
	return 0;
}

int ep_ascend_barrier(struct ep_ascend *ctx)
{
	int rc = ep_barrier(ctx->waiter);
	if (rc || (rc = ep_ascend_net_signal(ctx)))
		return rc;
	return ep_ascend_net_wait(ctx, 0);
}

int ep_ascend_exchange(struct ep_ascend *ctx)
{
	int rc = ep_ascend_net_signal(ctx);
	return rc ? rc : ep_ascend_net_wait(ctx, 0);
}

/* One put from this rank's area (src inside it) to the same kind of place in q's, counted for the figures. */
static int put(struct ep_ascend *ctx, int q, const void *src, size_t off, size_t len, int op)
{
	int rc = ep_transport_put(ctx->net, peer(ctx, q), src, ASCEND_NET_AREA, off, len);
	if (rc)
		return net_fail(ctx, rc);
	ctx->net_bytes[op][q / ctx->P] += len;
	return 0;
}

int ep_ascend_net_counts(struct ep_ascend *ctx)
{
	if (!ctx->net)
		return 0;
	struct ascend_area a = ep_ascend_area(ctx, ctx->rank);
	size_t row = (size_t)(ctx->p.num_experts + 2) * sizeof(int32_t);
	size_t off = (size_t)((uint8_t *)a.net_counts - a.base) + (size_t)ctx->rank * row;
	int R = ctx->p.num_ranks, rc;
	memset(ctx->net_bytes[0], 0, sizeof(ctx->net_bytes[0]));
	for (int i = 1; i < R; i++) {
		int q = (ctx->rank + i) % R;
		if (!ascend_is_local(ctx, q) && (rc = put(ctx, q, a.stage_counts, off, row, 0)))
			return rc;
	}
	return ep_ascend_net_signal(ctx);
}

/* Rows [from, from + n) of staging to rows [to, to + n) of q: x, scales (quant), assist. */
static int put_block(struct ep_ascend *ctx, int q, int32_t from, int32_t to, int32_t n)
{
	if (n <= 0)
		return 0;
	struct ascend_area a = ep_ascend_area(ctx, ctx->rank);
	size_t rb = ep_ascend_row_bytes(&ctx->p), f = (size_t)from, t = (size_t)to, m = (size_t)n;
	size_t x = (size_t)(a.x - a.base), sc = (size_t)((uint8_t *)a.scales - a.base);
	size_t as = (size_t)((uint8_t *)a.assist - a.base);
	int rc = put(ctx, q, a.stage_x + f * rb, x + t * rb, m * rb, 0);
	if (!rc && ctx->p.quant)
		rc = put(ctx, q, a.stage_scales + f, sc + t * sizeof(float), m * sizeof(float), 0);
	if (!rc)
		rc = put(ctx, q, a.stage_assist + 3 * f, as + 3 * t * sizeof(int32_t), 3 * m * sizeof(int32_t), 0);
	return rc;
}

/* This rank's blocks for remote rank q: one per local expert of a routed
 * rank (rows of (expert, this source) are contiguous there), or the T rows
 * of the shared expert q hosts for this rank's replica class. */
static int send_to(struct ep_ascend *ctx, int q, const int32_t *stage_row, int T)
{
	const struct ep_ascend_params *p = &ctx->p;
	int E = p->num_experts, Sr = p->shared_ranks, L = ep_ascend_local_experts(p), rc = 0;
	if (q >= Sr) {
		const int32_t *mine = ep_ascend_area(ctx, ctx->rank).stage_counts; /* this rank's counts row */
		for (int e = (q - Sr) * L; e < (q - Sr + 1) * L && !rc; e++)
			rc = put_block(ctx, q, stage_row[e] - mine[e], ctx->next_row[e] - mine[e], mine[e]);
		return rc;
	}
	int rpse = Sr / p->shared_experts;
	if (q % rpse != ctx->rank % rpse)
		return 0;
	int j = q / rpse;
	return put_block(ctx, q, stage_row[E + j] - T, ctx->next_row[E] - T, T);
}

int ep_ascend_net_send_rows(struct ep_ascend *ctx, const int32_t *stage_row, int num_tokens)
{
	int R = ctx->p.num_ranks, rc;
	for (int i = 1; ctx->net && i < R; i++) {
		int q = (ctx->rank + i) % R;
		if (!ascend_is_local(ctx, q) && (rc = send_to(ctx, q, stage_row, num_tokens)))
			return rc;
	}
	return ep_ascend_net_signal(ctx);
}

int ep_ascend_net_put_slot(struct ep_ascend *ctx, int s, const uint8_t *row, int t, int slot)
{
	size_t H = (size_t)ctx->p.hidden, len = ctx->p.comm_quant ? H + 2 * H / 8 : 2 * H;
	return put(ctx, s, row, ep_ascend_landing_offset(ctx, t, slot), len, 1);
}
