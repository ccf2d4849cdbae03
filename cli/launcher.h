/* launcher.h - spawns and supervises one process per rank for one sweep point.
 *
 * The shared arena (sync blocks, result blocks, timing arrays and the
 * variant's buffers) is one anonymous MAP_SHARED mapping made before fork:
 * nothing is ever created in /dev/shm, so even kill -9 leaves nothing behind.
 * Ranks die with the launcher (PR_SET_PDEATHSIG), are named epbench-r<N>,
 * and are pinned to CPUs (and NUMA nodes) unless --numa off. Before any
 * fork the point is sized and checked against this machine's memory and
 * process limits (cli/budget.h). cli/supervise.h watches the ranks.
 */
#ifndef EP_LAUNCHER_H
#define EP_LAUNCHER_H

#include "cli/bench.h"
#include "cli/supervise.h"
#include "reports/results.h"

/* A node's raw per-rank blocks, for node 0 to aggregate (ep_launch_collect). */
struct ep_raw_results {
	struct ep_rank_result *results; /* [num_local] */
	double *times;                  /* [num_local][nops][iters] */
	uint64_t *wrong;                /* [num_local][R] */
};

/* How one point is launched here: all R ranks of a one-host run (num_local
 * 0), or one node's share of a multi-node point, whose ranks get global
 * ranks rank_base + local while their sync and arena are the node's own. */
struct ep_launch_opts {
	int num_local;                /* rank processes here; 0: all R */
	int rank_base;                /* global rank of local rank 0 */
	int cpu_base;                 /* CPU slot of local rank 0 (rank r is pinned to slot cpu_base + r,
				       * round robin): nodes sharing a host take consecutive slots */
	void *variant_ctx;            /* env->variant_ctx of every rank (shared mapping), or NULL */
	struct ep_watch_hooks watch;  /* polled during supervision (rank_base is set from above) */
	int keep_raw;                 /* hand back raw blocks (malloc'ed) instead of collecting */
	struct ep_raw_results raw;    /* out, with keep_raw on exit 0 or 1: free with ep_raw_free */
};

/* Runs one point; fills res (free with ep_run_result_free). lo may be NULL
 * (all ranks here, nothing polled). Returns the exit status: 0 pass, 1
 * wrong data, 3 environment, 4 timeout, dead rank or interrupted. */
int ep_launch(const struct ep_variant *v, struct ep_run *run, struct ep_launch_opts *lo,
	      struct ep_run_result *res);
void ep_raw_free(struct ep_raw_results *raw);

/* Aggregates the raw blocks of all R ranks (rank-major) into res: what
 * ep_launch does with its own ranks' blocks. */
void ep_launch_collect(const struct ep_variant *v, const struct ep_run *run,
		       const struct ep_rank_result *rr, const double *times, const uint64_t *wrong,
		       struct ep_run_result *res);

/* Refuses, before anything is spawned, a point whose procs rank processes
 * (all R on one host; a node's share across nodes) would not fit this
 * machine (cli/budget.h): from a cheap lower bound first, then from the
 * variant's own sizes. 0 or a negative code with the figure in msg. */
int ep_launch_precheck(const struct ep_variant *v, const struct ep_run *run, int procs, char *msg,
		       size_t len);

/* What a point of procs rank processes here takes, sized as ep_launch
 * sizes it (the variant's size() and the launcher's shared plan), without
 * mapping anything: *shared the one shared mapping (sync, results, timing,
 * the variant's arena), *rank_private the variant's upper estimate of one
 * rank's heap. 0 or the variant's negative code. For `epbench plan`. */
int ep_launch_plan_bytes(const struct ep_variant *v, const struct ep_run *run, int procs, size_t *shared,
			 size_t *rank_private);

#endif
