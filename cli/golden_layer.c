/* golden_layer.c - `epbench golden intranode --parallel ...`: a MoE layer's inputs and every phase's expected outputs.
 *
 * Each world rank's slice is drawn from the seed as the run's layer draws
 * it (its attention-DP group's rows, routing of its world rank, replicas of
 * its EP rank), then cli/oracle_layer.c derives every phase's tensors from
 * those slices alone: the same code verify runs on a library's directory.
 * With redundant experts each rank's folder also holds the router's logical
 * ids of its slice and the placement (phy2log, logcnt, log2phy).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/golden.h"
#include "cli/oracle_layer.h"
#include "collectives/error.h"
#include "reports/npy.h"

/* Every world rank's slice: x, physical ids and weights (and the logical ids). */
struct slices_in {
	struct ep_loaded_rank *loaded;  /* [W] */
	int64_t **logical;              /* [W] or NULL entries */
};

static void slices_free(struct slices_in *s, int W)
{
	for (int r = 0; s->loaded && s->logical && r < W; r++) {
		free((void *)s->loaded[r].x), free((void *)s->loaded[r].topk_idx), free((void *)s->loaded[r].topk_weights);
		free((void *)s->loaded[r].x_scales), free((void *)s->loaded[r].bias[0]), free((void *)s->loaded[r].bias[1]);
		free(s->logical[r]);
	}
	free(s->loaded), free(s->logical);
}

/* EP rank k of group g's slice, drawn from the seed (rows past it dropped):
 * x in the input dtype (fp8: cast, with its scales), the biases. */
static int draw_rank(const struct ep_golden *gd, const struct ep_layer *l, int g, int k, struct slices_in *in)
{
	const struct ep_shape *s = &l->eshape;
	struct ep_routing rt = gd->run.routing;
	int w = g + k * l->cfg.moe_tp, S = ep_slice_len(&l->sl, w), fp8 = s->dtype == EP_DTYPE_FP8;
	size_t T = (size_t)s->num_tokens, K = (size_t)s->num_topk, H = (size_t)s->hidden;
	size_t rb = fp8 ? H : 2 * H, Sx = fp8 ? (size_t)ep_dtype_num_scales(s->dtype, s->hidden) : 0;
	rt.group = &l->views[g].view;
	uint8_t *x = calloc((size_t)S * rb + 1, 1);
	float *xs = fp8 ? calloc((size_t)S * Sx + 1, 4) : NULL;
	int64_t *idx = calloc(T * K + 1, 8);
	float *wt = calloc(T * K + 1, 4);
	uint16_t *b[2] = {NULL, NULL};
	for (int i = 0; i < s->num_bias; i++)
		b[i] = calloc((size_t)S * H + 1, 2);
	in->loaded[w] = (struct ep_loaded_rank){.num_tokens = S, .x = x, .x_scales = xs, .topk_idx = idx,
						.topk_weights = wt, .bias = {b[0], b[1]}};
	if (!x || (fp8 && !xs) || !idx || !wt || (s->num_bias > 0 && !b[0]) || (s->num_bias > 1 && !b[1]) ||
	    ep_gen_routing(s, &rt, gd->cfg.seed, k, idx, wt))
		return -ENOMEM;
	for (int t = 0; t < S; t++) {
		ep_gen_x_row(s, gd->cfg.seed, &rt, k, t, x + (size_t)t * rb, xs ? xs + (size_t)t * Sx : NULL);
		for (int i = 0; i < s->num_bias; i++)
			ep_gen_bf16_row(gd->cfg.seed, &rt, i ? EP_STREAM_BIAS1 : EP_STREAM_BIAS0, k, t, s->hidden,
					b[i] + (size_t)t * H);
	}
	if (!rt.placement)
		return 0;
	struct ep_shape ls = *s;
	float *lw = malloc(sizeof(float) * (T * K + 1));
	ls.num_experts = rt.placement->logical, rt.placement = NULL;
	in->logical[w] = malloc(sizeof(int64_t) * (T * K + 1));
	int rc = lw && in->logical[w] ? ep_gen_routing(&ls, &rt, gd->cfg.seed, k, in->logical[w], lw) : -ENOMEM;
	free(lw);
	return rc;
}

/* Expected rows into the rank's tensors, by name (struct ep_check_hooks). */
struct sink {
	struct ep_layer_tensor *t;
	int n;
};

static void sink_row(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct sink *k = ctx;
	for (int i = 0; i < k->n; i++)
		if (k->t[i].phase != EP_LPH_INPUT && !strcmp(k->t[i].name, tensor))
			memcpy((char *)k->t[i].data + (size_t)row * bytes, data, bytes);
}

/* The placement beside the rank's slice (redundant experts only). */
static int write_placement(const struct ep_golden *gd, const struct slices_in *in, int r, const char *dir)
{
	const struct ep_placement *pl = gd->run.routing.placement;
	if (!pl)
		return 0;
	struct ep_npy_item t[] = {
		{"topk_idx_logical", EP_NPY_I8, (size_t)in->loaded[r].num_tokens, (size_t)gd->run.shape.num_topk, 2,
		 in->logical[r]},
		{"phy2log", EP_NPY_I4, (size_t)pl->physical, 0, 1, pl->phy2log},
		{"logcnt", EP_NPY_I4, (size_t)pl->logical, 0, 1, pl->logcnt},
		{"log2phy", EP_NPY_I4, (size_t)pl->logical, (size_t)pl->maxcnt, 2, pl->log2phy},
	};
	return ep_npy_write_items(dir, r, t, 4);
}

/* Rank r: its tensors captured from the layer's checks, written, listed. */
static int golden_rank(struct ep_golden *gd, struct ep_layer *l, const struct slices_in *in, int r, const char *dir)
{
	struct ep_layer_tensor t[EP_LAYER_MAX_TENSORS];
	struct ep_npy_item items[EP_LAYER_MAX_TENSORS];
	struct ep_check_report rep[EP_LPH_N];
	int n = ep_layer_tensors(l, r, t), rc = n < 0 ? n : 0;
	for (int i = 0; i < n; i++) {
		size_t bytes = t[i].d0 * (t[i].d1 ? t[i].d1 : 1) * ep_npy_itemsize(t[i].dtype);
		t[i].data = t[i].phase == EP_LPH_INPUT ? (void *)ep_layer_input(&in->loaded[r], t[i].name)
							: calloc(bytes + 1, 1);
		items[i] = (struct ep_npy_item){t[i].name, t[i].dtype, t[i].d0, t[i].d1, t[i].d1 ? 2 : 1, t[i].data};
		if (!t[i].data)
			rc = -ENOMEM;
	}
	struct sink k = {t, n};
	struct ep_check_hooks hooks = {.ctx = &k, .expected = sink_row};
	uint64_t wrong = 0;
	for (int p = 0; p < EP_LPH_N; p++)
		ep_report_init(&rep[p], l->W, NULL), rep[p].hooks = &hooks;
	if (!rc && !(rc = ep_layer_check(l, r, t, n, rep)))
		for (int p = 0; p < EP_LPH_N; p++)
			wrong += rep[p].wrong_elems;

	if (!rc)
		rc = wrong ? -EIO : ep_npy_write_items(dir, r, items, n);
	if (!rc)
		rc = write_placement(gd, in, r, dir);
	for (int i = 0; !rc && i < n; i++)
		rc = ep_oracle_add(&gd->m, dir, r, t[i].name, t[i].role);
	static const char *const placement[] = {"topk_idx_logical", "phy2log", "logcnt", "log2phy"};
	for (int i = 0; !rc && gd->run.routing.placement && i < 4; i++)
		rc = ep_oracle_add(&gd->m, dir, r, placement[i], EP_ROLE_INPUT);
	for (int i = 0; i < n; i++)
		if (t[i].phase != EP_LPH_INPUT)
			free(t[i].data);
	return rc;
}

void ep_golden_layer_head(struct ep_golden *gd)
{
	const struct ep_parallel *p = &gd->run.parallel;
	int tp = p->v[EP_PAR_TP];
	gd->m.layer = (struct ep_oracle_layer){
		.on = 1, .dp = p->v[EP_PAR_DP], .tp = tp, .moe_tp = p->v[EP_PAR_MOE_TP], .moe_ep = p->v[EP_PAR_MOE_EP],
		.allgather = p->moe_comm == EP_MOE_ALLGATHER, .sp_pad = gd->cfg.sp_pad,
		.tokens_per_dp = gd->cfg.tokens_per_dp ? gd->cfg.tokens_per_dp : gd->run.attn_tokens * tp,
		.uneven = gd->run.routing.uneven_tokens};
}

int ep_golden_layer(struct ep_golden *gd, const char *dir)
{
	struct ep_layer l;
	struct slices_in in = {0};
	int W = gd->run.shape.num_ranks, rc = ep_layer_init(&l, &gd->m);
	gd->m.shape.num_tokens = l.sl.max_slice;
	in.loaded = calloc((size_t)W, sizeof(*in.loaded));
	in.logical = calloc((size_t)W, sizeof(*in.logical));
	if (!rc && (!in.loaded || !in.logical))
		rc = -ENOMEM;
	for (int g = 0; !rc && g < l.cfg.moe_tp; g++)
		for (int k = 0; !rc && k < l.cfg.moe_ep; k++)
			rc = draw_rank(gd, &l, g, k, &in);
	if (!rc)
		ep_layer_bind(&l, in.loaded);
	for (int r = 0; !rc && r < W; r++)
		rc = golden_rank(gd, &l, &in, r, dir);
	ep_layer_fini(&l);
	slices_free(&in, W);
	return rc;
}

int ep_golden_ascend_attn(struct ep_golden *gd, int me, const char *dir)
{
	int tp = gd->run.parallel.v[EP_PAR_TP], d = me / tp, rc = 0;
	size_t H = (size_t)gd->run.shape.hidden, rows = 0, any[2] = {0, H};
	struct ep_npy x[tp];
	memset(x, 0, sizeof(x));
	if (tp < 2)
		return 0;
	for (int i = 0; i < tp && !rc; i++) /* the combine outputs golden just wrote */
		if (ep_oracle_load(dir, d * tp + i, "x", EP_NPY_U2, 2, any, &x[i], 1))
			rc = -EIO;
		else
			rows += x[i].shape[0];
	uint16_t *out = rc ? NULL : malloc(2 * (rows * H + 1));
	for (int i = 0, at = 0; out && i < tp; at += (int)x[i].shape[0], i++)
		memcpy(out + (size_t)at * H, x[i].data, 2 * x[i].shape[0] * H);
	struct ep_npy_item t = {"attn_tp_gathered_x", EP_NPY_U2, rows, H, 2, out};
	if (!rc)
		rc = out ? ep_npy_write_items(dir, me, &t, 1) : -ENOMEM;
	free(out);
	for (int i = 0; i < tp; i++)
		ep_npy_free(&x[i]);
	return rc;
}
