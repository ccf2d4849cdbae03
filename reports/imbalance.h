/* imbalance.h - how unevenly a routing loads ranks, nodes and experts.
 *
 * Computed from the routing alone (every source rank's top-k ids and where
 * each expert lives: expert e on rank e / (E / R), rank q on node
 * q / ranks_per_node), never from timings, so the figures of a point are
 * the same on every run of its seed. Masked (-1) entries move nothing and
 * count nowhere. What one received row is depends on the mode:
 *   per (token, destination rank)  normal dispatch: a token sends one row to
 *                                  each rank holding any of its experts;
 *   per (token, expert)            low-latency: one message per selected
 *                                  expert.
 * Across nodes, a link (source node, destination node) carries one record
 * per (token, destination node) in normal mode (DeepEP's hierarchical
 * path: the node forwards it to its ranks) and one message per remote
 * (token, expert) in low-latency mode; a node's traffic to itself crosses
 * no link.
 * Spreads (struct ep_spread) follow vLLM's EPLB logs for "balancedness"
 * (mean / max); with nothing received at all, max/mean and balancedness
 * are 1 and cv is 0 (nothing is out of balance).
 */
#ifndef EP_IMBALANCE_H
#define EP_IMBALANCE_H

#include <stdint.h>

/* Summary of one load vector (rows per rank, per node, tokens per expert). */
struct ep_spread {
	double min, mean, max;
	double max_over_mean;  /* max / mean, >= 1 */
	double balancedness;   /* mean / max, in (0, 1]: vLLM EPLB's figure */
	double cv;             /* population standard deviation / mean */
	int hottest;           /* index of the max (the lowest on ties) */
};

struct ep_imbalance {
	int ranks, experts, nodes;   /* nodes: 0 when the run is on one host */
	int ranks_per_node;          /* nodes > 0 only */
	int per_expert;              /* 1: a row per (token, expert), 0: per (token, rank) */
	uint64_t *matrix;            /* [ranks][ranks]: rows from source (row) to destination (column) */
	uint64_t *rank_rows;         /* [ranks]: rows received per rank (column sums of matrix) */
	uint64_t *node_rows;         /* [nodes]: rows received by each node's ranks, or NULL */
	uint64_t *expert_tokens;     /* [experts]: (token, slot) entries per expert */
	uint64_t *link_rows;         /* [nodes][nodes]: records from node (row) to node (column), diagonal 0; or NULL */
	struct ep_spread rank, node, expert; /* node: nodes > 0 only */
	struct ep_spread link;       /* over the nodes x (nodes - 1) links; hottest: the link index below */
	int link_src, link_dst;      /* the busiest link's nodes */
};

/* Zeroed counts for a run of `ranks` ranks (ranks_per_node > 0 and fewer
 * than ranks: also per node). NULL when out of memory or the shape is not
 * one (experts not a multiple of ranks). */
struct ep_imbalance *ep_imbalance_new(int ranks, int experts, int ranks_per_node, int per_expert);
void ep_imbalance_free(struct ep_imbalance *im); /* NULL is fine */

/* Counts source rank src's first `tokens` rows of top-k ids ([tokens][topk],
 * -1 allowed; ids outside [0, experts) are ignored). */
void ep_imbalance_add(struct ep_imbalance *im, int src, const int64_t *topk_idx, int tokens, int topk);

/* Computes the spreads from the counts; call after the last add. */
void ep_imbalance_finish(struct ep_imbalance *im);

/* The spread of n counts (exposed for tests). */
void ep_spread_of(const uint64_t *v, int n, struct ep_spread *s);

#endif
