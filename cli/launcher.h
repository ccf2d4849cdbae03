/* launcher.h - spawns and supervises one process per rank for one sweep point.
 *
 * The shared arena (sync blocks, result blocks, timing arrays and the
 * variant's buffers) is one anonymous MAP_SHARED mapping made before fork:
 * nothing is ever created in /dev/shm, so even kill -9 leaves nothing behind.
 * Ranks die with the launcher (PR_SET_PDEATHSIG), are named epbench-r<N>,
 * and are pinned to CPUs (and NUMA nodes) unless --numa off.
 *
 * Supervision: the launcher polls its children. The first rank that crashes,
 * or reports a timeout, ends the run at once: every other rank is killed and
 * the message names the rank, its phase and the peers waiting on it. If no
 * rank makes progress for the timeout plus a grace period, the run is ended
 * naming the stuck ranks and whom they wait for.
 */
#ifndef EP_LAUNCHER_H
#define EP_LAUNCHER_H

#include "cli/bench.h"
#include "reports/results.h"

/* Runs one point; fills res (free with ep_run_result_free). Returns the exit
 * status: 0 pass, 1 wrong data, 3 environment, 4 timeout or dead rank. */
int ep_launch(const struct ep_variant *v, struct ep_run *run, struct ep_run_result *res);

/* Multi-node: one node's share of a point (cli/internode_bench.c). The node's
 * ranks get global ranks rank_base + local; their sync and arena are the
 * node's own. poll runs about every 10 ms during supervision, so the caller
 * can serve its cluster connections and end the point when another node
 * fails. On exit 0 or 1 the raw per-rank blocks are handed back (malloc'ed,
 * the caller frees them) for node 0 to aggregate with ep_launch_collect. */
struct ep_node_hooks {
	int num_local;                 /* rank processes on this node */
	int rank_base;                 /* global rank of local rank 0 */
	void *variant_ctx;             /* env->variant_ctx of every rank (shared mapping) */
	int (*poll)(void *arg, char *msg, size_t len); /* 0, or an exit status + msg */
	void *arg;
	struct ep_rank_result *results; /* out: [num_local] */
	double *times;                  /* out: [num_local][nops][iters] */
	uint64_t *wrong;                /* out: [num_local][R] */
};
int ep_launch_node(const struct ep_variant *v, struct ep_run *run, struct ep_node_hooks *hk,
		   struct ep_run_result *res);

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

/* Set from a signal handler: stop the current point, kill the ranks. */
void ep_launcher_interrupt(int sig);
/* Nonzero once a signal asked the run to stop. */
int ep_launcher_interrupted(void);

#endif
