/* internode_ref.h - the naive reference for internode dispatch/combine (DeepEP section 4).
 *
 * Dispatch outputs across nodes are those of intranode dispatch over all R
 * global ranks, so the dispatch expectations and checks are reference.c's,
 * reused on a shape with R = nodes * ranks_per_node. What differs is here:
 * num_tokens_per_rdma_rank, buffer sizes of the two-level path, byte counts,
 * and combine's two roundings (per node at the forwarder, then across nodes
 * at the source), computed with plain loops from the seed.
 */
#ifndef EP_INTERNODE_REF_H
#define EP_INTERNODE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "reference/reference.h"

struct ep_internode_ref {
	struct ep_reference base;  /* every rank's routing, dispatch expectations for me */
	int nodes, ranks_per_node;
	int32_t *rdma_counts;      /* [R][N] num_tokens_per_rdma_rank of every rank */
};

/* Builds the reference for global rank me. 0 or -ENOMEM. */
int ep_internode_ref_init(struct ep_internode_ref *ref, const struct ep_shape *s,
			  const struct ep_routing *r, uint64_t seed, int me, int ranks_per_node);
void ep_internode_ref_fini(struct ep_internode_ref *ref);

/* Largest over ranks: rows received (M), records landing in one network
 * buffer (all source nodes, own included), records sent (all nodes). */
void ep_internode_ref_sizes(const struct ep_internode_ref *ref, size_t *capacity,
			    size_t *rdma_capacity, size_t *send_capacity);

/* (token, destination node) pairs of rank q: DeepEP's num_rdma_token_sent
 * (own node included); with exclude_own, only those that cross the network. */
uint64_t ep_internode_ref_rdma_tokens(const struct ep_internode_ref *ref, int q, int exclude_own);

/* Checks, each adding to rep. Layout includes num_tokens_per_rdma_rank. */
void ep_internode_ref_check_layout(const struct ep_internode_ref *ref, const struct ep_layout *actual,
				   struct ep_check_report *rep);
/* What combine must return to rank me: combined_x [T][H], combined_w [T][K]
 * (may be NULL). 0 or -ENOMEM. */
int ep_internode_ref_combined(const struct ep_internode_ref *ref, uint16_t *combined_x,
			      float *combined_w);
/* The combined row of token t of any rank src (bf16 [H]). 0 or -ENOMEM. */
int ep_internode_ref_combined_row(const struct ep_internode_ref *ref, int src, int t, uint16_t *want);
void ep_internode_ref_check_combine(const struct ep_internode_ref *ref, const uint16_t *combined_x,
				    const float *combined_w, struct ep_check_report *rep);

#endif
