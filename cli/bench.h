/* bench.h - the benchmark engine that runs inside every rank process.
 *
 * A variant is a table of op descriptors (name, mask, prepare, run, check,
 * byte count) plus setup/teardown/dump of its per-rank state and optional
 * hooks around every op. The engine knows nothing about what an op does: it
 * runs one verification pass (prepare, op_enter, before, run, after, check
 * for every op the run has, in table order), then for each timed op warm-up
 * and timed iterations: barrier, op_enter, before, timer, run, timer, after;
 * then op_leave. The barrier lines iterations up across ranks; only run() is
 * inside the timer. Ranks see a narrow run configuration (struct
 * ep_run_cfg), never the command line's options.
 *
 * A soak (--soak N) times nothing: N checked passes, pass i with seed + i
 * (fresh inputs and routing, rebuilt by the variant's reseed between
 * barriers), each pass's wrong rows recorded per rank for the launcher's
 * failure count and bound.
 */
#ifndef EP_BENCH_H
#define EP_BENCH_H

#include <stdint.h>

#include "cli/damage.h"
#include "cli/fault.h"
#include "cli/parallel.h"
#include "collectives/ep.h"
#include "collectives/sync.h"
#include "reference/compare.h"
#include "reference/inputs.h"
#include "reports/results.h"

/* Which ops are timed (bits of ep_run_cfg.ops and of ep_op_desc.mask). An
 * op is timed when every bit of its mask is selected. The bits of
 * EP_OPS_FEATURES are features: an op whose mask has one exists only in
 * runs that select it (low-latency's send/receive phase ops, with --hook;
 * the MoE-TP phases when moe_tp > 1, ...). */
enum ep_op_mask {
	EP_OPS_DISPATCH = 1, EP_OPS_COMBINE = 2, EP_OPS_BOTH = 3,
	EP_OPS_HOOK = 4,
	/* a parallel configuration's MoE layer (cli/moe_layer.c): the phases its groups have */
	EP_OPS_A2A = 8, EP_OPS_ALLGATHER = 16, EP_OPS_MOE_TP = 32, EP_OPS_ATTN_TP = 64,
	EP_OPS_FEATURES = EP_OPS_HOOK | EP_OPS_A2A | EP_OPS_ALLGATHER | EP_OPS_MOE_TP | EP_OPS_ATTN_TP,
};


/* What a rank needs to know of the command line: a narrow copy made by the
 * front door (cli/options.c), identical in every rank. */
struct ep_run_cfg {
	uint64_t seed;            /* of every input */
	int iters, warmup;        /* timed and warm-up iterations of each op */
	int check;                /* compare every output byte with the reference */
	int cached;               /* normal dispatch: time the cached mode */
	int ops;                  /* EP_OPS_* bits: ops to time (and features) */
	double timeout_s;         /* deadline of any single wait */
	int numa;                 /* pin ranks to CPUs and NUMA nodes */
	struct ep_faults faults;    /* --fault (cli/fault.h) */
	const char *perf_ctl;     /* perf control FIFO[,ACK], or NULL */
	const char *dump_dir;     /* --dump DIR, or NULL */
	int ranks_per_node;       /* node jobs: P; 0 on one host */
	int soak;                 /* --soak: checked passes instead of timing; 0 = off */
	int soak_first;           /* --soak-first: index of the first pass (seed + index) */
	/* low-latency */
	int max_dispatch_tokens;  /* N; 0 = the largest per-rank token count */
	int round_scale, use_ue8m0; /* FP8 cast variants */
	int zero_copy;            /* expert outputs written into the combine buffer */
	int ll_tokens;            /* mixed: tokens per rank of the low-latency ops (the point's are normal mode's) */
	/* a parallel configuration's MoE layer (the run's resolved groups are in struct ep_run) */
	int ep_semantics;         /* enum ep_semantics */
	int sp_pad;               /* enum ep_sp_pad */
	int tokens_per_dp;        /* T_d; 0: num_tokens x tp */
	/* Ascend semantics (cli/ascend.c) */
	int shared_experts;       /* S_n */
	int shared_expert_ranks;  /* S_r: EP ranks [0, S_r) host the shared experts */
	int smooth_scales;        /* int8 smoothing scales [(S_n + E)][H] from the seed */
	int comm_quant;           /* combine moves expert outputs as int8 (comm_quant_mode 2) */
};

/* One sweep point's complete configuration; identical in every rank. */
struct ep_run {
	const struct ep_run_cfg *cfg;
	struct ep_shape shape;
	struct ep_routing routing;
	size_t capacity;   /* receive rows per rank, sized by the launcher */
	struct ep_parallel parallel; /* resolved (cli/parallel.h); all zero: plain EP, no --parallel */
	int attn_tokens;   /* a MoE layer: the point's --num-tokens (T_d = tp x it unless --tokens-per-dp) */
};

/* A rank's outcome, in shared memory, read by the launcher. */
struct ep_rank_result {
	int32_t checked;
	int32_t has_first;
	uint64_t checked_bytes;
	uint64_t wrong_elems;
	uint64_t wrong_rows;
	uint64_t handle_checked_bytes, handle_wrong_elems; /* of the above, in handle tensors (compare.h) */
	struct ep_mismatch first;
	uint64_t alg_bytes[EP_MAX_OPS];  /* per op */
	uint64_t wire_bytes[EP_MAX_OPS];
	uint64_t recv_rows;       /* the first op's with a recv_rows() */
	uint64_t op_recv_rows[EP_MAX_OPS]; /* per op with a recv_rows(), else 0 */
	double busy_median_us[EP_MAX_OPS]; /* per op: median of run() time minus sync waits */
	int64_t first_pass;       /* soak: the pass index of `first` */
	int32_t first_op;         /* the op whose check found `first` (earlier ops' findings come first) */
	double soak_s;            /* soak: seconds of all passes */
	int64_t soak_done;        /* soak: passes this rank completed */
	_Atomic int32_t finished;
};

/* What the launcher hands to a rank. */
struct ep_bench_env {
	const struct ep_run *run;
	int rank;
	struct ep_waiter *waiter;
	void *arena;                  /* the variant's shared arena */
	struct ep_rank_result *result;
	double *times;                /* [nops][iters] seconds, this rank; soak: [soak] wrong rows per pass */
	uint64_t *wrong_by_src;       /* [R] wrong rows per source rank */
	void *variant_ctx;            /* variant-specific, from a multi-node launcher (else NULL) */
};

/* One collective op of a variant. Every function returns 0 or a negative code. */
struct ep_op_desc {
	const char *name;
	int mask;         /* EP_OPS_* bits: timed when all are selected */
	int tag;          /* the variant's own (e.g. which data the op moves) */
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
	/* The output tensors the last run() wrote, as views for the data
	 * faults (cli/damage.h): up to max, the received rows first when
	 * `receives`; returns how many. May be NULL (no outputs to damage). */
	int (*outputs)(void *st, struct ep_tensor_view *v, int max);
	int receives;     /* outputs()[0] is the received rows: corrupt, permute, drop, stale aim there */
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
	/* Soak and routing that changes between iterations (may be NULL: the
	 * variant can do neither): rebuilds this rank's inputs and expected
	 * outputs for env->run, whose seed or routing step changed. Local,
	 * untimed; the engine holds every rank of the node at barriers around
	 * it. ep_barrier spans one node only: in a node job the hook must leave
	 * alone what peers on other nodes write into or read from (network
	 * buffers), which every rank's ops keep in step by their own signals
	 * and the variant's op_enter barrier. */
	int (*reseed)(void *st);
	/* Around every op (may be NULL). op_enter runs before each run of the op,
	 * checking pass and every iteration alike, untimed, before its before():
	 * e.g. a cluster-wide barrier, and noting which op runs. op_leave runs
	 * once after the op's timed loop, given this rank's algorithm bytes:
	 * e.g. to leave the op's network figures for the node's report. */
	int (*op_enter)(void *st, const struct ep_op_desc *op, int index);
	/* The link-down fault (may be NULL: the variant has no network): cuts
	 * this rank's connections to the ranks of node. 0 or a negative code. */
	int (*sever)(void *st, int node, int qp_error); /* qp_error: only by a queue-pair error (verbs) */
	void (*op_leave)(void *st, const struct ep_op_desc *op, int index, uint64_t alg);
	int rows_per_expert; /* a rank receives a row per (token, expert), not per (token, rank): imbalance figures */
	/* In a parallel configuration's MoE layer (moe_tp = 1: the MoE-EP group is
	 * the world) the sweep hands this variant the sliced routing (every rank
	 * dispatches its attention-TP slice: cli/layer_figures.h); the variant
	 * adds the attention-TP gather (EP_OPS_ATTN_TP). */
	int sliced_routing;
	int nops;
	const struct ep_op_desc *ops;
	/* every output tensor --fault bitflip can aim at, space-separated (a
	 * run has those its options produce: scales only for FP8, ...) */
	const char *tensors;
	/* Launcher side (may be NULL): the tokens per rank op i runs when not
	 * the point's --num-tokens (mixed: the low-latency ops'), else 0. */
	int (*op_tokens)(const struct ep_run *run, int i);
};

/* Does a run with these settings have op (its feature bits selected)? */
static inline int ep_op_present(const struct ep_op_desc *op, const struct ep_run_cfg *cfg)
{
	return (op->mask & EP_OPS_FEATURES & ~cfg->ops) == 0;
}

/* Is op timed in such a run (every bit of its mask selected)? */
static inline int ep_op_timed(const struct ep_op_desc *op, const struct ep_run_cfg *cfg)
{
	return (cfg->ops & op->mask) == op->mask;
}

/* Runs the engine in a rank; returns the process exit status (enum ep_exit). */
int ep_bench_rank(const struct ep_variant *v, struct ep_bench_env *env);

extern const struct ep_variant ep_intranode_variant;
extern const struct ep_variant ep_internode_variant;
extern const struct ep_variant ep_low_latency_variant;
extern const struct ep_variant ep_moe_layer_variant;
extern const struct ep_variant ep_ascend_variant;
extern const struct ep_variant ep_mixed_variant;

#endif
