/* results.h - what one measured run (one sweep point) produced, for the writers.
 *
 * Filled by the launcher from the ranks' shared result blocks; read by the
 * console table, JSON and CSV writers. Plain data, no behaviour.
 */
#ifndef EP_RESULTS_H
#define EP_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "reports/imbalance.h"
#include "reports/stats.h"

#define EP_MAX_OPS 12 /* a variant's ops (the low-latency layer with --hook has 9); ep_launch refuses more */
#define EP_TEXT_MAX 512

/* With redundant experts (reference/placement.h): a point's placement, and
 * the imbalance its logical routing had before it, for the writers. */
struct ep_placement_figures {
	int logical, physical;       /* E, P */
	char text[300];              /* "80 physical = 64 + 16 redundant, eplb zipf:1.2, linear, modpos" */
	int *phy2log;                /* [P] logical expert of each physical one (engine ids: rank-major) */
	int *logcnt;                 /* [E] replicas per logical expert */
	struct ep_imbalance *before; /* the logical routing with its E experts linearly on the ranks and no
				      * replicas; NULL when E is not a multiple of the ranks */
};

/* One phase of a MoE layer: its bytes summed over the world's ranks
 * (cli/layer_bytes.c, parallel-semantics.md section 7). Algorithm bytes
 * count a rank's rows to itself (DeepEP's convention), wire bytes do not;
 * intra: source and destination on one node (everything on one host),
 * inter: on different nodes. alg_intra + alg_inter is the phase's total. */
struct ep_phase_bytes {
	const char *phase;           /* "ep_dispatch", "moe_tp_gather", ...: a static string */
	uint64_t alg_intra, alg_inter;
	uint64_t wire_intra, wire_inter;
};
#define EP_LAYER_MAX_PHASES 8

/* A parallel configuration's MoE layer (cli/layer_figures.c): what enters
 * it and who it waits for. Rows per EP rank and balancedness are the
 * point's imbalance, taken over the MoE-EP ranks. */
struct ep_layer_figures {
	char config[160];            /* "dp=2,tp=2,cp=1,sp=1,moe_tp=2,moe_ep=2,moe_comm=a2a" */
	long moe_tokens;             /* rows entering the layer after de-duplication (every slice) */
	long attn_tokens;            /* the attention-DP groups' T_d summed */
	int ndp;                     /* attention-DP groups */
	int *tokens_per_dp;          /* [ndp] T_d */
	int slowest_op;              /* the phase with the longest median (max over ranks), -1 if none timed */
	int slowest_rank;            /* its slowest rank */
	char slowest_groups[160];    /* that rank's groups: "attn_tp=[0..1] dp=0 moe_tp=[0..1] ep=0/{0,2}" */
	int nphases;                 /* the phases the run timed, in the order a pass runs them */
	struct ep_phase_bytes bytes[EP_LAYER_MAX_PHASES];
	int op_phase[EP_MAX_OPS];    /* the bytes[] entry of each of the run's ops, -1: none */
};

/* Timing and bytes of one collective op (e.g. "dispatch"). */
struct ep_op_result {
	const char *name;
	int timed;                 /* 0 when --op excluded it */
	struct ep_stats time_us;   /* per iteration: max over ranks, microseconds */
	int slowest_rank;          /* rank that set the max most often */
	uint64_t alg_bytes;        /* sum over ranks, per op (DeepEP algorithm bytes) */
	uint64_t wire_bytes;       /* sum over ranks, per op, excluding self traffic */
	uint64_t rank_alg_bytes_max; /* the busiest rank's algorithm bytes */
	double algbw_gbs;          /* mean over ranks of alg bytes / median time */
	double wirebw_gbs;         /* mean over ranks of wire bytes / median time */
	double aggbw_gbs;          /* all ranks' alg bytes / median time */
	double *rank_median_us;    /* [R] each rank's own median op time */
	double *rank_busy_us;      /* [R] each rank's median busy time: op time less waits on peers */
	double *samples_us;        /* [nsamples] each timed iteration's max over ranks, in order */
	int nsamples;
	int missed;                /* 1 when the op missed a limit (--min-algbw, --max-regress, ...) */
	int tokens;                /* tokens per rank this op ran, 0: the point's (mixed: --ll-tokens of the low-latency ops) */
	uint64_t recv_rows;        /* rows this op's mode received over ranks, 0: the point's recv_rows */
};

/* Multi-node: one node's share of an op (internode). */
#define EP_NODE_HOST_MAX 64
struct ep_node_result {
	char host[EP_NODE_HOST_MAX];
	int ranks;                        /* rank processes on the node */
	double median_us[EP_MAX_OPS];     /* slowest of the node's ranks' own medians */
	uint64_t rdma_bytes[EP_MAX_OPS];  /* DeepEP's RDMA bytes sent by the node's ranks (own node included) */
	uint64_t wire_bytes[EP_MAX_OPS];  /* bytes the node's ranks put on the network (records + headers of ours) */
	uint64_t nvl_bytes[EP_MAX_OPS];   /* bytes copied within the node (DeepEP's NVL bytes) */
};

/* One direction of one node pair: what crossed it and when it was done. */
struct ep_link_result {
	int src, dst;                     /* nodes */
	uint64_t bytes[EP_MAX_OPS];       /* per op, all rails */
	double arrival_us[EP_MAX_OPS];    /* median over iterations of the latest rail's arrival */
	double gbs[EP_MAX_OPS];           /* bytes / arrival */
};

/* A soak (--soak): checked passes instead of timing. */
struct ep_soak_result {
	long passes;               /* checked passes run (0: not a soak) */
	long first;                /* index of the first pass (its seed is the run's + first) */
	long failed;               /* passes in which any rank saw a wrong element */
	double upper95;            /* one-sided 95% Clopper-Pearson bound of the failure rate */
	long first_failed;         /* index of the first failed pass, -1 if none */
	double seconds;            /* all passes, the slowest rank's */
};

/* One run's outcome. */
struct ep_run_result {
	int exit_code;             /* enum ep_exit */
	char message[EP_TEXT_MAX]; /* why it failed, one line; empty on success */
	int num_ranks;
	int nops;
	struct ep_op_result ops[EP_MAX_OPS];
	int checked;               /* correctness was checked */
	uint64_t checked_bytes;
	uint64_t wrong_elems;
	uint64_t wrong_rows;
	uint64_t handle_checked_bytes; /* of checked_bytes, in handle tensors (reference/compare.h) */
	uint64_t handle_wrong_elems;   /* of wrong_elems, in handle tensors */
	char first_mismatch[EP_TEXT_MAX];
	uint64_t *wrong_matrix;    /* [src][dst] wrong rows, R*R, or NULL */
	uint64_t recv_rows;        /* total rows received over ranks */
	double wall_s;             /* launcher wall time of this point */
	double copy_gbs;           /* host copy bandwidth reference, 0 if unknown */
	int num_nodes;             /* internode: per-node figures, or 0 */
	struct ep_node_result *nodes;
	int num_links;             /* internode: per-link figures, or 0 */
	struct ep_link_result *links;
	char routing_hash[65];     /* SHA-256 of every rank's top-k ids (int64, rank-major), or "" */
	struct ep_imbalance *imbalance; /* the routing's load figures (reports/imbalance.h), or NULL */
	struct ep_placement_figures *placement; /* redundant experts: the placement and what it bought, or NULL */
	struct ep_layer_figures *layer; /* a parallel configuration's MoE layer, or NULL */
	char *state_block;         /* the state block printed when the point ended stuck (as on stderr), or NULL */
	char limits[EP_TEXT_MAX];  /* the limits this point missed, one per line, or "" */
	struct ep_soak_result soak;
};

void ep_run_result_free(struct ep_run_result *r);

#endif
