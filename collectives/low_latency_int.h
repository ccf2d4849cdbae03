/* low_latency_int.h - what low_latency.c and low_latency_net.c share; not for callers.
 *
 * The rank-region accessors (local ranks of the node, by local index), the
 * view of one source's messages for one expert, and the network half's
 * entry points: each one returns at once (0) on a single node.
 */
#ifndef EP_LOW_LATENCY_INT_H
#define EP_LOW_LATENCY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/low_latency.h"

#define LL_LINE 128

/* Transport regions every rank registers (same ids and lengths everywhere). */
enum { LL_NET_AREAS, LL_NET_COMBINE };

enum { LL_SIG_DISP_SENT, LL_SIG_DISP_RECVD, LL_SIG_COMB_SENT, LL_SIG_COMB_RECVD, LL_NUM_SIGNALS };

/* One flag per cache line, so peers polling one flag do not disturb another. */
struct ll_signal {
	struct ep_flag flag;
} __attribute__((aligned(LL_LINE)));

/* The region of local rank l (of this node). */
static inline char *ll_region(const struct ep_ll *ctx, int l)
{
	return ctx->arena + (size_t)l * ctx->rank_bytes;
}

static inline struct ep_flag *ll_signal_of(const struct ep_ll *ctx, int l, int which)
{
	return &((struct ll_signal *)ll_region(ctx, l))[which].flag;
}

/* Send area pieces of local rank l for a dispatch call number. */
struct ll_send_area {
	int32_t *counts;   /* [E] */
	int32_t *lists;    /* [E][N] */
	char *rows;        /* [N][msg] */
};

static inline struct ll_send_area ll_send_area_of(const struct ep_ll *ctx, int l, uint32_t call)
{
	char *a = ll_region(ctx, l) + ctx->off.send[call & 1];
	return (struct ll_send_area){(int32_t *)a, (int32_t *)(a + ctx->off.lists),
				     a + ctx->off.rows};
}

/* Local rank l's combine area: bf16 [L][R*N][H]. */
static inline uint16_t *ll_combine_area(const struct ep_ll *ctx, int l)
{
	return (uint16_t *)(ll_region(ctx, l) + ctx->off.combine);
}

/* Group rank q's world rank: its transport peer id and its name in messages. */
static inline int ll_world(const struct ep_ll *ctx, int q)
{
	return q * ctx->stride + ctx->base;
}

/* The waiter's rank of this node's local (group) rank l: l * stride + base,
 * taken modulo the node's ranks (a MoE-TP group of whole nodes, stride a
 * multiple of them: one group rank per node, the waiter's rank base % P). */
static inline int ll_waiter_rank(const struct ep_ll *ctx, int l)
{
	int v = l * ctx->stride + ctx->base, n = ctx->waiter->sync->num_ranks;
	return n > 0 ? v % n : v;
}

static inline int ll_is_local(const struct ep_ll *ctx, int q)
{
	return q / ctx->cfg.ranks_per_node == ctx->node;
}

/* Where source s's messages for one local expert are: its list of source
 * tokens and the message of entry i, in its send area (same node) or in the
 * block it sent (another node). */
struct ll_source {
	const int32_t *list;
	const char *rows;
	size_t stride;
	int by_token;  /* message of entry i: rows + list[i] * stride, else rows + i * stride */
	int32_t n;
};

/* low_latency.c: a timeout on a node-local wait, told with world ranks (l: the waiter's rank waited for). */
void ep_ll_name_globally(struct ep_ll *ctx, int l);

/* low_latency_net.c: the network half. Failures are recorded in the rank's
 * control block, naming this rank, its node, its phase and the peer. */

/* Resets f at the start of a send phase (across nodes only). */
void ep_ll_net_start(const struct ep_ll *ctx, struct ep_ll_figures *f);
/* dispatch.send: one block per remote rank (put + signal); also fills
 * ctx->net_first. */
int ep_ll_net_send_blocks(struct ep_ll *ctx, const struct ll_send_area *a, uint32_t call);
/* combine.send: the rows of each remote token owner's tokens, then a signal. */
int ep_ll_net_send_combine(struct ep_ll *ctx, uint32_t call);
/* Blocks until every remote rank has signalled target times; notes
 * arrivals in f (NULL: none). */
int ep_ll_net_wait(struct ep_ll *ctx, uint32_t target, struct ep_ll_figures *f);
/* Remote source s's messages for local expert e in dispatch `call`. */
struct ll_source ep_ll_net_source(const struct ep_ll *ctx, int e, int s, uint32_t call);
/* Where remote owner o's output for global expert g, list entry slot, landed. */
const uint16_t *ep_ll_net_expert_row(const struct ep_ll *ctx, int64_t g, int32_t slot);

#endif
