/* internode.h - DeepEP normal dispatch/combine across nodes: network, then shared memory.
 *
 * Semantics are DeepEP V1's internode kernels (csrc/kernels/internode.cu),
 * with DeepEP's 8 ranks per node generalised to P = ranks_per_node.
 * Global rank q = node * P + local. Outputs of dispatch are exactly those of
 * intranode dispatch over R = nodes * P ranks (rows grouped by global source
 * rank, then source token); combine rounds twice: once per node at the
 * forwarder (fp32 sum over the node's destination ranks in ascending order,
 * from +0, no bias), once at the source (bias, then the node partials in
 * ascending node order).
 *
 * Data path of rank (n, g):
 *   dispatch  notify: exchange count rows with the rail peers (s, g) over the
 *             network; every rank of the node publishes what it received in
 *             the node arena, so after a node barrier everyone knows all R
 *             count rows (rank prefix matrix, per-expert counts, offsets).
 *             send: one record per (token, destination node) to (m, g), in
 *             chunks, each followed by a signal; gathered (putv), a record
 *             bound for (m, g) itself has its payload put straight at its
 *             final row in (m, g)'s receive area, the others' payloads and
 *             every tail into the network buffer; of the own node's records
 *             only the tail (scales, meta, top-k) is written into the own
 *             network buffer, and forward copies their payloads from x
 *             straight to the local ranks (INT8: whole records, the payload
 *             quantised). Over a transport
 *             that puts from anywhere (tcp's putv) a record's payload goes
 *             from x itself and only its tail (scales, meta, top-k) is
 *             staged; otherwise (verbs: registered sources) the whole record
 *             is packed into the stage.
 *             forward: each record goes to every local rank whose bit is set,
 *             at its final row (shared-memory copy into the node arena; none
 *             for a payload that landed there).
 *   combine   reduce: for every record received at dispatch, the forwarder
 *             sums the local ranks' combine rows, rounds to BF16, and puts the
 *             partial back to its source (s, g), in chunks with signals; with
 *             putv, a partial of one row is that row (internode.c,
 *             single_row), put from where it lies, and the own node's is
 *             read in place by final.
 *             final: the source adds bias and the partials of the nodes,
 *             each node's as soon as their chunk has arrived.
 *
 * Buffer reuse is safe without outside help: a sender writes into a peer's
 * network buffer only after that peer's notify (dispatch) or ready signal
 * (combine) for the same op, which the peer sends only once it is done with
 * the previous op's contents.
 *
 * All waits have deadlines; a failure is recorded in the rank's control
 * block (ep_sync_fail) naming this rank, its node, the phase and the peer.
 */
#ifndef EP_INTERNODE_H
#define EP_INTERNODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "collectives/ep.h"
#include "collectives/recv_area.h"
#include "collectives/layout.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"

#define EP_INTERNODE_MAX_NODES 32
#define EP_INTERNODE_MAX_RANKS_PER_NODE 32 /* the forwarding bit mask is 32 bits */

/* Network regions every rank registers (ids are the same everywhere). */
enum ep_net_region {
	EP_NET_META,       /* [2][N] count rows (double-buffered by dispatch parity) */
	EP_NET_RECV,       /* [rdma_capacity] dispatch records from every source node */
	EP_NET_COMBINE,    /* [send_capacity] combine partials from every node */
	EP_NET_STAGE,      /* [chunk] dispatch send staging (a put source) */
	EP_NET_CSTAGE,     /* [chunk] combine send staging (a put source) */
	EP_NET_NUM_REGIONS,
	/* The node arena's P receive areas, registered (after the above) only
	 * with a transport that has putv: gathered dispatch lands a payload
	 * bound for its rail peer itself at its final row there. */
	EP_NET_AREAS = EP_NET_NUM_REGIONS
};

/* Row capacities, sized by the launcher from the reference. */
struct ep_internode_sizes {
	size_t capacity;      /* receive rows per rank (largest M) */
	size_t rdma_capacity; /* records landing in one rank's network buffer */
	size_t send_capacity; /* records one rank sends in all (its combine partials) */
};

/* Per-op figures of the last dispatch or combine, for bandwidth reports. */
struct ep_internode_op_figures {
	uint64_t rdma_tokens;                       /* (token, node) pairs, own node included */
	uint64_t net_bytes[EP_INTERNODE_MAX_NODES]; /* bytes put to each node (0 for own) */
	uint64_t nvl_bytes;                         /* bytes copied within the node */
	int64_t arrival_ns[EP_INTERNODE_MAX_NODES]; /* op start -> last chunk from node s */
};

struct ep_internode {
	struct ep_shape shape;     /* num_ranks = R (global) */
	int nodes, per_node;       /* N, P */
	int node, local, rank;     /* n, g, q = n * P + g */
	int net_per_node, net_local; /* the transport's ids of the rail peers: m * net_per_node + net_local
				      * (P and g, unless the ranks are a group of a larger job) */
	int net_node_first;         /* the transport's id of this node's waiter rank 0 */
	struct ep_internode_sizes sizes;
	struct ep_waiter *waiter;  /* node-local ranks */
	struct ep_transport *net;
	size_t rec_bytes;          /* one dispatch record (16-byte aligned) */
	size_t crec_bytes;         /* one combine record */
	size_t meta_bytes;         /* one count row */
	int chunk;                 /* records per put */
	struct iovec *iov;         /* [3 chunk] gathered puts (NULL without putv): dispatch: each record's payload
				    * from x, its tail from the stage; combine: a single-row partial from the row */
	char *zeros;               /* [crec_bytes] zero bytes: a gathered combine record's absent weights and padding */
	/* node arena (shared by the node's ranks) */
	int32_t *counts;           /* [R][R] num_tokens_per_rank of every rank */
	int32_t *expert_counts;    /* [R][E] */
	int32_t *rdma_counts;      /* [R][N] num_tokens_per_rdma_rank of every rank */
	struct ep_recv_area *areas;/* [P] the node's receive/combine areas */
	char *areas_base;          /* where areas[0] starts in the arena (region EP_NET_AREAS) */
	size_t areas_bytes;        /* P areas */
	/* registered, private */
	char *region[EP_NET_NUM_REGIONS];
	size_t region_bytes[EP_NET_NUM_REGIONS];
	/* handle, valid after a non-cached dispatch */
	int32_t *rank_prefix_matrix;        /* [R][R] inclusive over global sources */
	uint8_t *is_token_in_rank;          /* [T][R] */
	int32_t *num_tokens_per_rdma_rank;  /* [N] this rank's */
	int32_t *num_recv_tokens_per_expert;/* [L] */
	int32_t *fwd_rows;                  /* [rdma_capacity][P] row at local rank d, or -1 */
	size_t num_recv, num_rdma_recv;
	int have_handle;
	/* protocol state */
	uint32_t expect[EP_INTERNODE_MAX_NODES]; /* signals consumed from (s, g) so far */
	uint32_t dispatches;       /* parity selects the meta slot */
	uint32_t op_seq;           /* number of the op in flight (collectives/traffic.h) */
	float *wacc;               /* [K] scratch */
	int raw_rows;              /* this combine sends a lone row as its node partial (not with two biases) */
	struct ep_internode_op_figures last_dispatch, last_combine;
};

/* The ranks are a group of a larger job whose transport numbers rank
 * (m, local) as m * per_node + local (a parallel configuration's MoE-EP
 * group: cli/moe_layer.h): rail peers are addressed by those ids. Call
 * after init, before connecting; node_first is the job's id of the node's
 * first rank (the waiter's rank 0: a failure names the node's ranks by
 * it). Nothing else changes (a group's own
 * shared-memory arena and rank numbering stay the collective's). */
static inline void ep_internode_net_ids(struct ep_internode *ctx, int per_node, int local, int node_first)
{
	ctx->net_per_node = per_node, ctx->net_local = local, ctx->net_node_first = node_first;
}

/* Node arena bytes (mapped shared before the node's ranks fork, zeroed). */
size_t ep_internode_arena_bytes(const struct ep_shape *s, int ranks_per_node, size_t capacity);
/* A node arena as every rank of the node sees it, without a context: the
 * count rows [R][R] every rank published (valid after a dispatch's notify
 * step) and local rank `local`'s receive area. */
void ep_internode_arena_view(const struct ep_shape *s, int ranks_per_node, size_t capacity, void *arena, int local,
			     int32_t **counts, struct ep_recv_area *area);
/* Private (heap) bytes one rank's context allocates, network regions
 * included: an upper estimate. */
size_t ep_internode_rank_bytes(const struct ep_shape *s, int ranks_per_node,
			       const struct ep_internode_sizes *sizes);

/* Binds rank (node, local) to the node arena, allocates and registers its
 * network regions with net (which must be initialised, not yet connected).
 * 0, -ENOMEM or the transport's error. */
int ep_internode_init(struct ep_internode *ctx, const struct ep_shape *s, int ranks_per_node,
		      int node, int local, void *arena, const struct ep_internode_sizes *sizes,
		      struct ep_waiter *w, struct ep_transport *net);
void ep_internode_fini(struct ep_internode *ctx);

/* The rail peers (m, local) for every node m != node, as global ranks; n entries. */
int ep_internode_peers(const struct ep_internode *ctx, int *peers);

/* All R ranks meet: a node barrier, then one signal each way with every
 * rail peer. 0 or a negative code (recorded in the control block). */
int ep_internode_barrier(struct ep_internode *ctx);

/* Dispatch: collective, blocks until this rank's rows have landed. The
 * layout must carry num_tokens_per_rdma_rank. Same outputs as intranode
 * (global ranks). -EP_ENOSPC when any rank's rows exceed the capacities
 * (all ranks see the same counts and fail together). */
int ep_internode_dispatch(struct ep_internode *ctx, const struct ep_dispatch_in *in, int cached,
			  struct ep_dispatch_out *out);

/* Where this rank writes its combine input: [M][H] bf16 and [M][K] weights. */
uint16_t *ep_internode_combine_x(struct ep_internode *ctx);
float *ep_internode_combine_w(struct ep_internode *ctx);

/* Combine: collective, blocks; double rounding as described above. */
int ep_internode_combine(struct ep_internode *ctx, const uint16_t *bias0, const uint16_t *bias1,
			 uint16_t *combined_x, float *combined_w);

#endif
