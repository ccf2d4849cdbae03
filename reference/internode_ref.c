/* internode_ref.c - plain loops for what internode outputs must be. */
#include "reference/internode_ref.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/numeric.h"
#include "reference/transform.h"

/* Local expert id of global expert v on rank r, or -1. */
static int local_on(int64_t v, int r, int L)
{
	return v >= (int64_t)r * L && v < (int64_t)(r + 1) * L ? (int)(v - (int64_t)r * L) : -1;
}

int ep_internode_ref_init(struct ep_internode_ref *ref, const struct ep_shape *s,
			  const struct ep_routing *r, uint64_t seed, int me, int ranks_per_node)
{
	memset(ref, 0, sizeof(*ref));
	int rc = ep_reference_init(&ref->base, s, r, seed, me);
	if (rc)
		return rc;
	int R = s->num_ranks, T = s->num_tokens, K = s->num_topk, L = ep_local_experts(s);
	int P = ranks_per_node, N = R / P;
	ref->nodes = N;
	ref->ranks_per_node = P;
	ref->rdma_counts = calloc((size_t)R * N + 1, sizeof(int32_t));
	if (!ref->rdma_counts) {
		ep_internode_ref_fini(ref);
		return -ENOMEM;
	}
	for (int q = 0; q < R; q++) {
		const int64_t *idx = ep_reference_topk_idx(&ref->base, q);
		int Tq = ep_routing_num_tokens(ref->base.routing, T, seed, q);
		for (int t = 0; t < Tq; t++)
			for (int n = 0; n < N; n++) {
				int hit = 0;
				for (int j = 0; j < K && !hit; j++)
					for (int d = 0; d < P && !hit; d++)
						hit = local_on(idx[(size_t)t * K + j], n * P + d, L) >= 0;
				ref->rdma_counts[(size_t)q * N + n] += hit;
			}
	}
	return 0;
}

void ep_internode_ref_fini(struct ep_internode_ref *ref)
{
	ep_reference_fini(&ref->base);
	free(ref->rdma_counts);
	memset(ref, 0, sizeof(*ref));
}

void ep_internode_ref_sizes(const struct ep_internode_ref *ref, size_t *capacity,
			    size_t *rdma_capacity, size_t *send_capacity)
{
	int R = ref->base.shape.num_ranks, P = ref->ranks_per_node, N = ref->nodes;
	size_t in_max = 0, out_max = 0;
	for (int q = 0; q < R; q++) {
		size_t in = 0, out = 0;
		for (int s = 0; s < N; s++)
			in += (size_t)ref->rdma_counts[(size_t)(s * P + q % P) * N + q / P];
		for (int n = 0; n < N; n++)
			out += (size_t)ref->rdma_counts[(size_t)q * N + n];
		in_max = in > in_max ? in : in_max;
		out_max = out > out_max ? out : out_max;
	}
	*capacity = ep_reference_max_recv(&ref->base);
	*rdma_capacity = in_max;
	*send_capacity = out_max;
}

uint64_t ep_internode_ref_rdma_tokens(const struct ep_internode_ref *ref, int q, int exclude_own)
{
	uint64_t sum = 0;
	for (int n = 0; n < ref->nodes; n++)
		if (!exclude_own || n != q / ref->ranks_per_node)
			sum += (uint64_t)ref->rdma_counts[(size_t)q * ref->nodes + n];
	return sum;
}

void ep_internode_ref_check_layout(const struct ep_internode_ref *ref, const struct ep_layout *a,
				   struct ep_check_report *rep)
{
	ep_reference_check_layout(&ref->base, a, rep);
	ep_compare_row(rep, "num_tokens_per_rdma_rank", EP_ELEM_I32,
		       ref->rdma_counts + (size_t)ref->base.me * ref->nodes, a->num_tokens_per_rdma_rank,
		       (size_t)ref->nodes, 0, -1, -1);
}

/* Rank src's token t as dispatched, then as the expert on rank r returns it. */
static void expert_row(const struct ep_internode_ref *ref, int r, int e, const uint16_t *xb,
		       uint16_t *y)
{
	const struct ep_expert_fn *f = ref->base.expert;
	if (f)
		f->row(f->ctx, r, e, xb, ref->base.shape.hidden, y);
	else
		ep_expert_transform(ref->base.routing->payload, r, e, xb, ref->base.shape.hidden, y);
}

static float expert_weight(const struct ep_internode_ref *ref, int r, int l, float w)
{
	const struct ep_expert_fn *f = ref->base.expert;
	return f ? f->weight(f->ctx, r, l, w) : ep_expert_weight(r, l, w);
}

static void wire_row_bf16(const struct ep_internode_ref *ref, int src, int t, uint8_t *row,
			  float *scales, uint16_t *tmp, uint16_t *xb)
{
	const struct ep_shape *s = &ref->base.shape;
	if (s->dtype == EP_DTYPE_INT8) {
		ep_gen_bf16_row(ref->base.seed, ref->base.routing, EP_STREAM_X, src, t, s->hidden, tmp);
		scales[0] = ep_int8_quant_row(tmp, (size_t)s->hidden, (int8_t *)row);
	} else {
		ep_gen_x_row(s, ref->base.seed, ref->base.routing, src, t, row, scales);
	}
	ep_dispatched_row_to_bf16(s, row, scales, xb);
}

/* Scratch rows for expected_combine. */
struct scratch {
	uint8_t *row;
	float *scales, *acc, *pacc;
	uint16_t *tmp, *xb, *y, *b, *part;
};

static void scratch_free(struct scratch *w)
{
	free(w->row), free(w->scales), free(w->acc), free(w->pacc);
	free(w->tmp), free(w->xb), free(w->y), free(w->b), free(w->part);
}

static int scratch_alloc(const struct ep_shape *s, struct scratch *w)
{
	size_t H = (size_t)s->hidden;
	w->row = malloc(ep_dtype_row_bytes(s->dtype, s->hidden) + 1);
	w->scales = malloc(sizeof(float) * (size_t)(ep_dtype_num_scales(s->dtype, s->hidden) + 1));
	w->acc = malloc(4 * H + 4), w->pacc = malloc(4 * H + 4);
	w->tmp = malloc(2 * H + 2), w->xb = malloc(2 * H + 2), w->y = malloc(2 * H + 2);
	w->b = malloc(2 * H + 2), w->part = malloc(2 * H + 2);
	if (w->row && w->scales && w->acc && w->pacc && w->tmp && w->xb && w->y && w->b && w->part)
		return 0;
	scratch_free(w);
	return -ENOMEM;
}

/* Token t of rank me after combine: bias, then per node a partial rounded
 * to BF16 (its ranks ascending, from +0), nodes ascending, rounded again. */
static void expected_combine(const struct ep_internode_ref *ref, int me, int t, struct scratch *w,
			     uint16_t *want, float *wsum)
{
	const struct ep_shape *s = &ref->base.shape;
	int H = s->hidden, K = s->num_topk, L = ep_local_experts(s);
	int P = ref->ranks_per_node, N = ref->nodes;
	const int64_t *ti = ep_reference_topk_idx(&ref->base, me) + (size_t)t * K;
	const float *wt = ep_reference_topk_weights(&ref->base, me) + (size_t)t * K;
	float *acc = w->acc, *pacc = w->pacc;
	/* acc = (+0 + b0) + b1, as the source rank starts its reduction */
	for (int c = 0; c < H; c++)
		acc[c] = 0.0f;
	for (int k = 0; k < s->num_bias; k++) {
		ep_gen_bf16_row(ref->base.seed, ref->base.routing, k ? EP_STREAM_BIAS1 : EP_STREAM_BIAS0, me, t, H, w->b);
		for (int c = 0; c < H; c++)
			acc[c] += ep_bf16_to_f32(w->b[c]);
	}
	for (int j = 0; j < K; j++)
		wsum[j] = 0.0f;
	int have_row = 0;
	for (int n = 0; n < N; n++) {
		int any = 0;
		float wpart[K > 0 ? K : 1];
		for (int j = 0; j < K; j++)
			wpart[j] = 0.0f;
		for (int c = 0; c < H; c++)
			pacc[c] = 0.0f;
		for (int d = 0; d < P; d++) {
			int r = n * P + d, e = -1, hit = 0;
			for (int j = 0; j < K; j++) {
				int l = local_on(ti[j], r, L);
				hit |= l >= 0;
				if (l >= 0 && s->with_topk && (e < 0 || l < e))
					e = l;
			}
			if (!hit)
				continue;
			if (!have_row) {
				wire_row_bf16(ref, me, t, w->row, w->scales, w->tmp, w->xb);
				have_row = 1;
			}
			any = 1;
			expert_row(ref, r, e, w->xb, w->y);
			for (int c = 0; c < H; c++)
				pacc[c] += ep_bf16_to_f32(w->y[c]);
			for (int j = 0; j < K; j++) {
				int l = local_on(ti[j], r, L);
				wpart[j] += expert_weight(ref, r, l, l >= 0 ? wt[j] : 0.0f);
			}
		}
		if (!any)
			continue;
		for (int c = 0; c < H; c++)
			w->part[c] = ep_f32_to_bf16(pacc[c]);
		for (int c = 0; c < H; c++)
			acc[c] += ep_bf16_to_f32(w->part[c]);
		for (int j = 0; j < K; j++)
			wsum[j] += wpart[j];
	}
	for (int c = 0; c < H; c++)
		want[c] = ep_f32_to_bf16(acc[c]);
}

int ep_internode_ref_combined(const struct ep_internode_ref *ref, uint16_t *combined_x,
			      float *combined_w)
{
	const struct ep_shape *s = &ref->base.shape;
	struct scratch w;
	int K = s->num_topk;
	if (scratch_alloc(s, &w))
		return -ENOMEM;
	int T = ep_routing_num_tokens(ref->base.routing, s->num_tokens, ref->base.seed, ref->base.me);
	for (int t = 0; t < T; t++) {
		float wsum[K > 0 ? K : 1];
		expected_combine(ref, ref->base.me, t, &w, combined_x + (size_t)t * s->hidden, wsum);
		if (combined_w)
			memcpy(combined_w + (size_t)t * K, wsum, sizeof(float) * (size_t)K);
	}
	scratch_free(&w);
	return 0;
}

void ep_internode_ref_check_combine(const struct ep_internode_ref *ref, const uint16_t *combined_x,
				    const float *combined_w, struct ep_check_report *rep)
{
	const struct ep_shape *s = &ref->base.shape;
	int H = s->hidden, K = s->num_topk, me = ref->base.me;
	struct scratch w;
	uint16_t *want = malloc(2 * (size_t)H + 2);
	if (!want || scratch_alloc(s, &w)) {
		free(want);
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
		return;
	}
	int T = ep_routing_num_tokens(ref->base.routing, s->num_tokens, ref->base.seed, me);
	for (int t = 0; t < T; t++) {
		float wsum[K > 0 ? K : 1];
		int who = ep_reference_world(&ref->base, me);
		expected_combine(ref, me, t, &w, want, wsum);
		ep_compare_row(rep, "combined_x", EP_ELEM_BF16, want, combined_x + (size_t)t * H,
			       (size_t)H, t, who, t);
		if (combined_w && s->with_topk)
			ep_compare_row(rep, "combined_topk_weights", EP_ELEM_F32, wsum,
				       combined_w + (size_t)t * K, (size_t)K, t, who, t);
	}
	free(want);
	scratch_free(&w);
}

int ep_internode_ref_combined_row(const struct ep_internode_ref *ref, int src, int t, uint16_t *want)
{
	struct scratch w;
	int K = ref->base.shape.num_topk;
	float wsum[K > 0 ? K : 1];
	if (scratch_alloc(&ref->base.shape, &w))
		return -ENOMEM;
	expected_combine(ref, src, t, &w, want, wsum);
	scratch_free(&w);
	return 0;
}
