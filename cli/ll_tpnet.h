/* ll_tpnet.h - the low-latency layer's MoE-TP gather and reduce across nodes: a MoE-TP group of whole nodes.
 *
 * parallel-semantics.md section 3 with moe_tp a multiple of P (ranks per
 * node), DeepEP semantics (cli/ll_layer.c): MoE-TP group q (world ranks
 * q moe_tp + p) holds nodes [q M, q M + M), M = moe_tp / P; member p is on
 * node (q moe_tp + p) / P. Each rank reaches the group's members on other
 * nodes directly (a mesh). These are never in its MoE-EP group (world
 * ranks k moe_tp + g) and, as the layer refuses an attention-TP group of
 * whole nodes beside them, in no other exchange of the transport: the
 * signal counts per member are this module's own. Every rank has one
 * private registered region, alike on every rank:
 *   send    its staging (a put's source is a registered region): one
 *           gather block, then [moe_tp] partial slots;
 *   gather  [moe_tp] blocks: block p = member p's receive layout packed:
 *           packed_recv_count [L], packed_recv_layout_range [L][R], then
 *           the valid rows (expert order, at most cap) of packed_recv_x,
 *           packed_recv_src_info and the scales [row][S];
 *   reduce  [moe_tp] slots [cap][H] bf16: slot p = member p's partials of
 *           this rank's rows (its gathered block of them, in order).
 * Each exchange is two rounds of one signal to every remote member:
 * `ready` (the member finished its last op, so it has read its region),
 * then the puts and `data` (they landed). Every wait is the transport's,
 * bounded by the rank's network deadline; a failure is one line naming
 * the rank, its node, its phase and the peer (the transport's account).
 * The members of this rank's node still go through the node's shared
 * memory (cli/ll_layer.c); only the other nodes' blocks come from here.
 */
#ifndef EP_CLI_LL_TPNET_H
#define EP_CLI_LL_TPNET_H

#include <stddef.h>
#include <stdint.h>

#include "cli/cluster/endpoint.h"
#include "collectives/low_latency.h"

enum { EP_LLTPNET_REGION = 4 }; /* after the collective's (0, 1) and an attention gather's (2, 3) */
enum { EP_LLTPNET_GATHER, EP_LLTPNET_REDUCE };

struct ep_lltpnet {
	struct ep_transport *t;
	struct ep_waiter *waiter;
	struct ep_ll_config cfg;       /* the MoE-EP group's (R = moe_ep) */
	int me, moe_tp, P, q, g;       /* world rank, the MoE-TP group's size, ranks per node, group, member */
	size_t cap;                    /* packed rows per block at most */
	uint8_t *region;               /* private, page aligned, `bytes` */
	size_t bytes, gblock, slot;    /* the region, one gather block, one reduce slot */
	uint32_t *sent;                /* [moe_tp] signals sent to (and awaited from) each remote member */
	uint64_t net_bytes[2][EP_MAX_NODES]; /* the last gather's and reduce's bytes put to each node */
	int64_t arrival[2][EP_MAX_NODES];    /* when each node's data landed, ns from the exchange's start */
};

/* Is member p of this rank's MoE-TP group on another node? */
int ep_lltpnet_remote(const struct ep_lltpnet *n, int p);

/* Allocates the region and registers it with t (before connecting). 0,
 * -ENOMEM or the transport's code. Never blocks. */
int ep_lltpnet_init(struct ep_lltpnet *n, struct ep_transport *t, struct ep_waiter *w, const struct ep_ll_config *cfg,
		    int me, int moe_tp, int P, size_t cap);

/* Appends the remote members' world ranks to peers; returns how many. */
int ep_lltpnet_peers(const struct ep_lltpnet *n, int *peers);

/* One signal to every remote member, then theirs awaited (untimed meets).
 * Blocks; 0 or a transport code, the failure line set. */
int ep_lltpnet_meet(struct ep_lltpnet *n);

/* The gather's exchange: ready, then this member's receive layout packed
 * and put to block g of every remote member, then data. Blocks; 0 or a
 * transport code (-EP_ETIMEDOUT), the failure line set. */
int ep_lltpnet_gather(struct ep_lltpnet *n, const struct ep_ll_dispatch_out *own);

/* Member p's block as it landed here, into dst's DeepEP layout (its valid
 * rows; the rest as it was). After ep_lltpnet_gather; never blocks. */
void ep_lltpnet_block(const struct ep_lltpnet *n, int p, struct ep_ll_dispatch_out *dst);

/* The reduce's exchange: ready, then to every remote owner o its rows[o]
 * partial rows part[o] (this member's block of o's rows), into o's slot g,
 * then data. Blocks; 0 or a transport code. */
int ep_lltpnet_reduce(struct ep_lltpnet *n, const uint16_t *const *part, const size_t *rows);

/* Member p's partials of this rank's rows as they landed here. */
const uint16_t *ep_lltpnet_partials(const struct ep_lltpnet *n, int p);

/* Frees the region (accepts one never initialised). */
void ep_lltpnet_fini(struct ep_lltpnet *n);

#endif
