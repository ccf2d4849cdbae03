/* layout_test.c - get_dispatch_layout against hand-worked routings. */
#include "collectives/layout.h"
#include "tests/harness.h"

/* 3 tokens, top-2, 8 experts on 4 ranks (2 local experts each), 2 ranks per node. */
EP_TEST(counts_once_per_rank_and_node)
{
	const int64_t idx[] = {
		0, 1,  /* t0: both experts on rank 0 */
		1, 7,  /* t1: rank 0 and rank 3 */
		-1, 6, /* t2: masked slot, then rank 3 */
	};
	int32_t per_rank[4], per_expert[8], per_node[2];
	uint8_t in_rank[12];
	struct ep_layout out = {per_rank, per_node, per_expert, in_rank};
	ep_get_dispatch_layout(idx, 3, 2, 8, 4, 2, &out);
	const int32_t want_rank[4] = {2, 0, 0, 2};
	const int32_t want_expert[8] = {1, 2, 0, 0, 0, 0, 1, 1};
	const uint8_t want_in[12] = {1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1};
	for (int r = 0; r < 4; r++)
		EP_ASSERT_INT_EQ(per_rank[r], want_rank[r]);
	for (int e = 0; e < 8; e++)
		EP_ASSERT_INT_EQ(per_expert[e], want_expert[e]);
	for (int i = 0; i < 12; i++)
		EP_ASSERT_INT_EQ(in_rank[i], want_in[i]);
	EP_ASSERT_INT_EQ(per_node[0], 2); /* t0, t1 */
	EP_ASSERT_INT_EQ(per_node[1], 2); /* t1, t2 */
}

EP_TEST(duplicate_expert_counts_twice_per_expert_once_per_rank)
{
	const int64_t idx[] = {3, 3};
	int32_t per_rank[2], per_expert[4];
	uint8_t in_rank[2];
	struct ep_layout out = {per_rank, NULL, per_expert, in_rank};
	ep_get_dispatch_layout(idx, 1, 2, 4, 2, 0, &out);
	EP_ASSERT_INT_EQ(per_expert[3], 2);
	EP_ASSERT_INT_EQ(per_rank[1], 1);
	EP_ASSERT_INT_EQ(per_rank[0], 0);
}

EP_TEST(out_of_range_and_all_masked_match_nothing)
{
	const int64_t idx[] = {-1, -1, 8, -5};
	int32_t per_rank[2] = {9, 9}, per_expert[8];
	uint8_t in_rank[4] = {9, 9, 9, 9};
	struct ep_layout out = {per_rank, NULL, per_expert, in_rank};
	ep_get_dispatch_layout(idx, 2, 2, 8, 2, 0, &out);
	for (int r = 0; r < 2; r++)
		EP_ASSERT_INT_EQ(per_rank[r], 0);
	for (int e = 0; e < 8; e++)
		EP_ASSERT_INT_EQ(per_expert[e], 0);
	for (int i = 0; i < 4; i++)
		EP_ASSERT_INT_EQ(in_rank[i], 0);
}

EP_TEST(zero_tokens)
{
	int32_t per_rank[2] = {7, 7}, per_expert[4] = {7, 7, 7, 7};
	struct ep_layout out = {per_rank, NULL, per_expert, NULL};
	ep_get_dispatch_layout(NULL, 0, 2, 4, 2, 0, &out);
	EP_ASSERT_INT_EQ(per_rank[0] + per_rank[1], 0);
	EP_ASSERT_INT_EQ(per_expert[0] + per_expert[3], 0);
}

EP_TEST_MAIN()
