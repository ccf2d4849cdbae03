/* intranode.c - `epbench intranode`: normal dispatch and combine between the ranks of one host.
 *
 * Per-rank state: this rank's tensors (cli/normal_io.h: inputs regenerated
 * from the seed exactly as the reference regenerates them), the collective
 * context and the reference. Combine's input is the expert stand-in applied
 * to what dispatch delivered, written straight into the shared combine area.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/ascend_tp.h"
#include "cli/bench.h"
#include "cli/command.h"
#include "cli/normal_io.h"
#include "collectives/intranode.h"
#include "reference/reference.h"
#include "reference/routing_step.h"

struct intranode_state {
	struct ep_bench_env *env;
	struct ep_normal_io io;
	struct ep_intranode coll;
	struct ep_reference ref;
	int dispatched;           /* io.out holds a dispatch's result */
	int last_cached;          /* the last dispatch ran in cached mode */
};

static int intranode_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	/* Size receive areas exactly: the launcher regenerates the routing. */
	struct ep_reference ref;
	int rc = ep_reference_init(&ref, &run->shape, &run->routing, run->cfg->seed, 0);
	if (rc)
		return rc;
	run->capacity = ep_reference_max_recv(&ref);
	ep_reference_fini(&ref);
	if (run->cfg->soak || ep_routing_varies(&run->routing) || ep_faults_has(&run->cfg->faults, EP_FAULT_REPLICA))
		run->capacity = (size_t)run->shape.num_ranks * (size_t)run->shape.num_tokens; /* routes anew, or a rank
											       * routes otherwise: room for any routing */
	*arena_bytes = ep_intranode_arena_bytes(&run->shape, run->capacity);
	*rank_bytes = ep_normal_rank_bytes(&run->shape, run->capacity) + ep_intranode_rank_bytes(&run->shape);
	return 0;
}

static void intranode_teardown(void *p)
{
	struct intranode_state *st = p;
	if (!st)
		return;
	ep_intranode_fini(&st->coll);
	ep_reference_fini(&st->ref);
	ep_normal_io_fini(&st->io);
	free(st);
}

static int intranode_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	int me = env->rank, rc;
	struct intranode_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->env = env;
	if ((rc = ep_reference_init(&st->ref, &run->shape, &run->routing, run->cfg->seed, me)) ||
	    (rc = ep_normal_io_init(&st->io, run, me, ep_reference_topk_idx(&st->ref, me),
				    ep_reference_topk_weights(&st->ref, me), 0)) ||
	    (rc = ep_intranode_init(&st->coll, &st->io.shape, me, env->arena, run->capacity,
				    env->waiter))) {
		intranode_teardown(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* Soak: the routing, inputs and expectations of env->run's new seed; the
 * collective is set up again over the same arena (sized for any routing). */
static int intranode_reseed(void *p)
{
	struct intranode_state *st = p;
	const struct ep_run *run = st->env->run;
	int me = st->env->rank, rc;
	ep_intranode_fini(&st->coll);
	ep_reference_fini(&st->ref);
	ep_normal_io_fini(&st->io);
	st->dispatched = 0;
	if ((rc = ep_reference_init(&st->ref, &run->shape, &run->routing, run->cfg->seed, me)) ||
	    (rc = ep_normal_io_init(&st->io, run, me, ep_reference_topk_idx(&st->ref, me),
				    ep_reference_topk_weights(&st->ref, me), 0)))
		return rc;
	return ep_intranode_init(&st->coll, &st->io.shape, me, st->env->arena, run->capacity, st->env->waiter);
}

static int dispatch_once(struct intranode_state *st, int cached)
{
	struct ep_dispatch_in in = ep_normal_io_dispatch_in(&st->io);
	int rc = ep_intranode_dispatch(&st->coll, &in, cached, &st->io.out);
	st->dispatched = rc == 0;
	st->last_cached = cached;
	return rc;
}

static int dispatch_prepare(void *p)
{
	struct intranode_state *st = p;
	/* Cached mode needs a handle from one non-cached dispatch. */
	if (st->env->run->cfg->cached && !st->coll.have_handle)
		return dispatch_once(st, 0);
	return 0;
}

static int dispatch_run(void *p)
{
	struct intranode_state *st = p;
	return dispatch_once(st, st->env->run->cfg->cached);
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct intranode_state *st = p;
	ep_reference_check_layout(&st->ref, &st->io.layout, rep);
	ep_reference_check_dispatch(&st->ref, &st->io.out, st->last_cached, rep);
	return 0;
}

static uint64_t rows_from_self(const struct intranode_state *st)
{
	int R = st->io.shape.num_ranks, me = st->env->rank;
	const int32_t *rpm = st->coll.rank_prefix_matrix;
	return (uint64_t)(rpm[me * R + me] - (me ? rpm[(me - 1) * R + me] : 0));
}

/* DeepEP's bytes: received rows x row bytes; wire bytes leave out our own rows. */
static void row_bytes_moved(const struct intranode_state *st, uint64_t row, uint64_t *alg,
			    uint64_t *wire)
{
	*alg = st->coll.num_recv * row;
	*wire = (st->coll.num_recv - rows_from_self(st)) * row;
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct intranode_state *st = p;
	row_bytes_moved(st, ep_normal_dispatch_row_bytes(&st->io.shape), alg, wire);
}

static uint64_t intranode_recv_rows(const void *p)
{
	return ((const struct intranode_state *)p)->coll.num_recv;
}

static int dispatch_outputs(void *p, struct ep_tensor_view *v, int max)
{
	return ep_normal_io_dispatch_outputs(&((struct intranode_state *)p)->io, v, max);
}

static int combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	return ep_normal_io_combine_outputs(&((struct intranode_state *)p)->io, v, max);
}

static int combine_prepare(void *p)
{
	struct intranode_state *st = p;
	int rc;
	/* Combine needs a non-cached dispatch's outputs (topk included). */
	if (!st->dispatched || st->last_cached)
		if ((rc = dispatch_once(st, 0)))
			return rc;
	ep_set_phase(st->env->waiter, "experts");
	ep_normal_io_apply_experts(&st->io, ep_intranode_combine_x(&st->coll),
				   ep_intranode_combine_w(&st->coll));
	return 0;
}

static int combine_run(void *p)
{
	struct intranode_state *st = p;
	return ep_intranode_combine(&st->coll, st->io.bias[0], st->io.bias[1], st->io.combined_x,
				    st->io.combined_w);
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct intranode_state *st = p;
	ep_reference_check_combine(&st->ref, st->io.combined_x, st->io.combined_w, rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	const struct intranode_state *st = p;
	row_bytes_moved(st, 2 * (uint64_t)st->io.shape.hidden, alg, wire);
}

static int intranode_dump(void *p, const char *dir)
{
	struct intranode_state *st = p;
	return ep_normal_io_dump(&st->io, dir, ep_intranode_combine_x(&st->coll), ep_intranode_combine_w(&st->coll));
}

static const struct ep_op_desc intranode_ops[] = {
	{.name = "dispatch", .mask = EP_OPS_DISPATCH, .prepare = dispatch_prepare, .run = dispatch_run,
	 .check = dispatch_check, .bytes = dispatch_bytes, .recv_rows = intranode_recv_rows,
	 .outputs = dispatch_outputs, .receives = 1},
	{.name = "combine", .mask = EP_OPS_COMBINE, .prepare = combine_prepare, .run = combine_run,
	 .check = combine_check, .bytes = combine_bytes, .outputs = combine_outputs},
};

const struct ep_variant ep_intranode_variant = {
	.name = "intranode",
	.size = intranode_size,
	.setup = intranode_setup,
	.teardown = intranode_teardown,
	.dump = intranode_dump,
	.reseed = intranode_reseed,
	.tensors = "recv_x recv_x_scales recv_topk_idx recv_topk_weights recv_src_idx num_recv_tokens_per_expert rank_prefix_matrix combined_x combined_topk_weights",
	.nops = 2,
	.ops = intranode_ops,
};

/* --ep-semantics ascend runs Ascend's dispatch/combine (cli/ascend.c), in
 * a layer with moe_tp = 1 on its slices, or with its MoE-TP stage
 * (cli/ascend_tp.c); any other parallel configuration than plain EP runs
 * its MoE layer (cli/moe_layer.h), and so does allgather mode with
 * --ep-semantics ascend: it has no EP dispatch or combine. */
static const struct ep_variant *intranode_variant_for(const struct ep_options *o)
{
	struct ep_parallel p;
	int layer = ep_options_layer(o, &p);
	if (o->ep_semantics == EP_SEM_ASCEND && layer && p.moe_comm == EP_MOE_ALLGATHER)
		return &ep_moe_layer_variant; /* no EP dispatch or combine: Ascend's semantics do not apply */
	if (o->ep_semantics == EP_SEM_ASCEND && layer && p.v[EP_PAR_MOE_TP] > 1)
		return &ep_ascend_tp_variant; /* Ascend's MoE-TP stage (cli/ascend_tp.h) */
	if (o->ep_semantics == EP_SEM_ASCEND)
		return &ep_ascend_variant;
	return layer ? &ep_moe_layer_variant : &ep_intranode_variant;
}

/* The header's note on Ascend's semantics and options (nothing for DeepEP's,
 * nor in allgather mode: cli/generalised.c's line says why they do not apply). */
static void intranode_describe(const struct ep_options *o, char *buf, size_t len)
{
	struct ep_parallel p;
	if (o->ep_semantics != EP_SEM_ASCEND || (ep_options_layer(o, &p) && p.moe_comm == EP_MOE_ALLGATHER)) {
		snprintf(buf, len, "%s", "");
		return;
	}
	snprintf(buf, len, "ep-semantics ascend (%s), shared experts %d on %d ranks%s%s",
		 o->dtype == EP_DTYPE_INT8 ? "quant_mode 2" : "quant_mode 0", o->shared_experts, o->shared_expert_ranks,
		 o->smooth_scales ? ", smoothing scales" : "", o->comm_quant ? ", comm_quant int8" : "");
}

const struct ep_command ep_cmd_intranode = {
	.name = "intranode",
	.help = "normal dispatch/combine between ranks of one host (shared memory)",
	.options = {"intranode", EP_SCOPE_RUN | EP_SCOPE_NORMAL, NULL},
	.variant = &ep_intranode_variant,
	.variant_for = intranode_variant_for,
	.describe = intranode_describe,
};
