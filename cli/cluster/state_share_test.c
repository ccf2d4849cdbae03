/* state_share_test.c - a node's share of the state block, packed on one side and merged at node 0. */
#include "cli/cluster/state_share.h"
#include "tests/harness.h"

#include <stdatomic.h>

/* Node 1 of 2 nodes x 2 ranks: its control blocks (ranks 2 and 3 as local 0 and 1). */
static struct ep_sync *node_sync(void)
{
	size_t bytes = (ep_sync_bytes(2) + 127) / 128 * 128;
	struct ep_sync *s = aligned_alloc(128, bytes);
	EP_ASSERT(s != NULL);
	memset(s, 0, bytes);
	ep_sync_init(s, 2);
	atomic_store(&s->ctl[0].phase, "dispatch.forward");
	atomic_store(&s->ctl[1].phase, "fault.hang");
	atomic_store(&s->ctl[0].waiting_on, 1); /* rank 2 waits for rank 3 */
	return s;
}

EP_TEST(a_share_merges_into_node_0s_view)
{
	struct ep_traffic *mine = ep_traffic_init(calloc(1, ep_traffic_bytes(4)), 4);   /* node 1's area */
	struct ep_traffic *node0 = ep_traffic_init(calloc(1, ep_traffic_bytes(4)), 4);  /* node 0's area */
	for (int r = 0; r < 4; r++)
		ep_traffic_begin(r < 2 ? node0 : mine, r, "dispatch");
	ep_traffic_expect(mine, 1, 2, 0, 5, 64, EP_HOP_NET); /* rank 2 puts 5 records to rank 0 */
	ep_traffic_sent(mine, 1, 2, 0, 5);
	ep_traffic_arrived(mine, 1, 0, 2, 7);                /* rank 2 counted 7 from rank 0 */
	ep_traffic_arrived(mine, 1, 2, 0, 99);               /* not its word to give: rank 0 counts those */
	ep_traffic_expect(node0, 1, 0, 2, 7, 64, EP_HOP_NET);
	ep_traffic_arrived(node0, 1, 2, 0, 4);
	ep_traffic_set_path(mine, 2, "tcp 10.0.0.2:4000");
	struct ep_sync *s = node_sync();
	struct ep_state_scene sc = {s, NULL, 2, 2, mine, NULL, 0};
	size_t len = 0;
	void *share = ep_state_share_pack(&sc, &len);
	EP_ASSERT(share != NULL);
	EP_ASSERT(ep_state_share_valid(share, len, 4));
	EP_ASSERT(!ep_state_share_valid(share, len, 8));
	EP_ASSERT(!ep_state_share_valid(share, len - 1, 4));

	struct ep_traffic *merged = ep_state_share_copy(node0);
	struct ep_rank_brief b[4] = {{1, -1, 'S'}, {1, -1, 'S'}, {0, -1, '?'}, {0, -1, '?'}};
	char *text = NULL;
	size_t tlen = 0;
	FILE *f = open_memstream(&text, &tlen);
	ep_state_share_merge(share, merged, b, f);
	fclose(f);
	EP_ASSERT(b[2].known && b[3].known);
	EP_ASSERT_INT_EQ(b[2].waiting_on, 3);
	EP_ASSERT(strstr(text, "fault.hang") != NULL && strstr(text, "rank 3") != NULL);
	struct ep_traffic_pair p;
	ep_traffic_pair(merged, 1, 2, 0, &p);
	EP_ASSERT(p.known && p.expected == 5 && p.sent == 5 && p.arrived == 4); /* arrivals: node 0's own count */
	ep_traffic_pair(merged, 1, 0, 2, &p);
	EP_ASSERT(p.known && p.expected == 7 && p.arrived == 7);               /* arrivals: node 1's count */
	EP_ASSERT_STR_EQ(merged->ranks[2].path, "tcp 10.0.0.2:4000");
	EP_ASSERT_UINT_EQ(ep_traffic_current(merged, 0, 4), 1);
	free(text);
	free(share);
	free(merged);
	free(mine);
	free(node0);
	free(s);
}

EP_TEST_MAIN()
