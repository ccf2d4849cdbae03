/* low_latency.c - `epbench low-latency`: DeepEP's decode-time dispatch and combine, one host or several.
 *
 * Per-rank state: this rank's inputs (T_r tokens, regenerated from the seed
 * as the reference regenerates them), the collective context, the reference
 * and the harness's expert outputs. The expert step (untimed, in prepare)
 * dequantises every valid packed row with its own scales and applies
 * ep_expert_transform(me, its local expert, ...); with --zero-copy it writes
 * straight into the collective's combine area, otherwise into a buffer of
 * the harness that combine copies from (DeepEP's non-zero-copy path). Its
 * outputs are computed once: dispatch is deterministic, so every later
 * dispatch packs the same rows at the same places.
 *
 * Ops: "dispatch", "combine" and "dispatch+combine" (back to back in one
 * timed op); with --hook also "dispatch-send" / "dispatch-recv" and
 * "combine-send" / "combine-recv": a send op times the send phase and
 * receives after the timer; a recv op sends and waits until every peer's
 * data has landed before the timer, so, as in DeepEP's test (where a large
 * GEMM runs before hook()), receive time excludes waiting for peers.
 *
 * Bytes per op follow DeepEP's test_low_latency (semantics 6.4), per rank
 * as sender, sel_t = valid top-k entries of token t: dispatch
 * sum sel_t * (H + H/128 * 4 + 16) for FP8 and sum sel_t * (2H + 16) for
 * BF16 (DeepEP's test always counts FP8); combine sum sel_t * 2H. Wire
 * bytes leave out messages to experts of this rank.
 *
 * Across nodes (launched by the node job, cli/cluster/node_job.c, with the
 * node's struct ep_node_ctx as env->variant_ctx) a rank is the same with
 * global ranks, a node arena of P rank regions and a network endpoint
 * (cli/cluster/endpoint.h): it connects to every rank of the other nodes
 * (the full mesh ep_ll_peers names), meets every rank of the job before
 * each op (op_enter), notes when each node's data landed, and after an
 * op's timed loop (op_leave) leaves its figures:
 *   rdma  DeepEP's logical bytes of the op (the table's bytes, all messages,
 *         own rank included), as DeepEP's low-latency test counts them;
 *   wire  the bytes it put on the network (blocks and rows as sent);
 *   nvl   DeepEP's bytes of the messages to ranks of its own node;
 *   per node m: bytes put to m, and the median over the timed iterations
 *         of "send phase start -> every rank of m seen landed".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/attn_gather.h"
#include "cli/ll_packed.h"
#include "cli/bench.h"
#include "cli/low_latency.h"
#include "cli/command.h"
#include "cli/cluster/endpoint.h"
#include "collectives/error.h"
#include "collectives/low_latency.h"
#include "reference/low_latency_ref.h"
#include "reference/placement.h"
#include "collectives/numeric.h"
#include "reference/transform.h"
#include "reports/atomic_file.h"
#include "reports/npy.h"


/* Which data an op's figures follow. */
enum ll_kind { LL_KIND_DISPATCH, LL_KIND_COMBINE, LL_KIND_BOTH, LL_KIND_LAYER };
/* The attention gather's transport regions, after the collective's two (collectives/low_latency_int.h). */
enum { LL_ATTN_RECV = 2, LL_ATTN_SLOTS = 3 };

struct ll_state {
	struct ep_bench_env *env;
	const struct ep_run_cfg *opt;
	struct ep_ll_config cfg;
	struct ep_ll coll;
	struct ep_ll_ref ref;
	int me, T;                 /* this rank (global), its token count T_r */
	int local;                 /* its index within its node (me on one host) */
	uint16_t *x;               /* [T][H] bf16 dispatch input */
	const int64_t *topk_idx;   /* [T][K], rows of the reference (or moved_topk) */
	int64_t *moved_topk;       /* --fault replica: this rank's rows with one replica moved, or NULL */
	const float *topk_weights; /* [T][K] */
	struct ep_ll_dispatch_out out;
	uint16_t *expert_out;      /* [L][R*N][H] harness buffer in the arena (non-zero-copy) */
	uint16_t *combine_x;       /* where the expert outputs are: expert_out or the combine area */
	uint16_t *combined_x;      /* [T][H] */
	uint16_t *deq;             /* [H] expert-step scratch */
	float *scales;             /* [H/128] */
	int dispatched;            /* out holds a dispatch's result */
	int experts_ready;         /* combine_x holds the expert outputs */
	uint64_t disp_alg, disp_wire, comb_alg, comb_wire;
	uint64_t disp_nvl, comb_nvl; /* DeepEP bytes to ranks of this node, own included */
	/* multi-node only */
	int nodes_job;             /* a rank of a node job (env->variant_ctx set) */
	struct ep_endpoint net;    /* its network endpoint */
	int op;                    /* the op being run (set by op_enter) */
	enum ll_kind op_kind;
	/* a parallel configuration's layer (moe_tp = 1, tp > 1): combined_x
	 * lives in the arena's slots and the attention-TP gather follows */
	struct ep_attn_gather attn;
	struct ep_attn_net attn_net; /* tp a multiple of the ranks of a node: the gather's network half */
	uint16_t *attn_recv;
	int64_t attn_t0;           /* the running gather's start */
	int layer, combined_done;
};


void ep_ll_run_config(const struct ep_run *run, int P, struct ep_ll_config *cfg)
{
	const struct ep_shape *s = &run->shape;
	const struct ep_run_cfg *o = run->cfg;
	int N = o->max_dispatch_tokens ? o->max_dispatch_tokens : s->num_tokens;
	*cfg = (struct ep_ll_config){
		.num_ranks = s->num_ranks, .hidden = s->hidden, .num_topk = s->num_topk,
		.num_experts = s->num_experts, .max_tokens = N > 0 ? N : 1, .dtype = s->dtype,
		.round_scale = o->round_scale, .use_ue8m0 = o->use_ue8m0, .ranks_per_node = P,
	};
}

/* Harness bytes per rank: the non-zero-copy expert output buffer. */
static double harness_bytes(const struct ep_ll_config *c, int zero_copy)
{
	if (zero_copy)
		return 0;
	double b = (double)c->num_experts * c->max_tokens * c->hidden * 2;
	return (double)ep_align_up((size_t)(b < 0x1p60 ? b : 0x1p60), EP_PAGE);
}

/* An upper estimate of one rank's private bytes: its inputs and outputs,
 * the reference (every rank's routing, the expected receive rows) and the
 * collective's own state. */
static size_t rank_bytes_of(const struct ep_run *run, const struct ep_ll_config *c)
{
	double R = c->num_ranks, T = run->shape.num_tokens, H = c->hidden, K = c->num_topk;
	double L = (double)c->num_experts / c->num_ranks, RN = R * c->max_tokens;
	double b = 4 * T * H + 8 * H + 4 * R + 12 * R * T * K + 4 * L + 8 * L * R + 8 * L * RN + 24 * H +
		   16 * (double)run->cfg->iters * R + (double)ep_ll_rank_bytes(c);
	return b < 0x1p60 ? (size_t)b : (size_t)1 << 60;
}

/* The arena of P ranks: the collective's and the harness's buffers. */
static int size_for(struct ep_run *run, int P, size_t *arena_bytes, size_t *rank_bytes)
{
	struct ep_ll_config cfg;
	ep_ll_run_config(run, P, &cfg);
	size_t coll = ep_ll_arena_bytes(&cfg);
	if (!coll)
		return -EP_EUSAGE;
	/* SIZE_MAX: beyond 2^60; the clamp below makes the launcher refuse it */
	double total = (double)coll + harness_bytes(&cfg, run->cfg->zero_copy) * P;
	if (run->cfg->ops & EP_OPS_ATTN_TP) /* the layer's combined slices, shared for the attention-TP gather */
		total += (double)ep_attn_gather_slot_bytes(P, (size_t)run->shape.num_tokens, cfg.hidden);
	/* Clamped so that sums stay exact; the launcher refuses such a size. */
	*arena_bytes = total < 0x1p60 ? (size_t)total : (size_t)1 << 60;
	run->capacity = (size_t)cfg.num_ranks * cfg.max_tokens;
	*rank_bytes = rank_bytes_of(run, &cfg);
	return 0;
}

/* One host: all R ranks; a node job: the node's ranks_per_node. */
static int ll_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	int P = run->cfg->ranks_per_node ? run->cfg->ranks_per_node : run->shape.num_ranks;
	return size_for(run, P, arena_bytes, rank_bytes);
}

static void ll_teardown(void *p)
{
	struct ll_state *st = p;
	if (!st)
		return;
	ep_endpoint_close(&st->net); /* first: a failed rank leaves at once */
	ep_ll_fini(&st->coll);
	ep_ll_ref_fini(&st->ref);
	free(st->x);
	if (!st->layer)
		free(st->combined_x);
	free(st->attn.out);
	free(st->attn_recv);
	free(st->moved_topk);
	free(st->deq);
	free(st->scales);
	free(st);
}

/* Bytes this rank sends per dispatch and combine (see the file comment). */
static void count_bytes(struct ll_state *st)
{
	const struct ep_ll_config *c = &st->cfg;
	int K = c->num_topk, L = c->num_experts / c->num_ranks, P = c->ranks_per_node;
	uint64_t H = (uint64_t)c->hidden;
	uint64_t msg = c->dtype == EP_DTYPE_FP8 ? H + H / 128 * 4 + 16 : 2 * H + 16;
	for (int t = 0; t < st->T; t++)
		for (int j = 0; j < K; j++) {
			int64_t e = st->topk_idx[(size_t)t * K + j];
			if (e < 0 || e >= c->num_experts)
				continue;
			int remote = e / L != st->me;
			st->disp_alg += msg;
			st->comb_alg += 2 * H;
			st->disp_wire += remote ? msg : 0;
			st->comb_wire += remote ? 2 * H : 0;
			st->disp_nvl += e / L / P == st->me / P ? msg : 0;
			st->comb_nvl += e / L / P == st->me / P ? 2 * H : 0;
		}
}

static int attn_regions(struct ll_state *st);

/* Across nodes: the endpoint first (ep_ll_init registers the rank's
 * region with it), then the collective, then the full mesh. */
static int ll_setup_coll(struct ll_state *st, struct ep_bench_env *env)
{
	int rc, peers[EP_MAX_NODES * EP_MAX_LOCAL];
	if (st->nodes_job && (rc = ep_endpoint_open(&st->net, env, st->cfg.num_ranks)))
		return rc;
	if ((rc = ep_ll_init(&st->coll, &st->cfg, st->me, env->arena, env->waiter,
			     st->nodes_job ? &st->net.net : NULL)))
		return st->nodes_job ? ep_endpoint_fail(&st->net, rc, "low-latency buffers") : rc;
	if (!st->nodes_job)
		return 0;
	if ((rc = attn_regions(st)))
		return rc;
	int n = ep_ll_peers(&st->coll, peers);
	return ep_endpoint_connect(&st->net, peers, n, "the ranks of the other nodes");
}

/* --fault replica:R: rank R dispatches and combines with its ids under a
 * placement with one replica moved; every reference keeps the true one. */
static int move_replica(struct ll_state *st)
{
	const struct ep_run *run = st->env->run;
	size_t n = (size_t)st->T * (size_t)st->cfg.num_topk;
	free(st->moved_topk);
	st->moved_topk = NULL;
	if (!run->routing.placement || !ep_faults_at(&run->cfg->faults, EP_FAULT_REPLICA, st->me, 0))
		return 0;
	if (!(st->moved_topk = malloc(sizeof(int64_t) * (n + 1))))
		return -ENOMEM;
	memcpy(st->moved_topk, st->topk_idx, sizeof(int64_t) * n);
	ep_placement_move_replica(run->routing.placement, st->moved_topk, n);
	st->topk_idx = st->moved_topk;
	return 0;
}

/* The routing (reference), inputs and byte counts of env->run's seed. */
static int ll_inputs(struct ll_state *st)
{
	const struct ep_run *run = st->env->run;
	size_t H = (size_t)st->cfg.hidden;
	int rc;
	if ((rc = ep_ll_ref_init(&st->ref, &st->cfg, run->shape.num_tokens, &run->routing, run->cfg->seed,
				 run->routing.uneven_tokens, st->me)))
		return rc;
	st->T = ep_ll_ref_tokens(&st->ref, st->me);
	st->topk_idx = ep_ll_ref_topk_idx(&st->ref, st->me);
	st->topk_weights = ep_ll_ref_topk_weights(&st->ref, st->me);
	if ((rc = move_replica(st)))
		return rc;
	st->x = malloc(sizeof(uint16_t) * ((size_t)st->T * H + 1));
	st->combined_x = st->layer ? ep_attn_gather_slot(&st->attn, st->me) : malloc(sizeof(uint16_t) * ((size_t)st->T * H + 1));
	if (!st->x || !st->combined_x)
		return -ENOMEM;
	for (int t = 0; t < st->T; t++)
		ep_gen_bf16_row(run->cfg->seed, st->ref.routing, EP_STREAM_X, st->me, t, st->cfg.hidden,
				st->x + (size_t)t * H);
	st->disp_alg = st->disp_wire = st->comb_alg = st->comb_wire = st->disp_nvl = st->comb_nvl = 0;
	count_bytes(st);
	return 0;
}

/* Soak, or a new routing step (reference/routing_step.h): the routing and
 * inputs of env->run's seed and step; the collective stays (its buffers
 * hold any routing of max_dispatch_tokens per rank). Across nodes too: its
 * puts come from the staging area and every send's signal returned before
 * the last op did, and the job's ranks change step at the same iteration. */
static int ll_reseed(void *p)
{
	struct ll_state *st = p;
	ep_ll_ref_fini(&st->ref);
	free(st->x);
	if (!st->layer)
		free(st->combined_x);
	st->x = st->combined_x = NULL;
	st->dispatched = st->experts_ready = st->combined_done = 0; /* the last pass's outputs are stale */
	return ll_inputs(st);
}

static int slice_len(void *p, int r)
{
	return ep_ll_ref_tokens(&((struct ll_state *)p)->ref, r);
}

static int combined_row(void *p, int r, int t, uint16_t *want)
{
	return ep_ll_ref_combined_row(&((struct ll_state *)p)->ref, r, t, want);
}

/* The attention gather across nodes meets the job first and exchanges its puts in one collective send. */
static int attn_ready(void *p)
{
	struct ll_state *st = p;
	st->attn_t0 = ep_now_ns();
	return ep_ll_barrier(&st->coll);
}

/* With the arrival of the group's other nodes' rows: when the exchange ended. */
static int attn_exchange(void *p)
{
	struct ll_state *st = p;
	int64_t ns[EP_MAX_NODES] = {0};
	int rc = ep_ll_exchange(&st->coll), per = st->attn.tp / st->cfg.ranks_per_node;
	if (rc || st->op_kind != LL_KIND_LAYER)
		return rc;
	for (int m = st->attn.d * per; m < (st->attn.d + 1) * per; m++)
		ns[m] = m == st->me / st->cfg.ranks_per_node ? 0 : ep_now_ns() - st->attn_t0;
	ep_endpoint_arrived(&st->net, st->op, ns);
	return 0;
}

/* A layer's attention-TP gather: the slots after the collective's and the
 * harness's memory in the arena (ll_size), the output private. */
static int layer_setup(struct ll_state *st, struct ep_bench_env *env)
{
	const struct ep_run *run = env->run;
	size_t at = ep_ll_arena_bytes(&st->cfg) + (size_t)harness_bytes(&st->cfg, run->cfg->zero_copy) *
						       (size_t)st->cfg.ranks_per_node;
	int tp = run->parallel.v[EP_PAR_TP];
	st->layer = 1;
	st->attn = (struct ep_attn_gather){.waiter = env->waiter, .tp = tp, .d = st->me / tp, .P = st->cfg.ranks_per_node,
					   .hidden = st->cfg.hidden, .slot_rows = (size_t)run->shape.num_tokens,
					   .slots = (uint16_t *)((char *)env->arena + at), .len = slice_len,
					   .expected = combined_row, .ctx = st};
	st->attn.out = malloc(2 * ((size_t)tp * st->attn.slot_rows * (size_t)st->cfg.hidden + 1));
	if (!st->attn.out)
		return -ENOMEM;
	if (!st->nodes_job || tp <= st->cfg.ranks_per_node)
		return 0;
	size_t bytes = ep_attn_gather_recv_bytes(tp, st->attn.slot_rows, st->cfg.hidden);
	if (posix_memalign((void **)&st->attn_recv, EP_PAGE, bytes))
		return -ENOMEM;
	memset(st->attn_recv, 0, bytes);
	st->attn_net = (struct ep_attn_net){.t = &st->net.net, .me = st->me, .recv_id = LL_ATTN_RECV,
					    .source_id = LL_ATTN_SLOTS, .recv = st->attn_recv, .ready = attn_ready,
					    .exchange = attn_exchange, .ctx = st};
	st->attn.net = &st->attn_net;
	return 0;
}

/* Across nodes: the attention gather's regions beside the collective's (before connecting). */
static int attn_regions(struct ll_state *st)
{
	const struct ep_attn_gather *a = &st->attn;
	int rc;
	if (!a->net)
		return 0;
	if ((rc = ep_transport_reg_mem(&st->net.net, LL_ATTN_RECV, st->attn_recv,
				       ep_attn_gather_recv_bytes(a->tp, a->slot_rows, a->hidden))) ||
	    (rc = ep_transport_reg_mem(&st->net.net, LL_ATTN_SLOTS, a->slots,
				       ep_attn_gather_slot_bytes(a->P, a->slot_rows, a->hidden))))
		return ep_endpoint_fail(&st->net, rc, "attention gather buffers");
	return 0;
}

static int ll_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	const struct ep_run_cfg *o = run->cfg;
	struct ll_state *st = calloc(1, sizeof(*st));
	int rc = -ENOMEM;
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->opt = o;
	st->me = env->rank;
	st->nodes_job = env->variant_ctx != NULL;
	ep_ll_run_config(run, o->ranks_per_node ? o->ranks_per_node : run->shape.num_ranks, &st->cfg);
	st->local = st->me % st->cfg.ranks_per_node;
	size_t H = (size_t)st->cfg.hidden;
	if ((o->ops & EP_OPS_ATTN_TP) && (rc = layer_setup(st, env)))
		goto fail;
	rc = -ENOMEM;
	st->deq = malloc(sizeof(uint16_t) * H);
	st->scales = malloc(sizeof(float) * (H / 128 + 1));
	if (!st->deq || !st->scales || (rc = ll_inputs(st)))
		goto fail;
	if ((rc = ll_setup_coll(st, env)))
		goto fail;
	if (!o->zero_copy)
		st->expert_out = (uint16_t *)((char *)env->arena + ep_ll_arena_bytes(&st->cfg) +
					      (size_t)harness_bytes(&st->cfg, 0) * (size_t)st->local);
	*out = st;
	return 0;
fail:
	ll_teardown(st);
	return rc;
}

struct ep_ll *ep_ll_variant_coll(void *st)
{
	return &((struct ll_state *)st)->coll;
}

/* Dispatch */

/* A receive of `kind` completed: across nodes, when each node's data
 * landed counts for the running op when the op follows that data (the
 * dispatch inside dispatch+combine does not: its combine does, timed from
 * the dispatch's start). */
static void arrived(struct ll_state *st, enum ll_kind kind)
{
	const struct ep_ll_figures *d = &st->coll.last_dispatch, *c = &st->coll.last_combine;
	if (!st->nodes_job || st->op_kind == LL_KIND_LAYER ||
	    (st->op_kind == LL_KIND_DISPATCH ? kind != LL_KIND_DISPATCH : kind != LL_KIND_COMBINE))
		return;
	int64_t ns[EP_MAX_NODES];
	for (int m = 0; m < st->net.ctx->nodes; m++) {
		ns[m] = kind == LL_KIND_DISPATCH ? d->arrival_ns[m] : c->arrival_ns[m];
		if (st->op_kind == LL_KIND_BOTH)
			ns[m] += c->start_ns - d->start_ns;
	}
	ep_endpoint_arrived(&st->net, st->op, ns);
}

static int do_dispatch(struct ll_state *st)
{
	int rc = ep_ll_dispatch(&st->coll, st->x, st->topk_idx, st->T, &st->out);
	st->dispatched = rc == 0;
	if (rc == 0)
		arrived(st, LL_KIND_DISPATCH);
	return rc;
}

static int dispatch_run(void *p)
{
	return do_dispatch(p);
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct ll_state *st = p;
	ep_ll_ref_check_dispatch(&st->ref, &st->out, rep);
	return 0;
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct ll_state *st = p;
	*alg = st->disp_alg;
	*wire = st->disp_wire;
}

static uint64_t ll_recv_rows(const void *p)
{
	const struct ll_state *st = p;
	uint64_t n = 0;
	for (int e = 0; st->dispatched && e < st->cfg.num_experts / st->cfg.num_ranks; e++)
		n += (uint64_t)st->out.packed_recv_count[e];
	return n;
}

/* The views of dispatch's outputs for the data faults: the valid packed
 * rows of the last expert that received any first (the received rows),
 * its scales (one plane: the first block of each row) and source indices,
 * then the counts and layout ranges. */
static int dispatch_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct ll_state *st = p;
	const struct ep_ll_config *c = &st->cfg;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, row = ep_ll_row_bytes(c);
	int L = c->num_experts / c->num_ranks, e = L - 1, n = 0;
	while (e > 0 && st->out.packed_recv_count[e] <= 0)
		e--;
	size_t rows = st->out.packed_recv_count[e] > 0 ? (size_t)st->out.packed_recv_count[e] : 0;
	size_t planes = c->hidden / (c->use_ue8m0 ? 512 : 128);
	struct ep_tensor_view all[] = {
		{"packed_recv_x", (uint8_t *)st->out.packed_recv_x + (size_t)e * RN * row, rows, row},
		{"packed_recv_x_scales", st->out.packed_recv_x_scales ? (uint8_t *)st->out.packed_recv_x_scales +
			(size_t)e * planes * RN * 4 : NULL, rows, 4},
		{"packed_recv_src_info", (uint8_t *)(st->out.packed_recv_src_info + (size_t)e * RN), rows, 4},
		{"packed_recv_count", (uint8_t *)st->out.packed_recv_count, 1, 4 * (size_t)L},
		{"packed_recv_layout_range", (uint8_t *)st->out.packed_recv_layout_range, (size_t)L,
		 8 * (size_t)c->num_ranks},
	};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		if (all[i].base)
			v[n++] = all[i];
	return n;
}

static int combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct ll_state *st = p;
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){"combined_x", (uint8_t *)st->combined_x, (size_t)st->T, 2 * (size_t)st->cfg.hidden};
	return 1;
}

/* The hook ops' phases. */

static int dispatch_send(void *p)
{
	struct ll_state *st = p;
	st->dispatched = 0;
	return ep_ll_dispatch_send(&st->coll, st->x, st->topk_idx, st->T);
}

static int dispatch_recv(void *p)
{
	struct ll_state *st = p;
	int rc = ep_ll_dispatch_recv(&st->coll, &st->out);
	st->dispatched = rc == 0;
	if (rc == 0)
		arrived(st, LL_KIND_DISPATCH);
	return rc;
}

static int dispatch_send_landed(void *p)
{
	struct ll_state *st = p;
	int rc = dispatch_send(st);
	return rc ? rc : ep_ll_dispatch_wait(&st->coll);
}

/* Combine */

/* Scale of block b of packed row p of expert e, out of DeepEP's layout. */
static float packed_scale(const struct ll_state *st, int e, size_t p, int b)
{
	const struct ep_ll_config *c = &st->cfg;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, S = (size_t)ep_ll_scale_cols(c);
	const void *scales = st->out.packed_recv_x_scales;
	if (c->use_ue8m0) { /* int32 [L][H/512][R*N], byte k of a word = block 4w + k */
		uint32_t w = ((const uint32_t *)scales)[((size_t)e * S + (size_t)b / 4) * RN + p];
		return ep_ue8m0_to_f32((uint8_t)(w >> (8 * (b % 4))));
	}
	return ((const float *)scales)[((size_t)e * S + (size_t)b) * RN + p]; /* [L][S][R*N] */
}

/* The harness's expert step over every valid packed row, into dst. */
static void apply_experts(struct ll_state *st, uint16_t *dst)
{
	const struct ep_ll_config *c = &st->cfg;
	int L = c->num_experts / c->num_ranks, H = c->hidden;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, row = ep_ll_row_bytes(c);
	for (int e = 0; e < L; e++)
		for (size_t p = 0; p < (size_t)st->out.packed_recv_count[e]; p++) {
			size_t at = (size_t)e * RN + p;
			const void *src = (const char *)st->out.packed_recv_x + at * row;
			if (c->dtype == EP_DTYPE_FP8) {
				for (int b = 0; b < H / 128; b++)
					st->scales[b] = packed_scale(st, e, p, b);
				ep_fp8_dequant_row(src, st->scales, (size_t)H, st->deq);
				src = st->deq;
			}
			ep_expert_transform(st->ref.payload, st->me, e, src, H, dst + at * (size_t)H);
		}
}

/* Untimed: a dispatch's outputs, then the expert outputs where combine
 * takes them from. */
static int combine_prepare(void *p)
{
	struct ll_state *st = p;
	int rc;
	if (!st->dispatched && (rc = do_dispatch(st)))
		return rc;
	if (st->experts_ready)
		return 0;
	ep_set_phase(st->env->waiter, "experts");
	uint16_t *dst = st->expert_out;
	if (st->opt->zero_copy && (rc = ep_ll_combine_buffer(&st->coll, &dst)))
		return rc;
	apply_experts(st, dst);
	st->combine_x = dst;
	st->experts_ready = 1;
	return 0;
}

/* Combine's x: NULL when the expert outputs already sit in the combine area. */
static const uint16_t *combine_input(const struct ll_state *st)
{
	return st->opt->zero_copy ? NULL : st->expert_out;
}

static int combine_run(void *p)
{
	struct ll_state *st = p;
	int rc = ep_ll_combine(&st->coll, combine_input(st), st->topk_idx, st->topk_weights,
			       st->combined_x);
	if (rc == 0)
		arrived(st, LL_KIND_COMBINE);
	st->combined_done = rc == 0;
	return rc;
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct ll_state *st = p;
	ep_ll_ref_check_combine(&st->ref, st->combined_x, rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct ll_state *st = p;
	*alg = st->comb_alg;
	*wire = st->comb_wire;
}

static int combine_send(void *p)
{
	struct ll_state *st = p;
	return ep_ll_combine_send(&st->coll, combine_input(st));
}

static int combine_recv(void *p)
{
	struct ll_state *st = p;
	int rc = ep_ll_combine_recv(&st->coll, st->topk_idx, st->topk_weights, st->combined_x);
	if (rc == 0)
		arrived(st, LL_KIND_COMBINE);
	return rc;
}

static int combine_send_landed(void *p)
{
	struct ll_state *st = p;
	int rc = combine_send(st);
	return rc ? rc : ep_ll_combine_wait(&st->coll);
}

/* Dispatch + combine, back to back */

static int both_run(void *p)
{
	struct ll_state *st = p;
	int rc = do_dispatch(st);
	return rc ? rc : combine_run(st);
}

static int both_check(void *p, struct ep_check_report *rep)
{
	dispatch_check(p, rep);
	return combine_check(p, rep);
}

static void both_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct ll_state *st = p;
	*alg = st->disp_alg + st->comb_alg;
	*wire = st->disp_wire + st->comb_wire;
}

/* --dump */

/* Writes every tensor of this rank as DIR/rank<N>/<name>.npy: the inputs,
 * the receive layout (rows past the counts zero, scales row-major: see
 * cli/ll_packed.h), combine_x (the expert outputs, rows past the counts
 * zero), combined_x and, in a layer with tp > 1, attn_tp_gathered_x.
 * 0 or -errno. */
static int ll_dump(void *p, const char *dir)
{
	struct ll_state *st = p;
	const struct ep_ll_config *c = &st->cfg;
	size_t T = (size_t)st->T, H = (size_t)c->hidden, K = (size_t)c->num_topk;
	size_t L = (size_t)c->num_experts / (size_t)c->num_ranks, RN = (size_t)c->num_ranks * (size_t)c->max_tokens;
	struct ep_ll_packed own;
	uint16_t *cx = calloc(L * RN * H + 1, 2);
	int rc = ep_ll_packed_init(&own, c, 1);
	rc = rc ? rc : cx ? 0 : -ENOMEM;
	if (!rc) {
		ep_ll_packed_put(&own, 0, &st->out);
		for (size_t e = 0; e < L; e++)
			memcpy(cx + e * RN * H, st->combine_x + e * RN * H, ep_ll_packed_rows(&own, 0, e) * H * 2);
		size_t sx[2] = {T, H}, sk[2] = {T, K}, sc[3] = {L, RN, H}, sa[2] = {0, H};
		rc = ep_rank_npy_write(dir, st->me, "x", EP_NPY_U2, sx, 2, st->x);
		rc = rc ? rc : ep_rank_npy_write(dir, st->me, "topk_idx", EP_NPY_I8, sk, 2, st->topk_idx);
		rc = rc ? rc : ep_rank_npy_write(dir, st->me, "topk_weights", EP_NPY_F4, sk, 2, st->topk_weights);
		rc = rc ? rc : ep_ll_packed_write(&own, dir, st->me, "packed_recv", 0);
		rc = rc ? rc : ep_rank_npy_write(dir, st->me, "combine_x", EP_NPY_U2, sc, 3, cx);
		rc = rc ? rc : ep_rank_npy_write(dir, st->me, "combined_x", EP_NPY_U2, sx, 2, st->combined_x);
		if (!rc && st->layer && st->attn.tp > 1) {
			sa[0] = ep_attn_gather_rows(&st->attn);
			rc = ep_rank_npy_write(dir, st->me, "attn_tp_gathered_x", EP_NPY_U2, sa, 2, st->attn.out);
		}
	}
	ep_ll_packed_fini(&own);
	free(cx);
	return rc;
}

/* Across nodes: every rank of the job meets before each run of an op
 * (untimed), so that iterations line up across nodes and per-iteration
 * maxima mean something; on one host nothing happens. */
static int ll_op_enter(void *p, const struct ep_op_desc *op, int index)
{
	struct ll_state *st = p;
	if (!st->nodes_job)
		return 0;
	st->op = index;
	st->op_kind = (enum ll_kind)op->tag;
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_ll_barrier(&st->coll);
}

/* Across nodes, after an op's timed loop: its figures for the node's report. */
static void ll_op_leave(void *p, const struct ep_op_desc *op, int index, uint64_t alg)
{
	struct ll_state *st = p;
	const struct ep_ll_figures *d = &st->coll.last_dispatch, *c = &st->coll.last_combine;
	enum ll_kind kind = (enum ll_kind)op->tag;
	uint64_t bytes[EP_MAX_NODES];
	if (st->nodes_job && kind == LL_KIND_LAYER && st->attn.net) { /* the attention group spans nodes */
		uint64_t wire = 0;
		for (int m = 0; m < st->net.ctx->nodes; m++)
			wire += bytes[m] = st->attn_net.net_bytes[m];
		ep_endpoint_figures(&st->net, index, alg, alg > wire ? alg - wire : 0, bytes);
		return;
	}
	if (!st->nodes_job || kind == LL_KIND_LAYER) /* the layer's phase stays in the node */
		return;
	for (int m = 0; m < st->net.ctx->nodes; m++)
		bytes[m] = (kind != LL_KIND_COMBINE ? d->net_bytes[m] : 0) +
			   (kind != LL_KIND_DISPATCH ? c->net_bytes[m] : 0);
	uint64_t nvl = (kind != LL_KIND_COMBINE ? st->disp_nvl : 0) + (kind != LL_KIND_DISPATCH ? st->comb_nvl : 0);
	ep_endpoint_figures(&st->net, index, alg, nvl, bytes);
}

/* A layer's attention-TP gather: after a combine (run here when the pass has none). */
static int attn_prepare(void *p)
{
	struct ll_state *st = p;
	int rc;
	if (st->combined_done)
		return 0;
	return (rc = combine_prepare(st)) ? rc : combine_run(st);
}

static int attn_run(void *p)
{
	return ep_attn_gather_run(&((struct ll_state *)p)->attn);
}

static int attn_check(void *p, struct ep_check_report *rep)
{
	ep_attn_gather_check(&((struct ll_state *)p)->attn, rep);
	return 0;
}

static void attn_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	struct ll_state *st = (struct ll_state *)p;
	ep_attn_gather_bytes(&st->attn, (size_t)st->T, alg, wire);
}

/* Descriptors: the --hook ops (send and receive phases) exist only with --hook. */
static const struct ep_op_desc ll_ops[] = {
	{.name = "dispatch", .mask = EP_OPS_DISPATCH, .tag = LL_KIND_DISPATCH, .run = dispatch_run,
	 .check = dispatch_check, .bytes = dispatch_bytes, .recv_rows = ll_recv_rows,
	 .outputs = dispatch_outputs, .receives = 1},
	{.name = "combine", .mask = EP_OPS_COMBINE, .tag = LL_KIND_COMBINE, .prepare = combine_prepare,
	 .run = combine_run, .check = combine_check, .bytes = combine_bytes, .outputs = combine_outputs},
	{.name = "dispatch+combine", .mask = EP_OPS_BOTH, .tag = LL_KIND_BOTH, .prepare = combine_prepare,
	 .run = both_run, .check = both_check, .bytes = both_bytes},
	{.name = "dispatch-send", .mask = EP_OPS_DISPATCH | EP_OPS_HOOK, .tag = LL_KIND_DISPATCH,
	 .run = dispatch_send, .after = dispatch_recv, .check = dispatch_check, .bytes = dispatch_bytes},
	{.name = "dispatch-recv", .mask = EP_OPS_DISPATCH | EP_OPS_HOOK, .tag = LL_KIND_DISPATCH,
	 .before = dispatch_send_landed, .run = dispatch_recv, .check = dispatch_check,
	 .bytes = dispatch_bytes},
	{.name = "combine-send", .mask = EP_OPS_COMBINE | EP_OPS_HOOK, .tag = LL_KIND_COMBINE,
	 .prepare = combine_prepare, .run = combine_send, .after = combine_recv, .check = combine_check,
	 .bytes = combine_bytes},
	{.name = "combine-recv", .mask = EP_OPS_COMBINE | EP_OPS_HOOK, .tag = LL_KIND_COMBINE,
	 .prepare = combine_prepare, .before = combine_send_landed, .run = combine_recv,
	 .check = combine_check, .bytes = combine_bytes},
	{.name = "attn_tp_gather", .mask = EP_OPS_COMBINE | EP_OPS_ATTN_TP, .tag = LL_KIND_LAYER, .prepare = attn_prepare,
	 .run = attn_run, .check = attn_check, .bytes = attn_bytes},
};

const struct ep_variant ep_low_latency_variant = {
	.name = "low-latency",
	.size = ll_size,
	.setup = ll_setup,
	.teardown = ll_teardown,
	.dump = ll_dump,
	.reseed = ll_reseed,
	.tensors = "packed_recv_x packed_recv_x_scales packed_recv_src_info packed_recv_count packed_recv_layout_range combined_x",
	.op_enter = ll_op_enter,
	.op_leave = ll_op_leave,
	.rows_per_expert = 1,
	.sliced_routing = 1,
	.nops = 8,
	.ops = ll_ops,
};

/* The command */

/* What DeepEP's low_latency_dispatch asserts, and our cast's own needs. */
static int ll_check(const struct ep_options *o, const struct ep_shape *s, char *err, size_t len)
{
	int N = o->num_max_dispatch_tokens, H = s->hidden;
	if (s->dtype == EP_DTYPE_INT8)
		snprintf(err, len, "--dtype int8 is for normal mode; low-latency dispatch sends bf16 or fp8");
	else if (o->round_scale && s->dtype != EP_DTYPE_FP8)
		snprintf(err, len, "--round-scale needs --dtype fp8 (it rounds FP8 scales), not %s", ep_dtype_name(s->dtype));
	else if (o->use_ue8m0 && !o->round_scale)
		snprintf(err, len, "--ue8m0 needs --round-scale (UE8M0 holds power-of-two scales only)");
	else if (o->use_ue8m0 && H % 512)
		snprintf(err, len, "--hidden %d is not a multiple of 512, which --ue8m0 needs (four scale bytes per int32)", H);
	else if (s->num_topk > 11)
		snprintf(err, len, "--num-topk %d exceeds DeepEP's limit of 11 for low-latency kernels", s->num_topk);
	else if (N && s->num_tokens > N)
		snprintf(err, len, "--num-tokens %d exceeds --num-max-dispatch-tokens-per-rank %d (DeepEP: x.size(0) <= num_max_dispatch_tokens_per_rank)",
			 s->num_tokens, N);
	else
		return 0;
	return -EP_EUSAGE;
}

/* Does this command line ask for a job across nodes? --nodes N > 1, or,
 * without --nodes, any other node option (--local-nodes, --node-rank,
 * --ranks-per-node, --master, --node-addr, --transport, --ib-dev,
 * --gid-index): the node count then comes from the environment (NNODES,
 * torchrun, mpirun, srun), as for internode. Anything else, --nodes 1
 * included, runs on this host. */
static int ll_across_nodes(const struct ep_options *o)
{
	static const char *const node_options[] = {"local-nodes", "node-rank", "ranks-per-node", "master",
						   "node-addr", "transport", "ib-dev", "gid-index"};
	if (ep_option_given(o, "nodes"))
		return o->nodes > 1;
	for (size_t i = 0; i < sizeof(node_options) / sizeof(node_options[0]); i++)
		if (ep_option_given(o, node_options[i]))
			return 1;
	return 0;
}

static void ll_describe(const struct ep_options *o, char *buf, size_t len)
{
	char n[16] = "tokens";
	if (o->num_max_dispatch_tokens)
		snprintf(n, sizeof(n), "%d", o->num_max_dispatch_tokens);
	snprintf(buf, len, "num_max_dispatch_tokens_per_rank=%s round_scale=%d ue8m0=%d zero_copy=%d hook=%d uneven_tokens=%d",
		 n, o->round_scale, o->use_ue8m0, o->zero_copy, o->hook, o->uneven_tokens);
}

static const struct ep_option_default ll_defaults[] = {
	{"num-tokens", "128"}, /* DeepEP's test_low_latency */
	{"num-experts", "288"},
	{NULL, NULL},
};

/* A layer with moe_tp > 1 runs its MoE-TP stage between the groups' low-latency collectives (cli/ll_layer.c). */
static const struct ep_variant *ll_variant_for(const struct ep_options *o)
{
	struct ep_parallel p;
	return ep_options_layer(o, &p) && p.v[EP_PAR_MOE_TP] > 1 ? &ep_ll_layer_variant : &ep_low_latency_variant;
}

const struct ep_command ep_cmd_low_latency = {
	.name = "low-latency",
	.help = "DeepEP low-latency dispatch/combine into per-expert buffers (shared memory; --nodes: TCP or verbs too)",
	.options = {"low-latency", EP_SCOPE_RUN | EP_SCOPE_LL | EP_SCOPE_NODES, ll_defaults},
	.variant = &ep_low_latency_variant,
	.variant_for = ll_variant_for,
	.across_nodes = ll_across_nodes,
	.check = ll_check,
	.describe = ll_describe,
};
