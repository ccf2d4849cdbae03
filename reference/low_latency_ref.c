/* low_latency_ref.c - plain loops that say what low-latency outputs must be. */
#include "reference/low_latency_ref.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/numeric.h"
#include "reference/transform.h"

int ep_ll_ref_tokens(const struct ep_ll_ref *ref, int rank)
{
	return ref->num_tokens[rank];
}

const int64_t *ep_ll_ref_topk_idx(const struct ep_ll_ref *ref, int rank)
{
	return ref->topk_idx + (size_t)rank * ref->max_tokens_in * ref->cfg.num_topk;
}

const float *ep_ll_ref_topk_weights(const struct ep_ll_ref *ref, int rank)
{
	return ref->topk_weights + (size_t)rank * ref->max_tokens_in * ref->cfg.num_topk;
}

/* Every rank's routing, generated for T tokens. 0 or -ENOMEM. */
static int gen_all_routing(struct ep_ll_ref *ref, const struct ep_routing *r)
{
	const struct ep_ll_config *c = &ref->cfg;
	struct ep_shape s = {
		.num_ranks = c->num_ranks, .num_tokens = ref->max_tokens_in, .hidden = c->hidden,
		.num_topk = c->num_topk, .num_experts = c->num_experts, .dtype = c->dtype,
	};
	for (int i = 0; i < c->num_ranks; i++)
		if (ep_gen_routing(&s, r, ref->seed, i, (int64_t *)ep_ll_ref_topk_idx(ref, i),
				   (float *)ep_ll_ref_topk_weights(ref, i)))
			return -ENOMEM;
	return 0;
}

/* The packed rows of me, in canonical order: for each local expert e,
 * sources ascending, their tokens ascending, then the slots of a token. */
static void build_expected(struct ep_ll_ref *ref)
{
	const struct ep_ll_config *c = &ref->cfg;
	int R = c->num_ranks, K = c->num_topk, L = c->num_experts / R, N = c->max_tokens;
	size_t RN = (size_t)R * N;
	for (int e = 0; e < L; e++) {
		int64_t want = (int64_t)ref->me * L + e;
		int32_t n = 0;
		for (int s = 0; s < R; s++) {
			const int64_t *idx = ep_ll_ref_topk_idx(ref, s);
			int32_t begin = n, from_s = 0;
			for (int t = 0; t < ref->num_tokens[s]; t++)
				for (int j = 0; j < K; j++) {
					if (idx[(size_t)t * K + j] != want)
						continue;
					if (++from_s > N) { /* more messages than slots */
						ref->overflow = 1;
						continue;
					}
					ref->row_src_rank[(size_t)e * RN + (size_t)n] = s;
					ref->row_src_token[(size_t)e * RN + (size_t)n] = t;
					n++;
				}
			ref->layout_range[(size_t)e * R + s] =
				(int64_t)(((uint64_t)(uint32_t)begin << 32) | (uint32_t)(n - begin));
		}
		ref->count[e] = n;
	}
}

int ep_ll_ref_init(struct ep_ll_ref *ref, const struct ep_ll_config *cfg, int num_tokens,
		   const struct ep_routing *r, uint64_t seed, int uneven, int me)
{
	size_t R = (size_t)cfg->num_ranks, T = (size_t)num_tokens, K = (size_t)cfg->num_topk;
	size_t L = (size_t)cfg->num_experts / R, RN = R * (size_t)cfg->max_tokens;
	size_t H = (size_t)cfg->hidden;
	memset(ref, 0, sizeof(*ref));
	ref->cfg = *cfg;
	ref->seed = seed;
	ref->payload = r->payload;
	ref->routing = r;
	ref->me = me;
	ref->max_tokens_in = num_tokens;
	ref->num_tokens = calloc(R, sizeof(int32_t));
	ref->topk_idx = calloc(R * T * K + 1, sizeof(int64_t));
	ref->topk_weights = calloc(R * T * K + 1, sizeof(float));
	ref->count = calloc(L + 1, sizeof(int32_t));
	ref->layout_range = calloc(L * R + 1, sizeof(int64_t));
	ref->row_src_rank = calloc(L * RN + 1, sizeof(int32_t));
	ref->row_src_token = calloc(L * RN + 1, sizeof(int32_t));
	ref->xrow = calloc(H, sizeof(uint16_t));
	ref->deq = calloc(H, sizeof(uint16_t));
	ref->y = calloc(H, sizeof(uint16_t));
	ref->want = calloc(H, sizeof(uint16_t));
	ref->q = calloc(H, 1);
	ref->got_bytes = calloc(H / 128 + 1, 1);
	ref->scales = calloc(H / 128 + 1, sizeof(float));
	ref->acc = calloc(H, sizeof(float));
	if (!ref->num_tokens || !ref->topk_idx || !ref->topk_weights || !ref->count ||
	    !ref->layout_range || !ref->row_src_rank || !ref->row_src_token || !ref->xrow ||
	    !ref->deq || !ref->y || !ref->want || !ref->q || !ref->got_bytes || !ref->scales ||
	    !ref->acc || gen_all_routing(ref, r)) {
		ep_ll_ref_fini(ref);
		return -ENOMEM;
	}
	for (size_t i = 0; i < R; i++)
		ref->num_tokens[i] = r->loaded || r->group ? ep_routing_num_tokens(r, num_tokens, seed, (int)i)
							   : ep_rank_num_tokens(num_tokens, seed, (int)i, uneven);
	build_expected(ref);
	return 0;
}

void ep_ll_ref_fini(struct ep_ll_ref *ref)
{
	free(ref->num_tokens);
	free(ref->topk_idx);
	free(ref->topk_weights);
	free(ref->count);
	free(ref->layout_range);
	free(ref->row_src_rank);
	free(ref->row_src_token);
	free(ref->xrow);
	free(ref->deq);
	free(ref->y);
	free(ref->want);
	free(ref->q);
	free(ref->got_bytes);
	free(ref->scales);
	free(ref->acc);
	memset(ref, 0, sizeof(*ref));
}

/* Rank s as reports name it. */
static int name_of(const struct ep_ll_ref *ref, int s)
{
	return ref->names ? ref->names[s] : s;
}

/* Token t of rank s as dispatch delivers it: ref->xrow holds the BF16 row;
 * FP8 also fills ref->q and ref->scales (scale_inv per 128 channels). */
static void wire_row(struct ep_ll_ref *ref, int s, int t)
{
	const struct ep_ll_config *c = &ref->cfg;
	ep_gen_bf16_row(ref->seed, ref->routing, EP_STREAM_X, s, t, c->hidden, ref->xrow);
	if (c->dtype == EP_DTYPE_FP8)
		ep_fp8_cast_row(ref->xrow, (size_t)c->hidden, c->round_scale, ref->q, ref->scales);
}

/* Compares the scales of packed row p of expert e, read out of DeepEP's
 * column-major storage, with the expected ones. */
static void check_scales(struct ep_ll_ref *ref, const struct ep_ll_dispatch_out *a, int e,
			 int32_t p, const char *name, int s, int t, struct ep_check_report *rep)
{
	const struct ep_ll_config *c = &ref->cfg;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, B = (size_t)c->hidden / 128;
	if (c->use_ue8m0) {
		/* int32 [L][B/4][RN]; byte k of word w is block 4w + k */
		const uint32_t *words = (const uint32_t *)a->packed_recv_x_scales + (size_t)e * (B / 4) * RN;
		uint8_t want[B];
		for (size_t b = 0; b < B; b++) {
			want[b] = (uint8_t)(ep_f32_bits(ref->scales[b]) >> 23);
			ref->got_bytes[b] = (uint8_t)(words[(b / 4) * RN + (size_t)p] >> (8 * (b % 4)));
		}
		ep_compare_row(rep, name, EP_ELEM_U8, want, ref->got_bytes, B, p, name_of(ref, s), t);
		return;
	}
	const float *f = (const float *)a->packed_recv_x_scales + (size_t)e * B * RN;
	float got[B];
	for (size_t b = 0; b < B; b++)
		got[b] = f[b * RN + (size_t)p];
	ep_compare_row(rep, name, EP_ELEM_F32, ref->scales, got, B, p, name_of(ref, s), t);
}

/* Every valid packed row of local expert e. */
static void check_expert_rows(struct ep_ll_ref *ref, const struct ep_ll_dispatch_out *a, int e,
			      int32_t rows, struct ep_check_report *rep)
{
	const struct ep_ll_config *c = &ref->cfg;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, H = (size_t)c->hidden;
	int fp8 = c->dtype == EP_DTYPE_FP8;
	size_t row_bytes = fp8 ? H : 2 * H;
	char xname[64], sname[64], iname[64];
	const char *tag = ref->tag ? ref->tag : "packed_recv";
	snprintf(xname, sizeof(xname), "%s_x[%d]", tag, e);
	snprintf(sname, sizeof(sname), "%s_x_scales[%d]", tag, e);
	snprintf(iname, sizeof(iname), "%s_src_info[%d]", tag, e);
	for (int32_t p = 0; p < rows; p++) {
		size_t at = (size_t)e * RN + (size_t)p;
		int s = ref->row_src_rank[at], t = ref->row_src_token[at];
		wire_row(ref, s, t);
		const uint8_t *got = (const uint8_t *)a->packed_recv_x + at * row_bytes;
		ep_compare_row(rep, xname, fp8 ? EP_ELEM_FP8 : EP_ELEM_BF16,
			       fp8 ? (const void *)ref->q : (const void *)ref->xrow, got, H, p, name_of(ref, s), t);
		if (fp8)
			check_scales(ref, a, e, p, sname, s, t, rep);
		int32_t want = t;
		ep_compare_row(rep, iname, EP_ELEM_I32, &want, a->packed_recv_src_info + at, 1, p, name_of(ref, s), t);
	}
}

void ep_ll_ref_check_dispatch(struct ep_ll_ref *ref, const struct ep_ll_dispatch_out *a,
			      struct ep_check_report *rep)
{
	const struct ep_ll_config *c = &ref->cfg;
	int R = c->num_ranks, L = c->num_experts / R;
	char cname[64], lname[64];
	snprintf(cname, sizeof(cname), "%s_count", ref->tag ? ref->tag : "packed_recv");
	snprintf(lname, sizeof(lname), "%s_layout_range", ref->tag ? ref->tag : "packed_recv");
	ep_compare_row(rep, cname, EP_ELEM_I32, ref->count, a->packed_recv_count, (size_t)L, 0, -1, -1);
	for (int e = 0; e < L; e++) {
		ep_compare_row(rep, lname, EP_ELEM_I64,
			       ref->layout_range + (size_t)e * R,
			       a->packed_recv_layout_range + (size_t)e * R, (size_t)R, e, -1, -1);
		int32_t rows = ref->count[e];
		if (a->packed_recv_count[e] < rows) /* already reported; compare what exists */
			rows = a->packed_recv_count[e] > 0 ? a->packed_recv_count[e] : 0;
		check_expert_rows(ref, a, e, rows, rep);
	}
}

/* The BF16 row an expert sees: the dispatched row, dequantised as DeepEP's
 * tests do (UE8M0 scales through their exponent bytes). */
static void expert_input(struct ep_ll_ref *ref, int src, int t)
{
	const struct ep_ll_config *c = &ref->cfg;
	size_t H = (size_t)c->hidden;
	wire_row(ref, src, t);
	if (c->dtype != EP_DTYPE_FP8) {
		memcpy(ref->deq, ref->xrow, H * sizeof(uint16_t));
		return;
	}
	if (c->use_ue8m0)
		for (size_t b = 0; b < H / 128; b++)
			ref->scales[b] = ep_ue8m0_to_f32((uint8_t)(ep_f32_bits(ref->scales[b]) >> 23));
	ep_fp8_dequant_row(ref->q, ref->scales, H, ref->deq);
}

/* y = the expert output of ref->deq on (EP rank, local expert e). */
static void expert_output(const struct ep_ll_ref *ref, int rank, int e, uint16_t *y)
{
	if (ref->expert)
		ref->expert->row(ref->expert->ctx, rank, e, ref->deq, ref->cfg.hidden, y);
	else
		ep_expert_transform(ref->payload, rank, e, ref->deq, ref->cfg.hidden, y);
}

void ep_ll_ref_expert_row(struct ep_ll_ref *ref, int e, int p, uint16_t *want)
{
	size_t at = (size_t)e * (size_t)ref->cfg.num_ranks * (size_t)ref->cfg.max_tokens + (size_t)p;
	expert_input(ref, ref->row_src_rank[at], ref->row_src_token[at]);
	expert_output(ref, ref->me, e, want);
}

int ep_ll_ref_combined_row(struct ep_ll_ref *ref, int src, int t, uint16_t *want)
{
	const struct ep_ll_config *c = &ref->cfg;
	int K = c->num_topk, H = c->hidden, E = c->num_experts, L = E / c->num_ranks;
	const int64_t *idx = ep_ll_ref_topk_idx(ref, src) + (size_t)t * K;
	const float *wt = ep_ll_ref_topk_weights(ref, src) + (size_t)t * K;
	int have_input = 0;
	for (int i = 0; i < H; i++)
		ref->acc[i] = 0.0f;
	for (int j = 0; j < K; j++) {
		int64_t g = idx[j];
		if (g < 0 || g >= E)
			continue;
		if (!have_input) {
			expert_input(ref, src, t);
			have_input = 1;
		}
		expert_output(ref, (int)(g / L), (int)(g % L), ref->y);
		for (int i = 0; i < H; i++)
			ref->acc[i] = fmaf(ep_bf16_to_f32(ref->y[i]), wt[j], ref->acc[i]);
	}
	for (int i = 0; i < H; i++)
		want[i] = ep_f32_to_bf16(ref->acc[i]);
	return 0;
}

void ep_ll_ref_check_combine(struct ep_ll_ref *ref, const uint16_t *combined_x,
			     struct ep_check_report *rep)
{
	int H = ref->cfg.hidden;
	for (int t = 0; t < ref->num_tokens[ref->me]; t++) {
		ep_ll_ref_combined_row(ref, ref->me, t, ref->want);
		ep_compare_row(rep, "combined_x", EP_ELEM_BF16, ref->want, combined_x + (size_t)t * H,
			       (size_t)H, t, name_of(ref, ref->me), t);
	}
}
