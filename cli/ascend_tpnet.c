/* ascend_tpnet.c - Ascend's MoE-TP gather and reduce across nodes (cli/ascend_tpnet.h). */
#include "cli/ascend_tpnet.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/ep.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"

enum { GATHER = 0, REDUCE = 1 };

static size_t al(size_t n)
{
	return ep_align_up(n, 64);
}

/* Offsets inside a gather block: rows, counts, x, scales. */
static size_t counts_at(void)
{
	return 64;
}

static size_t x_at(const struct ep_atpnet *n)
{
	return counts_at() + al(4 * n->RL);
}

static size_t scales_at(const struct ep_atpnet *n)
{
	return x_at(n) + al(n->A * n->row);
}

/* Region offsets: send (a block, then partials), gather blocks, reduce slots. */
static size_t gather_at(const struct ep_atpnet *n, int p)
{
	return n->gblock + (size_t)n->moe_tp * n->slot + (size_t)p * n->gblock;
}

static size_t reduce_at(const struct ep_atpnet *n, int p)
{
	return gather_at(n, n->moe_tp) + (size_t)p * n->slot;
}

static int world(const struct ep_atpnet *n, int p)
{
	return n->q * n->moe_tp + p;
}

int ep_atpnet_remote(const struct ep_atpnet *n, int p)
{
	return world(n, p) / n->P != n->me / n->P;
}

int ep_atpnet_init(struct ep_atpnet *n, struct ep_transport *t, struct ep_waiter *w, uint32_t *ledger, int me,
		   int moe_tp, int P, size_t A, size_t row, size_t RL, size_t H, int quant)
{
	*n = (struct ep_atpnet){.t = t, .waiter = w, .ledger = ledger, .me = me, .moe_tp = moe_tp, .P = P, .q = me / moe_tp,
				.g = me % moe_tp, .A = A, .row = row, .RL = RL, .H = H, .quant = quant};
	n->gblock = scales_at(n) + al(4 * A);
	n->slot = al(A * H * 2);
	n->bytes = ep_align_up(reduce_at(n, moe_tp), EP_PAGE);
	if (posix_memalign((void **)&n->region, EP_PAGE, n->bytes))
		return n->region = NULL, -ENOMEM;
	memset(n->region, 0, n->bytes);
	return ep_transport_reg_mem(t, EP_ATPNET_REGION, n->region, n->bytes);
}

int ep_atpnet_peers(const struct ep_atpnet *n, int *peers)
{
	int k = 0;
	for (int p = 0; p < n->moe_tp; p++)
		if (ep_atpnet_remote(n, p))
			peers[k++] = world(n, p);
	return k;
}

/* A transport failure: one line naming this rank, its node, its phase and the transport's account (the peer). */
static int net_fail(struct ep_atpnet *n, int rc)
{
	struct ep_waiter *w = n->waiter;
	ep_sync_fail(w, rc, "rank %d (node %d) in phase %s: %s", n->me, n->me / n->P,
		     atomic_load(&w->sync->ctl[w->rank].phase), n->t->error);
	return rc;
}

/* One signal to every remote member, then theirs awaited; arrival (if
 * not NULL) records when each node's last signal came, from t0. */
static int round_trip(struct ep_atpnet *n, int64_t t0, int64_t *arrival)
{
	int rc;
	for (int i = 1; i < n->moe_tp; i++) {
		int p = (n->g + i) % n->moe_tp;
		if (!ep_atpnet_remote(n, p))
			continue;
		if ((rc = ep_transport_signal(n->t, world(n, p))))
			return net_fail(n, rc);
		n->ledger[world(n, p)]++;
	}
	for (int i = 1; i < n->moe_tp; i++) {
		int p = (n->g + i) % n->moe_tp, m = world(n, p) / n->P;
		if (!ep_atpnet_remote(n, p))
			continue;
		int64_t w0 = ep_now_ns();
		rc = ep_transport_wait(n->t, world(n, p), n->ledger[world(n, p)]);
		n->waiter->wait_ns += ep_now_ns() - w0;
		if (rc)
			return net_fail(n, rc);
		if (arrival && ep_now_ns() - t0 > arrival[m])
			arrival[m] = ep_now_ns() - t0;
	}
	return 0;
}

static int put(struct ep_atpnet *n, int p, size_t from, size_t to, size_t len, int op)
{
	int rc = len ? ep_transport_put(n->t, world(n, p), n->region + from, EP_ATPNET_REGION, to, len) : 0;
	if (rc)
		return net_fail(n, rc);
	n->net_bytes[op][world(n, p) / n->P] += len;
	return 0;
}

int ep_atpnet_gather(struct ep_atpnet *n, size_t rows, const void *x, const float *scales, const int32_t *counts)
{
	int64_t t0 = ep_now_ns();
	int rc;
	rows = rows < n->A ? rows : n->A;
	memset(n->net_bytes[GATHER], 0, sizeof(n->net_bytes[GATHER]));
	memset(n->arrival[GATHER], 0, sizeof(n->arrival[GATHER]));
	if ((rc = round_trip(n, t0, NULL))) /* ready: every remote member has read its gather blocks */
		return rc;
	*(uint64_t *)n->region = rows;
	memcpy(n->region + counts_at(), counts, 4 * n->RL);
	memcpy(n->region + x_at(n), x, rows * n->row);
	if (n->quant)
		memcpy(n->region + scales_at(n), scales, 4 * rows);
	for (int i = 1; i < n->moe_tp; i++) {
		int p = (n->g + i) % n->moe_tp;
		size_t to = gather_at(n, n->g);
		if (!ep_atpnet_remote(n, p))
			continue;
		if ((rc = put(n, p, 0, to, x_at(n), GATHER)) || (rc = put(n, p, x_at(n), to + x_at(n), rows * n->row, GATHER)) ||
		    (n->quant && (rc = put(n, p, scales_at(n), to + scales_at(n), 4 * rows, GATHER))))
			return rc;
	}
	return round_trip(n, t0, n->arrival[GATHER]);
}

struct ep_atpnet_block ep_atpnet_block(const struct ep_atpnet *n, int p)
{
	const uint8_t *b = n->region + gather_at(n, p);
	uint64_t rows = *(const uint64_t *)b;
	return (struct ep_atpnet_block){rows, b + x_at(n), (const float *)(b + scales_at(n)),
					(const int32_t *)(b + counts_at())};
}

int ep_atpnet_reduce(struct ep_atpnet *n, const uint16_t *partials, const size_t *first, const size_t *rows_of)
{
	int64_t t0 = ep_now_ns();
	size_t total = 0, rb = 2 * n->H;
	int rc;
	for (int p = 0; p < n->moe_tp; p++)
		total += rows_of[p];
	memset(n->net_bytes[REDUCE], 0, sizeof(n->net_bytes[REDUCE]));
	memset(n->arrival[REDUCE], 0, sizeof(n->arrival[REDUCE]));
	if ((rc = round_trip(n, t0, NULL))) /* ready: every remote owner has summed its last slots */
		return rc;
	memcpy(n->region + n->gblock, partials, total * rb);
	for (int i = 1; i < n->moe_tp; i++) {
		int o = (n->g + i) % n->moe_tp;
		if (ep_atpnet_remote(n, o) &&
		    (rc = put(n, o, n->gblock + first[o] * rb, reduce_at(n, n->g), rows_of[o] * rb, REDUCE)))
			return rc;
	}
	return round_trip(n, t0, n->arrival[REDUCE]);
}

const uint16_t *ep_atpnet_partials(const struct ep_atpnet *n, int p)
{
	return (const uint16_t *)(n->region + reduce_at(n, p));
}

void ep_atpnet_fini(struct ep_atpnet *n)
{
	free(n->region);
	n->region = NULL;
}
