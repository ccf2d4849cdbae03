/* layer_bytes_test.c - a MoE layer's bytes per phase and domain on hand-worked configurations.
 *
 * W = 4 ranks as 2 nodes x 2 (nodes {0,1} and {2,3}), H = 8 (a bf16 row is
 * 16 bytes), K = 2, 2 tokens per rank, the routing a file's 8 rows: world
 * rank r's tokens are rows 2r and 2r + 1. dp=2,tp=2,moe_tp=2,moe_ep=2:
 * attention-TP and MoE-TP groups {0,1} {2,3} (in a node), MoE-EP groups
 * {0,2} {1,3} (across the nodes), E = 4 experts, 2 per EP rank.
 */
#include <errno.h>

#include "cli/layer_bytes.h"
#include "cli/parallel.h"
#include "tests/harness.h"

/* The rows of the routing file, K = 2 ids each (-1: masked). */
static const int64_t file_rows[8 * 2] = {
	0, 1,  /* rank 0 (group 0, EP rank 0): EP rank 0 (itself) */
	0, 2,  /*   EP ranks 0 and 1 (world 0 and 2) */
	2, 3,  /* rank 1 (group 1, EP rank 0): EP rank 1 (world 3) */
	1, -1, /*   EP rank 0 (itself) */
	3, 2,  /* rank 2 (group 0, EP rank 1): EP rank 1 (itself) */
	1, 3,  /*   EP ranks 0 and 1 (world 0 and 2) */
	0, 1,  /* rank 3 (group 1, EP rank 1): EP rank 0 (world 1) */
	2, 0,  /*   EP ranks 1 and 0 (world 3 and 1) */
};

struct fixture {
	struct ep_run_cfg cfg;
	struct ep_run run;
};

static void setup(struct fixture *x, const char *spec, int ranks_per_node, int experts)
{
	struct ep_parallel in = {0};
	char err[256];
	memset(x, 0, sizeof(*x));
	x->cfg = (struct ep_run_cfg){.seed = 1, .ranks_per_node = ranks_per_node, .tokens_per_dp = 4};
	x->run = (struct ep_run){.cfg = &x->cfg, .attn_tokens = 2,
				 .shape = {.num_ranks = 4, .num_tokens = 2, .hidden = 8, .num_topk = 2,
					   .num_experts = experts, .dtype = EP_DTYPE_BF16, .with_topk = 1},
				 .routing = {.kind = EP_ROUTE_FILE, .file_idx = file_rows, .file_rows = 8}};
	EP_ASSERT_INT_EQ(ep_parallel_parse(&in, spec, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(ep_parallel_resolve(&in, 4, ranks_per_node, &x->run.parallel, err, sizeof(err)), 0);
}

static void expect(const struct ep_phase_bytes *b, const char *phase, uint64_t ai, uint64_t ae, uint64_t wi,
		   uint64_t we)
{
	EP_ASSERT_STR_EQ(b->phase, phase);
	EP_ASSERT_INT_EQ(b->alg_intra, ai);
	EP_ASSERT_INT_EQ(b->alg_inter, ae);
	EP_ASSERT_INT_EQ(b->wire_intra, wi);
	EP_ASSERT_INT_EQ(b->wire_inter, we);
}

/* DeepEP's normal mode, a row per (token, destination EP rank): rank 0
 * sends itself 2 and rank 2 1; rank 1 itself 1 and rank 3 1; rank 2 itself
 * 2 and rank 0 1; rank 3 itself 1 and rank 1 2. 6 rows to self, 5 across
 * the nodes, none between two ranks of a node. Received: 3, 3, 3, 2. */
EP_TEST(a2a_two_nodes)
{
	struct fixture x;
	struct ep_phase_bytes b[EP_LAYER_MAX_PHASES];
	setup(&x, "dp=2,tp=2,moe_tp=2,moe_ep=2", 2, 4);
	EP_ASSERT_INT_EQ(ep_layer_bytes(&x.run, 0, b), 5);
	expect(&b[0], "ep_dispatch", 6 * 16, 5 * 16, 0, 5 * 16);
	/* each member's 11 rows in all to both members: the gathered row is
	 * 16 + K 12 + 4 = 44 bytes (ids, weights and source index with it) */
	expect(&b[1], "moe_tp_gather", 11 * 2 * 44, 0, 11 * 44, 0);
	expect(&b[2], "moe_tp_reduce", 11 * 2 * 16, 0, 11 * 16, 0);
	expect(&b[3], "ep_combine", 6 * 16, 5 * 16, 0, 5 * 16);
	expect(&b[4], "attn_tp_gather", 4 * 2 * 2 * 16, 0, 4 * 2 * 16, 0); /* 2-row slices, 2 members */
}

/* The same on one host: every byte is intra. */
EP_TEST(a2a_one_host)
{
	struct fixture x;
	struct ep_phase_bytes b[EP_LAYER_MAX_PHASES];
	setup(&x, "dp=2,tp=2,moe_tp=2,moe_ep=2", 0, 4);
	EP_ASSERT_INT_EQ(ep_layer_bytes(&x.run, 0, b), 5);
	expect(&b[0], "ep_dispatch", 11 * 16, 0, 5 * 16, 0);
	expect(&b[3], "ep_combine", 11 * 16, 0, 5 * 16, 0);
}

/* A row per (token, expert) (low-latency, Ascend): rank 0 sends itself 3
 * and rank 2 1; rank 1 itself 1 and rank 3 2; rank 2 itself 3 and rank 0
 * 1; rank 3 itself 1 and rank 1 3: 8 to self, 7 across. Ascend int8: a
 * row is H + 4 = 12 bytes (and the gathered row the same), combine's
 * int8 communication H + 2 H / 8 = 10. Received: 4, 4, 4, 3. */
EP_TEST(per_expert_ascend_int8)
{
	struct fixture x;
	struct ep_phase_bytes b[EP_LAYER_MAX_PHASES];
	setup(&x, "dp=2,tp=2,moe_tp=2,moe_ep=2", 2, 4);
	x.cfg.ep_semantics = EP_SEM_ASCEND, x.cfg.comm_quant = 1;
	x.run.shape.dtype = EP_DTYPE_INT8;
	EP_ASSERT_INT_EQ(ep_layer_bytes(&x.run, 1, b), 5);
	expect(&b[0], "ep_dispatch", 8 * 12, 7 * 12, 0, 7 * 12);
	expect(&b[1], "moe_tp_gather", 15 * 2 * 12, 0, 15 * 12, 0);
	expect(&b[2], "moe_tp_reduce", 15 * 2 * 16, 0, 15 * 16, 0);
	expect(&b[3], "ep_combine", 8 * 10, 7 * 10, 0, 7 * 10);
}

/* Ascend with a shared-expert rank: moe_ep = 4 (EP rank = world rank), EP
 * rank 0 holds the shared expert, E = 3 routed experts one per EP rank
 * 1..3 (expert e on rank 1 + e). With file rows (0,1) (2,-1) | (0,2) (1,0)
 * | (1,2) (0,1) | (2,1) (0,2) and every token also to rank 0:
 *   from 0: 0:2 1:1 2:1 3:1   from 1: 0:2 1:2 2:1 3:1
 *   from 2: 0:2 1:1 2:2 3:1   from 3: 0:2 1:1 2:1 3:2
 * 8 rows to self, 5 between ranks of a node, 10 across the nodes. */
static const int64_t shared_rows[8 * 2] = {0, 1, 2, -1, 0, 2, 1, 0, 1, 2, 0, 1, 2, 1, 0, 2};

EP_TEST(ascend_shared_expert_rank)
{
	struct fixture x;
	struct ep_phase_bytes b[EP_LAYER_MAX_PHASES];
	setup(&x, "dp=2,tp=2,moe_tp=1,moe_ep=4", 2, 3);
	x.cfg.ep_semantics = EP_SEM_ASCEND, x.cfg.shared_experts = 1, x.cfg.shared_expert_ranks = 1;
	x.run.routing.file_idx = shared_rows;
	EP_ASSERT_INT_EQ(ep_layer_bytes(&x.run, 1, b), 3);
	expect(&b[0], "ep_dispatch", 13 * 16, 10 * 16, 5 * 16, 10 * 16);
	expect(&b[1], "ep_combine", 13 * 16, 10 * 16, 5 * 16, 10 * 16);
	expect(&b[2], "attn_tp_gather", 4 * 2 * 2 * 16, 0, 4 * 2 * 16, 0);
}

/* Allgather mode: every 2-row slice (32 bytes) to every rank; a rank's own
 * and its node peer's are intra, the other node's 2 inter. */
EP_TEST(allgather_two_nodes)
{
	struct fixture x;
	struct ep_phase_bytes b[EP_LAYER_MAX_PHASES];
	setup(&x, "dp=2,tp=2,moe_tp=1,moe_ep=4", 2, 4);
	x.run.parallel.moe_comm = EP_MOE_ALLGATHER;
	EP_ASSERT_INT_EQ(ep_layer_bytes(&x.run, 0, b), 3);
	expect(&b[0], "world_gather", 4 * 2 * 32, 4 * 2 * 32, 4 * 32, 4 * 2 * 32);
	expect(&b[1], "world_reduce", 4 * 2 * 32, 4 * 2 * 32, 4 * 32, 4 * 2 * 32);
	expect(&b[2], "attn_tp_gather", 4 * 2 * 32, 0, 4 * 32, 0);
}

/* Experts that do not split over the routed EP ranks: refused, not counted. */
EP_TEST(experts_not_split)
{
	struct fixture x;
	struct ep_phase_bytes b[EP_LAYER_MAX_PHASES];
	setup(&x, "dp=2,tp=2,moe_tp=2,moe_ep=2", 2, 3);
	EP_ASSERT_INT_EQ(ep_layer_bytes(&x.run, 0, b), -EINVAL);
}

EP_TEST(phase_of_op)
{
	EP_ASSERT_STR_EQ(ep_layer_phase_of_op("dispatch"), "ep_dispatch");
	EP_ASSERT_STR_EQ(ep_layer_phase_of_op("combine"), "ep_combine");
	EP_ASSERT_STR_EQ(ep_layer_phase_of_op("moe_tp_reduce"), "moe_tp_reduce");
	EP_ASSERT(ep_layer_phase_of_op("dispatch+combine") == NULL);
	EP_ASSERT(ep_layer_phase_of_op("dispatch-send") == NULL);
}

EP_TEST_MAIN()
