/* ll_layer.c - `epbench low-latency --parallel` with moe_tp > 1: DeepEP's low-latency dispatch and combine inside each strided MoE-EP group, with the MoE-TP stage between.
 *
 * parallel-semantics.md section 3 with DeepEP semantics, on one host or
 * across nodes with moe_tp dividing the ranks P of a node or a multiple of
 * them (tp dividing P or a multiple of it, not both past P). The
 * places, slices and per-group routings are the normal-mode layer's
 * (cli/moe_layer_geometry.c): world rank r is EP rank q = r / moe_tp of
 * MoE-EP group g = r % moe_tp. A pass runs, each phase one op:
 *   ep_dispatch     collectives/low_latency.h's dispatch over the group's
 *                   moe_ep ranks (R = moe_ep), each group over its own
 *                   arena (its own rank regions and signal lines: a
 *                   group's signals count its own calls only);
 *   moe_tp_gather   the MoE-TP group's receive layouts, block i from
 *                   member (g + i) % moe_tp (block 0 its own): every
 *                   valid packed row, its scales and source index, the
 *                   counts and layout ranges, into DeepEP's [L][R*N] layout;
 *   moe_tp_reduce   each member's stand-in of every gathered row (the
 *                   transform of its world rank, untimed) summed back to the
 *                   rows' owner: own partial, then the peers in rotation
 *                   order, one rounding (collectives/group.h, pair = 1); the
 *                   sums go to the packed positions combine reads;
 *   ep_combine      the group's low-latency combine (the token owner's
 *                   top-k weights, fmaf from +0, as in DeepEP);
 *   attn_tp_gather  the attention-TP group's combined slices (cli/attn_gather.h).
 * Each op is timed and checked byte for byte against reference/low_latency_ref.h
 * (the group's reference for EP rank q, its expert hook the MoE-TP sum of
 * reference/moe_layer_ref.h); an op's prepare runs the phases before it.
 *
 * Across nodes (a node job: env->variant_ctx) the MoE-TP group of world
 * ranks [q moe_tp, (q + 1) moe_tp) lies inside one node, so the gather, the
 * reduce and (tp <= P) the attention gather stay in its shared memory as on
 * one host. An attention-TP group of whole nodes (tp > P) is gathered over
 * the rail peers (cli/attn_gather.h's rail mode): rank (m, l) is in MoE-EP
 * group l % moe_tp as rank (n, l) is, so the group's mesh reaches it and
 * the group's exchange signals it; the receive area is the node's. MoE-EP group g holds P / moe_tp ranks of every node (EP rank q
 * on node q / (P / moe_tp), world node and group node alike), and its
 * collective runs as low-latency mode runs across nodes with that many
 * ranks per node (collectives/low_latency.h, a group strided in the world:
 * ep_ll_init_group), connected to the group's ranks on the other nodes.
 * Before each run of an op every rank of the job meets (the node's
 * barrier, then a signal each way with its group's remote ranks), and
 * EP dispatch and combine leave their network figures. The numerics are
 * one host's: the same references, the same blocks in the same order.
 *
 * MoE-TP groups of whole nodes (moe_tp a multiple of P, a node job): MoE-EP
 * group g has one rank on each of moe_ep nodes (Pg = 1: no network at all
 * when moe_ep = 1), and a node's arena holds the P groups of its ranks
 * (group g at slot g % P). The gather and reduce reach the MoE-TP group's
 * members on other nodes over a mesh of their own (cli/ll_tpnet.h; never
 * ranks of the MoE-EP group, an attention-TP group of whole nodes beside
 * them is refused), the node's members through its shared memory as
 * above; the numerics are one host's. Before each run of an op the job
 * meets as above, then once more: a node barrier and a signal each way
 * with the MoE-TP group's remote members (the MoE-EP group reaches the
 * nodes of one residue mod M = moe_tp / P, the MoE-TP group one node of each).
 *
 * Arena (one host's, or each node's): min(moe_tp, P) group arenas (ep_ll_arena_bytes
 * of the group's config, Pg = P / moe_tp ranks of it per node, or 1), then every
 * local rank's partials ([moe_tp][cap][H] bf16, rows of block i in
 * (expert, packed row) order), then the attention gather's slots, then
 * (tp > P) its receive area [tp][slot rows][H], written over the network.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cluster/endpoint.h"
#include "cli/ll_packed.h"
#include "cli/ll_tpnet.h"
#include "cli/low_latency.h"
#include "cli/moe_layer.h"
#include "collectives/error.h"
#include "collectives/group.h"
#include "cli/fault.h"
#include "collectives/numeric.h"
#include "reference/low_latency_ref.h"
#include "reference/placement.h"
#include "reference/transform.h"

enum lll_stage { LLL_NONE, LLL_DISPATCHED, LLL_GATHERED, LLL_REDUCED, LLL_COMBINED };

/* Op tags: which network figures an op's are (the MoE-TP ops stay in a node
 * unless its groups hold whole nodes; the attention op too unless tp > P). */
enum { OP_DISPATCH, OP_COMBINE, OP_TP_GATHER, OP_TP_REDUCE, OP_ATTN };

/* Transport regions beside the collective's (collectives/low_latency_int.h's 0 and 1). */
enum { LLL_ATTN_RECV = 2, LLL_ATTN_SLOTS = 3 };

struct lll_state {
	struct ep_bench_env *env;
	struct layer_state geo;          /* places, slices, groups' routings and experts */
	struct ep_ll_config cfg;         /* one MoE-EP group's: R = moe_ep, Pg of them per node */
	struct ep_ll coll;               /* group g, EP rank q */
	struct ep_ll_dispatch_out *mouts; /* [moe_tp] EP rank q of group i: views of its receive layout */
	struct ep_ll_ref *refs;          /* [moe_tp] group i's reference for EP rank q */
	int g, q, moe_tp, T;
	uint16_t *x;                     /* [T][H] this rank's slice */
	const int64_t *topk_idx;         /* the reference's rows, or moved */
	int64_t *moved;                  /* --fault replica: this rank's ids with one replica moved, or NULL */
	const float *topk_weights;
	struct ep_ll_dispatch_out out;
	struct ep_ll_dispatch_out *gath; /* [moe_tp] gathered blocks */
	void **gbuf;                     /* [moe_tp] their memory */
	size_t cap;                      /* partial rows per block */
	uint16_t *partials;              /* the arena's [W][moe_tp][cap][H] */
	uint16_t **dst_rows;             /* [cap] where the reduce writes its row n: a packed position of combine_x */
	uint16_t *expert_out;            /* [L][R*N][H] combine's x (without --zero-copy) */
	uint16_t *combine_x;             /* combine's input: expert_out, or with --zero-copy the combine buffer */
	uint16_t *deq;
	float *scales;
	struct ep_attn_gather attn;
	struct ep_attn_net attn_net;     /* across nodes with tp > P: the gather's rail half */
	int64_t attn_t0;                 /* the running gather's start */
	struct ep_traffic *area_traffic, tview;
	int *names;                      /* [moe_tp][moe_ep] world rank of EP rank k of group i: k moe_tp + i */
	const uint16_t **parts;          /* [moe_tp] the reduce's partials, rotation order */
	uint64_t disp_alg, disp_wire, comb_alg, comb_wire;
	uint64_t disp_nvl, comb_nvl;     /* DeepEP's bytes to the group's ranks of this node, own included */
	int partials_ready;
	enum lll_stage stage;
	/* across nodes only */
	int nodes_job;                   /* a rank of a node job (env->variant_ctx set) */
	struct ep_endpoint net;          /* its endpoint: the group's ranks on the other nodes */
	int op, op_tag;                  /* the op being run (op_enter) */
	int tpnet;                       /* MoE-TP groups of whole nodes (moe_tp a multiple of P): members elsewhere over `tpn` */
	struct ep_lltpnet tpn;
};

/* Geometry of a run: the group's config and its sizes. */

static void group_config(const struct layer_state *geo, const struct ep_run *run, struct ep_ll_config *cfg)
{
	struct ep_run r = *run;
	r.shape = geo->eshape;
	ep_ll_run_config(&r, geo->Pg, cfg); /* one host: Pg = moe_ep */
}

static size_t lll_L(const struct ep_ll_config *c)
{
	return (size_t)c->num_experts / (size_t)c->num_ranks;
}

static size_t lll_RN(const struct ep_ll_config *c)
{
	return (size_t)c->num_ranks * (size_t)c->max_tokens;
}

/* Packed rows a rank can hold: every source token's K messages, at most R*N per expert. */
static size_t block_rows(const struct ep_ll_config *c)
{
	size_t k = lll_RN(c) * (size_t)c->num_topk, all = lll_L(c) * lll_RN(c);
	return k < all ? k : all;
}

struct lll_plan {
	size_t group, partials, slots, recv, total; /* byte offsets in the arena; recv: the attention gather's (tp > P) */
};

/* The group arenas a node's arena holds: every group's, or, when MoE-TP
 * groups hold whole nodes, the P groups of the node's ranks (group g at g % P). */
static int group_slots(const struct layer_state *geo)
{
	return geo->moe_tp > geo->P ? geo->P : geo->moe_tp;
}

static void plan(const struct layer_state *geo, const struct ep_ll_config *c, struct lll_plan *p)
{
	size_t H = (size_t)c->hidden, P = (size_t)geo->P;
	p->group = ep_align_up(ep_ll_arena_bytes(c), EP_PAGE);
	p->partials = p->group * (size_t)group_slots(geo);
	p->slots = ep_align_up(p->partials + P * (size_t)geo->moe_tp * block_rows(c) * H * 2, EP_PAGE);
	p->recv = ep_align_up(p->slots + ep_attn_gather_slot_bytes(geo->P, (size_t)geo->sl.max_slice, c->hidden),
			      EP_PAGE);
	p->total = p->recv + (geo->tp > geo->P ? ep_attn_gather_recv_bytes(geo->tp, (size_t)geo->sl.max_slice, c->hidden)
					      : 0);
}

/* A gathered block in DeepEP's layout (rows past the counts untouched). */
static size_t block_bytes(const struct ep_ll_config *c)
{
	size_t L = lll_L(c), RN = lll_RN(c);
	return L * RN * ep_ll_row_bytes(c) + L * (size_t)ep_ll_scale_cols(c) * RN * 4 + L * 4 + L * RN * 4 +
	       L * (size_t)c->num_ranks * 8;
}

static int lll_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	struct layer_state geo = {0};
	struct ep_ll_config c;
	int rc = layer_geometry(&geo, run, 0);
	if (!rc) {
		group_config(&geo, run, &c);
		if (!ep_ll_arena_bytes(&c))
			rc = -EP_EUSAGE;
	}
	if (!rc) {
		struct lll_plan p;
		plan(&geo, &c, &p);
		*arena_bytes = p.total;
		run->capacity = lll_RN(&c);
		double H = c.hidden, M = geo.moe_tp, RN = (double)lll_RN(&c), L = (double)lll_L(&c);
		double b = M * ((double)block_bytes(&c) + (double)ep_ll_rank_bytes(&c) + 12.0 * RN * c.num_topk +
				8 * L * RN + 8 * L * c.num_ranks) +
			   2 * H * ((double)block_rows(&c) + L * RN + (double)geo.tp * geo.sl.max_slice) +
			   (geo.moe_tp > geo.P ? M * ((double)block_bytes(&c) + 4.0 * H * (double)block_rows(&c)) : 0);
		*rank_bytes = b < 0x1p60 ? (size_t)b : (size_t)1 << 60;
	}
	layer_geometry_fini(&geo);
	return rc;
}

static void lll_teardown(void *p)
{
	struct lll_state *st = p;
	if (!st)
		return;
	ep_endpoint_close(&st->net); /* first: a failed rank leaves at once */
	ep_lltpnet_fini(&st->tpn);
	if (st->env)
		st->env->waiter->traffic = st->area_traffic;
	ep_ll_fini(&st->coll);
	for (int i = 0; i < st->moe_tp; i++) {
		if (st->refs)
			ep_ll_ref_fini(&st->refs[i]);
		if (st->gbuf)
			free(st->gbuf[i]);
	}
	free(st->mouts);
	free(st->refs);
	free(st->gbuf);
	free(st->gath);
	free(st->x);
	free(st->moved);
	free(st->dst_rows);
	free(st->expert_out);
	free(st->deq);
	free(st->scales);
	free(st->attn.out);
	free(st->names);
	free(st->parts);
	layer_geometry_fini(&st->geo);
	free(st);
}

static void count_bytes(struct lll_state *st);

/* Every group's reference for EP rank q, with its MoE-TP expert; this rank's inputs. */
static int lll_inputs(struct lll_state *st)
{
	const struct ep_run *run = st->env->run;
	size_t H = (size_t)st->cfg.hidden;
	int rc;
	for (int i = 0; i < st->moe_tp; i++) {
		if ((rc = ep_ll_ref_init(&st->refs[i], &st->cfg, st->geo.eshape.num_tokens, &st->geo.routings[i],
					 run->cfg->seed, run->routing.uneven_tokens, st->q)))
			return rc;
		st->refs[i].expert = &st->geo.experts[i].fn;
		st->refs[i].names = st->names + (size_t)i * (size_t)st->geo.moe_ep;
	}
	struct ep_ll_ref *mine = &st->refs[st->g];
	st->T = ep_ll_ref_tokens(mine, st->q);
	st->topk_idx = ep_ll_ref_topk_idx(mine, st->q);
	st->topk_weights = ep_ll_ref_topk_weights(mine, st->q);
	free(st->moved);
	st->moved = NULL;
	if (run->routing.placement && ep_faults_at(&run->cfg->faults, EP_FAULT_REPLICA, st->env->rank, 0)) {
		size_t n = (size_t)st->T * (size_t)st->cfg.num_topk; /* the references keep the true ids */
		if (!(st->moved = malloc(sizeof(int64_t) * (n + 1))))
			return -ENOMEM;
		memcpy(st->moved, st->topk_idx, sizeof(int64_t) * n);
		ep_placement_move_replica(run->routing.placement, st->moved, n);
		st->topk_idx = st->moved;
	}
	free(st->x);
	if (!(st->x = malloc(sizeof(uint16_t) * ((size_t)st->T * H + 1))))
		return -ENOMEM;
	for (int t = 0; t < st->T; t++)
		ep_gen_bf16_row(run->cfg->seed, mine->routing, EP_STREAM_X, st->q, t, st->cfg.hidden, st->x + (size_t)t * H);
	count_bytes(st);
	return 0;
}

/* Block i's pointers inside its buffer. */
static void block_view(const struct ep_ll_config *c, char *b, struct ep_ll_dispatch_out *o)
{
	size_t L = lll_L(c), RN = lll_RN(c), S = (size_t)ep_ll_scale_cols(c);
	o->packed_recv_x = b;
	b += L * RN * ep_ll_row_bytes(c);
	o->packed_recv_x_scales = S ? b : NULL;
	b += L * S * RN * 4;
	o->packed_recv_count = (int32_t *)b;
	b += L * 4;
	o->packed_recv_src_info = (int32_t *)b;
	b += L * RN * 4;
	o->packed_recv_layout_range = (int64_t *)b;
}

static int slice_len(void *p, int r)
{
	struct lll_state *st = p;
	return ep_ll_ref_tokens(&st->refs[r % st->moe_tp], r / st->moe_tp);
}

static int combined_row(void *p, int r, int t, uint16_t *want)
{
	struct lll_state *st = p;
	return ep_ll_ref_combined_row(&st->refs[r % st->moe_tp], r / st->moe_tp, t, want);
}

static int attn_ready(void *p);
static int attn_exchange(void *p);

/* The private buffers and the group views of the arena. */
static int lll_bind(struct lll_state *st, char *arena)
{
	const struct ep_ll_config *c = &st->cfg;
	size_t H = (size_t)c->hidden, n = (size_t)st->moe_tp, M = n;
	struct lll_plan p;
	plan(&st->geo, c, &p);
	st->mouts = calloc(n, sizeof(*st->mouts));
	st->refs = calloc(n, sizeof(*st->refs));
	st->gbuf = calloc(n, sizeof(*st->gbuf));
	st->gath = calloc(n, sizeof(*st->gath));
	st->names = malloc(sizeof(int) * n * (size_t)st->geo.moe_ep);
	st->parts = calloc(n, sizeof(*st->parts));
	st->cap = block_rows(c);
	st->dst_rows = calloc(st->cap + 1, sizeof(*st->dst_rows));
	st->expert_out = st->combine_x = calloc(lll_L(c) * lll_RN(c) * H + 1, 2);
	st->deq = malloc(H * 2 + 2);
	st->scales = malloc(sizeof(float) * (H / 128 + 1));
	st->attn.out = malloc(2 * ((size_t)st->geo.tp * (size_t)st->geo.sl.max_slice * H + 1));
	if (!st->mouts || !st->refs || !st->gbuf || !st->gath || !st->names || !st->parts || !st->dst_rows || !st->expert_out ||
	    !st->deq || !st->scales || !st->attn.out)
		return -ENOMEM;
	for (size_t i = 0; i < M; i++) {
		if (!(st->gbuf[i] = calloc(1, block_bytes(c))))
			return -ENOMEM;
		block_view(c, st->gbuf[i], &st->gath[i]);
	}
	st->partials = (uint16_t *)(arena + p.partials);
	st->attn = (struct ep_attn_gather){.waiter = st->env->waiter, .tp = st->geo.tp, .d = st->geo.d, .P = st->geo.P,
					   .hidden = c->hidden, .slot_rows = (size_t)st->geo.sl.max_slice,
					   .slots = (uint16_t *)(arena + p.slots), .out = st->attn.out,
					   .len = slice_len, .expected = combined_row, .ctx = st};
	if (st->nodes_job && st->geo.tp > st->geo.P) { /* an attention-TP group of whole nodes: over the rails */
		st->attn_net = (struct ep_attn_net){.t = &st->net.net, .me = st->env->rank, .recv_id = LLL_ATTN_RECV,
						    .source_id = LLL_ATTN_SLOTS, .recv = (uint16_t *)(arena + p.recv),
						    .rail = 1, .ready = attn_ready, .exchange = attn_exchange, .ctx = st};
		st->attn.net = &st->attn_net;
	}
	for (int i = 0; i < st->moe_tp; i++)
		for (int k = 0; k < st->geo.moe_ep; k++)
			st->names[i * st->geo.moe_ep + k] = k * st->moe_tp + i;
	return 0;
}

/* The group's collective and the views of the other groups' EP rank q.
 * Across nodes the endpoint first (the collective registers its region
 * with it), then the collective, then the mesh of the group's ranks on
 * the other nodes (world rank k moe_tp + g for EP rank k). */
static int lll_colls(struct lll_state *st, char *arena)
{
	struct lll_plan p;
	struct ep_ll_group grp = {st->moe_tp, st->g};
	int rc, peers[EP_MAX_NODES * EP_MAX_LOCAL], slots = group_slots(&st->geo);
	int coll_net = st->nodes_job && st->geo.moe_ep > st->geo.Pg; /* the group has ranks on other nodes */
	plan(&st->geo, &st->cfg, &p);
	for (int i = 0; i < st->moe_tp; i++) /* a member on another node: its view is unused (tpnet) */
		if ((rc = ep_ll_outputs_view(&st->cfg, st->q, arena + (size_t)(i % slots) * p.group, &st->mouts[i])))
			return rc;
	if (st->nodes_job && (rc = ep_endpoint_open(&st->net, st->env, st->geo.W)))
		return rc;
	if ((rc = ep_ll_init_group(&st->coll, &st->cfg, st->q, arena + (size_t)(st->g % slots) * p.group, st->env->waiter,
				   coll_net ? &st->net.net : NULL, &grp)))
		return st->nodes_job ? ep_endpoint_fail(&st->net, rc, "low-latency buffers") : rc;
	if (st->tpnet && (rc = ep_lltpnet_init(&st->tpn, &st->net.net, st->env->waiter, &st->cfg, st->env->rank, st->moe_tp,
					       st->geo.P, st->cap)))
		return ep_endpoint_fail(&st->net, rc, "MoE-TP buffers");
	if (st->attn.net && ((rc = ep_transport_reg_mem(&st->net.net, LLL_ATTN_RECV, st->attn_net.recv,
							  ep_attn_gather_recv_bytes(st->attn.tp, st->attn.slot_rows,
										    st->attn.hidden))) ||
			     (rc = ep_transport_reg_mem(&st->net.net, LLL_ATTN_SLOTS, st->attn.slots,
							  ep_attn_gather_slot_bytes(st->attn.P, st->attn.slot_rows,
										    st->attn.hidden)))))
		return ep_endpoint_fail(&st->net, rc, "attention gather buffers");
	/* the collective counts per-pair rows in group ranks: recorded under world ranks */
	st->env->waiter->traffic = ep_traffic_view(&st->tview, st->area_traffic, st->names + (size_t)st->g * (size_t)st->geo.moe_ep);
	if (!st->nodes_job)
		return 0;
	int n = coll_net ? ep_ll_peers(&st->coll, peers) : 0;
	if (st->tpnet)
		n += ep_lltpnet_peers(&st->tpn, peers + n);
	return ep_endpoint_connect(&st->net, peers, n, st->tpnet ? "the ranks of its MoE-EP and MoE-TP groups on other nodes"
								: "the ranks of its MoE-EP group on other nodes");
}

static int lll_setup(struct ep_bench_env *env, void **out)
{
	struct lll_state *st = calloc(1, sizeof(*st));
	int rc;
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->nodes_job = env->variant_ctx != NULL;
	st->area_traffic = env->waiter->traffic;
	if (!(rc = layer_geometry(&st->geo, env->run, env->rank))) {
		st->g = st->geo.g, st->q = st->geo.q, st->moe_tp = st->geo.moe_tp;
		st->tpnet = st->nodes_job && st->moe_tp > st->geo.P;
		group_config(&st->geo, env->run, &st->cfg);
		if (!(rc = lll_bind(st, env->arena)) && !(rc = lll_inputs(st)))
			rc = lll_colls(st, env->arena);
	}
	if (rc) {
		lll_teardown(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* Soak, routing steps: the slices, references and inputs anew; the
 * collectives stay (their buffers take any routing of N tokens per rank). */
static int lll_reseed(void *p)
{
	struct lll_state *st = p;
	int rc;
	for (int i = 0; i < st->moe_tp; i++)
		ep_ll_ref_fini(&st->refs[i]);
	layer_geometry_fini(&st->geo);
	st->stage = LLL_NONE, st->partials_ready = 0;
	if ((rc = layer_geometry(&st->geo, st->env->run, st->env->rank)))
		return rc;
	return lll_inputs(st);
}

/* Bytes this rank sends per dispatch and combine, as cli/low_latency.c
 * counts them (DeepEP's test_low_latency; wire: messages to other ranks). */
static void count_bytes(struct lll_state *st)
{
	const struct ep_ll_config *c = &st->cfg;
	int K = c->num_topk, L = (int)lll_L(c);
	uint64_t H = (uint64_t)c->hidden, msg = c->dtype == EP_DTYPE_FP8 ? H + H / 128 * 4 + 16 : 2 * H + 16;
	st->disp_alg = st->disp_wire = st->comb_alg = st->comb_wire = st->disp_nvl = st->comb_nvl = 0;
	for (int t = 0; t < st->T; t++)
		for (int j = 0; j < K; j++) {
			int64_t e = st->topk_idx[(size_t)t * K + j];
			if (e < 0 || e >= c->num_experts)
				continue;
			int remote = e / L != st->q, here = e / L / c->ranks_per_node == st->q / c->ranks_per_node;
			st->disp_alg += msg, st->comb_alg += 2 * H;
			st->disp_wire += remote ? msg : 0, st->comb_wire += remote ? 2 * H : 0;
			st->disp_nvl += here ? msg : 0, st->comb_nvl += here ? 2 * H : 0;
		}
}

/* A count as a bound: a damaged one never sends a copy past the layout. */
static size_t valid_rows(const struct ep_ll_config *c, const struct ep_ll_dispatch_out *o, size_t e)
{
	int32_t n = o->packed_recv_count[e];
	return n < 0 ? 0 : (size_t)n > lll_RN(c) ? lll_RN(c) : (size_t)n;
}

static size_t total_rows(const struct ep_ll_config *c, const struct ep_ll_dispatch_out *o)
{
	size_t n = 0;
	for (size_t e = 0; e < lll_L(c); e++)
		n += valid_rows(c, o, e);
	return n;
}

/* ---- the phases ---- */

static int lll_dispatch(struct lll_state *st)
{
	int rc = ep_ll_dispatch(&st->coll, st->x, st->topk_idx, st->T, &st->out);
	st->stage = rc ? LLL_NONE : LLL_DISPATCHED;
	st->partials_ready = 0;
	return rc;
}

/* Member src's receive layout into block dst: every valid row, the rest as it was. */
static void copy_block(const struct ep_ll_config *c, const struct ep_ll_dispatch_out *src, struct ep_ll_dispatch_out *dst)
{
	size_t L = lll_L(c), RN = lll_RN(c), S = (size_t)ep_ll_scale_cols(c), row = ep_ll_row_bytes(c);
	memcpy(dst->packed_recv_count, src->packed_recv_count, L * 4);
	memcpy(dst->packed_recv_layout_range, src->packed_recv_layout_range, L * (size_t)c->num_ranks * 8);
	for (size_t e = 0; e < L; e++) {
		size_t n = valid_rows(c, src, e);
		memcpy((char *)dst->packed_recv_x + e * RN * row, (const char *)src->packed_recv_x + e * RN * row, n * row);
		memcpy(dst->packed_recv_src_info + e * RN, src->packed_recv_src_info + e * RN, n * 4);
		for (size_t b = 0; b < S; b++)
			memcpy((char *)dst->packed_recv_x_scales + ((e * S + b) * RN) * 4,
			       (const char *)src->packed_recv_x_scales + ((e * S + b) * RN) * 4, n * 4);
	}
}

/* The MoE-TP all-gather: block i from member (g + i) % moe_tp, between
 * node-wide barriers; a member on another node's over the network. */
static int lll_gather(struct lll_state *st)
{
	struct ep_waiter *w = st->env->waiter;
	int rc;
	ep_set_phase(w, "moe_tp_gather");
	if ((rc = ep_barrier(w)) || (st->tpnet && (rc = ep_lltpnet_gather(&st->tpn, &st->out))))
		return rc;
	for (int i = 0; i < st->moe_tp; i++) {
		int p = (st->g + i) % st->moe_tp;
		if (st->tpnet && ep_lltpnet_remote(&st->tpn, p))
			ep_lltpnet_block(&st->tpn, p, &st->gath[i]);
		else
			copy_block(&st->cfg, &st->mouts[p], &st->gath[i]);
	}
	rc = ep_barrier(w);
	ep_set_phase(w, "idle");
	st->stage = rc ? st->stage : LLL_GATHERED;
	return rc;
}

/* Scale of block b of packed row p of expert e, out of DeepEP's layout. */
static float packed_scale(const struct ep_ll_config *c, const struct ep_ll_dispatch_out *o, size_t e, size_t p, int b)
{
	size_t RN = lll_RN(c), S = (size_t)ep_ll_scale_cols(c);
	if (c->use_ue8m0) { /* int32 [L][H/512][R*N], byte k of a word = block 4w + k */
		uint32_t v = ((const uint32_t *)o->packed_recv_x_scales)[(e * S + (size_t)b / 4) * RN + p];
		return ep_ue8m0_to_f32((uint8_t)(v >> (8 * (b % 4))));
	}
	return ((const float *)o->packed_recv_x_scales)[(e * S + (size_t)b) * RN + p];
}

/* World rank `world`'s partials (a rank of this node: its slot world % P). */
static uint16_t *partials_of(const struct lll_state *st, int world, int block)
{
	size_t l = (size_t)(world % st->geo.P);
	return st->partials + (l * (size_t)st->moe_tp + (size_t)block) * st->cap * (size_t)st->cfg.hidden;
}

/* Untimed: this member's stand-in (the transform of its world rank) of
 * every gathered row, block i's rows in (expert, packed row) order. */
static void lll_partials(struct lll_state *st)
{
	const struct ep_ll_config *c = &st->cfg;
	size_t RN = lll_RN(c), row = ep_ll_row_bytes(c), H = (size_t)c->hidden;
	ep_set_phase(st->env->waiter, "experts");
	for (int i = 0; i < st->moe_tp; i++) {
		const struct ep_ll_dispatch_out *o = &st->gath[i];
		uint16_t *dst = partials_of(st, st->env->rank, i);
		size_t n = 0;
		for (size_t e = 0; e < lll_L(c); e++)
			for (size_t p = 0; p < valid_rows(c, o, e) && n < st->cap; p++, n++) {
				const void *src = (const char *)o->packed_recv_x + (e * RN + p) * row;
				if (c->dtype == EP_DTYPE_FP8) {
					for (int b = 0; b < c->hidden / 128; b++)
						st->scales[b] = packed_scale(c, o, e, p, b);
					ep_fp8_dequant_row(src, st->scales, H, st->deq);
					src = st->deq;
				}
				ep_expert_transform(st->refs[0].payload, st->env->rank, (int)e, src, c->hidden, dst + n * H);
			}
	}
	ep_set_phase(st->env->waiter, "idle");
	st->partials_ready = 1;
}

/* MoE-TP groups of whole nodes: this member's partials of every remote
 * owner o (its block (o - g) mod moe_tp) to o, and theirs of this rank's rows here. */
static int tpnet_partials(struct lll_state *st)
{
	const uint16_t *part[st->moe_tp];
	size_t rows[st->moe_tp];
	for (int o = 0; o < st->moe_tp; o++) {
		int b = (o - st->g + st->moe_tp) % st->moe_tp;
		size_t n = total_rows(&st->cfg, &st->gath[b]);
		part[o] = partials_of(st, st->env->rank, b), rows[o] = n < st->cap ? n : st->cap;
	}
	return ep_lltpnet_reduce(&st->tpn, part, rows);
}

/* The MoE-TP reduce: own partial, then the peers' in rotation order (member
 * (g + i) % moe_tp holds this rank's rows as its block (moe_tp - i) % moe_tp),
 * one rounding; each sum straight to the packed position combine reads:
 * in expert_out, or with --zero-copy in the collective's combine buffer
 * (ep_ll_combine_buffer: it first waits until no peer reads the last
 * combine's), combine then sending it as it lies. */
static int lll_reduce(struct lll_state *st)
{
	const struct ep_ll_config *c = &st->cfg;
	size_t RN = lll_RN(c), H = (size_t)c->hidden, rows = total_rows(c, &st->out), n = 0;
	uint16_t *dst = st->expert_out;
	int rc;
	rows = rows < st->cap ? rows : st->cap;
	if (st->env->run->cfg->zero_copy && (rc = ep_ll_combine_buffer(&st->coll, &dst)))
		return rc;
	for (size_t e = 0; e < lll_L(c); e++)
		for (size_t p = 0; p < valid_rows(c, &st->out, e) && n < rows; p++, n++)
			st->dst_rows[n] = dst + (e * RN + p) * H;
	ep_set_phase(st->env->waiter, "moe_tp_reduce");
	rc = st->tpnet ? tpnet_partials(st) : 0;
	for (int i = 0; i < st->moe_tp && !rc; i++) {
		int p = (st->g + i) % st->moe_tp;
		st->parts[i] = st->tpnet && ep_lltpnet_remote(&st->tpn, p)
				       ? ep_lltpnet_partials(&st->tpn, p)
				       : partials_of(st, st->q * st->moe_tp + p, (st->moe_tp - i) % st->moe_tp);
	}
	if (!rc)
		rc = ep_group_reduce_to(st->env->waiter, st->parts, st->moe_tp, 1, rows, H, st->dst_rows);
	ep_set_phase(st->env->waiter, "idle");
	if (rc)
		return rc;
	st->combine_x = dst;
	st->stage = LLL_REDUCED;
	return 0;
}

/* Combine's x: NULL when the reduce wrote the combine buffer itself. */
static const uint16_t *combine_input(const struct lll_state *st)
{
	return st->env->run->cfg->zero_copy ? NULL : st->expert_out;
}

static uint16_t *combined_x(const struct lll_state *st)
{
	return ep_attn_gather_slot(&st->attn, st->env->rank);
}

static int lll_combine(struct lll_state *st)
{
	int rc = ep_ll_combine(&st->coll, combine_input(st), st->topk_idx, st->topk_weights, combined_x(st));
	st->stage = rc ? st->stage : LLL_COMBINED;
	return rc;
}

/* Each op's prepare: the phases before it this pass has not run. */
static int upto(struct lll_state *st, enum lll_stage want)
{
	int rc;
	if (want >= LLL_DISPATCHED && st->stage < LLL_DISPATCHED && (rc = lll_dispatch(st)))
		return rc;
	if (want >= LLL_GATHERED && st->stage < LLL_GATHERED && (rc = lll_gather(st)))
		return rc;
	if (want >= LLL_GATHERED && !st->partials_ready)
		lll_partials(st);
	if (want >= LLL_REDUCED && st->stage < LLL_REDUCED && (rc = lll_reduce(st)))
		return rc;
	if (want >= LLL_COMBINED && st->stage < LLL_COMBINED && (rc = lll_combine(st)))
		return rc;
	return 0;
}

/* ---- the ops ---- */

/* Across nodes, a receive of the op being timed: when each node's data landed. */
static void arrived(struct lll_state *st, const struct ep_ll_figures *f)
{
	if (st->nodes_job)
		ep_endpoint_arrived(&st->net, st->op, f->arrival_ns);
}

static int dispatch_run(void *p)
{
	struct lll_state *st = p;
	int rc = lll_dispatch(st);
	if (!rc)
		arrived(st, &st->coll.last_dispatch);
	return rc;
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct lll_state *st = p;
	ep_ll_ref_check_dispatch(&st->refs[st->g], &st->out, rep);
	return 0;
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct lll_state *st = p;
	*alg = st->disp_alg, *wire = st->disp_wire;
}

static uint64_t dispatch_rows(const void *p)
{
	const struct lll_state *st = p;
	return st->stage >= LLL_DISPATCHED ? total_rows(&st->cfg, &st->out) : 0;
}

/* The packed rows of the last expert that received any (the data faults' target). */
static int rows_view(const struct lll_state *st, const char *name, const struct ep_ll_dispatch_out *o,
		     struct ep_tensor_view *v, int max)
{
	const struct ep_ll_config *c = &st->cfg;
	size_t e = lll_L(c) - 1, row = ep_ll_row_bytes(c);
	if (max < 1)
		return 0;
	while (e > 0 && valid_rows(c, o, e) == 0)
		e--;
	v[0] = (struct ep_tensor_view){name, (uint8_t *)o->packed_recv_x + e * lll_RN(c) * row, valid_rows(c, o, e), row};
	return 1;
}

static int dispatch_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct lll_state *st = p;
	return rows_view(st, "packed_recv_x", &st->out, v, max);
}

static int gather_prepare(void *p)
{
	return upto(p, LLL_DISPATCHED);
}

/* Across nodes with MoE-TP groups of whole nodes: when each node's rows of the op being timed landed. */
static void tp_arrived(struct lll_state *st, int which)
{
	if (st->tpnet)
		ep_endpoint_arrived(&st->net, st->op, st->tpn.arrival[which]);
}

static int gather_run(void *p)
{
	int rc = lll_gather(p);
	if (!rc)
		tp_arrived(p, EP_LLTPNET_GATHER);
	return rc;
}

/* Block i against the reference of member (g + i) % moe_tp's group. */
static int gather_check(void *p, struct ep_check_report *rep)
{
	struct lll_state *st = p;
	for (int i = 0; i < st->moe_tp; i++) {
		struct ep_ll_ref *ref = &st->refs[(st->g + i) % st->moe_tp];
		ref->tag = "moe_tp_gathered";
		ep_ll_ref_check_dispatch(ref, &st->gath[i], rep);
		ref->tag = NULL;
	}
	return 0;
}

static void gather_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct lll_state *st = p;
	const struct ep_ll_config *c = &st->cfg;
	uint64_t row = ep_ll_row_bytes(c) + 4 * (uint64_t)ep_ll_scale_cols(c) + 4, n = 0;
	for (int i = 0; i < st->moe_tp; i++)
		n += total_rows(c, &st->gath[i]);
	*alg = n * row;
	*wire = (n - total_rows(c, &st->gath[0])) * row;
}

/* A peer's block (block 1 when there is one): what came from elsewhere. */
static int gather_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct lll_state *st = p;
	return rows_view(st, "moe_tp_gathered_x", &st->gath[st->moe_tp > 1], v, max);
}

static int reduce_prepare(void *p)
{
	return upto(p, LLL_GATHERED);
}

static int reduce_run(void *p)
{
	int rc = lll_reduce(p);
	if (!rc)
		tp_arrived(p, EP_LLTPNET_REDUCE);
	return rc;
}

/* Every valid packed row's sum against the reference's MoE-TP expert output. */
static int reduce_check(void *p, struct ep_check_report *rep)
{
	struct lll_state *st = p;
	struct ep_ll_ref *ref = &st->refs[st->g];
	size_t RN = lll_RN(&st->cfg), H = (size_t)st->cfg.hidden;
	for (int e = 0; e < (int)lll_L(&st->cfg); e++)
		for (int32_t r = 0; r < ref->count[e]; r++) {
			size_t at = (size_t)e * RN + (size_t)r;
			ep_ll_ref_expert_row(ref, e, r, st->deq);
			ep_compare_row(rep, "moe_tp_reduced_x", EP_ELEM_BF16, st->deq, st->combine_x + at * H, H, r,
				       ref->row_src_rank[at] * st->moe_tp + st->g, ref->row_src_token[at]);
		}
	return 0;
}

static void reduce_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct lll_state *st = p;
	uint64_t rows = total_rows(&st->cfg, &st->out) * 2 * (uint64_t)st->cfg.hidden;
	*alg = rows * (uint64_t)st->moe_tp;
	*wire = rows * (uint64_t)(st->moe_tp - 1);
}

static int reduce_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct lll_state *st = p;
	const struct ep_ll_config *c = &st->cfg;
	size_t e = 0;
	if (max < 1)
		return 0;
	while (e + 1 < lll_L(c) && valid_rows(c, &st->out, e) == 0)
		e++;
	v[0] = (struct ep_tensor_view){"moe_tp_reduced_x", (uint8_t *)(st->combine_x + e * lll_RN(c) * (size_t)c->hidden),
				       valid_rows(c, &st->out, e), 2 * (size_t)c->hidden};
	return 1;
}

static int combine_prepare(void *p)
{
	return upto(p, LLL_REDUCED);
}

static int combine_run(void *p)
{
	struct lll_state *st = p;
	int rc = lll_combine(st);
	if (!rc)
		arrived(st, &st->coll.last_combine);
	return rc;
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct lll_state *st = p;
	ep_ll_ref_check_combine(&st->refs[st->g], combined_x(st), rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct lll_state *st = p;
	*alg = st->comb_alg, *wire = st->comb_wire;
}

static int combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct lll_state *st = p;
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){"combined_x", (uint8_t *)combined_x(st), (size_t)st->T, 2 * (size_t)st->cfg.hidden};
	return 1;
}

static int attn_prepare(void *p)
{
	return upto(p, LLL_COMBINED);
}

static int attn_run(void *p)
{
	return ep_attn_gather_run(&((struct lll_state *)p)->attn);
}

static int attn_check(void *p, struct ep_check_report *rep)
{
	ep_attn_gather_check(&((struct lll_state *)p)->attn, rep);
	return 0;
}

static void attn_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	struct lll_state *st = (struct lll_state *)p;
	ep_attn_gather_bytes(&st->attn, (size_t)st->T, alg, wire);
}

static int attn_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct lll_state *st = p;
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){"attn_tp_gathered_x", (uint8_t *)st->attn.out, ep_attn_gather_rows(&st->attn),
				       2 * (size_t)st->cfg.hidden};
	return 1;
}

/* ---- --hook: DeepEP's send and receive phases of EP dispatch and combine ---- */

static int dispatch_send(void *p)
{
	struct lll_state *st = p;
	st->stage = LLL_NONE, st->partials_ready = 0;
	return ep_ll_dispatch_send(&st->coll, st->x, st->topk_idx, st->T);
}

static int dispatch_recv(void *p)
{
	struct lll_state *st = p;
	int rc = ep_ll_dispatch_recv(&st->coll, &st->out);
	st->stage = rc ? LLL_NONE : LLL_DISPATCHED;
	if (!rc)
		arrived(st, &st->coll.last_dispatch);
	return rc;
}

/* Untimed before a timed receive: the send, and every source's landed. */
static int dispatch_send_landed(void *p)
{
	struct lll_state *st = p;
	int rc = dispatch_send(st);
	return rc ? rc : ep_ll_dispatch_wait(&st->coll);
}

/* Combine's send: the reduced rows (with --zero-copy already in the combine buffer). */
static int combine_send(void *p)
{
	struct lll_state *st = p;
	st->stage = LLL_REDUCED;
	return ep_ll_combine_send(&st->coll, combine_input(st));
}

static int combine_recv(void *p)
{
	struct lll_state *st = p;
	int rc = ep_ll_combine_recv(&st->coll, st->topk_idx, st->topk_weights, combined_x(st));
	st->stage = rc ? st->stage : LLL_COMBINED;
	if (!rc)
		arrived(st, &st->coll.last_combine);
	return rc;
}

static int combine_send_landed(void *p)
{
	struct lll_state *st = p;
	int rc = combine_send(st);
	return rc ? rc : ep_ll_combine_wait(&st->coll);
}

/* ---- --dump ---- */

/* Rows of block b of o's layout, compact in (expert, packed row) order as
 * src holds them, into dst's [L][R*N][H] (rows past the counts zero). */
static void unpack_rows(const struct ep_ll_packed *o, size_t b, const uint16_t *src, size_t cap, uint16_t *dst)
{
	size_t n = 0, H = o->H;
	for (size_t e = 0; e < o->L; e++)
		for (size_t p = 0; p < ep_ll_packed_rows(o, b, e) && n < cap; p++, n++)
			memcpy(dst + (e * o->RN + p) * H, src + n * H, H * 2);
}

/* Writes this rank's tensors as DIR/rank<world>/<name>.npy: low-latency's
 * (x, topk_idx, topk_weights, packed_recv_*, combined_x), then the
 * layer's: moe_tp_gathered_* ([moe_tp] blocks in rotation order),
 * moe_tp_partial (this rank's stand-in of every gathered row,
 * [moe_tp][L][R*N][H]), moe_tp_reduced_x (combine's input, [L][R*N][H])
 * and attn_tp_gathered_x (tp > 1), as cli/oracle_ll_layer.c's golden.
 * Rows past the counts are zero (cli/ll_packed.h). 0 or -errno. */
static int lll_dump(void *p, const char *dir)
{
	struct lll_state *st = p;
	const struct ep_ll_config *c = &st->cfg;
	struct ep_ll_packed own, gath;
	size_t T = (size_t)st->T, H = (size_t)c->hidden, K = (size_t)c->num_topk, L = lll_L(c), RN = lll_RN(c);
	size_t M = (size_t)st->moe_tp, me = (size_t)st->env->rank;
	uint16_t *parts = calloc(M * L * RN * H + 1, 2), *cx = calloc(L * RN * H + 1, 2);
	int rc = ep_ll_packed_init(&own, c, 1), rc2 = ep_ll_packed_init(&gath, c, M);
	rc = rc ? rc : rc2 ? rc2 : !parts || !cx ? -ENOMEM : 0;
	if (!rc) {
		ep_ll_packed_put(&own, 0, &st->out);
		for (size_t i = 0; i < M; i++) {
			ep_ll_packed_put(&gath, i, &st->gath[i]);
			unpack_rows(&gath, i, partials_of(st, (int)me, (int)i), st->cap, parts + i * L * RN * H);
		}
		for (size_t e = 0; e < L; e++)
			memcpy(cx + e * RN * H, st->combine_x + e * RN * H, ep_ll_packed_rows(&own, 0, e) * H * 2);
		size_t sx[2] = {T, H}, sk[2] = {T, K}, sp[4] = {M, L, RN, H}, sc[3] = {L, RN, H};
		size_t sa[2] = {ep_attn_gather_rows(&st->attn), H};
		rc = ep_rank_npy_write(dir, (int)me, "x", EP_NPY_U2, sx, 2, st->x);
		rc = rc ? rc : ep_rank_npy_write(dir, (int)me, "topk_idx", EP_NPY_I8, sk, 2, st->topk_idx);
		rc = rc ? rc : ep_rank_npy_write(dir, (int)me, "topk_weights", EP_NPY_F4, sk, 2, st->topk_weights);
		rc = rc ? rc : ep_ll_packed_write(&own, dir, (int)me, "packed_recv", 0);
		rc = rc ? rc : ep_ll_packed_write(&gath, dir, (int)me, "moe_tp_gathered", 1);
		rc = rc ? rc : ep_rank_npy_write(dir, (int)me, "moe_tp_partial", EP_NPY_U2, sp, 4, parts);
		rc = rc ? rc : ep_rank_npy_write(dir, (int)me, "moe_tp_reduced_x", EP_NPY_U2, sc, 3, cx);
		rc = rc ? rc : ep_rank_npy_write(dir, (int)me, "combined_x", EP_NPY_U2, sx, 2, combined_x(st));
		if (!rc && st->geo.tp > 1)
			rc = ep_rank_npy_write(dir, (int)me, "attn_tp_gathered_x", EP_NPY_U2, sa, 2, st->attn.out);
	}
	ep_ll_packed_fini(&own);
	ep_ll_packed_fini(&gath);
	free(parts);
	free(cx);
	return rc;
}

/* ---- across nodes ---- */

/* The attention gather of a group of whole nodes meets the job first (the
 * node's barrier, then the group's remote ranks: every node's ranks done
 * reading the last contents, as in lll_op_enter). */
static int attn_ready(void *p)
{
	struct lll_state *st = p;
	st->attn_t0 = ep_now_ns();
	return ep_ll_barrier(&st->coll);
}

/* After the puts: one signal each way with the MoE-EP group's remote ranks,
 * the rail peers among them (rank (m, l) is in group l % moe_tp, as rank
 * (n, l) is), so every rail peer's rows landed here; the arrival of the
 * group's other nodes' rows is when the exchange ended. */
static int attn_exchange(void *p)
{
	struct lll_state *st = p;
	int64_t ns[EP_MAX_NODES] = {0};
	int rc = ep_ll_exchange(&st->coll), per = st->geo.tp / st->geo.P;
	if (rc)
		return rc;
	for (int m = st->geo.d * per; m < (st->geo.d + 1) * per && m < EP_MAX_NODES; m++)
		ns[m] = m == st->env->rank / st->geo.P ? 0 : ep_now_ns() - st->attn_t0;
	ep_endpoint_arrived(&st->net, st->op, ns);
	return 0;
}

/* Every rank of the job meets before each run of an op (untimed): its
 * node's barrier, then a signal each way with its MoE-EP group's ranks on
 * the other nodes (each of which passed its own node's barrier first; every
 * group holds ranks of every node). On one host nothing happens. */
static int lll_op_enter(void *p, const struct ep_op_desc *op, int index)
{
	struct lll_state *st = p;
	if (!st->nodes_job)
		return 0;
	st->op = index, st->op_tag = op->tag;
	ep_set_phase(st->env->waiter, "cluster barrier");
	int rc = ep_ll_barrier(&st->coll);
	if (rc || !st->tpnet)
		return rc;
	/* MoE-TP groups of whole nodes: the MoE-EP group holds the nodes of
	 * one residue mod M = moe_tp / P, the MoE-TP group one node of each:
	 * a second node barrier, then a signal each way with its members. */
	return (rc = ep_barrier(st->env->waiter)) ? rc : ep_lltpnet_meet(&st->tpn);
}

/* After an op's timed loop across nodes: its figures for the node's report
 * (nvl: DeepEP's bytes to this node's ranks; the MoE-TP and attention ops
 * stay in the node, all of theirs). */
static void lll_op_leave(void *p, const struct ep_op_desc *op, int index, uint64_t alg)
{
	struct lll_state *st = p;
	uint64_t none[EP_MAX_NODES] = {0}, nvl = alg;
	const uint64_t *bytes = none;
	if (!st->nodes_job)
		return;
	if (op->tag == OP_DISPATCH)
		bytes = st->coll.last_dispatch.net_bytes, nvl = st->disp_nvl;
	else if (op->tag == OP_COMBINE)
		bytes = st->coll.last_combine.net_bytes, nvl = st->comb_nvl;
	else if ((op->tag == OP_TP_GATHER || op->tag == OP_TP_REDUCE) && st->tpnet) {
		uint64_t wire = 0;
		bytes = st->tpn.net_bytes[op->tag == OP_TP_GATHER ? EP_LLTPNET_GATHER : EP_LLTPNET_REDUCE];
		for (int m = 0; m < st->net.ctx->nodes && m < EP_MAX_NODES; m++)
			wire += bytes[m];
		nvl = alg > wire ? alg - wire : 0;
	} else if (op->tag == OP_ATTN && st->attn.net) { /* tp > P: the rows put to the rail peers */
		uint64_t wire = 0;
		for (int m = 0; m < st->net.ctx->nodes && m < EP_MAX_NODES; m++)
			wire += st->attn_net.net_bytes[m];
		bytes = st->attn_net.net_bytes, nvl = alg > wire ? alg - wire : 0;
	}
	ep_endpoint_figures(&st->net, index, alg, nvl, bytes);
}

#define A2A EP_OPS_A2A
static const struct ep_op_desc lll_ops[] = {
	{.name = "ep_dispatch", .mask = EP_OPS_DISPATCH | A2A, .tag = OP_DISPATCH, .run = dispatch_run, .check = dispatch_check,
	 .bytes = dispatch_bytes, .recv_rows = dispatch_rows, .outputs = dispatch_outputs, .receives = 1},
	{.name = "moe_tp_gather", .mask = EP_OPS_DISPATCH | A2A | EP_OPS_MOE_TP, .tag = OP_TP_GATHER, .prepare = gather_prepare,
	 .run = gather_run, .check = gather_check, .bytes = gather_bytes, .outputs = gather_outputs},
	{.name = "moe_tp_reduce", .mask = EP_OPS_COMBINE | A2A | EP_OPS_MOE_TP, .tag = OP_TP_REDUCE, .prepare = reduce_prepare,
	 .run = reduce_run, .check = reduce_check, .bytes = reduce_bytes, .outputs = reduce_outputs},
	{.name = "ep_combine", .mask = EP_OPS_COMBINE | A2A, .tag = OP_COMBINE, .prepare = combine_prepare, .run = combine_run,
	 .check = combine_check, .bytes = combine_bytes, .outputs = combine_outputs},
	/* --hook: the send and receive phases of EP dispatch and combine, each timed alone */
	{.name = "ep_dispatch-send", .mask = EP_OPS_DISPATCH | A2A | EP_OPS_HOOK, .tag = OP_DISPATCH, .run = dispatch_send,
	 .after = dispatch_recv, .check = dispatch_check, .bytes = dispatch_bytes},
	{.name = "ep_dispatch-recv", .mask = EP_OPS_DISPATCH | A2A | EP_OPS_HOOK, .tag = OP_DISPATCH,
	 .before = dispatch_send_landed, .run = dispatch_recv, .check = dispatch_check, .bytes = dispatch_bytes},
	{.name = "ep_combine-send", .mask = EP_OPS_COMBINE | A2A | EP_OPS_HOOK, .tag = OP_COMBINE, .prepare = combine_prepare,
	 .run = combine_send, .after = combine_recv, .check = combine_check, .bytes = combine_bytes},
	{.name = "ep_combine-recv", .mask = EP_OPS_COMBINE | A2A | EP_OPS_HOOK, .tag = OP_COMBINE, .prepare = combine_prepare,
	 .before = combine_send_landed, .run = combine_recv, .check = combine_check, .bytes = combine_bytes},
	{.name = "attn_tp_gather", .mask = EP_OPS_COMBINE | EP_OPS_ATTN_TP, .tag = OP_ATTN, .prepare = attn_prepare, .run = attn_run,
	 .check = attn_check, .bytes = attn_bytes, .outputs = attn_outputs},
};

const struct ep_variant ep_ll_layer_variant = {
	.name = "low-latency-layer",
	.size = lll_size,
	.setup = lll_setup,
	.teardown = lll_teardown,
	.dump = lll_dump,
	.reseed = lll_reseed,
	.op_enter = lll_op_enter,
	.op_leave = lll_op_leave,
	.tensors = "packed_recv_x moe_tp_gathered_x moe_tp_reduced_x combined_x attn_tp_gathered_x",
	.rows_per_expert = 1,
	.nops = (int)(sizeof(lll_ops) / sizeof(lll_ops[0])),
	.ops = lll_ops,
};
