/* verify_layer.c - `epbench verify intranode DIR` of a MoE layer's directory: a library's phases, in order.
 *
 * Every world rank's slice (x, topk_idx, topk_weights) is read from the
 * directory; cli/oracle_layer.c derives each phase's expected tensors from
 * the slices and compares the library's, phase by phase. A library that
 * wrote only some phases (an Ascend MC2 op with tp_world_size 2 stops at
 * the MoE-TP gather, say) is checked on those, the rest listed as not
 * checked. The first wrong phase is the lowest phase any rank got wrong,
 * named with its rank, row and element. With redundant experts a library
 * may write its own replica choice over topk_idx.npy: each physical id must
 * map through phy2log to the logical id golden drew (topk_idx_phy2log, the
 * input phase), and the outputs are expected for the library's choice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/golden.h"
#include "cli/oracle_layer.h"
#include "cli/phase_tally.h"
#include "collectives/error.h"
#include "reports/report.h"

struct vl {
	const struct ep_oracle_manifest *m;
	const char *dir;
	struct ep_layer l;
	struct ep_loaded_rank *loaded;  /* [W] */
	struct ep_npy *in;              /* [W][6]: x, x_scales, topk_idx, topk_weights, bias_0, bias_1 */
	char not_checked[1024], changed[EP_TEXT_MAX];
	int changed_inputs;
	struct ep_point pt;
	struct ep_phase_tally tally;
};

/* Rank r's slice: x in the input dtype (fp8: with x_scales), ids, weights, biases. */
static int load_slice(struct vl *v, int r, struct ep_npy *in)
{
	const struct ep_shape *s = &v->l.eshape;
	int fp8 = s->dtype == EP_DTYPE_FP8, rc;
	size_t S = (size_t)ep_slice_len(&v->l.sl, r), xs[2] = {S, (size_t)s->hidden}, ks[2] = {S, (size_t)s->num_topk};
	size_t ss[2] = {S, (size_t)ep_dtype_num_scales(s->dtype, s->hidden)};
	if ((rc = ep_oracle_load(v->dir, r, "x", fp8 ? EP_NPY_U1 : EP_NPY_U2, 2, xs, &in[0], 1)) ||
	    (fp8 && (rc = ep_oracle_load(v->dir, r, "x_scales", EP_NPY_F4, 2, ss, &in[1], 1))) ||
	    (rc = ep_oracle_load_index(v->dir, r, "topk_idx", 2, ks, &in[2], 1)) ||
	    (rc = ep_oracle_load(v->dir, r, "topk_weights", EP_NPY_F4, 2, ks, &in[3], 1)))
		return rc;
	for (int b = 0; b < s->num_bias; b++)
		if ((rc = ep_oracle_load(v->dir, r, b ? "bias_1" : "bias_0", EP_NPY_U2, 2, xs, &in[4 + b], 1)))
			return rc;
	return 0;
}

static int load_inputs(struct vl *v)
{
	const struct ep_shape *s = &v->l.eshape;
	int W = v->l.W, rc = 0;
	static const char *const names[6] = {"x", "x_scales", "topk_idx", "topk_weights", "bias_0", "bias_1"};
	v->loaded = calloc((size_t)W, sizeof(*v->loaded));
	v->in = calloc((size_t)W * 6, sizeof(*v->in));
	if (!v->loaded || !v->in)
		return EP_EXIT_ENV;
	for (int r = 0; r < W && !rc; r++) {
		size_t S = (size_t)ep_slice_len(&v->l.sl, r), ks[2] = {S, (size_t)s->num_topk};
		struct ep_npy *in = &v->in[r * 6];
		if ((rc = load_slice(v, r, in)))
			break;
		const int64_t *idx = in[2].data;
		for (size_t i = 0; i < in[2].count; i++)
			if (idx[i] < -1 || idx[i] >= s->num_experts)
				return fprintf(stderr, "epbench verify: rank%d/topk_idx.npy has %lld at [%zu][%zu], outside [-1, %d)\n",
					       r, (long long)idx[i], i / ks[1], i % ks[1], s->num_experts), EP_EXIT_USAGE;
		for (int i = 0; i < 6; i++)
			if (in[i].data && ep_oracle_hash_differs(v->m, v->dir, r, names[i]) && v->changed_inputs++ < 4) {
				size_t n = strlen(v->changed);
				snprintf(v->changed + n, sizeof(v->changed) - n, "%srank%d/%s.npy", n ? ", " : "", r, names[i]);
			}
		v->loaded[r] = (struct ep_loaded_rank){.num_tokens = (int)S, .x = in[0].data, .x_scales = in[1].data,
						       .topk_idx = in[2].data, .topk_weights = in[3].data,
						       .bias = {in[4].data, in[5].data}};
	}
	return rc;
}

/* The library's tensors of rank r into t (absent or misshapen: zeros, skipped). */
struct present {
	const struct ep_layer_tensor *t;
	int n, absent[EP_LAYER_MAX_TENSORS], owned[EP_LAYER_MAX_TENSORS];
};

static int skip_absent(void *ctx, const char *tensor)
{
	const struct present *p = ctx;
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->t[i].name, tensor))
			return p->absent[i];
	return 0;
}

static int load_outputs(struct vl *v, int r, struct ep_layer_tensor *t, int n, struct ep_npy *files,
			struct present *p, struct ep_check_report *rep)
{
	for (int i = 0; i < n; i++) {
		size_t any[2] = {0, 0}, bytes = t[i].d0 * (t[i].d1 ? t[i].d1 : 1) * ep_npy_itemsize(t[i].dtype);
		if (t[i].phase == EP_LPH_INPUT) {
			t[i].data = (void *)ep_layer_input(&v->loaded[r], t[i].name);
			continue;
		}
		int rc = t[i].dtype == EP_NPY_I8 ? ep_oracle_load_index(v->dir, r, t[i].name, t[i].d1 ? 2 : 1, any, &files[i], 0)
			 : ep_oracle_load(v->dir, r, t[i].name, t[i].dtype, t[i].d1 ? 2 : 1, any, &files[i], 0);
		if (rc > 1 || rc < 0)
			return rc;
		int fits = !rc && files[i].shape[0] == t[i].d0 && (!t[i].d1 || files[i].shape[1] == t[i].d1);
		if (!rc && !fits) { /* a wrong row (or column) count is a wrong output, named by its phase */
			char what[40];
			int rows = files[i].shape[0] != t[i].d0;
			snprintf(what, sizeof(what), "%.32s.%s", t[i].name, rows ? "rows" : "cols");
			ep_report_scalar(&rep[t[i].phase], what, (long long)(rows ? t[i].d0 : t[i].d1),
					 (long long)files[i].shape[rows ? 0 : 1]);
		}
		p->absent[i] = !fits;
		if (rc == 1 && !strstr(v->not_checked, t[i].name)) {
			size_t k = strlen(v->not_checked);
			snprintf(v->not_checked + k, sizeof(v->not_checked) - k, "%s%s", k ? ", " : "", t[i].name);
		}
		t[i].data = fits ? files[i].data : calloc(bytes + 1, 1);
		p->owned[i] = !fits;
		if (!t[i].data)
			return EP_EXIT_ENV;
	}
	return 0;
}

/* Rank r: replica rule, then every phase; each phase's first mismatch kept. */
static int verify_rank(struct vl *v, int r, uint64_t *by_src)
{
	struct ep_layer_tensor t[EP_LAYER_MAX_TENSORS];
	struct ep_npy files[EP_LAYER_MAX_TENSORS];
	struct ep_check_report rep[EP_LPH_N];
	int n = ep_layer_tensors(&v->l, r, t);
	if (n < 0)
		return EP_EXIT_ENV;
	struct present p = {.t = t, .n = n};
	memset(files, 0, sizeof(files));
	struct ep_check_hooks hooks = {.ctx = &p, .skip = skip_absent};
	for (int k = 0; k < EP_LPH_N; k++)
		ep_report_init(&rep[k], v->l.W, by_src), rep[k].hooks = &hooks;
	int rc = load_outputs(v, r, t, n, files, &p, rep);
	if (!rc)
		rc = ep_oracle_check_replicas(v->dir, r, v->loaded[r].topk_idx, (size_t)v->loaded[r].num_tokens,
					      (size_t)v->l.eshape.num_topk, &rep[EP_LPH_INPUT]);
	if (!rc && ep_layer_check(&v->l, r, t, n, rep))
		rc = EP_EXIT_ENV;
	if (!rc)
		ep_phase_tally_add(&v->tally, r, rep, &v->pt.res);
	for (int i = 0; i < n; i++) {
		if (p.owned[i])
			free(t[i].data);
		ep_npy_free(&files[i]);
	}
	return rc;
}

/* The per-phase lines, the first wrong phase and the footer. */
static int report(struct vl *v, uint64_t *matrix)
{
	int rc = ep_phase_tally_report(&v->tally, &v->pt.res, v->dir);
	if (rc)
		return rc;
	ep_phase_tally_inputs(v->changed_inputs, v->changed, v->not_checked);
	v->pt.res.wrong_matrix = matrix;
	v->pt.res.exit_code = v->pt.res.wrong_elems ? EP_EXIT_WRONG : EP_EXIT_OK;
	ep_table_footer(stdout, &v->pt, 1, 1, NULL);
	return v->pt.res.exit_code;
}

int ep_verify_layer(const struct ep_oracle_manifest *m, const char *dir)
{
	struct vl v = {.m = m, .dir = dir};
	int W = m->shape.num_ranks, code = 0;
	uint64_t *by_src = calloc((size_t)W, 8), *matrix = calloc((size_t)W * (size_t)W, 8);
	ep_phase_tally_init(&v.tally);
	if (!by_src || !matrix || ep_layer_init(&v.l, m))
		code = EP_EXIT_ENV;
	if (!code && !(code = load_inputs(&v))) {
		const struct ep_oracle_layer *c = &m->layer;
		printf("# epbench verify %s %s: MoE layer dp=%d tp=%d moe_tp=%d moe_ep=%d %s, %d ranks, hidden %d, top-%d of %d experts, payload %s\n",
		       m->subcommand, dir, c->dp, c->tp, c->moe_tp, c->moe_ep, c->allgather ? "allgather" : "a2a", W,
		       m->shape.hidden, m->shape.num_topk, m->shape.num_experts, ep_payload_name(m->payload));
		printf("# inputs read from the directory; every phase's expected outputs computed by reference/ (golden: %s)\n",
		       m->command_line);
		ep_layer_bind(&v.l, v.loaded);
		v.pt = (struct ep_point){.ranks = W, .tokens = m->shape.num_tokens, .hidden = m->shape.hidden};
		v.pt.res.checked = 1;
		for (int r = 0; r < W && !code; r++) {
			code = verify_rank(&v, r, by_src);
			for (int s = 0; s < W; s++)
				matrix[(size_t)s * W + r] = by_src[s];
		}
		if (!code)
			code = report(&v, matrix);
	}
	for (int i = 0; v.in && i < W * 6; i++)
		ep_npy_free(&v.in[i]);
	free(v.in), free(v.loaded), free(by_src), free(matrix);
	ep_layer_fini(&v.l);
	return code;
}
