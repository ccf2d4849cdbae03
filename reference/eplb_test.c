/* eplb_test.c - the EPLB placement against deepseek-ai/EPLB's README example. */
#include "reference/eplb.h"

#include <errno.h>

#include "tests/harness.h"

/* EPLB README: 2 layers of 12 logical experts, 16 replicas, 4 groups, 2
 * nodes, 8 GPUs; its printed phy2log (parallel-semantics.md section 6). */
static const float readme_load[2][12] = {
	{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
	{20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27},
};
static const int readme_phy2log[2][16] = {
	{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
	{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1},
};

static void check_consistent(const struct ep_eplb_map *m)
{
	int seen[64] = {0};
	for (int p = 0; p < m->physical; p++) {
		int e = m->phy2log[p];
		EP_ASSERT(e >= 0 && e < m->logical);
		EP_ASSERT_INT_EQ(m->log2phy[e * m->maxcnt + m->phyrank[p]], p);
		seen[e]++;
	}
	for (int e = 0; e < m->logical; e++) {
		EP_ASSERT_INT_EQ(seen[e], m->logcnt[e]);
		for (int k = m->logcnt[e]; k < m->maxcnt; k++)
			EP_ASSERT_INT_EQ(m->log2phy[e * m->maxcnt + k], -1);
	}
}

EP_TEST(readme_example_hierarchical)
{
	for (int layer = 0; layer < 2; layer++) {
		struct ep_eplb_map m;
		EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[layer], 12, 16, 4, 2, 8, &m), 0);
		for (int p = 0; p < 16; p++)
			if (m.phy2log[p] != readme_phy2log[layer][p])
				EP_FAIL("layer %d: phy2log[%d] = %d, want %d", layer, p, m.phy2log[p],
					readme_phy2log[layer][p]);
		check_consistent(&m);
		ep_eplb_map_free(&m);
	}
}

/* Layer 0's replica counts: 10, 4 and 5 (the heaviest per node) get two. */
EP_TEST(readme_example_counts)
{
	static const int want[12] = {1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1};
	struct ep_eplb_map m;
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[0], 12, 16, 4, 2, 8, &m), 0);
	for (int e = 0; e < 12; e++)
		EP_ASSERT_INT_EQ(m.logcnt[e], want[e]);
	EP_ASSERT_INT_EQ(m.maxcnt, 2);
	ep_eplb_map_free(&m);
}

/* Groups not a multiple of nodes: the global policy (one group, one node). */
EP_TEST(global_policy_when_groups_do_not_split)
{
	struct ep_eplb_map a, b;
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[1], 12, 16, 3, 2, 8, &a), 0);
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[1], 12, 16, 1, 1, 8, &b), 0);
	for (int p = 0; p < 16; p++)
		EP_ASSERT_INT_EQ(a.phy2log[p], b.phy2log[p]);
	check_consistent(&a);
	ep_eplb_map_free(&a);
	ep_eplb_map_free(&b);
}

/* Ties: equal loads replicate the lowest ids first and pack in index order. */
EP_TEST(ties_take_the_lowest_index)
{
	float w[4] = {1, 1, 1, 1};
	struct ep_eplb_map m;
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(w, 4, 6, 1, 1, 2, &m), 0);
	EP_ASSERT_INT_EQ(m.logcnt[0], 2);
	EP_ASSERT_INT_EQ(m.logcnt[1], 2);
	EP_ASSERT_INT_EQ(m.logcnt[2], 1);
	check_consistent(&m);
	ep_eplb_map_free(&m);
	int pack[4], rank[4];
	EP_ASSERT_INT_EQ(ep_eplb_pack(w, 4, 2, pack, rank), 0);
	EP_ASSERT_INT_EQ(pack[0], 0);
	EP_ASSERT_INT_EQ(pack[1], 1);
	EP_ASSERT_INT_EQ(pack[2], 0);
	EP_ASSERT_INT_EQ(rank[2], 1);
}

EP_TEST(bad_shapes_are_refused)
{
	struct ep_eplb_map m;
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[0], 12, 18, 4, 2, 8, &m), -EINVAL); /* P % gpus */
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[0], 12, 16, 5, 1, 8, &m), -EINVAL); /* E % groups */
	EP_ASSERT_INT_EQ(ep_eplb_rebalance(readme_load[0], 12, 8, 4, 2, 8, &m), -EINVAL);  /* P < E */
	EP_ASSERT(m.phy2log == NULL);
	ep_eplb_map_free(&m);
}

EP_TEST_MAIN()
