/* internode_bench.c - the internode variant and `epbench internode`: one node's part of a cluster job.
 *
 * Every node runs this. Its launcher maps the node arena and a small shared
 * context (addresses, per-rank figures), forks its ranks through
 * ep_launch_node, and meanwhile serves the cluster connections from the
 * supervision hook: it forwards its ranks' transport addresses to node 0 and
 * hands them the full table, relays failures, and ends the point when another
 * node fails. Each node then sends its raw per-rank results to node 0, which
 * prints the one table and verdict of the job; the other nodes print a short
 * line and exit with the job's status.
 *
 * Inside a rank the variant is intranode_bench.c's, with global ranks:
 * inputs from the seed, layout (with num_tokens_per_rdma_rank), the
 * collective of collectives/internode.c, and reference/internode_ref.c's
 * checks. Every op starts with a cluster-wide barrier (untimed), so
 * iterations line up across nodes and per-iteration maxima mean something.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/cluster.h"
#include "cli/hostinfo.h"
#include "cli/launcher.h"
#include "collectives/error.h"
#include "collectives/internode.h"
#include "collectives/layout.h"
#include "reference/internode_ref.h"
#include "reference/transform.h"
#include "reports/atomic_file.h"
#include "reports/npy.h"
#include "reports/report.h"

#define MAX_LOCAL 32

/* One rank's network figures, written at the end of its timed loops. */
struct rank_figures {
	uint64_t rdma_bytes[EP_MAX_OPS];
	uint64_t wire_bytes[EP_MAX_OPS];
	uint64_t nvl_bytes[EP_MAX_OPS];
	uint64_t link_bytes[EP_MAX_OPS][EP_MAX_NODES]; /* put to node m */
	double arrival_us[EP_MAX_OPS][EP_MAX_NODES];   /* median: op start -> last chunk from m */
};

/* The node's shared context for one point (MAP_SHARED, made before fork). */
struct node_ctx {
	int nodes, per_node, node;
	char host[EP_ADDR_STR_MAX];            /* this node's data address */
	const struct ep_transport_ops *ops;    /* static table: same address after fork */
	char ib_dev[64];
	int gid_index;
	uint64_t job_id;
	struct ep_flag published;              /* local ranks whose address is in addr[] */
	struct ep_flag table_ready;            /* 1 once addr[] holds every rank's */
	struct ep_transport_addr addr[EP_MAX_NODES * MAX_LOCAL];
	struct rank_figures figures[MAX_LOCAL];
};

/* ------------------------------------------------------------------ */
/* The variant, inside one rank                                         */

struct inode_state {
	struct ep_bench_env *env;
	struct ep_shape shape;     /* the run's, with this rank's own token count */
	const struct ep_shape *s;
	struct node_ctx *ctx;
	int node, local, P, N;
	struct ep_transport net;
	int net_up;
	struct ep_internode coll;
	int coll_up;
	struct ep_internode_ref ref;
	void *x;
	float *x_scales;
	int64_t *topk_idx;
	float *topk_weights;
	uint16_t *bias[2];
	struct ep_layout layout;
	struct ep_dispatch_out out;
	int dispatched, last_cached;
	uint16_t *combined_x;
	float *combined_w;
	int64_t *arrivals[2];  /* [iters][N] ring of the last op's per-node arrival times */
	int narr[2];
};

static int inode_size(struct ep_run *run, size_t *arena_bytes)
{
	struct ep_internode_ref ref;
	int P = run->opt->ranks_per_node;
	int rc = ep_internode_ref_init(&ref, &run->shape, &run->routing, run->opt->seed, 0, P);
	if (rc)
		return rc;
	size_t rdma, send;
	ep_internode_ref_sizes(&ref, &run->capacity, &rdma, &send);
	ep_internode_ref_fini(&ref);
	*arena_bytes = ep_internode_arena_bytes(&run->shape, P, run->capacity);
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
	free(st->x);
	free(st->x_scales);
	free(st->topk_idx);
	free(st->topk_weights);
	free(st->bias[0]);
	free(st->bias[1]);
	free(st->layout.num_tokens_per_rank);
	free(st->layout.num_tokens_per_rdma_rank);
	free(st->layout.num_tokens_per_expert);
	free(st->layout.is_token_in_rank);
	free(st->combined_x);
	free(st->combined_w);
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
	st->shape = run->shape;
	st->shape.num_tokens = ep_rank_num_tokens(run->shape.num_tokens, run->opt->seed, me,
						  run->shape.uneven_tokens);
	const struct ep_shape *s = &st->shape;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, E = (size_t)s->num_experts;
	int S = ep_dtype_num_scales(s->dtype, s->hidden);
	st->env = env;
	st->s = s;
	st->ctx = ctx;
	st->P = ctx->per_node;
	st->N = ctx->nodes;
	st->node = me / st->P;
	st->local = me % st->P;
	if ((rc = ep_internode_ref_init(&st->ref, &run->shape, &run->routing, run->opt->seed, me, st->P)))
		goto fail;
	rc = -ENOMEM;
	size_t in_row = s->dtype == EP_DTYPE_FP8 ? H : 2 * H;
	st->x = malloc(T * in_row + 1);
	st->x_scales = malloc(sizeof(float) * (T * (size_t)S + 1));
	st->combined_x = malloc(sizeof(uint16_t) * (T * H + 1));
	st->layout.num_tokens_per_rank = malloc(sizeof(int32_t) * R);
	st->layout.num_tokens_per_rdma_rank = malloc(sizeof(int32_t) * (size_t)st->N);
	st->layout.num_tokens_per_expert = malloc(sizeof(int32_t) * E);
	st->layout.is_token_in_rank = malloc(T * R + 1);
	st->arrivals[0] = calloc((size_t)run->opt->iters * (size_t)st->N, sizeof(int64_t));
	st->arrivals[1] = calloc((size_t)run->opt->iters * (size_t)st->N, sizeof(int64_t));
	if (!st->x || !st->x_scales || !st->combined_x || !st->layout.num_tokens_per_rank ||
	    !st->layout.num_tokens_per_rdma_rank || !st->layout.num_tokens_per_expert ||
	    !st->layout.is_token_in_rank || !st->arrivals[0] || !st->arrivals[1])
		goto fail;
	for (size_t t = 0; t < T; t++) {
		if (s->dtype == EP_DTYPE_INT8)
			ep_gen_bf16_row(run->opt->seed, EP_STREAM_X, me, (int64_t)t, s->hidden,
					(uint16_t *)st->x + t * H);
		else
			ep_gen_x_row(s, run->opt->seed, me, (int64_t)t, (char *)st->x + t * in_row,
				     st->x_scales + t * (size_t)S);
	}
	const int64_t *idx = ep_reference_topk_idx(&st->ref.base, me);
	if (s->with_topk) {
		st->topk_idx = malloc(sizeof(int64_t) * (T * K + 1));
		st->topk_weights = malloc(sizeof(float) * (T * K + 1));
		st->combined_w = malloc(sizeof(float) * (T * K + 1));
		if (!st->topk_idx || !st->topk_weights || !st->combined_w)
			goto fail;
		memcpy(st->topk_idx, idx, sizeof(int64_t) * T * K);
		memcpy(st->topk_weights, ep_reference_topk_weights(&st->ref.base, me), sizeof(float) * T * K);
	}
	for (int b = 0; b < s->num_bias; b++) {
		st->bias[b] = malloc(sizeof(uint16_t) * (T * H + 1));
		if (!st->bias[b])
			goto fail;
		for (size_t t = 0; t < T; t++)
			ep_gen_bf16_row(run->opt->seed, b ? EP_STREAM_BIAS1 : EP_STREAM_BIAS0, me, (int64_t)t,
					s->hidden, st->bias[b] + t * H);
	}
	ep_get_dispatch_layout(idx, s->num_tokens, s->num_topk, s->num_experts, s->num_ranks, st->P,
			       &st->layout);

	/* the network: endpoint, regions, address out, table in, connections */
	ep_set_phase(env->waiter, "setup.transport");
	struct ep_transport_cfg tc = {
		.rank = me, .num_ranks = (int)R, .ranks_per_node = st->P, .host = ctx->host,
		.timeout_s = run->opt->timeout_s, .job_id = ctx->job_id,
		.ib_dev = ctx->ib_dev[0] ? ctx->ib_dev : NULL, .gid_index = ctx->gid_index,
	};
	if ((rc = ep_transport_init(&st->net, ctx->ops, &tc, &ctx->addr[me]))) {
		ep_transport_fini(&st->net);
		return setup_fail(st, rc, ctx->ops->name), inode_teardown(st), rc;
	}
	st->net_up = 1;
	struct ep_internode_sizes sz;
	ep_internode_ref_sizes(&st->ref, &sz.capacity, &sz.rdma_capacity, &sz.send_capacity);
	if ((rc = ep_internode_init(&st->coll, s, st->P, st->node, st->local, env->arena, &sz,
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
	struct ep_dispatch_in in = {
		.x = st->x,
		.x_scales = st->x_scales,
		.topk_idx = st->topk_idx,
		.topk_weights = st->topk_weights,
		.layout = &st->layout,
	};
	int rc = ep_internode_dispatch(&st->coll, &in, cached, &st->out);
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
	ep_internode_ref_check_layout(&st->ref, &st->layout, rep);
	ep_reference_check_dispatch(&st->ref.base, &st->out, st->last_cached, rep);
	return 0;
}

static uint64_t inode_recv_rows(const void *p)
{
	return ((const struct inode_state *)p)->coll.num_recv;
}

/* Median over the ring of arrival times from node m, in microseconds. */
static double median_arrival(const struct inode_state *st, int op, int m)
{
	int n = st->narr[op] < st->env->run->opt->iters ? st->narr[op] : st->env->run->opt->iters;
	double v[n > 0 ? n : 1];
	for (int i = 0; i < n; i++)
		v[i] = (double)st->arrivals[op][(size_t)i * st->N + m] * 1e-3;
	for (int i = 1; i < n; i++) /* insertion sort: n is the iteration count */
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
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
	const struct ep_shape *s = st->s;
	/* DeepEP: RDMA = (token, node) pairs x row (FP8: H (1 + 4/128)), own node included;
	 * NVL = received rows x row */
	uint64_t row = ep_dtype_row_bytes(s->dtype, s->hidden) +
		       4 * (uint64_t)ep_dtype_num_scales(s->dtype, s->hidden);
	*alg = st->coll.last_dispatch.rdma_tokens * row;
	put_figures(st, 0, *alg, st->coll.num_recv * row, &st->coll.last_dispatch, wire);
}

static void apply_experts(struct inode_state *st)
{
	const struct ep_shape *s = st->s;
	int H = s->hidden, K = s->num_topk, S = ep_dtype_num_scales(s->dtype, H), me = st->env->rank;
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, H);
	uint16_t *cx = ep_internode_combine_x(&st->coll);
	float *cw = ep_internode_combine_w(&st->coll);
	uint16_t deq[H];
	for (size_t m = 0; m < st->out.num_recv; m++) {
		const int64_t *idx = st->out.recv_topk_idx ? st->out.recv_topk_idx + m * (size_t)K : NULL;
		ep_dispatched_row_to_bf16(s, (const char *)st->out.recv_x + m * row_bytes,
					  S ? st->out.recv_x_scales + m * (size_t)S : NULL, deq);
		ep_expert_transform(me, ep_row_expert(idx, K), deq, H, cx + m * (size_t)H);
		if (idx && st->out.recv_topk_weights)
			for (int j = 0; j < K; j++)
				cw[m * (size_t)K + j] = ep_expert_weight(
					me, (int)idx[j], st->out.recv_topk_weights[m * (size_t)K + j]);
	}
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
	apply_experts(st);
	return 0;
}

static int combine_run(void *p)
{
	struct inode_state *st = p;
	int rc = ep_internode_combine(&st->coll, st->bias[0], st->bias[1], st->combined_x,
				      st->s->with_topk ? st->combined_w : NULL);
	if (rc == 0) {
		int64_t *a = st->arrivals[1] + (size_t)(st->narr[1]++ % st->env->run->opt->iters) * st->N;
		memcpy(a, st->coll.last_combine.arrival_ns, sizeof(int64_t) * (size_t)st->N);
	}
	return rc;
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct inode_state *st = p;
	ep_internode_ref_check_combine(&st->ref, st->combined_x, st->combined_w, rep);
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
	const struct ep_shape *s = st->s;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, E = (size_t)s->num_experts, L = (size_t)ep_local_experts(s);
	size_t M = st->out.num_recv, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	size_t N = (size_t)st->N;
	char path[4096];
	int rc, n = snprintf(path, sizeof(path), "%s/rank%d", dir, st->env->rank);
	if (n < 0 || (size_t)n >= sizeof(path) - 64)
		return -ENAMETOOLONG;
	if ((rc = ep_mkdir_p(path)))
		return rc;
	enum ep_npy_dtype xd = s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_U2;
	enum ep_npy_dtype rxd = s->dtype == EP_DTYPE_BF16 ? EP_NPY_U2
			      : s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_I1;
	struct { const char *name; enum ep_npy_dtype d; size_t d0, d1; int nd; const void *data; } t[] = {
		{"x", xd, T, H, 2, st->x},
		{"x_scales", EP_NPY_F4, T, S, 2, s->dtype == EP_DTYPE_FP8 ? st->x_scales : NULL},
		{"topk_idx", EP_NPY_I8, T, K, 2, st->topk_idx},
		{"topk_weights", EP_NPY_F4, T, K, 2, st->topk_weights},
		{"num_tokens_per_rank", EP_NPY_I4, R, 0, 1, st->layout.num_tokens_per_rank},
		{"num_tokens_per_rdma_rank", EP_NPY_I4, N, 0, 1, st->layout.num_tokens_per_rdma_rank},
		{"is_token_in_rank", EP_NPY_BOOL, T, R, 2, st->layout.is_token_in_rank},
		{"num_tokens_per_expert", EP_NPY_I4, E, 0, 1, st->layout.num_tokens_per_expert},
		{"recv_x", rxd, M, H, 2, st->out.recv_x},
		{"recv_x_scales", EP_NPY_F4, M, S, 2, st->out.recv_x_scales},
		{"recv_topk_idx", EP_NPY_I8, M, K, 2, st->out.recv_topk_idx},
		{"recv_topk_weights", EP_NPY_F4, M, K, 2, st->out.recv_topk_weights},
		{"num_recv_tokens_per_expert", EP_NPY_I4, L, 0, 1, st->out.num_recv_tokens_per_expert},
		{"rank_prefix_matrix", EP_NPY_I4, R, R, 2, st->out.rank_prefix_matrix},
		{"recv_src_idx", EP_NPY_I4, M, 0, 1, st->out.recv_src_idx},
		{"combine_x", EP_NPY_U2, M, H, 2, ep_internode_combine_x(&st->coll)},
		{"bias_0", EP_NPY_U2, T, H, 2, st->bias[0]},
		{"bias_1", EP_NPY_U2, T, H, 2, st->bias[1]},
		{"combined_x", EP_NPY_U2, T, H, 2, st->combined_x},
		{"combined_topk_weights", EP_NPY_F4, T, K, 2, s->with_topk ? st->combined_w : NULL},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!t[i].data)
			continue;
		size_t shape[2] = {t[i].d0, t[i].d1};
		snprintf(path + n, sizeof(path) - (size_t)n, "/%s.npy", t[i].name);
		if ((rc = ep_npy_write(path, t[i].d, shape, t[i].nd, t[i].data)))
			return rc;
	}
	return 0;
}

static void dispatch_corrupt(void *p)
{
	struct inode_state *st = p;
	size_t row_bytes = ep_dtype_row_bytes(st->s->dtype, st->s->hidden);
	if (st->out.num_recv == 0)
		return;
	uint8_t *x = (uint8_t *)st->out.recv_x + (st->out.num_recv - 1) * row_bytes;
	x[row_bytes / 2] ^= 1;
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

/* ------------------------------------------------------------------ */
/* One node's part of the job                                           */

/* Supervision-hook state of one point. */
struct node_point {
	struct ep_cluster *cl;
	struct node_ctx *ctx;
	int point, nodes, node, P;
	int addrs_sent, table_done;
	int remote;  /* the point ended because of another node (or node 0's order) */
};

/* ADDRS/TABLE payload: int32 point, then addresses. */
static int node_poll(void *arg, char *msg, size_t len)
{
	struct node_point *np = arg;
	struct node_ctx *ctx = np->ctx;
	int rc = ep_cluster_pump(np->cl, 0, msg, len);
	if (rc) {
		np->remote = 1;
		return rc;
	}
	size_t one = sizeof(struct ep_transport_addr);
	if (!np->addrs_sent && (int)atomic_load(&ctx->published.value) >= np->P) {
		if (np->node != 0) {
			size_t plen = 4 + one * (size_t)np->P;
			char *buf = malloc(plen);
			if (!buf)
				return snprintf(msg, len, "out of memory"), EP_EXIT_ENV;
			memcpy(buf, &np->point, 4);
			memcpy(buf + 4, &ctx->addr[np->node * np->P], one * (size_t)np->P);
			rc = ep_cluster_send(np->cl, 0, EP_MSG_ADDRS, buf, plen);
			free(buf);
			if (rc) {
				np->remote = 1;
				return snprintf(msg, len, "lost node 0 (the master) while sending addresses"),
				       EP_EXIT_TIMEOUT;
			}
		}
		np->addrs_sent = 1;
	}
	if (np->table_done || !np->addrs_sent)
		return 0;
	if (np->node == 0) {
		for (int k = 1; k < np->nodes; k++) {
			size_t got;
			const char *a = ep_cluster_received(np->cl, k, EP_MSG_ADDRS, np->point, &got);
			if (!a || got != 4 + one * (size_t)np->P)
				return 0;
		}
		for (int k = 1; k < np->nodes; k++) {
			const char *a = ep_cluster_received(np->cl, k, EP_MSG_ADDRS, np->point, NULL);
			memcpy(&ctx->addr[k * np->P], a + 4, one * (size_t)np->P);
		}
		size_t R = (size_t)np->nodes * (size_t)np->P, plen = 4 + one * R;
		char *buf = malloc(plen);
		if (!buf)
			return snprintf(msg, len, "out of memory"), EP_EXIT_ENV;
		memcpy(buf, &np->point, 4);
		memcpy(buf + 4, ctx->addr, one * R);
		ep_cluster_broadcast(np->cl, EP_MSG_TABLE, buf, plen);
		free(buf);
	} else {
		size_t got, R = (size_t)np->nodes * (size_t)np->P;
		const char *t = ep_cluster_received(np->cl, 0, EP_MSG_TABLE, np->point, &got);
		if (!t || got != 4 + one * R)
			return 0;
		memcpy(ctx->addr, t + 4, one * R);
	}
	np->table_done = 1;
	ep_flag_store(&ctx->table_ready, 1);
	return 0;
}

/* RESULT payload: header, then results [P], times [P][nops][iters], wrong [P][R], figures [P]. */
struct result_hdr {
	int32_t point, code, nlocal;
	char message[EP_TEXT_MAX];
	double wall_s;
};

static size_t result_bytes(int P, int R, int nops, int iters)
{
	return sizeof(struct result_hdr) + (size_t)P * sizeof(struct ep_rank_result) +
	       (size_t)P * nops * iters * sizeof(double) + (size_t)P * R * sizeof(uint64_t) +
	       (size_t)P * sizeof(struct rank_figures);
}

static char *pack_result(const struct node_point *np, const struct ep_run *run,
			 const struct ep_node_hooks *hk, const struct ep_run_result *res, size_t *len)
{
	int P = np->P, R = run->shape.num_ranks, nops = ep_internode_variant.nops, it = run->opt->iters;
	*len = result_bytes(P, R, nops, it);
	char *buf = calloc(1, *len), *p = buf;
	if (!buf)
		return NULL;
	struct result_hdr h = {.point = np->point, .code = res->exit_code, .nlocal = P, .wall_s = res->wall_s};
	snprintf(h.message, sizeof(h.message), "%s", res->message);
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	memcpy(p, hk->results, (size_t)P * sizeof(struct ep_rank_result));
	p += (size_t)P * sizeof(struct ep_rank_result);
	memcpy(p, hk->times, (size_t)P * nops * it * sizeof(double));
	p += (size_t)P * nops * it * sizeof(double);
	memcpy(p, hk->wrong, (size_t)P * R * sizeof(uint64_t));
	p += (size_t)P * R * sizeof(uint64_t);
	memcpy(p, np->ctx->figures, (size_t)P * sizeof(struct rank_figures));
	return buf;
}

/* Node 0: the job's result of one point from every node's raw blocks. */
static int aggregate(struct ep_cluster *cl, const struct ep_run *run, int nodes, int P,
		     const char *const *blobs, struct ep_run_result *res)
{
	int R = run->shape.num_ranks, nops = ep_internode_variant.nops, it = run->opt->iters;
	struct ep_rank_result *rr = calloc((size_t)R, sizeof(*rr));
	double *times = calloc((size_t)R * nops * it + 1, sizeof(double));
	uint64_t *wrong = calloc((size_t)R * R + 1, sizeof(uint64_t));
	struct rank_figures *fg = calloc((size_t)R, sizeof(*fg));
	res->nodes = calloc((size_t)nodes, sizeof(*res->nodes));
	res->links = calloc((size_t)nodes * nodes + 1, sizeof(*res->links));
	if (!rr || !times || !wrong || !fg || !res->nodes || !res->links) {
		free(rr), free(times), free(wrong), free(fg);
		return -ENOMEM;
	}
	for (int k = 0; k < nodes; k++) {
		const char *p = blobs[k] + sizeof(struct result_hdr);
		memcpy(rr + k * P, p, (size_t)P * sizeof(*rr));
		p += (size_t)P * sizeof(*rr);
		memcpy(times + (size_t)k * P * nops * it, p, (size_t)P * nops * it * sizeof(double));
		p += (size_t)P * nops * it * sizeof(double);
		memcpy(wrong + (size_t)k * P * R, p, (size_t)P * R * sizeof(uint64_t));
		p += (size_t)P * R * sizeof(uint64_t);
		memcpy(fg + k * P, p, (size_t)P * sizeof(*fg));
	}
	ep_launch_collect(&ep_internode_variant, run, rr, times, wrong, res);
	res->num_ranks = R;
	res->num_nodes = nodes;
	const struct ep_node_info *info = ep_cluster_nodes(cl);
	for (int k = 0; k < nodes; k++) {
		struct ep_node_result *nr = &res->nodes[k];
		snprintf(nr->host, sizeof(nr->host), "%s", info[k].host);
		nr->ranks = P;
		for (int i = 0; i < nops; i++)
			for (int g = 0; g < P; g++) {
				int q = k * P + g;
				if (res->ops[i].rank_median_us && res->ops[i].rank_median_us[q] > nr->median_us[i])
					nr->median_us[i] = res->ops[i].rank_median_us[q];
				nr->rdma_bytes[i] += fg[q].rdma_bytes[i];
				nr->wire_bytes[i] += fg[q].wire_bytes[i];
				nr->nvl_bytes[i] += fg[q].nvl_bytes[i];
			}
	}
	for (int a = 0; a < nodes; a++)
		for (int b = 0; b < nodes; b++) {
			if (a == b)
				continue;
			struct ep_link_result *l = &res->links[res->num_links++];
			l->src = a;
			l->dst = b;
			for (int i = 0; i < nops; i++) {
				for (int g = 0; g < P; g++) {
					l->bytes[i] += fg[a * P + g].link_bytes[i][b];
					if (fg[b * P + g].arrival_us[i][a] > l->arrival_us[i])
						l->arrival_us[i] = fg[b * P + g].arrival_us[i][a];
				}
				l->gbs[i] = l->arrival_us[i] > 0 ? (double)l->bytes[i] / l->arrival_us[i] / 1e3 : 0;
			}
		}
	free(rr), free(times), free(wrong), free(fg);
	return 0;
}

static void send_code(struct ep_cluster *cl, int node, enum ep_msg type, int code, const char *msg)
{
	size_t n = strlen(msg) + 1;
	char *buf = malloc(4 + n);
	if (!buf)
		return;
	int32_t c = code;
	memcpy(buf, &c, 4);
	memcpy(buf + 4, msg, n);
	if (node < 0)
		ep_cluster_broadcast(cl, type, buf, 4 + n);
	else
		ep_cluster_send(cl, node, type, buf, 4 + n);
	free(buf);
}

static volatile sig_atomic_t stop_signal;
static void on_stop(int sig)
{
	stop_signal = sig;
	ep_launcher_interrupt(sig);
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

static int exit_of(int err)
{
	return err == -EP_EMISMATCH ? EP_EXIT_USAGE : ep_error_exit_code(err);
}

/* Group-limited routing as DeepEP's test_internode: groups are nodes,
 * num_topk_groups defaults to min(nodes, 4). */
static void internode_routing(struct ep_options *o, int nodes)
{
	if (!o->num_groups)
		o->num_groups = nodes;
	if (!o->num_topk_groups)
		o->num_topk_groups = nodes < 4 ? nodes : 4;
	o->routing.num_groups = o->num_groups;
	o->routing.num_topk_groups = o->num_topk_groups;
}

static void joined_names(char *buf, size_t len, const struct ep_node_info *info, int nodes)
{
	size_t n = 0;
	buf[0] = 0;
	for (int k = 0; k < nodes && n + 80 < len; k++)
		n += (size_t)snprintf(buf + n, len - n, "%s%d=%s(%s)", k ? " " : "", k, info[k].host,
				      info[k].addr);
}

/* Runs this node's part of the whole job; returns the process exit status. */
static int run_node(struct ep_options *o, struct ep_cluster_cfg *cfg, int listen_fd, int local_mode,
		    const char *cmdline)
{
	const char *me = "epbench internode";
	int N = cfg->nodes, P = cfg->ranks_per_node, R = N * P, nd = cfg->node_rank;
	char err[EP_TEXT_MAX], why[160] = "", transport_desc[200];
	struct ep_transport_cfg probe_cfg = {.num_ranks = R, .ib_dev = o->ib_dev, .gid_index = o->gid_index};
	const struct ep_transport_ops *ops;
	if (strcmp(o->transport, "auto") == 0) {
		ops = ep_transport_auto(&probe_cfg, why, sizeof(why));
		snprintf(transport_desc, sizeof(transport_desc), "%s (auto%s%s)", ops->name,
			 why[0] ? "; verbs: " : "", why);
	} else {
		ops = ep_transport_find(o->transport);
		if (ops->probe(&probe_cfg, why, sizeof(why))) {
			fprintf(stderr, "%s: node %d: --transport %s: %s\n", me, nd, o->transport, why);
			return EP_EXIT_ENV;
		}
		snprintf(transport_desc, sizeof(transport_desc), "%s (forced)", ops->name);
	}
	/* every point checked before anyone meets */
	o->ranks_per_node = P;
	internode_routing(o, N);
	for (int b = 0; b < o->tokens.n; b++)
		for (int c = 0; c < o->hidden.n; c++) {
			struct ep_shape s;
			ep_options_shape(o, R, o->tokens.v[b], o->hidden.v[c], &s);
			if (ep_options_check_shape(o, &s, err, sizeof(err))) {
				fprintf(stderr, "%s: %s\n", me, err);
				return EP_EXIT_USAGE;
			}
		}
	char text[4096];
	ep_cluster_config_text(o, cfg, ops->name, text, sizeof(text));
	struct ep_cluster *cl = NULL;
	int rc = ep_cluster_join(&cl, cfg, text, ops->name, o->timeout_s, listen_fd, o->node_addr, err,
				 sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: node %d: %s\n", me, nd, err);
		return exit_of(rc);
	}
	const struct ep_node_info *info = ep_cluster_nodes(cl);
	char names[1024], routing[120];
	joined_names(names, sizeof(names), info, N);
	snprintf(routing, sizeof(routing), "uniform, top-%d of %d node groups", o->num_topk_groups, o->num_groups);
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	char cluster_line[1400];
	snprintf(cluster_line, sizeof(cluster_line),
		 "%d nodes x %d ranks (%d ranks), nodes/rank from %s; master %s:%d from %s%s; nodes %s", N, P, R,
		 cfg->convention, cfg->master_host, cfg->master_port, cfg->master_from,
		 local_mode ? " (all nodes on this host, loopback)" : "", names);
	int copy_threads = P < h.cores ? P : h.cores;
	struct ep_report_meta meta = {
		.command = "internode", .version = EP_VERSION, .command_line = cmdline,
		.dtype = ep_dtype_name(o->dtype), .num_topk = o->num_topk, .num_experts = o->num_experts,
		.routing = routing, .masked_ratio = o->routing.masked_ratio, .seed = o->seed,
		.iters = o->iters, .warmup = o->warmup, .check = o->check, .cached = o->cached,
		.num_bias = o->num_bias, .timeout_s = o->timeout_s, .transport = transport_desc,
		.hostname = h.hostname, .cpu_model = h.cpu_model, .cores = h.cores,
		.numa_nodes = h.numa_nodes, .mem_total = h.mem_total, .variant_options = cluster_line,
		.copy_gbs = nd == 0 ? ep_host_copy_gbs(copy_threads) : 0, .copy_threads = copy_threads,
	};
	FILE *out = stdout;
	if (nd == 0) {
		ep_table_header(out, &meta, o->quiet);
	} else if (!local_mode) {
		printf("# epbench internode: node %d of %d on %s (%s), %d ranks, transport %s; nodes/rank from %s; master %s:%d from %s; node 0 prints the table\n",
		       nd, N, info[nd].host, info[nd].addr, P, transport_desc, cfg->convention,
		       cfg->master_host, cfg->master_port, cfg->master_from);
	}
	fflush(stdout);

	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	int npts = o->tokens.n * o->hidden.n, done = 0, job_code = EP_EXIT_OK;
	struct ep_point *pts = calloc((size_t)npts, sizeof(*pts));
	char fatal[EP_TEXT_MAX] = "";
	for (int pi = 0; pts && pi < npts && !stop_signal; pi++) {
		int tokens = o->tokens.v[pi / o->hidden.n], hidden = o->hidden.v[pi % o->hidden.n];
		struct ep_run run = {.opt = o, .routing = o->routing};
		ep_options_shape(o, R, tokens, hidden, &run.shape);
		struct node_ctx *ctx = mmap(NULL, sizeof(*ctx), PROT_READ | PROT_WRITE,
					    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (ctx == MAP_FAILED) {
			snprintf(fatal, sizeof(fatal), "mapping the node context failed: %s", strerror(errno));
			job_code = EP_EXIT_ENV;
			break;
		}
		memset(ctx, 0, sizeof(*ctx));
		ctx->nodes = N;
		ctx->per_node = P;
		ctx->node = nd;
		snprintf(ctx->host, sizeof(ctx->host), "%s", info[nd].addr);
		ctx->ops = ops;
		snprintf(ctx->ib_dev, sizeof(ctx->ib_dev), "%s", o->ib_dev ? o->ib_dev : "");
		ctx->gid_index = o->gid_index;
		ctx->job_id = ep_config_hash(text) ^ (uint64_t)pi;
		struct node_point np = {.cl = cl, .ctx = ctx, .point = pi, .nodes = N, .node = nd, .P = P};
		struct ep_node_hooks hk = {.num_local = P, .rank_base = nd * P, .variant_ctx = ctx,
					   .poll = node_poll, .arg = &np};
		struct ep_run_result mine;
		int code = ep_launch_node(&ep_internode_variant, &run, &hk, &mine);
		int ok = code == EP_EXIT_OK || code == EP_EXIT_WRONG;
		char msg[EP_TEXT_MAX];
		pts[pi] = (struct ep_point){R, tokens, hidden, {0}};
		struct ep_run_result *res = &pts[pi].res;
		if (nd != 0) {
			/* report to node 0, then wait for its verdict on the point */
			if (ok) {
				size_t len;
				char *blob = pack_result(&np, &run, &hk, &mine, &len);
				if (!blob || ep_cluster_send(cl, 0, EP_MSG_RESULT, blob, len)) {
					ok = 0;
					code = EP_EXIT_TIMEOUT;
					snprintf(mine.message, sizeof(mine.message), "lost node 0 (the master) while sending results");
				}
				free(blob);
			} else if (!np.remote) {
				char line[EP_TEXT_MAX];
				snprintf(line, sizeof(line), "%s", mine.message);
				send_code(cl, 0, EP_MSG_FAIL, code, line);
			}
			int32_t verdict = code;
			while (ok) {
				int prc = ep_cluster_pump(cl, 100, msg, sizeof(msg));
				if (prc) {
					verdict = prc;
					snprintf(mine.message, sizeof(mine.message), "%s", msg);
					ok = 0;
					break;
				}
				const char *d = ep_cluster_received(cl, 0, EP_MSG_DONE, pi, NULL);
				if (d) {
					memcpy(&verdict, d + 4, 4);
					break;
				}
				if (stop_signal) {
					ok = 0;
					verdict = EP_EXIT_TIMEOUT;
					snprintf(mine.message, sizeof(mine.message), "interrupted by signal %d", (int)stop_signal);
				}
			}
			res->exit_code = verdict;
			snprintf(res->message, sizeof(res->message), "%s", mine.message);
			ep_run_result_free(&mine);
		} else if (!ok) {
			*res = mine;
			if (!np.remote) { /* say where it happened; others' messages already do */
				char where[EP_TEXT_MAX];
				snprintf(where, sizeof(where), "node 0: %.*s", EP_TEXT_MAX - 16, mine.message);
				snprintf(res->message, sizeof(res->message), "%s", where);
			}
			send_code(cl, -1, EP_MSG_ABORT, code, res->message);
		} else {
			/* gather every node's results, or the first failure */
			const char *blobs[EP_MAX_NODES] = {0};
			size_t mylen;
			char *myblob = pack_result(&np, &run, &hk, &mine, &mylen);
			blobs[0] = myblob;
			int fail_code = 0;
			while (myblob) {
				int have = 1;
				for (int k = 1; k < N; k++) {
					size_t got;
					blobs[k] = ep_cluster_received(cl, k, EP_MSG_RESULT, pi, &got);
					if (!blobs[k] || got != mylen)
						have = 0;
				}
				if (have)
					break;
				if ((fail_code = ep_cluster_pump(cl, 100, msg, sizeof(msg))))
					break;
				if (stop_signal) {
					fail_code = EP_EXIT_TIMEOUT;
					snprintf(msg, sizeof(msg), "interrupted by signal %d", (int)stop_signal);
					break;
				}
			}
			if (!myblob) {
				fail_code = EP_EXIT_ENV;
				snprintf(msg, sizeof(msg), "out of memory");
			}
			if (fail_code) {
				res->exit_code = fail_code;
				snprintf(res->message, sizeof(res->message), "%s", msg);
				send_code(cl, -1, EP_MSG_ABORT, fail_code, msg);
			} else if (aggregate(cl, &run, N, P, blobs, res)) {
				res->exit_code = EP_EXIT_ENV;
				snprintf(res->message, sizeof(res->message), "out of memory aggregating results");
				send_code(cl, -1, EP_MSG_ABORT, EP_EXIT_ENV, res->message);
			} else {
				int worst = EP_EXIT_OK;
				for (int k = 0; k < N; k++) {
					struct result_hdr hh;
					memcpy(&hh, blobs[k], sizeof(hh));
					if (hh.code == EP_EXIT_WRONG)
						worst = EP_EXIT_WRONG;
				}
				if (res->wrong_elems)
					worst = EP_EXIT_WRONG;
				res->exit_code = worst;
				res->wall_s = mine.wall_s;
				char d[8];
				int32_t c = worst;
				memcpy(d, &pi, 4);
				memcpy(d + 4, &c, 4);
				ep_cluster_broadcast(cl, EP_MSG_DONE, d, sizeof(d));
			}
			free(myblob);
			ep_run_result_free(&mine);
		}
		free(hk.results);
		free(hk.times);
		free(hk.wrong);
		munmap(ctx, sizeof(*ctx));
		ep_cluster_forget(cl, pi);
		done = pi + 1;
		if (nd == 0) {
			ep_table_point(out, &pts[pi], 0, o->verbose);
			ep_table_nodes(out, &pts[pi]);
			if (o->json_path && (rc = ep_report_write_json(o->json_path, &meta, pts, done)))
				fprintf(stderr, "%s: writing %s failed: %s\n", me, o->json_path, ep_strerror(rc));
			if (o->csv_path && (rc = ep_report_write_csv(o->csv_path, &meta, pts, done)))
				fprintf(stderr, "%s: writing %s failed: %s\n", me, o->csv_path, ep_strerror(rc));
		}
		if (res->exit_code != EP_EXIT_OK && res->exit_code != EP_EXIT_WRONG) {
			snprintf(fatal, sizeof(fatal), "%s", res->message);
			break; /* a node is gone or the job was stopped: no later point can run */
		}
	}
	if (!pts) {
		snprintf(fatal, sizeof(fatal), "out of memory");
		job_code = EP_EXIT_ENV;
	}
	if (nd == 0) {
		if (fatal[0])
			fprintf(stderr, "%s: %s\n", me, fatal);
		job_code = done ? ep_table_footer(out, pts, done) : job_code;
	} else {
		for (int i = 0; i < done; i++) {
			int c = pts[i].res.exit_code;
			if (c != EP_EXIT_OK && (job_code == EP_EXIT_OK || (job_code == EP_EXIT_WRONG && c != EP_EXIT_WRONG)))
				job_code = c;
		}
		if (fatal[0])
			fprintf(stderr, "%s: node %d: %s\n", me, nd, fatal);
		if (!local_mode)
			printf("# node %d: verdict %s (%d point%s); node 0 has the table\n", nd,
			       ep_verdict_name(job_code), done, done == 1 ? "" : "s");
	}
	for (int i = 0; i < done; i++)
		ep_run_result_free(&pts[i].res);
	free(pts);
	ep_cluster_close(cl);
	return job_code;
}

/* --local-nodes: every node as a child process of this one, over loopback. */
static int run_local(struct ep_options *o, struct ep_cluster_cfg *cfg, const char *cmdline)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)cfg->master_port)};
	socklen_t sl = sizeof(sa);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		fprintf(stderr, "epbench internode: --local-nodes: rendezvous socket: %s\n", strerror(errno));
		return EP_EXIT_ENV;
	}
	cfg->master_port = ntohs(sa.sin_port);
	pid_t pids[EP_MAX_NODES];
	pid_t parent = getpid();
	fflush(NULL);
	for (int k = 0; k < cfg->nodes; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(EP_EXIT_TIMEOUT);
			char name[16];
			snprintf(name, sizeof(name), "epbench-n%d", k);
			prctl(PR_SET_NAME, name);
			struct ep_cluster_cfg mine = *cfg;
			mine.node_rank = k;
			if (k != 0)
				close(fd);
			_exit(run_node(o, &mine, k == 0 ? fd : -1, 1, cmdline));
		}
		if (pids[k] < 0) {
			fprintf(stderr, "epbench internode: fork of node %d failed: %s\n", k, strerror(errno));
			for (int j = 0; j < k; j++)
				kill(pids[j], SIGKILL);
			return EP_EXIT_ENV;
		}
	}
	close(fd);
	signal(SIGINT, SIG_IGN); /* the nodes see it too and stop on their own */
	int code = EP_EXIT_OK, node0 = EP_EXIT_OK;
	for (int k = 0; k < cfg->nodes; k++) {
		int st;
		while (waitpid(pids[k], &st, 0) < 0 && errno == EINTR)
			;
		int c = WIFEXITED(st) ? WEXITSTATUS(st) : EP_EXIT_TIMEOUT;
		if (k == 0)
			node0 = c;
		if (c != EP_EXIT_OK && (code == EP_EXIT_OK || code == EP_EXIT_WRONG))
			code = c;
	}
	return node0 != EP_EXIT_OK ? node0 : code;
}

int ep_internode_main(int argc, char **argv)
{
	struct ep_options o;
	char err[512];
	int rc = ep_options_parse("internode", argc, argv, &o, stdout, err, sizeof(err));
	if (rc == 1)
		return EP_EXIT_OK;
	if (rc) {
		fprintf(stderr, "epbench internode: %s\n", err);
		return EP_EXIT_USAGE;
	}
	struct ep_cluster_cfg cfg;
	if (o.tokens.n * o.hidden.n < 1 || o.ranks.n > 1)
		rc = -EP_EUSAGE, snprintf(err, sizeof(err), "--num-ranks cannot be swept across nodes; sweep --num-tokens or --hidden");
	else
		rc = ep_cluster_resolve(&o, env_get, &cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "epbench internode: %s\n", err);
		ep_options_free(&o);
		return EP_EXIT_USAGE;
	}
	size_t len = 16;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *cmdline = malloc(len);
	if (cmdline) {
		size_t n = (size_t)snprintf(cmdline, len, "epbench");
		for (int i = 0; i < argc; i++)
			n += (size_t)snprintf(cmdline + n, len - n, " %s", argv[i]);
	}
	int code = o.local_nodes ? run_local(&o, &cfg, cmdline ? cmdline : "epbench internode")
				 : run_node(&o, &cfg, -1, 0, cmdline ? cmdline : "epbench internode");
	free(cmdline);
	ep_options_free(&o);
	return code;
}
