/* oracle_ll_layer.c - golden and verify of a low-latency MoE layer (`golden low-latency --parallel ...`), phase by phase.
 *
 * The tensors of world rank r = q moe_tp + g are those cli/ll_layer.c (moe_tp
 * > 1) and cli/low_latency.c (moe_tp = 1) dump, in the same layout
 * (cli/ll_packed.h: rows past the counts zero):
 *   input           x, topk_idx, topk_weights (its slice);
 *   ep_dispatch     packed_recv_* of EP rank q in MoE-EP group g (R = moe_ep);
 *   moe_tp_gather   moe_tp_gathered_* (moe_tp > 1): [moe_tp] blocks, block i
 *                   the receive layout of MoE-TP peer (g + i) % moe_tp;
 *   experts         moe_tp_partial (moe_tp > 1: r's stand-in of every gathered
 *                   row, [moe_tp][L][R*N][H]) or combine_x (moe_tp = 1);
 *   moe_tp_reduce   moe_tp_reduced_x (moe_tp > 1: [L][R*N][H], combine's input);
 *   ep_combine      combined_x;
 *   attn_tp_gather  attn_tp_gathered_x (tp > 1).
 * Every expectation comes from reference/low_latency_ref.h over the MoE-EP
 * groups' routings (each group's reference for EP rank q, its expert hook
 * the MoE-TP sum of reference/moe_layer_ref.h), the run's own references:
 * golden draws the routings from the seed as the run does
 * (cli/moe_layer_geometry.c), verify builds them over the slices it reads
 * from the directory (cli/oracle_layer.h's groups), so each phase's
 * expectation follows from the inputs alone and the first wrong phase is
 * where a library went wrong. Only the defined rows are compared (the first
 * count rows of each expert, the expected counts); with --ll-order any each
 * expert's rows of the receive layout and of every gathered block are first
 * put in canonical order (source rank, then source token), the rows of the
 * partials and reduced rows that sit beside them moving with them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/golden.h"
#include "cli/ll_packed.h"
#include "cli/low_latency.h"
#include "cli/moe_layer.h"
#include "cli/oracle_layer.h"
#include "cli/phase_tally.h"
#include "collectives/error.h"
#include "collectives/numeric.h"
#include "reference/low_latency_ref.h"
#include "reference/transform.h"
#include "reports/report.h"

/* What every rank's expectations are computed from. */
struct lll_world {
	struct ep_ll_config cfg;                 /* one MoE-EP group's collective */
	int num_tokens;                          /* T of the groups' routings: the longest slice */
	const struct ep_routing *routings;       /* [moe_tp] */
	const struct ep_moe_tp_expert *experts;  /* [moe_tp] */
	uint64_t seed;
	int uneven;
	enum ep_payload payload;
	int tp, moe_tp;
};

/* One world rank's tensors (expected, or a library's). */
struct lll_tensors {
	size_t T, attn_rows;
	struct ep_ll_packed own, gath;           /* gath: moe_tp blocks, moe_tp > 1 only */
	uint16_t *x, *parts, *cx, *combined, *attn; /* cx: moe_tp_reduced_x, or combine_x when moe_tp = 1 */
	int64_t *idx;
	float *w;
};

static void tensors_free(struct lll_tensors *t)
{
	ep_ll_packed_fini(&t->own);
	ep_ll_packed_fini(&t->gath);
	free(t->x), free(t->parts), free(t->cx), free(t->combined), free(t->attn), free(t->idx), free(t->w);
	memset(t, 0, sizeof(*t));
}

static int tensors_alloc(const struct lll_world *w, size_t T, size_t attn_rows, struct lll_tensors *t)
{
	const struct ep_ll_config *c = &w->cfg;
	size_t H = (size_t)c->hidden, K = (size_t)c->num_topk, M = (size_t)w->moe_tp;
	memset(t, 0, sizeof(*t));
	t->T = T, t->attn_rows = attn_rows;
	int rc = ep_ll_packed_init(&t->own, c, 1);
	if (!rc && M > 1)
		rc = ep_ll_packed_init(&t->gath, c, M);
	size_t LRN = t->own.L * t->own.RN;
	t->x = calloc(T * H + 1, 2), t->combined = calloc(T * H + 1, 2), t->cx = calloc(LRN * H + 1, 2);
	t->parts = M > 1 ? calloc(M * LRN * H + 1, 2) : NULL;
	t->attn = calloc(attn_rows * H + 1, 2);
	t->idx = calloc(T * K + 1, 8), t->w = calloc(T * K + 1, 4);
	return rc ? rc : t->x && t->combined && t->cx && (M == 1 || t->parts) && t->attn && t->idx && t->w ? 0 : -ENOMEM;
}

/* ---- the expectations ---- */

struct capture {
	struct ep_ll_packed *p;
	size_t b;
};

static void capture_row(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct capture *c = ctx;
	ep_ll_packed_capture(c->p, c->b, tensor, row, data, bytes);
}

/* ref's expected receive layout into block b of p (the check's "actual"
 * aliases p, so the counts it compares first are the expected ones). */
static int expect_layout(struct ep_ll_ref *ref, struct ep_ll_packed *p, size_t b)
{
	struct capture cap = {p, b};
	struct ep_check_hooks hooks = {.ctx = &cap, .expected = capture_row};
	struct ep_check_report rep;
	void *scratch = calloc(p->L * p->RN * p->S + 1, 4);
	if (!scratch)
		return -ENOMEM;
	struct ep_ll_dispatch_out o = {.packed_recv_x = p->x + b * p->L * p->RN * p->row,
				       .packed_recv_x_scales = p->S ? scratch : NULL,
				       .packed_recv_count = p->count + b * p->L,
				       .packed_recv_src_info = p->src + b * p->L * p->RN,
				       .packed_recv_layout_range = p->range + b * p->L * p->R};
	ep_report_init(&rep, (int)p->R, NULL);
	rep.hooks = &hooks;
	ref->tag = NULL;
	ep_ll_ref_check_dispatch(ref, &o, &rep);
	free(scratch);
	return 0;
}

/* World rank r's stand-in (reference/transform.h) of every valid row of
 * block b of p into out [L][R*N][H] (FP8 rows dequantised first). */
static void stand_in(const struct lll_world *w, int r, const struct ep_ll_packed *p, size_t b, uint16_t *out)
{
	size_t H = p->H;
	uint16_t deq[H + 1];
	float sc[H / 128 + 1];
	for (size_t e = 0; e < p->L; e++)
		for (size_t i = 0; i < ep_ll_packed_rows(p, b, e); i++) {
			size_t at = (b * p->L + e) * p->RN + i;
			const void *src = p->x + at * p->row;
			if (p->fp8) {
				for (size_t k = 0; k < H / 128; k++)
					sc[k] = ep_ll_packed_scale(p, b, e, i, k);
				ep_fp8_dequant_row(src, sc, H, deq);
				src = deq;
			}
			ep_expert_transform(w->payload, r, (int)e, src, (int)H, out + (at - b * p->L * p->RN) * H);
		}
}

/* The attention-TP group's combined slices, member by member. */
static int expect_attn(const struct lll_world *w, struct ep_ll_ref *refs, int r, struct lll_tensors *t)
{
	size_t H = (size_t)w->cfg.hidden, at = 0;
	int M = w->moe_tp, d = r / w->tp;
	for (int j = 0; j < w->tp; j++) {
		int m = d * w->tp + j;
		for (int k = 0; k < ep_ll_ref_tokens(&refs[m % M], m / M); k++, at++)
			if (at < t->attn_rows && ep_ll_ref_combined_row(&refs[m % M], m / M, k, t->attn + at * H))
				return -ENOMEM;
	}
	return 0;
}

/* Rows of world rank r's attention-TP group output. */
static size_t attn_rows(const struct lll_world *w, struct ep_ll_ref *refs, int r)
{
	size_t n = 0;
	for (int j = 0; w->tp > 1 && j < w->tp; j++) {
		int m = r / w->tp * w->tp + j;
		n += (size_t)ep_ll_ref_tokens(&refs[m % w->moe_tp], m / w->moe_tp);
	}
	return n;
}

/* Every phase's expected tensors of world rank r, with refs [moe_tp] (each
 * group's reference for EP rank q, built by the caller). 0 or -errno. */
static int expect_rank(const struct lll_world *w, struct ep_ll_ref *refs, int r, struct lll_tensors *t)
{
	int M = w->moe_tp, g = r % M, q = r / M, rc;
	struct ep_ll_ref *mine = &refs[g];
	size_t T = (size_t)ep_ll_ref_tokens(mine, q), H = (size_t)w->cfg.hidden, K = (size_t)w->cfg.num_topk;
	if ((rc = tensors_alloc(w, T, attn_rows(w, refs, r), t)))
		return rc;
	for (size_t k = 0; k < T; k++)
		ep_gen_bf16_row(w->seed, mine->routing, EP_STREAM_X, q, (int64_t)k, (int)H, t->x + k * H);
	memcpy(t->idx, ep_ll_ref_topk_idx(mine, q), T * K * 8);
	memcpy(t->w, ep_ll_ref_topk_weights(mine, q), T * K * 4);
	if ((rc = expect_layout(mine, &t->own, 0)))
		return rc;
	size_t LRN = t->own.L * t->own.RN;
	for (int i = 0; M > 1 && i < M; i++) {
		if ((rc = expect_layout(&refs[(g + i) % M], &t->gath, (size_t)i)))
			return rc;
		stand_in(w, r, &t->gath, (size_t)i, t->parts + (size_t)i * LRN * H);
	}
	if (M == 1)
		stand_in(w, r, &t->own, 0, t->cx);
	for (size_t e = 0; M > 1 && e < t->own.L; e++)
		for (size_t i = 0; i < ep_ll_packed_rows(&t->own, 0, e); i++)
			ep_ll_ref_expert_row(mine, (int)e, (int)i, t->cx + (e * t->own.RN + i) * H);
	for (size_t k = 0; k < T; k++)
		if (ep_ll_ref_combined_row(mine, q, (int)k, t->combined + k * H))
			return -ENOMEM;
	return expect_attn(w, refs, r, t);
}

/* Every group's reference for EP rank q. 0 or -errno (refs then finished). */
static int refs_init(const struct lll_world *w, int q, struct ep_ll_ref *refs)
{
	for (int i = 0; i < w->moe_tp; i++) {
		int rc = ep_ll_ref_init(&refs[i], &w->cfg, w->num_tokens, &w->routings[i], w->seed, w->uneven, q);
		if (!rc && refs[i].overflow)
			rc = -ERANGE, i++; /* a (source, expert) list longer than num_max_dispatch_tokens_per_rank */
		if (rc) {
			while (i-- > 0)
				ep_ll_ref_fini(&refs[i]);
			return rc;
		}
		refs[i].expert = &w->experts[i].fn;
	}
	return 0;
}

static void refs_fini(const struct lll_world *w, struct ep_ll_ref *refs)
{
	for (int i = 0; i < w->moe_tp; i++)
		ep_ll_ref_fini(&refs[i]);
}

/* ---- the tensor table ---- */

enum { SHAPE_ROWS, SHAPE_PACKED, SHAPE_BLOCKS, SHAPE_FLAT }; /* how a tensor's defined rows are found */
#define LLL_MAX_ITEMS 20 /* a rank's tensors (items_of) */

struct lll_item {
	const char *name;
	enum ep_layer_phase phase;
	enum ep_npy_dtype d;
	enum ep_elem kind;
	int nd, how;             /* how: SHAPE_* */
	size_t shape[4];
	void *data;
	size_t row_elems;        /* elements per compared row */
};

/* The packed layout's items of p under prefix, in phase ph (blocked: a leading [n]). */
static int packed_items(struct ep_ll_packed *p, const char *const names[5], enum ep_layer_phase ph, int blocked,
			struct lll_item *it)
{
	size_t n = blocked ? p->n : 1;
	int o = blocked, k = 0, how = blocked ? SHAPE_BLOCKS : SHAPE_PACKED;
	struct lll_item v[5] = {
		{names[0], ph, p->fp8 ? EP_NPY_U1 : EP_NPY_U2, p->fp8 ? EP_ELEM_FP8 : EP_ELEM_BF16, 3 + o, how,
		 {0}, p->x, p->H},
		{names[1], ph, p->ue8m0 ? EP_NPY_I4 : EP_NPY_F4, p->ue8m0 ? EP_ELEM_I32 : EP_ELEM_F32, 3 + o, how,
		 {0}, p->fp8 ? p->scales : NULL, p->S},
		{names[2], ph, EP_NPY_I4, EP_ELEM_I32, 1 + o, SHAPE_FLAT, {0}, p->count, p->L},
		{names[3], ph, EP_NPY_I4, EP_ELEM_I32, 2 + o, how, {0}, p->src, 1},
		{names[4], ph, EP_NPY_I8, EP_ELEM_I64, 2 + o, SHAPE_FLAT, {0}, p->range, p->L * p->R},
	};
	size_t dims[5][3] = {{p->L, p->RN, p->H}, {p->L, p->RN, p->S}, {p->L}, {p->L, p->RN}, {p->L, p->R}};
	for (int i = 0; i < 5; i++) {
		if (!v[i].data)
			continue;
		it[k] = v[i];
		it[k].shape[0] = n;
		memcpy(it[k].shape + o, dims[i], sizeof(size_t) * (size_t)(v[i].nd - o));
		it[k].row_elems = i == 2 || i == 4 ? v[i].row_elems * n : v[i].row_elems;
		k++;
	}
	return k;
}

static const char *const own_names[5] = {"packed_recv_x", "packed_recv_x_scales", "packed_recv_count",
					 "packed_recv_src_info", "packed_recv_layout_range"};
static const char *const gath_names[5] = {"moe_tp_gathered_x", "moe_tp_gathered_x_scales", "moe_tp_gathered_count",
					  "moe_tp_gathered_src_info", "moe_tp_gathered_layout_range"};

/* Rank r's tensors in phase order; their count (at most 17: fp8, moe_tp > 1, tp > 1). */
static int items_of(const struct lll_world *w, struct lll_tensors *t, struct lll_item *it)
{
	size_t H = t->own.H, K = (size_t)w->cfg.num_topk, L = t->own.L, RN = t->own.RN, M = (size_t)w->moe_tp;
	int n = 0;
	it[n++] = (struct lll_item){"x", EP_LPH_INPUT, EP_NPY_U2, EP_ELEM_BF16, 2, SHAPE_ROWS, {t->T, H}, t->x, H};
	it[n++] = (struct lll_item){"topk_idx", EP_LPH_INPUT, EP_NPY_I8, EP_ELEM_I64, 2, SHAPE_ROWS, {t->T, K}, t->idx, K};
	it[n++] = (struct lll_item){"topk_weights", EP_LPH_INPUT, EP_NPY_F4, EP_ELEM_F32, 2, SHAPE_ROWS, {t->T, K}, t->w, K};
	n += packed_items(&t->own, own_names, EP_LPH_EP_DISPATCH, 0, it + n);
	if (M > 1) {
		n += packed_items(&t->gath, gath_names, EP_LPH_MOE_TP_GATHER, 1, it + n);
		it[n++] = (struct lll_item){"moe_tp_partial", EP_LPH_EXPERTS, EP_NPY_U2, EP_ELEM_BF16, 4, SHAPE_BLOCKS,
					    {M, L, RN, H}, t->parts, H};
	}
	it[n++] = (struct lll_item){M > 1 ? "moe_tp_reduced_x" : "combine_x", M > 1 ? EP_LPH_MOE_TP_REDUCE : EP_LPH_EXPERTS,
				    EP_NPY_U2, EP_ELEM_BF16, 3, SHAPE_PACKED, {L, RN, H}, t->cx, H};
	it[n++] = (struct lll_item){"combined_x", EP_LPH_EP_COMBINE, EP_NPY_U2, EP_ELEM_BF16, 2, SHAPE_ROWS, {t->T, H},
				    t->combined, H};
	if (w->tp > 1)
		it[n++] = (struct lll_item){"attn_tp_gathered_x", EP_LPH_ATTN_TP_GATHER, EP_NPY_U2, EP_ELEM_BF16, 2,
					    SHAPE_ROWS, {t->attn_rows, H}, t->attn, H};
	return n;
}

/* ---- golden ---- */

/* The run's world: its geometry's routings and experts (cli/moe_layer_geometry.c). */
static void run_world(const struct ep_run *run, const struct layer_state *geo, struct lll_world *w)
{
	struct ep_run r = *run;
	r.shape = geo->eshape;
	*w = (struct lll_world){.num_tokens = geo->eshape.num_tokens, .routings = geo->routings, .experts = geo->experts,
				.seed = run->cfg->seed, .uneven = run->routing.uneven_tokens,
				.payload = run->routing.payload, .tp = geo->tp, .moe_tp = geo->moe_tp};
	ep_ll_run_config(&r, geo->Pg, &w->cfg);
}

static int golden_rank(struct ep_golden *gd, const struct lll_world *w, int r, const char *dir)
{
	struct ep_ll_ref refs[w->moe_tp];
	struct lll_tensors t;
	struct lll_item it[LLL_MAX_ITEMS];
	int rc = refs_init(w, r / w->moe_tp, refs);
	if (rc)
		return rc;
	if (!(rc = expect_rank(w, refs, r, &t))) {
		int n = items_of(w, &t, it);
		for (int i = 0; i < n && !rc; i++)
			if (!(rc = ep_rank_npy_write(dir, r, it[i].name, it[i].d, it[i].shape, it[i].nd, it[i].data)))
				rc = ep_oracle_add(&gd->m, dir, r, it[i].name, ep_oracle_role_of(it[i].name, 0));
	}
	tensors_free(&t);
	refs_fini(w, refs);
	return rc;
}

int ep_golden_ll_layer(struct ep_golden *gd, const char *dir)
{
	struct layer_state geo = {0};
	struct lll_world w;
	int rc = layer_geometry(&geo, &gd->run, 0);
	if (!rc) {
		run_world(&gd->run, &geo, &w);
		gd->m.shape.num_tokens = geo.eshape.num_tokens;
		gd->m.ll_max_tokens = w.cfg.max_tokens, gd->m.ll_round_scale = w.cfg.round_scale;
		gd->m.ll_ue8m0 = w.cfg.use_ue8m0;
	}
	for (int r = 0; !rc && r < gd->run.shape.num_ranks; r++)
		rc = golden_rank(gd, &w, r, dir);
	layer_geometry_fini(&geo);
	return rc;
}

/* ---- verify ---- */

struct vll {
	const struct ep_oracle_manifest *m;
	const char *dir;
	int order_any;
	struct ep_layer l;              /* slices, the groups' views, routings over the loaded slices, experts */
	struct lll_world w;
	struct ep_loaded_rank *loaded;  /* [W] */
	struct ep_npy *in;              /* [W][3]: x, topk_idx, topk_weights */
	char not_checked[1024], changed[EP_TEXT_MAX];
	int changed_inputs;
	struct ep_point pt;
	struct ep_phase_tally tally;
};

/* Every world rank's slice from the directory (ids held to [-1, E)). 0 or an exit status. */
static int load_inputs(struct vll *v)
{
	static const char *const names[3] = {"x", "topk_idx", "topk_weights"};
	const struct ep_shape *s = &v->l.eshape;
	int W = v->l.W, rc = 0;
	v->loaded = calloc((size_t)W, sizeof(*v->loaded));
	v->in = calloc((size_t)W * 3, sizeof(*v->in));
	if (!v->loaded || !v->in)
		return EP_EXIT_ENV;
	for (int r = 0; r < W && !rc; r++) {
		size_t S = (size_t)ep_slice_len(&v->l.sl, r), xs[2] = {S, (size_t)s->hidden}, ks[2] = {S, (size_t)s->num_topk};
		struct ep_npy *in = &v->in[r * 3];
		if ((rc = ep_oracle_load(v->dir, r, "x", EP_NPY_U2, 2, xs, &in[0], 1)) ||
		    (rc = ep_oracle_load_index(v->dir, r, "topk_idx", 2, ks, &in[1], 1)) ||
		    (rc = ep_oracle_load(v->dir, r, "topk_weights", EP_NPY_F4, 2, ks, &in[2], 1)))
			return rc;
		const int64_t *idx = in[1].data;
		for (size_t i = 0; i < in[1].count; i++)
			if (idx[i] < -1 || idx[i] >= s->num_experts)
				return fprintf(stderr, "epbench verify: rank%d/topk_idx.npy has %lld at [%zu][%zu], outside [-1, %d)\n",
					       r, (long long)idx[i], i / ks[1], i % ks[1], s->num_experts), EP_EXIT_USAGE;
		for (int i = 0; i < 3; i++)
			if (ep_oracle_hash_differs(v->m, v->dir, r, names[i]) && v->changed_inputs++ < 4) {
				size_t n = strlen(v->changed);
				snprintf(v->changed + n, sizeof(v->changed) - n, "%srank%d/%s.npy", n ? ", " : "", r, names[i]);
			}
		v->loaded[r] = (struct ep_loaded_rank){.num_tokens = (int)S, .x = in[0].data, .topk_idx = in[1].data,
						       .topk_weights = in[2].data};
	}
	return rc;
}


/* Expert e of block b in canonical order (source rank by the layout
 * ranges, then source token), the rows of side ([L][R*N][H] beside the
 * block, or NULL) moving with them; the ranges rewritten to match. */
static int canon_expert(struct ep_ll_packed *p, size_t b, size_t e, uint16_t *side)
{
	size_t n = ep_ll_packed_rows(p, b, e), at = (b * p->L + e) * p->RN, H = p->H, S = p->S;
	int64_t *range = p->range + (b * p->L + e) * p->R;
	struct ep_ll_row_key *k = malloc(sizeof(*k) * (n + 1));
	uint8_t *x = malloc(n * p->row + 1);
	uint32_t *sc = malloc(n * S * 4 + 4);
	int32_t *src = malloc(n * 4 + 4);
	uint16_t *sd = malloc(n * H * 2 + 2);
	int rc = k && x && sc && src && sd ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		k[i] = (struct ep_ll_row_key){(int32_t)p->R, p->src[at + i], (int32_t)i};
		for (size_t r = 0; r < p->R; r++) {
			uint64_t u = (uint64_t)range[r], begin = u >> 32, cnt = u & 0xffffffffu;
			if (i >= begin && i < begin + cnt)
				k[i].src = (int32_t)r;
		}
	}
	if (!rc)
		qsort(k, n, sizeof(*k), ep_ll_row_key_cmp);
	for (size_t i = 0; !rc && i < n; i++) {
		size_t from = at + (size_t)k[i].p;
		memcpy(x + i * p->row, p->x + from * p->row, p->row);
		memcpy(sc + i * S, p->scales ? p->scales + from * S : sc, S * 4);
		src[i] = k[i].token;
		if (side)
			memcpy(sd + i * H, side + (e * p->RN + (size_t)k[i].p) * H, H * 2);
	}
	if (!rc) {
		memcpy(p->x + at * p->row, x, n * p->row);
		if (p->scales)
			memcpy(p->scales + at * S, sc, n * S * 4);
		memcpy(p->src + at, src, n * 4);
		if (side)
			memcpy(side + e * p->RN * H, sd, n * H * 2);
		uint32_t begin = 0;
		for (size_t r = 0; r < p->R; r++) {
			uint32_t cnt = (uint32_t)((uint64_t)range[r] & 0xffffffffu);
			range[r] = (int64_t)(((uint64_t)begin << 32) | cnt);
			begin += cnt;
		}
	}
	free(k), free(x), free(sc), free(src), free(sd);
	return rc;
}

/* --ll-order any: the library's receive layout and gathered blocks in canonical order. */
static int canon_rank(const struct lll_world *w, struct lll_tensors *a)
{
	size_t LRNH = a->own.L * a->own.RN * a->own.H;
	int rc = 0;
	for (size_t e = 0; !rc && e < a->own.L; e++)
		rc = canon_expert(&a->own, 0, e, a->cx);
	for (size_t b = 0; w->moe_tp > 1 && b < a->gath.n; b++)
		for (size_t e = 0; !rc && e < a->gath.L; e++)
			rc = canon_expert(&a->gath, b, e, a->parts + b * LRNH);
	return rc;
}

/* The library's tensor it[i] into act (its data); 1 when absent, 0, or an exit status. */
static int load_item(struct vll *v, int r, const struct lll_item *want, struct lll_item *act)
{
	struct ep_npy f;
	int rc = want->d == EP_NPY_I8 ? ep_oracle_load_index(v->dir, r, want->name, want->nd, want->shape, &f, 0)
				      : ep_oracle_load(v->dir, r, want->name, want->d, want->nd, want->shape, &f, 0);
	if (rc == 1 && !strstr(v->not_checked, want->name)) {
		size_t k = strlen(v->not_checked);
		snprintf(v->not_checked + k, sizeof(v->not_checked) - k, "%s%s", k ? ", " : "", want->name);
	}
	if (rc)
		return rc;
	memcpy(act->data, f.data, f.count * ep_npy_itemsize(f.dtype));
	ep_npy_free(&f);
	return 0;
}

/* Compares one tensor's defined rows (counts: the expected ones). */
static void compare_item(const struct lll_tensors *t, const struct lll_item *e, const struct lll_item *a,
			 struct ep_check_report *rep)
{
	size_t es = ep_npy_itemsize(e->d), n = e->row_elems, RN = t->own.RN, L = t->own.L;
	char name[64];
	if (e->how == SHAPE_FLAT || e->how == SHAPE_ROWS) {
		size_t rows = e->how == SHAPE_FLAT ? 1 : e->shape[0];
		for (size_t i = 0; i < rows; i++)
			ep_compare_row(rep, e->name, e->kind, (const char *)e->data + i * n * es,
				       (const char *)a->data + i * n * es, n, (int64_t)i, -1, -1);
		return;
	}
	const struct ep_ll_packed *p = e->how == SHAPE_BLOCKS ? &t->gath : &t->own;
	for (size_t b = 0; b < p->n; b++)
		for (size_t x = 0; x < L; x++) {
			if (e->how == SHAPE_BLOCKS)
				snprintf(name, sizeof(name), "%.24s[%d][%d]", e->name, (int)b, (int)x);
			else
				snprintf(name, sizeof(name), "%.26s[%d]", e->name, (int)x);
			for (size_t i = 0; i < ep_ll_packed_rows(p, b, x); i++) {
				size_t at = ((b * L + x) * RN + i) * n * es;
				ep_compare_row(rep, name, e->kind, (const char *)e->data + at, (const char *)a->data + at, n,
					       (int64_t)i, -1, -1);
			}
		}
}

/* Rank r: every output the directory holds, phase by phase. 0 or an exit status. */
static int verify_rank(struct vll *v, int r)
{
	struct ep_ll_ref refs[v->w.moe_tp];
	struct lll_tensors t, a;
	struct lll_item it[LLL_MAX_ITEMS], ia[LLL_MAX_ITEMS];
	struct ep_check_report rep[EP_LPH_N];
	int absent[LLL_MAX_ITEMS] = {0}, rc = refs_init(&v->w, r / v->w.moe_tp, refs);
	if (rc)
		return rc == -ERANGE ? (fprintf(stderr, "epbench verify: rank %d: a (source, expert) list is longer than "
						"num_max_dispatch_tokens_per_rank\n", r), EP_EXIT_USAGE) : EP_EXIT_ENV;
	memset(&a, 0, sizeof(a));
	if ((rc = expect_rank(&v->w, refs, r, &t)) || (rc = tensors_alloc(&v->w, t.T, t.attn_rows, &a)))
		rc = EP_EXIT_ENV;
	int n = rc ? 0 : items_of(&v->w, &t, it);
	if (!rc)
		items_of(&v->w, &a, ia);
	for (int i = 0; i < n && !rc; i++)
		if (it[i].phase != EP_LPH_INPUT && (rc = load_item(v, r, &it[i], &ia[i])) == 1)
			absent[i] = 1, rc = 0;
	if (!rc && v->order_any && canon_rank(&v->w, &a))
		rc = EP_EXIT_ENV;
	for (int k = 0; k < EP_LPH_N; k++)
		ep_report_init(&rep[k], v->l.W, NULL);
	for (int i = 0; i < n && !rc; i++)
		if (it[i].phase != EP_LPH_INPUT && !absent[i])
			compare_item(&t, &it[i], &ia[i], &rep[it[i].phase]);
	if (!rc)
		ep_phase_tally_add(&v->tally, r, rep, &v->pt.res);
	tensors_free(&t);
	tensors_free(&a);
	refs_fini(&v->w, refs);
	return rc;
}

static int report(struct vll *v)
{
	int rc = ep_phase_tally_report(&v->tally, &v->pt.res, v->dir);
	if (rc)
		return rc;
	ep_phase_tally_inputs(v->changed_inputs, v->changed, v->not_checked);
	v->pt.res.exit_code = v->pt.res.wrong_elems ? EP_EXIT_WRONG : EP_EXIT_OK;
	ep_table_footer(stdout, &v->pt, 1, 1, NULL);
	return v->pt.res.exit_code;
}

/* The manifest's world: one MoE-EP group's collective (its ranks per node
 * as the run's), the groups' routings over the loaded slices. */
static void manifest_world(const struct ep_oracle_manifest *m, struct ep_layer *l, struct lll_world *w)
{
	const struct ep_shape *s = &l->eshape;
	int M = m->layer.moe_tp, P = m->ranks_per_node && m->ranks_per_node < l->W ? m->ranks_per_node : l->W;
	*w = (struct lll_world){.num_tokens = s->num_tokens, .routings = l->routings, .experts = l->experts,
				.seed = m->seed, .payload = m->payload, .tp = m->layer.tp, .moe_tp = M};
	w->cfg = (struct ep_ll_config){.num_ranks = m->layer.moe_ep, .hidden = s->hidden, .num_topk = s->num_topk,
				       .num_experts = s->num_experts, .max_tokens = m->ll_max_tokens > 0 ? m->ll_max_tokens : 1,
				       .dtype = s->dtype, .round_scale = m->ll_round_scale, .use_ue8m0 = m->ll_ue8m0,
				       .ranks_per_node = P / M};
}

int ep_verify_ll_layer(const struct ep_oracle_manifest *m, const char *dir, int order_any)
{
	struct vll v = {.m = m, .dir = dir, .order_any = order_any};
	int W = m->shape.num_ranks, code = 0;
	ep_phase_tally_init(&v.tally);
	if (ep_layer_init(&v.l, m))
		code = EP_EXIT_ENV;
	if (!code && !(code = load_inputs(&v))) {
		const struct ep_oracle_layer *c = &m->layer;
		printf("# epbench verify low-latency %s: MoE layer dp=%d tp=%d moe_tp=%d moe_ep=%d, %d ranks, hidden %d, top-%d of %d "
		       "experts, dtype %s, payload %s, order %s\n", dir, c->dp, c->tp, c->moe_tp, c->moe_ep, W, m->shape.hidden,
		       m->shape.num_topk, m->shape.num_experts, ep_dtype_name(m->shape.dtype), ep_payload_name(m->payload),
		       order_any ? "any" : "exact");
		printf("# inputs read from the directory; every phase's expected outputs computed by reference/ (golden: %s)\n",
		       m->command_line);
		ep_layer_bind(&v.l, v.loaded);
		manifest_world(m, &v.l, &v.w);
		v.pt = (struct ep_point){.ranks = W, .tokens = m->shape.num_tokens, .hidden = m->shape.hidden};
		v.pt.res.checked = 1;
		for (int r = 0; r < W && !code; r++)
			code = verify_rank(&v, r);
		if (!code)
			code = report(&v);
	}
	for (int i = 0; v.in && i < W * 3; i++)
		ep_npy_free(&v.in[i]);
	free(v.in), free(v.loaded);
	ep_layer_fini(&v.l);
	return code;
}
