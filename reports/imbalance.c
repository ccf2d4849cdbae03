/* imbalance.c - load figures of a routing (see imbalance.h). */
#include "reports/imbalance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ep_imbalance *ep_imbalance_new(int ranks, int experts, int ranks_per_node, int per_expert)
{
	if (ranks <= 0 || experts <= 0 || experts % ranks)
		return NULL;
	struct ep_imbalance *im = calloc(1, sizeof(*im));
	if (!im)
		return NULL;
	im->ranks = ranks, im->experts = experts, im->per_expert = per_expert;
	if (ranks_per_node > 0 && ranks_per_node < ranks && ranks % ranks_per_node == 0) {
		im->ranks_per_node = ranks_per_node;
		im->nodes = ranks / ranks_per_node;
		im->node_rows = calloc((size_t)im->nodes, sizeof(uint64_t));
		im->link_rows = calloc((size_t)im->nodes * (size_t)im->nodes, sizeof(uint64_t));
	}
	im->matrix = calloc((size_t)ranks * (size_t)ranks, sizeof(uint64_t));
	im->rank_rows = calloc((size_t)ranks, sizeof(uint64_t));
	im->expert_tokens = calloc((size_t)experts, sizeof(uint64_t));
	if (!im->matrix || !im->rank_rows || !im->expert_tokens || (im->nodes && (!im->node_rows || !im->link_rows))) {
		ep_imbalance_free(im);
		return NULL;
	}
	return im;
}

void ep_imbalance_free(struct ep_imbalance *im)
{
	if (!im)
		return;
	free(im->matrix);
	free(im->rank_rows);
	free(im->node_rows);
	free(im->link_rows);
	free(im->expert_tokens);
	free(im);
}

/* Token ids' records over the links out of src's node (see imbalance.h). */
static void add_links(struct ep_imbalance *im, int src, const int64_t *ids, int topk)
{
	int per_node = im->experts / im->nodes, from = src / im->ranks_per_node;
	uint64_t *row = im->link_rows + (size_t)from * (size_t)im->nodes;
	for (int j = 0; j < topk; j++) {
		if (ids[j] < 0 || ids[j] >= im->experts)
			continue;
		int to = (int)(ids[j] / per_node), seen = 0;
		for (int k = 0; k < j && !im->per_expert; k++) /* one record per (token, node) */
			seen |= ids[k] >= 0 && ids[k] < im->experts && ids[k] / per_node == to;
		row[to] += !seen && to != from;
	}
}

void ep_imbalance_add(struct ep_imbalance *im, int src, const int64_t *topk_idx, int tokens, int topk)
{
	int per_rank = im->experts / im->ranks;
	uint64_t *row = im->matrix + (size_t)src * (size_t)im->ranks;
	for (int t = 0; t < tokens; t++) {
		const int64_t *ids = topk_idx + (size_t)t * (size_t)topk;
		for (int j = 0; j < topk; j++) {
			if (ids[j] < 0 || ids[j] >= im->experts)
				continue;
			int dst = (int)(ids[j] / per_rank), seen = 0;
			im->expert_tokens[ids[j]]++;
			for (int k = 0; k < j && !im->per_expert; k++) /* one row per (token, rank) */
				seen |= ids[k] >= 0 && ids[k] < im->experts && ids[k] / per_rank == dst;
			row[dst] += !seen;
		}
		if (im->nodes)
			add_links(im, src, ids, topk);
	}
}

void ep_spread_of(const uint64_t *v, int n, struct ep_spread *s)
{
	double sum = 0, sq = 0;
	*s = (struct ep_spread){.min = n > 0 ? (double)v[0] : 0};
	for (int i = 0; i < n; i++) {
		double x = (double)v[i];
		sum += x;
		s->min = x < s->min ? x : s->min;
		if (x > s->max)
			s->max = x, s->hottest = i;
	}
	s->mean = n > 0 ? sum / n : 0;
	for (int i = 0; i < n; i++)
		sq += ((double)v[i] - s->mean) * ((double)v[i] - s->mean);
	if (s->mean <= 0) { /* nothing moved: nothing is out of balance */
		s->max_over_mean = s->balancedness = 1;
		return;
	}
	s->max_over_mean = s->max / s->mean;
	s->balancedness = s->mean / s->max;
	s->cv = sqrt(sq / n) / s->mean;
}

void ep_imbalance_finish(struct ep_imbalance *im)
{
	int R = im->ranks;
	memset(im->rank_rows, 0, sizeof(uint64_t) * (size_t)R);
	for (int s = 0; s < R; s++)
		for (int d = 0; d < R; d++)
			im->rank_rows[d] += im->matrix[(size_t)s * R + d];
	ep_spread_of(im->rank_rows, R, &im->rank);
	ep_spread_of(im->expert_tokens, im->experts, &im->expert);
	if (!im->nodes)
		return;
	memset(im->node_rows, 0, sizeof(uint64_t) * (size_t)im->nodes);
	for (int d = 0; d < R; d++)
		im->node_rows[d / im->ranks_per_node] += im->rank_rows[d];
	ep_spread_of(im->node_rows, im->nodes, &im->node);
	int N = im->nodes, n = 0;
	uint64_t links[N * (N - 1) + 1];
	for (int a = 0; a < N; a++)
		for (int b = 0; b < N; b++)
			if (a != b)
				links[n++] = im->link_rows[(size_t)a * N + b];
	ep_spread_of(links, n, &im->link);
	im->link_src = im->link.hottest / (N - 1);
	im->link_dst = im->link.hottest % (N - 1);
	im->link_dst += im->link_dst >= im->link_src; /* the diagonal was skipped */
}
