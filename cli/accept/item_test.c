/* item_test.c - what node 0 compares between nodes' preflights, and how an item's verdict only goes down. */
#include "cli/accept/item.h"
#include "collectives/error.h"
#include "tests/harness.h"

EP_TEST(compared_items_are_rates_mtus_versions)
{
	EP_ASSERT(ep_pf_compared("port rxe0/1 rate"));
	EP_ASSERT(ep_pf_compared("port mlx5_0/1 mtu"));
	EP_ASSERT(ep_pf_compared("interface eth0"));
	EP_ASSERT(ep_pf_compared("kernel"));
	EP_ASSERT(ep_pf_compared("rdma-core"));
	EP_ASSERT(ep_pf_compared("ports at one rate"));
	/* addresses differ by design (a Soft-RoCE run once called every node but 0 DEGRADED for its GID) */
	EP_ASSERT(!ep_pf_compared("port rxe0/1 RoCE v2 GID"));
	EP_ASSERT(!ep_pf_compared("port rxe0/1 state"));
	EP_ASSERT(!ep_pf_compared("locked memory"));
}

EP_TEST(an_item_only_goes_down)
{
	json_t *it = ep_item_new("pair", "pair 0-1");
	ep_item_lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "slow %d", 1);
	ep_item_lower(it, EP_AV_PASS, EP_EXIT_OK, "fine");
	EP_ASSERT_INT_EQ(ep_item_level(it), EP_AV_DEGRADED);
	EP_ASSERT_STR_EQ(ep_item_str(it, "why"), "slow 1");
	ep_item_lower(it, EP_AV_FAIL, EP_EXIT_WRONG, "wrong");
	EP_ASSERT_INT_EQ(ep_item_level(it), EP_AV_FAIL);
	EP_ASSERT_INT_EQ((int)json_integer_value(json_object_get(it, "exit")), EP_EXIT_WRONG);
	ep_item_fig(it, "x", -1);
	EP_ASSERT(ep_item_get(it, "x") == 0); /* only positive figures are kept */
	json_decref(it);
}

EP_TEST_MAIN()
