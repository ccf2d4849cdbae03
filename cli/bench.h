/* bench.h - the benchmark engine that runs inside every rank process.
 *
 * A subcommand is a variant: a table of op descriptors (name, prepare, run,
 * check, byte count) plus setup/teardown/dump of its per-rank state. The
 * engine knows nothing about what an op does: it runs one verification pass
 * (prepare, before, run, after, check for every op, in table order), then for
 * each timed op warm-up and timed iterations: barrier, before, timer, run,
 * timer, after. The barrier lines iterations up across ranks; only run() is
 * inside the timer.
 */
#ifndef EP_BENCH_H
#define EP_BENCH_H

#include <stdint.h>

#include "cli/options.h"
#include "collectives/ep.h"
#include "collectives/sync.h"
#include "reference/compare.h"
#include "reports/results.h"

/* One sweep point's complete configuration; identical in every rank. */
struct ep_run {
	const struct ep_options *opt;
	struct ep_shape shape;
	struct ep_routing routing;
	size_t capacity;   /* receive rows per rank, sized by the launcher */
};

/* A rank's outcome, in shared memory, read by the launcher. */
struct ep_rank_result {
	int32_t checked;
	int32_t has_first;
	uint64_t checked_bytes;
	uint64_t wrong_elems;
	uint64_t wrong_rows;
	struct ep_mismatch first;
	uint64_t alg_bytes[EP_MAX_OPS];  /* per op */
	uint64_t wire_bytes[EP_MAX_OPS];
	uint64_t recv_rows;
	double busy_median_us[EP_MAX_OPS]; /* per op: median of run() time minus sync waits */
	_Atomic int32_t finished;
};

/* What the launcher hands to a rank. */
struct ep_bench_env {
	const struct ep_run *run;
	int rank;
	struct ep_waiter *waiter;
	void *arena;                  /* the variant's shared arena */
	struct ep_rank_result *result;
	double *times;                /* [nops][iters] seconds, this rank */
	uint64_t *wrong_by_src;       /* [R] wrong rows per source rank */
	void *variant_ctx;            /* variant-specific, from a multi-node launcher (else NULL) */
};

/* One collective op of a variant. Every function returns 0 or a negative code. */
struct ep_op_desc {
	const char *name;
	/* untimed: make run()'s inputs ready (may run other ops) */
	int (*prepare)(void *st);
	/* untimed per-iteration steps around run() (may be NULL): e.g. the send
	 * phase before a timed receive phase, and the receive after a timed send */
	int (*before)(void *st);
	/* the timed op; collective */
	int (*run)(void *st);
	int (*after)(void *st);
	/* compare the outputs of the last run() with the reference */
	int (*check)(void *st, struct ep_check_report *rep);
	/* bytes this rank moves per op: DeepEP algorithm bytes, wire bytes */
	void (*bytes)(const void *st, uint64_t *alg, uint64_t *wire);
	uint64_t (*recv_rows)(const void *st); /* may be NULL */
	/* --fault corrupt: flip one byte of the last run()'s output (may be NULL) */
	void (*corrupt)(void *st);
};

struct ep_variant {
	const char *name;
	/* launcher side, before fork: receive rows per rank (run->capacity), the
	 * shared arena's bytes and an upper estimate of the private (heap) bytes
	 * one rank allocates, so the launcher can refuse what would not fit */
	int (*size)(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes);
	/* rank side */
	int (*setup)(struct ep_bench_env *env, void **st);
	void (*teardown)(void *st);
	int (*dump)(void *st, const char *dir);
	int nops;
	const struct ep_op_desc *ops;
	int op_mask[EP_MAX_OPS];      /* op i is timed when all these EP_OPS_* bits are selected */
};

/* Runs the engine in a rank; returns the process exit status (enum ep_exit). */
int ep_bench_rank(const struct ep_variant *v, struct ep_bench_env *env);

extern const struct ep_variant ep_intranode_variant;
extern const struct ep_variant ep_internode_variant;
/* `epbench internode`: its own sweep, since every node runs it (cli/internode_bench.c). */
int ep_internode_main(int argc, char **argv);
extern const struct ep_variant ep_low_latency_variant;
extern const struct ep_variant ep_low_latency_hook_variant; /* with --hook */
/* The same across nodes: a node's ranks, launched by the node job (internode_job.c). */
extern const struct ep_variant ep_low_latency_nodes_variant;
extern const struct ep_variant ep_low_latency_nodes_hook_variant;

#endif
