/* moe_layer.c - the MoE layer variant: its arena, setup and reseed, EP dispatch and combine, the op table. */
#include "cli/moe_layer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/npy.h"

/* Where the layer's pieces lie in the arena (one plan for sizing and binding). */
struct layer_plan {
	size_t group_bytes;            /* one MoE-EP group's arena (0: allgather mode has none) */
	size_t partials, combined, ag_x, ag_idx, ag_w, recv, total;
	size_t part_rows;
};

static void plan_arena(const struct layer_state *st, size_t capacity, struct layer_plan *p)
{
	size_t P = (size_t)st->P, S = (size_t)st->sl.max_slice, H = (size_t)st->eshape.hidden;
	size_t K = (size_t)st->eshape.num_topk;
	p->group_bytes = st->allgather ? 0 : layer_ep_group_bytes(st, capacity);
	p->part_rows = st->allgather ? (size_t)st->W * S : (size_t)st->moe_tp * capacity;
	p->partials = p->group_bytes * (size_t)layer_group_slots(st);
	p->combined = ep_align_up(p->partials + P * p->part_rows * H * 2, EP_PAGE);
	p->ag_x = ep_align_up(p->combined + P * S * H * 2, EP_PAGE);
	size_t ag = st->allgather ? P * S : 0;
	p->ag_idx = ep_align_up(p->ag_x + ag * H * 2, EP_PAGE);
	p->ag_w = ep_align_up(p->ag_idx + ag * K * 8, EP_PAGE);
	p->recv = ep_align_up(p->ag_w + ag * K * 4, EP_PAGE);
	size_t recv = layer_net_spans(st) ? P * layer_net_recv_bytes(st) : 0;
	p->total = ep_align_up(p->recv + recv, EP_PAGE);
}

static int layer_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	struct layer_state st = {0};
	int rc = layer_geometry(&st, run, 0);
	run->capacity = 1;
	for (int i = 0; !rc && i < st.moe_tp; i++) {
		size_t most = ep_reference_max_recv(&st.irefs[i].base);
		run->capacity = most > run->capacity ? most : run->capacity;
	}
	if (layer_any_routing(run)) /* routes anew (soak, routing steps): room for any routing */
		run->capacity = (size_t)st.moe_ep * (size_t)(st.sl.max_slice > 0 ? st.sl.max_slice : 1);
	if (!rc) {
		struct layer_plan p;
		plan_arena(&st, run->capacity, &p);
		*arena_bytes = p.total;
		size_t rows = st.allgather ? (size_t)st.W * (size_t)st.sl.max_slice : (size_t)st.moe_tp * run->capacity;
		*rank_bytes = ep_normal_rank_bytes(&st.eshape, run->capacity) * (size_t)st.moe_tp +
			      layer_ep_rank_bytes(&st, run->capacity) + rows * layer_row_bytes(&st) +
			      (size_t)st.tp * (size_t)st.sl.max_slice * (size_t)st.eshape.hidden * 2;
	}
	layer_geometry_fini(&st);
	return rc;
}

static void layer_teardown(void *p)
{
	struct layer_state *st = p;
	if (!st)
		return;
	layer_ep_fini(st);
	if (st->env)
		st->env->waiter->traffic = st->area_traffic; /* the next point's variant finds the area as it was */
	free(st->tmap);
	ep_normal_io_fini(&st->io);
	layer_geometry_fini(st);
	free(st->rows_of);
	free(st->gx);
	free(st->gscales);
	free(st->gidx);
	free(st->gw);
	free(st->gsrc);
	free(st->attn.out);
	free(st->combined_w);
	free(st);
}

/* The private buffers: gathered rows, the attention-TP output, weights. */
static int private_buffers(struct layer_state *st, size_t capacity)
{
	size_t H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk, S = (size_t)st->sl.max_slice;
	size_t rows = st->allgather ? (size_t)st->W * S : (size_t)st->moe_tp * capacity;
	size_t nsc = (size_t)ep_dtype_num_scales(st->eshape.dtype, st->eshape.hidden);
	st->rows_of = calloc((size_t)st->moe_tp, sizeof(size_t));
	st->gx = malloc(rows * (st->allgather ? H * 2 : ep_dtype_row_bytes(st->eshape.dtype, (int)H)) + 1);
	st->gscales = malloc(sizeof(float) * (rows * nsc + 1));
	st->gidx = malloc(sizeof(int64_t) * (rows * K + 1));
	st->gw = malloc(sizeof(float) * (rows * K + 1));
	st->gsrc = malloc(sizeof(int32_t) * (rows + 1));
	st->attn.out = malloc(2 * ((size_t)st->tp * S * H + 1));
	st->combined_w = calloc(S * K + 1, sizeof(float));
	return st->rows_of && st->gx && st->gscales && st->gidx && st->gw && st->gsrc && st->attn.out &&
			       st->combined_w ? 0 : -ENOMEM;
}

/* Allgather mode: this rank's slice in its node slot, for the world gather. */
static void publish_slice(struct layer_state *st)
{
	size_t S = (size_t)st->sl.max_slice, H = (size_t)st->eshape.hidden, K = (size_t)st->eshape.num_topk;
	size_t n = (size_t)st->io.shape.num_tokens, at = (size_t)(st->me % st->P) * S;
	memcpy(st->area.ag_x + at * H, st->io.x, n * H * 2);
	memcpy(st->area.ag_idx + at * K, st->io.topk_idx, n * K * sizeof(int64_t));
	memcpy(st->area.ag_w + at * K, st->io.topk_weights, n * K * sizeof(float));
}

/* Binds the group arenas and the layer area; allgather publishes the slice. */
static int bind_arena(struct layer_state *st, void *arena, size_t capacity)
{
	struct layer_plan p;
	char *base = arena;
	plan_arena(st, capacity, &p);
	st->area = (struct layer_area){.partials = (uint16_t *)(base + p.partials), .ag_x = (uint16_t *)(base + p.ag_x),
				       .ag_idx = (int64_t *)(base + p.ag_idx), .ag_w = (float *)(base + p.ag_w),
				       .part_rows = p.part_rows};
	st->attn = (struct ep_attn_gather){.waiter = st->env->waiter, .tp = st->tp, .d = st->d, .P = st->P,
					   .hidden = st->eshape.hidden, .slot_rows = (size_t)st->sl.max_slice,
					   .slots = (uint16_t *)(base + p.combined), .out = st->attn.out,
					   .len = layer_slice_len, .expected = layer_expected_row, .ctx = st};
	st->recv = base + p.recv; /* across nodes: the receive regions (cli/moe_layer_net.c) */
	if (!st->allgather)
		return layer_ep_bind(st, base, p.group_bytes, capacity);
	publish_slice(st);
	if (!st->nodes_job)
		return 0;
	struct layer_net_regions r = {.recv = base + p.recv, .slices = base + p.ag_x, .slices_bytes = p.recv - p.ag_x,
				      .partials = base + p.partials, .partials_bytes = p.combined - p.partials,
				      .combined = base + p.combined, .combined_bytes = p.ag_x - p.combined};
	return layer_net_bind(st, &r);
}

/* This rank's inputs: its group's slice rows, routing and layout. */
static int own_inputs(struct layer_state *st)
{
	const struct ep_run *run = st->env->run;
	st->grun = (struct ep_run){.cfg = run->cfg, .shape = st->eshape, .routing = st->routings[st->g],
				   .capacity = run->capacity, .parallel = run->parallel, .attn_tokens = run->attn_tokens};
	return ep_normal_io_init(&st->io, &st->grun, st->q, ep_reference_topk_idx(layer_ref(st, st->g), st->q),
				 ep_reference_topk_weights(layer_ref(st, st->g), st->q),
				 st->nodes_job && !st->allgather ? st->Pg : 0);
}

/* Soak and rotating routing: the slices, references and inputs of
 * env->run's seed and step; on one host the group's collective is bound
 * again over the same arena (sized for any routing), across nodes it stays
 * (its buffers take any routing, as internode's do). Local, untimed. */
static int layer_reseed(void *p)
{
	struct layer_state *st = p;
	const struct ep_run *run = st->env->run;
	int rc;
	ep_normal_io_fini(&st->io);
	layer_geometry_fini(st);
	st->stage = STAGE_NONE;
	if ((rc = layer_geometry(st, run, st->me)) || (rc = own_inputs(st)))
		return rc;
	if (st->allgather) {
		publish_slice(st);
		return 0;
	}
	return layer_ep_reseed(st);
}

static int layer_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	struct layer_state *st = calloc(1, sizeof(*st));
	int rc;
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->area_traffic = env->waiter->traffic;
	if (!(rc = layer_geometry(st, run, env->rank)))
		rc = own_inputs(st);
	if (!rc && !(rc = private_buffers(st, run->capacity)))
		rc = bind_arena(st, env->arena, run->capacity); /* the endpoint records its path under the world rank */
	if (!rc && !(st->tmap = malloc(sizeof(int) * (size_t)st->moe_ep)))
		rc = -ENOMEM;
	if (!rc) { /* the EP collectives count per-pair rows in group ranks: recorded under world ranks */
		for (int k = 0; k < st->moe_ep; k++)
			st->tmap[k] = k * st->moe_tp + st->g;
		env->waiter->traffic = ep_traffic_view(&st->tview, st->area_traffic, st->tmap);
	}
	if (rc) {
		layer_teardown(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* ---- EP dispatch and combine: DeepEP normal mode inside the MoE-EP group ---- */

/* With --cached every dispatch after the one that made the group's handle
 * is DeepEP's cached dispatch (the later phases read the same tensors). */
static int dispatch_once(struct layer_state *st)
{
	int rc = layer_ep_dispatch(st, st->run->cfg->cached && layer_ep_have_handle(st));
	st->stage = rc ? STAGE_NONE : STAGE_DISPATCHED;
	return rc;
}

/* --cached times the cached dispatch: one non-cached dispatch first (untimed) makes the handle. */
static int ep_dispatch_prepare(void *p)
{
	struct layer_state *st = p;
	int rc;
	if (!st->run->cfg->cached || layer_ep_have_handle(st))
		return 0;
	return (rc = layer_ep_barrier(st)) ? rc : dispatch_once(st);
}

static int ep_dispatch_run(void *p)
{
	return dispatch_once(p);
}

static int ep_dispatch_check(void *p, struct ep_check_report *rep)
{
	layer_ep_check_dispatch(p, rep);
	return 0;
}

static void ep_dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct layer_state *st = p;
	uint64_t row = ep_normal_dispatch_row_bytes(&st->eshape), n = layer_ep_num_recv(st);
	*alg = n * row;
	*wire = (n - layer_ep_rows_from_self(st)) * row;
}

static uint64_t ep_recv_rows(const void *p)
{
	return layer_ep_num_recv(p);
}

static int ep_dispatch_outputs(void *p, struct ep_tensor_view *v, int max)
{
	return ep_normal_io_dispatch_outputs(&((struct layer_state *)p)->io, v, max);
}

static int moe_tp_reduce_prepare(void *p);

/* Without MoE-TP the expert stand-in writes the combine input directly. */
static int ep_combine_prepare(void *p)
{
	struct layer_state *st = p;
	int rc;
	if (st->stage < STAGE_DISPATCHED && ((rc = layer_ep_barrier(st)) || (rc = dispatch_once(st))))
		return rc;
	if (st->moe_tp > 1) /* the MoE-TP stage of this pass: gather, partials, reduce */
		return st->stage >= STAGE_REDUCED ? 0 : (rc = moe_tp_reduce_prepare(st)) ? rc : layer_moe_tp_reduce(st);
	ep_set_phase(st->env->waiter, "experts");
	ep_normal_io_apply_experts(&st->io, layer_ep_combine_x(st), layer_ep_combine_w(st));
	return 0;
}

static int ep_combine_run(void *p)
{
	struct layer_state *st = p;
	int rc = layer_ep_combine(st, layer_combined(st, st->me), st->combined_w);
	st->stage = rc ? st->stage : STAGE_COMBINED;
	return rc;
}

static int ep_combine_check(void *p, struct ep_check_report *rep)
{
	struct layer_state *st = p;
	layer_ep_check_combine(st, layer_combined(st, st->me), st->combined_w, rep);
	return 0;
}

static void ep_combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct layer_state *st = p;
	uint64_t row = 2 * (uint64_t)st->eshape.hidden, n = layer_ep_num_recv(st);
	*alg = n * row;
	*wire = (n - layer_ep_rows_from_self(st)) * row;
}

static int ep_combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct layer_state *st = p;
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){"combined_x", (uint8_t *)layer_combined(st, st->me),
				       (size_t)st->io.shape.num_tokens, 2 * (size_t)st->eshape.hidden};
	return 1;
}

/* Across nodes: every op starts with the job's barrier; the EP ops leave
 * their network figures for the node's report. */
static int layer_op_enter(void *p, const struct ep_op_desc *op, int index)
{
	struct layer_state *st = p;
	(void)op, (void)index;
	return st->allgather && st->nodes_job ? layer_net_barrier(st) : layer_ep_barrier(st);
}

static void layer_op_leave(void *p, const struct ep_op_desc *op, int index, uint64_t alg)
{
	struct layer_state *st = p;
	static const uint64_t none[EP_MAX_NODES];
	if (!st->nodes_job)
		return;
	if (op->tag == LAYER_OP_DISPATCH || op->tag == LAYER_OP_COMBINE) {
		const struct ep_internode_op_figures *f = op->tag == LAYER_OP_DISPATCH ? &st->icoll.last_dispatch
										     : &st->icoll.last_combine;
		uint64_t row = op->tag == LAYER_OP_DISPATCH ? ep_normal_dispatch_row_bytes(&st->eshape)
							    : 2 * (uint64_t)st->eshape.hidden;
		uint64_t by_node[EP_MAX_NODES];
		layer_ep_net_bytes(st, f->net_bytes, by_node);
		ep_endpoint_figures(&st->net, index, alg, st->icoll.num_recv * row, by_node);
		return;
	}
	/* the layer's own phases: over the network when their group spans nodes, else in the node */
	int net = op->tag == LAYER_OP_ATTN_GATHER ? st->tp > st->P : st->allgather || st->moe_tp > st->P;
	uint64_t wire = 0;
	for (int m = 0; net && m < st->W / st->P; m++)
		wire += st->net_bytes[op->tag][m];
	ep_endpoint_figures(&st->net, index, alg, alg > wire ? alg - wire : 0, net ? st->net_bytes[op->tag] : none);
}

/* ---- the phases of cli/moe_layer_phases.c as ops ---- */

/* The data faults' targets (cli/damage.h): what each phase wrote. */
static int gathered_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct layer_state *st = p;
	size_t row = st->allgather ? 2 * (size_t)st->eshape.hidden : ep_dtype_row_bytes(st->eshape.dtype, st->eshape.hidden);
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){st->allgather ? "world_gathered_x" : "moe_tp_gathered_x", st->gx, st->grows, row};
	return 1;
}

static int reduced_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct layer_state *st = p;
	if (max < 1)
		return 0;
	if (st->allgather)
		return ep_combine_outputs(p, v, max);
	v[0] = (struct ep_tensor_view){"moe_tp_reduced_x", (uint8_t *)layer_ep_combine_x(st), st->rows_of[st->g],
				       2 * (size_t)st->eshape.hidden};
	return 1;
}

static int attn_outputs(void *p, struct ep_tensor_view *v, int max)
{
	struct layer_state *st = p;
	if (max < 1)
		return 0;
	v[0] = (struct ep_tensor_view){"attn_tp_gathered_x", (uint8_t *)st->attn.out, ep_attn_gather_rows(&st->attn),
				       2 * (size_t)st->eshape.hidden};
	return 1;
}

static int moe_tp_gather_prepare(void *p)
{
	struct layer_state *st = p;
	int rc;
	return st->stage < STAGE_DISPATCHED ? ((rc = layer_ep_barrier(st)) ? rc : dispatch_once(st)) : 0;
}

static int moe_tp_gather_run(void *p)
{
	return layer_moe_tp_gather(p);
}

static int moe_tp_gather_check(void *p, struct ep_check_report *rep)
{
	layer_check_moe_tp_gather(p, rep);
	return 0;
}

static void moe_tp_gather_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct layer_state *st = p;
	uint64_t row = layer_row_bytes(st);
	*alg = st->grows * row;
	*wire = (st->grows - st->rows_of[st->g]) * row;
}

static int moe_tp_reduce_prepare(void *p)
{
	struct layer_state *st = p;
	int rc;
	if (st->stage < STAGE_DISPATCHED && ((rc = layer_ep_barrier(st)) || (rc = dispatch_once(st))))
		return rc;
	if (st->stage < STAGE_GATHERED && (rc = layer_moe_tp_gather(st)))
		return rc;
	return layer_moe_tp_partials(st);
}

static int moe_tp_reduce_run(void *p)
{
	return layer_moe_tp_reduce(p);
}

static int moe_tp_reduce_check(void *p, struct ep_check_report *rep)
{
	layer_check_moe_tp_reduce(p, rep);
	return 0;
}

static void moe_tp_reduce_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct layer_state *st = p;
	uint64_t rows = layer_ep_num_recv(st) * 2 * (uint64_t)st->eshape.hidden;
	*alg = rows * (uint64_t)st->moe_tp;
	*wire = rows * (uint64_t)(st->moe_tp - 1);
}

static int world_gather_once(struct layer_state *st)
{
	return st->nodes_job ? layer_net_world_gather(st) : layer_world_gather(st);
}

static int world_gather_run(void *p)
{
	return world_gather_once(p);
}

static int world_gather_check(void *p, struct ep_check_report *rep)
{
	layer_check_world_gather(p, rep);
	return 0;
}

static void world_gather_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct layer_state *st = p;
	uint64_t row = layer_row_bytes(st);
	*alg = st->grows * row;
	*wire = (st->grows - (uint64_t)st->io.shape.num_tokens) * row;
}

static int world_reduce_prepare(void *p)
{
	struct layer_state *st = p;
	int rc;
	if (st->stage < STAGE_GATHERED && ((st->nodes_job && (rc = layer_net_barrier(st))) || (rc = world_gather_once(st))))
		return rc;
	return layer_world_partials(st);
}

static int world_reduce_once(struct layer_state *st)
{
	return st->nodes_job ? layer_net_world_reduce(st) : layer_world_reduce(st);
}

static int world_reduce_run(void *p)
{
	return world_reduce_once(p);
}

static int world_reduce_check(void *p, struct ep_check_report *rep)
{
	layer_check_world_reduce(p, rep);
	return 0;
}

static void world_reduce_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct layer_state *st = p;
	uint64_t rows = (uint64_t)st->io.shape.num_tokens * 2 * (uint64_t)st->eshape.hidden;
	*alg = rows * (uint64_t)st->W;
	*wire = rows * (uint64_t)(st->W - 1);
}

/* The attention-TP all-gather needs the layer's combined rows. */
static int attn_gather_prepare(void *p)
{
	struct layer_state *st = p;
	int rc;
	if (st->stage >= STAGE_COMBINED)
		return 0;
	if (st->allgather)
		return (rc = world_reduce_prepare(st)) ? rc : world_reduce_once(st);
	if ((rc = ep_combine_prepare(st)))
		return rc;
	return ep_combine_run(st);
}

static int attn_gather_run(void *p)
{
	struct layer_state *st = p;
	if (st->nodes_job && st->tp > st->P) /* the attention-TP group spans nodes (cli/moe_layer_net.c) */
		return layer_net_attn_gather(st);
	return ep_attn_gather_run(&st->attn);
}

static int attn_gather_check(void *p, struct ep_check_report *rep)
{
	ep_attn_gather_check(&((struct layer_state *)p)->attn, rep);
	return 0;
}

static void attn_gather_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	struct layer_state *st = (struct layer_state *)p;
	ep_attn_gather_bytes(&st->attn, (size_t)st->io.shape.num_tokens, alg, wire);
}

/* --dump: the EP group's tensors as intranode/internode write them (DeepEP's
 * names; this rank's directory by its world rank), then the layer's own:
 * what each phase gathered and the attention-TP output. */
static int layer_dump(void *p, const char *dir)
{
	struct layer_state *st = p;
	struct ep_normal_io v = st->io;
	v.rank = st->me, v.combined_x = layer_combined(st, st->me), v.combined_w = st->allgather ? NULL : st->combined_w;
	int rc = ep_normal_io_dump(&v, dir, st->allgather ? NULL : layer_ep_combine_x(st),
				   st->allgather ? NULL : layer_ep_combine_w(st));
	if (rc)
		return rc;
	const struct ep_shape *s = &st->eshape;
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	enum ep_npy_dtype xd = st->allgather || s->dtype == EP_DTYPE_BF16 ? EP_NPY_U2
			     : s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_I1;
	int moe_tp = !st->allgather && st->moe_tp > 1;
	struct ep_npy_item t[] = {
		{st->allgather ? "world_gathered_x" : "moe_tp_gathered_x", xd, st->grows, H, 2, st->allgather || moe_tp ? st->gx : NULL},
		{"moe_tp_gathered_x_scales", EP_NPY_F4, st->grows, S, 2, moe_tp && S ? st->gscales : NULL},
		{st->allgather ? "world_gathered_topk_idx" : "moe_tp_gathered_topk_idx", EP_NPY_I8, st->grows, K, 2,
		 st->allgather || moe_tp ? st->gidx : NULL},
		{st->allgather ? "world_gathered_topk_weights" : "moe_tp_gathered_topk_weights", EP_NPY_F4, st->grows, K, 2,
		 st->allgather || moe_tp ? st->gw : NULL},
		{"attn_tp_gathered_x", EP_NPY_U2, ep_attn_gather_rows(&st->attn), H, 2, st->tp > 1 ? st->attn.out : NULL},
	};
	return ep_npy_write_items(dir, st->me, t, (int)(sizeof(t) / sizeof(t[0])));
}

#define A2A EP_OPS_A2A
#define AG EP_OPS_ALLGATHER
static const struct ep_op_desc layer_ops[LAYER_NOPS] = {
	[LAYER_OP_DISPATCH] = {.name = "ep_dispatch", .mask = EP_OPS_DISPATCH | A2A, .tag = LAYER_OP_DISPATCH, .prepare = ep_dispatch_prepare, .run = ep_dispatch_run, .check = ep_dispatch_check,
	 .bytes = ep_dispatch_bytes, .recv_rows = ep_recv_rows, .outputs = ep_dispatch_outputs, .receives = 1},
	[LAYER_OP_MOE_TP_GATHER] = {.name = "moe_tp_gather", .tag = LAYER_OP_MOE_TP_GATHER, .mask = EP_OPS_DISPATCH | A2A | EP_OPS_MOE_TP, .prepare = moe_tp_gather_prepare,
	 .run = moe_tp_gather_run, .check = moe_tp_gather_check, .bytes = moe_tp_gather_bytes,
	 .outputs = gathered_outputs},
	[LAYER_OP_WORLD_GATHER] = {.name = "world_gather", .tag = LAYER_OP_WORLD_GATHER, .mask = EP_OPS_DISPATCH | AG, .run = world_gather_run, .check = world_gather_check,
	 .bytes = world_gather_bytes, .outputs = gathered_outputs, .receives = 1},
	[LAYER_OP_MOE_TP_REDUCE] = {.name = "moe_tp_reduce", .tag = LAYER_OP_MOE_TP_REDUCE, .mask = EP_OPS_COMBINE | A2A | EP_OPS_MOE_TP, .prepare = moe_tp_reduce_prepare,
	 .run = moe_tp_reduce_run, .check = moe_tp_reduce_check, .bytes = moe_tp_reduce_bytes,
	 .outputs = reduced_outputs},
	[LAYER_OP_WORLD_REDUCE] = {.name = "world_reduce", .tag = LAYER_OP_WORLD_REDUCE, .mask = EP_OPS_COMBINE | AG, .prepare = world_reduce_prepare, .run = world_reduce_run,
	 .check = world_reduce_check, .bytes = world_reduce_bytes, .outputs = reduced_outputs},
	[LAYER_OP_COMBINE] = {.name = "ep_combine", .mask = EP_OPS_COMBINE | A2A, .tag = LAYER_OP_COMBINE, .prepare = ep_combine_prepare, .run = ep_combine_run,
	 .check = ep_combine_check, .bytes = ep_combine_bytes, .outputs = ep_combine_outputs},
	[LAYER_OP_ATTN_GATHER] = {.name = "attn_tp_gather", .tag = LAYER_OP_ATTN_GATHER, .mask = EP_OPS_COMBINE | EP_OPS_ATTN_TP, .prepare = attn_gather_prepare,
	 .run = attn_gather_run, .check = attn_gather_check, .bytes = attn_gather_bytes, .outputs = attn_outputs},
};

const struct ep_variant ep_moe_layer_variant = {
	.name = "moe-layer",
	.size = layer_size,
	.setup = layer_setup,
	.teardown = layer_teardown,
	.dump = layer_dump,
	.reseed = layer_reseed,
	.op_enter = layer_op_enter,
	.op_leave = layer_op_leave,
	.tensors = "recv_x recv_x_scales recv_topk_idx recv_topk_weights recv_src_idx num_recv_tokens_per_expert rank_prefix_matrix combined_x moe_tp_gathered_x world_gathered_x moe_tp_reduced_x attn_tp_gathered_x",
	.nops = LAYER_NOPS,
	.ops = layer_ops,
};
