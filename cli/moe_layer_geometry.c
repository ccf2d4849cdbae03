/* moe_layer_geometry.c - where a rank sits in a parallel configuration's MoE layer, and every EP group's reference.
 *
 * The slices (reference/moe_slice.h), the MoE-EP groups' shape (R = moe_ep,
 * T = the longest slice), each group's view, routing, expert stand-in
 * (reference/moe_layer_ref.h) and reference, built alike by the launcher
 * sizing a run and by every rank (for its EP rank q in each group).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/moe_layer.h"

void layer_geometry_fini(struct layer_state *st)
{
	for (int i = 0; st->irefs && i < st->moe_tp; i++)
		ep_internode_ref_fini(&st->irefs[i]);
	for (int i = 0; st->views && i < st->moe_tp; i++)
		ep_group_arrays_fini(&st->views[i]);
	free(st->irefs);
	free(st->views);
	free(st->routings);
	free(st->experts);
	ep_slices_fini(&st->sl);
	st->irefs = NULL, st->views = NULL, st->routings = NULL, st->experts = NULL;
}

/* One MoE-EP group's view, routing, expert and reference (for EP rank q). */
static int group_geometry(struct layer_state *st, const struct ep_run *run, int i)
{
	int rc = ep_slices_group(&st->sl, i, &st->views[i]);
	if (rc)
		return rc;
	st->routings[i] = run->routing;
	st->routings[i].group = &st->views[i].view;
	ep_moe_tp_expert_init(&st->experts[i], run->routing.payload, st->moe_tp, i);
	if ((rc = ep_internode_ref_init(&st->irefs[i], &st->eshape, &st->routings[i], run->cfg->seed, st->q, st->Pg)))
		return rc;
	st->irefs[i].base.expert = &st->experts[i].fn;
	return 0;
}

/* Where rank me sits: its groups, its node, its EP rank within the node. */
static void placement(struct layer_state *st, const struct ep_run *run, int me)
{
	const struct ep_parallel *p = &run->parallel;
	st->run = run;
	st->par = *p;
	st->W = run->shape.num_ranks, st->me = me;
	st->tp = p->v[EP_PAR_TP], st->moe_tp = p->v[EP_PAR_MOE_TP], st->moe_ep = p->v[EP_PAR_MOE_EP];
	st->allgather = p->moe_comm == EP_MOE_ALLGATHER;
	st->g = me % st->moe_tp, st->q = me / st->moe_tp, st->d = me / st->tp;
	st->nodes_job = run->cfg->ranks_per_node > 0 && run->cfg->ranks_per_node < st->W;
	st->P = st->nodes_job ? run->cfg->ranks_per_node : st->W;
	st->Pg = st->P / st->moe_tp, st->node = st->ep_node = me / st->P, st->kq = (me % st->P) / st->moe_tp;
	if (st->allgather) /* no EP collective: the references only hold the groups' routing */
		st->Pg = st->moe_ep;
	else if (st->Pg < 1) /* MoE-TP spans nodes: the EP group has one rank on each of moe_ep nodes */
		st->Pg = 1, st->ep_node = st->q;
}

/* The slices, the EP groups' shape and every group's reference for rank me. */
int layer_geometry(struct layer_state *st, const struct ep_run *run, int me)
{
	const struct ep_run_cfg *cfg = run->cfg;
	placement(st, run, me);
	int T_d = cfg->tokens_per_dp ? cfg->tokens_per_dp : run->attn_tokens * st->tp;
	int rc = ep_slices_init(&st->sl, st->W, st->tp, st->moe_tp, st->moe_ep, (enum ep_slice_pad)cfg->sp_pad, T_d,
				run->routing.uneven_tokens, cfg->seed);
	if (rc)
		return rc;
	st->eshape = run->shape;
	st->eshape.num_ranks = st->moe_ep;
	st->eshape.num_tokens = st->sl.max_slice;
	size_t n = (size_t)st->moe_tp;
	st->views = calloc(n, sizeof(*st->views));
	st->routings = calloc(n, sizeof(*st->routings));
	st->experts = calloc(n, sizeof(*st->experts));
	st->irefs = calloc(n, sizeof(*st->irefs));
	if (!st->views || !st->routings || !st->experts || !st->irefs)
		return -ENOMEM;
	for (int i = 0; i < st->moe_tp; i++)
		if ((rc = group_geometry(st, run, i)))
			return rc;
	return 0;
}

