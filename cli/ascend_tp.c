/* ascend_tp.c - the variant `intranode --parallel ...,moe_tp=N --ep-semantics ascend` runs: Ascend's MoE-TP stage.
 *
 * parallel-semantics.md sections 3-5 with moe_tp > 1, one host, a2a mode.
 * World rank w = q moe_tp + g is EP rank q of MoE-EP group g (strided) and
 * member g of MoE-TP group q (contiguous). Every rank puts its attention-TP
 * slice into the layer; the ops, each timed and checked on its own:
 *   ep_dispatch     Ascend's dispatch (collectives/ascend.h) inside group g,
 *                   over group g's own slice of the arena;
 *   moe_tp_gather   the MoE-TP count exchange (each member publishes its
 *                   rows, the addresses of its expand_x and dynamic_scales,
 *                   its ep_recv_counts; a barrier), then the all-gather:
 *                   block b from member (g + b) % moe_tp, block 0 its own;
 *                   tp_recv_counts and expert_token_nums follow;
 *   moe_tp_reduce   every member's stand-in (of its world rank) on every
 *                   gathered row (untimed, into the shared partials), then
 *                   each member sums its own rows' partials in rotation
 *                   order from itself, one rounding (collectives/group.h);
 *   ep_combine      Ascend's combine inside group g on the reduced rows;
 *   attn_tp_gather  the attention-TP group's combined slices put together.
 * Shared experts (section 4's layout inside each MoE-EP group: EP ranks
 * [0, S_r) host them) ride the same stage: the members of a MoE-TP group
 * are all EP rank q of their groups, so all of them are shared-expert
 * ranks or none; a shared rank's block has R counts and one local expert
 * (its shared expert), each member applies its stand-in (local expert 0)
 * to every gathered row, and the reduce sums the partials of the shared
 * rows as of any other (**choice**: the spec's MoE-TP all-gather and reduce
 * name no exception for shared rows, so a shared expert is sharded over
 * MoE-TP like a routed one). With comm_quant_mode 2 the combine quantises
 * the reduced rows (section 5: the reduce-scatter is step 1, the int8 EP
 * return step 4), so the partials never travel as int8.
 * Every collective here (Ascend's, the group ones) waits at node-wide
 * barriers, a fixed number per op whatever the data (Ascend's dispatch:
 * two, combine: two; the gather: one for the counts, two around the
 * copies; the reduce and the attention gather: two each), so all groups
 * stay in step; only an error return leaves early, and then the run ends. Arena: moe_tp group arenas | W count-exchange slots | W partials
 * [moe_tp A][H] | the attention gather's slots.
 * Across nodes (a node job) the MoE-EP group g is Ascend's collective
 * over the network between its own ranks; with moe_tp a multiple of the
 * ranks of a node P (MoE-TP groups of whole nodes) the gather and the
 * reduce also take the blocks and partials of members on other nodes
 * from cli/ascend_tpnet.h (after the node's count exchange, before the
 * copies), the node's members from shared memory as on one host. An
 * attention-TP group of whole nodes (tp a multiple of P) gathers over the
 * network too (cli/attn_gather.h's network half, its ready and exchange a
 * signal to and from each of the group's members elsewhere). All three
 * share the endpoint and one count of signals per peer (st->ledger, which
 * the collective uses too: ep_ascend_net_ledger), as their peers overlap.
 */
#include "cli/ascend_tp.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ascend.h"
#include "cli/ascend_tpnet.h"
#include "cli/attn_gather.h"
#include "cli/bench.h"
#include "cli/cluster/endpoint.h"
#include "cli/moe_layer.h"
#include "collectives/error.h"
#include "collectives/group.h"
#include "collectives/numeric.h"
#include "collectives/transport/transport.h"
#include "reference/ascend_tp_ref.h"
#include "reference/moe_layer_ref.h"
#include "reference/moe_slice.h"
#include "reports/npy.h"

enum atp_stage { ATP_NONE, ATP_DISPATCHED, ATP_GATHERED, ATP_REDUCED, ATP_COMBINED };

/* Op tags: which network figures an op's are (the collective's; the MoE-TP ops' from cli/ascend_tpnet.h when
 * their groups hold whole nodes; the attention op stays in a node). OP_GATHER, OP_REDUCE: atp_ops indices 1, 2. */
enum { OP_DISPATCH, OP_COMBINE, OP_NODE, OP_GATHER, OP_REDUCE };

/* Transport regions across nodes: the collective's (0), an attention gather's, cli/ascend_tpnet.h's (3). */
enum { ATTN_RECV = 1, ATTN_SLOTS = 2 };

/* A member's part of the count exchange (its slot in the arena). */
struct atp_pub {
	uint64_t rows;        /* n_own: rows its EP dispatch received */
	uint64_t x, scales;   /* addresses of its expand_x, dynamic_scales (the arena maps alike in every rank) */
	int32_t counts[];     /* its ep_recv_counts [R L] */
};

/* The layer's sizes, alike in the launcher and every rank. */
struct atp_geom {
	int W, tp, moe_tp, moe_ep, L;   /* L: routed experts per MoE rank */
	int P;                     /* ranks of the arena: a node's (node job), else W */
	struct ep_ascend_params p; /* one EP group's */
	size_t A;                  /* rows one EP rank receives at most (with the run's routing) */
	size_t A_shape;            /* Ascend's A: BS moe_ep min(L, K), the dump's shapes */
	size_t gbytes, pub_bytes, part_bytes, attn_bytes;
};

struct atp_state {
	struct ep_bench_env *env;
	struct atp_geom geo;
	int me, g, q;
	int nl, nc;                        /* this EP rank's local experts and ep_recv_counts: L, R L; a shared-expert rank 1, R */
	int base;                          /* world rank of the arena's first rank (node * P) */
	struct ep_shape eshape;            /* R = moe_ep, BS = the longest slice */
	struct ep_slices sl;
	struct ep_group_arrays *views;     /* [moe_tp] */
	struct ep_routing *routings;       /* [moe_tp] group i's routing */
	struct ep_moe_tp_expert *experts;  /* [moe_tp] group i's MoE-TP stand-in (reference) */
	struct ep_ascend_ref *refs;        /* [moe_tp] group i's reference at EP rank q */
	int nrefs;
	struct ep_ascend coll;
	int T;
	uint16_t *x, *shared_x;
	float *smooth;
	struct ep_ascend_out out;
	/* the MoE-TP stage */
	char *pubs;                        /* shared [W][pub_bytes] */
	uint16_t *partials;                /* shared [W][moe_tp A][H] */
	size_t *rows_of;                   /* [moe_tp] rows of member i */
	size_t grows;
	uint8_t *gx;                       /* [moe_tp A][row bytes] */
	float *gscales;                    /* [moe_tp A] */
	int32_t *gcounts;                  /* [moe_tp][nc] */
	int32_t *tp_counts;                /* [moe_tp] */
	int64_t *token_nums;               /* [nl] */
	uint16_t *reduced;                 /* [A][H] the combine's expand_x */
	struct ep_attn_gather attn;        /* its slots hold combine's x */
	uint64_t self_rows[2], combine_rows;
	uint64_t node_rows[2];             /* of the EP rows, those within this rank's node: dispatch, combine */
	enum atp_stage stage;
	/* a rank of a node job (env->variant_ctx set): EP group g's ranks of other nodes over the network */
	int nodes_job;
	struct ep_endpoint net;
	int tpnet;                         /* MoE-TP group of whole nodes (moe_tp a multiple of P): members elsewhere over `tpn` */
	struct ep_atpnet tpn;
	uint32_t *ledger;                  /* [W] signals sent to each rank over the endpoint (every user's) */
	struct ep_attn_net attn_net;       /* an attention-TP group of whole nodes (tp a multiple of P) */
	uint16_t *attn_recv;               /* [tp][slot_rows][H], region ATTN_RECV */
	int64_t attn_t0;                   /* the attention gather's start, for the arrival figures */
	size_t *firsts;                    /* [moe_tp] where owner p's rows start in this member's gathered order */
};

static void geometry(const struct ep_run *run, struct atp_geom *g)
{
	const struct ep_parallel *par = &run->parallel;
	*g = (struct atp_geom){.W = run->shape.num_ranks, .tp = par->v[EP_PAR_TP], .moe_tp = par->v[EP_PAR_MOE_TP],
			       .moe_ep = par->v[EP_PAR_MOE_EP]};
	ep_ascend_run_params(run, &g->p);
	g->p.num_ranks = g->moe_ep;
	int P = run->cfg->ranks_per_node;
	g->P = P > 0 && P < g->W ? P : g->W;
	/* a node holds P / moe_tp ranks of each EP group, or one when MoE-TP groups hold whole nodes */
	g->p.ranks_per_node = g->P >= g->W ? 0 : g->P > g->moe_tp ? g->P / g->moe_tp : 1;
	g->L = ep_ascend_local_experts(&g->p);
	g->A = g->A_shape = ep_ascend_rank_capacity(&g->p, g->moe_ep - 1);
	if (g->p.shared_ranks && ep_ascend_rank_capacity(&g->p, 0) > g->A) /* a shared-expert rank may receive more */
		g->A = g->A_shape = ep_ascend_rank_capacity(&g->p, 0);
	if (run->capacity > 0 && run->capacity < g->A) /* atp_size's: the rows the routing gives at most */
		g->A = run->capacity;
	size_t H = (size_t)g->p.hidden, RL = (size_t)g->moe_ep * (size_t)g->L;
	g->gbytes = ep_ascend_arena_bytes(&g->p);
	g->pub_bytes = ep_align_up(sizeof(struct atp_pub) + 4 * RL, 64);
	g->part_bytes = ep_align_up((size_t)g->moe_tp * g->A * H * 2, EP_PAGE);
	g->attn_bytes = ep_attn_gather_slot_bytes(g->P, (size_t)run->shape.num_tokens, g->p.hidden);
}

static size_t arena_bytes(const struct atp_geom *g)
{
	return (size_t)g->moe_tp * g->gbytes + ep_align_up((size_t)g->P * g->pub_bytes, EP_PAGE) +
	       (size_t)g->P * g->part_bytes + g->attn_bytes;
}

static void free_inputs(struct atp_state *st)
{
	for (int i = 0; i < st->nrefs; i++)
		ep_ascend_ref_fini(&st->refs[i]);
	for (int i = 0; st->views && i < st->geo.moe_tp; i++)
		ep_group_arrays_fini(&st->views[i]);
	ep_slices_fini(&st->sl);
	memset(&st->sl, 0, sizeof(st->sl));
	free(st->views), free(st->routings), free(st->experts), free(st->refs);
	free(st->x), free(st->shared_x), free(st->smooth);
	st->views = NULL, st->routings = NULL, st->experts = NULL, st->refs = NULL;
	st->x = st->shared_x = NULL, st->smooth = NULL;
	st->nrefs = 0, st->stage = ATP_NONE;
}

static void atp_teardown(void *p)
{
	struct atp_state *st = p;
	if (!st)
		return;
	ep_endpoint_close(&st->net); /* first: a failed rank leaves at once */
	ep_atpnet_fini(&st->tpn);
	free(st->firsts), free(st->ledger), free(st->attn_recv);
	free_inputs(st);
	ep_ascend_fini(&st->coll);
	free(st->rows_of), free(st->gx), free(st->gscales), free(st->gcounts), free(st->tp_counts);
	free(st->token_nums), free(st->reduced), free(st->attn.out);
	free(st);
}

/* Group i's view, routing, MoE-TP expert and reference at EP rank q. */
static int group_ref(struct atp_state *st, const struct ep_run *run, int i)
{
	int rc = ep_slices_group(&st->sl, i, &st->views[i]);
	if (rc)
		return rc;
	st->routings[i] = run->routing;
	st->routings[i].group = &st->views[i].view;
	st->routings[i].group_owned = NULL;
	ep_moe_tp_expert_init(&st->experts[i], run->routing.payload, st->geo.moe_tp, i);
	struct ep_ascend_inputs in;
	ep_ascend_run_inputs(run, &in);
	in.routing = &st->routings[i];
	in.expert = &st->experts[i].fn;
	if ((rc = ep_ascend_ref_init(&st->refs[i], &st->geo.p, &st->eshape, &in, st->q)))
		return rc;
	st->nrefs = i + 1;
	return 0;
}

/* Rows that stay on this EP rank: its dispatch rows from itself, and its
 * tokens' slots whose expert it holds (combine, routed and shared); and
 * those within its node (P / moe_tp EP ranks of the group). */
static int ep_node(const struct atp_state *st, int64_t k)
{
	return (int)((k * st->geo.moe_tp + st->g) / st->geo.P);
}

static void count_self_rows(struct atp_state *st)
{
	const struct ep_ascend_ref *ref = &st->refs[st->g];
	int K = st->geo.p.num_topk, L = st->geo.L, n = ep_node(st, st->q), Sr = st->geo.p.shared_ranks;
	int Sn = st->geo.p.shared_experts, rpse = Sn ? Sr / Sn : 1;
	const int64_t *ids = ep_ascend_ref_ids(ref, st->q);
	memset(st->self_rows, 0, sizeof(st->self_rows));
	memset(st->node_rows, 0, sizeof(st->node_rows));
	st->combine_rows = 0;
	for (size_t m = 0; m < ref->num_recv; m++) {
		st->self_rows[0] += ref->rows[3 * m] == st->q;
		st->node_rows[0] += ep_node(st, ref->rows[3 * m]) == n;
	}
	for (size_t f = 0; f < (size_t)st->T * (size_t)K; f++) {
		st->combine_rows += ids[f] >= 0;
		st->self_rows[1] += ids[f] >= 0 && Sr + ids[f] / L == st->q;
		st->node_rows[1] += ids[f] >= 0 && ep_node(st, Sr + ids[f] / L) == n;
	}
	for (int j = 0; j < Sn; j++) { /* every token's shared expert j on EP rank q % rpse + j rpse */
		int d = st->q % rpse + j * rpse;
		st->combine_rows += (uint64_t)st->T;
		st->self_rows[1] += d == st->q ? (uint64_t)st->T : 0;
		st->node_rows[1] += ep_node(st, d) == n ? (uint64_t)st->T : 0;
	}
}

/* The most rows any EP rank of any group receives with the run's routing
 * (group i's reference at EP rank 0 holds every source's expert ids):
 * routed rows on EP rank S_r + e / L, every token once to each shared
 * expert j on EP rank s % rpse + j rpse. */
static int routed_rows(const struct ep_run *run, const struct atp_geom *g, size_t *most)
{
	struct atp_state st = {.geo = *g};
	int T_d = run->cfg->tokens_per_dp ? run->cfg->tokens_per_dp : run->attn_tokens * g->tp, rc;
	if ((rc = ep_slices_init(&st.sl, g->W, g->tp, g->moe_tp, g->moe_ep, (enum ep_slice_pad)run->cfg->sp_pad, T_d,
				 run->routing.uneven_tokens, run->cfg->seed)))
		return rc;
	st.eshape = run->shape;
	st.eshape.num_ranks = g->moe_ep;
	size_t n = (size_t)g->moe_tp, R = (size_t)g->moe_ep, K = (size_t)g->p.num_topk;
	int Sr = g->p.shared_ranks, Sn = g->p.shared_experts, rpse = Sn ? Sr / Sn : 1;
	size_t *rows = calloc(R, sizeof(size_t));
	st.views = calloc(n, sizeof(*st.views));
	st.routings = calloc(n, sizeof(*st.routings));
	st.experts = calloc(n, sizeof(*st.experts));
	st.refs = calloc(n, sizeof(*st.refs));
	rc = rows && st.views && st.routings && st.experts && st.refs ? 0 : -ENOMEM;
	*most = 1;
	for (int i = 0; !rc && i < g->moe_tp; i++) {
		if ((rc = group_ref(&st, run, i)))
			break;
		memset(rows, 0, R * sizeof(size_t));
		for (size_t s = 0; s < R; s++) {
			const int64_t *ids = ep_ascend_ref_ids(&st.refs[i], (int)s);
			for (size_t f = 0; f < (size_t)st.refs[i].tokens[s] * K; f++)
				rows[ids[f] >= 0 ? Sr + ids[f] / g->L : 0] += ids[f] >= 0;
			for (int j = 0; j < Sn; j++)
				rows[(int)s % rpse + j * rpse] += (size_t)st.refs[i].tokens[s];
		}
		for (size_t d = 0; d < R; d++)
			*most = rows[d] > *most ? rows[d] : *most;
	}
	free(rows);
	free_inputs(&st);
	return rc;
}

static int atp_size(struct ep_run *run, size_t *arena, size_t *rank_bytes)
{
	struct atp_geom g;
	run->capacity = 0;
	geometry(run, &g);
	size_t most = g.A;
	int rc = layer_any_routing(run) ? 0 : routed_rows(run, &g, &most); /* routing anew: room for any */
	if (rc)
		return rc;
	run->capacity = most;
	geometry(run, &g);
	double T = run->shape.num_tokens, H = g.p.hidden, K = g.p.num_topk, M = g.moe_tp, R = g.moe_ep;
	double A = (double)g.A, rb = (double)ep_ascend_row_bytes(&g.p);
	double b = T * H * 2 * 3 + M * A * (rb + 8 + H * 2) + A * H * 2 + M * (R * T * K * 12 + A * 12 + 64) +
		   8 * (double)(g.p.num_experts + 1) * H + g.tp * T * H * 2 + (double)ep_ascend_ctx_bytes(&g.p);
	*arena = arena_bytes(&g);
	*rank_bytes = b < 0x1p60 ? (size_t)b : (size_t)1 << 60;
	return 0;
}

/* This rank's slices, references, inputs and collective for env->run. */
static int build(struct atp_state *st)
{
	const struct ep_run *run = st->env->run;
	const struct atp_geom *g = &st->geo;
	int tp = g->tp, T_d = run->cfg->tokens_per_dp ? run->cfg->tokens_per_dp : run->attn_tokens * tp, rc;
	if ((rc = ep_slices_init(&st->sl, g->W, tp, g->moe_tp, g->moe_ep, (enum ep_slice_pad)run->cfg->sp_pad, T_d,
				 run->routing.uneven_tokens, run->cfg->seed)))
		return rc;
	size_t n = (size_t)g->moe_tp;
	st->views = calloc(n, sizeof(*st->views));
	st->routings = calloc(n, sizeof(*st->routings));
	st->experts = calloc(n, sizeof(*st->experts));
	st->refs = calloc(n, sizeof(*st->refs));
	if (!st->views || !st->routings || !st->experts || !st->refs)
		return -ENOMEM;
	for (int i = 0; i < g->moe_tp; i++)
		if ((rc = group_ref(st, run, i)))
			return rc;
	const struct ep_routing *r = &st->routings[st->g];
	size_t T = (size_t)(st->T = st->refs[st->g].tokens[st->q]), H = (size_t)g->p.hidden;
	size_t S = (size_t)(g->p.shared_experts + g->p.num_experts); /* smoothing rows: S_n + E */
	st->x = malloc(2 * T * H + 2);
	if (run->cfg->smooth_scales && g->p.quant && (st->smooth = malloc(4 * S * H + 4)))
		ep_ascend_gen_smooth(run->cfg->seed, (int)S, (int)H, st->smooth);
	if (run->shape.num_bias > 0 && (st->shared_x = malloc(2 * T * H + 2)))
		for (size_t t = 0; t < T; t++)
			ep_gen_bf16_row(run->cfg->seed, r, EP_STREAM_BIAS0, st->q, (int64_t)t, (int)H, st->shared_x + t * H);
	if (!st->x || (run->cfg->smooth_scales && g->p.quant && !st->smooth) || (run->shape.num_bias > 0 && !st->shared_x))
		return -ENOMEM;
	for (size_t t = 0; t < T; t++)
		ep_gen_bf16_row(run->cfg->seed, r, EP_STREAM_X, st->q, (int64_t)t, (int)H, st->x + t * H);
	count_self_rows(st);
	return 0;
}

/* Appends world rank w to peers[0, n) unless it is on me's node or there already; returns the new count. */
static int add_peer(int *peers, int n, int w, int me, int P)
{
	for (int i = 0; i < n; i++)
		if (peers[i] == w)
			return n;
	if (w / P != me / P)
		peers[n++] = w;
	return n;
}

/* One signal to every member of the attention-TP group on another node,
 * theirs awaited (the ledger's counts); arrival (if not NULL) records when
 * each node's came. A failure: one line naming rank, node, phase, peer. */
static int attn_round(struct atp_state *st, int64_t *arrival)
{
	int tp = st->geo.tp, P = st->geo.P, rc = 0, w = -1;
	for (int i = 1; i < tp && !rc; i++) {
		w = st->attn.d * tp + (st->me % tp + i) % tp;
		if (w / P != st->me / P && !(rc = ep_transport_signal(&st->net.net, w)))
			st->ledger[w]++;
	}
	for (int i = 1; i < tp && !rc; i++) {
		w = st->attn.d * tp + (st->me % tp + i) % tp;
		if (w / P == st->me / P)
			continue;
		int64_t t0 = ep_now_ns();
		rc = ep_transport_wait(&st->net.net, w, st->ledger[w]);
		st->env->waiter->wait_ns += ep_now_ns() - t0;
		if (!rc && arrival)
			arrival[w / P] = ep_now_ns() - st->attn_t0;
	}
	if (rc)
		ep_sync_fail(st->env->waiter, rc, "rank %d (node %d) in phase %s: %s", st->me, st->me / P,
			     atomic_load(&st->env->waiter->sync->ctl[st->env->waiter->rank].phase), st->net.net.error);
	return rc;
}

/* The attention gather's `ready`: every member elsewhere read its last receive area. */
static int attn_ready(void *p)
{
	struct atp_state *st = p;
	st->attn_t0 = ep_now_ns();
	return attn_round(st, NULL);
}

/* Its puts end with one signal to every member elsewhere, theirs awaited: their rows arrived. */
static int attn_exchange(void *p)
{
	struct atp_state *st = p;
	int64_t ns[EP_MAX_NODES] = {0};
	int rc = attn_round(st, ns);
	if (!rc)
		ep_endpoint_arrived(&st->net, 4, ns); /* attn_tp_gather: atp_ops index 4 */
	return rc;
}

/* An attention-TP group of whole nodes in a node job: the receive area, the
 * gather's network half, its regions (before connecting). */
static int attn_regions(struct atp_state *st)
{
	struct ep_attn_gather *a = &st->attn;
	size_t bytes = ep_attn_gather_recv_bytes(a->tp, a->slot_rows, a->hidden);
	int rc;
	if (a->tp <= a->P)
		return 0;
	if (posix_memalign((void **)&st->attn_recv, EP_PAGE, bytes))
		return ep_endpoint_fail(&st->net, -ENOMEM, "attention gather buffers");
	memset(st->attn_recv, 0, bytes);
	st->attn_net = (struct ep_attn_net){.t = &st->net.net, .me = st->me, .recv_id = ATTN_RECV, .source_id = ATTN_SLOTS,
					    .recv = st->attn_recv, .ready = attn_ready, .exchange = attn_exchange, .ctx = st};
	a->net = &st->attn_net;
	if ((rc = ep_transport_reg_mem(&st->net.net, ATTN_RECV, st->attn_recv, bytes)) ||
	    (rc = ep_transport_reg_mem(&st->net.net, ATTN_SLOTS, a->slots, st->geo.attn_bytes)))
		return ep_endpoint_fail(&st->net, rc, "attention gather buffers");
	return 0;
}

/* EP group g's collective over its slice of the arena, once (reseeds keep
 * it: its buffers take any routing). Across nodes first the endpoint, then
 * the collective (which registers its area), then the mesh of the group's
 * ranks on other nodes: world rank q moe_tp + g for EP rank q. */
static int atp_coll(struct atp_state *st)
{
	const struct atp_geom *g = &st->geo;
	struct ep_bench_env *env = st->env;
	int rc, peers[EP_MAX_NODES * EP_MAX_LOCAL];
	if (st->nodes_job && (rc = ep_endpoint_open(&st->net, env, g->W)))
		return rc;
	if ((rc = ep_ascend_init(&st->coll, &g->p, st->q, (char *)env->arena + (size_t)st->g * g->gbytes, env->waiter)))
		return st->nodes_job ? ep_endpoint_fail(&st->net, rc, "Ascend buffers") : rc;
	if (!st->nodes_job)
		return 0;
	ep_ascend_net_group(&st->coll, g->moe_tp, st->g);
	if (!(st->ledger = calloc((size_t)g->W, sizeof(uint32_t))))
		return ep_endpoint_fail(&st->net, -ENOMEM, "Ascend buffers");
	ep_ascend_net_ledger(&st->coll, st->ledger);
	if ((rc = ep_ascend_attach_net(&st->coll, &st->net.net)))
		return ep_endpoint_fail(&st->net, rc, "Ascend buffers");
	int n = ep_ascend_peers(&st->coll, peers);
	if (st->tpnet) { /* the MoE-TP group's members on other nodes too (never in the MoE-EP group) */
		if ((rc = ep_atpnet_init(&st->tpn, &st->net.net, env->waiter, st->ledger, st->me, g->moe_tp, g->P, g->A,
					 ep_ascend_row_bytes(&g->p), (size_t)st->nc, (size_t)g->p.hidden, g->p.quant)))
			return ep_endpoint_fail(&st->net, rc, "MoE-TP buffers");
		n += ep_atpnet_peers(&st->tpn, peers + n);
	}
	if ((rc = attn_regions(st)))
		return rc;
	for (int i = 0; st->attn.net && i < g->tp; i++) /* the attention-TP group's members elsewhere, once each */
		n = add_peer(peers, n, st->attn.d * g->tp + i, st->me, g->P);
	return ep_endpoint_connect(&st->net, peers, n, "the ranks of the MoE-EP, MoE-TP and attention-TP groups on other nodes");
}

static int slice_len(void *p, int r)
{
	return ep_slice_len(&((struct atp_state *)p)->sl, r);
}

/* World rank r's combined row t: group r % moe_tp's reference, EP rank r / moe_tp. */
static int combined_row(void *p, int r, int t, uint16_t *want)
{
	struct atp_state *st = p;
	return ep_ascend_ref_combined_row(&st->refs[r % st->geo.moe_tp], r / st->geo.moe_tp, t, want);
}

static int private_buffers(struct atp_state *st)
{
	const struct atp_geom *g = &st->geo;
	size_t M = (size_t)g->moe_tp, H = (size_t)g->p.hidden, RL = (size_t)g->moe_ep * (size_t)g->L;
	st->rows_of = calloc(M, sizeof(size_t));
	st->firsts = calloc(M, sizeof(size_t));
	st->gx = malloc(M * g->A * ep_ascend_row_bytes(&g->p) + 1);
	st->gscales = calloc(M * g->A + 1, sizeof(float));
	st->gcounts = calloc(M * RL + 1, sizeof(int32_t));
	st->tp_counts = calloc(M, sizeof(int32_t));
	st->token_nums = calloc((size_t)g->L + 1, sizeof(int64_t));
	st->reduced = malloc(2 * g->A * H + 2);
	st->attn.out = malloc(2 * ((size_t)g->tp * st->attn.slot_rows * H + 1));
	return st->rows_of && st->firsts && st->gx && st->gscales && st->gcounts && st->tp_counts && st->token_nums && st->reduced &&
	       st->attn.out ? 0 : -ENOMEM;
}

static int atp_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	struct atp_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->nodes_job = env->variant_ctx != NULL;
	st->tpnet = st->nodes_job && run->parallel.v[EP_PAR_MOE_TP] > run->cfg->ranks_per_node;
	env->waiter->traffic = NULL; /* per-pair rows are counted in EP-group ranks, not the world's: not kept */
	geometry(run, &st->geo);
	const struct atp_geom *g = &st->geo;
	st->me = env->rank, st->g = st->me % g->moe_tp, st->q = st->me / g->moe_tp, st->base = st->me / g->P * g->P;
	st->nl = st->q < g->p.shared_ranks ? 1 : g->L;
	st->nc = st->nl * g->moe_ep;
	st->eshape = run->shape;
	st->eshape.num_ranks = g->moe_ep;
	char *at = (char *)env->arena + (size_t)g->moe_tp * g->gbytes;
	st->pubs = at;
	at += ep_align_up((size_t)g->P * g->pub_bytes, EP_PAGE);
	st->partials = (uint16_t *)at;
	at += (size_t)g->P * g->part_bytes;
	st->attn = (struct ep_attn_gather){.waiter = env->waiter, .tp = g->tp, .d = st->me / g->tp, .P = g->P,
					   .hidden = g->p.hidden, .slot_rows = (size_t)run->shape.num_tokens,
					   .slots = (uint16_t *)at, .len = slice_len, .expected = combined_row, .ctx = st};
	int rc = private_buffers(st);
	if (!rc)
		rc = build(st);
	if (!rc)
		rc = atp_coll(st);
	if (rc) {
		atp_teardown(st);
		return rc;
	}
	*out = st;
	return 0;
}

static int atp_reseed(void *p)
{
	struct atp_state *st = p;
	free_inputs(st);
	return build(st);
}

static struct atp_pub *pub_of(const struct atp_state *st, int w)
{
	return (struct atp_pub *)(st->pubs + (size_t)(w - st->base) * st->geo.pub_bytes);
}

static uint16_t *partials_of(const struct atp_state *st, int w)
{
	return (uint16_t *)((char *)st->partials + (size_t)(w - st->base) * st->geo.part_bytes);
}

static uint16_t *combine_x(const struct atp_state *st)
{
	return ep_attn_gather_slot(&st->attn, st->me);
}

/* ---- ep_dispatch --------------------------------------------------------- */

static int dispatch_once(struct atp_state *st)
{
	struct ep_ascend_in in = {st->T, st->x, ep_ascend_ref_ids(&st->refs[st->g], st->q), st->smooth};
	int rc = ep_ascend_dispatch(&st->coll, &in, &st->out);
	st->stage = rc ? ATP_NONE : ATP_DISPATCHED;
	return rc;
}

static int dispatch_run(void *p)
{
	return dispatch_once(p);
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct atp_state *st = p;
	ep_ascend_ref_check_dispatch(&st->refs[st->g], &st->out, rep);
	return 0;
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct atp_state *st = p;
	uint64_t row = ep_ascend_row_bytes(&st->geo.p) + (st->geo.p.quant ? 4 : 0), n = st->refs[st->g].num_recv;
	*alg = n * row;
	*wire = (n - st->self_rows[0]) * row;
}

static uint64_t dispatch_recv_rows(const void *p)
{
	const struct atp_state *st = p;
	return st->refs[st->g].num_recv;
}

/* Appends a view (writable memory behind a const output). */
static int add_view(struct ep_tensor_view *v, int n, int max, const char *name, const void *base, size_t rows,
		    size_t row_bytes)
{
	if (n < max && base)
		v[n++] = (struct ep_tensor_view){name, (uint8_t *)(uintptr_t)base, rows, row_bytes};
	return n;
}

static int dispatch_outputs(void *p, struct ep_tensor_view *v, int max)
{
	const struct atp_state *st = p;
	const struct ep_ascend_out *o = &st->out;
	int n = add_view(v, 0, max, "expand_x", o->expand_x, o->num_recv, ep_ascend_row_bytes(&st->geo.p));
	n = add_view(v, n, max, "dynamic_scales", o->dynamic_scales, o->num_recv, 4);
	n = add_view(v, n, max, "assist_info_for_combine", o->assist_info, o->num_recv, 12);
	return add_view(v, n, max, "ep_recv_counts", o->ep_recv_counts, 1, 4 * (size_t)o->num_counts);
}

/* ---- moe_tp_gather ------------------------------------------------------- */

static void publish(struct atp_state *st)
{
	struct atp_pub *me = pub_of(st, st->me);
	me->rows = st->out.num_recv;
	me->x = (uint64_t)(uintptr_t)st->out.expand_x;
	me->scales = (uint64_t)(uintptr_t)st->out.dynamic_scales;
	memcpy(me->counts, st->out.ep_recv_counts, 4 * (size_t)st->out.num_counts);
}

/* expert_token_nums over every block, from the gathered ep_recv_counts:
 * per local expert the rows of every block (counts), or their prefix. */
static void token_nums(struct atp_state *st)
{
	int L = st->nl, R = st->geo.moe_ep;
	for (int el = 0; el < L; el++) {
		st->token_nums[el] = 0;
		for (int b = 0; b < st->geo.moe_tp; b++) {
			const int32_t *c = st->gcounts + (size_t)b * R * L;
			st->token_nums[el] += c[el * R + R - 1] - (el ? c[el * R - 1] : 0);
		}
		if (el && st->geo.p.counts_prefix)
			st->token_nums[el] += st->token_nums[el - 1];
	}
}

/* Member i's published rows: its slot in the node's memory, or the block
 * its node put here (a MoE-TP group of whole nodes). */
static struct ep_atpnet_block member_block(const struct atp_state *st, int i)
{
	if (st->tpnet && ep_atpnet_remote(&st->tpn, i))
		return ep_atpnet_block(&st->tpn, i);
	const struct atp_pub *peer = pub_of(st, st->q * st->geo.moe_tp + i);
	return (struct ep_atpnet_block){(size_t)peer->rows, (const uint8_t *)(uintptr_t)peer->x,
					(const float *)(uintptr_t)peer->scales, peer->counts};
}

static int gather_run(void *p)
{
	struct atp_state *st = p;
	const struct atp_geom *g = &st->geo;
	int M = g->moe_tp, quant = g->p.quant, nt = quant ? 3 : 2, rc;
	size_t bytes[3] = {ep_ascend_row_bytes(&g->p), quant ? 4 : 4 * (size_t)st->nc, 4 * (size_t)st->nc};
	void *outs[3] = {st->gx, quant ? (void *)st->gscales : (void *)st->gcounts, st->gcounts};
	struct ep_group_piece pieces[M * 3];
	publish(st);
	ep_set_phase(st->env->waiter, "moe_tp_gather.counts");
	if ((rc = ep_barrier(st->env->waiter))) /* every member's rows and counts are published */
		return rc;
	ep_set_phase(st->env->waiter, "moe_tp_gather.net");
	if (st->tpnet && (rc = ep_atpnet_gather(&st->tpn, st->out.num_recv, st->out.expand_x, st->out.dynamic_scales,
						 st->out.ep_recv_counts)))
		return st->stage = ATP_NONE, rc;
	if (st->tpnet)
		ep_endpoint_arrived(&st->net, 1, st->tpn.arrival[0]);
	st->grows = 0;
	for (int b = 0; b < M; b++) {
		int i = (st->g + b) % M;
		struct ep_atpnet_block m = member_block(st, i);
		/* never past the buffers (only a damaged count gets here: the check reports it) */
		size_t rows = m.rows <= g->A ? m.rows : g->A;
		st->rows_of[i] = rows;
		st->tp_counts[i] = (int32_t)rows;
		pieces[b * nt] = (struct ep_group_piece){m.x, rows};
		if (quant)
			pieces[b * nt + 1] = (struct ep_group_piece){m.scales, rows};
		pieces[b * nt + nt - 1] = (struct ep_group_piece){m.counts, 1};
		st->grows += rows;
	}
	ep_set_phase(st->env->waiter, "moe_tp_gather");
	if ((rc = ep_group_gather(st->env->waiter, pieces, M, nt, bytes, outs)))
		return st->stage = ATP_NONE, rc;
	token_nums(st);
	st->stage = ATP_GATHERED;
	return 0;
}

static int gather_prepare(void *p)
{
	struct atp_state *st = p;
	return st->stage < ATP_DISPATCHED ? dispatch_once(st) : 0;
}

static int gather_check(void *p, struct ep_check_report *rep)
{
	struct atp_state *st = p;
	struct ep_ascend_tp_out a = {st->grows, st->gx, st->geo.p.quant ? st->gscales : NULL, st->gcounts,
				     st->tp_counts, st->token_nums};
	ep_ascend_tp_ref_check_gather(st->refs, st->geo.moe_tp, st->g, &a, rep);
	return 0;
}

static void gather_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct atp_state *st = p;
	uint64_t row = ep_ascend_row_bytes(&st->geo.p) + (st->geo.p.quant ? 4 : 0);
	*alg = st->grows * row;
	*wire = (st->grows - st->rows_of[st->g]) * row;
}

static int gather_outputs(void *p, struct ep_tensor_view *v, int max)
{
	const struct atp_state *st = p;
	int n = add_view(v, 0, max, "moe_tp_gathered_x", st->gx, st->grows, ep_ascend_row_bytes(&st->geo.p));
	return add_view(v, n, max, "tp_recv_counts", st->tp_counts, 1, 4 * (size_t)st->geo.moe_tp);
}

/* ---- moe_tp_reduce ------------------------------------------------------- */

/* The local expert of gathered row m (block b starts at `first`), from
 * the block's ep_recv_counts, as an expert kernel would find it. */
static int row_expert(const struct atp_state *st, int b, size_t m)
{
	int L = st->nl, R = st->geo.moe_ep;
	const int32_t *c = st->gcounts + (size_t)b * R * L;
	for (int el = 0; el < L; el++)
		if ((int64_t)m < c[el * R + R - 1])
			return el;
	return L - 1; /* counts that do not cover the rows: the gather's check says so */
}

/* This member's stand-in (its world rank's) on every gathered row, into its partials. Local, untimed. */
static void apply_experts(struct atp_state *st)
{
	const struct atp_geom *g = &st->geo;
	size_t H = (size_t)g->p.hidden, rb = ep_ascend_row_bytes(&g->p), at = 0;
	uint16_t *out = partials_of(st, st->me);
	ep_set_phase(st->env->waiter, "experts");
	for (int b = 0; b < g->moe_tp; b++) {
		size_t rows = st->rows_of[(st->g + b) % g->moe_tp];
		for (size_t m = 0; m < rows; m++, at++)
			ep_ascend_expert_row(st->env->run->routing.payload, st->me, row_expert(st, b, m), g->p.quant,
					     st->gx + at * rb, g->p.quant ? st->gscales[at] : 0.0f, (int)H, out + at * H);
	}
}

static int reduce_prepare(void *p)
{
	struct atp_state *st = p;
	int rc;
	if (st->stage < ATP_DISPATCHED && (rc = dispatch_once(st)))
		return rc;
	if (st->stage < ATP_GATHERED && (rc = gather_run(st)))
		return rc;
	apply_experts(st);
	return 0;
}

/* Where owner o's rows start in member `from`'s gathered order (block (o - from) mod moe_tp). */
static size_t block_first(const struct atp_state *st, int from, int o)
{
	int M = st->geo.moe_tp;
	size_t off = 0;
	for (int b = 0; b < (o - from + M) % M; b++)
		off += st->rows_of[(from + b) % M];
	return off;
}

/* Own row i = f32(own partial) + f32(partial of member g+1) + ..., in
 * rotation order, one rounding: member p holds these rows as its block
 * (g - p) mod moe_tp. */
static int reduce_run(void *p)
{
	struct atp_state *st = p;
	int M = st->geo.moe_tp, rc;
	size_t H = (size_t)st->geo.p.hidden;
	const uint16_t *parts[M];
	ep_set_phase(st->env->waiter, "moe_tp_reduce");
	for (int o = 0; o < M; o++) /* owner o's rows in this member's gathered order: its block (o - g) mod M */
		st->firsts[o] = block_first(st, st->g, o);
	if (st->tpnet && (rc = ep_atpnet_reduce(&st->tpn, partials_of(st, st->me), st->firsts, st->rows_of)))
		return st->stage = ATP_NONE, rc;
	if (st->tpnet)
		ep_endpoint_arrived(&st->net, 2, st->tpn.arrival[1]);
	for (int k = 0; k < M; k++) {
		int m = (st->g + k) % M;
		parts[k] = st->tpnet && ep_atpnet_remote(&st->tpn, m) ? ep_atpnet_partials(&st->tpn, m)
			 : partials_of(st, st->q * M + m) + block_first(st, m, st->g) * H;
	}
	rc = ep_group_reduce(st->env->waiter, parts, M, 1, st->rows_of[st->g], H, st->reduced);
	st->stage = rc ? ATP_NONE : ATP_REDUCED;
	return rc;
}

static int reduce_check(void *p, struct ep_check_report *rep)
{
	struct atp_state *st = p;
	ep_ascend_tp_ref_check_reduce(&st->refs[st->g], st->reduced, rep);
	return 0;
}

static void reduce_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct atp_state *st = p;
	uint64_t rows = st->rows_of[st->g] * 2 * (uint64_t)st->geo.p.hidden;
	*alg = rows * (uint64_t)st->geo.moe_tp;
	*wire = rows * (uint64_t)(st->geo.moe_tp - 1);
}

static int reduce_outputs(void *p, struct ep_tensor_view *v, int max)
{
	const struct atp_state *st = p;
	return add_view(v, 0, max, "moe_tp_reduced_x", st->reduced, st->rows_of[st->g], 2 * (size_t)st->geo.p.hidden);
}

/* ---- ep_combine and attn_tp_gather --------------------------------------- */

static int combine_prepare(void *p)
{
	struct atp_state *st = p;
	int rc;
	if (st->stage >= ATP_REDUCED)
		return 0;
	return (rc = reduce_prepare(st)) ? rc : reduce_run(st);
}

static int combine_run(void *p)
{
	struct atp_state *st = p;
	int rc = ep_ascend_combine(&st->coll, st->reduced, ep_ascend_ref_weights(&st->refs[st->g], st->q),
				   st->shared_x, combine_x(st));
	st->stage = rc ? ATP_NONE : ATP_COMBINED;
	return rc;
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct atp_state *st = p;
	ep_ascend_ref_check_combine(&st->refs[st->g], combine_x(st), rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct atp_state *st = p;
	uint64_t H = (uint64_t)st->geo.p.hidden, row = st->geo.p.comm_quant ? H + 2 * H / 8 : 2 * H;
	*alg = st->combine_rows * row;
	*wire = (st->combine_rows - st->self_rows[1]) * row;
}

static int combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	const struct atp_state *st = p;
	return add_view(v, 0, max, "x", combine_x(st), (size_t)st->T, 2 * (size_t)st->geo.p.hidden);
}

static int attn_prepare(void *p)
{
	struct atp_state *st = p;
	int rc;
	if (st->stage >= ATP_COMBINED)
		return 0;
	return (rc = combine_prepare(st)) ? rc : combine_run(st);
}

static int attn_run(void *p)
{
	return ep_attn_gather_run(&((struct atp_state *)p)->attn);
}

static int attn_check(void *p, struct ep_check_report *rep)
{
	ep_attn_gather_check(&((struct atp_state *)p)->attn, rep);
	return 0;
}

static void attn_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	struct atp_state *st = (struct atp_state *)p;
	ep_attn_gather_bytes(&st->attn, (size_t)st->T, alg, wire);
}

static int attn_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct atp_state *st = p;
	return add_view(v, 0, max, "attn_tp_gathered_x", st->attn.out, ep_attn_gather_rows(&st->attn),
			2 * (size_t)st->geo.p.hidden);
}

/* ---- --dump -------------------------------------------------------------- */

/* A copy of rows valid rows of `row` bytes in `cap` rows, zero past them (NULL: out of memory). */
static void *padded(const void *src, size_t rows, size_t cap, size_t row)
{
	uint8_t *d = calloc(cap * row + 1, 1);
	if (d && src)
		memcpy(d, src, (rows < cap ? rows : cap) * row);
	return d;
}

/* --dump: DIR/rank<N>/<name>.npy by world rank. Inputs by role
 * (dispatch_x, expert_ids, expert_scales, smooth_scales, shared_expert_x),
 * dispatch's outputs in Ascend's shapes with TP: expand_x [moe_tp A, H]
 * and dynamic_scales [moe_tp A] (own rows, then the other blocks', zero
 * past them), assist_info_for_combine [A 128], expert_token_nums [L],
 * ep_recv_counts [moe_ep moe_tp L], tp_recv_counts [moe_tp] (L = 1 on a
 * shared-expert rank; A the larger of a MoE and a shared rank's,
 * smooth_scales [S_n + E][H]); then
 * expert_outputs (this member's partials of the gathered rows),
 * moe_tp_reduced_x, x (combine's) and attn_tp_gathered_x (tp > 1: with tp 1
 * the attention gather does not run). */
static int atp_dump(void *p, const char *dir)
{
	struct atp_state *st = p;
	const struct atp_geom *g = &st->geo;
	size_t T = (size_t)st->T, H = (size_t)g->p.hidden, K = (size_t)g->p.num_topk, M = (size_t)g->moe_tp;
	size_t MA = M * g->A_shape, rb = ep_ascend_row_bytes(&g->p), RL = (size_t)st->nc;
	int done = st->stage >= ATP_COMBINED;
	void *x = done ? padded(st->gx, st->grows, MA, rb) : NULL;
	void *sc = done && g->p.quant ? padded(st->gscales, st->grows, MA, 4) : NULL;
	void *info = done ? padded(st->out.assist_info, 3 * st->out.num_recv, g->A_shape * 128, 4) : NULL;
	int rc = -ENOMEM;
	if (!done || (x && info && (sc || !g->p.quant))) {
		struct ep_npy_item t[] = {
			{"dispatch_x", EP_NPY_U2, T, H, 2, st->x},
			{"expert_ids", EP_NPY_I8, T, K, 2, ep_ascend_ref_ids(&st->refs[st->g], st->q)},
			{"expert_scales", EP_NPY_F4, T, K, 2, ep_ascend_ref_weights(&st->refs[st->g], st->q)},
			{"smooth_scales", EP_NPY_F4, (size_t)(g->p.shared_experts + g->p.num_experts), H, 2, st->smooth},
			{"shared_expert_x", EP_NPY_U2, T, H, 2, st->shared_x},
			{"expand_x", g->p.quant ? EP_NPY_I1 : EP_NPY_U2, MA, H, 2, x},
			{"dynamic_scales", EP_NPY_F4, MA, 0, 1, sc},
			{"assist_info_for_combine", EP_NPY_I4, g->A_shape * 128, 0, 1, info},
			{"expert_token_nums", EP_NPY_I8, (size_t)st->nl, 0, 1, done ? st->token_nums : NULL},
			{"ep_recv_counts", EP_NPY_I4, M * RL, 0, 1, done ? st->gcounts : NULL},
			{"tp_recv_counts", EP_NPY_I4, M, 0, 1, done ? st->tp_counts : NULL},
			{"expert_outputs", EP_NPY_U2, st->grows, H, 2, done ? partials_of(st, st->me) : NULL},
			{"moe_tp_reduced_x", EP_NPY_U2, st->rows_of[st->g], H, 2, done ? st->reduced : NULL},
			{"x", EP_NPY_U2, T, H, 2, done ? combine_x(st) : NULL},
			{"attn_tp_gathered_x", EP_NPY_U2, ep_attn_gather_rows(&st->attn), H, 2, done && g->tp > 1 ? st->attn.out : NULL},
		};
		rc = ep_npy_write_items(dir, st->me, t, (int)(sizeof(t) / sizeof(t[0])));
	}
	free(x), free(sc), free(info);
	return rc;
}

/* ---- across nodes --------------------------------------------------------- */

/* Every rank of the job meets before each run of an op (untimed): its
 * node's barrier, then a signal to and from EP group g's ranks on the
 * other nodes (each of which passed its own node's barrier first). */
static int atp_op_enter(void *p, const struct ep_op_desc *op, int index)
{
	struct atp_state *st = p;
	(void)op, (void)index;
	if (!st->nodes_job)
		return 0;
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_ascend_barrier(&st->coll);
}

/* --fault link-down (qp-error over verbs): cut this rank's connections to
 * the ranks of node `node` in its EP group (the mesh has one per pair). */
static int atp_sever(void *p, int node, int qp_error)
{
	struct atp_state *st = p;
	struct ep_transport *t = &st->net.net;
	int P = st->geo.P, M = st->geo.moe_tp, rc = 0;
	if (!st->nodes_job || (qp_error && strcmp(t->ops->name, "verbs"))) {
		ep_sync_fail(st->env->waiter, -EP_EUSAGE, "rank %d: --fault %s needs %s", st->me,
			     qp_error ? "qp-error" : "link-down", st->nodes_job ? "--transport verbs" : "a run across nodes");
		return -EP_EUSAGE;
	}
	for (int w = node * P; w < (node + 1) * P && !rc; w++) /* its MoE-EP group's ranks there, and MoE-TP's */
		if (w != st->me && (w % M == st->g || (st->tpnet && w / M == st->q) || (st->attn.net && w / st->geo.tp == st->attn.d)) &&
		    (rc = ep_transport_sever(t, w)))
			ep_sync_fail(st->env->waiter, rc, "rank %d: --fault link-down: cannot cut the connection to rank %d over %s%s%s",
				     st->me, w, t->ops->name, t->error[0] ? ": " : "", t->error);
	if (!rc)
		ep_set_phase(st->env->waiter, "fault.link-down");
	return rc;
}

/* The MoE-TP gather's (0) or reduce's (1) algorithm bytes from the members on this rank's node. */
static uint64_t node_member_bytes(const struct atp_state *st, int reduce)
{
	uint64_t row = ep_ascend_row_bytes(&st->geo.p) + (st->geo.p.quant ? 4 : 0), n = 0;
	for (int i = 0; i < st->geo.moe_tp; i++) {
		if (st->tpnet && ep_atpnet_remote(&st->tpn, i))
			continue;
		n += reduce ? st->rows_of[st->g] * 2 * (uint64_t)st->geo.p.hidden : st->rows_of[i] * row;
	}
	return n;
}

/* After an op's timed loop across nodes: its figures for the node's report
 * (nvl: the bytes that stay in the node; the MoE-TP and attention ops all). */
static void atp_op_leave(void *p, const struct ep_op_desc *op, int index, uint64_t alg)
{
	struct atp_state *st = p;
	uint64_t bytes[EP_MAX_NODES] = {0}, nvl = alg;
	if (!st->nodes_job)
		return;
	if (op->tag == OP_DISPATCH || op->tag == OP_COMBINE) {
		int c = op->tag == OP_COMBINE;
		/* the collective counts per EP node (EP rank / its P): world node of its first EP rank there */
		for (int k = 0; k < st->geo.moe_ep; k += st->coll.P)
			bytes[ep_node(st, k)] = st->coll.net_bytes[c][k / st->coll.P];
		uint64_t H = (uint64_t)st->geo.p.hidden;
		nvl = st->node_rows[c] * (c ? (st->geo.p.comm_quant ? H + 2 * H / 8 : 2 * H)
					    : ep_ascend_row_bytes(&st->geo.p) + (st->geo.p.quant ? 4 : 0));
	} else if (st->tpnet && op->tag == OP_GATHER) {
		memcpy(bytes, st->tpn.net_bytes[0], sizeof(bytes));
	} else if (st->tpnet && op->tag == OP_REDUCE) {
		memcpy(bytes, st->tpn.net_bytes[1], sizeof(bytes));
	}
	if (op->tag == OP_GATHER || op->tag == OP_REDUCE) /* nvl: what the node's memory carries */
		nvl = node_member_bytes(st, op->tag == OP_REDUCE);
	if (op->tag == OP_NODE && st->attn.net) { /* as DeepEP's layer: over the network, the rest in the node */
		uint64_t wire = 0;
		memcpy(bytes, st->attn_net.net_bytes, sizeof(bytes));
		for (int m = 0; m < EP_MAX_NODES; m++)
			wire += bytes[m];
		nvl = alg > wire ? alg - wire : 0;
	}
	ep_endpoint_figures(&st->net, index, alg, nvl, bytes);
}

static const struct ep_op_desc atp_ops[] = {
	{.name = "ep_dispatch", .mask = EP_OPS_DISPATCH | EP_OPS_A2A, .tag = OP_DISPATCH, .run = dispatch_run, .check = dispatch_check,
	 .bytes = dispatch_bytes, .recv_rows = dispatch_recv_rows, .outputs = dispatch_outputs, .receives = 1},
	{.name = "moe_tp_gather", .mask = EP_OPS_DISPATCH | EP_OPS_A2A | EP_OPS_MOE_TP, .tag = OP_GATHER, .prepare = gather_prepare,
	 .run = gather_run, .check = gather_check, .bytes = gather_bytes, .outputs = gather_outputs},
	{.name = "moe_tp_reduce", .mask = EP_OPS_COMBINE | EP_OPS_A2A | EP_OPS_MOE_TP, .tag = OP_REDUCE, .prepare = reduce_prepare,
	 .run = reduce_run, .check = reduce_check, .bytes = reduce_bytes, .outputs = reduce_outputs},
	{.name = "ep_combine", .mask = EP_OPS_COMBINE | EP_OPS_A2A, .tag = OP_COMBINE, .prepare = combine_prepare, .run = combine_run,
	 .check = combine_check, .bytes = combine_bytes, .outputs = combine_outputs},
	{.name = "attn_tp_gather", .mask = EP_OPS_COMBINE | EP_OPS_ATTN_TP, .tag = OP_NODE, .prepare = attn_prepare, .run = attn_run,
	 .check = attn_check, .bytes = attn_bytes, .outputs = attn_outputs},
};

const struct ep_variant ep_ascend_tp_variant = {
	.name = "ascend-moe-tp",
	.size = atp_size,
	.setup = atp_setup,
	.teardown = atp_teardown,
	.dump = atp_dump,
	.reseed = atp_reseed,
	.op_enter = atp_op_enter,
	.sever = atp_sever,
	.op_leave = atp_op_leave,
	.rows_per_expert = 1,
	.tensors = "expand_x dynamic_scales assist_info_for_combine ep_recv_counts moe_tp_gathered_x tp_recv_counts "
		   "moe_tp_reduced_x x attn_tp_gathered_x",
	.sliced_routing = 1,
	.nops = (int)(sizeof(atp_ops) / sizeof(atp_ops[0])),
	.ops = atp_ops,
};
