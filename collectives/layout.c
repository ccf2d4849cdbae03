/* layout.c - get_dispatch_layout over one rank's top-k routing. */
#include "collectives/layout.h"

#include <string.h>

void ep_get_dispatch_layout(const int64_t *topk_idx, int num_tokens, int num_topk,
			    int num_experts, int num_ranks, int ranks_per_node,
			    struct ep_layout *out)
{
	int L = num_experts / num_ranks;
	int nodes = ranks_per_node > 0 ? num_ranks / ranks_per_node : 0;
	if (out->num_tokens_per_rank)
		memset(out->num_tokens_per_rank, 0, sizeof(int32_t) * (size_t)num_ranks);
	if (out->num_tokens_per_expert)
		memset(out->num_tokens_per_expert, 0, sizeof(int32_t) * (size_t)num_experts);
	if (out->num_tokens_per_rdma_rank)
		memset(out->num_tokens_per_rdma_rank, 0, sizeof(int32_t) * (size_t)nodes);
	uint8_t in_rank[num_ranks > 0 ? num_ranks : 1];
	uint8_t in_node[nodes > 0 ? nodes : 1];
	for (int t = 0; t < num_tokens; t++) {
		memset(in_rank, 0, sizeof(in_rank));
		memset(in_node, 0, sizeof(in_node));
		for (int j = 0; j < num_topk; j++) {
			int64_t v = topk_idx[(size_t)t * num_topk + j];
			if (v < 0 || v >= num_experts)
				continue;
			int e = (int)v, r = e / L;
			if (out->num_tokens_per_expert)
				out->num_tokens_per_expert[e]++;
			in_rank[r] = 1;
			if (nodes)
				in_node[r / ranks_per_node] = 1;
		}
		for (int r = 0; r < num_ranks; r++) {
			if (out->num_tokens_per_rank)
				out->num_tokens_per_rank[r] += in_rank[r];
			if (out->is_token_in_rank)
				out->is_token_in_rank[(size_t)t * num_ranks + r] = in_rank[r];
		}
		if (out->num_tokens_per_rdma_rank)
			for (int n = 0; n < nodes; n++)
				out->num_tokens_per_rdma_rank[n] += in_node[n];
	}
}
