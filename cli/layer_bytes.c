/* layer_bytes.c - a MoE layer's bytes per phase and domain, from the run's geometry and routing.
 *
 * parallel-semantics.md section 7. Each phase is a list of (source,
 * destination, bytes) between world ranks; a pair on one node counts as
 * intra, else inter; algorithm bytes include a rank's bytes to itself
 * (DeepEP's convention), wire bytes leave them out. H hidden, K top-k:
 *   ep_dispatch     every rank's slice in its MoE-EP group (EP rank k of
 *                   group g is world rank k moe_tp + g): DeepEP's normal
 *                   mode a row per (token, destination EP rank); low-latency
 *                   and Ascend a row per (token, routed expert), Ascend also
 *                   one per (token, shared expert) to EP rank
 *                   q % rpse + j rpse (V2); row H elem + 4 per fp32 scale
 *                   (int8: one, the spec's "+ 4"; fp8: H / 128, DeepEP's);
 *   moe_tp_gather   each member's received rows to every member of its
 *                   MoE-TP group; the row as the variant gathers it: Ascend's
 *                   expand_x row and scale (the dispatch row), DeepEP's
 *                   received row with its top-k ids and weights and source
 *                   index (+ K 12 + 4, cli/moe_layer_phases.c layer_row_bytes);
 *   moe_tp_reduce   member m's partials of member i's rows to i, H 2;
 *   ep_combine      the dispatch rows back to their sources, H 2, or
 *                   H + 2 H / 8 with Ascend's int8 communication;
 *   attn_tp_gather  each slice to every member of its attention-TP group, H 2;
 *   world_gather    each slice to every rank, H 2;
 *   world_reduce    each rank's partials of every slice to its owner, H 2.
 * These are the spec's algorithm figures. Where an implementation moves
 * other bytes, the figure stays the spec's and the op row keeps its own:
 * DeepEP's internode dispatch and combine forward a row through the rail
 * peer on the destination's node (RDMA, then NVLink), counted here once from
 * source to destination; a low-latency message carries a 16-byte header
 * per row; world_gather also moves each row's top-k ids and weights
 * (K 12 bytes). The routing is regenerated as the imbalance figures'
 * (cli/layer_figures.c): per MoE-EP group, per EP rank, its slice's rows.
 */
#include "cli/layer_bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/layer_figures.h"
#include "reference/moe_slice.h"

/* Where an EP rank's rows go. */
struct ep_side {
	int R, K, E, L;     /* EP ranks, top-k, routed experts, experts per routed rank */
	int Sr, Sn;         /* Ascend's shared-expert ranks and shared experts (0: none) */
	int per_expert;     /* a row per (token, expert), not per (token, rank) */
};

/* The phase being counted and the nodes. */
struct tally {
	int P;                    /* ranks per node; 0: one host */
	struct ep_phase_bytes *b;
};

static void add(const struct tally *t, int src, int dst, uint64_t bytes)
{
	struct ep_phase_bytes *b = t->b;
	if (t->P && src / t->P != dst / t->P) {
		b->alg_inter += bytes;
		b->wire_inter += bytes;
		return;
	}
	b->alg_intra += bytes;
	if (src != dst)
		b->wire_intra += bytes;
}

/* EP rank q's rows (ids [n][K]) by destination EP rank into cnt[R]
 * (zeroed by the caller); mark[R] scratch, zeroed by the caller. */
static void count_source(const struct ep_side *e, int q, const int64_t *ids, int n, uint64_t *cnt, int *mark)
{
	int rpse = e->Sn ? e->Sr / e->Sn : 1;
	for (int t = 0; t < n; t++) {
		for (int j = 0; j < e->K; j++) {
			int64_t x = ids[(size_t)t * (size_t)e->K + (size_t)j];
			if (x < 0 || x >= e->E)
				continue; /* masked */
			int d = e->Sr + (int)(x / e->L);
			if (e->per_expert)
				cnt[d]++;
			else if (mark[d] != t + 1) /* DeepEP's normal mode: once per destination rank */
				mark[d] = t + 1, cnt[d]++;
		}
		for (int j = 0; j < e->Sn; j++)
			cnt[q % rpse + j * rpse]++;
	}
}

/* One MoE-EP group's sources into rows[W][W] (world ranks). */
static int count_group(const struct ep_run *run, const struct ep_slices *sl, const struct ep_side *e, int g,
		       uint64_t *rows, int64_t *ids, float *w, uint64_t *cnt, int *mark)
{
	struct ep_group_arrays a;
	struct ep_shape s = run->shape;
	s.num_ranks = sl->moe_ep, s.num_tokens = sl->max_slice;
	int rc = ep_slices_group(sl, g, &a);
	if (rc)
		return rc;
	struct ep_routing r = run->routing;
	r.group = &a.view;
	for (int q = 0; !rc && q < e->R; q++) {
		if ((rc = ep_gen_routing(&s, &r, run->cfg->seed, q, ids, w)))
			break;
		memset(cnt, 0, sizeof(uint64_t) * (size_t)e->R);
		memset(mark, 0, sizeof(int) * (size_t)e->R);
		count_source(e, q, ids, a.num_tokens[q], cnt, mark);
		for (int k = 0; k < e->R; k++)
			rows[(size_t)a.world_rank[q] * (size_t)sl->world + (size_t)a.world_rank[k]] += cnt[k];
	}
	ep_group_arrays_fini(&a);
	return rc;
}

/* rows[s][d]: the rows world rank s's EP dispatch sends world rank d. */
static int count_rows(const struct ep_run *run, const struct ep_slices *sl, const struct ep_side *e, uint64_t *rows)
{
	size_t TK = (size_t)sl->max_slice * (size_t)e->K;
	int64_t *ids = malloc(sizeof(int64_t) * (TK + 1));
	float *w = malloc(sizeof(float) * (TK + 1));
	uint64_t *cnt = malloc(sizeof(uint64_t) * (size_t)e->R);
	int *mark = malloc(sizeof(int) * (size_t)e->R);
	int rc = ids && w && cnt && mark ? 0 : -ENOMEM;
	for (int g = 0; !rc && g < sl->moe_tp; g++)
		rc = count_group(run, sl, e, g, rows, ids, w, cnt, mark);
	free(ids);
	free(w);
	free(cnt);
	free(mark);
	return rc;
}

/* EP dispatch (or, reversed, combine): rows[s][d] x row bytes. */
static void ep_phase(const struct tally *t, const uint64_t *rows, int W, uint64_t row, int reverse)
{
	for (int s = 0; s < W; s++)
		for (int d = 0; d < W; d++) {
			uint64_t n = rows[(size_t)s * (size_t)W + (size_t)d];
			if (n)
				add(t, reverse ? d : s, reverse ? s : d, n * row);
		}
}

/* A phase inside contiguous groups of n ranks: rank r sends member m
 * v[r] rows (by_dest: v[m], its share of m's rows) of row bytes. */
static void group_phase(const struct tally *t, int W, int n, const uint64_t *v, int by_dest, uint64_t row)
{
	for (int r = 0; r < W; r++)
		for (int m = r / n * n; m < (r / n + 1) * n; m++)
			add(t, r, m, (by_dest ? v[m] : v[r]) * row);
}

/* The EP side of the run: its layout and what a row is. */
static int side_of(const struct ep_run *run, const struct ep_slices *sl, int rows_per_expert, struct ep_side *e)
{
	int ascend = run->cfg->ep_semantics == EP_SEM_ASCEND;
	*e = (struct ep_side){.R = sl->moe_ep, .K = run->shape.num_topk, .E = run->shape.num_experts,
			      .Sr = ascend ? run->cfg->shared_expert_ranks : 0, .Sn = ascend ? run->cfg->shared_experts : 0,
			      .per_expert = rows_per_expert || ascend};
	if (e->Sn && (e->Sr < e->Sn || e->Sr % e->Sn))
		return -EINVAL;
	e->L = e->R > e->Sr ? e->E / (e->R - e->Sr) : 0;
	return e->L > 0 && e->E % (e->R - e->Sr) == 0 ? 0 : -EINVAL;
}

static struct ep_phase_bytes *phase(struct ep_phase_bytes *out, int *n, const char *name)
{
	out[*n] = (struct ep_phase_bytes){.phase = name};
	return &out[(*n)++];
}

/* a2a mode's EP side: dispatch, the MoE-TP stage, combine. */
static int a2a_phases(const struct ep_run *run, const struct ep_slices *sl, int rows_per_expert,
		      struct ep_phase_bytes *out, int *n)
{
	const struct ep_shape *s = &run->shape;
	int W = sl->world, P = run->cfg->ranks_per_node, ascend = run->cfg->ep_semantics == EP_SEM_ASCEND;
	uint64_t H = (uint64_t)s->hidden, K = (uint64_t)s->num_topk;
	uint64_t drow = ep_dtype_row_bytes(s->dtype, s->hidden) + 4 * (uint64_t)ep_dtype_num_scales(s->dtype, s->hidden);
	uint64_t grow = ascend ? drow : drow + 12 * K + 4, crow = ascend && run->cfg->comm_quant ? H + 2 * H / 8 : 2 * H;
	struct ep_side e;
	int rc = side_of(run, sl, rows_per_expert, &e);
	uint64_t *rows = rc ? NULL : calloc((size_t)W * (size_t)W, sizeof(uint64_t));
	uint64_t *recv = rc ? NULL : calloc((size_t)W, sizeof(uint64_t));
	if (!rc && (!rows || !recv))
		rc = -ENOMEM;
	if (!rc && !(rc = count_rows(run, sl, &e, rows))) {
		for (int q = 0; q < W; q++)
			for (int d = 0; d < W; d++)
				recv[d] += rows[(size_t)q * (size_t)W + (size_t)d];
		ep_phase(&(struct tally){P, phase(out, n, "ep_dispatch")}, rows, W, drow, 0);
		if (sl->moe_tp > 1) {
			group_phase(&(struct tally){P, phase(out, n, "moe_tp_gather")}, W, sl->moe_tp, recv, 0, grow);
			group_phase(&(struct tally){P, phase(out, n, "moe_tp_reduce")}, W, sl->moe_tp, recv, 1, 2 * H);
		}
		ep_phase(&(struct tally){P, phase(out, n, "ep_combine")}, rows, W, crow, 1);
	}
	free(rows);
	free(recv);
	return rc;
}

int ep_layer_bytes(const struct ep_run *run, int rows_per_expert, struct ep_phase_bytes *out)
{
	struct ep_slices sl;
	int n = 0, rc = ep_layer_slices(run, &sl);
	if (rc)
		return rc;
	int W = sl.world, P = run->cfg->ranks_per_node;
	uint64_t H2 = 2 * (uint64_t)run->shape.hidden, *slice = calloc((size_t)W, sizeof(uint64_t));
	if (!slice)
		rc = -ENOMEM;
	for (int r = 0; slice && r < W; r++)
		slice[r] = (uint64_t)ep_slice_len(&sl, r);
	if (!rc && run->parallel.moe_comm == EP_MOE_ALLGATHER) {
		group_phase(&(struct tally){P, phase(out, &n, "world_gather")}, W, W, slice, 0, H2);
		group_phase(&(struct tally){P, phase(out, &n, "world_reduce")}, W, W, slice, 1, H2);
	} else if (!rc) {
		rc = a2a_phases(run, &sl, rows_per_expert, out, &n);
	}
	if (!rc && sl.tp > 1)
		group_phase(&(struct tally){P, phase(out, &n, "attn_tp_gather")}, W, sl.tp, slice, 0, H2);
	free(slice);
	ep_slices_fini(&sl);
	return rc ? rc : n;
}

const char *ep_layer_phase_of_op(const char *op)
{
	static const char *const phases[] = {"ep_dispatch", "moe_tp_gather", "moe_tp_reduce", "ep_combine",
					     "attn_tp_gather", "world_gather", "world_reduce"};
	if (!strcmp(op, "dispatch"))
		return phases[0];
	if (!strcmp(op, "combine"))
		return phases[3];
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (!strcmp(op, phases[i]))
			return phases[i];
	return NULL;
}
