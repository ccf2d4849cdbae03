/* low_latency_net_test.c - low-latency dispatch/combine across nodes: the ranks of other nodes over TCP.
 *
 * Worlds of several nodes (tests/ll_world.h: per node its own
 * sync blocks and arena, the TCP transport over loopback between nodes)
 * must give every rank exactly the outputs reference/low_latency_ref says,
 * as one host does.
 */
#include "tests/harness.h"

#include <errno.h>
#include <sys/mman.h>

#include "collectives/error.h"
#include "collectives/low_latency.h"
#include "tests/ll_world.h"

static struct world nodes_world(int nodes, int per_node, enum ep_dtype d)
{
	struct world w = small_world(nodes * per_node, d);
	w.cfg.ranks_per_node = per_node;
	return w;
}

EP_TEST(nodes_2x2_bf16)
{
	struct world w = nodes_world(2, 2, EP_DTYPE_BF16);
	w.rounds = 3;
	expect_clean(&w);
}

EP_TEST(nodes_3x1_fp8_ue8m0_zero_copy_hook)
{
	struct world w = nodes_world(3, 1, EP_DTYPE_FP8);
	w.cfg.round_scale = w.cfg.use_ue8m0 = 1;
	w.zero_copy = 1;
	w.mode = HOOK;
	w.rounds = 3;
	expect_clean(&w);
}

EP_TEST(nodes_2x3_back_to_back_uneven)
{
	struct world w = nodes_world(2, 3, EP_DTYPE_FP8);
	w.mode = BACK_TO_BACK;
	w.uneven = 1;
	w.tokens = 16;
	w.rounds = 3;
	expect_clean(&w);
}

EP_TEST(nodes_repeated_experts_fill_remote_slots)
{
	/* every token names experts 0, 0, 1, 1 (both on rank 0): each source's
	 * lists for them fill up (N each), so its block to rank 0 holds the
	 * most one rank can send another, min(N*K, N*L) = 32 messages, and
	 * rank 0's packed buffers fill to R*N rows per expert */
	static const int64_t rows[4] = {0, 0, 1, 1};
	struct world w = nodes_world(2, 2, EP_DTYPE_BF16);
	w.cfg.num_topk = 4;
	w.cfg.num_experts = 8;
	w.tokens = 8;
	w.routing.kind = EP_ROUTE_FILE;
	w.routing.file_idx = rows;
	w.routing.file_rows = 1;
	expect_clean(&w);
}

EP_TEST(nodes_every_entry_masked)
{
	struct world w = nodes_world(2, 2, EP_DTYPE_FP8);
	w.routing.masked_ratio = 1;
	expect_clean(&w);
}

/* Flips a byte of the last valid row of local expert 1: sources ascend,
 * so that row came from the highest source, on another node for rank 1. */
static void flip_last_row(struct ep_ll *ctx, const struct ep_ll_ref *ref)
{
	(void)ref;
	int32_t n = ctx->out.packed_recv_count[1];
	EP_ASSERT(n > 0);
	((uint8_t *)ctx->out.packed_recv_x)[packed_at(ctx, 1, n - 1) * ep_ll_row_bytes(&ctx->cfg) + 100] ^= 1;
}

EP_TEST(nodes_corrupted_remote_row_is_named)
{
	struct world w = nodes_world(2, 2, EP_DTYPE_FP8);
	w.tokens = 16;
	w.tamper = flip_last_row;
	w.tamper_rank = 1;
	struct rank_out outs[4];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	for (int r = 0; r < 4; r++) {
		EP_ASSERT_INT_EQ(outs[r].rc, 0);
		EP_ASSERT_INT_EQ(outs[r].disp_wrong, r == 1 ? 1 : 0);
	}
	if (!strstr(outs[1].first, "][100]: expected") || !strstr(outs[1].first, "(row from rank 3 token"))
		EP_FAIL("first mismatch \"%s\" does not name the byte and its source, rank 3 (node 1)",
			outs[1].first);
}

EP_TEST(nodes_config_needs_a_transport)
{
	struct ep_ll_config c = {.num_ranks = 4, .hidden = 256, .num_topk = 2, .num_experts = 8,
				 .max_tokens = 4, .dtype = EP_DTYPE_BF16, .ranks_per_node = 2};
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), 0);
	size_t two = ep_ll_arena_bytes(&c);
	c.ranks_per_node = 3;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL); /* does not divide R */
	c.ranks_per_node = 4;
	EP_ASSERT(ep_ll_arena_bytes(&c) > two); /* four regions, without remote areas */
	c.ranks_per_node = 2;
	size_t total = 4096 + two;
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)base, 2);
	struct ep_waiter wt;
	ep_waiter_init(&wt, (struct ep_sync *)base, 1, 1, -1);
	struct ep_ll ctx;
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 3, base + 4096, &wt, NULL), -EINVAL); /* no transport */
	ep_waiter_init(&wt, (struct ep_sync *)base, 0, 1, -1);
	c.ranks_per_node = 0;
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 3, base + 4096, &wt, NULL), -EINVAL); /* waiter of rank 0 */
	munmap(base, total);
}

/* A group strided in the world (world rank q * 2 + 1 for group rank q):
 * its waiter must be its world rank's, and a view of a rank's outputs is
 * where that rank's own collective puts them. */
EP_TEST(strided_group_waits_as_its_world_rank)
{
	struct ep_ll_config c = {.num_ranks = 2, .hidden = 256, .num_topk = 2, .num_experts = 4,
				 .max_tokens = 4, .dtype = EP_DTYPE_FP8};
	size_t total = 4096 + ep_ll_arena_bytes(&c);
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)base, 4);
	struct ep_waiter wt;
	struct ep_ll ctx;
	struct ep_ll_group grp = {2, 1}, bad = {2, 2};
	struct ep_ll_dispatch_out view;
	ep_waiter_init(&wt, (struct ep_sync *)base, 1, 1, -1);
	EP_ASSERT_INT_EQ(ep_ll_init_group(&ctx, &c, 1, base + 4096, &wt, NULL, &grp), -EINVAL); /* world rank 3's */
	ep_waiter_init(&wt, (struct ep_sync *)base, 3, 1, -1);
	EP_ASSERT_INT_EQ(ep_ll_init_group(&ctx, &c, 1, base + 4096, &wt, NULL, &bad), -EINVAL); /* base >= stride */
	EP_ASSERT_INT_EQ(ep_ll_init_group(&ctx, &c, 1, base + 4096, &wt, NULL, &grp), 0);
	EP_ASSERT_INT_EQ(ctx.stride, 2);
	EP_ASSERT_INT_EQ(ctx.base, 1);
	EP_ASSERT_INT_EQ(ep_ll_outputs_view(&c, 1, base + 4096, &view), 0);
	EP_ASSERT(view.packed_recv_x == ctx.out.packed_recv_x && view.packed_recv_x_scales == ctx.out.packed_recv_x_scales);
	EP_ASSERT(view.packed_recv_count == ctx.out.packed_recv_count &&
		  view.packed_recv_src_info == ctx.out.packed_recv_src_info &&
		  view.packed_recv_layout_range == ctx.out.packed_recv_layout_range);
	EP_ASSERT_INT_EQ(ep_ll_outputs_view(&c, 2, base + 4096, &view), -EINVAL);
	ep_ll_fini(&ctx);
	munmap(base, total);
}

/* A MoE-EP group of a layer whose MoE-TP groups hold whole nodes (stride 4
 * over nodes of 2 ranks: one group rank per node): group rank 0 of base 3
 * waits as the node's rank 1 (3 % 2), not as rank 3. */
EP_TEST(group_of_whole_nodes_waits_as_its_node_rank)
{
	struct ep_ll_config c = {.num_ranks = 1, .hidden = 256, .num_topk = 2, .num_experts = 4,
				 .max_tokens = 4, .dtype = EP_DTYPE_BF16, .ranks_per_node = 1};
	size_t total = 4096 + ep_ll_arena_bytes(&c);
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)base, 2);
	struct ep_waiter wt;
	struct ep_ll ctx;
	struct ep_ll_group grp = {4, 3};
	ep_waiter_init(&wt, (struct ep_sync *)base, 0, 1, -1);
	EP_ASSERT_INT_EQ(ep_ll_init_group(&ctx, &c, 0, base + 4096, &wt, NULL, &grp), -EINVAL); /* the node's rank 1's */
	ep_waiter_init(&wt, (struct ep_sync *)base, 1, 1, -1);
	EP_ASSERT_INT_EQ(ep_ll_init_group(&ctx, &c, 0, base + 4096, &wt, NULL, &grp), 0);
	ep_ll_fini(&ctx);
	munmap(base, total);
}

EP_TEST_MAIN()
