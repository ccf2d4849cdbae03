/* layout.h - get_dispatch_layout: who receives which token (semantics 1).
 *
 * Entries of topk_idx outside [0, E), -1 in particular, match no expert and
 * no rank. A token counts once per rank (and once per node) however many of
 * its experts live there; num_tokens_per_expert counts top-k entries.
 */
#ifndef EP_LAYOUT_H
#define EP_LAYOUT_H

#include <stdint.h>

/* Caller-owned output arrays. */
struct ep_layout {
	int32_t *num_tokens_per_rank;      /* [R] */
	int32_t *num_tokens_per_rdma_rank; /* [R / ranks_per_node], or NULL */
	int32_t *num_tokens_per_expert;    /* [E] */
	uint8_t *is_token_in_rank;         /* [T][R], 0 or 1 */
};

/* Fills every non-NULL array of out from topk_idx [T][K]. ranks_per_node
 * groups ranks into nodes for num_tokens_per_rdma_rank (ignored when NULL).
 * Never fails for valid sizes (E % R == 0 is the caller's to check). */
void ep_get_dispatch_layout(const int64_t *topk_idx, int num_tokens, int num_topk,
			    int num_experts, int num_ranks, int ranks_per_node,
			    struct ep_layout *out);

#endif
