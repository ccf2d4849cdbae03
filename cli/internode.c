/* internode.c - `epbench internode`: normal dispatch and combine across nodes, inside one rank.
 *
 * The node job that launches these ranks is cli/cluster/node_job.c; a
 * rank's network endpoint is cli/cluster/endpoint.c.
 * Inside a rank the variant is intranode.c's, with global ranks:
 * inputs from the seed, layout (with num_tokens_per_rdma_rank), the
 * collective of collectives/internode.c, and reference/internode_ref.c's
 * checks. Every op starts with a cluster-wide barrier (untimed), so
 * iterations line up across nodes and per-iteration maxima mean something.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ascend_tp.h"
#include "cli/bench.h"
#include "cli/command.h"
#include "cli/cluster/endpoint.h"
#include "cli/normal_io.h"
#include "collectives/error.h"
#include "collectives/internode.h"
#include "reference/internode_ref.h"
#include "reference/routing_step.h"

struct inode_state {
	struct ep_bench_env *env;
	struct ep_normal_io io;    /* this rank's tensors */
	const struct ep_shape *s;  /* = &io.shape */
	int node, local, P, N;
	struct ep_endpoint net;    /* this rank's network endpoint */
	struct ep_internode coll;
	int coll_up;
	struct ep_internode_ref ref;
	int dispatched, last_cached;
};

/* Op indexes: where a dispatch's and a combine's arrivals and figures go. */
enum { OP_DISPATCH, OP_COMBINE };

/* Routing that changes between iterations (a later step may route more
 * rows to a rank than the first), or --fault replica (a rank routes
 * otherwise than the reference): the buffers take any routing, T rows from
 * every rank, T records from and to every node. The network regions and
 * the node arena are sized once, at setup, for every step. */
static void room_for_any_routing(const struct ep_run *run, struct ep_internode_sizes *sz)
{
	size_t R = (size_t)run->shape.num_ranks, T = (size_t)run->shape.num_tokens;
	size_t N = R / (size_t)run->cfg->ranks_per_node;
	if (!ep_routing_varies(&run->routing) && !ep_faults_has(&run->cfg->faults, EP_FAULT_REPLICA))
		return;
	sz->capacity = R * T;
	sz->rdma_capacity = sz->send_capacity = N * T;
}

static int inode_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	struct ep_internode_ref ref;
	int P = run->cfg->ranks_per_node;
	int rc = ep_internode_ref_init(&ref, &run->shape, &run->routing, run->cfg->seed, 0, P);
	if (rc)
		return rc;
	struct ep_internode_sizes sz;
	ep_internode_ref_sizes(&ref, &sz.capacity, &sz.rdma_capacity, &sz.send_capacity);
	ep_internode_ref_fini(&ref);
	room_for_any_routing(run, &sz);
	run->capacity = sz.capacity;
	*arena_bytes = ep_internode_arena_bytes(&run->shape, P, run->capacity);
	*rank_bytes = ep_normal_rank_bytes(&run->shape, run->capacity) +
		      4 * (size_t)run->shape.num_ranks * (size_t)(run->shape.num_ranks / P) + /* rdma counts */
		      ep_internode_rank_bytes(&run->shape, P, &sz) +
		      sizeof(int64_t) * EP_MAX_OPS * (size_t)run->cfg->iters * (size_t)(run->shape.num_ranks / P);
	return 0;
}

static void inode_teardown(void *p)
{
	struct inode_state *st = p;
	if (!st)
		return;
	ep_endpoint_close(&st->net); /* first: a failed rank leaves at once */
	if (st->coll_up)
		ep_internode_fini(&st->coll);
	ep_internode_ref_fini(&st->ref);
	ep_normal_io_fini(&st->io);
	free(st);
}

static int inode_setup(struct ep_bench_env *env, void **out)
{
	const struct ep_run *run = env->run;
	struct ep_node_ctx *ctx = env->variant_ctx;
	int me = env->rank, rc = -ENOMEM;
	struct inode_state *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->env = env;
	st->P = ctx->per_node;
	st->N = ctx->nodes;
	st->node = me / st->P;
	st->local = me % st->P;
	if ((rc = ep_internode_ref_init(&st->ref, &run->shape, &run->routing, run->cfg->seed, me, st->P)) ||
	    (rc = ep_normal_io_init(&st->io, run, me, ep_reference_topk_idx(&st->ref.base, me),
				    ep_reference_topk_weights(&st->ref.base, me), st->P)))
		goto fail;
	st->s = &st->io.shape;
	/* the network: endpoint, regions, address out, table in, connections */
	if ((rc = ep_endpoint_open(&st->net, env, st->s->num_ranks)))
		goto fail;
	struct ep_internode_sizes sz;
	ep_internode_ref_sizes(&st->ref, &sz.capacity, &sz.rdma_capacity, &sz.send_capacity);
	room_for_any_routing(env->run, &sz);
	if ((rc = ep_internode_init(&st->coll, st->s, st->P, st->node, st->local, env->arena, &sz,
				    env->waiter, &st->net.net))) {
		ep_endpoint_fail(&st->net, rc, "network buffers");
		goto fail;
	}
	st->coll_up = 1;
	int peers[EP_MAX_NODES];
	int n = ep_internode_peers(&st->coll, peers);
	if ((rc = ep_endpoint_connect(&st->net, peers, n, "its rail peers")))
		goto fail;
	*out = st;
	return 0;
fail:
	inode_teardown(st);
	return rc;
}

/* A new routing step (reference/routing_step.h): the routing, inputs,
 * layout (num_tokens_per_rdma_rank included) and reference of env->run's
 * step. The collective, its network regions and connections stay: they are
 * sized for any routing (room_for_any_routing), the count rows are
 * exchanged afresh by every dispatch, and every put's source was released
 * by its signal before the last op returned, so x may go. Local, untimed;
 * every rank of the job changes step at the same iteration (the step is a
 * function of the iteration's index), and the next op's cluster barrier
 * (op_enter, or combine_prepare's) lines the nodes up again. */
static int inode_reseed(void *p)
{
	struct inode_state *st = p;
	const struct ep_run *run = st->env->run;
	int me = st->env->rank, rc;
	ep_internode_ref_fini(&st->ref);
	ep_normal_io_fini(&st->io);
	st->dispatched = 0;
	if ((rc = ep_internode_ref_init(&st->ref, &run->shape, &run->routing, run->cfg->seed, me, st->P)))
		return rc;
	return ep_normal_io_init(&st->io, run, me, ep_reference_topk_idx(&st->ref.base, me),
				 ep_reference_topk_weights(&st->ref.base, me), st->P);
}

static int dispatch_once(struct inode_state *st, int cached)
{
	struct ep_dispatch_in in = ep_normal_io_dispatch_in(&st->io);
	int rc = ep_internode_dispatch(&st->coll, &in, cached, &st->io.out);
	st->dispatched = rc == 0;
	st->last_cached = cached;
	if (rc == 0)
		ep_endpoint_arrived(&st->net, OP_DISPATCH, st->coll.last_dispatch.arrival_ns);
	return rc;
}

static int op_barrier(struct inode_state *st)
{
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_internode_barrier(&st->coll);
}

/* Before every run of an op: all ranks of the job meet (untimed), so that
 * iterations line up across nodes and per-iteration maxima mean something. */
static int inode_op_enter(void *p, const struct ep_op_desc *op, int index)
{
	(void)op, (void)index;
	return op_barrier(p);
}

/* --fault link-down: cut this rank's rail connection to node; qp-error:
 * the same by a queue-pair error, which only verbs has. */
static int inode_sever(void *p, int node, int qp_error)
{
	struct inode_state *st = p;
	int peer = node * st->P + st->local;
	if (qp_error && strcmp(st->net.net.ops->name, "verbs")) {
		ep_sync_fail(st->env->waiter, -EP_EUSAGE, "rank %d: --fault qp-error needs --transport verbs (this run uses %s)",
			     st->env->rank, st->net.net.ops->name);
		return -EP_EUSAGE;
	}
	int rc = ep_transport_sever(&st->net.net, peer);
	if (rc)
		ep_sync_fail(st->env->waiter, rc, "rank %d: --fault link-down: cannot cut the connection to rank %d over %s%s%s",
			     st->env->rank, peer, st->net.net.ops->name, st->net.net.error[0] ? ": " : "", st->net.net.error);
	else
		ep_set_phase(st->env->waiter, "fault.link-down");
	return rc;
}

static int dispatch_prepare(void *p)
{
	struct inode_state *st = p;
	if (st->env->run->cfg->cached && !st->coll.have_handle)
		return dispatch_once(st, 0);
	return 0;
}

static int dispatch_run(void *p)
{
	struct inode_state *st = p;
	return dispatch_once(st, st->env->run->cfg->cached);
}

static int dispatch_check(void *p, struct ep_check_report *rep)
{
	struct inode_state *st = p;
	ep_internode_ref_check_layout(&st->ref, &st->io.layout, rep);
	ep_reference_check_dispatch(&st->ref.base, &st->io.out, st->last_cached, rep);
	return 0;
}

static uint64_t inode_recv_rows(const void *p)
{
	return ((const struct inode_state *)p)->coll.num_recv;
}

/* Bytes of one row of op: DeepEP's dispatch row (FP8: H (1 + 4/128)), or BF16 for combine. */
static uint64_t row_of(const struct inode_state *st, int op)
{
	return op == OP_DISPATCH ? ep_normal_dispatch_row_bytes(st->s) : 2 * (uint64_t)st->s->hidden;
}

/* DeepEP's bytes: RDMA = (token, node) pairs x row, own node included; wire
 * bytes are what this rank put on the network. */
static void op_bytes(const struct inode_state *st, int op, uint64_t *alg, uint64_t *wire)
{
	const struct ep_internode_op_figures *f = op == OP_DISPATCH ? &st->coll.last_dispatch
								     : &st->coll.last_combine;
	*alg = st->coll.last_dispatch.rdma_tokens * row_of(st, op);
	*wire = 0;
	for (int m = 0; m < st->N; m++)
		*wire += f->net_bytes[m];
}

static void dispatch_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	op_bytes(p, OP_DISPATCH, alg, wire);
}

/* After an op's timed loop: its network figures for the node's report
 * (NVL = received rows x row). */
static void inode_op_leave(void *p, const struct ep_op_desc *op, int index, uint64_t alg)
{
	struct inode_state *st = p;
	(void)index;
	const struct ep_internode_op_figures *f = op->tag == OP_DISPATCH ? &st->coll.last_dispatch
									  : &st->coll.last_combine;
	ep_endpoint_figures(&st->net, op->tag, alg, st->coll.num_recv * row_of(st, op->tag), f->net_bytes);
}

static int combine_prepare(void *p)
{
	struct inode_state *st = p;
	int rc;
	if (!st->dispatched || st->last_cached) {
		if ((rc = op_barrier(st)) || (rc = dispatch_once(st, 0)))
			return rc;
	}
	ep_set_phase(st->env->waiter, "experts");
	ep_normal_io_apply_experts(&st->io, ep_internode_combine_x(&st->coll),
				   ep_internode_combine_w(&st->coll));
	return 0;
}

static int combine_run(void *p)
{
	struct inode_state *st = p;
	int rc = ep_internode_combine(&st->coll, st->io.bias[0], st->io.bias[1], st->io.combined_x,
				      st->io.combined_w);
	if (rc == 0)
		ep_endpoint_arrived(&st->net, OP_COMBINE, st->coll.last_combine.arrival_ns);
	return rc;
}

static int combine_check(void *p, struct ep_check_report *rep)
{
	struct inode_state *st = p;
	ep_internode_ref_check_combine(&st->ref, st->io.combined_x, st->io.combined_w, rep);
	return 0;
}

static void combine_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	op_bytes(p, OP_COMBINE, alg, wire);
}

/* --dump: every tensor of this rank as DIR/rank<q>/<name>.npy (q global). */
static int inode_dump(void *p, const char *dir)
{
	struct inode_state *st = p;
	return ep_normal_io_dump(&st->io, dir, ep_internode_combine_x(&st->coll), ep_internode_combine_w(&st->coll));
}

static int dispatch_outputs(void *p, struct ep_tensor_view *v, int max)
{
	return ep_normal_io_dispatch_outputs(&((struct inode_state *)p)->io, v, max);
}

static int combine_outputs(void *p, struct ep_tensor_view *v, int max)
{
	return ep_normal_io_combine_outputs(&((struct inode_state *)p)->io, v, max);
}

static const struct ep_op_desc inode_ops[] = {
	{.name = "dispatch", .mask = EP_OPS_DISPATCH, .tag = OP_DISPATCH, .prepare = dispatch_prepare,
	 .run = dispatch_run, .check = dispatch_check, .bytes = dispatch_bytes,
	 .recv_rows = inode_recv_rows, .outputs = dispatch_outputs, .receives = 1},
	{.name = "combine", .mask = EP_OPS_COMBINE, .tag = OP_COMBINE, .prepare = combine_prepare,
	 .run = combine_run, .check = combine_check, .bytes = combine_bytes, .outputs = combine_outputs},
};

const struct ep_variant ep_internode_variant = {
	.name = "internode",
	.size = inode_size,
	.setup = inode_setup,
	.teardown = inode_teardown,
	.dump = inode_dump,
	.reseed = inode_reseed,
	.tensors = "recv_x recv_x_scales recv_topk_idx recv_topk_weights recv_src_idx num_recv_tokens_per_expert rank_prefix_matrix combined_x combined_topk_weights",
	.op_enter = inode_op_enter,
	.sever = inode_sever,
	.op_leave = inode_op_leave,
	.nops = 2,
	.ops = inode_ops,
};

/* Group-limited routing as DeepEP's test_internode: groups are nodes,
 * num_topk_groups defaults to min(nodes, 4). Routing whose rows are given
 * (file, trace) has no groups unless asked for (which is refused). */
static void internode_routing(const struct ep_options *o, int ranks, int nodes, struct ep_routing *r)
{
	(void)ranks;
	*r = o->routing;
	if (r->kind == EP_ROUTE_FILE || r->kind == EP_ROUTE_TRACE) {
		r->num_groups = o->num_groups;
		r->num_topk_groups = o->num_topk_groups;
		return;
	}
	r->num_groups = o->num_groups ? o->num_groups : nodes;
	r->num_topk_groups = o->num_topk_groups ? o->num_topk_groups : nodes < 4 ? nodes : 4;
}

static int always(const struct ep_options *o)
{
	(void)o;
	return 1;
}

/* --ep-semantics ascend runs Ascend's dispatch/combine (cli/ascend.c; in a
 * layer with moe_tp > 1 its MoE-TP stage, cli/ascend_tp.c); a parallel configuration other than plain
 * EP runs its MoE layer, and so does allgather mode with --ep-semantics ascend (no EP dispatch or combine). */
static const struct ep_variant *internode_variant_for(const struct ep_options *o)
{
	struct ep_parallel p;
	int layer = ep_options_layer(o, &p);
	if (o->ep_semantics == EP_SEM_ASCEND && layer && p.moe_comm == EP_MOE_ALLGATHER)
		return &ep_moe_layer_variant; /* no EP dispatch or combine: Ascend's semantics do not apply */
	if (o->ep_semantics == EP_SEM_ASCEND && layer && p.v[EP_PAR_MOE_TP] > 1)
		return &ep_ascend_tp_variant; /* Ascend's MoE-TP stage (cli/ascend_tp.h), its groups in a node */
	if (o->ep_semantics == EP_SEM_ASCEND)
		return &ep_ascend_variant;
	return layer ? &ep_moe_layer_variant : &ep_internode_variant;
}

const struct ep_command ep_cmd_internode = {
	.name = "internode",
	.help = "normal dispatch/combine across nodes (TCP or verbs, then shared memory)",
	.options = {"internode", EP_SCOPE_RUN | EP_SCOPE_NORMAL | EP_SCOPE_NODES, NULL},
	.variant = &ep_internode_variant,
	.variant_for = internode_variant_for,
	.across_nodes = always,
	.routing = internode_routing,
};
