/* ascend_test.c - Ascend's collective on one rank: parameter rules, capacities, receive order, quantisation, unfused combine.
 *
 * One EP rank hosting routed experts {0, 1}, two tokens, top-2:
 * t0 -> {1, 0}, t1 -> {0, -1}; rows land as expert 0: (t0, slot 1), (t1,
 * slot 0), then expert 1: (t0, slot 0).
 */
#include "collectives/ascend.h"

#include <errno.h>
#include <sys/mman.h>

#include "collectives/numeric.h"
#include "tests/harness.h"

EP_TEST(params_and_capacity)
{
	struct ep_ascend_params p = {.num_ranks = 8, .max_tokens = 16, .hidden = 64, .num_topk = 4, .num_experts = 12,
				     .shared_experts = 2, .shared_ranks = 2};
	EP_ASSERT_INT_EQ(ep_ascend_local_experts(&p), 2);
	EP_ASSERT_UINT_EQ(ep_ascend_rank_capacity(&p, 5), 16 * 8 * 2); /* BS * R * min(L, K) */
	EP_ASSERT_UINT_EQ(ep_ascend_rank_capacity(&p, 1), 16 * 8);     /* rpse 1: every source */
	p.shared_experts = 1, p.num_ranks = 5, p.num_experts = 9;       /* rpse 2 over 5 sources: 3 of them */
	EP_ASSERT_UINT_EQ(ep_ascend_rank_capacity(&p, 0), 16 * 3);
	struct ep_ascend ctx;
	static char arena[1];
	struct ep_ascend_params bad = p;
	bad.num_experts = 10; /* not a multiple of the 3 MoE ranks */
	EP_ASSERT_INT_EQ(ep_ascend_init(&ctx, &bad, 0, arena, NULL), -EINVAL);
	bad = p, bad.shared_experts = 2; /* S_r = 3 is not a multiple of S_n = 2 */
	bad.shared_ranks = 3;
	EP_ASSERT_INT_EQ(ep_ascend_init(&ctx, &bad, 0, arena, NULL), -EINVAL);
	bad = p, bad.shared_ranks = 0; /* S_n without S_r */
	EP_ASSERT_INT_EQ(ep_ascend_init(&ctx, &bad, 0, arena, NULL), -EINVAL);
	bad = p, bad.comm_quant = 1, bad.hidden = 60;
	EP_ASSERT_INT_EQ(ep_ascend_init(&ctx, &bad, 0, arena, NULL), -EINVAL);
	bad = p, bad.ranks_per_node = 2; /* 5 ranks are not nodes of 2 */
	EP_ASSERT_INT_EQ(ep_ascend_init(&ctx, &bad, 0, arena, NULL), -EINVAL);
}

struct world {
	char *base;
	size_t bytes;
	struct ep_waiter w;
	struct ep_ascend ctx;
};

static void world_open(struct world *wd, const struct ep_ascend_params *p)
{
	wd->bytes = 4096 + ep_ascend_arena_bytes(p);
	wd->base = mmap(NULL, wd->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(wd->base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)wd->base, 1);
	ep_waiter_init(&wd->w, (struct ep_sync *)wd->base, 0, 1, -1);
	EP_ASSERT_INT_EQ(ep_ascend_init(&wd->ctx, p, 0, wd->base + 4096, &wd->w), 0);
}

static void world_close(struct world *wd)
{
	ep_ascend_fini(&wd->ctx);
	munmap(wd->base, wd->bytes);
}

static uint16_t bf(float f)
{
	return ep_f32_to_bf16(f);
}

EP_TEST(one_rank_order_counts_and_quant)
{
	struct ep_ascend_params p = {.num_ranks = 1, .max_tokens = 2, .hidden = 8, .num_topk = 2, .num_experts = 2,
				     .quant = 1, .counts_prefix = 0};
	struct world wd;
	world_open(&wd, &p);
	const int64_t ids[4] = {1, 0, 0, -1};
	uint16_t x[16] = {bf(1), bf(-2), bf(0.5f), bf(0.25f), bf(-1), 0, bf(1.5f), bf(0.75f)};
	for (int c = 0; c < 8; c++)
		x[8 + c] = bf(3.0f);
	float smooth[2 * 8];
	for (int i = 0; i < 16; i++)
		smooth[i] = i < 8 ? 1.0f : 2.0f; /* expert 1 doubles x: the same q, half the scale */
	struct ep_ascend_in in = {2, x, ids, smooth};
	struct ep_ascend_out o;
	EP_ASSERT_INT_EQ(ep_ascend_dispatch(&wd.ctx, &in, &o), 0);
	EP_ASSERT_UINT_EQ(o.num_recv, 3);
	const int32_t info[9] = {0, 0, 1, 0, 1, 0, 0, 0, 0};
	for (int i = 0; i < 9; i++)
		EP_ASSERT_INT_EQ(o.assist_info[i], info[i]);
	EP_ASSERT_INT_EQ(o.expert_token_nums[0], 2);
	EP_ASSERT_INT_EQ(o.expert_token_nums[1], 1);
	EP_ASSERT_INT_EQ(o.ep_recv_counts[0], 2);
	EP_ASSERT_INT_EQ(o.ep_recv_counts[1], 3);
	const int8_t q0[8] = {64, -127, 32, 16, -64, 0, 95, 48};
	const int8_t *q = o.expand_x;
	for (int c = 0; c < 8; c++) {
		EP_ASSERT_INT_EQ(q[c], q0[c]);     /* row 0: t0 for expert 0 */
		EP_ASSERT_INT_EQ(q[8 + c], 127);   /* row 1: t1, all 3 */
		EP_ASSERT_INT_EQ(q[16 + c], q0[c]); /* row 2: t0 for expert 1, smoothed x2 */
	}
	EP_ASSERT_FLOAT_BITS_EQ(o.dynamic_scales[0], 1.0f / 63.5f);
	EP_ASSERT_FLOAT_BITS_EQ(o.dynamic_scales[1], 1.0f / (127.0f / 3.0f));
	EP_ASSERT_FLOAT_BITS_EQ(o.dynamic_scales[2], 1.0f / (127.0f / 4.0f));
	const int64_t dup[4] = {1, 1, 0, -1};
	in.expert_ids = dup;
	EP_ASSERT_INT_EQ(ep_ascend_dispatch(&wd.ctx, &in, &o), -EINVAL);
	world_close(&wd);
}

/* Muls then Add, each rounded: y0*w + y1*w with y1 = -y0 and w = 1 + 2^-23
 * is exactly 0, where fmaf(y1, w, y0*w) would leave -2^-30. */
EP_TEST(combine_never_fuses)
{
	struct ep_ascend_params p = {.num_ranks = 1, .max_tokens = 1, .hidden = 8, .num_topk = 2, .num_experts = 2};
	struct world wd;
	world_open(&wd, &p);
	const int64_t ids[2] = {0, 1};
	uint16_t x[8] = {0}, y[2 * 8], out[8];
	struct ep_ascend_in in = {1, x, ids, NULL};
	struct ep_ascend_out o;
	EP_ASSERT_INT_EQ(ep_ascend_dispatch(&wd.ctx, &in, &o), 0);
	EP_ASSERT_UINT_EQ(o.num_recv, 2);
	for (int c = 0; c < 8; c++)
		y[c] = 0x3f81, y[8 + c] = 0xbf81; /* row 0 is slot 0 (expert 0), row 1 slot 1 */
	float w1 = ep_f32_from_bits(0x3f800001);
	const float wts[2] = {w1, w1};
	EP_ASSERT_INT_EQ(ep_ascend_combine(&wd.ctx, y, wts, NULL, out), 0);
	for (int c = 0; c < 8; c++)
		EP_ASSERT_UINT_EQ(out[c], 0x0000);
	uint16_t sx[8];
	for (int c = 0; c < 8; c++)
		sx[c] = bf(0.5f);
	EP_ASSERT_INT_EQ(ep_ascend_combine(&wd.ctx, y, wts, sx, out), 0); /* shared_expert_x added last */
	for (int c = 0; c < 8; c++)
		EP_ASSERT_UINT_EQ(out[c], bf(0.5f));
	world_close(&wd);
}

EP_TEST_MAIN()
