/* eplb.h - DeepSeek's expert-parallel load balancer (EPLB), one layer, in C.
 *
 * rebalance_experts of deepseek-ai/EPLB eplb.py as parallel-semantics.md
 * section 6 pins it: hierarchical when groups % nodes == 0 (groups packed
 * onto nodes, experts replicated within each node, physical experts packed
 * onto the node's GPUs), else the same with one group and one node. Where
 * torch leaves ties open the **choice** of that section holds: sorts are
 * stable by (-load, index), arg-max returns the lowest index, the lightest
 * pack is the lowest one on a tie; loads and their sums are float32, summed
 * left to right. The README example of EPLB is reproduced exactly
 * (reference/eplb_test.c).
 */
#ifndef EP_EPLB_H
#define EP_EPLB_H

/* A placement of E logical experts on P physical ones (physical p on GPU
 * p / (P / gpus)). */
struct ep_eplb_map {
	int logical, physical; /* E, P */
	int maxcnt;            /* the most replicas of one logical expert */
	int *phy2log;          /* [P] logical expert of each physical expert */
	int *phyrank;          /* [P] which replica of its logical expert it is (0 ..) */
	int *logcnt;           /* [E] replicas of each logical expert (>= 1) */
	int *log2phy;          /* [E][maxcnt] physical id of replica k at column k, -1 padded */
};

/* The placement of loads load[E] (>= 0, float32) on P physical experts,
 * `groups` expert groups, `nodes` nodes and `gpus` GPUs. Needs E % groups
 * == 0, gpus % nodes == 0, P % gpus == 0, P >= E and, when hierarchical,
 * E % nodes == 0. 0, -EINVAL for a shape outside these, -ENOMEM; on error
 * *m is left empty (free is still fine). */
int ep_eplb_rebalance(const float *load, int E, int P, int groups, int nodes, int gpus, struct ep_eplb_map *m);

/* Frees the map's arrays (a zeroed or already freed map is fine). */
void ep_eplb_map_free(struct ep_eplb_map *m);

/* balanced_packing: n items of weight w[n] into `packs` packs of n / packs
 * items each (n % packs == 0); pack[i] and rank[i] (position within its
 * pack). Exposed for tests. 0 or -ENOMEM. */
int ep_eplb_pack(const float *w, int n, int packs, int *pack, int *rank);

#endif
