/* reference.c - plain loops that say what every output must be. */
#include "reference/reference.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/numeric.h"
#include "reference/transform.h"

const int64_t *ep_reference_topk_idx(const struct ep_reference *ref, int rank)
{
	return ref->topk_idx + (size_t)rank * ref->shape.num_tokens * ref->shape.num_topk;
}

const float *ep_reference_topk_weights(const struct ep_reference *ref, int rank)
{
	return ref->topk_weights + (size_t)rank * ref->shape.num_tokens * ref->shape.num_topk;
}

/* Tokens rank `rank` sends (all of them unless uneven). */
static int tokens_of(const struct ep_reference *ref, int rank)
{
	return ep_routing_num_tokens(ref->routing, ref->shape.num_tokens, ref->seed, rank);
}

/* Does token t of rank src pick any expert living on rank dst? */
static int token_goes_to(const struct ep_reference *ref, int src, int t, int dst)
{
	const struct ep_shape *s = &ref->shape;
	int L = ep_local_experts(s);
	const int64_t *row = ep_reference_topk_idx(ref, src) + (size_t)t * s->num_topk;
	for (int j = 0; j < s->num_topk; j++)
		if (row[j] >= (int64_t)dst * L && row[j] < (int64_t)(dst + 1) * L)
			return 1;
	return 0;
}

int ep_reference_init(struct ep_reference *ref, const struct ep_shape *s,
		      const struct ep_routing *r, uint64_t seed, int me)
{
	size_t R = (size_t)s->num_ranks, T = (size_t)s->num_tokens, K = (size_t)s->num_topk;
	size_t E = (size_t)s->num_experts, L = (size_t)ep_local_experts(s);
	memset(ref, 0, sizeof(*ref));
	ref->shape = *s;
	ref->routing = r;
	ref->seed = seed;
	ref->me = me;
	ref->topk_idx = malloc(sizeof(int64_t) * (R * T * K + 1));
	ref->topk_weights = malloc(sizeof(float) * (R * T * K + 1));
	ref->recv_rows = calloc(R, sizeof(int32_t));
	ref->num_tokens_per_rank = calloc(R, sizeof(int32_t));
	ref->num_tokens_per_expert = calloc(E, sizeof(int32_t));
	ref->is_token_in_rank = calloc(T * R + 1, 1);
	ref->rank_prefix_matrix = calloc(R * R, sizeof(int32_t));
	ref->num_recv_tokens_per_expert = calloc(L + 1, sizeof(int32_t));
	if (!ref->topk_idx || !ref->topk_weights || !ref->recv_rows || !ref->num_tokens_per_rank ||
	    !ref->num_tokens_per_expert || !ref->is_token_in_rank || !ref->rank_prefix_matrix ||
	    !ref->num_recv_tokens_per_expert)
		goto nomem;
	for (int i = 0; i < s->num_ranks; i++)
		if (ep_gen_routing(s, r, seed, i, ref->topk_idx + (size_t)i * T * K,
				   ref->topk_weights + (size_t)i * T * K))
			goto nomem;

	/* counts[i][j]: tokens rank i sends to rank j */
	int32_t *counts = calloc(R * R, sizeof(int32_t));
	if (!counts)
		goto nomem;
	for (size_t i = 0; i < R; i++)
		for (int t = 0; t < tokens_of(ref, (int)i); t++)
			for (size_t j = 0; j < R; j++)
				counts[i * R + j] += token_goes_to(ref, (int)i, t, (int)j);
	for (size_t j = 0; j < R; j++) {
		int32_t sum = 0;
		for (size_t i = 0; i < R; i++) {
			sum += counts[i * R + j];
			ref->rank_prefix_matrix[i * R + j] = sum;
		}
		ref->recv_rows[j] = sum;
	}
	for (size_t j = 0; j < R; j++)
		ref->num_tokens_per_rank[j] = counts[(size_t)me * R + j];
	free(counts);

	const int64_t *mine = ep_reference_topk_idx(ref, me);
	for (size_t t = 0; t < (size_t)tokens_of(ref, me); t++) {
		for (size_t j = 0; j < K; j++)
			if (mine[t * K + j] >= 0 && mine[t * K + j] < (int64_t)E)
				ref->num_tokens_per_expert[mine[t * K + j]]++;
		for (size_t j = 0; j < R; j++)
			ref->is_token_in_rank[t * R + j] = (uint8_t)token_goes_to(ref, me, (int)t, (int)j);
	}

	/* Receive rows of me: sources ascending, then tokens ascending. */
	ref->num_recv = (size_t)ref->recv_rows[me];
	ref->row_src_rank = malloc(sizeof(int32_t) * (ref->num_recv + 1));
	ref->row_src_token = malloc(sizeof(int32_t) * (ref->num_recv + 1));
	if (!ref->row_src_rank || !ref->row_src_token)
		goto nomem;
	size_t m = 0;
	int64_t *per_expert = calloc(L + 1, sizeof(int64_t));
	if (!per_expert)
		goto nomem;
	for (int i = 0; i < s->num_ranks; i++) {
		const int64_t *idx = ep_reference_topk_idx(ref, i);
		for (int t = 0; t < tokens_of(ref, i); t++) {
			for (size_t j = 0; j < K; j++) {
				int64_t v = idx[(size_t)t * K + j];
				if (v >= (int64_t)(me * L) && v < (int64_t)((me + 1) * L))
					per_expert[v - (int64_t)(me * L)]++;
			}
			if (!token_goes_to(ref, i, t, me))
				continue;
			ref->row_src_rank[m] = i;
			ref->row_src_token[m] = t;
			m++;
		}
	}
	int64_t align = s->expert_alignment > 0 ? s->expert_alignment : 1, prefix = 0;
	for (size_t e = 0; e < L; e++) {
		int64_t n = (per_expert[e] + align - 1) / align * align;
		prefix += n;
		ref->num_recv_tokens_per_expert[e] =
			(int32_t)(s->expert_counts == EP_COUNTS_PREFIX ? prefix : n);
	}
	free(per_expert);
	return 0;
nomem:
	ep_reference_fini(ref);
	return -ENOMEM;
}

void ep_reference_fini(struct ep_reference *ref)
{
	free(ref->topk_idx);
	free(ref->topk_weights);
	free(ref->recv_rows);
	free(ref->num_tokens_per_rank);
	free(ref->num_tokens_per_expert);
	free(ref->is_token_in_rank);
	free(ref->rank_prefix_matrix);
	free(ref->num_recv_tokens_per_expert);
	free(ref->row_src_rank);
	free(ref->row_src_token);
	memset(ref, 0, sizeof(*ref));
}

size_t ep_reference_max_recv(const struct ep_reference *ref)
{
	size_t best = 0;
	for (int r = 0; r < ref->shape.num_ranks; r++)
		if ((size_t)ref->recv_rows[r] > best)
			best = (size_t)ref->recv_rows[r];
	return best;
}

void ep_reference_check_layout(const struct ep_reference *ref, const struct ep_layout *a,
			       struct ep_check_report *rep)
{
	const struct ep_shape *s = &ref->shape;
	int R = s->num_ranks;
	ep_compare_row(rep, "num_tokens_per_rank", EP_ELEM_I32, ref->num_tokens_per_rank,
		       a->num_tokens_per_rank, (size_t)R, 0, -1, -1);
	ep_compare_row(rep, "num_tokens_per_expert", EP_ELEM_I32, ref->num_tokens_per_expert,
		       a->num_tokens_per_expert, (size_t)s->num_experts, 0, -1, -1);
	for (int t = 0; t < tokens_of(ref, ref->me); t++)
		ep_compare_row(rep, "is_token_in_rank", EP_ELEM_U8,
			       ref->is_token_in_rank + (size_t)t * R,
			       a->is_token_in_rank + (size_t)t * R, (size_t)R, t, ref->me, t);
}

void ep_dispatched_row_to_bf16(const struct ep_shape *s, const void *row, const float *scales,
			       uint16_t *out)
{
	switch (s->dtype) {
	case EP_DTYPE_BF16:
		memcpy(out, row, (size_t)s->hidden * 2);
		break;
	case EP_DTYPE_FP8:
		ep_fp8_dequant_row(row, scales, (size_t)s->hidden, out);
		break;
	case EP_DTYPE_INT8:
		ep_int8_dequant_row(row, scales[0], (size_t)s->hidden, out);
		break;
	}
}

/* Rank src's token t as it travels: the dispatch-dtype row and its scales. */
static void wire_row(const struct ep_reference *ref, int src, int t, uint8_t *row, float *scales,
		     uint16_t *tmp)
{
	const struct ep_shape *s = &ref->shape;
	if (s->dtype == EP_DTYPE_INT8) {
		ep_gen_bf16_row(ref->seed, ref->routing, EP_STREAM_X, src, t, s->hidden, tmp);
		scales[0] = ep_int8_quant_row(tmp, (size_t)s->hidden, (int8_t *)row);
	} else {
		ep_gen_x_row(s, ref->seed, ref->routing, src, t, row, scales);
	}
}

int ep_reference_world(const struct ep_reference *ref, int r)
{
	return ref->routing->group ? ref->routing->group->world_rank[r] : r;
}

static void expert_row(const struct ep_reference *ref, int rank, int e, const uint16_t *x, uint16_t *y)
{
	if (ref->expert)
		ref->expert->row(ref->expert->ctx, rank, e, x, ref->shape.hidden, y);
	else
		ep_expert_transform(ref->routing->payload, rank, e, x, ref->shape.hidden, y);
}

static float expert_weight(const struct ep_reference *ref, int rank, int local, float w)
{
	return ref->expert ? ref->expert->weight(ref->expert->ctx, rank, local, w) : ep_expert_weight(rank, local, w);
}

/* Received row m's topk as rank me must see it: local ids, -1 and 0 elsewhere. */
static void local_topk(const struct ep_reference *ref, int src, int t, int64_t *idx, float *w)
{
	int K = ref->shape.num_topk, L = ep_local_experts(&ref->shape), me = ref->me;
	const int64_t *g = ep_reference_topk_idx(ref, src) + (size_t)t * K;
	const float *gw = ep_reference_topk_weights(ref, src) + (size_t)t * K;
	for (int j = 0; j < K; j++) {
		int mine = g[j] >= (int64_t)me * L && g[j] < (int64_t)(me + 1) * L;
		idx[j] = mine ? g[j] - (int64_t)me * L : -1;
		w[j] = mine ? gw[j] : 0.0f;
	}
}

/* One received row: payload, scales and, unless cached, source and topk. */
static void check_row(const struct ep_reference *ref, const struct ep_dispatch_out *a, size_t m, int cached,
		      const struct ep_row_names *nm, uint8_t *row, float *scales, uint16_t *tmp,
		      struct ep_check_report *rep)
{
	const struct ep_shape *s = &ref->shape;
	int K = s->num_topk, S = ep_dtype_num_scales(s->dtype, s->hidden);
	size_t row_bytes = ep_dtype_row_bytes(s->dtype, s->hidden);
	enum ep_elem kind = s->dtype == EP_DTYPE_BF16 ? EP_ELEM_BF16 : s->dtype == EP_DTYPE_FP8 ? EP_ELEM_FP8 : EP_ELEM_I8;
	int src = ref->row_src_rank[m], t = ref->row_src_token[m], who = ep_reference_world(ref, src);
	wire_row(ref, src, t, row, scales, tmp);
	ep_compare_row(rep, nm->x, kind, row, (const uint8_t *)a->recv_x + m * row_bytes, (size_t)s->hidden,
		       (int64_t)m, who, t);
	if (S)
		ep_compare_row(rep, nm->x_scales, EP_ELEM_F32, scales, a->recv_x_scales + m * (size_t)S, (size_t)S,
			       (int64_t)m, who, t);
	if (cached)
		return;
	int32_t want_src = t;
	ep_compare_row(rep, nm->src_idx, EP_ELEM_I32, &want_src, a->recv_src_idx + m, 1, (int64_t)m, who, t);
	if (!a->recv_topk_idx)
		return;
	int64_t want_idx[K];
	float want_w[K];
	local_topk(ref, src, t, want_idx, want_w);
	ep_compare_row(rep, nm->topk_idx, EP_ELEM_I64, want_idx, a->recv_topk_idx + m * (size_t)K, (size_t)K,
		       (int64_t)m, who, t);
	if (a->recv_topk_weights)
		ep_compare_row(rep, nm->topk_weights, EP_ELEM_F32, want_w, a->recv_topk_weights + m * (size_t)K,
			       (size_t)K, (int64_t)m, who, t);
}

static void check_rows(const struct ep_reference *ref, const struct ep_dispatch_out *a, int cached,
		       const struct ep_row_names *nm, struct ep_check_report *rep)
{
	const struct ep_shape *s = &ref->shape;
	uint8_t *row = malloc(ep_dtype_row_bytes(s->dtype, s->hidden) + 1);
	float *scales = malloc(sizeof(float) * (size_t)(ep_dtype_num_scales(s->dtype, s->hidden) + 1));
	uint16_t *tmp = malloc(sizeof(uint16_t) * (size_t)s->hidden + 2);
	if (!row || !scales || !tmp)
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
	for (size_t m = 0; row && scales && tmp && m < ref->num_recv; m++)
		check_row(ref, a, m, cached, nm, row, scales, tmp, rep);
	free(row);
	free(scales);
	free(tmp);
}

static const struct ep_row_names deepep_names = {"recv_x", "recv_x_scales", "recv_src_idx", "recv_topk_idx",
						 "recv_topk_weights"};

void ep_reference_check_dispatch(const struct ep_reference *ref,
				 const struct ep_dispatch_out *a, int cached,
				 struct ep_check_report *rep)
{
	const struct ep_shape *s = &ref->shape;
	int R = s->num_ranks, L = ep_local_experts(s);
	ep_report_scalar(rep, "num_recv_tokens", (long long)ref->num_recv, (long long)a->num_recv);
	if (a->num_recv != ref->num_recv)
		return;
	if (!cached) {
		ep_compare_row(rep, "rank_prefix_matrix", EP_ELEM_I32, ref->rank_prefix_matrix,
			       a->rank_prefix_matrix, (size_t)R * R, 0, -1, -1);
		ep_compare_row(rep, "num_recv_tokens_per_expert", EP_ELEM_I32,
			       ref->num_recv_tokens_per_expert, a->num_recv_tokens_per_expert,
			       (size_t)L, 0, -1, -1);
	}
	check_rows(ref, a, cached, &deepep_names, rep);
}

void ep_reference_check_rows(const struct ep_reference *ref, const struct ep_dispatch_out *a,
			     const struct ep_row_names *names, struct ep_check_report *rep)
{
	ep_report_scalar(rep, names->x, (long long)ref->num_recv, (long long)a->num_recv);
	if (a->num_recv == ref->num_recv)
		check_rows(ref, a, 0, names, rep);
}

/* The smallest local expert of rank r among the token's slots, or -1. */
static int row_expert_on(const struct ep_reference *ref, const int64_t *idx, int r)
{
	int K = ref->shape.num_topk, L = ep_local_experts(&ref->shape), e = -1;
	if (!ref->shape.with_topk)
		return -1;
	for (int j = 0; j < K; j++)
		if (idx[j] >= (int64_t)r * L && idx[j] < (int64_t)(r + 1) * L && (e < 0 || idx[j] - (int64_t)r * L < e))
			e = (int)(idx[j] - (int64_t)r * L);
	return e;
}

/* Rank src's token t as the expert sees it: bf16 [H] (tmp: [H] scratch). */
static int expert_input(const struct ep_reference *ref, int src, int t, uint16_t *xb)
{
	const struct ep_shape *s = &ref->shape;
	uint8_t *row = malloc(ep_dtype_row_bytes(s->dtype, s->hidden) + 1);
	float *scales = malloc(sizeof(float) * (size_t)(ep_dtype_num_scales(s->dtype, s->hidden) + 1));
	uint16_t *tmp = malloc(sizeof(uint16_t) * (size_t)s->hidden + 2);
	int rc = row && scales && tmp ? 0 : -ENOMEM;
	if (!rc) {
		wire_row(ref, src, t, row, scales, tmp);
		ep_dispatched_row_to_bf16(s, row, scales, xb);
	}
	free(row);
	free(scales);
	free(tmp);
	return rc;
}

int ep_reference_expert_output(const struct ep_reference *ref, size_t m, uint16_t *y)
{
	int src = ref->row_src_rank[m], t = ref->row_src_token[m];
	uint16_t *xb = malloc(sizeof(uint16_t) * (size_t)ref->shape.hidden + 2);
	int rc = xb ? expert_input(ref, src, t, xb) : -ENOMEM;
	if (!rc)
		expert_row(ref, ref->me,
			   row_expert_on(ref, ep_reference_topk_idx(ref, src) + (size_t)t * ref->shape.num_topk, ref->me),
			   xb, y);
	free(xb);
	return rc;
}

/* acc = float(b0) + float(b1) of rank src's token t, missing ones +0.0f. */
static void bias_start(const struct ep_reference *ref, int src, int t, float *acc, uint16_t *b)
{
	int H = ref->shape.hidden;
	for (int c = 0; c < H; c++)
		acc[c] = 0.0f;
	if (ref->shape.num_bias >= 1) {
		ep_gen_bf16_row(ref->seed, ref->routing, EP_STREAM_BIAS0, src, t, H, b);
		for (int c = 0; c < H; c++)
			acc[c] = ep_bf16_to_f32(b[c]);
	}
	if (ref->shape.num_bias >= 2) {
		ep_gen_bf16_row(ref->seed, ref->routing, EP_STREAM_BIAS1, src, t, H, b);
		for (int c = 0; c < H; c++)
			acc[c] = acc[c] + ep_bf16_to_f32(b[c]);
	} else {
		for (int c = 0; c < H; c++)
			acc[c] = acc[c] + 0.0f;
	}
}

/* Sums every destination's return into acc and wsum (scratch xb, y). */
static int sum_returns(const struct ep_reference *ref, int src, int t, float *acc, float *wsum, uint16_t *xb,
		       uint16_t *y)
{
	int R = ref->shape.num_ranks, H = ref->shape.hidden, K = ref->shape.num_topk, L = ep_local_experts(&ref->shape);
	const int64_t *idx = ep_reference_topk_idx(ref, src) + (size_t)t * K;
	const float *wt = ep_reference_topk_weights(ref, src) + (size_t)t * K;
	int have_row = 0, rc;
	for (int j = 0; j < K; j++)
		wsum[j] = 0.0f;
	for (int r = 0; r < R; r++) {
		if (!token_goes_to(ref, src, t, r))
			continue;
		if (!have_row && (rc = expert_input(ref, src, t, xb)))
			return rc;
		have_row = 1;
		expert_row(ref, r, row_expert_on(ref, idx, r), xb, y);
		for (int c = 0; c < H; c++)
			acc[c] += ep_bf16_to_f32(y[c]);
		for (int j = 0; j < K; j++) {
			int64_t v = idx[j];
			int local = v >= (int64_t)r * L && v < (int64_t)(r + 1) * L ? (int)(v - (int64_t)r * L) : -1;
			wsum[j] += expert_weight(ref, r, local, local >= 0 ? wt[j] : 0.0f);
		}
	}
	return 0;
}

int ep_reference_combined_row(const struct ep_reference *ref, int src, int t, uint16_t *want, float *wsum)
{
	int H = ref->shape.hidden, K = ref->shape.num_topk;
	uint16_t *xb = malloc(sizeof(uint16_t) * (size_t)H + 2), *y = malloc(sizeof(uint16_t) * (size_t)H + 2);
	float *acc = malloc(sizeof(float) * (size_t)H + 4), w[K > 0 ? K : 1];
	int rc = xb && y && acc ? 0 : -ENOMEM;
	if (!rc)
		bias_start(ref, src, t, acc, y);
	if (!rc && !(rc = sum_returns(ref, src, t, acc, wsum ? wsum : w, xb, y)))
		for (int c = 0; c < H; c++)
			want[c] = ep_f32_to_bf16(acc[c]);
	free(xb);
	free(y);
	free(acc);
	return rc;
}

void ep_reference_check_combine(const struct ep_reference *ref, const uint16_t *combined_x,
				const float *combined_w, struct ep_check_report *rep)
{
	const struct ep_shape *s = &ref->shape;
	int H = s->hidden, K = s->num_topk, me = ref->me, who = ep_reference_world(ref, me);
	uint16_t *want = malloc(sizeof(uint16_t) * (size_t)H + 2);
	float wsum[K > 0 ? K : 1];
	for (int t = 0; want && t < tokens_of(ref, me); t++) {
		if (ep_reference_combined_row(ref, me, t, want, wsum)) {
			ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
			break;
		}
		ep_compare_row(rep, "combined_x", EP_ELEM_BF16, want, combined_x + (size_t)t * H, (size_t)H, t, who, t);
		if (combined_w && s->with_topk)
			ep_compare_row(rep, "combined_topk_weights", EP_ELEM_F32, wsum, combined_w + (size_t)t * K,
				       (size_t)K, t, who, t);
	}
	if (!want)
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
	free(want);
}
