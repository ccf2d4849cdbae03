/* intranode.c - normal dispatch/combine through one shared arena.
 *
 * Arena: counts [R][R] | expert_counts [R][E] | R receive areas, each
 * { x | x_scales | topk_idx | topk_weights | src_idx | combine_x | combine_w }
 * sized for `capacity` rows, every piece page aligned. Rank j's receive area
 * is written only by senders during dispatch.send (rows disjoint per sender:
 * sender i owns rows [RPM[i-1][j], RPM[i][j])), and read by j after the
 * closing barrier. combine_x of rank j is written only by j, before combine.
 */
#include "collectives/intranode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/combine_kernels.h"
#include "collectives/error.h"
#include "collectives/numeric.h"
#include "collectives/stream_copy.h"
#include "collectives/traffic.h"

/* Tokens between two publications of the per-destination rows sent. */
#define TRAFFIC_EVERY 64


/* Offsets of the arena pieces; one function so sizing and binding agree. */
struct arena_plan {
	size_t counts, expert_counts, areas; /* from the arena start */
	size_t area_bytes, total;
};

static void plan_arena(const struct ep_shape *s, size_t cap, struct arena_plan *p)
{
	size_t R = (size_t)s->num_ranks, E = (size_t)s->num_experts;
	p->counts = 0;
	p->expert_counts = ep_align_up(R * R * sizeof(int32_t), EP_PAGE);
	p->areas = ep_align_up(p->expert_counts + R * E * sizeof(int32_t), EP_PAGE);
	p->area_bytes = ep_recv_area_bytes(s, cap);
	p->total = p->areas + R * p->area_bytes;
}

size_t ep_intranode_rank_bytes(const struct ep_shape *s)
{
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	return R * sizeof(*((struct ep_intranode *)0)->areas) + 4 * R * R + T * R +
	       4 * (size_t)ep_local_experts(s) + 5 * H + 64;
}

size_t ep_intranode_arena_bytes(const struct ep_shape *s, size_t capacity)
{
	struct arena_plan p;
	plan_arena(s, capacity, &p);
	return p.total;
}

void ep_intranode_arena_view(const struct ep_shape *s, size_t capacity, void *arena, int rank, int32_t **counts,
			     struct ep_recv_area *area)
{
	struct arena_plan p;
	plan_arena(s, capacity, &p);
	*counts = (int32_t *)((char *)arena + p.counts);
	*area = ep_recv_area_at((char *)arena + p.areas + (size_t)rank * p.area_bytes, s, capacity);
}

int ep_intranode_init(struct ep_intranode *ctx, const struct ep_shape *s, int rank,
		      void *arena, size_t capacity, struct ep_waiter *w)
{
	struct arena_plan p;
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, H = (size_t)s->hidden;
	plan_arena(s, capacity, &p);
	memset(ctx, 0, sizeof(*ctx));
	ctx->shape = *s;
	ctx->rank = rank;
	ctx->capacity = capacity;
	ctx->waiter = w;
	char *base = arena;
	ctx->counts = (int32_t *)(base + p.counts);
	ctx->expert_counts = (int32_t *)(base + p.expert_counts);
	ctx->areas = calloc(R, sizeof(*ctx->areas));
	ctx->rank_prefix_matrix = calloc(R * R, sizeof(int32_t));
	ctx->is_token_in_rank = calloc(T * R + 1, 1);
	ctx->num_recv_tokens_per_expert = calloc((size_t)ep_local_experts(s) + 1, sizeof(int32_t));
	ctx->quant_row = calloc(H, 1);
	if (!ctx->areas || !ctx->rank_prefix_matrix || !ctx->is_token_in_rank ||
	    !ctx->num_recv_tokens_per_expert || !ctx->quant_row) {
		ep_intranode_fini(ctx);
		return -ENOMEM;
	}
	for (size_t r = 0; r < R; r++)
		ctx->areas[r] = ep_recv_area_at(base + p.areas + r * p.area_bytes, s, capacity);
	return 0;
}

void ep_intranode_fini(struct ep_intranode *ctx)
{
	free(ctx->areas);
	free(ctx->rank_prefix_matrix);
	free(ctx->is_token_in_rank);
	free(ctx->num_recv_tokens_per_expert);
	free(ctx->quant_row);
	memset(ctx, 0, sizeof(*ctx));
}


/* The notify step's arithmetic: prefix matrix and per-expert counts from the
 * counts every rank published. */
static void build_handle(struct ep_intranode *ctx)
{
	const struct ep_shape *s = &ctx->shape;
	int R = s->num_ranks, me = ctx->rank;
	for (int j = 0; j < R; j++) {
		int32_t acc = 0;
		for (int i = 0; i < R; i++) {
			acc += ctx->counts[i * R + j];
			ctx->rank_prefix_matrix[i * R + j] = acc;
		}
	}
	ep_recv_tokens_per_expert(s, me, ctx->expert_counts, ctx->num_recv_tokens_per_expert);
	ctx->have_handle = 1;
}

/* Converts global expert ids to destination-local ones (-1, weight 0 elsewhere). */
static void put_topk(const struct ep_shape *s, int dst, const int64_t *idx,
		     const float *wt, int64_t *out_idx, float *out_w)
{
	int K = s->num_topk, L = ep_local_experts(s);
	int64_t lo = (int64_t)dst * L, hi = lo + L;
	for (int j = 0; j < K; j++) {
		int64_t v = idx[j];
		int local = v >= lo && v < hi;
		out_idx[j] = local ? v - lo : -1;
		if (out_w)
			out_w[j] = local ? wt[j] : 0.0f;
	}
}

/* Rows this rank has written into each destination's area so far (the
 * copy is the arrival in shared memory): one store per destination. */
static void publish_sent(struct ep_intranode *ctx, uint32_t seq, const size_t *cursor, const size_t *start)
{
	for (int j = 0; j < ctx->shape.num_ranks; j++)
		ep_traffic_arrived(ctx->waiter->traffic, seq, ctx->rank, j, (uint32_t)(cursor[j] - start[j]));
}

static void send_rows(struct ep_intranode *ctx, const struct ep_dispatch_in *in, int cached, uint32_t seq)
{
	const struct ep_shape *s = &ctx->shape;
	int R = s->num_ranks, T = s->num_tokens, H = s->hidden, K = s->num_topk, me = ctx->rank;
	int S = ep_dtype_num_scales(s->dtype, H);
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, H);
	/* INT8 dispatch takes BF16 rows and quantises them on the way out. */
	size_t in_row_bytes = s->dtype == EP_DTYPE_FP8 ? (size_t)H : (size_t)H * 2;
	int topk = !cached && in->topk_idx;
	size_t cursor[R], start[R], rows = 0;
	for (int j = 0; j < R; j++) {
		start[j] = cursor[j] = me > 0 ? (size_t)ctx->rank_prefix_matrix[(me - 1) * R + j] : 0;
		rows += (size_t)ctx->counts[(size_t)me * R + j];
	}
	int stream = ep_stream_worth(rows * row_bytes, R); /* stream_copy.h */
	for (int t = 0; t < T; t++) {
		const uint8_t *itr = ctx->is_token_in_rank + (size_t)t * R;
		if (t % TRAFFIC_EVERY == TRAFFIC_EVERY - 1)
			publish_sent(ctx, seq, cursor, start);
		const void *src = (const char *)in->x + (size_t)t * in_row_bytes;
		const float *scales = S ? in->x_scales + (size_t)t * S : NULL;
		float int8_scale;
		if (s->dtype == EP_DTYPE_INT8) {
			int sent = 0;
			for (int j = 0; j < R; j++)
				sent |= itr[j];
			if (!sent)
				continue;
			int8_scale = ep_int8_quant_row(src, (size_t)H, ctx->quant_row);
			src = ctx->quant_row;
			scales = &int8_scale;
		}
		for (int j = 0; j < R; j++) {
			if (!itr[j])
				continue;
			struct ep_recv_area *a = &ctx->areas[j];
			size_t row = cursor[j]++;
			ep_copy_row(stream, (char *)a->x + row * row_bytes, src, row_bytes);
			if (S)
				memcpy(a->x_scales + row * (size_t)S, scales, sizeof(float) * (size_t)S);
			if (cached)
				continue;
			a->src_idx[row] = t;
			if (topk)
				put_topk(s, j, in->topk_idx + (size_t)t * K,
					 in->topk_weights ? in->topk_weights + (size_t)t * K : NULL,
					 a->topk_idx + row * (size_t)K,
					 in->topk_weights ? a->topk_weights + row * (size_t)K : NULL);
		}
	}
	ep_copy_fence(stream); /* before the barrier that hands the rows over */
	publish_sent(ctx, seq, cursor, start);
}

/* Dispatch: the rows this rank sends to each destination in op seq. */
static void expect_dispatch(struct ep_intranode *ctx, const int32_t *per_rank, uint32_t seq)
{
	const struct ep_shape *s = &ctx->shape;
	uint32_t rb = (uint32_t)(ep_dtype_row_bytes(s->dtype, s->hidden) +
				 4 * (size_t)ep_dtype_num_scales(s->dtype, s->hidden));
	for (int j = 0; j < s->num_ranks; j++)
		ep_traffic_expect(ctx->waiter->traffic, seq, ctx->rank, j, (uint32_t)per_rank[j], rb, EP_HOP_SHM);
}

int ep_intranode_dispatch(struct ep_intranode *ctx, const struct ep_dispatch_in *in,
			  int cached, struct ep_dispatch_out *out)
{
	const struct ep_shape *s = &ctx->shape;
	struct ep_waiter *w = ctx->waiter;
	int R = s->num_ranks, me = ctx->rank;
	int rc;

	if (cached && !ctx->have_handle)
		return -EINVAL;
	uint32_t seq = ep_traffic_begin(w->traffic, me, "dispatch");
	expect_dispatch(ctx, cached ? ctx->counts + (size_t)me * R : in->layout->num_tokens_per_rank, seq);
	ep_set_phase(w, "dispatch.notify");
	if (!cached) {
		const struct ep_layout *lay = in->layout;
		memcpy(ctx->counts + (size_t)me * R, lay->num_tokens_per_rank, sizeof(int32_t) * (size_t)R);
		memcpy(ctx->expert_counts + (size_t)me * s->num_experts, lay->num_tokens_per_expert,
		       sizeof(int32_t) * (size_t)s->num_experts);
		memcpy(ctx->is_token_in_rank, lay->is_token_in_rank, (size_t)s->num_tokens * R);
	}
	/* Entry barrier: counts are published, and every receiver is done with
	 * the previous dispatch's rows, so they may be overwritten. */
	if ((rc = ep_barrier(w)))
		return rc;
	if (!cached)
		build_handle(ctx);
	for (int j = 0; j < R; j++)
		if ((size_t)ctx->rank_prefix_matrix[(R - 1) * R + j] > ctx->capacity)
			return -EP_ENOSPC;
	ctx->num_recv = (size_t)ctx->rank_prefix_matrix[(R - 1) * R + me];

	ep_set_phase(w, "dispatch.send");
	send_rows(ctx, in, cached, seq);
	ep_set_phase(w, "dispatch.recv");
	if ((rc = ep_barrier(w)))
		return rc;

	int topk = !cached && in->topk_idx;
	*out = ep_recv_area_outputs(&ctx->areas[me], s, ctx->num_recv, topk, topk && in->topk_weights,
				    ctx->num_recv_tokens_per_expert, ctx->rank_prefix_matrix);
	ep_set_phase(w, "idle");
	return 0;
}


uint16_t *ep_intranode_combine_x(struct ep_intranode *ctx)
{
	return ctx->areas[ctx->rank].combine_x;
}

float *ep_intranode_combine_w(struct ep_intranode *ctx)
{
	return ctx->areas[ctx->rank].combine_w;
}

int ep_intranode_combine(struct ep_intranode *ctx, const uint16_t *bias0,
			 const uint16_t *bias1, uint16_t *combined_x, float *combined_w)
{
	const struct ep_shape *s = &ctx->shape;
	struct ep_waiter *w = ctx->waiter;
	int R = s->num_ranks, T = s->num_tokens, H = s->hidden, K = s->num_topk, me = ctx->rank;
	int rc;

	if (!ctx->have_handle)
		return -EINVAL;
	/* Combine pulls: the rows owed to rank i (those i sent here) are in
	 * place, readable by i, once this rank enters combine. */
	uint32_t seq = ep_traffic_begin(w->traffic, me, "combine");
	for (int i = 0; i < R; i++) {
		uint32_t rows = (uint32_t)ctx->counts[(size_t)i * R + me];
		ep_traffic_expect(w->traffic, seq, me, i, rows, (uint32_t)(2 * H + 4 * K), EP_HOP_SHM);
		ep_traffic_arrived(w->traffic, seq, me, i, rows);
	}
	ep_set_phase(w, "combine.notify");
	if ((rc = ep_barrier(w))) /* every rank's combine input is in place */
		return rc;
	ep_set_phase(w, "combine.reduce");
	size_t cursor[R];
	for (int r = 0; r < R; r++)
		cursor[r] = me > 0 ? (size_t)ctx->rank_prefix_matrix[(me - 1) * R + r] : 0;
	const uint16_t *rows[R + 2];
	for (int t = 0; t < T; t++) {
		const uint8_t *itr = ctx->is_token_in_rank + (size_t)t * R;
		size_t off = (size_t)t * H;
		float wacc[K > 0 ? K : 1];
		for (int j = 0; j < K; j++)
			wacc[j] = 0.0f;
		/* bias0, bias1 (those given), then the rows of the destination
		 * ranks in ascending order: one sum from +0, one rounding */
		int n = 0;
		if (bias0)
			rows[n++] = bias0 + off;
		if (bias1)
			rows[n++] = bias1 + off;
		for (int r = 0; r < R; r++) {
			if (!itr[r])
				continue;
			size_t row = cursor[r]++;
			rows[n++] = ctx->areas[r].combine_x + row * (size_t)H;
			if (combined_w)
				for (int j = 0; j < K; j++)
					wacc[j] += ctx->areas[r].combine_w[row * (size_t)K + j];
		}
		ep_bf16_reduce_rows(rows, n, bias0 && bias1, (size_t)H, combined_x + off);
		if (combined_w)
			memcpy(combined_w + (size_t)t * K, wacc, sizeof(float) * (size_t)K);
	}
	ep_set_phase(w, "combine.done");
	if ((rc = ep_barrier(w))) /* peers finished reading our combine input */
		return rc;
	ep_set_phase(w, "idle");
	return 0;
}
