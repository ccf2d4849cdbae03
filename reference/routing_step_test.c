/* routing_step_test.c - rotating and trace routing: the steps iterations use and the rows they give. */
#include "reference/routing_step.h"

#include "collectives/error.h"
#include "reference/trace.h"
#include "tests/harness.h"

static struct ep_shape shape(int R, int T, int K, int E)
{
	return (struct ep_shape){.num_ranks = R, .num_tokens = T, .hidden = 256, .num_topk = K,
				 .num_experts = E, .with_topk = 1};
}

/* rotating: step 0 is zipf:S, step k moves every id by k E / R, masks stay. */
EP_TEST(rotating_step_k_is_zipf_moved_by_k_ranks)
{
	struct ep_shape s = shape(4, 200, 4, 32);
	struct ep_routing z = {.kind = EP_ROUTE_ZIPF, .zipf_s = 1.2, .masked_ratio = 0.2};
	struct ep_routing rot = z;
	int64_t a[800], b[800];
	float wa[800], wb[800];
	rot.kind = EP_ROUTE_ROTATING;
	rot.rotate_period = 3;
	EP_ASSERT_INT_EQ(ep_rotating_unit(&s, &rot), 8);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &z, 9, 2, a, wa), 0);
	for (long k = 0; k < 4; k++) {
		rot.step = k;
		EP_ASSERT_INT_EQ(ep_gen_routing(&s, &rot, 9, 2, b, wb), 0);
		EP_ASSERT(memcmp(wa, wb, sizeof(wa)) == 0);
		for (int i = 0; i < 800; i++)
			EP_ASSERT_INT_EQ((int)b[i], a[i] < 0 ? -1 : (int)((a[i] + 8 * k) % 32));
	}
	/* iterations 0..2 step 0, 3..5 step 1, ..., 12 wraps to step 0 */
	EP_ASSERT_INT_EQ((int)ep_routing_step(&s, &rot, 2), 0);
	EP_ASSERT_INT_EQ((int)ep_routing_step(&s, &rot, 3), 1);
	EP_ASSERT_INT_EQ((int)ep_routing_step(&s, &rot, 11), 3);
	EP_ASSERT_INT_EQ((int)ep_routing_step(&s, &rot, 12), 0);
	EP_ASSERT_INT_EQ((int)ep_routing_cycle(&s, &rot), 12);
	EP_ASSERT_INT_EQ((int)ep_routing_distinct_steps(&s, &rot, 7), 3);
	EP_ASSERT_INT_EQ((int)ep_routing_distinct_steps(&s, &rot, 100), 4);
	EP_ASSERT(ep_routing_varies(&rot) && !ep_routing_varies(&z));
	EP_ASSERT_INT_EQ((int)ep_routing_distinct_steps(&s, &z, 100), 1);
}

/* Under group limits the move is a whole number of groups: the limit holds at every step. */
EP_TEST(rotating_keeps_group_limits)
{
	struct ep_shape s = shape(8, 300, 4, 64); /* 8 experts per rank */
	struct ep_routing r = {.kind = EP_ROUTE_ROTATING, .rotate_period = 1, .zipf_s = 1.0, .num_groups = 4,
			       .num_topk_groups = 2}; /* 16 experts per group */
	int64_t a[1200];
	float w[1200];
	EP_ASSERT_INT_EQ(ep_rotating_unit(&s, &r), 16);
	for (long k = 0; k < 4; k++) {
		r.step = k;
		EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 1, 5, a, w), 0);
		for (int t = 0; t < 300; t++) {
			int used[4] = {0}, n = 0;
			for (int j = 0; j < 4; j++)
				n += !used[a[t * 4 + j] / 16]++;
			EP_ASSERT(n <= 2);
		}
	}
}

/* trace: rank r's tokens are [r T, r T + T) of the step, its weights when it has them. */
EP_TEST(trace_rows_split_over_ranks)
{
	int32_t ids[2 * 8 * 2];
	float tw[2 * 8 * 2];
	for (int i = 0; i < 32; i++)
		ids[i] = (i / 2) % 8 == 5 && i % 2 ? -1 : (i / 2 + i % 2 * 3) % 8, tw[i] = (float)i;
	struct ep_trace t = {.num_experts = 8, .num_topk = 2, .num_steps = 2, .tokens_per_step = 8, .ids = ids,
			     .weights = tw};
	struct ep_shape s = shape(2, 3, 2, 8);
	struct ep_routing r = {.kind = EP_ROUTE_TRACE, .trace = &t, .trace_first = 1};
	int64_t a[6];
	float w[6];
	EP_ASSERT_INT_EQ((int)ep_routing_step(&s, &r, 0), 1);
	EP_ASSERT_INT_EQ((int)ep_routing_step(&s, &r, 1), 0);
	EP_ASSERT_INT_EQ((int)ep_routing_distinct_steps(&s, &r, 5), 2);
	r.step = 1;
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 0, 1, a, w), 0); /* step 1, tokens 3..5 */
	for (int i = 0; i < 6; i++) {
		EP_ASSERT_INT_EQ((int)a[i], ids[16 + 6 + i]);
		EP_ASSERT_FLOAT_BITS_EQ(w[i], tw[16 + 6 + i]);
	}
	t.weights = NULL; /* weights from the seed, the ids the same */
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 0, 1, a, w), 0);
	for (int i = 0; i < 6; i++)
		EP_ASSERT(a[i] == ids[22 + i] && w[i] > 0 && w[i] < 1);
}

EP_TEST_MAIN()
