/* low_latency_bench.h - the low-latency variant's rank state, shared by its one-host and multi-node halves.
 *
 * low_latency_bench.c holds the descriptors (one host: ep_low_latency_variant
 * and its --hook form; several nodes: ep_low_latency_nodes_variant and its
 * --hook form) and everything a rank does on one host. low_latency_nodes.c
 * adds what a rank of a node job does besides: its transport endpoint and
 * the rendezvous through the node's struct node_ctx (env->variant_ctx, see
 * cli/node_job.h), the cluster-wide barrier before every op, and the
 * network figures the node job reports per node and per link.
 */
#ifndef EP_LOW_LATENCY_BENCH_H
#define EP_LOW_LATENCY_BENCH_H

#include <stdint.h>

#include "cli/bench.h"
#include "cli/node_job.h"
#include "collectives/low_latency.h"
#include "collectives/transport/transport.h"
#include "reference/low_latency_ref.h"

/* Which data an op's figures follow. */
enum ll_kind { LL_KIND_DISPATCH, LL_KIND_COMBINE, LL_KIND_BOTH };

struct ll_state {
	struct ep_bench_env *env;
	const struct ep_options *opt;
	struct ep_ll_config cfg;
	struct ep_ll coll;
	struct ep_ll_ref ref;
	int me, T;                 /* this rank (global), its token count T_r */
	int local;                 /* its index within its node (me on one host) */
	uint16_t *x;               /* [T][H] bf16 dispatch input */
	const int64_t *topk_idx;   /* [T][K], rows of the reference */
	const float *topk_weights; /* [T][K] */
	struct ep_ll_dispatch_out out;
	uint16_t *expert_out;      /* [L][R*N][H] harness buffer in the arena (non-zero-copy) */
	uint16_t *combine_x;       /* where the expert outputs are: expert_out or the combine area */
	uint16_t *combined_x;      /* [T][H] */
	uint16_t *deq;             /* [H] expert-step scratch */
	float *scales;             /* [H/128] */
	int dispatched;            /* out holds a dispatch's result */
	int experts_ready;         /* combine_x holds the expert outputs */
	uint64_t disp_alg, disp_wire, comb_alg, comb_wire;
	uint64_t disp_nvl, comb_nvl; /* DeepEP bytes to ranks of this node, own included */
	/* multi-node only */
	struct node_ctx *nctx;     /* the node's shared context, NULL on one host */
	struct ep_transport net;   /* this rank's endpoint */
	int net_up;
	int op;                    /* the op being run (set by its before) */
	enum ll_kind op_kind;
	double *arrivals;          /* [EP_MAX_OPS][iters][nodes] us, rings of the last iterations */
	int narr[EP_MAX_OPS];
};

/* low_latency_nodes.c */

/* Creates this rank's endpoint (before ep_ll_init registers its region). */
int ep_ll_bench_net_open(struct ll_state *st);
/* Publishes the endpoint's address, waits for the node's table of every
 * rank's, connects to every rank of the other nodes. */
int ep_ll_bench_net_connect(struct ll_state *st);
/* Closes the endpoint (at once when this rank failed). */
void ep_ll_bench_net_close(struct ll_state *st);
/* Before op `op` of that kind: every rank of the job meets. */
int ep_ll_bench_sync(struct ll_state *st, int op, enum ll_kind kind);
/* A receive of `kind` completed: notes its arrivals for the running op. */
void ep_ll_bench_arrived(struct ll_state *st, enum ll_kind kind);
/* After op `op`'s timed loop: its network figures into the node context
 * (alg: this rank's DeepEP bytes of the op). */
void ep_ll_bench_figures(const struct ll_state *st, int op, enum ll_kind kind, uint64_t alg);

#endif
