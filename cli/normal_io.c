/* normal_io.c - inputs, expert stand-in, dump and fault for the normal-mode variants. */
#include "cli/normal_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/fault.h"
#include "reference/inputs.h"
#include "reference/placement.h"
#include "reference/reference.h"
#include "reference/transform.h"
#include "reports/atomic_file.h"
#include "reports/npy.h"

void ep_normal_io_fini(struct ep_normal_io *io)
{
	free(io->x);
	free(io->x_scales);
	free(io->topk_idx);
	free(io->topk_weights);
	free(io->bias[0]);
	free(io->bias[1]);
	free(io->layout.num_tokens_per_rank);
	free(io->layout.num_tokens_per_rdma_rank);
	free(io->layout.num_tokens_per_expert);
	free(io->layout.is_token_in_rank);
	free(io->combined_x);
	free(io->combined_w);
	memset(io, 0, sizeof(*io));
}

size_t ep_normal_rank_bytes(const struct ep_shape *s, size_t capacity)
{
	double R = s->num_ranks, T = s->num_tokens, H = s->hidden, K = s->num_topk;
	double E = s->num_experts, S = ep_dtype_num_scales(s->dtype, s->hidden);
	double io = T * (2 * H + 4 * S + 2 * H * (1 + s->num_bias) + 16 * K + R) + 4 * (R + E);
	/* the reference: every rank's routing, R x R counts (twice while built), its receive rows */
	double ref = R * T * K * 12 + 8 * R * R + T * R + 4 * E + 8 * (double)capacity + 16 * H;
	double b = io + ref;
	return b < 0x1p60 ? (size_t)b : (size_t)1 << 60;
}

static int io_init(struct ep_normal_io *io, const struct ep_run *run, int rank,
		   const int64_t *idx, const float *weights, int ranks_per_node)
{
	memset(io, 0, sizeof(*io));
	io->shape = run->shape;
	io->shape.num_tokens = run->routing.group ? run->routing.group->num_tokens[rank]
			     : ep_rank_num_tokens(run->shape.num_tokens, run->cfg->seed, rank, run->routing.uneven_tokens);
	io->rank = rank;
	const struct ep_shape *s = &io->shape;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, E = (size_t)s->num_experts;
	size_t S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	size_t in_row = s->dtype == EP_DTYPE_FP8 ? H : 2 * H;
	uint64_t seed = run->cfg->seed;
	io->payload = run->routing.payload;
	io->nodes = ranks_per_node > 0 ? s->num_ranks / ranks_per_node : 0;
	io->x = malloc(T * in_row + 1);
	io->x_scales = malloc(sizeof(float) * (T * S + 1));
	io->combined_x = malloc(sizeof(uint16_t) * (T * H + 1));
	io->layout.num_tokens_per_rank = malloc(sizeof(int32_t) * R);
	io->layout.num_tokens_per_expert = malloc(sizeof(int32_t) * E);
	io->layout.is_token_in_rank = malloc(T * R + 1);
	if (io->nodes)
		io->layout.num_tokens_per_rdma_rank = malloc(sizeof(int32_t) * (size_t)io->nodes);
	if (!io->x || !io->x_scales || !io->combined_x || !io->layout.num_tokens_per_rank ||
	    !io->layout.num_tokens_per_expert || !io->layout.is_token_in_rank ||
	    (io->nodes && !io->layout.num_tokens_per_rdma_rank))
		goto nomem;
	for (size_t t = 0; t < T; t++) {
		if (s->dtype == EP_DTYPE_INT8) /* quantised by dispatch itself */
			ep_gen_bf16_row(seed, &run->routing, EP_STREAM_X, rank, (int64_t)t, s->hidden,
					(uint16_t *)io->x + t * H);
		else
			ep_gen_x_row(s, seed, &run->routing, rank, (int64_t)t, (char *)io->x + t * in_row,
				     io->x_scales + t * S);
	}
	if (s->with_topk) {
		io->topk_idx = malloc(sizeof(int64_t) * (T * K + 1));
		io->topk_weights = malloc(sizeof(float) * (T * K + 1));
		io->combined_w = malloc(sizeof(float) * (T * K + 1));
		if (!io->topk_idx || !io->topk_weights || !io->combined_w)
			goto nomem;
		memcpy(io->topk_idx, idx, sizeof(int64_t) * T * K);
		memcpy(io->topk_weights, weights, sizeof(float) * T * K);
	}
	for (int b = 0; b < s->num_bias; b++) {
		io->bias[b] = malloc(sizeof(uint16_t) * (T * H + 1));
		if (!io->bias[b])
			goto nomem;
		for (size_t t = 0; t < T; t++)
			ep_gen_bf16_row(seed, &run->routing, b ? EP_STREAM_BIAS1 : EP_STREAM_BIAS0, rank, (int64_t)t,
					s->hidden, io->bias[b] + t * H);
	}
	/* The layout comes from the routing even when topk is not dispatched. */
	ep_get_dispatch_layout(idx, s->num_tokens, s->num_topk, s->num_experts, s->num_ranks,
			       ranks_per_node, &io->layout);
	return 0;
nomem:
	ep_normal_io_fini(io);
	return -ENOMEM;
}

/* --fault replica:R: rank R's top-k ids and layout come from a placement
 * with one replica moved, while every reference keeps the true one. */
int ep_normal_io_init(struct ep_normal_io *io, const struct ep_run *run, int rank,
		      const int64_t *idx, const float *weights, int ranks_per_node)
{
	size_t n = (size_t)run->shape.num_tokens * (size_t)run->shape.num_topk;
	int64_t *moved = NULL;
	if (run->routing.placement && ep_faults_at(&run->cfg->faults, EP_FAULT_REPLICA, rank, 0)) {
		if (!(moved = malloc(sizeof(int64_t) * (n + 1))))
			return -ENOMEM;
		memcpy(moved, idx, sizeof(int64_t) * n);
		ep_placement_move_replica(run->routing.placement, moved, n);
	}
	int rc = io_init(io, run, rank, moved ? moved : idx, weights, ranks_per_node);
	free(moved);
	return rc;
}

struct ep_dispatch_in ep_normal_io_dispatch_in(const struct ep_normal_io *io)
{
	return (struct ep_dispatch_in){
		.x = io->x,
		.x_scales = io->x_scales,
		.topk_idx = io->topk_idx,
		.topk_weights = io->topk_weights,
		.layout = &io->layout,
	};
}

void ep_normal_io_apply_experts(const struct ep_normal_io *io, uint16_t *cx, float *cw)
{
	const struct ep_shape *s = &io->shape;
	const struct ep_dispatch_out *out = &io->out;
	int H = s->hidden, K = s->num_topk, S = ep_dtype_num_scales(s->dtype, H);
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, H);
	uint16_t deq[H];
	for (size_t m = 0; m < out->num_recv; m++) {
		const int64_t *idx = out->recv_topk_idx ? out->recv_topk_idx + m * (size_t)K : NULL;
		ep_dispatched_row_to_bf16(s, (const char *)out->recv_x + m * row_bytes,
					  S ? out->recv_x_scales + m * (size_t)S : NULL, deq);
		ep_expert_transform(io->payload, io->rank, ep_row_expert(idx, K), deq, H, cx + m * (size_t)H);
		if (idx && out->recv_topk_weights)
			for (int j = 0; j < K; j++)
				cw[m * (size_t)K + j] = ep_expert_weight(
					io->rank, (int)idx[j], out->recv_topk_weights[m * (size_t)K + j]);
	}
}

int ep_normal_io_dump(const struct ep_normal_io *io, const char *dir, const uint16_t *combine_x,
		      const float *combine_w)
{
	const struct ep_shape *s = &io->shape;
	const struct ep_dispatch_out *o = &io->out;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	size_t K = (size_t)s->num_topk, E = (size_t)s->num_experts, L = (size_t)ep_local_experts(s);
	size_t M = o->num_recv, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	enum ep_npy_dtype xd = s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_U2;
	enum ep_npy_dtype rxd = s->dtype == EP_DTYPE_BF16 ? EP_NPY_U2
			      : s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_I1;
	struct ep_npy_item t[] = {
		{"x", xd, T, H, 2, io->x},
		{"x_scales", EP_NPY_F4, T, S, 2, s->dtype == EP_DTYPE_FP8 ? io->x_scales : NULL},
		{"topk_idx", EP_NPY_I8, T, K, 2, io->topk_idx},
		{"topk_weights", EP_NPY_F4, T, K, 2, io->topk_weights},
		{"num_tokens_per_rank", EP_NPY_I4, R, 0, 1, io->layout.num_tokens_per_rank},
		{"num_tokens_per_rdma_rank", EP_NPY_I4, (size_t)io->nodes, 0, 1,
		 io->layout.num_tokens_per_rdma_rank},
		{"is_token_in_rank", EP_NPY_BOOL, T, R, 2, io->layout.is_token_in_rank},
		{"num_tokens_per_expert", EP_NPY_I4, E, 0, 1, io->layout.num_tokens_per_expert},
		{"recv_x", rxd, M, H, 2, o->recv_x},
		{"recv_x_scales", EP_NPY_F4, M, S, 2, o->recv_x_scales},
		{"recv_topk_idx", EP_NPY_I8, M, K, 2, o->recv_topk_idx},
		{"recv_topk_weights", EP_NPY_F4, M, K, 2, o->recv_topk_weights},
		{"num_recv_tokens_per_expert", EP_NPY_I4, L, 0, 1, o->num_recv_tokens_per_expert},
		{"rank_prefix_matrix", EP_NPY_I4, R, R, 2, o->rank_prefix_matrix},
		{"recv_src_idx", EP_NPY_I4, M, 0, 1, o->recv_src_idx},
		{"combine_x", EP_NPY_U2, M, H, 2, combine_x},
		{"combine_topk_weights", EP_NPY_F4, M, K, 2, s->with_topk ? combine_w : NULL},
		{"bias_0", EP_NPY_U2, T, H, 2, io->bias[0]},
		{"bias_1", EP_NPY_U2, T, H, 2, io->bias[1]},
		{"combined_x", EP_NPY_U2, T, H, 2, io->combined_x},
		{"combined_topk_weights", EP_NPY_F4, T, K, 2, s->with_topk ? io->combined_w : NULL},
	};
	return ep_npy_write_items(dir, io->rank, t, (int)(sizeof(t) / sizeof(t[0])));
}

/* Appends a view when the tensor exists (writable memory behind a const output). */
static int add_view(struct ep_tensor_view *v, int n, int max, const char *name, const void *base, size_t rows,
		    size_t row_bytes)
{
	if (n < max && base)
		v[n++] = (struct ep_tensor_view){name, (uint8_t *)(uintptr_t)base, rows, row_bytes};
	return n;
}

int ep_normal_io_dispatch_outputs(const struct ep_normal_io *io, struct ep_tensor_view *v, int max)
{
	const struct ep_shape *s = &io->shape;
	const struct ep_dispatch_out *o = &io->out;
	size_t M = o->num_recv, K = (size_t)s->num_topk, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	int n = add_view(v, 0, max, "recv_x", o->recv_x, M, ep_dtype_row_bytes(s->dtype, s->hidden));
	n = add_view(v, n, max, "recv_x_scales", S ? o->recv_x_scales : NULL, M, 4 * S);
	n = add_view(v, n, max, "recv_topk_idx", o->recv_topk_idx, M, 8 * K);
	n = add_view(v, n, max, "recv_topk_weights", o->recv_topk_weights, M, 4 * K);
	n = add_view(v, n, max, "recv_src_idx", o->recv_src_idx, M, 4);
	n = add_view(v, n, max, "num_recv_tokens_per_expert", o->num_recv_tokens_per_expert, 1,
		     4 * (size_t)ep_local_experts(s));
	return add_view(v, n, max, "rank_prefix_matrix", o->rank_prefix_matrix, (size_t)s->num_ranks,
			4 * (size_t)s->num_ranks);
}

int ep_normal_io_combine_outputs(const struct ep_normal_io *io, struct ep_tensor_view *v, int max)
{
	const struct ep_shape *s = &io->shape;
	size_t T = (size_t)s->num_tokens;
	int n = add_view(v, 0, max, "combined_x", io->combined_x, T, 2 * (size_t)s->hidden);
	return add_view(v, n, max, "combined_topk_weights", s->with_topk ? io->combined_w : NULL, T,
			4 * (size_t)s->num_topk);
}

uint64_t ep_normal_dispatch_row_bytes(const struct ep_shape *s)
{
	return ep_dtype_row_bytes(s->dtype, s->hidden) +
	       4 * (uint64_t)ep_dtype_num_scales(s->dtype, s->hidden);
}
