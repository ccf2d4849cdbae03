/* oracle_ascend.c - golden and verify for --ep-semantics ascend, plain EP runs (see oracle.h).
 *
 * The directory holds Ascend's tensors under the names `--dump` gives them
 * (cli/ascend.c), in the same dtypes and shapes, so a golden directory is
 * byte-identical to a run's dump: inputs dispatch_x [T][H] bf16,
 * expert_ids [T][K] int64 (verify also takes torch_npu's int32),
 * expert_scales [T][K], smooth_scales [(S_n + E)][H] (--smooth-scales),
 * shared_expert_x [T][H] (--bias 1); outputs expand_x [A][H] (int8 or
 * bf16), dynamic_scales [A] (int8), assist_info_for_combine [A * 128],
 * expert_token_nums [L], ep_recv_counts [R * L] and combine's x [T][H];
 * the expert tensor expert_outputs [n][H]: epbench's expert stand-in on
 * the expected expand_x, each row's local expert found from
 * expert_token_nums as the run finds it. A is the rank's capacity; only the
 * first n (rows received) rows of expand_x and dynamic_scales and 3n
 * entries of assist_info_for_combine are defined, golden writes zeros past
 * them and verify does not compare them. The expected values are those
 * reference/ascend_ref.c compares a run with, captured through the check
 * hooks; verify reads every input from the directory (each source rank's
 * own smoothing scales) and reports assist_info_for_combine and
 * ep_recv_counts under the handles verdict, as runs do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ascend.h"
#include "cli/oracle.h"
#include "collectives/error.h"
#include "reference/ascend_ref.h"
#include "reports/atomic_file.h"

const char *const ep_ascend_input_names[6] = {"dispatch_x", "smooth_scales", "expert_ids", "expert_scales",
					      "shared_expert_x", NULL};
const char *const ep_ascend_tensor_names[] = {
	"dispatch_x", "expert_ids", "expert_scales", "smooth_scales", "shared_expert_x", "expand_x", "dynamic_scales",
	"assist_info_for_combine", "expert_token_nums", "ep_recv_counts", "expert_outputs", "x", "attn_tp_gathered_x", NULL};

/* The outputs, in the order verify loads them. */
enum { A_X, A_SCALES, A_INFO, A_NUMS, A_COUNTS, A_OUT, A_N };
static const char *const out_names[A_N] = {"expand_x", "dynamic_scales", "assist_info_for_combine",
					   "expert_token_nums", "ep_recv_counts", "x"};

double ep_ascend_golden_bytes(const struct ep_run *run, size_t *rank_bytes)
{
	struct ep_ascend_params p;
	ep_ascend_run_params(run, &p);
	double H = p.hidden, K = p.num_topk, T = p.max_tokens, R = p.num_ranks, rb = (double)ep_ascend_row_bytes(&p);
	double sm = (double)(p.shared_experts + p.num_experts) * H * 4, disk = 0, worst = 0;
	for (int r = 0; r < p.num_ranks; r++) {
		double A = (double)ep_ascend_rank_capacity(&p, r);
		double one = T * (3 * 2 * H + 12 * K) + A * (rb + 4 + 512 + 2 * H) + 8 * R * (p.num_experts + 1);
		disk += one + sm + 12 * 128;
		worst = one > worst ? one : worst;
	}
	worst += R * T * K * 12 + sm; /* the reference: every rank's routing, the smoothing table */
	*rank_bytes = worst < 0x1p60 ? (size_t)worst : (size_t)1 << 60;
	return disk;
}

/* Golden */

/* Rank me's tensors: the expected outputs (captured), its inputs. */
struct golden_rank {
	struct ep_ascend_params p;
	size_t A, n, T, H, K, rb;
	void *expand_x;
	float *scales;
	int32_t *info, *counts;
	int64_t *nums;
	uint16_t *x, *out, *shared_x, *expert_out;
	float *smooth;
};

static void golden_free(struct golden_rank *g)
{
	free(g->expand_x), free(g->scales), free(g->info), free(g->counts), free(g->nums);
	free(g->x), free(g->out), free(g->shared_x), free(g->expert_out), free(g->smooth);
}

static int golden_alloc(struct golden_rank *g, const struct ep_ascend_ref *ref, const struct ep_ascend_inputs *in,
			int me)
{
	size_t S = (size_t)(g->p.shared_experts + g->p.num_experts);
	g->A = ep_ascend_rank_capacity(&g->p, me), g->n = ref->num_recv, g->T = (size_t)ref->tokens[me];
	g->H = (size_t)g->p.hidden, g->K = (size_t)g->p.num_topk, g->rb = ep_ascend_row_bytes(&g->p);
	g->expand_x = calloc(g->A * g->rb + 1, 1);
	g->scales = calloc(g->A + 1, sizeof(float));
	g->info = calloc(g->A * 128 + 1, sizeof(int32_t));
	g->nums = calloc((size_t)ref->num_local + 1, sizeof(int64_t));
	g->counts = calloc((size_t)ref->num_counts + 1, sizeof(int32_t));
	g->x = calloc(g->T * g->H + 1, 2), g->out = calloc(g->T * g->H + 1, 2);
	g->expert_out = calloc(g->n * g->H + 1, 2);
	if (in->shared_x)
		g->shared_x = calloc(g->T * g->H + 1, 2);
	if (in->smooth && g->p.quant)
		g->smooth = calloc(S * g->H + 1, sizeof(float));
	return g->expand_x && g->scales && g->info && g->nums && g->counts && g->x && g->out && g->expert_out &&
	       (g->shared_x || !in->shared_x) && (g->smooth || !in->smooth || !g->p.quant) ? 0 : -ENOMEM;
}

/* Golden: each expected row into its tensor (row index times row bytes). */
static void capture_row(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct golden_rank *g = ctx;
	void *base[A_N] = {g->expand_x, g->scales, g->info, g->nums, g->counts, g->out};
	for (int i = 0; i < A_N; i++)
		if (!strcmp(out_names[i], tensor))
			memcpy((char *)base[i] + (size_t)row * bytes, data, bytes);
}

/* The local expert of row m from expert_token_nums (counts or prefix sums), as cli/ascend.c finds it. */
static int row_expert(const struct golden_rank *g, int num_local, size_t m)
{
	int64_t end = 0;
	for (int e = 0; e < num_local; e++) {
		end = g->p.counts_prefix ? g->nums[e] : end + g->nums[e];
		if ((int64_t)m < end)
			return e;
	}
	return num_local - 1;
}

/* The inputs of rank me as the run generates them; expert_outputs from the expected rows. */
static void golden_inputs(struct golden_rank *g, const struct ep_ascend_ref *ref, const struct ep_ascend_inputs *in,
			  int me)
{
	for (size_t t = 0; t < g->T; t++) {
		ep_gen_bf16_row(in->seed, in->routing, EP_STREAM_X, me, (int64_t)t, (int)g->H, g->x + t * g->H);
		if (g->shared_x)
			ep_gen_bf16_row(in->seed, in->routing, EP_STREAM_BIAS0, me, (int64_t)t, (int)g->H,
					g->shared_x + t * g->H);
	}
	if (g->smooth)
		ep_ascend_gen_smooth(in->seed, g->p.shared_experts + g->p.num_experts, (int)g->H, g->smooth);
	for (size_t m = 0; m < g->n; m++)
		ep_ascend_expert_row(in->routing->payload, me, row_expert(g, ref->num_local, m), g->p.quant,
				     (const char *)g->expand_x + m * g->rb, g->p.quant ? g->scales[m] : 0.0f, (int)g->H,
				     g->expert_out + m * g->H);
}

static int golden_write(const struct golden_rank *g, const struct ep_ascend_ref *ref, int me, const char *dir)
{
	char path[8192];
	int n = snprintf(path, sizeof(path), "%s/rank%d", dir, me), rc;
	if ((rc = ep_mkdir_p(path)))
		return rc;
	const struct { const char *name; enum ep_npy_dtype d; int nd; size_t s0, s1; const void *data; } f[] = {
		{"dispatch_x", EP_NPY_U2, 2, g->T, g->H, g->x},
		{"expert_ids", EP_NPY_I8, 2, g->T, g->K, ep_ascend_ref_ids(ref, me)},
		{"expert_scales", EP_NPY_F4, 2, g->T, g->K, ep_ascend_ref_weights(ref, me)},
		{"smooth_scales", EP_NPY_F4, 2, (size_t)(g->p.shared_experts + g->p.num_experts), g->H, g->smooth},
		{"shared_expert_x", EP_NPY_U2, 2, g->T, g->H, g->shared_x},
		{"expert_outputs", EP_NPY_U2, 2, g->n, g->H, g->expert_out},
		{"x", EP_NPY_U2, 2, g->T, g->H, g->out},
		{"expand_x", g->p.quant ? EP_NPY_I1 : EP_NPY_U2, 2, g->A, g->H, g->expand_x},
		{"dynamic_scales", EP_NPY_F4, 1, g->A, 0, g->p.quant ? g->scales : NULL},
		{"assist_info_for_combine", EP_NPY_I4, 1, g->A * 128, 0, g->info},
		{"expert_token_nums", EP_NPY_I8, 1, (size_t)ref->num_local, 0, g->nums},
		{"ep_recv_counts", EP_NPY_I4, 1, (size_t)ref->num_counts, 0, g->counts},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && !rc; i++) {
		if (!f[i].data)
			continue;
		size_t shape[2] = {f[i].s0, f[i].s1};
		snprintf(path + n, sizeof(path) - (size_t)n, "/%s.npy", f[i].name);
		rc = ep_npy_write(path, f[i].d, shape, f[i].nd, f[i].data);
	}
	return rc;
}

int ep_ascend_golden_rank(const struct ep_run *run, int me, const char *dir)
{
	struct golden_rank g = {0};
	struct ep_ascend_inputs in;
	struct ep_ascend_ref ref;
	ep_ascend_run_params(run, &g.p);
	ep_ascend_run_inputs(run, &in);
	int rc = ep_ascend_ref_init(&ref, &g.p, &run->shape, &in, me);
	if (rc)
		return rc;
	if (!(rc = golden_alloc(&g, &ref, &in, me))) {
		/* the captured tensors are also the "actual" ones: each row is
		 * captured before it is compared, so nothing can differ */
		struct ep_ascend_out out = {.num_recv = g.n, .capacity = g.A, .expand_x = g.expand_x,
					    .dynamic_scales = g.p.quant ? g.scales : NULL, .assist_info = g.info,
					    .expert_token_nums = g.nums, .ep_recv_counts = g.counts,
					    .num_local = ref.num_local, .num_counts = ref.num_counts};
		struct ep_check_hooks hooks = {.ctx = &g, .expected = capture_row};
		struct ep_check_report rep;
		ep_report_init(&rep, g.p.num_ranks, NULL);
		rep.hooks = &hooks;
		ep_ascend_ref_check_dispatch(&ref, &out, &rep);
		ep_ascend_ref_check_combine(&ref, g.out, &rep);
		golden_inputs(&g, &ref, &in, me);
		rc = rep.wrong_elems ? -EIO : golden_write(&g, &ref, me, dir);
	}
	golden_free(&g);
	ep_ascend_ref_fini(&ref);
	return rc;
}

/* Verify */

/* Every id of rank r in [-1, E) and none twice in a row (Ascend's rule). */
static int check_expert_ids(const struct ep_npy *ids, int r, int E)
{
	const int64_t *p = ids->data;
	size_t K = ids->shape[1];
	for (size_t i = 0; i < ids->count; i++) {
		if (p[i] < -1 || p[i] >= E)
			return fprintf(stderr, "epbench verify: rank%d/expert_ids.npy has %lld at [%zu][%zu], outside [-1, %d)\n",
				       r, (long long)p[i], i / K, i % K, E), EP_EXIT_USAGE;
		for (size_t j = i - i % K; j < i && p[i] >= 0; j++)
			if (p[j] == p[i])
				return fprintf(stderr, "epbench verify: rank%d/expert_ids.npy row %zu repeats expert %lld, which Ascend's expert_ids may not\n",
					       r, i / K, (long long)p[i]), EP_EXIT_USAGE;
	}
	return 0;
}

int ep_ascend_load_inputs(const struct ep_oracle_manifest *m, const char *dir, int r, struct ep_npy *in,
			  struct ep_loaded_rank *loaded)
{
	const struct ep_shape *s = &m->shape;
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk, xs[2] = {0, H};
	size_t sm[2] = {(size_t)(m->ascend.shared_experts + s->num_experts), H};
	int rc;
	if ((rc = ep_oracle_load(dir, r, "dispatch_x", EP_NPY_U2, 2, xs, &in[0], 1)))
		return rc;
	size_t T = in[0].shape[0], tk[2] = {T, K}, th[2] = {T, H};
	if (T > (size_t)s->num_tokens)
		return fprintf(stderr, "epbench verify: rank%d/dispatch_x.npy has %zu tokens, more than the manifest's %d\n",
			       r, T, s->num_tokens), EP_EXIT_USAGE;
	if ((m->ascend.smooth_scales && (rc = ep_oracle_load(dir, r, "smooth_scales", EP_NPY_F4, 2, sm, &in[1], 1))) ||
	    (rc = ep_oracle_load_index(dir, r, "expert_ids", 2, tk, &in[2], 1)) ||
	    (rc = ep_oracle_load(dir, r, "expert_scales", EP_NPY_F4, 2, tk, &in[3], 1)) ||
	    (s->num_bias && (rc = ep_oracle_load(dir, r, "shared_expert_x", EP_NPY_U2, 2, th, &in[4], 1))))
		return rc;
	*loaded = (struct ep_loaded_rank){.num_tokens = (int)T, .x = in[0].data, .topk_idx = in[2].data,
					  .topk_weights = in[3].data, .bias = {in[4].data, NULL}};
	return check_expert_ids(&in[2], r, s->num_experts);
}

/* Rank me's outputs as the directory holds them; absent ones read as zeros. */
struct outputs {
	struct ep_npy t[A_N];
	int present[A_N];
	void *zeros;
};

static int skip_absent(void *ctx, const char *tensor)
{
	const struct outputs *o = ctx;
	for (int i = 0; i < A_N; i++)
		if (!strcmp(out_names[i], tensor))
			return !o->present[i];
	return 0;
}

static const void *arr(const struct outputs *o, int i)
{
	return o->present[i] ? o->t[i].data : o->zeros;
}

/* Loads what is present; the row tensors must hold the n rows received
 * (Ascend's shape has A >= n; rows past n are not compared). */
static int load_outputs(const struct ep_ascend_ref *ref, const char *dir, int me, struct outputs *o)
{
	const struct ep_ascend_params *p = &ref->p;
	size_t H = (size_t)p->hidden, T = (size_t)ref->tokens[me], n = ref->num_recv;
	const struct { enum ep_npy_dtype d; int nd; size_t s0, s1, per_row; int want; } f[A_N] = {
		{p->quant ? EP_NPY_I1 : EP_NPY_U2, 2, 0, H, 1, 1}, {EP_NPY_F4, 1, 0, 0, 1, p->quant},
		{EP_NPY_I4, 1, 0, 0, 3, 1}, {EP_NPY_I8, 1, (size_t)ref->num_local, 0, 0, 1},
		{EP_NPY_I4, 1, (size_t)ref->num_counts, 0, 0, 1}, {EP_NPY_U2, 2, T, H, 0, 1},
	};
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < A_N; i++) {
		size_t want[2] = {f[i].s0, f[i].s1};
		int rc = f[i].want ? ep_oracle_load(dir, me, out_names[i], f[i].d, f[i].nd, want, &o->t[i], 0) : 1;
		if (rc > 1 || rc < 0)
			return rc;
		if ((o->present[i] = rc == 0) && f[i].per_row && o->t[i].shape[0] < n * f[i].per_row)
			return fprintf(stderr, "epbench verify: rank%d/%s.npy has %zu entries, fewer than the %zu of the %zu rows rank %d receives\n",
				       me, out_names[i], o->t[i].shape[0], n * f[i].per_row, n, me), EP_EXIT_USAGE;
	}
	size_t big = (n + T + 1) * (2 * H + 16) + ((size_t)ref->num_local + (size_t)ref->num_counts) * 8;
	return (o->zeros = calloc(big, 1)) ? 0 : EP_EXIT_ENV;
}

static void outputs_free(struct outputs *o)
{
	for (int i = 0; i < A_N; i++)
		ep_npy_free(&o->t[i]);
	free(o->zeros);
}

void ep_ascend_manifest_params(const struct ep_oracle_manifest *m, struct ep_ascend_params *p)
{
	const struct ep_shape *s = &m->shape;
	*p = (struct ep_ascend_params){
		.num_ranks = s->num_ranks, .max_tokens = s->num_tokens, .hidden = s->hidden, .num_topk = s->num_topk,
		.num_experts = s->num_experts, .shared_experts = m->ascend.shared_experts,
		.shared_ranks = m->ascend.shared_expert_ranks, .quant = s->dtype == EP_DTYPE_INT8,
		.comm_quant = m->ascend.comm_quant, .counts_prefix = s->expert_counts == EP_COUNTS_PREFIX,
	};
}

/* Checks rank me's present outputs into rep. */
static void check_outputs(const struct ep_ascend_ref *ref, const struct outputs *o, struct ep_check_report *rep)
{
	struct ep_ascend_out out = {.num_recv = ref->num_recv, .capacity = ref->num_recv, .expand_x = arr(o, A_X),
				    .dynamic_scales = arr(o, A_SCALES), .assist_info = arr(o, A_INFO),
				    .expert_token_nums = arr(o, A_NUMS), .ep_recv_counts = arr(o, A_COUNTS),
				    .num_local = ref->num_local, .num_counts = ref->num_counts};
	struct ep_check_hooks hooks = {.ctx = (void *)o, .skip = skip_absent};
	rep->hooks = &hooks;
	ep_ascend_ref_check_dispatch(ref, &out, rep);
	ep_ascend_ref_check_combine(ref, arr(o, A_OUT), rep);
	rep->hooks = NULL;
}

/* name is an item of the list "a, b, c" (not a part of one: x in expand_x). */
static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *at = list; (at = strstr(at, name)); at += n)
		if ((at == list || at[-1] == ' ') && (at[n] == ',' || !at[n]))
			return 1;
	return 0;
}

/* A MoE layer's attention-TP gather of rank me (moe_tp 1, tp > 1): the
 * combine outputs of the group's members, each member's slice after the one
 * before. Absent: said in not_checked. 0 or an exit status. */
static int check_attn(const struct ep_ascend_ref *ref, const struct ep_oracle_manifest *m, const struct ep_routing *r,
		      const char *dir, int me, struct ep_check_report *rep, char *not_checked, size_t len)
{
	int tp = m->layer.tp, d = me / tp, rc;
	size_t H = (size_t)m->shape.hidden, rows = 0, at = 0;
	for (int i = 0; i < tp; i++)
		rows += (size_t)r->loaded[d * tp + i].num_tokens;
	struct ep_npy a;
	size_t want[2] = {rows, H};
	if ((rc = ep_oracle_load(dir, me, "attn_tp_gathered_x", EP_NPY_U2, 2, want, &a, 0)) == 1) {
		if (!listed(not_checked, "attn_tp_gathered_x")) {
			size_t n = strlen(not_checked);
			snprintf(not_checked + n, len - n, "%s%s", n ? ", " : "", "attn_tp_gathered_x");
		}
		return 0;
	}
	if (rc)
		return rc;
	uint16_t *w = malloc(2 * (H + 1));
	for (int i = 0; !rc && w && i < tp; i++)
		for (int t = 0, src = d * tp + i; !rc && t < r->loaded[src].num_tokens; t++, at++)
			if (!(rc = ep_ascend_ref_combined_row(ref, src, t, w)))
				ep_compare_row(rep, "attn_tp_gathered_x", EP_ELEM_BF16, w, (const uint16_t *)a.data + at * H, H,
					       (int64_t)at, src, t);
	rc = rc || !w ? EP_EXIT_ENV : 0;
	free(w);
	ep_npy_free(&a);
	return rc;
}

int ep_ascend_verify_rank(const struct ep_oracle_manifest *m, const struct ep_routing *r, const struct ep_npy *inputs,
			  int me, const char *dir, struct ep_check_report *rep, char *not_checked, size_t len)
{
	int R = m->shape.num_ranks;
	struct ep_ascend_params p;
	struct ep_ascend_ref ref;
	struct outputs o = {0};
	const float **smooth = calloc((size_t)R, sizeof(*smooth));
	if (!smooth)
		return EP_EXIT_ENV;
	for (int s = 0; s < R; s++)
		smooth[s] = inputs[(size_t)s * 6 + 1].data;
	ep_ascend_manifest_params(m, &p);
	struct ep_ascend_inputs in = {.routing = r, .smooth = m->ascend.smooth_scales, .shared_x = m->shape.num_bias > 0,
				      .smooth_of = smooth};
	int rc = ep_ascend_ref_init(&ref, &p, &m->shape, &in, me);
	if (rc) {
		free(smooth);
		return rc == -EINVAL ? (fprintf(stderr, "epbench verify: rank ids outside [-1, E) or repeated in a row\n"),
					EP_EXIT_USAGE) : ep_error_exit_code(rc);
	}
	if (!(rc = load_outputs(&ref, dir, me, &o))) {
		check_outputs(&ref, &o, rep);
		for (int i = 0; i < A_N; i++)
			if (!o.present[i] && (i != A_SCALES || p.quant) && !listed(not_checked, out_names[i])) {
				size_t n = strlen(not_checked);
				snprintf(not_checked + n, len - n, "%s%s", n ? ", " : "", out_names[i]);
			}
		if (m->layer.on && m->layer.tp > 1)
			rc = check_attn(&ref, m, r, dir, me, rep, not_checked, len);
	}
	outputs_free(&o);
	ep_ascend_ref_fini(&ref);
	free(smooth);
	return rc;
}
