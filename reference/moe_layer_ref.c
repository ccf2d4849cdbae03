/* moe_layer_ref.c - MoE-TP partial sums and allgather mode's partials, in plain loops. */
#include "reference/moe_layer_ref.h"

#include <errno.h>
#include <stdlib.h>

#include "collectives/numeric.h"
#include "reference/transform.h"

static void moe_tp_row(const void *ctx, int q, int e, const uint16_t *x, int H, uint16_t *y)
{
	const struct ep_moe_tp_expert *m = ctx;
	if (m->moe_tp == 1) {
		ep_expert_transform(m->payload, q, e, x, H, y);
		return;
	}
	uint16_t p[H > 0 ? H : 1];
	float acc[H > 0 ? H : 1];
	for (int i = 0; i < m->moe_tp; i++) {
		ep_expert_transform(m->payload, q * m->moe_tp + (m->g + i) % m->moe_tp, e, x, H, p);
		for (int c = 0; c < H; c++)
			acc[c] = i == 0 ? ep_bf16_to_f32(p[c]) : acc[c] + ep_bf16_to_f32(p[c]);
	}
	for (int c = 0; c < H; c++)
		y[c] = ep_f32_to_bf16(acc[c]);
}

static float moe_tp_weight(const void *ctx, int q, int local, float w)
{
	const struct ep_moe_tp_expert *m = ctx;
	return ep_expert_weight(q * m->moe_tp + m->g, local, w);
}

void ep_moe_tp_expert_init(struct ep_moe_tp_expert *x, enum ep_payload payload, int moe_tp, int g)
{
	*x = (struct ep_moe_tp_expert){.fn = {.ctx = x, .row = moe_tp_row, .weight = moe_tp_weight},
				       .payload = payload, .moe_tp = moe_tp, .g = g};
}

int ep_allgather_partial(const struct ep_allgather_experts *a, int q, const int64_t *idx, const float *w,
			 const uint16_t *x, uint16_t *out, float *acc, uint16_t *y)
{
	int64_t lo = (int64_t)(q / a->moe_tp) * a->L, held = 0;
	for (int c = 0; c < a->H; c++)
		acc[c] = 0.0f;
	for (int j = 0; j < a->K; j++) {
		if (idx[j] < lo || idx[j] >= lo + a->L)
			continue;
		held = 1;
		ep_expert_transform(a->payload, q, (int)(idx[j] - lo), x, a->H, y);
		for (int c = 0; c < a->H; c++) {
			volatile float m = ep_bf16_to_f32(y[c]) * w[j]; /* rounded apart: no fused multiply-add */
			acc[c] = acc[c] + m;
		}
	}
	for (int c = 0; c < a->H; c++)
		out[c] = ep_f32_to_bf16(acc[c]);
	return (int)held;
}

int ep_allgather_row(const struct ep_allgather_experts *a, const int64_t *idx, const float *w, const uint16_t *x,
		     uint16_t *out)
{
	size_t H = (size_t)a->H;
	float *acc = malloc(sizeof(float) * (H + 1)), *sum = malloc(sizeof(float) * (H + 1));
	uint16_t *y = malloc(2 * (H + 1)), *p = malloc(2 * (H + 1));
	int rc = acc && sum && y && p ? 0 : -ENOMEM;
	for (size_t c = 0; !rc && c < H; c++)
		sum[c] = 0.0f;
	for (int q = 0; !rc && q < a->world; q++) {
		ep_allgather_partial(a, q, idx, w, x, p, acc, y);
		for (size_t c = 0; c < H; c++)
			sum[c] = sum[c] + ep_bf16_to_f32(p[c]);
	}
	for (size_t c = 0; !rc && c < H; c++)
		out[c] = ep_f32_to_bf16(sum[c]);
	free(acc);
	free(sum);
	free(y);
	free(p);
	return rc;
}
