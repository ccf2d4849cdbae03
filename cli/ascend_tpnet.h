/* ascend_tpnet.h - Ascend's MoE-TP gather and reduce across nodes: a MoE-TP group of whole nodes.
 *
 * parallel-semantics.md section 3 with moe_tp a multiple of P (ranks per
 * node): MoE-TP group q (world ranks q moe_tp + p) holds nodes [q M,
 * q M + M), M = moe_tp / P; member p is on node (q moe_tp + p) / P. Each
 * rank reaches the group's members on other nodes directly (a mesh; these
 * are never in its MoE-EP group, but may be in its attention-TP group:
 * the signal counts per peer are a ledger shared with those). Every rank has one registered region, alike on every rank:
 *   send    its staging (a put's source is a registered region): one
 *           gather block, then its partials [moe_tp A][H];
 *   gather  [moe_tp] blocks: block p = member p's rows count, ep_recv_counts
 *           [R L], expand_x [A] rows and dynamic_scales [A];
 *   reduce  [moe_tp] slots [A][H]: slot p = member p's partials of this
 *           rank's rows.
 * Each exchange is two rounds of one signal to every remote member:
 * `ready` (the member finished its last op, so it has read its region),
 * then the puts and `data` (they landed). Every wait is the transport's,
 * bounded by the rank's network deadline; a failure is one line naming
 * the rank, its node, its phase and the peer (the transport's account).
 * The members of this rank's node still go through the node's shared
 * memory (cli/ascend_tp.c); only the other nodes' blocks come from here.
 */
#ifndef EP_CLI_ASCEND_TPNET_H
#define EP_CLI_ASCEND_TPNET_H

#include <stddef.h>
#include <stdint.h>

#include "cli/cluster/endpoint.h"

enum { EP_ATPNET_REGION = 3 }; /* after the collective's (0) and an attention gather's (1, 2) */

struct ep_atpnet {
	struct ep_transport *t;
	struct ep_waiter *waiter;
	int me, moe_tp, P, q, g;       /* world rank, the MoE-TP group's size, ranks per node, group, member */
	size_t A, row, RL, H;          /* rows per block at most, expand_x row bytes, counts, hidden */
	int quant;
	uint8_t *region;               /* private, page aligned, `bytes` */
	size_t bytes, gblock, slot;    /* the region, one gather block, one reduce slot */
	uint32_t *ledger;              /* signals sent to each world rank by every user of the transport (ep_ascend_net_ledger) */
	uint64_t net_bytes[2][EP_MAX_NODES]; /* the last gather's (0) and reduce's (1) bytes put to each node */
	int64_t arrival[2][EP_MAX_NODES];    /* when each node's data landed, from the exchange's start */
};

/* Member p of a gathered block in this rank's region (valid after ep_atpnet_gather). */
struct ep_atpnet_block {
	size_t rows;
	const uint8_t *x;
	const float *scales;
	const int32_t *counts;
};

/* Is member p of this rank's MoE-TP group on another node? */
int ep_atpnet_remote(const struct ep_atpnet *n, int p);

/* Allocates the region and registers it with t (before connecting). 0, -ENOMEM or the transport's code. */
int ep_atpnet_init(struct ep_atpnet *n, struct ep_transport *t, struct ep_waiter *w, uint32_t *ledger, int me,
		   int moe_tp, int P, size_t A, size_t row, size_t RL, size_t H, int quant);

/* Appends the remote members' world ranks to peers; returns how many. */
int ep_atpnet_peers(const struct ep_atpnet *n, int *peers);

/* The gather's exchange: ready, then this member's rows count, counts and
 * rows (x, scales if quant) put to block g of every remote member, then
 * data. Blocks; 0 or a transport code (-EP_ETIMEDOUT), the failure line set. */
int ep_atpnet_gather(struct ep_atpnet *n, size_t rows, const void *x, const float *scales, const int32_t *counts);

/* Member p's block as it landed here. */
struct ep_atpnet_block ep_atpnet_block(const struct ep_atpnet *n, int p);

/* The reduce's exchange: ready, then to every remote owner o the rows
 * [first[o], first[o] + rows_of[o]) of this member's partials (its gathered
 * order), into o's slot g, then data. Blocks; 0 or a transport code. */
int ep_atpnet_reduce(struct ep_atpnet *n, const uint16_t *partials, const size_t *first, const size_t *rows_of);

/* Member p's partials of this rank's rows as they landed here. */
const uint16_t *ep_atpnet_partials(const struct ep_atpnet *n, int p);

/* Frees the region (accepts one never initialised). */
void ep_atpnet_fini(struct ep_atpnet *n);

#endif
