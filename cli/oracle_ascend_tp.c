/* oracle_ascend_tp.c - every phase of Ascend's MoE-TP layer for golden and verify (see oracle_ascend_tp.h). */
#include "cli/oracle_ascend_tp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ascend.h"
#include "cli/oracle_layer.h"
#include "cli/phase_tally.h"
#include "collectives/ascend.h"
#include "collectives/error.h"
#include "reference/ascend_ref.h"
#include "reference/ascend_tp_ref.h"
#include "reference/moe_layer_ref.h"
#include "reference/moe_slice.h"
#include "reports/report.h"

/* The layer's groups and every group's reference at one EP rank. */
struct atpo {
	struct ep_ascend_params p;        /* one EP group's (R = moe_ep) */
	struct ep_shape eshape;           /* R = moe_ep, BS = the longest slice */
	int W, tp, M, R, q;
	size_t A, rb;                     /* Ascend's A (the dump's shapes: a MoE or shared rank's, the larger), row bytes */
	enum ep_payload payload;
	uint64_t seed;
	struct ep_slices sl;
	struct ep_group_arrays *views;    /* [M] */
	struct ep_routing *routings;      /* [M] */
	struct ep_moe_tp_expert *experts; /* [M] */
	struct ep_ascend_ref *refs;       /* [M] group i's reference at EP rank q */
	struct ep_ascend_inputs base;
	struct ep_loaded_rank *gl;        /* verify: [M][R] the directory's inputs by group */
	const float **smooth_of;          /* verify: [M][R] */
};

static void drop_refs(struct atpo *a)
{
	for (int i = 0; a->refs && a->q >= 0 && i < a->M; i++)
		ep_ascend_ref_fini(&a->refs[i]);
	a->q = -1;
}

static void atpo_fini(struct atpo *a)
{
	drop_refs(a);
	for (int i = 0; a->views && i < a->M; i++)
		ep_group_arrays_fini(&a->views[i]);
	ep_slices_fini(&a->sl);
	free(a->views), free(a->routings), free(a->experts), free(a->refs), free(a->gl), free(a->smooth_of);
	memset(a, 0, sizeof(*a));
}

/* From the manifest m; every group's routing is base with the group's view. */
static int atpo_init(struct atpo *a, const struct ep_oracle_manifest *m, const struct ep_routing *base,
		     const struct ep_ascend_inputs *in)
{
	const struct ep_oracle_layer *c = &m->layer;
	memset(a, 0, sizeof(*a));
	a->q = -1, a->W = m->shape.num_ranks, a->tp = c->tp, a->M = c->moe_tp, a->R = c->moe_ep;
	a->payload = m->payload, a->seed = m->seed, a->base = *in;
	ep_ascend_manifest_params(m, &a->p);
	a->p.num_ranks = a->R;
	a->eshape = m->shape;
	a->eshape.num_ranks = a->R;
	a->A = ep_ascend_rank_capacity(&a->p, a->R - 1);
	if (a->p.shared_ranks && ep_ascend_rank_capacity(&a->p, 0) > a->A)
		a->A = ep_ascend_rank_capacity(&a->p, 0);
	a->rb = ep_ascend_row_bytes(&a->p);
	int rc = ep_slices_init(&a->sl, a->W, c->tp, a->M, a->R, (enum ep_slice_pad)c->sp_pad, c->tokens_per_dp, c->uneven,
				m->seed);
	if (rc)
		return rc;
	size_t n = (size_t)a->M;
	a->views = calloc(n, sizeof(*a->views));
	a->routings = calloc(n, sizeof(*a->routings));
	a->experts = calloc(n, sizeof(*a->experts));
	a->refs = calloc(n, sizeof(*a->refs));
	if (!a->views || !a->routings || !a->experts || !a->refs)
		return -ENOMEM;
	for (int i = 0; i < a->M; i++) {
		if ((rc = ep_slices_group(&a->sl, i, &a->views[i])))
			return rc;
		a->routings[i] = *base;
		a->routings[i].group = &a->views[i].view;
		a->routings[i].group_owned = NULL;
		ep_moe_tp_expert_init(&a->experts[i], a->payload, a->M, i);
	}
	return 0;
}

/* Every group's reference at EP rank q (kept until q changes). */
static int refs_for(struct atpo *a, int q)
{
	if (a->q == q)
		return 0;
	drop_refs(a);
	for (int i = 0; i < a->M; i++) {
		struct ep_ascend_inputs in = a->base;
		in.routing = &a->routings[i];
		in.expert = &a->experts[i].fn;
		if (a->smooth_of)
			in.smooth_of = &a->smooth_of[(size_t)i * (size_t)a->R];
		int rc = ep_ascend_ref_init(&a->refs[i], &a->p, &a->eshape, &in, q);
		if (rc) {
			for (int k = 0; k < i; k++)
				ep_ascend_ref_fini(&a->refs[k]);
			return rc;
		}
	}
	a->q = q;
	return 0;
}

/* ---- one rank's expected tensors ------------------------------------------ */

enum { T_EX, T_DS, T_INFO, T_COUNTS, T_TPC, T_NUMS, T_EO, T_RED, T_X, T_ATTN, T_N };
static const char *const t_names[T_N] = {"expand_x", "dynamic_scales", "assist_info_for_combine", "ep_recv_counts",
					 "tp_recv_counts", "expert_token_nums", "expert_outputs", "moe_tp_reduced_x",
					 "x", "attn_tp_gathered_x"};
static const enum ep_layer_phase t_phase[T_N] = {
	EP_LPH_MOE_TP_GATHER, EP_LPH_MOE_TP_GATHER, EP_LPH_EP_DISPATCH, EP_LPH_MOE_TP_GATHER, EP_LPH_MOE_TP_GATHER,
	EP_LPH_MOE_TP_GATHER, EP_LPH_EXPERTS, EP_LPH_MOE_TP_REDUCE, EP_LPH_EP_COMBINE, EP_LPH_ATTN_TP_GATHER};

/* Rank w's tensors: dtype, dims, the rows that are defined (past them zeros). */
struct tshape {
	enum ep_npy_dtype d;
	size_t d0, d1, rows;
};

struct trank {
	int w, g, q;
	size_t n, N, T, ga;               /* own rows, gathered rows, tokens, attention rows */
	size_t nl, nc;                    /* its EP rank's local experts, ep_recv_counts (shared-expert rank: 1, R) */
	struct tshape s[T_N];
	void *t[T_N];
	void *scratch;                    /* the dispatch check's own-row outputs (golden) */
};

static void trank_free(struct trank *t)
{
	for (int i = 0; i < T_N; i++)
		free(t->t[i]);
	free(t->scratch);
}

static int trank_init(const struct atpo *a, int w, struct trank *t)
{
	size_t H = (size_t)a->p.hidden, M = (size_t)a->M;
	memset(t, 0, sizeof(*t));
	t->w = w, t->g = w % a->M, t->q = w / a->M;
	t->n = a->refs[t->g].num_recv, t->T = (size_t)a->refs[t->g].tokens[t->q];
	t->nl = (size_t)a->refs[t->g].num_local, t->nc = (size_t)a->refs[t->g].num_counts;
	for (int i = 0; i < a->M; i++)
		t->N += a->refs[i].num_recv;
	for (int i = 0, d = w / a->tp; i < a->tp; i++)
		t->ga += (size_t)ep_slice_len(&a->sl, d * a->tp + i);
	const struct tshape s[T_N] = {
		{a->p.quant ? EP_NPY_I1 : EP_NPY_U2, M * a->A, H, t->N}, {EP_NPY_F4, M * a->A, 0, t->N},
		{EP_NPY_I4, a->A * 128, 0, 3 * t->n}, {EP_NPY_I4, M * t->nc, 0, M * t->nc}, {EP_NPY_I4, M, 0, M},
		{EP_NPY_I8, t->nl, 0, t->nl}, {EP_NPY_U2, t->N, H, t->N}, {EP_NPY_U2, t->n, H, t->n},
		{EP_NPY_U2, t->T, H, t->T}, {EP_NPY_U2, t->ga, H, t->ga}};
	memcpy(t->s, s, sizeof(s));
	if (t->N > M * a->A)
		return -EINVAL;
	for (int i = 0; i < T_N; i++)
		if (!(t->t[i] = calloc(s[i].d0 * (s[i].d1 ? s[i].d1 : 1) * ep_npy_itemsize(s[i].d) + 1, 1)))
			return -ENOMEM;
	t->scratch = calloc(t->n * (a->rb + 4) + t->nc * 4 + t->nl * 8 + 64, 1);
	return t->scratch ? 0 : -ENOMEM;
}

/* Expected rows into t's tensors (struct ep_check_hooks), names from `only` on. */
struct sink {
	struct trank *t;
	int from, to;
};

static void sink_row(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct sink *k = ctx;
	for (int i = k->from; i < k->to; i++)
		if (!strcmp(t_names[i], tensor))
			memcpy((char *)k->t->t[i] + (size_t)row * bytes, data, bytes);
}

/* Runs check with the sink of tensors [from, to) of t. */
static struct ep_check_report sink_report(const struct atpo *a, struct sink *k, struct ep_check_hooks *h)
{
	struct ep_check_report rep;
	ep_report_init(&rep, a->W, NULL);
	*h = (struct ep_check_hooks){.ctx = k, .expected = sink_row};
	rep.hooks = h;
	return rep;
}

/* Own dispatch (assist_info), the gather, the experts, the reduce, the
 * combine and the attention gather of rank t->w, each from the inputs. */
static int expect_rank(struct atpo *a, struct trank *t)
{
	const struct ep_ascend_ref *own = &a->refs[t->g];
	size_t H = (size_t)a->p.hidden;
	uint8_t *sx = t->scratch;
	float *sds = (float *)(sx + t->n * a->rb + 16);
	int64_t *snums = (int64_t *)(((uintptr_t)(sds + t->n) + 15) & ~(uintptr_t)15);
	int32_t *scounts = (int32_t *)(snums + t->nl);
	struct ep_ascend_out out = {.num_recv = t->n, .capacity = t->n, .expand_x = sx,
				    .dynamic_scales = a->p.quant ? sds : NULL, .assist_info = t->t[T_INFO],
				    .expert_token_nums = snums, .ep_recv_counts = scounts, .num_local = own->num_local,
				    .num_counts = own->num_counts};
	struct ep_check_hooks h;
	struct sink k = {t, T_INFO, T_INFO + 1};
	struct ep_check_report own_rep = sink_report(a, &k, &h), rep = own_rep;
	ep_ascend_ref_check_dispatch(own, &out, &own_rep); /* only assist_info kept: the rest is the gather's */
	struct ep_ascend_tp_out g = {t->N, t->t[T_EX], a->p.quant ? t->t[T_DS] : NULL, t->t[T_COUNTS], t->t[T_TPC],
				     t->t[T_NUMS]};
	k = (struct sink){t, T_EX, T_NUMS + 1};
	ep_ascend_tp_ref_check_gather(a->refs, a->M, t->g, &g, &rep);
	const float *ds = t->t[T_DS];
	uint16_t *eo = t->t[T_EO];
	for (int b = 0, at = 0; b < a->M; b++) { /* w's own stand-in on every gathered row */
		const struct ep_ascend_ref *ref = &a->refs[(t->g + b) % a->M];
		for (size_t m = 0; m < ref->num_recv; m++, at++)
			ep_ascend_expert_row(a->payload, t->w, ep_ascend_tp_ref_local_expert(ref, m), a->p.quant,
					     (const uint8_t *)t->t[T_EX] + (size_t)at * a->rb, a->p.quant ? ds[at] : 0.0f,
					     (int)H, eo + (size_t)at * H);
	}
	k = (struct sink){t, T_RED, T_X + 1};
	ep_ascend_tp_ref_check_reduce(own, t->t[T_RED], &rep);
	ep_ascend_ref_check_combine(own, t->t[T_X], &rep);
	uint16_t *attn = t->t[T_ATTN];
	for (int i = 0, d = t->w / a->tp; i < a->tp; i++)
		for (int tk = 0, src = d * a->tp + i; tk < ep_slice_len(&a->sl, src); tk++, attn += H)
			if (ep_ascend_ref_combined_row(&a->refs[src % a->M], src / a->M, tk, attn))
				return -ENOMEM;
	return rep.wrong_elems ? -EIO : 0;
}

/* ---- golden ---------------------------------------------------------------- */

/* Rank t->w's inputs as the run generates them, written with its tensors. */
static int golden_write(struct ep_golden *gd, const struct atpo *a, const struct trank *t, const char *dir)
{
	const struct ep_ascend_ref *own = &a->refs[t->g];
	size_t H = (size_t)a->p.hidden, K = (size_t)a->p.num_topk;
	size_t E = (size_t)(a->p.shared_experts + a->p.num_experts); /* smoothing rows: S_n + E */
	uint16_t *x = calloc(t->T * H + 1, 2), *sx = gd->run.shape.num_bias ? calloc(t->T * H + 1, 2) : NULL;
	float *sm = gd->cfg.smooth_scales && a->p.quant ? calloc(E * H + 1, 4) : NULL;
	int rc = x && (sx || !gd->run.shape.num_bias) && (sm || !gd->cfg.smooth_scales || !a->p.quant) ? 0 : -ENOMEM;
	for (size_t tk = 0; !rc && tk < t->T; tk++) {
		ep_gen_bf16_row(a->seed, &a->routings[t->g], EP_STREAM_X, t->q, (int64_t)tk, (int)H, x + tk * H);
		if (sx)
			ep_gen_bf16_row(a->seed, &a->routings[t->g], EP_STREAM_BIAS0, t->q, (int64_t)tk, (int)H, sx + tk * H);
	}
	if (sm)
		ep_ascend_gen_smooth(a->seed, (int)E, (int)H, sm);
	const struct ep_placement *pl = gd->run.routing.placement; /* redundant experts: the map, as the run dumps it */
	struct ep_npy_item it[8 + T_N] = {
		{"dispatch_x", EP_NPY_U2, t->T, H, 2, x},
		{"expert_ids", EP_NPY_I8, t->T, K, 2, ep_ascend_ref_ids(own, t->q)},
		{"expert_scales", EP_NPY_F4, t->T, K, 2, ep_ascend_ref_weights(own, t->q)},
		{"smooth_scales", EP_NPY_F4, E, H, 2, sm},
		{"shared_expert_x", EP_NPY_U2, t->T, H, 2, sx}};
	for (int i = 0; i < T_N; i++)
		it[5 + i] = (struct ep_npy_item){t_names[i], t->s[i].d, t->s[i].d0, t->s[i].d1, t->s[i].d1 ? 2 : 1,
						 (i == T_DS && !a->p.quant) || (i == T_ATTN && a->tp == 1) ? NULL : t->t[i]};
	it[5 + T_N] = (struct ep_npy_item){"phy2log", EP_NPY_I4, pl ? (size_t)pl->physical : 0, 0, 1, pl ? pl->phy2log : NULL};
	it[6 + T_N] = (struct ep_npy_item){"logcnt", EP_NPY_I4, pl ? (size_t)pl->logical : 0, 0, 1, pl ? pl->logcnt : NULL};
	it[7 + T_N] = (struct ep_npy_item){"log2phy", EP_NPY_I4, pl ? (size_t)pl->logical : 0, pl ? (size_t)pl->maxcnt : 0, 2,
					   pl ? pl->log2phy : NULL};
	if (!rc)
		rc = ep_npy_write_items(dir, t->w, it, 8 + T_N);
	for (int i = 0; !rc && i < 8 + T_N; i++)
		if (it[i].data)
			rc = ep_oracle_add(&gd->m, dir, t->w, it[i].name, ep_oracle_role_of(it[i].name, 1));
	free(x), free(sx), free(sm);
	return rc;
}

int ep_ascend_tp_golden(struct ep_golden *gd, const char *dir)
{
	struct atpo a;
	struct ep_ascend_inputs in;
	ep_ascend_run_inputs(&gd->run, &in);
	int rc = atpo_init(&a, &gd->m, &gd->run.routing, &in);
	for (int w = 0; !rc && w < a.W; w++) {
		struct trank t = {0};
		if (!(rc = refs_for(&a, w / a.M)) && !(rc = trank_init(&a, w, &t)) && !(rc = expect_rank(&a, &t)))
			rc = golden_write(gd, &a, &t, dir);
		trank_free(&t);
	}
	atpo_fini(&a);
	return rc;
}

/* ---- verify ---------------------------------------------------------------- */

struct vt {
	const struct ep_oracle_manifest *m;
	const char *dir;
	struct atpo a;
	struct ep_npy *in;               /* [W][6] Ascend's input slots */
	struct ep_loaded_rank *loaded;   /* [W] */
	char not_checked[1024];
	struct ep_phase_tally tally;
	char handle_first[EP_TEXT_MAX];
	struct ep_point pt;
};

/* The library's tensors of a rank: present and fitting, else zeros (skipped). */
struct lib {
	struct ep_npy f[T_N];
	const void *t[T_N];
	int absent[T_N];
	int skip_nums;                   /* the dispatch phase: expert_token_nums is the gather's */
	void *zeros;
};

static int skip_absent(void *ctx, const char *tensor)
{
	const struct lib *l = ctx;
	if (l->skip_nums && !strcmp(tensor, "expert_token_nums"))
		return 1;
	for (int i = 0; i < T_N; i++)
		if (!strcmp(t_names[i], tensor))
			return l->absent[i];
	return 0;
}

static void lib_free(struct lib *l)
{
	for (int i = 0; i < T_N; i++)
		ep_npy_free(&l->f[i]);
	free(l->zeros);
}

/* Loads rank t->w's outputs; a wrong row or column count is a wrong output of its phase. */
static int lib_load(struct vt *v, const struct trank *t, struct lib *l, struct ep_check_report *rep)
{
	size_t big = 0;
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < T_N; i++) {
		size_t b = t->s[i].d0 * (t->s[i].d1 ? t->s[i].d1 : 1) * ep_npy_itemsize(t->s[i].d);
		big = b > big ? b : big;
	}
	if (!(l->zeros = calloc(big + 64, 1)))
		return EP_EXIT_ENV;
	for (int i = 0; i < T_N; i++) {
		const struct tshape *s = &t->s[i];
		size_t any[2] = {0, 0};
		l->t[i] = l->zeros, l->absent[i] = 1;
		if ((i == T_DS && !v->a.p.quant) || (i == T_ATTN && v->a.tp == 1))
			continue;
		int rc = ep_oracle_load(v->dir, t->w, t_names[i], s->d, s->d1 ? 2 : 1, any, &l->f[i], 0);
		if (rc < 0 || rc > 1)
			return rc;
		if (rc == 1) {
			if (!strstr(v->not_checked, t_names[i])) {
				size_t k = strlen(v->not_checked);
				snprintf(v->not_checked + k, sizeof(v->not_checked) - k, "%s%s", k ? ", " : "", t_names[i]);
			}
			continue;
		}
		/* rows: at least the defined ones (Ascend's shapes pad), at most the tensor's */
		int rows_ok = l->f[i].shape[0] >= s->rows && l->f[i].shape[0] <= s->d0, cols_ok = !s->d1 || l->f[i].shape[1] == s->d1;
		if (!rows_ok || !cols_ok) {
			char what[48];
			snprintf(what, sizeof(what), "%.32s.%s", t_names[i], rows_ok ? "cols" : "rows");
			ep_report_scalar(&rep[t_phase[i]], what, (long long)(rows_ok ? s->d1 : s->d0),
					 (long long)l->f[i].shape[rows_ok ? 1 : 0]);
			continue;
		}
		l->t[i] = l->f[i].data, l->absent[i] = 0;
	}
	return 0;
}

/* Rank t->w's phases, each against its expectation from the inputs. */
static void check_phases(struct vt *v, const struct trank *t, struct lib *l, struct ep_check_report *rep)
{
	struct atpo *a = &v->a;
	const struct ep_ascend_ref *own = &a->refs[t->g];
	size_t H = (size_t)a->p.hidden;
	struct ep_check_hooks h = {.ctx = l, .skip = skip_absent};
	for (int k = 0; k < EP_LPH_N; k++)
		rep[k].hooks = &h;
	/* ep_dispatch: w's own rows are block 0 of the gathered tensors */
	struct ep_ascend_out out = {.num_recv = t->n, .capacity = t->n, .expand_x = l->t[T_EX],
				    .dynamic_scales = a->p.quant ? l->t[T_DS] : NULL, .assist_info = l->t[T_INFO],
				    .expert_token_nums = l->zeros, .ep_recv_counts = l->t[T_COUNTS],
				    .num_local = own->num_local, .num_counts = own->num_counts};
	l->skip_nums = 1;
	ep_ascend_ref_check_dispatch(own, &out, &rep[EP_LPH_EP_DISPATCH]);
	l->skip_nums = 0;
	struct ep_ascend_tp_out g = {t->N, l->t[T_EX], a->p.quant ? l->t[T_DS] : NULL, l->t[T_COUNTS], l->t[T_TPC],
				     l->t[T_NUMS]};
	ep_ascend_tp_ref_check_gather(a->refs, a->M, t->g, &g, &rep[EP_LPH_MOE_TP_GATHER]);
	const uint16_t *want = t->t[T_EO], *got = l->t[T_EO];
	for (int b = 0, at = 0; b < a->M; b++) {
		int i = (t->g + b) % a->M;
		for (size_t m = 0; m < a->refs[i].num_recv; m++, at++)
			ep_compare_row(&rep[EP_LPH_EXPERTS], "expert_outputs", EP_ELEM_BF16, want + (size_t)at * H,
				       got + (size_t)at * H, H, at, a->refs[i].me * a->M + i, a->refs[i].rows[3 * m + 1]);
	}
	ep_ascend_tp_ref_check_reduce(own, l->t[T_RED], &rep[EP_LPH_MOE_TP_REDUCE]);
	ep_ascend_ref_check_combine(own, l->t[T_X], &rep[EP_LPH_EP_COMBINE]);
	want = t->t[T_ATTN], got = l->t[T_ATTN];
	for (int i = 0, at = 0, d = t->w / a->tp; i < a->tp; i++)
		for (int tk = 0, src = d * a->tp + i; tk < ep_slice_len(&a->sl, src); tk++, at++)
			ep_compare_row(&rep[EP_LPH_ATTN_TP_GATHER], "attn_tp_gathered_x", EP_ELEM_BF16, want + (size_t)at * H,
				       got + (size_t)at * H, H, at, src, tk);
}

static int verify_rank(struct vt *v, int w, uint64_t *by_src)
{
	struct trank t = {0};
	struct lib l = {0};
	struct ep_check_report rep[EP_LPH_N];
	for (int k = 0; k < EP_LPH_N; k++)
		ep_report_init(&rep[k], v->a.W, by_src);
	int rc = ep_error_exit_code(refs_for(&v->a, w / v->a.M));
	if (!rc && (rc = trank_init(&v->a, w, &t)))
		rc = rc == -EINVAL ? (fprintf(stderr, "epbench verify: rank %d gathers more rows than Ascend's shapes hold\n", w),
				      EP_EXIT_USAGE) : EP_EXIT_ENV;
	if (!rc)
		rc = expect_rank(&v->a, &t) ? EP_EXIT_ENV : lib_load(v, &t, &l, rep);
	if (!rc)
		check_phases(v, &t, &l, rep);
	if (!rc)
		ep_phase_tally_add(&v->tally, w, rep, &v->pt.res);
	for (int k = 0; !rc && k < EP_LPH_N; k++) {
		if (rep[k].has_handle_first && !v->handle_first[0]) {
			char line[EP_TEXT_MAX - 64];
			ep_mismatch_format(&rep[k].handle_first, line, sizeof(line));
			snprintf(v->handle_first, sizeof(v->handle_first), "rank %d: %.*s", w, (int)sizeof(v->handle_first) - 64,
				 line);
		}
	}
	lib_free(&l);
	trank_free(&t);
	return rc;
}

/* The per-phase lines, the first wrong phase, the handles and the footer. */
static int report(struct vt *v, uint64_t *matrix)
{
	int rc = ep_phase_tally_report(&v->tally, &v->pt.res, v->dir);
	if (rc)
		return rc;
	printf("# not checked (absent): %s\n", v->not_checked[0] ? v->not_checked : "nothing");
	if (v->handle_first[0])
		printf("# handles: first wrong: %s\n", v->handle_first);
	v->pt.res.wrong_matrix = matrix;
	v->pt.res.exit_code = v->pt.res.wrong_elems ? EP_EXIT_WRONG : EP_EXIT_OK;
	ep_table_footer(stdout, &v->pt, 1, 1, NULL);
	return v->pt.res.exit_code;
}

/* Every world rank's inputs, by group (EP rank k of group i is world rank i + k moe_tp). */
static int load_inputs(struct vt *v)
{
	struct atpo *a = &v->a;
	size_t W = (size_t)a->W, n = (size_t)a->M * (size_t)a->R;
	v->in = calloc(W * 6, sizeof(*v->in));
	v->loaded = calloc(W, sizeof(*v->loaded));
	a->gl = calloc(n, sizeof(*a->gl));
	a->smooth_of = calloc(n, sizeof(*a->smooth_of));
	if (!v->in || !v->loaded || !a->gl || !a->smooth_of)
		return EP_EXIT_ENV;
	for (int w = 0; w < a->W; w++) {
		int rc = ep_ascend_load_inputs(v->m, v->dir, w, &v->in[(size_t)w * 6], &v->loaded[w]);
		if (rc)
			return rc;
		if (v->loaded[w].num_tokens != ep_slice_len(&a->sl, w))
			return fprintf(stderr, "epbench verify: rank%d/dispatch_x.npy has %d tokens, its slice %d\n", w,
				       v->loaded[w].num_tokens, ep_slice_len(&a->sl, w)), EP_EXIT_USAGE;
	}
	for (int i = 0; i < a->M; i++) {
		for (int k = 0; k < a->R; k++) {
			a->gl[i * a->R + k] = v->loaded[i + k * a->M];
			a->smooth_of[i * a->R + k] = v->in[(size_t)(i + k * a->M) * 6 + 1].data;
		}
		a->routings[i].loaded = &a->gl[i * a->R];
	}
	return 0;
}

int ep_ascend_tp_verify(const struct ep_oracle_manifest *m, const char *dir)
{
	struct vt v = {.m = m, .dir = dir};
	int W = m->shape.num_ranks, code = 0;
	uint64_t *by_src = calloc((size_t)W, 8), *matrix = calloc((size_t)W * (size_t)W, 8);
	struct ep_routing base = {.payload = m->payload};
	struct ep_ascend_inputs in = {.smooth = m->ascend.smooth_scales, .shared_x = m->shape.num_bias > 0};
	ep_phase_tally_init(&v.tally);
	if (!by_src || !matrix || atpo_init(&v.a, m, &base, &in))
		code = EP_EXIT_ENV;
	if (!code && !(code = load_inputs(&v))) {
		const struct ep_oracle_layer *c = &m->layer;
		printf("# epbench verify %s --ep-semantics ascend %s: MoE layer dp=%d tp=%d moe_tp=%d moe_ep=%d a2a, %d ranks, hidden %d, top-%d of %d experts, dtype %s, payload %s\n",
		       m->subcommand, dir, c->dp, c->tp, c->moe_tp, c->moe_ep, W, m->shape.hidden, m->shape.num_topk,
		       m->shape.num_experts, ep_dtype_name(m->shape.dtype), ep_payload_name(m->payload));
		printf("# inputs read from the directory; every phase's expected outputs computed by reference/ (golden: %s)\n",
		       m->command_line);
		v.pt = (struct ep_point){.ranks = W, .tokens = m->shape.num_tokens, .hidden = m->shape.hidden};
		v.pt.res.checked = 1;
		for (int w = 0; w < W && !code; w++) {
			code = verify_rank(&v, w, by_src);
			for (int s = 0; s < W; s++)
				matrix[(size_t)s * W + w] = by_src[s];
		}
		if (!code)
			code = report(&v, matrix);
	}
	for (int i = 0; v.in && i < W * 6; i++)
		ep_npy_free(&v.in[i]);
	free(v.in), free(v.loaded), free(by_src), free(matrix);
	atpo_fini(&v.a);
	return code;
}
