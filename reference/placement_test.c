/* placement_test.c - logical to physical experts: the maps, the replica
 * policies, round_robin ids, the routing hook and the moved replica. */
#include "reference/placement.h"

#include <stdlib.h>
#include <string.h>

#include "reference/inputs.h"
#include "tests/harness.h"

static struct ep_placement *initial(int E, int N, int R, int placement, int policy, int rpn)
{
	struct ep_eplb_spec sp = {.redundant = N, .placement = placement, .policy = policy};
	return ep_placement_new(&sp, E, R, rpn ? R / rpn : 0, rpn, 0, 0);
}

/* vLLM's initial map: phy2log[p] = p, then (p - E) % E. */
EP_TEST(initial_map_and_modpos)
{
	struct ep_placement *pl = initial(2, 2, 2, EP_PLACE_LINEAR, EP_REPLICA_MODPOS, 0);
	EP_ASSERT(pl);
	static const int p2l[4] = {0, 1, 0, 1};
	for (int p = 0; p < 4; p++)
		EP_ASSERT_INT_EQ(pl->phy2log[p], p2l[p]);
	EP_ASSERT_INT_EQ(pl->maxcnt, 2);
	EP_ASSERT_INT_EQ(pl->log2phy[0 * 2 + 1], 2);
	EP_ASSERT_INT_EQ(pl->log2phy[1 * 2 + 1], 3);
	int64_t ids[6] = {0, 1, 0, 1, -1, 0}; /* T = 3, K = 2 */
	ep_placement_map(pl, 7, 1, ids, 3, 2);
	static const int64_t want[6] = {0, 3, 0, 3, -1, 2}; /* slot f picks log2phy[e][f % 2] */
	for (int i = 0; i < 6; i++)
		EP_ASSERT_INT_EQ((int)ids[i], (int)want[i]);
	ep_placement_free(pl);
}

/* round_robin: EPLB's physical p on rank p % R, local p / R. */
EP_TEST(round_robin_engine_ids)
{
	struct ep_placement *pl = initial(2, 2, 2, EP_PLACE_ROUND_ROBIN, EP_REPLICA_MODPOS, 0);
	static const int p2l[4] = {0, 0, 1, 1}; /* p 0,1,2,3 -> ids 0,2,1,3 */
	for (int p = 0; p < 4; p++)
		EP_ASSERT_INT_EQ(pl->phy2log[p], p2l[p]);
	EP_ASSERT_INT_EQ(pl->log2phy[0], 0);
	EP_ASSERT_INT_EQ(pl->log2phy[1], 1);
	ep_placement_free(pl);
}

/* static: a replica on the rank, else on the node, else C[rank % |C|]. */
EP_TEST(static_prefers_rank_then_node)
{
	/* E = 4, P = 8, R = 4 (2 per rank), 2 ranks per node: ids 4..7 replicate 0..3,
	 * so expert 0 lives on rank 0 (id 0) and rank 2 (id 4) */
	struct ep_placement *pl = initial(4, 4, 4, EP_PLACE_LINEAR, EP_REPLICA_STATIC, 2);
	for (int rank = 0; rank < 4; rank++) {
		int64_t id = 0;
		ep_placement_map(pl, 0, rank, &id, 1, 1);
		EP_ASSERT_INT_EQ((int)id, rank < 2 ? 0 : 4); /* rank 1: same node as id 0; rank 3: as id 4 */
	}
	ep_placement_free(pl);
	pl = initial(4, 4, 4, EP_PLACE_LINEAR, EP_REPLICA_STATIC, 0); /* one node: rank 1 has no copy, picks C[1 % 2] */
	int64_t id = 0;
	ep_placement_map(pl, 0, 1, &id, 1, 1);
	EP_ASSERT_INT_EQ((int)id, 4);
	ep_placement_free(pl);
}

/* dynamic: a replica of the same expert, from a hash of (seed, rank, t, j). */
EP_TEST(dynamic_stays_within_replicas)
{
	struct ep_placement *pl = initial(4, 4, 4, EP_PLACE_LINEAR, EP_REPLICA_DYNAMIC, 0);
	int64_t ids[400], again[400];
	int hits[8] = {0};
	for (int i = 0; i < 400; i++)
		ids[i] = i % 4;
	memcpy(again, ids, sizeof(ids));
	ep_placement_map(pl, 3, 2, ids, 100, 4);
	ep_placement_map(pl, 3, 2, again, 100, 4);
	for (int i = 0; i < 400; i++) {
		EP_ASSERT_INT_EQ(pl->phy2log[ids[i]], i % 4);
		EP_ASSERT_INT_EQ((int)ids[i], (int)again[i]);
		hits[ids[i]]++;
	}
	for (int p = 0; p < 8; p++)
		EP_ASSERT(hits[p] > 20); /* both replicas used */
	ep_placement_free(pl);
}

/* The routing hook: the kind draws logical ids (the same draws as without
 * a placement), returned as physical ids of those experts. */
EP_TEST(routing_maps_logical_draws)
{
	struct ep_eplb_spec sp = {.redundant = 16, .load_given = 1, .load = {.kind = EP_LOAD_ZIPF, .param = 1.2}};
	struct ep_placement *pl = ep_placement_new(&sp, 64, 4, 0, 0, 0, 5);
	EP_ASSERT(pl);
	struct ep_shape s = {.num_ranks = 4, .num_tokens = 64, .hidden = 128, .num_topk = 8, .num_experts = 64};
	struct ep_routing r = {.kind = EP_ROUTE_ZIPF, .zipf_s = 1.2, .masked_ratio = 0.1};
	int64_t logical[512], physical[512];
	float w[512], w2[512];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 5, 2, logical, w), 0);
	r.placement = pl;
	s.num_experts = 80;
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 5, 2, physical, w2), 0);
	for (int i = 0; i < 512; i++) {
		EP_ASSERT(w[i] == w2[i]);
		if (logical[i] < 0)
			EP_ASSERT_INT_EQ((int)physical[i], -1);
		else
			EP_ASSERT_INT_EQ(pl->phy2log[physical[i]], (int)logical[i]);
	}
	ep_placement_free(pl);
}

/* lognormal:S loads are the popularities --routing lognormal:S draws from:
 * the heaviest load is the most drawn expert. */
EP_TEST(lognormal_loads_follow_the_routing)
{
	struct ep_eplb_load l = {.kind = EP_LOAD_LOGNORMAL, .param = 2.0};
	struct ep_shape s = {.num_ranks = 1, .num_tokens = 4096, .hidden = 128, .num_topk = 1, .num_experts = 16};
	struct ep_routing r = {.kind = EP_ROUTE_LOGNORMAL, .lognormal_sigma = 2.0};
	float load[16];
	int64_t *ids = malloc(sizeof(int64_t) * 4096);
	float *w = malloc(sizeof(float) * 4096);
	int count[16] = {0}, top = 0, most = 0;
	EP_ASSERT_INT_EQ(ep_eplb_load_values(&l, 16, 11, load), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 11, 0, ids, w), 0);
	for (int i = 0; i < 4096; i++)
		count[ids[i]]++;
	for (int e = 1; e < 16; e++) {
		top = load[e] > load[top] ? e : top;
		most = count[e] > count[most] ? e : most;
	}
	EP_ASSERT_INT_EQ(top, most);
	EP_ASSERT(load[top] == 1.0f); /* scaled by the largest */
	free(ids);
	free(w);
}

/* --fault replica: ids 0 and rank 1's first of another expert exchanged. */
EP_TEST(moved_replica_swaps_two_ids)
{
	struct ep_placement *pl = initial(4, 4, 4, EP_PLACE_LINEAR, EP_REPLICA_MODPOS, 0);
	int64_t ids[5] = {0, 2, 1, -1, 3};
	ep_placement_move_replica(pl, ids, 5);
	static const int64_t want[5] = {2, 0, 1, -1, 3}; /* rank 1's first id is 2 (expert 2) */
	for (int i = 0; i < 5; i++)
		EP_ASSERT_INT_EQ((int)ids[i], (int)want[i]);
	ep_placement_free(pl);
}

EP_TEST(checks_quote_the_value)
{
	char err[256];
	struct ep_eplb_spec sp = {.redundant = 3};
	EP_ASSERT(ep_placement_check(&sp, 16, 4, 0, 0, err, sizeof(err)) < 0);
	EP_ASSERT(strstr(err, "--redundant-experts 3 gives 19 physical experts"));
	sp = (struct ep_eplb_spec){.redundant = 4, .load_given = 1, .load = {.kind = EP_LOAD_FILE, .path = "l.txt", .file_n = 3}};
	EP_ASSERT(ep_placement_check(&sp, 16, 4, 0, 0, err, sizeof(err)) < 0);
	EP_ASSERT(strstr(err, "has 3 loads, want 16"));
	EP_ASSERT(ep_placement_new(&sp, 16, 4, 0, 0, 0, 0) == NULL);
	char e2[256];
	float *loads;
	EP_ASSERT(ep_eplb_load_file("/nonexistent/l", 4, &loads, e2, sizeof(e2)) < 0);
	EP_ASSERT(strstr(e2, "/nonexistent/l"));
}

EP_TEST_MAIN()
