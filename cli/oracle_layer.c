/* oracle_layer.c - every phase of a MoE layer's expectations, from the loaded inputs (see oracle_layer.h). */
#include "cli/oracle_layer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reference/transform.h"

const char *const ep_layer_phase_names[EP_LPH_N] = {
	"input", "ep_dispatch", "moe_tp_gather", "experts", "moe_tp_reduce", "ep_combine",
	"world_gather", "world_partial", "world_reduce", "attn_tp_gather"};

/* Every name a layer directory holds, with its phase. */
static const struct { const char *name; enum ep_layer_phase phase; } layer_names[] = {
	{"x", EP_LPH_INPUT}, {"x_scales", EP_LPH_INPUT}, {"topk_idx", EP_LPH_INPUT}, {"topk_weights", EP_LPH_INPUT},
	{"bias_0", EP_LPH_INPUT}, {"bias_1", EP_LPH_INPUT},
	{"topk_idx_logical", EP_LPH_INPUT}, {"phy2log", EP_LPH_INPUT}, {"logcnt", EP_LPH_INPUT},
	{"log2phy", EP_LPH_INPUT},
	{"num_tokens_per_rank", EP_LPH_EP_DISPATCH}, {"num_tokens_per_rdma_rank", EP_LPH_EP_DISPATCH},
	{"num_tokens_per_expert", EP_LPH_EP_DISPATCH},
	{"is_token_in_rank", EP_LPH_EP_DISPATCH}, {"rank_prefix_matrix", EP_LPH_EP_DISPATCH},
	{"num_recv_tokens_per_expert", EP_LPH_EP_DISPATCH}, {"recv_x", EP_LPH_EP_DISPATCH},
	{"recv_x_scales", EP_LPH_EP_DISPATCH}, {"moe_tp_gathered_x_scales", EP_LPH_MOE_TP_GATHER},
	{"recv_src_idx", EP_LPH_EP_DISPATCH}, {"recv_topk_idx", EP_LPH_EP_DISPATCH},
	{"recv_topk_weights", EP_LPH_EP_DISPATCH},
	{"moe_tp_gathered_x", EP_LPH_MOE_TP_GATHER}, {"moe_tp_gathered_src_idx", EP_LPH_MOE_TP_GATHER},
	{"moe_tp_gathered_topk_idx", EP_LPH_MOE_TP_GATHER}, {"moe_tp_gathered_topk_weights", EP_LPH_MOE_TP_GATHER},
	{"moe_tp_partial", EP_LPH_EXPERTS}, {"combine_x", EP_LPH_EXPERTS}, {"combine_topk_weights", EP_LPH_EXPERTS},
	{"moe_tp_reduced_x", EP_LPH_MOE_TP_REDUCE},
	{"combined_x", EP_LPH_EP_COMBINE}, {"combined_topk_weights", EP_LPH_EP_COMBINE},
	{"world_gathered_x", EP_LPH_WORLD_GATHER}, {"world_gathered_topk_idx", EP_LPH_WORLD_GATHER},
	{"world_gathered_topk_weights", EP_LPH_WORLD_GATHER}, {"world_partial", EP_LPH_WORLD_PARTIAL},
	{"world_reduced_x", EP_LPH_WORLD_REDUCE}, {"attn_tp_gathered_x", EP_LPH_ATTN_TP_GATHER},
	/* a low-latency layer's (cli/oracle_ll_layer.c) */
	{"packed_recv_x", EP_LPH_EP_DISPATCH}, {"packed_recv_x_scales", EP_LPH_EP_DISPATCH},
	{"packed_recv_count", EP_LPH_EP_DISPATCH}, {"packed_recv_src_info", EP_LPH_EP_DISPATCH},
	{"packed_recv_layout_range", EP_LPH_EP_DISPATCH}, {"moe_tp_gathered_count", EP_LPH_MOE_TP_GATHER},
	{"moe_tp_gathered_src_info", EP_LPH_MOE_TP_GATHER}, {"moe_tp_gathered_layout_range", EP_LPH_MOE_TP_GATHER},
};

static const struct ep_row_names gathered_names = {"moe_tp_gathered_x", "moe_tp_gathered_x_scales",
						   "moe_tp_gathered_src_idx", "moe_tp_gathered_topk_idx",
						   "moe_tp_gathered_topk_weights"};

const char *ep_layer_phase_of(const char *name, int ascend, int moe_tp)
{
	static const struct { const char *name; enum ep_layer_phase phase; } asc_tp[] = { /* oracle_ascend_tp.h */
		{"assist_info_for_combine", EP_LPH_EP_DISPATCH}, {"expand_x", EP_LPH_MOE_TP_GATHER},
		{"dynamic_scales", EP_LPH_MOE_TP_GATHER}, {"ep_recv_counts", EP_LPH_MOE_TP_GATHER},
		{"tp_recv_counts", EP_LPH_MOE_TP_GATHER}, {"expert_token_nums", EP_LPH_MOE_TP_GATHER},
		{"expert_outputs", EP_LPH_EXPERTS}, {"moe_tp_reduced_x", EP_LPH_MOE_TP_REDUCE}};
	for (size_t i = 0; ascend && moe_tp > 1 && i < sizeof(asc_tp) / sizeof(asc_tp[0]); i++)
		if (!strcmp(asc_tp[i].name, name))
			return ep_layer_phase_names[asc_tp[i].phase];
	static const struct { const char *name; enum ep_layer_phase phase; } asc[] = {
		{"expand_x", EP_LPH_EP_DISPATCH}, {"dynamic_scales", EP_LPH_EP_DISPATCH},
		{"assist_info_for_combine", EP_LPH_EP_DISPATCH}, {"expert_token_nums", EP_LPH_EP_DISPATCH},
		{"ep_recv_counts", EP_LPH_EP_DISPATCH}, {"expert_outputs", EP_LPH_EXPERTS}, {"x", EP_LPH_EP_COMBINE},
		{"attn_tp_gathered_x", EP_LPH_ATTN_TP_GATHER}};
	for (size_t i = 0; ascend && i < sizeof(asc) / sizeof(asc[0]); i++)
		if (!strcmp(asc[i].name, name))
			return ep_layer_phase_names[asc[i].phase];
	if (ascend)
		return ep_layer_phase_names[EP_LPH_INPUT];
	for (size_t i = 0; i < sizeof(layer_names) / sizeof(layer_names[0]); i++)
		if (!strcmp(layer_names[i].name, name))
			return ep_layer_phase_names[layer_names[i].phase];
	return ep_layer_phase_names[EP_LPH_INPUT];
}

static void ref_fini(struct ep_layer *l, int g)
{
	if (l->Pg)
		ep_internode_ref_fini(&l->irefs[g]);
	else
		ep_reference_fini(&l->irefs[g].base);
}

const void *ep_layer_input(const struct ep_loaded_rank *in, const char *name)
{
	const void *slot[6] = {in->x, in->x_scales, in->topk_idx, in->topk_weights, in->bias[0], in->bias[1]};
	static const char *const names[6] = {"x", "x_scales", "topk_idx", "topk_weights", "bias_0", "bias_1"};
	for (int i = 0; i < 6; i++)
		if (!strcmp(names[i], name))
			return slot[i];
	return NULL;
}

static void drop_refs(struct ep_layer *l)
{
	for (int g = 0; l->irefs && l->q >= 0 && g < l->cfg.moe_tp; g++)
		ref_fini(l, g);
	l->q = -1;
}

void ep_layer_fini(struct ep_layer *l)
{
	drop_refs(l);
	for (int g = 0; l->views && g < l->cfg.moe_tp; g++)
		ep_group_arrays_fini(&l->views[g]);
	free(l->views), free(l->routings), free(l->experts), free(l->gl), free(l->irefs);
	ep_slices_fini(&l->sl);
	memset(l, 0, sizeof(*l));
	l->q = -1;
}

int ep_layer_init(struct ep_layer *l, const struct ep_oracle_manifest *m)
{
	memset(l, 0, sizeof(*l));
	l->q = -1;
	l->cfg = m->layer, l->W = m->shape.num_ranks, l->payload = m->payload, l->seed = m->seed;
	const struct ep_oracle_layer *c = &l->cfg;
	int rc = ep_slices_init(&l->sl, l->W, c->tp, c->moe_tp, c->moe_ep, (enum ep_slice_pad)c->sp_pad, c->tokens_per_dp,
				c->uneven, m->seed);
	if (rc)
		return rc;
	if (m->ranks_per_node && m->ranks_per_node < l->W && !c->allgather)
		l->Pg = m->ranks_per_node / c->moe_tp;
	if (m->ranks_per_node && l->Pg < 1 && !c->allgather && !m->ascend.on) /* MoE-TP groups of whole nodes: one rank per node (cli/moe_layer_geometry.c) */
		l->Pg = 1;
	l->eshape = m->shape;
	l->eshape.num_ranks = c->moe_ep, l->eshape.num_tokens = l->sl.max_slice;
	size_t n = (size_t)c->moe_tp;
	l->views = calloc(n, sizeof(*l->views));
	l->routings = calloc(n, sizeof(*l->routings));
	l->experts = calloc(n, sizeof(*l->experts));
	l->irefs = calloc(n, sizeof(*l->irefs));
	l->gl = calloc(n * (size_t)c->moe_ep, sizeof(*l->gl));
	if (!l->views || !l->routings || !l->experts || !l->irefs || !l->gl)
		return -ENOMEM;
	for (int g = 0; g < c->moe_tp; g++) {
		if ((rc = ep_slices_group(&l->sl, g, &l->views[g])))
			return rc;
		ep_moe_tp_expert_init(&l->experts[g], l->payload, c->moe_tp, g);
	}
	return 0;
}

void ep_layer_bind(struct ep_layer *l, const struct ep_loaded_rank *loaded)
{
	int n = l->cfg.moe_tp, R = l->cfg.moe_ep;
	drop_refs(l);
	l->loaded = loaded;
	for (int g = 0; g < n; g++) {
		for (int k = 0; k < R; k++)
			l->gl[g * R + k] = loaded[g + k * n];
		l->routings[g] = (struct ep_routing){.loaded = &l->gl[g * R], .payload = l->payload,
						     .group = &l->views[g].view};
	}
}

/* Every group's reference for EP rank q (a2a mode), kept until q changes. */
static int refs_for(struct ep_layer *l, int q)
{
	if (l->q == q)
		return 0;
	drop_refs(l);
	for (int g = 0; g < l->cfg.moe_tp; g++) {
		int rc = l->Pg ? ep_internode_ref_init(&l->irefs[g], &l->eshape, &l->routings[g], l->seed, q, l->Pg)
			       : ep_reference_init(&l->irefs[g].base, &l->eshape, &l->routings[g], l->seed, q);
		if (rc) {
			for (int i = 0; i < g; i++)
				ref_fini(l, i);
			return rc;
		}
		l->irefs[g].base.expert = &l->experts[g].fn;
	}
	l->q = q;
	return 0;
}

static int add(struct ep_layer_tensor *t, int n, const char *name, enum ep_npy_dtype d, size_t d0, size_t d1)
{
	enum ep_layer_phase phase = EP_LPH_INPUT;
	for (size_t i = 0; i < sizeof(layer_names) / sizeof(layer_names[0]); i++)
		if (!strcmp(layer_names[i].name, name))
			phase = layer_names[i].phase;
	t[n] = (struct ep_layer_tensor){name, phase, ep_oracle_role_of(name, 0), d, d0, d1, NULL};
	return n + 1;
}

/* Rows of rank r's gathered tensors in a2a mode (every member's receive). */
static size_t gathered_rows(const struct ep_layer *l)
{
	size_t n = 0;
	for (int p = 0; p < l->cfg.moe_tp; p++)
		n += l->irefs[p].base.num_recv;
	return n;
}

static size_t attn_rows(const struct ep_layer *l, int r)
{
	size_t n = 0;
	for (int i = 0, d = r / l->cfg.tp; i < l->cfg.tp; i++)
		n += (size_t)ep_slice_len(&l->sl, d * l->cfg.tp + i);
	return n;
}

static int a2a_tensors(struct ep_layer *l, int r, struct ep_layer_tensor *t, int n)
{
	const struct ep_shape *s = &l->eshape;
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk, E = (size_t)s->num_experts, R = (size_t)s->num_ranks;
	size_t S = (size_t)ep_slice_len(&l->sl, r);
	int rc = refs_for(l, r / l->cfg.moe_tp), mtp = l->cfg.moe_tp > 1;
	if (rc)
		return rc;
	size_t M = l->irefs[r % l->cfg.moe_tp].base.num_recv, N = gathered_rows(l);
	size_t Sd = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	enum ep_npy_dtype rx = s->dtype == EP_DTYPE_BF16 ? EP_NPY_U2 : s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_I1;
	n = add(t, n, "num_tokens_per_rank", EP_NPY_I4, R, 0);
	if (l->Pg)
		n = add(t, n, "num_tokens_per_rdma_rank", EP_NPY_I4, R / (size_t)l->Pg, 0);
	n = add(t, n, "num_tokens_per_expert", EP_NPY_I4, E, 0);
	n = add(t, n, "is_token_in_rank", EP_NPY_BOOL, S, R);
	n = add(t, n, "rank_prefix_matrix", EP_NPY_I4, R, R);
	n = add(t, n, "num_recv_tokens_per_expert", EP_NPY_I4, E / R, 0);
	n = add(t, n, "recv_x", rx, M, H);
	if (Sd)
		n = add(t, n, "recv_x_scales", EP_NPY_F4, M, Sd);
	n = add(t, n, "recv_src_idx", EP_NPY_I4, M, 0);
	n = add(t, n, "recv_topk_idx", EP_NPY_I8, M, K);
	n = add(t, n, "recv_topk_weights", EP_NPY_F4, M, K);
	if (mtp) {
		n = add(t, n, "moe_tp_gathered_x", rx, N, H);
		if (Sd)
			n = add(t, n, "moe_tp_gathered_x_scales", EP_NPY_F4, N, Sd);
		n = add(t, n, "moe_tp_gathered_src_idx", EP_NPY_I4, N, 0);
		n = add(t, n, "moe_tp_gathered_topk_idx", EP_NPY_I8, N, K);
		n = add(t, n, "moe_tp_gathered_topk_weights", EP_NPY_F4, N, K);
	}
	n = add(t, n, mtp ? "moe_tp_partial" : "combine_x", EP_NPY_U2, N, H);
	n = add(t, n, "combine_topk_weights", EP_NPY_F4, M, K);
	if (mtp)
		n = add(t, n, "moe_tp_reduced_x", EP_NPY_U2, M, H);
	n = add(t, n, "combined_x", EP_NPY_U2, S, H);
	return add(t, n, "combined_topk_weights", EP_NPY_F4, S, K);
}

int ep_layer_tensors(struct ep_layer *l, int r, struct ep_layer_tensor *t)
{
	size_t H = (size_t)l->eshape.hidden, K = (size_t)l->eshape.num_topk, S = (size_t)ep_slice_len(&l->sl, r), N = 0;
	int fp8 = l->eshape.dtype == EP_DTYPE_FP8;
	int n = add(t, 0, "x", fp8 ? EP_NPY_U1 : EP_NPY_U2, S, H);
	if (fp8) /* cast by the caller (DeepEP's fp8 input); int8 is quantised by dispatch */
		n = add(t, n, "x_scales", EP_NPY_F4, S, (size_t)ep_dtype_num_scales(EP_DTYPE_FP8, (int)H));
	n = add(t, n, "topk_idx", EP_NPY_I8, S, K);
	n = add(t, n, "topk_weights", EP_NPY_F4, S, K);
	for (int b = 0; b < l->eshape.num_bias; b++)
		n = add(t, n, b ? "bias_1" : "bias_0", EP_NPY_U2, S, H);
	if (!l->cfg.allgather) {
		n = a2a_tensors(l, r, t, n);
	} else {
		for (int w = 0; w < l->W; w++)
			N += (size_t)ep_slice_len(&l->sl, w);
		n = add(t, n, "world_gathered_x", EP_NPY_U2, N, H);
		n = add(t, n, "world_gathered_topk_idx", EP_NPY_I8, N, K);
		n = add(t, n, "world_gathered_topk_weights", EP_NPY_F4, N, K);
		n = add(t, n, "world_partial", EP_NPY_U2, N, H);
		n = add(t, n, "world_reduced_x", EP_NPY_U2, S, H);
	}
	if (n > 0 && l->cfg.tp > 1)
		n = add(t, n, "attn_tp_gathered_x", EP_NPY_U2, attn_rows(l, r), H);
	return n;
}

static void *data_of(const struct ep_layer_tensor *t, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(t[i].name, name))
			return t[i].data;
	return NULL;
}

/* The expected received rows of rank q in every group (block order of
 * member g), captured from the reference's own check of zero rows. */
struct rows {
	uint8_t *x;    /* [n][rb]: the dispatched rows (bf16, fp8 or int8) */
	float *s;      /* [n][S] their scales, or NULL */
	size_t rb, S;
	int64_t *idx;
	float *w;
	int32_t *src;
	size_t n;
	size_t at;     /* capture: the first row of the block being checked (the reference numbers a block from 0) */
};

static void capture(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct rows *c = ctx;
	void *to = !strcmp(tensor, gathered_names.x) ? (void *)c->x
		 : !strcmp(tensor, gathered_names.x_scales) ? (void *)c->s
		 : !strcmp(tensor, gathered_names.topk_idx) ? (void *)c->idx
		 : !strcmp(tensor, gathered_names.topk_weights) ? (void *)c->w
		 : !strcmp(tensor, gathered_names.src_idx) ? (void *)c->src : NULL;
	if (to)
		memcpy((char *)to + (c->at + (size_t)row) * bytes, data, bytes);
}

static void rows_free(struct rows *a)
{
	free(a->x), free(a->s), free(a->idx), free(a->w), free(a->src);
}

static int rows_alloc(struct rows *a, size_t n, const struct ep_shape *s)
{
	size_t K = (size_t)s->num_topk;
	a->n = n, a->at = 0, a->rb = ep_dtype_row_bytes(s->dtype, s->hidden);
	a->S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	a->x = calloc(n * a->rb + 1, 1), a->s = calloc(n * a->S + 1, 4);
	a->idx = calloc(n * K + 1, 8), a->w = calloc(n * K + 1, 4), a->src = calloc(n + 1, 4);
	return a->x && a->s && a->idx && a->w && a->src ? 0 : -ENOMEM;
}

/* The rows in views over a (from row off): for the reference's row checks. */
static struct ep_dispatch_out view_of(const struct rows *a, size_t off, size_t n, size_t K)
{
	return (struct ep_dispatch_out){.num_recv = n, .recv_x = a->x + off * a->rb,
					.recv_x_scales = a->S ? a->s + off * a->S : NULL, .recv_topk_idx = a->idx + off * K,
					.recv_topk_weights = a->w + off * K, .recv_src_idx = a->src + off};
}

/* The caller's hooks, rows moved by off. */
struct shift {
	const struct ep_check_hooks *up;
	int64_t off;
};

static int shift_skip(void *ctx, const char *tensor)
{
	const struct shift *s = ctx;
	return s->up->skip ? s->up->skip(s->up->ctx, tensor) : 0;
}

static void shift_expected(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	const struct shift *s = ctx;
	if (s->up->expected)
		s->up->expected(s->up->ctx, tensor, row + s->off, data, bytes);
}

/* Block i of rank r's gathered rows comes from member (g + i) % moe_tp:
 * expected rows into want, the library's (when gathered) against them. */
static int check_gather(struct ep_layer *l, int r, struct rows *want, const struct rows *got,
			struct ep_check_report *rep)
{
	size_t K = (size_t)l->eshape.num_topk, off = 0;
	struct rows zero;
	int rc = rows_alloc(&zero, want->n, &l->eshape);
	for (int i = 0; !rc && i < l->cfg.moe_tp; i++) {
		const struct ep_reference *ref = &l->irefs[(r % l->cfg.moe_tp + i) % l->cfg.moe_tp].base;
		struct ep_check_hooks hooks = {.ctx = want, .expected = capture};
		struct ep_check_report scratch;
		ep_report_init(&scratch, l->cfg.moe_ep, NULL);
		scratch.hooks = &hooks;
		struct ep_dispatch_out z = view_of(&zero, off, ref->num_recv, K);
		want->at = off;
		ep_reference_check_rows(ref, &z, &gathered_names, &scratch);
		if (got) { /* the reference numbers a block's rows from 0: the caller's hooks see them from off */
			struct rows g = *got;
			g.rb = want->rb, g.S = got->s ? want->S : 0;
			struct ep_dispatch_out gv = view_of(&g, off, ref->num_recv, K);
			const struct ep_check_hooks *up = rep->hooks;
			struct shift sh = {up, (int64_t)off};
			struct ep_check_hooks shifted = {.ctx = &sh, .skip = shift_skip, .expected = shift_expected};
			rep->hooks = up ? &shifted : NULL;
			ep_reference_check_rows(ref, &gv, &gathered_names, rep);
			rep->hooks = up;
		}
		off += ref->num_recv;
	}
	rows_free(&zero);
	return rc;
}

/* Rank r's own stand-in on every gathered row and its own rows' weights. */
static void check_experts(struct ep_layer *l, int r, const struct rows *want, const struct ep_layer_tensor *t, int n,
			  struct ep_check_report *rep)
{
	int H = l->eshape.hidden, K = l->eshape.num_topk, mtp = l->cfg.moe_tp, g = r % mtp;
	const uint16_t *part = data_of(t, n, mtp > 1 ? "moe_tp_partial" : "combine_x");
	const float *cw = data_of(t, n, "combine_topk_weights");
	uint16_t y[H > 0 ? H : 1], xb[H > 0 ? H : 1];
	float w[K > 0 ? K : 1];
	size_t k = 0;
	for (int i = 0; i < mtp; i++) {
		const struct ep_reference *ref = &l->irefs[(g + i) % mtp].base;
		for (size_t m = 0; m < ref->num_recv; m++, k++) {
			const int64_t *idx = want->idx + k * (size_t)K;
			int src = ep_reference_world(ref, ref->row_src_rank[m]);
			ep_dispatched_row_to_bf16(&l->eshape, want->x + k * want->rb, want->S ? want->s + k * want->S : NULL, xb);
			ep_expert_transform(l->payload, r, ep_row_expert(idx, K), xb, H, y);
			ep_compare_row(rep, mtp > 1 ? "moe_tp_partial" : "combine_x", EP_ELEM_BF16, y,
				       part + k * (size_t)H, (size_t)H, (int64_t)k, src, ref->row_src_token[m]);
			if (i)
				continue;
			for (int j = 0; j < K; j++)
				w[j] = ep_expert_weight(r, (int)idx[j], want->w[k * (size_t)K + (size_t)j]);
			ep_compare_row(rep, "combine_topk_weights", EP_ELEM_F32, w, cw + k * (size_t)K, (size_t)K,
				       (int64_t)k, src, ref->row_src_token[m]);
		}
	}
}

/* Own rows: every member's partial summed in rotation order from r. */
static int check_reduce(struct ep_layer *l, int r, const uint16_t *got, struct ep_check_report *rep)
{
	const struct ep_reference *ref = &l->irefs[r % l->cfg.moe_tp].base;
	size_t H = (size_t)l->eshape.hidden;
	uint16_t want[H + 1];
	for (size_t m = 0; m < ref->num_recv; m++) {
		if (ep_reference_expert_output(ref, m, want))
			return -ENOMEM;
		ep_compare_row(rep, "moe_tp_reduced_x", EP_ELEM_BF16, want, got + m * H, H, (int64_t)m,
			       ep_reference_world(ref, ref->row_src_rank[m]), ref->row_src_token[m]);
	}
	return 0;
}

static int check_a2a(struct ep_layer *l, int r, const struct ep_layer_tensor *t, int n, struct ep_check_report *rep)
{
	int rc = refs_for(l, r / l->cfg.moe_tp), mtp = l->cfg.moe_tp > 1;
	if (rc)
		return rc;
	const struct ep_reference *ref = &l->irefs[r % l->cfg.moe_tp].base;
	const struct ep_internode_ref *iref = &l->irefs[r % l->cfg.moe_tp];
	struct ep_layout lay = {data_of(t, n, "num_tokens_per_rank"), data_of(t, n, "num_tokens_per_rdma_rank"),
				data_of(t, n, "num_tokens_per_expert"), data_of(t, n, "is_token_in_rank")};
	struct ep_dispatch_out out = {.num_recv = ref->num_recv, .recv_x = data_of(t, n, "recv_x"),
				      .recv_x_scales = data_of(t, n, "recv_x_scales"),
				      .recv_topk_idx = data_of(t, n, "recv_topk_idx"),
				      .recv_topk_weights = data_of(t, n, "recv_topk_weights"),
				      .recv_src_idx = data_of(t, n, "recv_src_idx"),
				      .num_recv_tokens_per_expert = data_of(t, n, "num_recv_tokens_per_expert"),
				      .rank_prefix_matrix = data_of(t, n, "rank_prefix_matrix")};
	if (l->Pg)
		ep_internode_ref_check_layout(iref, &lay, &rep[EP_LPH_EP_DISPATCH]);
	else
		ep_reference_check_layout(ref, &lay, &rep[EP_LPH_EP_DISPATCH]);
	ep_reference_check_dispatch(ref, &out, 0, &rep[EP_LPH_EP_DISPATCH]);
	struct rows want = {0};
	struct rows got = {.x = data_of(t, n, "moe_tp_gathered_x"), .s = data_of(t, n, "moe_tp_gathered_x_scales"),
			   .idx = data_of(t, n, "moe_tp_gathered_topk_idx"),
			   .w = data_of(t, n, "moe_tp_gathered_topk_weights"),
			   .src = data_of(t, n, "moe_tp_gathered_src_idx")};
	if (!(rc = rows_alloc(&want, gathered_rows(l), &l->eshape)) &&
	    !(rc = check_gather(l, r, &want, mtp ? &got : NULL, &rep[EP_LPH_MOE_TP_GATHER]))) {
		check_experts(l, r, &want, t, n, &rep[EP_LPH_EXPERTS]);
		if (mtp)
			rc = check_reduce(l, r, data_of(t, n, "moe_tp_reduced_x"), &rep[EP_LPH_MOE_TP_REDUCE]);
		if (l->Pg)
			ep_internode_ref_check_combine(iref, data_of(t, n, "combined_x"),
						       data_of(t, n, "combined_topk_weights"), &rep[EP_LPH_EP_COMBINE]);
		else
			ep_reference_check_combine(ref, data_of(t, n, "combined_x"), data_of(t, n, "combined_topk_weights"),
						   &rep[EP_LPH_EP_COMBINE]);
	}
	rows_free(&want);
	return rc;
}

static struct ep_allgather_experts allgather_experts(const struct ep_layer *l)
{
	const struct ep_shape *s = &l->eshape;
	return (struct ep_allgather_experts){.payload = l->payload, .world = l->W, .moe_tp = l->cfg.moe_tp,
					     .L = s->num_experts / l->cfg.moe_ep, .K = s->num_topk, .H = s->hidden};
}

/* Every slice in world rank order; r's partial of each row; r's slice summed. */
static int check_allgather(struct ep_layer *l, int r, const struct ep_layer_tensor *t, int n,
			   struct ep_check_report *rep)
{
	struct ep_allgather_experts a = allgather_experts(l);
	size_t H = (size_t)a.H, K = (size_t)a.K, at = 0;
	const uint16_t *gx = data_of(t, n, "world_gathered_x"), *gp = data_of(t, n, "world_partial");
	const int64_t *gi = data_of(t, n, "world_gathered_topk_idx");
	const float *gw = data_of(t, n, "world_gathered_topk_weights");
	const uint16_t *red = data_of(t, n, "world_reduced_x");
	float acc[H + 1];
	uint16_t y[H + 1], want[H + 1];
	for (int w = 0; w < l->W; w++) {
		const struct ep_loaded_rank *in = &l->loaded[w];
		for (int tk = 0; tk < ep_slice_len(&l->sl, w); tk++, at++) {
			const uint16_t *x = (const uint16_t *)in->x + (size_t)tk * H;
			const int64_t *idx = in->topk_idx + (size_t)tk * K;
			const float *wt = in->topk_weights + (size_t)tk * K;
			ep_compare_row(&rep[EP_LPH_WORLD_GATHER], "world_gathered_x", EP_ELEM_BF16, x, gx + at * H, H, (int64_t)at, w, tk);
			ep_compare_row(&rep[EP_LPH_WORLD_GATHER], "world_gathered_topk_idx", EP_ELEM_I64, idx, gi + at * K, K,
				       (int64_t)at, w, tk);
			ep_compare_row(&rep[EP_LPH_WORLD_GATHER], "world_gathered_topk_weights", EP_ELEM_F32, wt, gw + at * K, K,
				       (int64_t)at, w, tk);
			ep_allgather_partial(&a, r, idx, wt, x, want, acc, y);
			ep_compare_row(&rep[EP_LPH_WORLD_PARTIAL], "world_partial", EP_ELEM_BF16, want, gp + at * H, H,
				       (int64_t)at, w, tk);
		}
	}
	const struct ep_loaded_rank *in = &l->loaded[r];
	for (int tk = 0; tk < ep_slice_len(&l->sl, r); tk++) {
		if (ep_allgather_row(&a, in->topk_idx + (size_t)tk * K, in->topk_weights + (size_t)tk * K,
				     (const uint16_t *)in->x + (size_t)tk * H, want))
			return -ENOMEM;
		ep_compare_row(&rep[EP_LPH_WORLD_REDUCE], "world_reduced_x", EP_ELEM_BF16, want, red + (size_t)tk * H, H,
			       tk, r, tk);
	}
	return 0;
}

/* The attention-TP group's rows: member i's combined slice after member i - 1's. */
static int check_attn(struct ep_layer *l, int r, const uint16_t *got, struct ep_check_report *rep)
{
	struct ep_allgather_experts a = allgather_experts(l);
	size_t H = (size_t)a.H, K = (size_t)a.K, at = 0;
	uint16_t want[H + 1];
	for (int i = 0, d = r / l->cfg.tp; i < l->cfg.tp; i++) {
		int w = d * l->cfg.tp + i;
		const struct ep_loaded_rank *in = &l->loaded[w];
		for (int tk = 0; tk < ep_slice_len(&l->sl, w); tk++, at++) {
			int rc = l->cfg.allgather
				 ? ep_allgather_row(&a, in->topk_idx + (size_t)tk * K, in->topk_weights + (size_t)tk * K,
						    (const uint16_t *)in->x + (size_t)tk * H, want)
				 : l->Pg ? ep_internode_ref_combined_row(&l->irefs[w % l->cfg.moe_tp], w / l->cfg.moe_tp, tk, want)
				 : ep_reference_combined_row(&l->irefs[w % l->cfg.moe_tp].base, w / l->cfg.moe_tp, tk, want, NULL);
			if (rc)
				return rc;
			ep_compare_row(rep, "attn_tp_gathered_x", EP_ELEM_BF16, want, got + at * H, H, (int64_t)at, w, tk);
		}
	}
	return 0;
}

int ep_layer_check(struct ep_layer *l, int r, const struct ep_layer_tensor *t, int n, struct ep_check_report *rep)
{
	int rc = l->cfg.allgather ? check_allgather(l, r, t, n, rep) : check_a2a(l, r, t, n, rep);
	if (!rc && l->cfg.tp > 1)
		rc = check_attn(l, r, data_of(t, n, "attn_tp_gathered_x"), &rep[EP_LPH_ATTN_TP_GATHER]);
	return rc;
}
