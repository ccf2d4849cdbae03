/* moe_layer_ep.c - the MoE layer's EP dispatch and combine: one host or across nodes (cli/moe_layer.h).
 *
 * On one host the MoE-EP group runs collectives/intranode.h over its own
 * arena; across nodes (a node job: env->variant_ctx) it runs
 * collectives/internode.h with the group's P / moe_tp ranks of each node,
 * its own node arena, and the rank's endpoint of the whole job: EP rank
 * (n, k) of group g is world rank n P + g + k moe_tp, whose rail peers on
 * the other nodes are the world's rail peers, so the group's network is a
 * part of the job's (ep_internode_net_ids). When MoE-TP spans nodes
 * (P divides moe_tp) the group has one rank on each of moe_ep nodes: EP
 * rank k is world rank g + k moe_tp, on node (g + k moe_tp) / P, and its
 * collective runs with one rank per node (ep_node = q).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/moe_layer.h"
#include "collectives/error.h"
#include "reference/routing_step.h"

size_t layer_ep_group_bytes(const struct layer_state *st, size_t capacity)
{
	size_t b = st->nodes_job ? ep_internode_arena_bytes(&st->eshape, st->Pg, capacity)
				 : ep_intranode_arena_bytes(&st->eshape, capacity);
	return ep_align_up(b, EP_PAGE);
}

int layer_any_routing(const struct ep_run *run)
{
	return run->cfg->soak || ep_routing_varies(&run->routing) || ep_faults_has(&run->cfg->faults, EP_FAULT_REPLICA);
}

/* The sizes the internode collective needs: the largest over every group
 * (any routing's when the run routes anew: T rows from every rank). */
static void node_sizes(const struct layer_state *st, struct ep_internode_sizes *sz)
{
	memset(sz, 0, sizeof(*sz));
	if (layer_any_routing(st->run)) {
		size_t T = (size_t)(st->sl.max_slice > 0 ? st->sl.max_slice : 1);
		sz->capacity = (size_t)st->moe_ep * T;
		sz->rdma_capacity = sz->send_capacity = (size_t)(st->W / st->P) * T;
		return;
	}
	for (int i = 0; i < st->moe_tp; i++) {
		struct ep_internode_sizes g;
		ep_internode_ref_sizes(&st->irefs[i], &g.capacity, &g.rdma_capacity, &g.send_capacity);
		sz->capacity = g.capacity > sz->capacity ? g.capacity : sz->capacity;
		sz->rdma_capacity = g.rdma_capacity > sz->rdma_capacity ? g.rdma_capacity : sz->rdma_capacity;
		sz->send_capacity = g.send_capacity > sz->send_capacity ? g.send_capacity : sz->send_capacity;
	}
}

size_t layer_ep_rank_bytes(const struct layer_state *st, size_t capacity)
{
	if (!st->nodes_job)
		return ep_intranode_rank_bytes(&st->eshape);
	struct ep_internode_sizes sz;
	node_sizes(st, &sz);
	sz.capacity = capacity;
	return ep_internode_rank_bytes(&st->eshape, st->Pg, &sz);
}

/* Across nodes: the endpoint, the group's collective, the rail connections. */
static int bind_nodes(struct layer_state *st, char *base, char *group_arena)
{
	struct ep_internode_sizes sz;
	int rc, peers[EP_MAX_NODES];
	node_sizes(st, &sz);
	if ((rc = ep_endpoint_open(&st->net, st->env, st->W)))
		return rc;
	st->net_up = 1;
	if ((rc = ep_internode_init(&st->icoll, &st->io.shape, st->Pg, st->ep_node, st->kq, group_arena, &sz,
				    st->env->waiter, &st->net.net)))
		return ep_endpoint_fail(&st->net, rc, "network buffers");
	st->coll_up = 1;
	if (st->moe_tp > st->P) /* EP rank k of group g: world rank g + k moe_tp */
		ep_internode_net_ids(&st->icoll, st->moe_tp, st->g, st->node * st->P);
	else
		ep_internode_net_ids(&st->icoll, st->P, st->me % st->P, st->node * st->P);
	char *end = (char *)st->attn.slots + ep_attn_gather_slot_bytes(st->P, st->attn.slot_rows, st->eshape.hidden);
	if (layer_net_spans(st) && (rc = layer_net_bind_a2a(st, base, (size_t)(end - base))))
		return rc;
	int n = layer_net_add_peers(st, peers, ep_internode_peers(&st->icoll, peers));
	return ep_endpoint_connect(&st->net, peers, n, "its rail peers");
}

int layer_ep_world_node(const struct layer_state *st, int k)
{
	return st->moe_tp > st->P ? (st->g + k * st->moe_tp) / st->P : k;
}

int layer_ep_rank_on(const struct layer_state *st, int m)
{
	if (st->moe_tp <= st->P)
		return m;
	int d = m * st->P + st->g % st->P - st->g; /* k moe_tp when node m holds EP rank k */
	return d >= 0 && d % st->moe_tp == 0 && d / st->moe_tp < st->moe_ep ? d / st->moe_tp : -1;
}

int layer_ep_bind(struct layer_state *st, char *base, size_t group_bytes, size_t capacity)
{
	size_t n = (size_t)st->moe_tp;
	if (!(st->gcounts = calloc(n, sizeof(*st->gcounts))) || !(st->gareas = calloc(n, sizeof(*st->gareas))))
		return -ENOMEM;
	for (int i = 0; i < st->moe_tp; i++) { /* across nodes, a group of another node's ranks is never read */
		char *arena = base + (size_t)(i % layer_group_slots(st)) * group_bytes;
		if (st->nodes_job)
			ep_internode_arena_view(&st->eshape, st->Pg, capacity, arena, st->kq, &st->gcounts[i], &st->gareas[i]);
		else
			ep_intranode_arena_view(&st->eshape, capacity, arena, st->q, &st->gcounts[i], &st->gareas[i]);
	}
	char *mine = base + (size_t)(st->g % layer_group_slots(st)) * group_bytes;
	st->group_arena = mine;
	if (st->nodes_job)
		return bind_nodes(st, base, mine);
	int rc = ep_intranode_init(&st->coll, &st->io.shape, st->q, mine, capacity, st->env->waiter);
	st->coll_up = rc == 0;
	return rc;
}

int layer_ep_reseed(struct layer_state *st)
{
	int rc;
	if (st->nodes_job) /* the collective and its connections stay: its buffers take any routing */
		return 0;
	ep_intranode_fini(&st->coll);
	st->coll_up = (rc = ep_intranode_init(&st->coll, &st->io.shape, st->q, st->group_arena, st->run->capacity,
					      st->env->waiter)) == 0;
	return rc;
}

void layer_ep_fini(struct layer_state *st)
{
	if (st->net_up)
		ep_endpoint_close(&st->net); /* first: a failed rank leaves at once */
	if (st->coll_up && st->nodes_job)
		ep_internode_fini(&st->icoll);
	else if (st->coll_up)
		ep_intranode_fini(&st->coll);
	free(st->gcounts);
	free(st->gareas);
	st->net_up = st->coll_up = 0;
}

/* Arrivals indexed by the EP group's nodes, as the endpoint wants them: by world node. */
static void arrived(struct layer_state *st, int op, const int64_t *by_k)
{
	int64_t by_node[EP_MAX_NODES] = {0};
	for (int k = 0; k < st->icoll.nodes; k++)
		by_node[layer_ep_world_node(st, k)] = by_k[k];
	ep_endpoint_arrived(&st->net, op, by_node);
}

void layer_ep_net_bytes(const struct layer_state *st, const uint64_t *by_k, uint64_t *by_node)
{
	memset(by_node, 0, sizeof(uint64_t) * EP_MAX_NODES);
	for (int k = 0; k < st->icoll.nodes; k++)
		by_node[layer_ep_world_node(st, k)] = by_k[k];
}

int layer_ep_have_handle(const struct layer_state *st)
{
	return st->coll_up && (st->nodes_job ? st->icoll.have_handle : st->coll.have_handle);
}

/* A cached dispatch returns recv_x (and its scales) only. The layer's later
 * phases take the rest from the dispatch that made the handle, as a
 * framework keeps it: recv_src_idx (the handle's) and recv_topk_idx /
 * recv_topk_weights, which cached mode leaves in place in this rank's
 * receive area of the group. */
static void handle_tensors(struct layer_state *st, int group)
{
	const struct ep_recv_area *a = &st->gareas[group];
	st->io.out.recv_src_idx = a->src_idx;
	st->io.out.recv_topk_idx = a->topk_idx;
	st->io.out.recv_topk_weights = st->io.topk_weights ? a->topk_weights : NULL;
}

int layer_ep_dispatch(struct layer_state *st, int cached)
{
	struct ep_dispatch_in in = ep_normal_io_dispatch_in(&st->io);
	int rc = st->nodes_job ? ep_internode_dispatch(&st->icoll, &in, cached, &st->io.out)
			       : ep_intranode_dispatch(&st->coll, &in, cached, &st->io.out);
	if (rc == 0 && cached)
		handle_tensors(st, st->g);
	if (rc == 0 && st->nodes_job)
		arrived(st, LAYER_OP_DISPATCH, st->icoll.last_dispatch.arrival_ns);
	return rc;
}

int layer_ep_combine(struct layer_state *st, uint16_t *x, float *w)
{
	if (!st->nodes_job)
		return ep_intranode_combine(&st->coll, st->io.bias[0], st->io.bias[1], x, w);
	int rc = ep_internode_combine(&st->icoll, st->io.bias[0], st->io.bias[1], x, w);
	if (rc == 0)
		arrived(st, LAYER_OP_COMBINE, st->icoll.last_combine.arrival_ns);
	return rc;
}

uint16_t *layer_ep_combine_x(struct layer_state *st)
{
	return st->nodes_job ? ep_internode_combine_x(&st->icoll) : ep_intranode_combine_x(&st->coll);
}

float *layer_ep_combine_w(struct layer_state *st)
{
	return st->nodes_job ? ep_internode_combine_w(&st->icoll) : ep_intranode_combine_w(&st->coll);
}

size_t layer_ep_num_recv(const struct layer_state *st)
{
	return st->nodes_job ? st->icoll.num_recv : st->coll.num_recv;
}

/* Rows this rank received from itself (wire bytes leave them out). */
uint64_t layer_ep_rows_from_self(const struct layer_state *st)
{
	int R = st->moe_ep, q = st->q;
	const int32_t *rpm = st->nodes_job ? st->icoll.rank_prefix_matrix : st->coll.rank_prefix_matrix;
	return (uint64_t)(rpm[q * R + q] - (q ? rpm[(q - 1) * R + q] : 0));
}

/* All ranks of the job meet before each op (untimed): iterations line up. */
int layer_ep_barrier(struct layer_state *st)
{
	if (!st->nodes_job)
		return 0;
	ep_set_phase(st->env->waiter, "cluster barrier");
	return ep_internode_barrier(&st->icoll);
}

void layer_ep_check_dispatch(struct layer_state *st, struct ep_check_report *rep)
{
	if (st->nodes_job)
		ep_internode_ref_check_layout(&st->irefs[st->g], &st->io.layout, rep);
	else
		ep_reference_check_layout(&st->irefs[st->g].base, &st->io.layout, rep);
	ep_reference_check_dispatch(&st->irefs[st->g].base, &st->io.out, 0, rep);
}

void layer_ep_check_combine(struct layer_state *st, const uint16_t *x, const float *w, struct ep_check_report *rep)
{
	if (st->nodes_job)
		ep_internode_ref_check_combine(&st->irefs[st->g], x, w, rep);
	else
		ep_reference_check_combine(&st->irefs[st->g].base, x, w, rep);
}

/* World rank r's token t after EP combine (one rounding on one host, two across nodes). */
int layer_ep_combined_row(struct layer_state *st, int r, int t, uint16_t *want)
{
	const struct ep_internode_ref *ref = &st->irefs[r % st->moe_tp];
	if (st->nodes_job)
		return ep_internode_ref_combined_row(ref, r / st->moe_tp, t, want);
	return ep_reference_combined_row(&ref->base, r / st->moe_tp, t, want, NULL);
}
