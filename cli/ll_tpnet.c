/* ll_tpnet.c - the low-latency layer's MoE-TP gather and reduce across nodes (cli/ll_tpnet.h). */
#include "cli/ll_tpnet.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/ep.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"

static size_t al(size_t n)
{
	return ep_align_up(n, 64);
}

static size_t L_of(const struct ep_lltpnet *n)
{
	return (size_t)(n->cfg.num_experts / n->cfg.num_ranks);
}

static size_t RN_of(const struct ep_lltpnet *n)
{
	return (size_t)n->cfg.num_ranks * (size_t)n->cfg.max_tokens;
}

/* Offsets inside a gather block: counts, layout ranges, x, src_info, scales. */
static size_t layout_at(const struct ep_lltpnet *n)
{
	return al(4 * L_of(n));
}

static size_t x_at(const struct ep_lltpnet *n)
{
	return layout_at(n) + al(8 * L_of(n) * (size_t)n->cfg.num_ranks);
}

static size_t src_at(const struct ep_lltpnet *n)
{
	return x_at(n) + al(n->cap * ep_ll_row_bytes(&n->cfg));
}

static size_t scales_at(const struct ep_lltpnet *n)
{
	return src_at(n) + al(4 * n->cap);
}

/* Region offsets: send (a block, then [moe_tp] partial slots), gather blocks, reduce slots. */
static size_t send_part_at(const struct ep_lltpnet *n, int o)
{
	return n->gblock + (size_t)o * n->slot;
}

static size_t gather_at(const struct ep_lltpnet *n, int p)
{
	return send_part_at(n, n->moe_tp) + (size_t)p * n->gblock;
}

static size_t reduce_at(const struct ep_lltpnet *n, int p)
{
	return gather_at(n, n->moe_tp) + (size_t)p * n->slot;
}

static int world(const struct ep_lltpnet *n, int p)
{
	return n->q * n->moe_tp + p;
}

int ep_lltpnet_remote(const struct ep_lltpnet *n, int p)
{
	return world(n, p) / n->P != n->me / n->P;
}

int ep_lltpnet_init(struct ep_lltpnet *n, struct ep_transport *t, struct ep_waiter *w, const struct ep_ll_config *cfg,
		    int me, int moe_tp, int P, size_t cap)
{
	*n = (struct ep_lltpnet){.t = t, .waiter = w, .cfg = *cfg, .me = me, .moe_tp = moe_tp, .P = P, .q = me / moe_tp,
				 .g = me % moe_tp, .cap = cap};
	n->gblock = scales_at(n) + al(4 * cap * (size_t)ep_ll_scale_cols(cfg));
	n->slot = al(cap * (size_t)cfg->hidden * 2);
	n->bytes = ep_align_up(reduce_at(n, moe_tp), EP_PAGE);
	if (!(n->sent = calloc((size_t)moe_tp, sizeof(uint32_t))))
		return -ENOMEM;
	if (posix_memalign((void **)&n->region, EP_PAGE, n->bytes))
		return n->region = NULL, -ENOMEM;
	memset(n->region, 0, n->bytes);
	return ep_transport_reg_mem(t, EP_LLTPNET_REGION, n->region, n->bytes);
}

int ep_lltpnet_peers(const struct ep_lltpnet *n, int *peers)
{
	int k = 0;
	for (int p = 0; p < n->moe_tp; p++)
		if (ep_lltpnet_remote(n, p))
			peers[k++] = world(n, p);
	return k;
}

/* A transport failure: one line naming this rank, its node, its phase and the transport's account (the peer). */
static int net_fail(struct ep_lltpnet *n, int rc)
{
	struct ep_waiter *w = n->waiter;
	ep_sync_fail(w, rc, "rank %d (node %d) in phase %s: %s", n->me, n->me / n->P,
		     atomic_load(&w->sync->ctl[w->rank].phase), n->t->error);
	return rc;
}

/* One signal to every remote member, then theirs awaited; arrival (if
 * not NULL) records when each node's last signal came, from t0. */
static int round_trip(struct ep_lltpnet *n, int64_t t0, int64_t *arrival)
{
	int rc;
	for (int i = 1; i < n->moe_tp; i++) {
		int p = (n->g + i) % n->moe_tp;
		if (!ep_lltpnet_remote(n, p))
			continue;
		if ((rc = ep_transport_signal(n->t, world(n, p))))
			return net_fail(n, rc);
		n->sent[p]++;
	}
	for (int i = 1; i < n->moe_tp; i++) {
		int p = (n->g + i) % n->moe_tp, m = world(n, p) / n->P;
		if (!ep_lltpnet_remote(n, p))
			continue;
		int64_t w0 = ep_now_ns();
		rc = ep_transport_wait(n->t, world(n, p), n->sent[p]);
		n->waiter->wait_ns += ep_now_ns() - w0;
		if (rc)
			return net_fail(n, rc);
		if (arrival && m < EP_MAX_NODES && ep_now_ns() - t0 > arrival[m])
			arrival[m] = ep_now_ns() - t0;
	}
	return 0;
}

int ep_lltpnet_meet(struct ep_lltpnet *n)
{
	return round_trip(n, 0, NULL);
}

static int put(struct ep_lltpnet *n, int p, size_t from, size_t to, size_t len, int op)
{
	int rc = len ? ep_transport_put(n->t, world(n, p), n->region + from, EP_LLTPNET_REGION, to, len) : 0;
	if (rc)
		return net_fail(n, rc);
	if (world(n, p) / n->P < EP_MAX_NODES)
		n->net_bytes[op][world(n, p) / n->P] += len;
	return 0;
}

/* Valid rows of expert e from a count (a damaged one never reads past the layout or the block). */
static size_t valid(const struct ep_lltpnet *n, int32_t count, size_t so_far)
{
	size_t c = count < 0 ? 0 : (size_t)count > RN_of(n) ? RN_of(n) : (size_t)count;
	return so_far + c > n->cap ? n->cap - so_far : c;
}

/* Copies the packed rows of a DeepEP layout to (pack) or from (!pack) block b. */
static size_t pack_rows(const struct ep_lltpnet *n, uint8_t *b, const struct ep_ll_dispatch_out *o, int pack)
{
	size_t L = L_of(n), RN = RN_of(n), row = ep_ll_row_bytes(&n->cfg), S = (size_t)ep_ll_scale_cols(&n->cfg), at = 0;
	const int32_t *counts = pack ? o->packed_recv_count : (const int32_t *)b;
	for (size_t e = 0; e < L; e++) {
		size_t k = valid(n, counts[e], at);
		char *x = (char *)o->packed_recv_x + e * RN * row;
		int32_t *src = o->packed_recv_src_info + e * RN;
		if (pack)
			memcpy(b + x_at(n) + at * row, x, k * row), memcpy(b + src_at(n) + at * 4, src, k * 4);
		else
			memcpy(x, b + x_at(n) + at * row, k * row), memcpy(src, b + src_at(n) + at * 4, k * 4);
		for (size_t r = 0; r < k; r++)
			for (size_t s = 0; s < S; s++) {
				uint8_t *packed = b + scales_at(n) + ((at + r) * S + s) * 4;
				uint8_t *laid = (uint8_t *)o->packed_recv_x_scales + ((e * S + s) * RN + r) * 4;
				memcpy(pack ? packed : laid, pack ? laid : packed, 4);
			}
		at += k;
	}
	return at;
}

int ep_lltpnet_gather(struct ep_lltpnet *n, const struct ep_ll_dispatch_out *own)
{
	int64_t t0 = ep_now_ns();
	size_t L = L_of(n), row = ep_ll_row_bytes(&n->cfg), S = (size_t)ep_ll_scale_cols(&n->cfg);
	int rc;
	memset(n->net_bytes[EP_LLTPNET_GATHER], 0, sizeof(n->net_bytes[EP_LLTPNET_GATHER]));
	memset(n->arrival[EP_LLTPNET_GATHER], 0, sizeof(n->arrival[EP_LLTPNET_GATHER]));
	if ((rc = round_trip(n, t0, NULL))) /* ready: every remote member has read its gather blocks */
		return rc;
	memcpy(n->region, own->packed_recv_count, 4 * L);
	memcpy(n->region + layout_at(n), own->packed_recv_layout_range, 8 * L * (size_t)n->cfg.num_ranks);
	size_t rows = pack_rows(n, n->region, own, 1);
	for (int i = 1; i < n->moe_tp; i++) {
		int p = (n->g + i) % n->moe_tp;
		size_t to = gather_at(n, n->g);
		if (!ep_lltpnet_remote(n, p))
			continue;
		if ((rc = put(n, p, 0, to, x_at(n), EP_LLTPNET_GATHER)) ||
		    (rc = put(n, p, x_at(n), to + x_at(n), rows * row, EP_LLTPNET_GATHER)) ||
		    (rc = put(n, p, src_at(n), to + src_at(n), rows * 4, EP_LLTPNET_GATHER)) ||
		    (rc = put(n, p, scales_at(n), to + scales_at(n), rows * S * 4, EP_LLTPNET_GATHER)))
			return rc;
	}
	return round_trip(n, t0, n->arrival[EP_LLTPNET_GATHER]);
}

void ep_lltpnet_block(const struct ep_lltpnet *n, int p, struct ep_ll_dispatch_out *dst)
{
	uint8_t *b = n->region + gather_at(n, p);
	size_t L = L_of(n);
	memcpy(dst->packed_recv_count, b, 4 * L);
	memcpy(dst->packed_recv_layout_range, b + layout_at(n), 8 * L * (size_t)n->cfg.num_ranks);
	pack_rows(n, b, dst, 0);
}

int ep_lltpnet_reduce(struct ep_lltpnet *n, const uint16_t *const *part, const size_t *rows)
{
	int64_t t0 = ep_now_ns();
	size_t rb = 2 * (size_t)n->cfg.hidden;
	int rc;
	memset(n->net_bytes[EP_LLTPNET_REDUCE], 0, sizeof(n->net_bytes[EP_LLTPNET_REDUCE]));
	memset(n->arrival[EP_LLTPNET_REDUCE], 0, sizeof(n->arrival[EP_LLTPNET_REDUCE]));
	if ((rc = round_trip(n, t0, NULL))) /* ready: every remote owner has summed its last slots */
		return rc;
	for (int i = 1; i < n->moe_tp; i++) {
		int o = (n->g + i) % n->moe_tp;
		size_t k = rows[o] < n->cap ? rows[o] : n->cap;
		if (!ep_lltpnet_remote(n, o))
			continue;
		memcpy(n->region + send_part_at(n, o), part[o], k * rb);
		if ((rc = put(n, o, send_part_at(n, o), reduce_at(n, n->g), k * rb, EP_LLTPNET_REDUCE)))
			return rc;
	}
	return round_trip(n, t0, n->arrival[EP_LLTPNET_REDUCE]);
}

const uint16_t *ep_lltpnet_partials(const struct ep_lltpnet *n, int p)
{
	return (const uint16_t *)(n->region + reduce_at(n, p));
}

void ep_lltpnet_fini(struct ep_lltpnet *n)
{
	free(n->region);
	free(n->sent);
	n->region = NULL, n->sent = NULL;
}
