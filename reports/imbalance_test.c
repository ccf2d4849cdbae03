/* imbalance_test.c - load figures of hand-made routings. */
#include "reports/imbalance.h"

#include "tests/harness.h"

/* 2 ranks of 2 experts; rank 0 sends 3 tokens, rank 1 two (one masked). */
static const int64_t src0[] = {0, 1, /* both on rank 0: one row */
			       1, 2, /* ranks 0 and 1 */
			       3, -1};
static const int64_t src1[] = {2, 3, /* rank 1 */
			       -1, -1};

EP_TEST(rows_per_token_and_rank)
{
	struct ep_imbalance *im = ep_imbalance_new(2, 4, 0, 0);
	EP_ASSERT(im);
	ep_imbalance_add(im, 0, src0, 3, 2);
	ep_imbalance_add(im, 1, src1, 2, 2);
	ep_imbalance_finish(im);
	EP_ASSERT_UINT_EQ(im->matrix[0], 2); /* 0 -> 0 */
	EP_ASSERT_UINT_EQ(im->matrix[1], 2); /* 0 -> 1 */
	EP_ASSERT_UINT_EQ(im->matrix[2], 0); /* 1 -> 0 */
	EP_ASSERT_UINT_EQ(im->matrix[3], 1); /* 1 -> 1 */
	EP_ASSERT_UINT_EQ(im->rank_rows[0], 2);
	EP_ASSERT_UINT_EQ(im->rank_rows[1], 3);
	EP_ASSERT_NEAR(im->rank.mean, 2.5, 1e-12);
	EP_ASSERT_NEAR(im->rank.max_over_mean, 1.2, 1e-12);
	EP_ASSERT_NEAR(im->rank.balancedness, 2.5 / 3, 1e-12);
	EP_ASSERT_INT_EQ(im->rank.hottest, 1);
	EP_ASSERT_UINT_EQ(im->expert_tokens[0], 1);
	EP_ASSERT_UINT_EQ(im->expert_tokens[1], 2);
	EP_ASSERT_UINT_EQ(im->expert_tokens[2], 2);
	EP_ASSERT_UINT_EQ(im->expert_tokens[3], 2);
	EP_ASSERT_INT_EQ(im->expert.hottest, 1); /* the lowest of the ties */
	EP_ASSERT_NEAR(im->expert.max_over_mean, 2 / 1.75, 1e-12);
	EP_ASSERT_NEAR(im->expert.cv, sqrt(3.0 / 16) / 1.75, 1e-12);
	EP_ASSERT_INT_EQ(im->nodes, 0);
	ep_imbalance_free(im);
}

EP_TEST(rows_per_token_and_expert_in_low_latency)
{
	struct ep_imbalance *im = ep_imbalance_new(2, 4, 0, 1);
	ep_imbalance_add(im, 0, src0, 3, 2);
	ep_imbalance_add(im, 1, src1, 2, 2);
	ep_imbalance_finish(im);
	EP_ASSERT_UINT_EQ(im->rank_rows[0], 3); /* 0, 1, 1 */
	EP_ASSERT_UINT_EQ(im->rank_rows[1], 4); /* 2, 3, 2, 3 */
	EP_ASSERT_NEAR(im->rank.min, 3, 0);
	ep_imbalance_free(im);
}

/* Every row on one rank of four: max/mean is the rank count, balancedness 1/R. */
EP_TEST(one_hot_rank_and_nodes)
{
	struct ep_imbalance *im = ep_imbalance_new(4, 8, 2, 0);
	int64_t ids[] = {2, 3, 3, 2, 2, -1};
	for (int s = 0; s < 4; s++)
		ep_imbalance_add(im, s, ids, 3, 2);
	ep_imbalance_finish(im);
	EP_ASSERT_UINT_EQ(im->rank_rows[1], 12);
	EP_ASSERT_NEAR(im->rank.max_over_mean, 4, 1e-12);
	EP_ASSERT_NEAR(im->rank.balancedness, 0.25, 1e-12);
	EP_ASSERT_NEAR(im->rank.min, 0, 0);
	EP_ASSERT_INT_EQ(im->rank.hottest, 1);
	EP_ASSERT_INT_EQ(im->nodes, 2);
	EP_ASSERT_UINT_EQ(im->node_rows[0], 12);
	EP_ASSERT_UINT_EQ(im->node_rows[1], 0);
	EP_ASSERT_NEAR(im->node.max_over_mean, 2, 1e-12);
	EP_ASSERT_INT_EQ(im->node.hottest, 0);
	ep_imbalance_free(im);
}

/* 2 nodes x 2 ranks, 8 experts (2 per rank, 4 per node): a record per
 * (token, remote node), or a message per remote (token, expert) in low-latency. */
EP_TEST(records_per_link_between_nodes)
{
	static const int64_t from0[] = {4, 5, 0, 6, 1, 2}; /* node 1 twice; node 0 and 1; node 0 only */
	static const int64_t from2[] = {0, 2, 7, -1};      /* node 0 twice; its own node */
	for (int per_expert = 0; per_expert <= 1; per_expert++) {
		struct ep_imbalance *im = ep_imbalance_new(4, 8, 2, per_expert);
		EP_ASSERT(im != NULL);
		ep_imbalance_add(im, 0, from0, 3, 2);
		ep_imbalance_add(im, 2, from2, 2, 2);
		ep_imbalance_finish(im);
		EP_ASSERT_UINT_EQ(im->link_rows[0], 0); /* a node to itself crosses no link */
		EP_ASSERT_UINT_EQ(im->link_rows[1], per_expert ? 3 : 2);
		EP_ASSERT_UINT_EQ(im->link_rows[2], per_expert ? 2 : 1);
		EP_ASSERT_UINT_EQ(im->link_rows[3], 0);
		EP_ASSERT_INT_EQ(im->link_src, 0);
		EP_ASSERT_INT_EQ(im->link_dst, 1);
		EP_ASSERT_NEAR(im->link.max_over_mean, per_expert ? 1.2 : 4.0 / 3, 1e-12);
		ep_imbalance_free(im);
	}
}

EP_TEST(hottest_link_skips_the_diagonal)
{
	/* 3 nodes of 1 rank, 3 experts: only node 2 -> node 1 carries anything */
	static const int64_t from2[] = {1, 1};
	struct ep_imbalance *im = ep_imbalance_new(3, 3, 1, 0);
	EP_ASSERT(im != NULL);
	ep_imbalance_add(im, 2, from2, 2, 1);
	ep_imbalance_finish(im);
	EP_ASSERT_INT_EQ(im->link_src, 2);
	EP_ASSERT_INT_EQ(im->link_dst, 1);
	EP_ASSERT_NEAR(im->link.max, 2.0, 0);
	ep_imbalance_free(im);
}

EP_TEST(nothing_received_is_balanced)
{
	struct ep_spread s;
	uint64_t zero[3] = {0, 0, 0};
	ep_spread_of(zero, 3, &s);
	EP_ASSERT_NEAR(s.max_over_mean, 1, 0);
	EP_ASSERT_NEAR(s.balancedness, 1, 0);
	EP_ASSERT_NEAR(s.cv, 0, 0);
	EP_ASSERT(!ep_imbalance_new(3, 8, 0, 0)); /* experts not a multiple of ranks */
}

EP_TEST_MAIN()
