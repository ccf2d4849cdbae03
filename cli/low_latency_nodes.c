/* low_latency_nodes.c - what a low-latency rank of a node job does besides the one-host variant.
 *
 * The node job (internode_job.c) maps one struct node_ctx per point and
 * hands it to its ranks as env->variant_ctx. A rank creates its transport
 * endpoint (the backend the job chose), lets ep_ll_init register its rank
 * region, publishes its address in the context, waits until the node job
 * has the table of every rank's, then connects to every rank of the other
 * nodes (the full mesh ep_ll_peers names). Every op starts with
 * ep_ll_barrier; the receives note when each node's data landed, and after
 * an op's timed loop the rank leaves its figures in the context:
 *   rdma  DeepEP's logical bytes of the op (the table's bytes, all messages,
 *         own rank included), as DeepEP's low-latency test counts them;
 *   wire  the bytes it put on the network (blocks and rows as sent);
 *   nvl   DeepEP's bytes of the messages to ranks of its own node;
 *   per node m: bytes put to m, and the median over the timed iterations
 *         (the last RING of them) of "send phase start -> every rank of m
 *         seen landed".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/low_latency_bench.h"
#include "collectives/error.h"
#include "reports/stats.h"

#define RING 4096 /* arrivals kept per op */

static int ring_len(const struct ll_state *st)
{
	int iters = st->env->run->opt->iters;
	return iters < RING ? iters : RING;
}

/* A setup failure naming the rank and node, with the transport's account. */
static int setup_fail(struct ll_state *st, int rc, const char *what)
{
	ep_sync_fail(st->env->waiter, rc, "rank %d (node %d): %s: %s", st->me, st->nctx->node, what,
		     st->net.error[0] ? st->net.error : ep_strerror(rc));
	return rc;
}

int ep_ll_bench_net_open(struct ll_state *st)
{
	const struct ep_run *run = st->env->run;
	struct node_ctx *ctx = st->nctx;
	int rc;
	ep_set_phase(st->env->waiter, "setup.transport");
	st->arrivals = calloc((size_t)EP_MAX_OPS * (size_t)ring_len(st) * (size_t)ctx->nodes,
			      sizeof(double));
	if (!st->arrivals)
		return -ENOMEM;
	/* The network's deadline ends a second before the node's own (half of
	 * it under 2 s): when a node stalls, the ranks waiting on it over the
	 * network give up before their node's peers waiting on them, so the
	 * report names the stalled node, not a local rank caught behind it. */
	double t = run->opt->timeout_s;
	struct ep_transport_cfg tc = {
		.rank = st->me, .num_ranks = st->cfg.num_ranks, .ranks_per_node = ctx->per_node,
		.host = ctx->host, .timeout_s = t > 2 ? t - 1 : t / 2, .job_id = ctx->job_id,
		.ib_dev = ctx->ib_dev[0] ? ctx->ib_dev : NULL, .gid_index = ctx->gid_index,
	};
	if ((rc = ep_transport_init(&st->net, ctx->ops, &tc, &ctx->addr[st->me]))) {
		setup_fail(st, rc, ctx->ops->name);
		ep_transport_fini(&st->net);
		return rc;
	}
	st->net_up = 1;
	return 0;
}

int ep_ll_bench_net_connect(struct ll_state *st)
{
	struct node_ctx *ctx = st->nctx;
	struct ep_waiter *w = st->env->waiter;
	int rc, peers[EP_MAX_NODES * MAX_LOCAL];
	ep_flag_add(&ctx->published, 1);
	ep_set_phase(w, "setup.rendezvous");
	if ((rc = ep_flag_wait_geq(w, &ctx->table_ready, 1, -1)))
		return rc;
	ep_set_phase(w, "setup.connect");
	int n = ep_ll_peers(&st->coll, peers);
	if ((rc = ep_transport_connect(&st->net, peers, n, ctx->addr)))
		return setup_fail(st, rc, "connecting to the ranks of the other nodes");
	return 0;
}

void ep_ll_bench_net_close(struct ll_state *st)
{
	if (!st->net_up)
		return;
	/* A rank that failed leaves at once: waiting for its peers' goodbyes
	 * would only delay the launcher's report by another timeout. */
	struct ep_waiter *w = st->env->waiter;
	if (atomic_load(&w->sync->ctl[w->rank].status) != 0)
		st->net.cfg.timeout_s = 0.01;
	ep_transport_fini(&st->net);
	st->net_up = 0;
}

int ep_ll_bench_sync(struct ll_state *st, int op, enum ll_kind kind)
{
	st->op = op;
	st->op_kind = kind;
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_ll_barrier(&st->coll);
}

static double *ring(const struct ll_state *st, int op, int it)
{
	return st->arrivals + ((size_t)op * (size_t)ring_len(st) + (size_t)it) * (size_t)st->nctx->nodes;
}

void ep_ll_bench_arrived(struct ll_state *st, enum ll_kind kind)
{
	const struct ep_ll_figures *d = &st->coll.last_dispatch, *c = &st->coll.last_combine;
	if (st->op_kind == LL_KIND_DISPATCH ? kind != LL_KIND_DISPATCH : kind != LL_KIND_COMBINE)
		return; /* e.g. the dispatch inside dispatch+combine: its combine counts */
	double *a = ring(st, st->op, st->narr[st->op]++ % ring_len(st));
	for (int m = 0; m < st->nctx->nodes; m++) {
		int64_t ns = kind == LL_KIND_DISPATCH ? d->arrival_ns[m] : c->arrival_ns[m];
		if (st->op_kind == LL_KIND_BOTH) /* from the dispatch's start */
			ns += c->start_ns - d->start_ns;
		a[m] = (double)ns * 1e-3;
	}
}

/* Median over the ring of op's arrivals from node m, in microseconds (0
 * when out of memory: it is a report, after the timed loop). */
static double median_arrival(const struct ll_state *st, int op, int m)
{
	int n = st->narr[op] < ring_len(st) ? st->narr[op] : ring_len(st);
	double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1)), med = 0;
	if (!v || !n) {
		free(v);
		return 0;
	}
	for (int i = 0; i < n; i++)
		v[i] = ring(st, op, i)[m];
	med = ep_median(v, (size_t)n);
	free(v);
	return med;
}

void ep_ll_bench_figures(const struct ll_state *st, int op, enum ll_kind kind, uint64_t alg)
{
	const struct ep_ll_figures *d = &st->coll.last_dispatch, *c = &st->coll.last_combine;
	struct rank_figures *fg = &st->nctx->figures[st->local];
	uint64_t wire = 0;
	for (int m = 0; m < st->nctx->nodes; m++) {
		uint64_t b = (kind != LL_KIND_COMBINE ? d->net_bytes[m] : 0) +
			     (kind != LL_KIND_DISPATCH ? c->net_bytes[m] : 0);
		fg->link_bytes[op][m] = b;
		fg->arrival_us[op][m] = m == st->nctx->node ? 0 : median_arrival(st, op, m);
		wire += b;
	}
	fg->rdma_bytes[op] = alg;
	fg->wire_bytes[op] = wire;
	fg->nvl_bytes[op] = (kind != LL_KIND_COMBINE ? st->disp_nvl : 0) +
			    (kind != LL_KIND_DISPATCH ? st->comb_nvl : 0);
}
