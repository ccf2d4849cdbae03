/* internode_bench.c - the internode variant: dispatch and combine descriptors inside one rank.
 *
 * The node job that launches these ranks is internode_job.c.
 * Inside a rank the variant is intranode_bench.c's, with global ranks:
 * inputs from the seed, layout (with num_tokens_per_rdma_rank), the
 * collective of collectives/internode.c, and reference/internode_ref.c's
 * checks. Every op starts with a cluster-wide barrier (untimed), so
 * iterations line up across nodes and per-iteration maxima mean something.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/node_job.h"
#include "cli/normal_io.h"
#include "collectives/error.h"
#include "collectives/internode.h"
#include "reference/internode_ref.h"
#include "reports/stats.h"

struct inode_state {
	struct ep_bench_env *env;
	struct ep_normal_io io;    /* this rank's tensors */
	const struct ep_shape *s;  /* = &io.shape */
	struct node_ctx *ctx;
	int node, local, P, N;
	struct ep_transport net;
	int net_up;
	struct ep_internode coll;
	int coll_up;
	struct ep_internode_ref ref;
	int dispatched, last_cached;
	int64_t *arrivals[2];  /* [iters][N] ring of the last op's per-node arrival times */
	int narr[2];
};

static int inode_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	struct ep_internode_ref ref;
	int P = run->opt->ranks_per_node;
	int rc = ep_internode_ref_init(&ref, &run->shape, &run->routing, run->opt->seed, 0, P);
	if (rc)
		return rc;
	struct ep_internode_sizes sz;
	ep_internode_ref_sizes(&ref, &sz.capacity, &sz.rdma_capacity, &sz.send_capacity);
	ep_internode_ref_fini(&ref);
	run->capacity = sz.capacity;
	*arena_bytes = ep_internode_arena_bytes(&run->shape, P, run->capacity);
	*rank_bytes = ep_normal_rank_bytes(&run->shape, run->capacity) +
		      4 * (size_t)run->shape.num_ranks * (size_t)(run->shape.num_ranks / P) + /* rdma counts */
		      ep_internode_rank_bytes(&run->shape, P, &sz) +
		      2 * sizeof(int64_t) * (size_t)run->opt->iters * (size_t)(run->shape.num_ranks / P);
	return 0;
}

static void inode_teardown(void *p)
{
	struct inode_state *st = p;
	if (!st)
		return;
	if (st->net_up) {
		/* A rank that failed leaves at once: waiting for its peers' goodbyes
		 * would only delay the launcher's report by another timeout. */
		if (atomic_load(&st->env->waiter->sync->ctl[st->env->waiter->rank].status) != 0)
			st->net.cfg.timeout_s = 0.01;
		ep_transport_fini(&st->net);
	}
	if (st->coll_up)
		ep_internode_fini(&st->coll);
	ep_internode_ref_fini(&st->ref);
	ep_normal_io_fini(&st->io);
	free(st->arrivals[0]);
	free(st->arrivals[1]);
	free(st);
}

/* A setup failure naming the rank and node, with the transport's account. */
static int setup_fail(struct inode_state *st, int rc, const char *what)
{
	ep_sync_fail(st->env->waiter, rc, "rank %d (node %d): %s: %s", st->env->rank, st->node, what,
		     st->net.error[0] ? st->net.error : ep_strerror(rc));
	return rc;
}

static int inode_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	struct node_ctx *ctx = env->variant_ctx;
	int me = env->rank, rc = -ENOMEM;
	struct inode_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->ctx = ctx;
	st->P = ctx->per_node;
	st->N = ctx->nodes;
	st->node = me / st->P;
	st->local = me % st->P;
	if ((rc = ep_internode_ref_init(&st->ref, &run->shape, &run->routing, run->opt->seed, me, st->P)) ||
	    (rc = ep_normal_io_init(&st->io, run, me, ep_reference_topk_idx(&st->ref.base, me),
				    ep_reference_topk_weights(&st->ref.base, me), st->P)))
		goto fail;
	st->s = &st->io.shape;
	size_t R = (size_t)st->s->num_ranks;
	rc = -ENOMEM;
	st->arrivals[0] = calloc((size_t)run->opt->iters * (size_t)st->N, sizeof(int64_t));
	st->arrivals[1] = calloc((size_t)run->opt->iters * (size_t)st->N, sizeof(int64_t));
	if (!st->arrivals[0] || !st->arrivals[1])
		goto fail;

	/* the network: endpoint, regions, address out, table in, connections */
	ep_set_phase(env->waiter, "setup.transport");
	struct ep_transport_cfg tc = {
		.rank = me, .num_ranks = (int)R, .ranks_per_node = st->P, .host = ctx->host,
		/* The network gives up a second before the shared-memory waits do, so a
		 * stalled node is named as such, not as a local peer stuck behind it. */
		.timeout_s = run->opt->timeout_s > 2 ? run->opt->timeout_s - 1 : run->opt->timeout_s / 2,
		.job_id = ctx->job_id,
		.ib_dev = ctx->ib_dev[0] ? ctx->ib_dev : NULL, .gid_index = ctx->gid_index,
	};
	if ((rc = ep_transport_init(&st->net, ctx->ops, &tc, &ctx->addr[me]))) {
		ep_transport_fini(&st->net);
		return setup_fail(st, rc, ctx->ops->name), inode_teardown(st), rc;
	}
	st->net_up = 1;
	struct ep_internode_sizes sz;
	ep_internode_ref_sizes(&st->ref, &sz.capacity, &sz.rdma_capacity, &sz.send_capacity);
	if ((rc = ep_internode_init(&st->coll, st->s, st->P, st->node, st->local, env->arena, &sz,
				    env->waiter, &st->net))) {
		setup_fail(st, rc, "network buffers");
		goto fail;
	}
	st->coll_up = 1;
	ep_flag_add(&ctx->published, 1);
	ep_set_phase(env->waiter, "setup.rendezvous");
	if ((rc = ep_flag_wait_geq(env->waiter, &ctx->table_ready, 1, -1)))
		goto fail;
	ep_set_phase(env->waiter, "setup.connect");
	int peers[EP_MAX_NODES];
	int n = ep_internode_peers(&st->coll, peers);
	if ((rc = ep_transport_connect(&st->net, peers, n, ctx->addr))) {
		setup_fail(st, rc, "connecting to its rail peers");
		goto fail;
	}
	*out = st;
	return 0;
fail:
	inode_teardown(st);
	return rc;
}

static int dispatch_once(struct inode_state *st, int cached)
{
	struct ep_dispatch_in in = ep_normal_io_dispatch_in(&st->io);
	int rc = ep_internode_dispatch(&st->coll, &in, cached, &st->io.out);
	st->dispatched = rc == 0;
	st->last_cached = cached;
	if (rc == 0) {
		int64_t *a = st->arrivals[0] + (size_t)(st->narr[0]++ % st->env->run->opt->iters) * st->N;
		memcpy(a, st->coll.last_dispatch.arrival_ns, sizeof(int64_t) * (size_t)st->N);
	}
	return rc;
}

static int op_barrier(void *p)
{
	struct inode_state *st = p;
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_internode_barrier(&st->coll);
}

static int dispatch_prepare(void *p)
{
	struct inode_state *st = p;
	if (st->env->run->opt->cached && !st->coll.have_handle)
		return dispatch_once(st, 0);
	return 0;
}

static int dispatch_run(void *p)
{
	struct inode_state *st = p;
	return dispatch_once(st, st->env->run->opt->cached);
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct inode_state *st = p;
	ep_internode_ref_check_layout(&st->ref, &st->io.layout, rep);
	ep_reference_check_dispatch(&st->ref.base, &st->io.out, st->last_cached, rep);
	return 0;
}

static uint64_t inode_recv_rows(const void *p)
{
	return ((const struct inode_state *)p)->coll.num_recv;
}

/* Median over the ring of arrival times from node m, in microseconds (0
 * when out of memory: it is a report, after the timed loop). It was an
 * insertion sort on a stack array: O(iters^2), which at -n 100000 kept a
 * rank busy long enough for the launcher to call it a stall. */
static double median_arrival(const struct inode_state *st, int op, int m)
{
	size_t n = (size_t)(st->narr[op] < st->env->run->opt->iters ? st->narr[op] : st->env->run->opt->iters);
	double *v = malloc(sizeof(double) * (n + 1)), med = 0;
	if (v) {
		for (size_t i = 0; i < n; i++)
			v[i] = (double)st->arrivals[op][i * (size_t)st->N + (size_t)m] * 1e-3;
		med = ep_median(v, n);
	}
	free(v);
	return med;
}

/* Records this rank's figures for op i (0 dispatch, 1 combine) in the node context. */
static void put_figures(const struct inode_state *st, int op, uint64_t rdma, uint64_t nvl,
			const struct ep_internode_op_figures *f, uint64_t *wire)
{
	struct rank_figures *fg = &st->ctx->figures[st->local];
	*wire = 0;
	for (int m = 0; m < st->N; m++) {
		fg->link_bytes[op][m] = f->net_bytes[m];
		fg->arrival_us[op][m] = m == st->node ? 0 : median_arrival(st, op, m);
		*wire += f->net_bytes[m];
	}
	fg->rdma_bytes[op] = rdma;
	fg->wire_bytes[op] = *wire;
	fg->nvl_bytes[op] = nvl;
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct inode_state *st = p;
	/* DeepEP: RDMA = (token, node) pairs x row (FP8: H (1 + 4/128)), own node included;
	 * NVL = received rows x row */
	uint64_t row = ep_normal_dispatch_row_bytes(st->s);
	*alg = st->coll.last_dispatch.rdma_tokens * row;
	put_figures(st, 0, *alg, st->coll.num_recv * row, &st->coll.last_dispatch, wire);
}

static int combine_prepare(void *p)
{
	struct inode_state *st = p;
	int rc;
	if (!st->dispatched || st->last_cached) {
		if ((rc = op_barrier(st)) || (rc = dispatch_once(st, 0)))
			return rc;
	}
	ep_set_phase(st->env->waiter, "experts");
	ep_normal_io_apply_experts(&st->io, ep_internode_combine_x(&st->coll),
				   ep_internode_combine_w(&st->coll));
	return 0;
}

static int combine_run(void *p)
{
	struct inode_state *st = p;
	int rc = ep_internode_combine(&st->coll, st->io.bias[0], st->io.bias[1], st->io.combined_x,
				      st->io.combined_w);
	if (rc == 0) {
		int64_t *a = st->arrivals[1] + (size_t)(st->narr[1]++ % st->env->run->opt->iters) * st->N;
		memcpy(a, st->coll.last_combine.arrival_ns, sizeof(int64_t) * (size_t)st->N);
	}
	return rc;
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct inode_state *st = p;
	ep_internode_ref_check_combine(&st->ref, st->io.combined_x, st->io.combined_w, rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct inode_state *st = p;
	uint64_t row = 2 * (uint64_t)st->s->hidden;
	*alg = st->coll.last_dispatch.rdma_tokens * row;
	put_figures(st, 1, *alg, st->coll.num_recv * row, &st->coll.last_combine, wire);
}

/* --dump: every tensor of this rank as DIR/rank<q>/<name>.npy (q global). */
static int inode_dump(void *p, const char *dir)
{
	struct inode_state *st = p;
	return ep_normal_io_dump(&st->io, dir, ep_internode_combine_x(&st->coll));
}

static void dispatch_corrupt(void *p)
{
	ep_normal_io_corrupt(&((struct inode_state *)p)->io);
}

static const struct ep_op_desc inode_ops[] = {
	{.name = "dispatch", .prepare = dispatch_prepare, .before = op_barrier, .run = dispatch_run,
	 .check = dispatch_check, .bytes = dispatch_bytes, .recv_rows = inode_recv_rows,
	 .corrupt = dispatch_corrupt},
	{.name = "combine", .prepare = combine_prepare, .before = op_barrier, .run = combine_run,
	 .check = combine_check, .bytes = combine_bytes},
};

const struct ep_variant ep_internode_variant = {
	.name = "internode",
	.size = inode_size,
	.setup = inode_setup,
	.teardown = inode_teardown,
	.dump = inode_dump,
	.nops = 2,
	.ops = inode_ops,
	.op_mask = {EP_OPS_DISPATCH, EP_OPS_COMBINE},
};
