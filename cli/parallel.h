/* parallel.h - a deployment's parallel configuration (dp, tp, cp, sp, moe_tp, moe_ep) and its process groups.
 *
 * As parallel-semantics.md section 1 fixes them, with MindIE's defaults and
 * checks: tp unset -> the world; dp, cp, sp unset -> 1; moe_tp unset -> tp;
 * moe_ep unset -> 1. dp*cp*tp == world; cp > 1 excludes dp > 1; sp is 1 or
 * tp; moe_ep > 1 needs moe_ep*moe_tp == world, moe_ep == 1 needs moe_tp ==
 * world; tp and moe_tp at most the ranks of a node, or the world.
 *
 * Groups of world rank r (contiguous TP, strided DP/EP):
 *   attn-TP {(r/tp)*tp + i}         atp_rank = r % tp
 *   attn-DP {r%tp + j*tp}           dp_rank  = r / tp
 *   MoE-TP  {(r/moe_tp)*moe_tp + i} mtp_rank = r % moe_tp
 *   MoE-EP  {r%moe_tp + k*moe_tp}   ep_rank  = r / moe_tp
 * A configuration comes from --parallel (any order, every key at most
 * once), from a MindIE config.json (cli/mindie_config.h), or both:
 * --parallel overrides the file key by key.
 */
#ifndef EP_PARALLEL_H
#define EP_PARALLEL_H

#include <stddef.h>

enum ep_par_key { EP_PAR_DP, EP_PAR_TP, EP_PAR_CP, EP_PAR_SP, EP_PAR_MOE_TP, EP_PAR_MOE_EP, EP_PAR_KEYS };
enum ep_moe_comm { EP_MOE_A2A, EP_MOE_ALLGATHER };
/* Inside the MoE-EP group: DeepEP's dispatch/combine or Ascend's (parallel-semantics.md sections 4-5). */
enum ep_semantics { EP_SEM_DEEPEP, EP_SEM_ASCEND };
/* Padding of attention-TP slices (section 2): none, vLLM's zero rows, MindIE's copies of row 0. */
enum ep_sp_pad { EP_PAD_NONE, EP_PAD_ZERO, EP_PAD_REPLICATE0 };
enum ep_par_group { EP_GROUP_ATTN_TP, EP_GROUP_ATTN_DP, EP_GROUP_MOE_TP, EP_GROUP_MOE_EP };

struct ep_parallel {
	int v[EP_PAR_KEYS];     /* 0 or -1 (MindIE's convention): unset */
	int world;              /* MindIE's worldSize; 0 or -1: unset */
	int moe_comm;           /* enum ep_moe_comm; MindIE ep_level 1 = allgather, 2 = a2a */
	int comm_given;         /* moe_comm came from a file or an option */
	char from[160];         /* where the keys came from, for the banner */
};

/* All zeros is nothing given: every key unset, a2a. */

/* "dp=2,tp=8,moe_tp=4,moe_ep=4" over p (keys it names replace p's). 0 or
 * -1 with one line quoting the key or value in err. */
int ep_parallel_parse(struct ep_parallel *p, const char *spec, char *err, size_t len);

/* Any key or the mode given? */
int ep_parallel_given(const struct ep_parallel *p);

/* The defaults and checks for a world of W ranks, ranks_per_node on each
 * node (0: one host). 0 with every key set in out, or -1 with one line. */
int ep_parallel_resolve(const struct ep_parallel *p, int W, int ranks_per_node, struct ep_parallel *out, char *err,
			size_t len);

/* The members of rank r's group g (resolved p), ascending; returns their count. */
int ep_parallel_group(const struct ep_parallel *p, enum ep_par_group g, int r, int *members, int max);

/* Rank r's groups as one line: "attn_tp=[8..15] dp=1 moe_tp=[8..11] ep=2/{0,4,8,12}". */
void ep_parallel_describe(const struct ep_parallel *p, int r, char *buf, size_t len);

/* The configuration as "dp=2,tp=8,cp=1,sp=1,moe_tp=4,moe_ep=4,moe_comm=a2a". */
void ep_parallel_text(const struct ep_parallel *p, char *buf, size_t len);

/* Is it plain expert parallelism (moe_ep = world, every other degree 1, a2a)? */
int ep_parallel_pure_ep(const struct ep_parallel *p);

#endif
