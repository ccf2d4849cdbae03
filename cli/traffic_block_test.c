/* traffic_block_test.c - pair status and culprit of the traffic matrix, on hand-set areas. */
#include "cli/traffic_block.h"
#include "tests/harness.h"

/* An area of R ranks and briefs (all known, waiting for no one, running). */
struct world {
	struct ep_traffic *t;
	struct ep_rank_brief b[16];
	struct ep_traffic_view v;
};

static void world_init(struct world *w, int R, int P)
{
	w->t = ep_traffic_init(calloc(1, ep_traffic_bytes(R)), R);
	EP_ASSERT(w->t != NULL);
	for (int r = 0; r < R; r++)
		w->b[r] = (struct ep_rank_brief){1, -1, 'S'};
	w->v = (struct ep_traffic_view){w->t, w->b, P, 0};
}

/* Every rank starts op 1 ("dispatch"). */
static uint32_t all_begin(struct world *w)
{
	uint32_t seq = 0;
	for (int r = 0; r < w->t->num_ranks; r++)
		seq = ep_traffic_begin(w->t, r, "dispatch");
	return seq;
}

static void pair(struct world *w, uint32_t seq, int s, int d, uint32_t exp, uint32_t got, enum ep_traffic_hop hop)
{
	ep_traffic_expect(w->t, seq, s, d, exp, 100, hop);
	ep_traffic_arrived(w->t, seq, s, d, got);
	if (hop == EP_HOP_NET) /* the sender put them all */
		ep_traffic_sent(w->t, seq, s, d, exp);
}

EP_TEST(a_rank_that_never_started)
{
	struct world w;
	world_init(&w, 3, 0);
	uint32_t seq = ep_traffic_begin(w.t, 0, "dispatch");
	ep_traffic_begin(w.t, 1, "dispatch"); /* rank 2 is still at op 0 */
	pair(&w, seq, 0, 1, 5, 0, EP_HOP_SHM);
	pair(&w, seq, 0, 2, 6, 0, EP_HOP_SHM);
	pair(&w, seq, 1, 0, 7, 0, EP_HOP_SHM);
	pair(&w, seq, 1, 2, 8, 0, EP_HOP_SHM);
	w.b[0].waiting_on = w.b[1].waiting_on = 2;
	struct ep_traffic_pair p;
	int holder;
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 0, 1, &p, &holder), EP_PAIR_HELD);
	EP_ASSERT_INT_EQ(holder, 2);
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 0, 2, &p, &holder), EP_PAIR_MISSING);
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 2, 0, &p, &holder), EP_PAIR_NOT_STARTED);
	char buf[400];
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 1);
	EP_ASSERT(strstr(buf, "rank 2 never arrived anywhere") != NULL);
	free(w.t);
}

/* A layer's EP group {1, 3} of 4 world ranks (moe_tp 2): the collective
 * writes in group ranks through a view, the matrix reads world ranks, and a
 * rank that never started is suspect only towards its own group. */
EP_TEST(a_group_view_writes_world_ranks)
{
	struct world w;
	world_init(&w, 4, 0);
	w.t->pair_stride = 2;
	static const int group1[2] = {1, 3};
	struct ep_traffic view;
	struct ep_traffic *g = ep_traffic_view(&view, w.t, group1);
	uint32_t seq = ep_traffic_begin(g, 0, "dispatch"); /* group rank 0 = world rank 1 */
	ep_traffic_begin(w.t, 0, "dispatch");
	ep_traffic_begin(w.t, 2, "dispatch");
	ep_traffic_expect(g, seq, 0, 1, 9, 100, EP_HOP_SHM);
	ep_traffic_arrived(g, seq, 0, 1, 2);
	ep_traffic_waits(g, 0, 1);
	EP_ASSERT_INT_EQ(ep_traffic_net_wait(w.t, 1), 3);
	struct ep_traffic_pair p;
	ep_traffic_pair(w.t, seq, 1, 3, &p);
	EP_ASSERT_INT_EQ(p.expected, 9);
	EP_ASSERT_INT_EQ(p.arrived, 2);
	ep_traffic_pair(w.t, seq, 0, 1, &p);
	EP_ASSERT_INT_EQ(p.known, 0);
	int holder;
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 3, 1, &p, &holder), EP_PAIR_NOT_STARTED);
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 3, 0, &p, &holder), EP_PAIR_UNUSED);
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 3, 2, &p, &holder), EP_PAIR_UNUSED);
	EP_ASSERT(ep_traffic_view(&view, NULL, group1) == NULL);
	free(w.t);
}

EP_TEST(stale_words_read_as_unknown)
{
	struct world w;
	world_init(&w, 2, 0);
	uint32_t first = all_begin(&w);
	pair(&w, first, 0, 1, 4, 4, EP_HOP_SHM);
	uint32_t seq = all_begin(&w);
	EP_ASSERT_INT_EQ(ep_traffic_current(w.t, 0, 2), seq);
	struct ep_traffic_pair p;
	ep_traffic_pair(w.t, seq, 0, 1, &p);
	EP_ASSERT(!p.known && p.arrived == 0);
	int holder;
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 0, 1, &p, &holder), EP_PAIR_UNUSED);
	free(w.t);
}

/* 2 nodes x 2 ranks: rail pairs 0<->2, 1<->3 over the network, the rest in shm. */
static uint32_t two_nodes(struct world *w)
{
	world_init(w, 4, 2);
	uint32_t seq = all_begin(w);
	pair(w, seq, 0, 1, 3, 3, EP_HOP_SHM);
	pair(w, seq, 1, 0, 3, 3, EP_HOP_SHM);
	pair(w, seq, 2, 3, 3, 3, EP_HOP_SHM);
	pair(w, seq, 3, 2, 3, 3, EP_HOP_SHM);
	pair(w, seq, 0, 2, 9, 9, EP_HOP_NET);
	pair(w, seq, 2, 0, 9, 9, EP_HOP_NET);
	pair(w, seq, 1, 3, 9, 9, EP_HOP_NET);
	pair(w, seq, 3, 1, 9, 9, EP_HOP_NET);
	return seq;
}

EP_TEST(one_network_pair_alone_is_a_link)
{
	struct world w;
	uint32_t seq = two_nodes(&w);
	ep_traffic_arrived(w.t, seq, 1, 3, 2);
	struct ep_traffic_pair p;
	int holder;
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 1, 3, &p, &holder), EP_PAIR_PENDING); /* rank 3 at work */
	w.b[3].waiting_on = 1; /* rank 3 waits for rows rank 1 has put */
	char buf[400];
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 2);
	EP_ASSERT(strstr(buf, "link rank 1 -> rank 3: only this pair's rows are missing (2 of 9 arrived") != NULL);
	free(w.t);
}

EP_TEST(every_pair_between_two_nodes_is_a_node_link)
{
	struct world w;
	uint32_t seq = two_nodes(&w);
	ep_traffic_arrived(w.t, seq, 0, 2, 0);
	ep_traffic_arrived(w.t, seq, 2, 0, 0);
	ep_traffic_arrived(w.t, seq, 1, 3, 0);
	ep_traffic_arrived(w.t, seq, 3, 1, 1);
	w.b[0].waiting_on = 2, w.b[2].waiting_on = 0, w.b[1].waiting_on = 3, w.b[3].waiting_on = 1;
	char buf[400];
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 2);
	EP_ASSERT(strstr(buf, "link node 0 <-> node 1: only pairs between these nodes are missing (4 pairs, 1 of 36") != NULL);
	free(w.t);
}

EP_TEST(a_node_that_did_not_answer)
{
	struct world w;
	uint32_t seq = two_nodes(&w);
	w.v.gathered = 1;
	w.b[2].known = w.b[3].known = 0;
	struct ep_traffic_pair p;
	int holder;
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 2, 0, &p, &holder), EP_PAIR_NOT_STARTED);
	char buf[400];
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 1);
	EP_ASSERT_STR_EQ(buf, "node 1 did not answer (ranks 2, 3): stopped, wedged or cut off; their pairs are unknown");
	w.v.gathered = 0; /* one node's own view: those pairs are out of sight */
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 2, 0, &p, &holder), EP_PAIR_UNUSED);
	free(w.t);
}

EP_TEST(a_stopped_rank_before_a_link)
{
	struct world w;
	uint32_t seq = two_nodes(&w);
	ep_traffic_sent(w.t, seq, 1, 3, 0); /* rank 1, stopped, put nothing to rank 3 */
	ep_traffic_arrived(w.t, seq, 1, 3, 0);
	ep_traffic_arrived(w.t, seq, 3, 1, 0);
	w.b[1].state = 'T';
	w.b[3].waiting_on = 1;
	char buf[400];
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 1);
	EP_ASSERT(strstr(buf, "rank 1 never arrived anywhere") != NULL);
	free(w.t);
}

/* Ranks 0, 2, 3 started op 1, rank 1 (node 0) had not: pairs 0 -> 2 and, with both_ways, 2 -> 0 lost everything. */
static uint32_t behind_rank_and_cut_rail(struct world *w, int both_ways)
{
	world_init(w, 4, 2);
	w->v.gathered = 1;
	uint32_t seq = ep_traffic_begin(w->t, 0, "dispatch");
	ep_traffic_begin(w->t, 2, "dispatch");
	ep_traffic_begin(w->t, 3, "dispatch");
	pair(w, seq, 0, 2, 28, 0, EP_HOP_NET);
	w->b[2].waiting_on = 0;
	if (both_ways) {
		pair(w, seq, 2, 0, 27, 0, EP_HOP_NET);
		w->b[0].waiting_on = 2;
	}
	return seq;
}

/* A cut between the nodes ends the point before a slow rank starts the op:
 * the rows missing both ways between ranks that did start name the link. */
EP_TEST(a_cut_link_beside_a_rank_still_behind)
{
	struct world w;
	uint32_t seq = behind_rank_and_cut_rail(&w, 1);
	struct ep_traffic_pair p;
	int holder;
	EP_ASSERT_INT_EQ(ep_traffic_classify(&w.v, seq, 1, 0, &p, &holder), EP_PAIR_NOT_STARTED);
	char buf[400];
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 2);
	EP_ASSERT(strstr(buf, "link node 0 <-> node 1: only pairs between these nodes are missing") != NULL);
	free(w.t);
	/* one way only: the rank that never started is still the culprit */
	seq = behind_rank_and_cut_rail(&w, 0);
	EP_ASSERT_INT_EQ(ep_traffic_culprit(&w.v, seq, buf, sizeof(buf)), 1);
	EP_ASSERT(strstr(buf, "rank 1 never arrived anywhere") != NULL);
	free(w.t);
}

EP_TEST(print_lists_suspects_first_with_their_path)
{
	struct world w;
	uint32_t seq = two_nodes(&w);
	ep_traffic_set_path(w.t, 1, "tcp 10.0.0.1:4000");
	ep_traffic_set_path(w.t, 3, "tcp 10.0.0.2:4002");
	ep_traffic_arrived(w.t, seq, 1, 3, 2);
	w.b[3].waiting_on = 1;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ep_traffic_print(f, &w.v, seq);
	fclose(f);
	EP_ASSERT(strstr(text, "# traffic of op dispatch #1 ") != NULL);
	EP_ASSERT(strstr(text, "1 -> 3     missing") != NULL);
	EP_ASSERT(strstr(text, "2/9") != NULL && strstr(text, "200/900") != NULL);
	EP_ASSERT(strstr(text, "tcp 10.0.0.1:4000 -> tcp 10.0.0.2:4002") != NULL);
	EP_ASSERT(strstr(text, "1 suspect, 0 held or pending, 7 complete pairs") != NULL);
	free(text);
	ep_traffic_sent(w.t, seq, 1, 3, 4); /* put only 4 of 9: the bytes still show */
	w.b[3].waiting_on = -1;
	f = open_memstream(&text, &len);
	ep_traffic_print(f, &w.v, seq);
	fclose(f);
	EP_ASSERT(strstr(text, "2/9 sent 4                 200/900  tcp") != NULL);
	EP_ASSERT(strstr(text, "1 -> 3     pending") != NULL); /* rank 1 still putting, nobody waits */
	free(text);
	free(w.t);
}

EP_TEST_MAIN()
