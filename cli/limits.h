/* limits.h - what DeepEP and Ascend document as their limits, as profiles a run is checked against.
 *
 * `--limits none|deepep|ascend-a2|ascend-a3` picks a profile; each profile
 * is one table in cli/limits.c whose rows each name one limit and the
 * document that states it (DeepEP's source, the DeepEP-Ascend A2 guide,
 * Ascend's operator documentation). A point that breaks a row is refused
 * before anything runs (exit 2, one line naming the limit and its source);
 * with --warn-only it is a '#' line instead. Rows marked advisory (the
 * guides' recommendations) are always only a '#' line. Environment rows
 * read the variables the guides require (HCCL_OP_EXPANSION_MODE,
 * HCCL_INTRA_PCIE_ENABLE / HCCL_INTRA_ROCE_ENABLE, HCCL_BUFFSIZE against
 * the operator's formula, cli/buffer_hints.h).
 */
#ifndef EP_LIMITS_H
#define EP_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/deploy_env.h"
#include "cli/options.h"

/* --limits, in the option's order of choices. */
enum ep_limits_profile { EP_LIMITS_NONE, EP_LIMITS_DEEPEP, EP_LIMITS_ASCEND_A2, EP_LIMITS_ASCEND_A3 };

/* A point as the limits see it. */
struct ep_limits_point {
	int ranks;               /* R: the EP world */
	int nodes;               /* 1 on one host */
	int ranks_per_node;      /* R / nodes */
	int tokens;              /* per rank (BS) */
	int max_dispatch_tokens; /* low-latency N (the op's BS bound applies to it too); 0: tokens */
	int hidden, topk;
	int experts;             /* physical (moe_expert_num) */
	int shared_expert_ranks; /* Ascend's S_r (0 for DeepEP) */
	int dtype;               /* enum ep_dtype */
	int low_latency;         /* 1: low-latency kernels, 0: normal dispatch/combine */
	int ascend;              /* --ep-semantics ascend (npu_moe_distribute_* itself) */
};

/* The point of shape s of command line o on `nodes` nodes (0: one host). */
void ep_limits_point_of(const struct ep_options *o, const struct ep_shape *s, int nodes, struct ep_limits_point *p);

/* Checks p against the profile. A violated row: with warn_only a line
 * "limits PROFILE (warn only): ..." on warn (NULL: not printed; the sweep
 * prints them as the header's '# warning:' lines) and the check goes on; otherwise one
 * line in err and -EP_EUSAGE. A malformed HCCL_BUFFSIZE and --warn-only
 * without a profile are refused either way. 0 when nothing refused. */
int ep_limits_check(int profile, int warn_only, const struct ep_limits_point *p, ep_deploy_getenv_fn env,
		    FILE *warn, char *err, size_t len);

/* HCCL_BUFFSIZE from env: 0 unset (or empty), 1 with *mb, -1 when not an
 * integer in [1, 2^40) (HCCL: an integer number of MB, at least 1). */
int ep_hccl_buffsize(ep_deploy_getenv_fn env, uint64_t *mb);

/* The minimum HCCL_BUFFSIZE (MB) the operator documentation asks of p on
 * an A2 (profile EP_LIMITS_ASCEND_A2: the layered formula when the HCCL_INTRA_*
 * pair is set across nodes) or an A3; *formula names it. 0 or -EP_EUSAGE
 * (overflow). */
int ep_limits_hccl_min(int profile, const struct ep_limits_point *p, ep_deploy_getenv_fn env, uint64_t *mb,
		       const char **formula);

/* "none", "deepep", "ascend-a2", "ascend-a3". */
const char *ep_limits_name(int profile);

#endif
