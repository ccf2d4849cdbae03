/* ascend.c - the variant `intranode --ep-semantics ascend` runs: Ascend's dispatch and combine in a plain EP group.
 *
 * Per-rank state: this rank's inputs regenerated from the seed (x, expert
 * ids and scales from the reference's routing, smoothing scales,
 * shared_expert_x from bias stream 0 with --bias 1), the collective
 * (collectives/ascend.h) over all ranks of the host, the reference
 * (reference/ascend_ref.h) and the expert outputs between the two ops.
 * The expert stand-in finds each row's local expert from
 * expert_token_nums, as an expert kernel would, so a wrong count also
 * shows in combine.
 *
 * Across nodes (launched by the node job, cli/cluster/node_job.c, with the
 * node's struct ep_node_ctx as env->variant_ctx) a rank is the same with
 * global ranks, a node arena of its P ranks' areas and a network endpoint
 * (cli/cluster/endpoint.h) connected to every rank of the other nodes (the
 * collective's full mesh); all ranks of the job meet before each run of an
 * op (op_enter, untimed), and after an op's timed loop (op_leave) a rank
 * leaves its figures: rdma = the op's algorithm bytes, nvl = those to ranks
 * of its own node, per node m the bytes put to m. A layer whose
 * attention-TP group holds whole nodes (tp a multiple of P) gathers over
 * the same full mesh (cli/attn_gather.h's network half: the job meets in
 * ep_ascend_barrier, each rank puts its combined rows to the group's
 * members on other nodes, ep_ascend_exchange ends the puts), its receive
 * area and the node's slots registered beside the collective's area.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ascend.h"
#include "cli/attn_gather.h"
#include "cli/bench.h"
#include "cli/cluster/endpoint.h"
#include "cli/command.h"
#include "collectives/ascend.h"
#include "collectives/ep.h"
#include "collectives/error.h"
#include "collectives/numeric.h"
#include "collectives/transport/transport.h"
#include "reference/ascend_ref.h"
#include "reports/atomic_file.h"
#include "reports/npy.h"

/* Op tags: which of the collective's figures an op's network bytes are. */
enum { OP_DISPATCH, OP_COMBINE, OP_ATTN };

/* Transport regions of a layer's attention-TP gather across nodes, after
 * the collective's (collectives/ascend_int.h: ASCEND_NET_AREA = 0). */
enum { ATTN_RECV = 1, ATTN_SLOTS = 2 };

struct ascend_state {
	struct ep_bench_env *env;
	struct ep_ascend_params p;
	struct ep_ascend_inputs in;
	struct ep_ascend_ref ref;
	struct ep_ascend coll;
	int me, T;                 /* EP rank (= rank), its active tokens T_r */
	uint16_t *x;               /* [T][H] */
	float *smooth;             /* [(S_n + E)][H] or NULL */
	uint16_t *shared_x;        /* [T][H] or NULL */
	uint16_t *expand_y;        /* [capacity][H]: the expert outputs, combine's expand_x */
	uint16_t *out_x;           /* [T][H]: combine's x */
	struct ep_ascend_out out;  /* the last dispatch's */
	int dispatched, combined, gathered; /* the last op of each kind completed (gathered: the attention-TP gather) */
	/* a parallel configuration's layer (moe_tp = 1, tp > 1): out_x lives in
	 * the arena's slots and the attention-TP gather follows (cli/attn_gather.h) */
	struct ep_attn_gather attn;
	int layer;
	/* its group spans nodes (tp a multiple of P, a node job): the gather's
	 * network half over the collective's full mesh */
	struct ep_attn_net attn_net;
	uint16_t *attn_recv;       /* [tp][slot_rows][H], region ATTN_RECV */
	int64_t attn_t0;           /* the gather's start (ep_now_ns), for the arrival figures */
	uint64_t self_rows[2];     /* rows this rank moves to itself: dispatch, combine */
	uint64_t combine_rows;     /* slots returned to this rank */
	uint64_t node_rows[2];     /* of the algorithm rows, those within this rank's node: dispatch, combine */
	/* a rank of a node job (env->variant_ctx set) */
	int nodes_job;
	struct ep_endpoint net;
};

void ep_ascend_run_params(const struct ep_run *run, struct ep_ascend_params *p)
{
	const struct ep_shape *s = &run->shape;
	const struct ep_run_cfg *c = run->cfg;
	*p = (struct ep_ascend_params){
		.num_ranks = s->num_ranks, .max_tokens = s->num_tokens, .hidden = s->hidden,
		.num_topk = s->num_topk, .num_experts = s->num_experts,
		.shared_experts = c->shared_experts, .shared_ranks = c->shared_expert_ranks,
		.quant = s->dtype == EP_DTYPE_INT8, .comm_quant = c->comm_quant,
		.counts_prefix = s->expert_counts == EP_COUNTS_PREFIX, .ranks_per_node = c->ranks_per_node,
	};
}

void ep_ascend_run_inputs(const struct ep_run *run, struct ep_ascend_inputs *in)
{
	*in = (struct ep_ascend_inputs){.seed = run->cfg->seed, .routing = &run->routing,
					.smooth = run->cfg->smooth_scales, .shared_x = run->shape.num_bias > 0};
}

static size_t capacity_of(const struct ep_ascend_params *p)
{
	size_t c = 0;
	for (int r = 0; r < p->num_ranks; r++) {
		size_t n = ep_ascend_rank_capacity(p, r);
		c = n > c ? n : c;
	}
	return c;
}

/* Ranks of one arena: a node's in a node job, else all. */
static int node_ranks(const struct ep_run *run)
{
	return run->cfg->ranks_per_node ? run->cfg->ranks_per_node : run->shape.num_ranks;
}

static int ascend_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	struct ep_ascend_params p;
	ep_ascend_run_params(run, &p);
	const struct ep_shape *s = &run->shape;
	double R = s->num_ranks, T = s->num_tokens, H = s->hidden, K = s->num_topk;
	double cap = (double)capacity_of(&p), Sm = (double)(p.shared_experts + p.num_experts) * H;
	run->capacity = (size_t)cap;
	*arena_bytes = ep_ascend_arena_bytes(&p);
	if (run->cfg->ops & EP_OPS_ATTN_TP) /* a layer's combined slices, shared for the attention-TP gather */
		*arena_bytes += ep_attn_gather_slot_bytes(node_ranks(run), (size_t)s->num_tokens, s->hidden);
	double b = T * H * 2 * 3 + cap * H * 2 + R * T * K * 12 + cap * 12 + 8 * Sm + 16 * H +
		   (double)ep_ascend_ctx_bytes(&p);
	*rank_bytes = b < 0x1p60 ? (size_t)b : (size_t)1 << 60;
	return 0;
}

static void ascend_free(struct ascend_state *st)
{
	ep_ascend_ref_fini(&st->ref);
	free(st->x);
	free(st->smooth);
	free(st->shared_x);
	free(st->expand_y);
	if (!st->layer)
		free(st->out_x);
	st->x = st->shared_x = st->expand_y = st->out_x = NULL;
	st->smooth = NULL;
	st->dispatched = st->combined = st->gathered = 0;
}

static void ascend_teardown(void *p)
{
	struct ascend_state *st = p;
	if (!st)
		return;
	ep_endpoint_close(&st->net); /* first: a failed rank leaves at once */
	ascend_free(st);
	ep_ascend_fini(&st->coll);
	free(st->attn.out);
	free(st->attn_recv);
	free(st);
}

/* Rows that stay on this rank: its dispatch rows from itself, and its
 * tokens' slots whose expert lives here (combine). */
static void count_self_rows(struct ascend_state *st)
{
	const struct ep_ascend_params *p = &st->p;
	int K = p->num_topk, L = ep_ascend_local_experts(p), me = st->me, P = node_ranks(st->env->run);
	int rpse = p->shared_experts ? p->shared_ranks / p->shared_experts : 1;
	const int64_t *ids = ep_ascend_ref_ids(&st->ref, me);
	memset(st->self_rows, 0, sizeof(st->self_rows));
	memset(st->node_rows, 0, sizeof(st->node_rows));
	for (size_t m = 0; m < st->ref.num_recv; m++) {
		st->self_rows[0] += st->ref.rows[3 * m] == me;
		st->node_rows[0] += st->ref.rows[3 * m] / P == me / P;
	}
	st->combine_rows = 0;
	for (int t = 0; t < st->T; t++) {
		for (int j = 0; j < K; j++) {
			int64_t e = ids[(size_t)t * K + j];
			st->combine_rows += e >= 0;
			st->self_rows[1] += e >= 0 && p->shared_ranks + e / L == me;
			st->node_rows[1] += e >= 0 && (p->shared_ranks + e / L) / P == me / P;
		}
		for (int j = 0; j < p->shared_experts; j++) {
			st->self_rows[1] += me % rpse + j * rpse == me;
			st->node_rows[1] += (me % rpse + j * rpse) / P == me / P;
		}
		st->combine_rows += (uint64_t)p->shared_experts;
	}
}

/* This rank's inputs and reference for env->run (setup and reseed). */
static int ascend_build(struct ascend_state *st)
{
	const struct ep_run *run = st->env->run;
	const struct ep_run_cfg *c = run->cfg;
	int rc;
	ep_ascend_run_params(run, &st->p);
	st->me = st->env->rank;
	ep_ascend_run_inputs(run, &st->in);
	if ((rc = ep_ascend_ref_init(&st->ref, &st->p, &run->shape, &st->in, st->me)))
		return rc;
	size_t T = (size_t)(st->T = st->ref.tokens[st->me]), H = (size_t)st->p.hidden;
	size_t S = (size_t)(st->p.shared_experts + st->p.num_experts);
	st->x = malloc(2 * T * H + 2);
	st->out_x = st->layer ? ep_attn_gather_slot(&st->attn, st->me) : malloc(2 * T * H + 2);
	st->expand_y = malloc(2 * capacity_of(&st->p) * H + 2);
	if (st->in.smooth && st->p.quant && (st->smooth = malloc(4 * S * H)))
		ep_ascend_gen_smooth(c->seed, (int)S, (int)H, st->smooth);
	if (st->in.shared_x && (st->shared_x = malloc(2 * T * H + 2)))
		for (size_t t = 0; t < T; t++)
			ep_gen_bf16_row(c->seed, &run->routing, EP_STREAM_BIAS0, st->me, (int64_t)t, (int)H,
					st->shared_x + t * H);
	if (!st->x || !st->out_x || !st->expand_y || (st->in.smooth && st->p.quant && !st->smooth) ||
	    (st->in.shared_x && !st->shared_x))
		return -ENOMEM;
	for (size_t t = 0; t < T; t++)
		ep_gen_bf16_row(c->seed, &run->routing, EP_STREAM_X, st->me, (int64_t)t, (int)H, st->x + t * H);
	count_self_rows(st);
	return 0;
}

/* The attention-TP gather across nodes starts with every rank of the job
 * met (ep_attn_gather's `ready`: the last gather's receive areas read). */
static int attn_ready(void *p)
{
	struct ascend_state *st = p;
	st->attn_t0 = ep_now_ns();
	return ep_ascend_barrier(&st->coll);
}

/* Its puts end with one signal to every remote rank, theirs awaited; the
 * group's other nodes' rows then arrived (the figures' arrival times). */
static int attn_exchange(void *p)
{
	struct ascend_state *st = p;
	int64_t ns[EP_MAX_NODES] = {0};
	int rc = ep_ascend_exchange(&st->coll), P = st->attn.P, per = st->attn.tp / P;
	if (rc)
		return rc;
	for (int m = st->attn.d * per; m < (st->attn.d + 1) * per; m++)
		ns[m] = m == st->me / P ? 0 : ep_now_ns() - st->attn_t0;
	ep_endpoint_arrived(&st->net, OP_ATTN, ns);
	return 0;
}

/* A group of whole nodes in a node job: the receive area and the gather's
 * network half (its regions registered by attn_regions, before connecting). */
static int attn_net_setup(struct ascend_state *st)
{
	size_t bytes = ep_attn_gather_recv_bytes(st->attn.tp, st->attn.slot_rows, st->attn.hidden);
	if (!st->nodes_job || st->attn.tp <= st->attn.P)
		return 0;
	if (posix_memalign((void **)&st->attn_recv, EP_PAGE, bytes))
		return -ENOMEM;
	memset(st->attn_recv, 0, bytes);
	st->attn_net = (struct ep_attn_net){.t = &st->net.net, .me = st->env->rank, .recv_id = ATTN_RECV,
					    .source_id = ATTN_SLOTS, .recv = st->attn_recv, .ready = attn_ready,
					    .exchange = attn_exchange, .ctx = st};
	st->attn.net = &st->attn_net;
	return 0;
}

/* Across nodes: the attention gather's regions beside the collective's. */
static int attn_regions(struct ascend_state *st)
{
	const struct ep_attn_gather *a = &st->attn;
	int rc;
	if (!a->net)
		return 0;
	if ((rc = ep_transport_reg_mem(&st->net.net, ATTN_RECV, st->attn_recv,
				       ep_attn_gather_recv_bytes(a->tp, a->slot_rows, a->hidden))) ||
	    (rc = ep_transport_reg_mem(&st->net.net, ATTN_SLOTS, a->slots,
				       ep_attn_gather_slot_bytes(a->P, a->slot_rows, a->hidden))))
		return ep_endpoint_fail(&st->net, rc, "attention gather buffers");
	return 0;
}

/* The collective over the arena; across nodes first the endpoint, then the
 * collective (which registers its area with it), then the full mesh. Once:
 * reseeds keep it (its buffers take any routing of BS tokens per rank). */
static int ascend_coll(struct ascend_state *st)
{
	struct ep_bench_env *env = st->env;
	int rc, peers[EP_MAX_NODES * EP_MAX_LOCAL];
	if (st->nodes_job && (rc = ep_endpoint_open(&st->net, env, st->p.num_ranks)))
		return rc;
	if ((rc = ep_ascend_init(&st->coll, &st->p, st->me, env->arena, env->waiter)))
		return st->nodes_job ? ep_endpoint_fail(&st->net, rc, "Ascend buffers") : rc;
	if (!st->nodes_job)
		return 0;
	if ((rc = ep_ascend_attach_net(&st->coll, &st->net.net)))
		return ep_endpoint_fail(&st->net, rc, "Ascend buffers");
	if ((rc = attn_regions(st)))
		return rc;
	int n = ep_ascend_peers(&st->coll, peers);
	return ep_endpoint_connect(&st->net, peers, n, "the ranks of the other nodes");
}

static int slice_len(void *p, int r)
{
	return ((struct ascend_state *)p)->ref.tokens[r];
}

static int combined_row(void *p, int r, int t, uint16_t *want)
{
	return ep_ascend_ref_combined_row(&((struct ascend_state *)p)->ref, r, t, want);
}

/* A layer's attention-TP gather: the slots after the collective's arena. */
static int layer_setup(struct ascend_state *st)
{
	const struct ep_run *run = st->env->run;
	int tp = run->parallel.v[EP_PAR_TP];
	struct ep_ascend_params p;
	ep_ascend_run_params(run, &p);
	st->layer = 1;
	st->attn = (struct ep_attn_gather){.waiter = st->env->waiter, .tp = tp, .d = st->env->rank / tp,
					   .P = node_ranks(run), .hidden = run->shape.hidden,
					   .slot_rows = (size_t)run->shape.num_tokens,
					   .slots = (uint16_t *)((char *)st->env->arena + ep_ascend_arena_bytes(&p)),
					   .len = slice_len, .expected = combined_row, .ctx = st};
	st->attn.out = malloc(2 * ((size_t)tp * st->attn.slot_rows * (size_t)run->shape.hidden + 1));
	return st->attn.out ? attn_net_setup(st) : -ENOMEM;
}

static int ascend_setup(struct ep_bench_env *env, void **out)
{
	struct ascend_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->nodes_job = env->variant_ctx != NULL;
	int rc = (env->run->cfg->ops & EP_OPS_ATTN_TP) ? layer_setup(st) : 0;
	if (!rc)
		rc = ascend_build(st);
	if (!rc)
		rc = ascend_coll(st);
	if (rc) {
		ascend_teardown(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* Soak and routing steps: everything anew over the same arena (sized for any routing). */
static int ascend_reseed(void *p)
{
	struct ascend_state *st = p;
	ascend_free(st);
	st->coll.have_handle = 0; /* the last dispatch's expert ids are gone */
	return ascend_build(st);
}

static int dispatch_run(void *p)
{
	struct ascend_state *st = p;
	struct ep_ascend_in in = {st->T, st->x, ep_ascend_ref_ids(&st->ref, st->me), st->smooth};
	int rc = ep_ascend_dispatch(&st->coll, &in, &st->out);
	st->dispatched = rc == 0;
	if (rc == 0 && st->nodes_job)
		ep_endpoint_arrived(&st->net, OP_DISPATCH, st->coll.arrival_ns);
	st->combined = st->gathered = 0;
	return rc;
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct ascend_state *st = p;
	ep_ascend_ref_check_dispatch(&st->ref, &st->out, rep);
	return 0;
}

/* The local expert of row m from expert_token_nums (counts or prefix sums). */
static int row_expert(const struct ascend_state *st, size_t m)
{
	int64_t end = 0;
	for (int e = 0; e < st->out.num_local; e++) {
		end = st->p.counts_prefix ? st->out.expert_token_nums[e] : end + st->out.expert_token_nums[e];
		if ((int64_t)m < end)
			return e;
	}
	return st->out.num_local - 1; /* counts that do not cover the rows: the check says so */
}

static void apply_experts(struct ascend_state *st)
{
	size_t H = (size_t)st->p.hidden, rb = ep_ascend_row_bytes(&st->p);
	for (size_t m = 0; m < st->out.num_recv; m++)
		ep_ascend_expert_row(st->in.routing->payload, st->me, row_expert(st, m), st->p.quant,
				     (const uint8_t *)st->out.expand_x + m * rb,
				     st->p.quant ? st->out.dynamic_scales[m] : 0.0f, (int)H, st->expand_y + m * H);
}

static int combine_prepare(void *p)
{
	struct ascend_state *st = p;
	int rc;
	if (!st->dispatched && (rc = dispatch_run(st)))
		return rc;
	ep_set_phase(st->env->waiter, "experts");
	apply_experts(st);
	return 0;
}

static int combine_run(void *p)
{
	struct ascend_state *st = p;
	int rc = ep_ascend_combine(&st->coll, st->expand_y, ep_ascend_ref_weights(&st->ref, st->me), st->shared_x,
				   st->out_x);
	st->combined = rc == 0;
	st->gathered = 0;
	if (rc == 0 && st->nodes_job)
		ep_endpoint_arrived(&st->net, OP_COMBINE, st->coll.arrival_ns);
	return rc;
}

/* A layer's attention-TP gather: after a combine (run here when the pass has none). */
static int attn_prepare(void *p)
{
	struct ascend_state *st = p;
	int rc;
	if (st->combined)
		return 0;
	return (rc = combine_prepare(st)) ? rc : combine_run(st);
}

static int attn_run(void *p)
{
	struct ascend_state *st = p;
	int rc = ep_attn_gather_run(&st->attn);
	st->gathered = rc == 0;
	return rc;
}

/* The data faults' target of the attention-TP gather (cli/damage.h). */
static int attn_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct ascend_state *st = p;
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){"attn_tp_gathered_x", (uint8_t *)st->attn.out, ep_attn_gather_rows(&st->attn),
				       2 * (size_t)st->p.hidden};
	return 1;
}

static int attn_check(void *p, struct ep_check_report *rep)
{
	ep_attn_gather_check(&((struct ascend_state *)p)->attn, rep);
	return 0;
}

static void attn_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	struct ascend_state *st = (struct ascend_state *)p;
	ep_attn_gather_bytes(&st->attn, (size_t)st->T, alg, wire);
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct ascend_state *st = p;
	ep_ascend_ref_check_combine(&st->ref, st->out_x, rep);
	return 0;
}

/* Algorithm bytes: rows this rank receives x row bytes; wire bytes leave out its own rows. */
static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct ascend_state *st = p;
	uint64_t row = ep_ascend_row_bytes(&st->p) + (st->p.quant ? 4 : 0);
	*alg = st->ref.num_recv * row;
	*wire = (st->ref.num_recv - st->self_rows[0]) * row;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct ascend_state *st = p;
	uint64_t H = (uint64_t)st->p.hidden, row = st->p.comm_quant ? H + 2 * H / 8 : 2 * H;
	*alg = st->combine_rows * row;
	*wire = (st->combine_rows - st->self_rows[1]) * row;
}

static uint64_t ascend_recv_rows(const void *p)
{
	return ((const struct ascend_state *)p)->ref.num_recv;
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
	const struct ascend_state *st = p;
	const struct ep_ascend_out *o = &st->out;
	int n = add_view(v, 0, max, "expand_x", o->expand_x, o->num_recv, ep_ascend_row_bytes(&st->p));
	n = add_view(v, n, max, "dynamic_scales", o->dynamic_scales, o->num_recv, 4);
	n = add_view(v, n, max, "assist_info_for_combine", o->assist_info, o->num_recv, 12);
	n = add_view(v, n, max, "expert_token_nums", o->expert_token_nums, 1, 8 * (size_t)o->num_local);
	return add_view(v, n, max, "ep_recv_counts", o->ep_recv_counts, 1, 4 * (size_t)o->num_counts);
}

static int combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	const struct ascend_state *st = p;
	return add_view(v, 0, max, "x", st->out_x, (size_t)st->T, 2 * (size_t)st->p.hidden);
}

/* One tensor of the dump. */
struct dump_item {
	const char *name;
	enum ep_npy_dtype d;
	size_t d0, d1;
	int nd;
	const void *data; /* NULL: not in this run */
};

/* path holds the rank's directory (dir_len chars, room for a name after it). */
static int write_items(char *path, size_t dir_len, size_t cap, const struct dump_item *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!t[i].data)
			continue;
		size_t shape[2] = {t[i].d0, t[i].d1};
		snprintf(path + dir_len, cap - dir_len, "/%s.npy", t[i].name);
		int rc = ep_npy_write(path, t[i].d, shape, t[i].nd, t[i].data);
		if (rc)
			return rc;
	}
	return 0;
}

/* Dispatch's outputs in Ascend's shapes: A rows (this rank's capacity),
 * rows past the received ones zero (section 4's choice), assist_info_for_combine [A * 128]. */
static int dump_dispatch_outputs(const struct ascend_state *st, char *path, size_t dir_len, size_t cap)
{
	const struct ep_ascend_out *o = &st->out;
	size_t A = o->capacity, n = o->num_recv, rb = ep_ascend_row_bytes(&st->p);
	uint8_t *x = calloc(A * rb + 1, 1);
	float *sc = calloc(A + 1, sizeof(float));
	int32_t *info = calloc(A * 128 + 1, sizeof(int32_t));
	int rc = -ENOMEM;
	if (x && sc && info) {
		memcpy(x, o->expand_x, n * rb);
		if (o->dynamic_scales)
			memcpy(sc, o->dynamic_scales, n * sizeof(float));
		memcpy(info, o->assist_info, 3 * n * sizeof(int32_t));
		struct dump_item t[] = {
			{"expand_x", st->p.quant ? EP_NPY_I1 : EP_NPY_U2, A, (size_t)st->p.hidden, 2, x},
			{"dynamic_scales", EP_NPY_F4, A, 0, 1, o->dynamic_scales ? sc : NULL},
			{"assist_info_for_combine", EP_NPY_I4, A * 128, 0, 1, info},
			{"expert_token_nums", EP_NPY_I8, (size_t)o->num_local, 0, 1, o->expert_token_nums},
			{"ep_recv_counts", EP_NPY_I4, (size_t)o->num_counts, 0, 1, o->ep_recv_counts},
		};
		rc = write_items(path, dir_len, cap, t, sizeof(t) / sizeof(t[0]));
	}
	free(x);
	free(sc);
	free(info);
	return rc;
}

/* --dump: DIR/rank<N>/<name>.npy. Inputs by role (dispatch_x, expert_ids,
 * expert_scales, smooth_scales, shared_expert_x, expert_outputs: combine's
 * expand_x), outputs by Ascend's names (expand_x, dynamic_scales,
 * assist_info_for_combine, expert_token_nums, ep_recv_counts, x), and
 * in a layer the attention-TP group's output attn_tp_gathered_x. */
static int ascend_dump(void *p, const char *dir)
{
	struct ascend_state *st = p;
	size_t T = (size_t)st->T, H = (size_t)st->p.hidden, K = (size_t)st->p.num_topk;
	char path[4096];
	int rc, n = snprintf(path, sizeof(path), "%s/rank%d", dir, st->me);
	if (n < 0 || (size_t)n >= sizeof(path) - 64)
		return -ENAMETOOLONG;
	if ((rc = ep_mkdir_p(path)))
		return rc;
	struct dump_item t[] = {
		{"dispatch_x", EP_NPY_U2, T, H, 2, st->x},
		{"expert_ids", EP_NPY_I8, T, K, 2, ep_ascend_ref_ids(&st->ref, st->me)},
		{"expert_scales", EP_NPY_F4, T, K, 2, ep_ascend_ref_weights(&st->ref, st->me)},
		{"smooth_scales", EP_NPY_F4, (size_t)(st->p.shared_experts + st->p.num_experts), H, 2, st->smooth},
		{"shared_expert_x", EP_NPY_U2, T, H, 2, st->shared_x},
		{"expert_outputs", EP_NPY_U2, st->out.num_recv, H, 2, st->dispatched ? st->expand_y : NULL},
		{"x", EP_NPY_U2, T, H, 2, st->out_x},
		{"attn_tp_gathered_x", EP_NPY_U2, st->layer ? ep_attn_gather_rows(&st->attn) : 0, H, 2,
		 st->gathered ? st->attn.out : NULL},
	};
	if ((rc = write_items(path, (size_t)n, sizeof(path), t, sizeof(t) / sizeof(t[0]))))
		return rc;
	return st->dispatched ? dump_dispatch_outputs(st, path, (size_t)n, sizeof(path)) : 0;
}

/* Across nodes: every rank of the job meets before each run of an op
 * (untimed), so that iterations line up across nodes; on one host nothing. */
static int ascend_op_enter(void *p, const struct ep_op_desc *op, int index)
{
	struct ascend_state *st = p;
	(void)op, (void)index;
	if (!st->nodes_job)
		return 0;
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_ascend_barrier(&st->coll);
}

/* --fault link-down: cut this rank's connections to every rank of node
 * (the full mesh has one per pair); qp-error: the same by a queue-pair
 * error, which only verbs has. */
static int ascend_sever(void *p, int node, int qp_error)
{
	struct ascend_state *st = p;
	struct ep_transport *t = &st->net.net;
	int P = node_ranks(st->env->run), rc = 0;
	if (!st->nodes_job || (qp_error && strcmp(t->ops->name, "verbs"))) {
		ep_sync_fail(st->env->waiter, -EP_EUSAGE, "rank %d: --fault %s needs %s", st->me,
			     qp_error ? "qp-error" : "link-down", st->nodes_job ? "--transport verbs" : "a run across nodes");
		return -EP_EUSAGE;
	}
	for (int q = node * P; q < (node + 1) * P && !rc; q++)
		if ((rc = ep_transport_sever(t, q)))
			ep_sync_fail(st->env->waiter, rc, "rank %d: --fault link-down: cannot cut the connection to rank %d over %s%s%s",
				     st->me, q, t->ops->name, t->error[0] ? ": " : "", t->error);
	if (!rc)
		ep_set_phase(st->env->waiter, "fault.link-down");
	return rc;
}

/* Across nodes, after an op's timed loop: its figures for the node's report. */
static void ascend_op_leave(void *p, const struct ep_op_desc *op, int index, uint64_t alg)
{
	struct ascend_state *st = p;
	uint64_t none[EP_MAX_NODES] = {0}, nvl = 0, wire = 0;
	const uint64_t *bytes = none;
	if (!st->nodes_job)
		return;
	if (op->tag == OP_ATTN) { /* as DeepEP's layer: over the network when the group spans nodes, the rest in the node */
		for (int m = 0; st->attn.net && m < st->net.ctx->nodes; m++)
			wire += st->attn_net.net_bytes[m];
		bytes = st->attn.net ? st->attn_net.net_bytes : none;
		nvl = alg > wire ? alg - wire : 0;
	} else if (op->tag == OP_DISPATCH) {
		bytes = st->coll.net_bytes[0];
		nvl = st->node_rows[0] * (ep_ascend_row_bytes(&st->p) + (st->p.quant ? 4 : 0));
	} else if (op->tag == OP_COMBINE) {
		uint64_t H = (uint64_t)st->p.hidden;
		bytes = st->coll.net_bytes[1];
		nvl = st->node_rows[1] * (st->p.comm_quant ? H + 2 * H / 8 : 2 * H);
	}
	ep_endpoint_figures(&st->net, index, alg, nvl, bytes);
}

static const struct ep_op_desc ascend_ops[] = {
	{.name = "dispatch", .mask = EP_OPS_DISPATCH, .tag = OP_DISPATCH, .run = dispatch_run, .check = dispatch_check,
	 .bytes = dispatch_bytes, .recv_rows = ascend_recv_rows, .outputs = dispatch_outputs, .receives = 1},
	{.name = "combine", .mask = EP_OPS_COMBINE, .tag = OP_COMBINE, .prepare = combine_prepare, .run = combine_run,
	 .check = combine_check, .bytes = combine_bytes, .outputs = combine_outputs},
	{.name = "attn_tp_gather", .mask = EP_OPS_COMBINE | EP_OPS_ATTN_TP, .tag = OP_ATTN, .prepare = attn_prepare, .run = attn_run,
	 .check = attn_check, .bytes = attn_bytes, .outputs = attn_outputs},
};

const struct ep_variant ep_ascend_variant = {
	.name = "ascend",
	.size = ascend_size,
	.setup = ascend_setup,
	.teardown = ascend_teardown,
	.dump = ascend_dump,
	.reseed = ascend_reseed,
	.op_enter = ascend_op_enter,
	.sever = ascend_sever,
	.op_leave = ascend_op_leave,
	.rows_per_expert = 1,
	.tensors = "expand_x dynamic_scales assist_info_for_combine expert_token_nums ep_recv_counts x attn_tp_gathered_x",
	.sliced_routing = 1,
	.nops = 3,
	.ops = ascend_ops,
};
