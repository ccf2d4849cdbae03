/* ascend_ref.c - plain loops that say what Ascend's dispatch and combine must output. */
#include "reference/ascend_ref.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/numeric.h"
#include "reference/transform.h"

const int64_t *ep_ascend_ref_ids(const struct ep_ascend_ref *ref, int rank)
{
	return ref->ids + (size_t)rank * ref->p.max_tokens * ref->p.num_topk;
}

const float *ep_ascend_ref_weights(const struct ep_ascend_ref *ref, int rank)
{
	return ref->weights + (size_t)rank * ref->p.max_tokens * ref->p.num_topk;
}

void ep_ascend_gen_smooth(uint64_t seed, int rows, int hidden, float *out)
{
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < hidden; c++) {
			uint64_t h = ep_mix64(ep_mix64(seed ^ 0xa5ce7d5eedULL) + (uint64_t)r * 0x100000001b3ULL +
					      (uint64_t)c);
			out[(size_t)r * hidden + c] = ldexpf(1.0f + (float)(h & 7) / 8.0f, (int)((h >> 3) % 3) - 1);
		}
}

/* An integer-valued float to int8, as the cast saturates; NaN gives 0. */
static int8_t to_int8(float v)
{
	if (isnan(v))
		return 0;
	if (v > 127.0f)
		return 127;
	if (v < -127.0f)
		return -127;
	return (int8_t)v;
}

float ep_ascend_ref_quant(const uint16_t *x, const float *smooth, int hidden, int8_t *q)
{
	float amax = 0.0f;
	for (int i = 0; i < hidden; i++) {
		float xf = ep_bf16_to_f32(x[i]);
		if (smooth)
			xf = xf * smooth[i];
		if (fabsf(xf) > amax)
			amax = fabsf(xf);
	}
	if (amax == 0.0f) { /* choice: Ascend would make NaN; q = 0, scale = +0 */
		memset(q, 0, (size_t)hidden);
		return 0.0f;
	}
	float ds = 127.0f / amax;
	for (int i = 0; i < hidden; i++) {
		float xf = ep_bf16_to_f32(x[i]);
		if (smooth)
			xf = xf * smooth[i];
		q[i] = to_int8(nearbyintf(xf * ds)); /* the default rounding: ties to even */
	}
	return 1.0f / ds;
}

void ep_ascend_ref_comm_quant(const uint16_t *y, int hidden, uint16_t *out)
{
	const float inv127 = ep_f32_from_bits(0x3c010204u);
	for (int b = 0; b + 8 <= hidden; b += 8) {
		float m = 0.0f;
		for (int i = b; i < b + 8; i++)
			if (fabsf(ep_bf16_to_f32(y[i])) > m)
				m = fabsf(ep_bf16_to_f32(y[i]));
		float s = m * inv127;
		uint16_t sent = ep_f32_to_bf16(s);
		for (int i = b; i < b + 8; i++) {
			int8_t q = s == 0.0f ? 0 : to_int8(nearbyintf(ep_bf16_to_f32(y[i]) / s));
			out[i] = ep_f32_to_bf16((float)q * ep_bf16_to_f32(sent));
		}
	}
}

void ep_ascend_expert_row(enum ep_payload payload, int rank, int local_expert, int quant, const void *row,
			  float scale, int hidden, uint16_t *y)
{
	uint16_t deq[hidden > 0 ? hidden : 1];
	const uint16_t *x = row;
	if (quant) {
		ep_int8_dequant_row(row, scale, (size_t)hidden, deq);
		x = deq;
	}
	ep_expert_transform(payload, rank, local_expert, x, hidden, y);
}

static int rpse_of(const struct ep_ascend_params *p)
{
	return p->shared_experts ? p->shared_ranks / p->shared_experts : 1;
}

static int local_experts(const struct ep_ascend_params *p)
{
	return p->num_experts / (p->num_ranks - p->shared_ranks);
}

/* Every rank's routing; -EINVAL when a row repeats an expert or leaves [0, E). */
static int gen_routing(struct ep_ascend_ref *ref, const struct ep_shape *s)
{
	const struct ep_ascend_params *p = &ref->p;
	size_t BS = (size_t)p->max_tokens, K = (size_t)p->num_topk;
	for (int r = 0; r < p->num_ranks; r++) {
		int64_t *ids = ref->ids + (size_t)r * BS * K;
		if (ep_gen_routing(s, ref->in.routing, ref->in.seed, r, ids, ref->weights + (size_t)r * BS * K))
			return -ENOMEM;
		ref->tokens[r] = ep_routing_num_tokens(ref->in.routing, p->max_tokens, ref->in.seed, r);
		for (size_t t = 0; t < (size_t)ref->tokens[r]; t++)
			for (size_t j = 0; j < K; j++) {
				int64_t e = ids[t * K + j];
				if (e >= p->num_experts)
					return -EINVAL;
				for (size_t i = 0; i < j && e >= 0; i++)
					if (ids[t * K + i] == e)
						return -EINVAL;
			}
	}
	return 0;
}

/* Rows of rank me in Ascend's order, as (source, token, slot) triples,
 * appended when out is given; returns how many. */
static size_t list_rows(const struct ep_ascend_ref *ref, int32_t *out, int64_t *per_local, int32_t *per_i)
{
	const struct ep_ascend_params *p = &ref->p;
	int R = p->num_ranks, K = p->num_topk, me = ref->me, L = local_experts(p), rpse = rpse_of(p);
	int shared = me < p->shared_ranks, nl = shared ? 1 : L;
	size_t n = 0;
	for (int el = 0; el < nl; el++)
		for (int s = 0; s < R; s++) {
			size_t before = n;
			const int64_t *ids = ep_ascend_ref_ids(ref, s);
			for (int t = 0; t < ref->tokens[s]; t++) {
				if (shared) {
					if (s % rpse != me % rpse)
						break;
					if (out)
						out[3 * n] = s, out[3 * n + 1] = t, out[3 * n + 2] = K + me / rpse;
					n++;
					continue;
				}
				for (int j = 0; j < K; j++) {
					if (ids[(size_t)t * K + j] != (int64_t)(me - p->shared_ranks) * L + el)
						continue;
					if (out)
						out[3 * n] = s, out[3 * n + 1] = t, out[3 * n + 2] = j;
					n++;
				}
			}
			if (per_local)
				per_local[el] += (int64_t)(n - before);
			if (per_i)
				per_i[el * R + s] = (int32_t)n; /* inclusive prefix over i = el * R + s */
		}
	return n;
}

static int expected_dispatch(struct ep_ascend_ref *ref)
{
	const struct ep_ascend_params *p = &ref->p;
	int nl = ref->me < p->shared_ranks ? 1 : local_experts(p);
	ref->num_local = nl;
	ref->num_counts = nl * p->num_ranks;
	ref->expert_token_nums = calloc((size_t)nl, sizeof(int64_t));
	ref->ep_recv_counts = calloc((size_t)ref->num_counts, sizeof(int32_t));
	if (!ref->expert_token_nums || !ref->ep_recv_counts)
		return -ENOMEM;
	ref->num_recv = list_rows(ref, NULL, ref->expert_token_nums, ref->ep_recv_counts);
	ref->rows = malloc(sizeof(int32_t) * (3 * ref->num_recv + 1));
	if (!ref->rows)
		return -ENOMEM;
	list_rows(ref, ref->rows, NULL, NULL);
	for (int el = 1; p->counts_prefix && el < nl; el++)
		ref->expert_token_nums[el] += ref->expert_token_nums[el - 1];
	return 0;
}

int ep_ascend_ref_init(struct ep_ascend_ref *ref, const struct ep_ascend_params *p, const struct ep_shape *s,
		       const struct ep_ascend_inputs *in, int me)
{
	size_t R = (size_t)p->num_ranks, BS = (size_t)p->max_tokens, K = (size_t)p->num_topk;
	size_t nsmooth = (size_t)(p->shared_experts + p->num_experts) * (size_t)p->hidden;
	memset(ref, 0, sizeof(*ref));
	ref->p = *p;
	ref->in = *in;
	ref->me = me;
	ref->ids = malloc(sizeof(int64_t) * (R * BS * K + 1));
	ref->weights = malloc(sizeof(float) * (R * BS * K + 1));
	ref->tokens = calloc(R, sizeof(int));
	int gen = in->smooth && p->quant && !in->smooth_of;
	if (gen && (ref->smooth = malloc(sizeof(float) * nsmooth)))
		ep_ascend_gen_smooth(in->seed, p->shared_experts + p->num_experts, p->hidden, ref->smooth);
	int rc = -ENOMEM;
	if (ref->ids && ref->weights && ref->tokens && (ref->smooth || !gen))
		if (!(rc = gen_routing(ref, s)))
			rc = expected_dispatch(ref);
	if (rc)
		ep_ascend_ref_fini(ref);
	return rc;
}

void ep_ascend_ref_fini(struct ep_ascend_ref *ref)
{
	free(ref->ids);
	free(ref->weights);
	free(ref->tokens);
	free(ref->smooth);
	free(ref->rows);
	free(ref->expert_token_nums);
	free(ref->ep_recv_counts);
	memset(ref, 0, sizeof(*ref));
}

/* The smoothing row of a slot (the source's table): S_n + e for routed expert e, j for shared expert j. */
static const float *smooth_row(const struct ep_ascend_ref *ref, int src, int t, int slot)
{
	const struct ep_ascend_params *p = &ref->p;
	const float *table = ref->in.smooth_of && ref->in.smooth && p->quant ? ref->in.smooth_of[src] : ref->smooth;
	if (!table)
		return NULL;
	int row = slot < p->num_topk
		? p->shared_experts + (int)ep_ascend_ref_ids(ref, src)[(size_t)t * p->num_topk + slot]
		: slot - p->num_topk;
	return table + (size_t)row * p->hidden;
}

/* Token t of rank src as it travels for slot: bf16, or int8 and its scale. */
static void wire_row(const struct ep_ascend_ref *ref, int src, int t, int slot, void *row, float *scale)
{
	int H = ref->p.hidden;
	uint16_t x[H > 0 ? H : 1];
	ep_gen_bf16_row(ref->in.seed, ref->in.routing, EP_STREAM_X, src, t, H, x);
	*scale = 0.0f;
	if (ref->p.quant)
		*scale = ep_ascend_ref_quant(x, smooth_row(ref, src, t, slot), H, row);
	else
		memcpy(row, x, sizeof(uint16_t) * (size_t)H);
}

void ep_ascend_ref_row(const struct ep_ascend_ref *ref, size_t m, void *row, float *scale)
{
	const int32_t *r = ref->rows + 3 * m;
	wire_row(ref, r[0], r[1], r[2], row, scale);
}

void ep_ascend_ref_check_dispatch(const struct ep_ascend_ref *ref, const struct ep_ascend_out *a,
				  struct ep_check_report *rep)
{
	const struct ep_ascend_params *p = &ref->p;
	size_t rb = (size_t)p->hidden * (p->quant ? 1 : 2);
	ep_report_scalar(rep, "num_recv", (long long)ref->num_recv, (long long)a->num_recv);
	ep_report_scalar(rep, "expert_token_nums.size", ref->num_local, a->num_local);
	ep_report_scalar(rep, "ep_recv_counts.size", ref->num_counts, a->num_counts);
	if (a->num_recv != ref->num_recv || a->num_local != ref->num_local || a->num_counts != ref->num_counts)
		return;
	ep_compare_row(rep, "expert_token_nums", EP_ELEM_I64, ref->expert_token_nums, a->expert_token_nums,
		       (size_t)ref->num_local, 0, -1, -1);
	ep_compare_handle_row(rep, "ep_recv_counts", EP_ELEM_I32, ref->ep_recv_counts, a->ep_recv_counts,
			      (size_t)ref->num_counts, 0, -1, -1);
	uint8_t *row = malloc(rb + 1);
	if (!row) {
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
		return;
	}
	for (size_t m = 0; m < ref->num_recv; m++) {
		const int32_t *r = ref->rows + 3 * m;
		float scale;
		ep_ascend_ref_row(ref, m, row, &scale);
		ep_compare_row(rep, "expand_x", p->quant ? EP_ELEM_I8 : EP_ELEM_BF16, row,
			       (const uint8_t *)a->expand_x + m * rb, (size_t)p->hidden, (int64_t)m, r[0], r[1]);
		if (p->quant)
			ep_compare_row(rep, "dynamic_scales", EP_ELEM_F32, &scale, a->dynamic_scales + m, 1,
				       (int64_t)m, r[0], r[1]);
		ep_compare_handle_row(rep, "assist_info_for_combine", EP_ELEM_I32, r, a->assist_info + 3 * m, 3,
				      (int64_t)m, r[0], r[1]);
	}
	free(row);
}

void ep_ascend_ref_expert(const struct ep_ascend_ref *ref, int rank, int el, const void *row, float scale,
			  uint16_t *y)
{
	int H = ref->p.hidden;
	uint16_t deq[H > 0 ? H : 1];
	const struct ep_expert_fn *f = ref->in.expert;
	if (!f) {
		ep_ascend_expert_row(ref->in.routing->payload, rank, el, ref->p.quant, row, scale, H, y);
		return;
	}
	if (ref->p.quant)
		ep_int8_dequant_row(row, scale, (size_t)H, deq);
	f->row(f->ctx, rank, el, ref->p.quant ? deq : row, H, y);
}

/* What the expert on `rank` (local expert el) returns for token t's slot,
 * as the source reads it (after the int8 transport with comm_quant). */
static void returned_row(const struct ep_ascend_ref *ref, int src, int t, int slot, int rank, int el, uint16_t *y)
{
	const struct ep_ascend_params *p = &ref->p;
	int H = p->hidden;
	uint8_t row[2 * (size_t)(H > 0 ? H : 1)];
	uint16_t tmp[H > 0 ? H : 1];
	float scale;
	wire_row(ref, src, t, slot, row, &scale);
	ep_ascend_ref_expert(ref, rank, el, row, scale, p->comm_quant ? tmp : y);
	if (p->comm_quant)
		ep_ascend_ref_comm_quant(tmp, H, y);
}

/* Section 5.3: acc = +0; routed slots in order, acc + (y * w), each op
 * rounded; shared experts unweighted; shared_expert_x; bf16 RNE. */
static void expected_token(const struct ep_ascend_ref *ref, int me, int t, float *acc, uint16_t *y, uint16_t *want)
{
	const struct ep_ascend_params *p = &ref->p;
	int H = p->hidden, K = p->num_topk, L = local_experts(p), rpse = rpse_of(p);
	const int64_t *ids = ep_ascend_ref_ids(ref, me) + (size_t)t * K;
	const float *w = ep_ascend_ref_weights(ref, me) + (size_t)t * K;
	for (int c = 0; c < H; c++)
		acc[c] = 0.0f;
	for (int j = 0; j < K; j++) {
		if (ids[j] < 0)
			continue;
		returned_row(ref, me, t, j, p->shared_ranks + (int)(ids[j] / L), (int)(ids[j] % L), y);
		for (int c = 0; c < H; c++) {
			volatile float m = ep_bf16_to_f32(y[c]) * w[j];
			acc[c] = acc[c] + m;
		}
	}
	for (int j = 0; j < p->shared_experts; j++) {
		returned_row(ref, me, t, K + j, me % rpse + j * rpse, 0, y);
		for (int c = 0; c < H; c++)
			acc[c] = acc[c] + ep_bf16_to_f32(y[c]);
	}
	if (ref->in.shared_x) {
		ep_gen_bf16_row(ref->in.seed, ref->in.routing, EP_STREAM_BIAS0, me, t, H, y);
		for (int c = 0; c < H; c++)
			acc[c] = acc[c] + ep_bf16_to_f32(y[c]);
	}
	for (int c = 0; c < H; c++)
		want[c] = ep_f32_to_bf16(acc[c]);
}

void ep_ascend_ref_check_combine(const struct ep_ascend_ref *ref, const uint16_t *x_out,
				 struct ep_check_report *rep)
{
	int H = ref->p.hidden;
	float *acc = malloc(sizeof(float) * (size_t)H + 4);
	uint16_t *y = malloc(sizeof(uint16_t) * (size_t)H + 2), *want = malloc(sizeof(uint16_t) * (size_t)H + 2);
	if (!acc || !y || !want) {
		ep_report_scalar(rep, "reference_out_of_memory", 0, 1);
	} else {
		for (int t = 0; t < ref->tokens[ref->me]; t++) {
			expected_token(ref, ref->me, t, acc, y, want);
			ep_compare_row(rep, "x", EP_ELEM_BF16, want, x_out + (size_t)t * H, (size_t)H, t, ref->me, t);
		}
	}
	free(acc);
	free(y);
	free(want);
}

int ep_ascend_ref_combined_row(const struct ep_ascend_ref *ref, int src, int t, uint16_t *want)
{
	int H = ref->p.hidden;
	float *acc = malloc(sizeof(float) * (size_t)H + 4);
	uint16_t *y = malloc(sizeof(uint16_t) * (size_t)H + 2);
	int rc = acc && y ? 0 : -ENOMEM;
	if (!rc)
		expected_token(ref, src, t, acc, y, want);
	free(acc);
	free(y);
	return rc;
}
