/* internode_ref_test.c - the internode reference's sizes, counts and its two roundings. */
#include "reference/internode_ref.h"

#include <stdlib.h>

#include "collectives/error.h"
#include "tests/harness.h"

static struct ep_shape shape(int R, int T, int H, int K, int E, int bias)
{
	return (struct ep_shape){.num_ranks = R, .num_tokens = T, .hidden = H, .num_topk = K,
				 .num_experts = E, .expert_alignment = 1, .dtype = EP_DTYPE_BF16,
				 .with_topk = 1, .num_bias = bias};
}

EP_TEST(rdma_counts_dedup_per_node)
{
	struct ep_shape s = shape(8, 50, 128, 6, 32, 0);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM};
	struct ep_internode_ref ref;
	EP_ASSERT_INT_EQ(ep_internode_ref_init(&ref, &s, &r, 3, 5, 4), 0);
	/* brute force: token t of rank q reaches node n when any expert lives on n's ranks */
	for (int q = 0; q < 8; q++) {
		const int64_t *idx = ep_reference_topk_idx(&ref.base, q);
		int want[2] = {0, 0};
		for (int t = 0; t < 50; t++) {
			int hit[2] = {0, 0};
			for (int j = 0; j < 6; j++)
				hit[idx[t * 6 + j] / 16] = 1; /* 4 experts per rank x 4 ranks per node */
			want[0] += hit[0], want[1] += hit[1];
		}
		EP_ASSERT_INT_EQ(ref.rdma_counts[q * 2 + 0], want[0]);
		EP_ASSERT_INT_EQ(ref.rdma_counts[q * 2 + 1], want[1]);
		EP_ASSERT_INT_EQ(ep_internode_ref_rdma_tokens(&ref, q, 0), want[0] + want[1]);
		EP_ASSERT_INT_EQ(ep_internode_ref_rdma_tokens(&ref, q, 1), want[q / 4 ? 0 : 1]);
	}
	size_t cap, rdma, send;
	ep_internode_ref_sizes(&ref, &cap, &rdma, &send);
	EP_ASSERT(rdma <= 2 * 50 && send <= 2 * 50 && rdma > 0 && cap > 0);
	ep_internode_ref_fini(&ref);
}

/* The internode expectation must differ from a single rounding somewhere
 * (else the check could not tell them apart). */
EP_TEST(combine_rounds_twice)
{
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM};
	for (int nodes = 1; nodes <= 2; nodes++) {
		struct ep_shape s = shape(4, 200, 256, 8, 16, 2);
		struct ep_internode_ref ref;
		EP_ASSERT_INT_EQ(ep_internode_ref_init(&ref, &s, &r, 11, 1, 4 / nodes), 0);
		uint16_t *cx = malloc(sizeof(uint16_t) * 200 * 256);
		float *cw = malloc(sizeof(float) * 200 * 8);
		EP_ASSERT(cx && cw);
		EP_ASSERT_INT_EQ(ep_internode_ref_combined(&ref, cx, cw), 0);
		struct ep_check_report two, one;
		ep_report_init(&two, 4, NULL);
		ep_report_init(&one, 4, NULL);
		ep_internode_ref_check_combine(&ref, cx, cw, &two);
		ep_reference_check_combine(&ref.base, cx, cw, &one);
		EP_ASSERT_INT_EQ(two.wrong_elems, 0);
		if (nodes == 2)
			EP_ASSERT(one.wrong_elems > 0); /* double rounding shows */
		free(cx);
		free(cw);
		ep_internode_ref_fini(&ref);
	}
}

EP_TEST_MAIN()
