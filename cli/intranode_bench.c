/* intranode_bench.c - the intranode variant: dispatch and combine descriptors.
 *
 * Per-rank state: this rank's inputs (regenerated from the seed exactly as
 * the reference regenerates them), its layout, the collective context and
 * the reference. Combine's input is the harness's expert transform of what
 * dispatch delivered, written straight into the shared combine area.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "collectives/error.h"
#include "collectives/intranode.h"
#include "collectives/layout.h"
#include "reference/reference.h"
#include "reference/transform.h"
#include "reports/atomic_file.h"
#include "reports/npy.h"

struct intranode_state {
	struct ep_bench_env *env;
	struct ep_shape shape;    /* the run's shape with this rank's token count */
	const struct ep_shape *s; /* = &shape */
	struct ep_intranode coll;
	struct ep_reference ref;
	void *x;                  /* [T][H] dispatch input (bf16, or fp8 bytes) */
	float *x_scales;          /* [T][H/128] FP8 only */
	int64_t *topk_idx;        /* [T][K] (NULL when with_topk=0) */
	float *topk_weights;
	uint16_t *bias[2];        /* [T][H] or NULL */
	struct ep_layout layout;
	struct ep_dispatch_out out;
	int dispatched;           /* out holds a dispatch's result */
	int last_cached;          /* the last dispatch ran in cached mode */
	uint16_t *combined_x;     /* [T][H] */
	float *combined_w;        /* [T][K] or NULL */
};

static int intranode_size(struct ep_run *run, size_t *arena_bytes)
{
	/* Size receive areas exactly: the launcher regenerates the routing. */
	struct ep_reference ref;
	int rc = ep_reference_init(&ref, &run->shape, &run->routing, run->opt->seed, 0);
	if (rc)
		return rc;
	run->capacity = ep_reference_max_recv(&ref);
	ep_reference_fini(&ref);
	*arena_bytes = ep_intranode_arena_bytes(&run->shape, run->capacity);
	return 0;
}

static void intranode_teardown(void *p)
{
	struct intranode_state *st = p;
	if (!st)
		return;
	ep_intranode_fini(&st->coll);
	ep_reference_fini(&st->ref);
	free(st->x);
	free(st->x_scales);
	free(st->topk_idx);
	free(st->topk_weights);
	free(st->bias[0]);
	free(st->bias[1]);
	free(st->layout.num_tokens_per_rank);
	free(st->layout.num_tokens_per_expert);
	free(st->layout.is_token_in_rank);
	free(st->combined_x);
	free(st->combined_w);
	free(st);
}

static int intranode_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	struct intranode_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->shape = run->shape;
	st->shape.num_tokens = ep_rank_num_tokens(run->shape.num_tokens, run->opt->seed, env->rank,
						  run->shape.uneven_tokens);
	const struct ep_shape *s = &st->shape;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, E = (size_t)s->num_experts;
	int S = ep_dtype_num_scales(s->dtype, s->hidden);
	int rc = -ENOMEM, me = env->rank;
	st->env = env;
	st->s = s;
	if ((rc = ep_reference_init(&st->ref, &run->shape, &run->routing, run->opt->seed, me)))
		goto fail;
	rc = -ENOMEM;
	size_t in_row = s->dtype == EP_DTYPE_FP8 ? H : 2 * H;
	st->x = malloc(T * in_row + 1);
	st->x_scales = malloc(sizeof(float) * (T * (size_t)S + 1));
	st->combined_x = malloc(sizeof(uint16_t) * (T * H + 1));
	st->layout.num_tokens_per_rank = malloc(sizeof(int32_t) * R);
	st->layout.num_tokens_per_expert = malloc(sizeof(int32_t) * E);
	st->layout.is_token_in_rank = malloc(T * R + 1);
	if (!st->x || !st->x_scales || !st->combined_x || !st->layout.num_tokens_per_rank ||
	    !st->layout.num_tokens_per_expert || !st->layout.is_token_in_rank)
		goto fail;
	for (size_t t = 0; t < T; t++) {
		if (s->dtype == EP_DTYPE_INT8) /* quantised by dispatch itself */
			ep_gen_bf16_row(run->opt->seed, EP_STREAM_X, me, (int64_t)t, s->hidden,
					(uint16_t *)st->x + t * H);
		else
			ep_gen_x_row(s, run->opt->seed, me, (int64_t)t, (char *)st->x + t * in_row,
				     st->x_scales + t * (size_t)S);
	}
	const int64_t *idx = ep_reference_topk_idx(&st->ref, me);
	if (s->with_topk) {
		st->topk_idx = malloc(sizeof(int64_t) * (T * K + 1));
		st->topk_weights = malloc(sizeof(float) * (T * K + 1));
		st->combined_w = malloc(sizeof(float) * (T * K + 1));
		if (!st->topk_idx || !st->topk_weights || !st->combined_w)
			goto fail;
		memcpy(st->topk_idx, idx, sizeof(int64_t) * T * K);
		memcpy(st->topk_weights, ep_reference_topk_weights(&st->ref, me), sizeof(float) * T * K);
	}
	for (int b = 0; b < s->num_bias; b++) {
		st->bias[b] = malloc(sizeof(uint16_t) * (T * H + 1));
		if (!st->bias[b])
			goto fail;
		for (size_t t = 0; t < T; t++)
			ep_gen_bf16_row(run->opt->seed, b ? EP_STREAM_BIAS1 : EP_STREAM_BIAS0, me,
					(int64_t)t, s->hidden, st->bias[b] + t * H);
	}
	/* The layout comes from the routing even when topk is not dispatched. */
	ep_get_dispatch_layout(idx, s->num_tokens, s->num_topk, s->num_experts, s->num_ranks, 0,
			       &st->layout);
	if ((rc = ep_intranode_init(&st->coll, s, me, env->arena, run->capacity, env->waiter)))
		goto fail;
	*out = st;
	return 0;
fail:
	intranode_teardown(st);
	return rc;
}

static int dispatch_once(struct intranode_state *st, int cached)
{
	struct ep_dispatch_in in = {
		.x = st->x,
		.x_scales = st->x_scales,
		.topk_idx = st->topk_idx,
		.topk_weights = st->topk_weights,
		.layout = &st->layout,
	};
	int rc = ep_intranode_dispatch(&st->coll, &in, cached, &st->out);
	st->dispatched = rc == 0;
	st->last_cached = cached;
	return rc;
}

static int dispatch_prepare(void *p)
{
	struct intranode_state *st = p;
	/* Cached mode needs a handle from one non-cached dispatch. */
	if (st->env->run->opt->cached && !st->coll.have_handle)
		return dispatch_once(st, 0);
	return 0;
}

static int dispatch_run(void *p)
{
	struct intranode_state *st = p;
	return dispatch_once(st, st->env->run->opt->cached);
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct intranode_state *st = p;
	ep_reference_check_layout(&st->ref, &st->layout, rep);
	ep_reference_check_dispatch(&st->ref, &st->out, st->last_cached, rep);
	return 0;
}

static uint64_t rows_from_self(const struct intranode_state *st)
{
	int R = st->s->num_ranks, me = st->env->rank;
	const int32_t *rpm = st->coll.rank_prefix_matrix;
	return (uint64_t)(rpm[me * R + me] - (me ? rpm[(me - 1) * R + me] : 0));
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct intranode_state *st = p;
	const struct ep_shape *s = st->s;
	/* DeepEP: recv rows x (payload + scales); FP8 = H * (1 + 4/128) per row. */
	uint64_t row = ep_dtype_row_bytes(s->dtype, s->hidden) +
		       4 * (uint64_t)ep_dtype_num_scales(s->dtype, s->hidden);
	*alg = st->coll.num_recv * row;
	*wire = (st->coll.num_recv - rows_from_self(st)) * row;
}

static uint64_t intranode_recv_rows(const void *p)
{
	return ((const struct intranode_state *)p)->coll.num_recv;
}

/* The harness's expert step: transform every received row into the combine area. */
static void apply_experts(struct intranode_state *st)
{
	const struct ep_shape *s = st->s;
	int H = s->hidden, K = s->num_topk, S = ep_dtype_num_scales(s->dtype, H), me = st->env->rank;
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, H);
	uint16_t *cx = ep_intranode_combine_x(&st->coll);
	float *cw = ep_intranode_combine_w(&st->coll);
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
	struct intranode_state *st = p;
	int rc;
	/* Combine needs a non-cached dispatch's outputs (topk included). */
	if (!st->dispatched || st->last_cached)
		if ((rc = dispatch_once(st, 0)))
			return rc;
	ep_set_phase(st->env->waiter, "experts");
	apply_experts(st);
	return 0;
}

static int combine_run(void *p)
{
	struct intranode_state *st = p;
	return ep_intranode_combine(&st->coll, st->bias[0], st->bias[1], st->combined_x,
				    st->s->with_topk ? st->combined_w : NULL);
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct intranode_state *st = p;
	ep_reference_check_combine(&st->ref, st->combined_x, st->combined_w, rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct intranode_state *st = p;
	uint64_t row = 2 * (uint64_t)st->s->hidden;
	*alg = st->coll.num_recv * row;
	*wire = (st->coll.num_recv - rows_from_self(st)) * row;
}

/* --dump: every tensor of this rank as DIR/rank<N>/<name>.npy */
static int intranode_dump(void *p, const char *dir)
{
	struct intranode_state *st = p;
	const struct ep_shape *s = st->s;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, E = (size_t)s->num_experts, L = (size_t)ep_local_experts(s);
	size_t M = st->out.num_recv, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
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
		{"is_token_in_rank", EP_NPY_BOOL, T, R, 2, st->layout.is_token_in_rank},
		{"num_tokens_per_expert", EP_NPY_I4, E, 0, 1, st->layout.num_tokens_per_expert},
		{"recv_x", rxd, M, H, 2, st->out.recv_x},
		{"recv_x_scales", EP_NPY_F4, M, S, 2, st->out.recv_x_scales},
		{"recv_topk_idx", EP_NPY_I8, M, K, 2, st->out.recv_topk_idx},
		{"recv_topk_weights", EP_NPY_F4, M, K, 2, st->out.recv_topk_weights},
		{"num_recv_tokens_per_expert", EP_NPY_I4, L, 0, 1, st->out.num_recv_tokens_per_expert},
		{"rank_prefix_matrix", EP_NPY_I4, R, R, 2, st->out.rank_prefix_matrix},
		{"recv_src_idx", EP_NPY_I4, M, 0, 1, st->out.recv_src_idx},
		{"combine_x", EP_NPY_U2, M, H, 2, ep_intranode_combine_x(&st->coll)},
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
	path[n] = 0;
	return 0;
}

/* --fault corrupt: flip the low bit of the middle byte of the last received row. */
static void dispatch_corrupt(void *p)
{
	struct intranode_state *st = p;
	size_t row_bytes = ep_dtype_row_bytes(st->s->dtype, st->s->hidden);
	if (st->out.num_recv == 0)
		return;
	uint8_t *x = (uint8_t *)st->out.recv_x + (st->out.num_recv - 1) * row_bytes;
	x[row_bytes / 2] ^= 1;
}

static const struct ep_op_desc intranode_ops[] = {
	{.name = "dispatch", .prepare = dispatch_prepare, .run = dispatch_run,
	 .check = dispatch_check, .bytes = dispatch_bytes, .recv_rows = intranode_recv_rows,
	 .corrupt = dispatch_corrupt},
	{.name = "combine", .prepare = combine_prepare, .run = combine_run,
	 .check = combine_check, .bytes = combine_bytes},
};

const struct ep_variant ep_intranode_variant = {
	.name = "intranode",
	.size = intranode_size,
	.setup = intranode_setup,
	.teardown = intranode_teardown,
	.dump = intranode_dump,
	.nops = 2,
	.ops = intranode_ops,
	.op_mask = {EP_OPS_DISPATCH, EP_OPS_COMBINE},
};
