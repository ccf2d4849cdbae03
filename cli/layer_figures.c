/* layer_figures.c - the sweep's side of a MoE layer: its routing load and slowest rank, and a low-latency point's slices. */
#include "cli/layer_figures.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/layer_bytes.h"
#include "reference/moe_slice.h"

int ep_layer_run(const struct ep_run *run)
{
	return run->parallel.v[EP_PAR_TP] > 0 && !ep_parallel_pure_ep(&run->parallel);
}

int ep_layer_slices(const struct ep_run *run, struct ep_slices *sl)
{
	const struct ep_parallel *p = &run->parallel;
	int tp = p->v[EP_PAR_TP];
	int T_d = run->cfg->tokens_per_dp ? run->cfg->tokens_per_dp : run->attn_tokens * tp;
	return ep_slices_init(sl, run->shape.num_ranks, tp, p->v[EP_PAR_MOE_TP], p->v[EP_PAR_MOE_EP],
			      (enum ep_slice_pad)run->cfg->sp_pad, T_d, run->routing.uneven_tokens, run->cfg->seed);
}

int ep_layer_slice_run(struct ep_run *run)
{
	struct ep_slices sl;
	struct ep_group_arrays *a = calloc(1, sizeof(*a));
	int rc = a ? ep_layer_slices(run, &sl) : -ENOMEM;
	if (rc) {
		free(a);
		return rc;
	}
	if (!(rc = ep_slices_group(&sl, 0, a))) {
		run->routing.group = &a->view;
		run->routing.group_owned = a;
		run->shape.num_tokens = sl.max_slice;
	} else {
		free(a);
	}
	ep_slices_fini(&sl);
	return rc;
}

/* Group g's sources into im, their ids hashed by world rank into ids[W][T][K]. */
static int add_group(const struct ep_run *run, const struct ep_slices *sl, int g, struct ep_imbalance *im, int64_t *ids)
{
	struct ep_group_arrays a;
	struct ep_shape s = run->shape;
	s.num_ranks = sl->moe_ep, s.num_tokens = sl->max_slice;
	size_t TK = (size_t)s.num_tokens * (size_t)s.num_topk;
	float *w = malloc(sizeof(float) * (TK + 1));
	int rc = w ? ep_slices_group(sl, g, &a) : -1;
	if (rc) {
		free(w);
		return -1;
	}
	struct ep_routing r = run->routing;
	r.group = &a.view;
	for (int q = 0; !rc && q < sl->moe_ep; q++) {
		int64_t *at = ids + (size_t)a.world_rank[q] * TK;
		if (!(rc = ep_gen_routing(&s, &r, run->cfg->seed, q, at, w)))
			ep_imbalance_add(im, q, at, a.num_tokens[q], s.num_topk);
	}
	ep_group_arrays_fini(&a);
	free(w);
	return rc;
}

struct ep_imbalance *ep_layer_imbalance(const struct ep_run *run, struct ep_sha256 *h)
{
	struct ep_slices sl;
	if (ep_layer_slices(run, &sl))
		return NULL;
	size_t TK = (size_t)sl.max_slice * (size_t)run->shape.num_topk;
	int64_t *ids = calloc((size_t)sl.world * TK + 1, sizeof(int64_t));
	struct ep_imbalance *im = ep_imbalance_new(sl.moe_ep, run->shape.num_experts, 0, 0);
	int rc = ids && im ? 0 : -1;
	for (int g = 0; !rc && g < sl.moe_tp; g++)
		rc = add_group(run, &sl, g, im, ids);
	if (!rc) {
		ep_sha256_update(h, ids, sizeof(int64_t) * (size_t)sl.world * TK);
		ep_imbalance_finish(im);
	} else {
		ep_imbalance_free(im);
		im = NULL;
	}
	free(ids);
	ep_slices_fini(&sl);
	return im;
}

/* The phase with the longest median and its slowest rank. */
static void slowest(const struct ep_run *run, const struct ep_run_result *res, struct ep_layer_figures *f)
{
	f->slowest_op = -1, f->slowest_rank = -1;
	for (int i = 0; i < res->nops; i++)
		if (res->ops[i].timed && (f->slowest_op < 0 || res->ops[i].time_us.median > res->ops[f->slowest_op].time_us.median))
			f->slowest_op = i;
	if (f->slowest_op < 0 || res->ops[f->slowest_op].slowest_rank < 0)
		return;
	f->slowest_rank = res->ops[f->slowest_op].slowest_rank;
	ep_parallel_describe(&run->parallel, f->slowest_rank, f->slowest_groups, sizeof(f->slowest_groups));
}

/* The bytes of the phases the run timed, in pass order, and each op's entry. */
static void phase_bytes(const struct ep_run *run, int rows_per_expert, const struct ep_run_result *res,
			struct ep_layer_figures *f)
{
	struct ep_phase_bytes all[EP_LAYER_MAX_PHASES];
	int n = ep_layer_bytes(run, rows_per_expert, all);
	for (int i = 0; i < EP_MAX_OPS; i++)
		f->op_phase[i] = -1;
	for (int k = 0; k < n; k++) {
		int kept = 0;
		for (int i = 0; i < res->nops && i < EP_MAX_OPS; i++) {
			const char *ph = res->ops[i].timed ? ep_layer_phase_of_op(res->ops[i].name) : NULL;
			if (ph && !strcmp(ph, all[k].phase)) {
				f->op_phase[i] = f->nphases;
				kept = 1;
			}
		}
		if (kept)
			f->bytes[f->nphases++] = all[k];
	}
}

void ep_layer_figures(const struct ep_run *run, int rows_per_expert, struct ep_run_result *res)
{
	struct ep_slices sl;
	struct ep_layer_figures *f = calloc(1, sizeof(*f));
	if (!f || ep_layer_slices(run, &sl)) {
		free(f);
		return;
	}
	f->ndp = sl.ndp;
	if ((f->tokens_per_dp = malloc(sizeof(int) * (size_t)sl.ndp)))
		memcpy(f->tokens_per_dp, sl.tokens, sizeof(int) * (size_t)sl.ndp);
	for (int d = 0; d < sl.ndp; d++)
		f->attn_tokens += sl.tokens[d];
	for (int r = 0; r < sl.world; r++)
		f->moe_tokens += ep_slice_len(&sl, r);
	ep_parallel_text(&run->parallel, f->config, sizeof(f->config));
	slowest(run, res, f);
	phase_bytes(run, rows_per_expert, res, f);
	ep_slices_fini(&sl);
	res->layer = f;
}
