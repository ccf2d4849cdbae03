/* moe_layer_ref_test.c - allgather mode's partials and the MoE-TP sum, on hand-worked cases. */
#include "reference/moe_layer_ref.h"

#include <string.h>

#include "collectives/numeric.h"
#include "reference/transform.h"
#include "tests/harness.h"

#define HH 8

static void row(uint16_t *x)
{
	for (int c = 0; c < HH; c++)
		x[c] = ep_f32_to_bf16(1.0f + 0.25f * (float)c);
}

/* W = 4, moe_tp = 2 (EP ranks {0,1} hold experts 0-1, {2,3} hold 2-3): a
 * rank's partial takes only the slots whose expert its EP rank holds, the
 * stand-in of its own world rank for the local expert, times the weight. */
EP_TEST(allgather_partial_takes_the_held_slots)
{
	struct ep_allgather_experts a = {.payload = EP_PAYLOAD_WIDE, .world = 4, .moe_tp = 2, .L = 2, .K = 3, .H = HH};
	int64_t idx[3] = {1, 2, -1};
	float w[3] = {0.5f, 0.25f, 0.125f}, acc[HH];
	uint16_t x[HH], y[HH], out[HH], t[HH];
	row(x);
	for (int q = 0; q < 4; q++) {
		EP_ASSERT_INT_EQ(ep_allgather_partial(&a, q, idx, w, x, out, acc, y), 1);
		int local = q < 2 ? 1 : 0;      /* expert 1 on EP rank 0, expert 2 on EP rank 1 */
		float scale = q < 2 ? 0.5f : 0.25f;
		ep_expert_transform(a.payload, q, local, x, HH, t);
		for (int c = 0; c < HH; c++) /* a power-of-two weight scales exactly */
			EP_ASSERT_INT_EQ(out[c], ep_f32_to_bf16(ep_bf16_to_f32(t[c]) * scale));
	}
	int64_t none[3] = {0, 1, -1}; /* EP rank 1 (ranks 2 and 3) holds neither */
	EP_ASSERT_INT_EQ(ep_allgather_partial(&a, 3, none, w, x, out, acc, y), 0);
	for (int c = 0; c < HH; c++)
		EP_ASSERT_INT_EQ(out[c], 0x0000);
}

/* The owner's row is the sum over world ranks of their partials. */
EP_TEST(allgather_row_sums_every_rank)
{
	struct ep_allgather_experts a = {.payload = EP_PAYLOAD_NARROW, .world = 4, .moe_tp = 2, .L = 2, .K = 2, .H = HH};
	int64_t idx[2] = {0, 3};
	float w[2] = {1.0f, 1.0f}, acc[HH], sum[HH];
	uint16_t x[HH], y[HH], p[HH], out[HH];
	row(x);
	for (int c = 0; c < HH; c++)
		sum[c] = 0.0f;
	for (int q = 0; q < 4; q++) {
		ep_allgather_partial(&a, q, idx, w, x, p, acc, y);
		for (int c = 0; c < HH; c++)
			sum[c] += ep_bf16_to_f32(p[c]);
	}
	EP_ASSERT_INT_EQ(ep_allgather_row(&a, idx, w, x, out), 0);
	for (int c = 0; c < HH; c++)
		EP_ASSERT_INT_EQ(out[c], ep_f32_to_bf16(sum[c]));
}

/* MoE-TP: member g's row is own partial + the peers' in rotation order, one rounding. */
EP_TEST(moe_tp_row_sums_the_shards_from_own)
{
	struct ep_moe_tp_expert m;
	uint16_t x[HH], y[HH], p[3][HH];
	row(x);
	ep_moe_tp_expert_init(&m, EP_PAYLOAD_WIDE, 3, 1); /* member 1 of 3: order 1, 2, 0 */
	for (int i = 0; i < 3; i++)
		ep_expert_transform(m.payload, 2 * 3 + i, 0, x, HH, p[i]); /* EP rank 2's shards: world 6, 7, 8 */
	m.fn.row(m.fn.ctx, 2, 0, x, HH, y);
	for (int c = 0; c < HH; c++) {
		float acc = ep_bf16_to_f32(p[1][c]) + ep_bf16_to_f32(p[2][c]);
		acc += ep_bf16_to_f32(p[0][c]);
		EP_ASSERT_INT_EQ(y[c], ep_f32_to_bf16(acc));
	}
	EP_ASSERT(m.fn.weight(m.fn.ctx, 2, 0, 0.5f) == ep_expert_weight(7, 0, 0.5f)); /* member 1's world rank */
}

EP_TEST_MAIN()
