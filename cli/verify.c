/* verify.c - `epbench verify SUBCOMMAND DIR`: another library's outputs against reference/, byte for byte.
 *
 * The inputs are read from the directory itself (any payload, any routing,
 * -1 entries included, not only what the seed makes); every expected output
 * is computed from them by reference/ and compared with the outputs
 * present, with a run's mismatch report, wrong-rows matrix and exit
 * statuses. Outputs a library did not write are listed as not checked,
 * never as passed. The manifest (from `epbench golden`) gives the shape and
 * options; inputs whose SHA-256 differs from it are named (the
 * expectations follow the files as they are, so a corrupted input shows as
 * the outputs it changes). Normal mode (intranode, internode with its
 * node-wise double rounding, int8, counts or prefix sums) here; low-latency
 * in oracle_ll.c, exact or, with --ll-order any, per expert as a set;
 * --ep-semantics ascend in oracle_ascend.c (named on the command line as
 * the manifest says, its handle tensors on the footer's handles line and
 * the first wrong one named); a --parallel MoE layer's directory in
 * verify_layer.c, phase by phase (Ascend's with MoE-TP in oracle_ascend_tp.c). With redundant experts every rank's
 * physical ids are held to phy2log before any output is compared (a
 * library's own replica choice passes when it maps to golden's logical
 * experts; the outputs are then expected for that choice).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/command.h"
#include "cli/golden.h"
#include "cli/oracle.h"
#include "cli/oracle_ascend_tp.h"
#include "collectives/error.h"
#include "reports/digest.h"
#include "reports/npy.h"
#include "reports/report.h"
#include "reports/text_file.h"

#define TENSOR_MAX ((size_t)1 << 40)

struct verify {
	const char *sub, *dir;
	int ll, order_any;               /* low-latency; --ll-order any */
	int ascend;                      /* --ep-semantics ascend (cli/oracle_ascend.c) */
	struct ep_oracle_manifest m;
	struct ep_routing routing;
	struct ep_loaded_rank *loaded;   /* [R] */
	struct ep_npy *inputs;           /* [R][6]: x, x_scales, topk_idx, topk_weights, bias_0, bias_1 (or Ascend's) */
	char not_checked[2048];
	int changed_inputs;
	char changed[EP_TEXT_MAX];
	char handle_first[EP_TEXT_MAX]; /* the first wrong element of a handle tensor, formatted */
};

/* One line naming what is wrong, and the value quoted. Exit 2. */
static int usage_line(const char *what, const char *value, const char *after)
{
	char q[256];
	fprintf(stderr, "epbench verify: %s%s%s%s%s\n", what, value ? " '" : "", value ? ep_quote(value, q, sizeof(q)) : "",
		value ? "'" : "", after ? after : "");
	return EP_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct verify *v)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return printf("usage: epbench verify SUBCOMMAND DIR [--ll-order exact|any] [--ep-semantics deepep|ascend]\n\n"
				      "Reads every rank's inputs from DIR (as `epbench golden` writes them), computes the\n"
				      "expected outputs with reference/ and compares the outputs present byte for byte\n"
				      "(a --parallel configuration's MoE layer: phase by phase, the first wrong one named).\n\n"
				      "  --ll-order any   low-latency: compare each expert's rows as a set keyed by source\n"
				      "                   rank and packed_recv_src_info (DeepEP's order depends on timing)\n"
				      "  --ep-semantics ascend  intranode, internode: Ascend's dispatch_v2/combine_v2 tensors (as the\n"
				      "                   golden was written with); deepep, the default, DeepEP's\n"), -1;
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(a, "--ll-order")) {
			if (strcmp(next, "any") && strcmp(next, "exact"))
				return usage_line("--ll-order wants exact or any, not", next, NULL);
			v->order_any = !strcmp(argv[++i], "any");
		} else if (!strcmp(a, "--ep-semantics")) {
			if (strcmp(next, "ascend") && strcmp(next, "deepep"))
				return usage_line("--ep-semantics wants deepep or ascend, not", next, NULL);
			v->ascend = !strcmp(argv[++i], "ascend");
		} else if (a[0] == '-') {
			return usage_line("unknown option", a, NULL);
		} else if (!v->sub) {
			v->sub = a;
		} else if (!v->dir) {
			v->dir = a;
		} else {
			return usage_line("unexpected argument", a, NULL);
		}
	}
	if (!v->dir)
		return usage_line("want SUBCOMMAND DIR (see epbench verify --help)", NULL, NULL);
	const struct ep_command *cmd = ep_command_find(v->sub);
	if (!cmd || cmd->main)
		return usage_line("not a subcommand that runs points:", v->sub, " (intranode, internode)");
	return 0;
}

/* The SHA-256 of rank/name.npy against the manifest's, if it lists it. */
static void check_hash(struct verify *v, int rank, const char *name)
{
	if (ep_oracle_hash_differs(&v->m, v->dir, rank, name) && v->changed_inputs++ < 4) {
		size_t n = strlen(v->changed);
		snprintf(v->changed + n, sizeof(v->changed) - n, "%srank%d/%s.npy", n ? ", " : "", rank, name);
	}
}

static const char *const deepep_inputs[6] = {"x", "x_scales", "topk_idx", "topk_weights", "bias_0", "bias_1"};

/* Every topk_idx entry is an expert id or -1 (the reference indexes with them). */
static int check_ids(const struct ep_npy *idx, int rank, int E)
{
	const int64_t *p = idx->data;
	for (size_t i = 0; i < idx->count; i++)
		if (p[i] < -1 || p[i] >= E)
			return fprintf(stderr, "epbench verify: rank%d/topk_idx.npy has %lld at [%zu][%zu], outside [-1, %d)\n",
				       rank, (long long)p[i], i / idx->shape[1], i % idx->shape[1], E), EP_EXIT_USAGE;
	return 0;
}

/* Rank r's inputs into v->inputs[r][...] and v->loaded[r]. */
static int load_rank_inputs(struct verify *v, int r)
{
	const struct ep_shape *s = &v->m.shape;
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk, S = (size_t)s->hidden / 128;
	struct ep_npy *in = &v->inputs[(size_t)r * 6];
	int fp8 = s->dtype == EP_DTYPE_FP8 && !v->ll, rc; /* low-latency takes BF16 x and casts it itself */
	size_t xs[2] = {0, H};
	if ((rc = ep_oracle_load(v->dir, r, "x", fp8 ? EP_NPY_U1 : EP_NPY_U2, 2, xs, &in[0], 1)))
		return rc;
	size_t T = in[0].shape[0], tk[2] = {T, K}, ts[2] = {T, S}, th[2] = {T, H};
	if (T > (size_t)s->num_tokens)
		return fprintf(stderr, "epbench verify: rank%d/x.npy has %zu tokens, more than the manifest's %d\n", r, T,
			       s->num_tokens), EP_EXIT_USAGE;
	if ((fp8 && (rc = ep_oracle_load(v->dir, r, "x_scales", EP_NPY_F4, 2, ts, &in[1], 1))) ||
	    (rc = ep_oracle_load(v->dir, r, "topk_idx", EP_NPY_I8, 2, tk, &in[2], 1)) ||
	    (rc = ep_oracle_load(v->dir, r, "topk_weights", EP_NPY_F4, 2, tk, &in[3], 1)) || (rc = check_ids(&in[2], r, s->num_experts)))
		return rc;
	for (int b = 0; b < s->num_bias; b++)
		if ((rc = ep_oracle_load(v->dir, r, deepep_inputs[4 + b], EP_NPY_U2, 2, th, &in[4 + b], 1)))
			return rc;
	v->loaded[r] = (struct ep_loaded_rank){.num_tokens = (int)T, .x = in[0].data, .x_scales = in[1].data,
					       .topk_idx = in[2].data, .topk_weights = in[3].data,
					       .bias = {in[4].data, in[5].data}};
	return 0;
}

static int load_inputs(struct verify *v)
{
	int R = v->m.shape.num_ranks, rc = 0;
	v->loaded = calloc((size_t)R, sizeof(*v->loaded));
	v->inputs = calloc((size_t)R * 6, sizeof(*v->inputs));
	if (!v->loaded || !v->inputs)
		return EP_EXIT_ENV;
	const char *const *names = v->ascend ? ep_ascend_input_names : deepep_inputs;
	for (int r = 0; r < R && !rc; r++) {
		struct ep_npy *in = &v->inputs[(size_t)r * 6];
		rc = v->ascend ? ep_ascend_load_inputs(&v->m, v->dir, r, in, &v->loaded[r]) : load_rank_inputs(v, r);
		for (int i = 0; !rc && i < 6; i++)
			if (in[i].data && names[i])
				check_hash(v, r, names[i]);
	}
	v->routing = (struct ep_routing){.loaded = v->loaded, .payload = v->m.payload};
	return rc;
}

/* One rank's outputs as the directory holds them; absent ones point at zeros. */
enum { O_NTPR, O_RDMA, O_NTPE, O_ITIR, O_RPM, O_NRTPE, O_RX, O_RXS, O_RSRC, O_RIDX, O_RW, O_CX, O_CW, O_N };
static const char *const out_names[O_N] = {
	"num_tokens_per_rank", "num_tokens_per_rdma_rank", "num_tokens_per_expert", "is_token_in_rank",
	"rank_prefix_matrix", "num_recv_tokens_per_expert", "recv_x", "recv_x_scales", "recv_src_idx",
	"recv_topk_idx", "recv_topk_weights", "combined_x", "combined_topk_weights"};

struct outputs {
	struct ep_npy t[O_N];
	int present[O_N], wanted[O_N];
	void *zeros;
};

static int skip_absent(void *ctx, const char *tensor)
{
	const struct outputs *o = ctx;
	for (int i = 0; i < O_N; i++)
		if (!strcmp(out_names[i], tensor))
			return !o->present[i];
	return 0;
}

static void outputs_free(struct outputs *o)
{
	for (int i = 0; i < O_N; i++)
		ep_npy_free(&o->t[i]);
	free(o->zeros);
}

/* The dtype, dims and fixed sizes of each output (0: rows, any count). */
static void output_specs(const struct ep_shape *s, int rpn, size_t T, enum ep_npy_dtype *d, int *nd, size_t (*w)[2],
			 int *wanted)
{
	size_t R = (size_t)s->num_ranks, H = (size_t)s->hidden, K = (size_t)s->num_topk, E = (size_t)s->num_experts;
	size_t S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	enum ep_npy_dtype rx = s->dtype == EP_DTYPE_BF16 ? EP_NPY_U2 : s->dtype == EP_DTYPE_FP8 ? EP_NPY_U1 : EP_NPY_I1;
	const struct { enum ep_npy_dtype d; int nd; size_t a, b; int want; } spec[O_N] = {
		{EP_NPY_I4, 1, R, 0, 1}, {EP_NPY_I4, 1, rpn ? R / (size_t)rpn : 0, 0, rpn > 0},
		{EP_NPY_I4, 1, E, 0, 1}, {EP_NPY_BOOL, 2, T, R, 1}, {EP_NPY_I4, 2, R, R, 1},
		{EP_NPY_I4, 1, E / R, 0, 1}, {rx, 2, 0, H, 1}, {EP_NPY_F4, 2, 0, S, S > 0},
		{EP_NPY_I4, 1, 0, 0, 1}, {EP_NPY_I8, 2, 0, K, s->with_topk}, {EP_NPY_F4, 2, 0, K, s->with_topk},
		{EP_NPY_U2, 2, T, H, 1}, {EP_NPY_F4, 2, T, K, s->with_topk},
	};
	for (int i = 0; i < O_N; i++)
		d[i] = spec[i].d, nd[i] = spec[i].nd, w[i][0] = spec[i].a, w[i][1] = spec[i].b, wanted[i] = spec[i].want;
}

/* Loads rank me's outputs; recv tensors must agree on their row count. */
static int load_outputs(const struct verify *v, int me, size_t T, size_t M, struct outputs *o)
{
	const struct ep_shape *s = &v->m.shape;
	enum ep_npy_dtype d[O_N];
	int nd[O_N], rc;
	size_t w[O_N][2], rows = (size_t)-1;
	memset(o, 0, sizeof(*o));
	output_specs(s, v->m.ranks_per_node, T, d, nd, w, o->wanted);
	for (int i = 0; i < O_N; i++) {
		if (!o->wanted[i])
			continue;
		if ((rc = ep_oracle_load(v->dir, me, out_names[i], d[i], nd[i], w[i], &o->t[i], 0)) > 1 || rc < 0)
			return rc;
		o->present[i] = rc == 0;
		if (o->present[i] && i >= O_RX && i <= O_RW && rows != (size_t)-1 && o->t[i].shape[0] != rows)
			return fprintf(stderr, "epbench verify: rank%d/%s.npy has %zu rows, other recv tensors %zu\n", me,
				       out_names[i], o->t[i].shape[0], rows), EP_EXIT_USAGE;
		if (o->present[i] && i >= O_RX && i <= O_RW)
			rows = o->t[i].shape[0];
	}
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk, R = (size_t)s->num_ranks, E = (size_t)s->num_experts;
	size_t big = (M + T + R + E) * (H * 2 + K * 8 + 8) + R * R * 4 + 64;
	return (o->zeros = calloc(big, 1)) ? 0 : EP_EXIT_ENV;
}

/* What rank me's checks compare: each present tensor, else zeros. */
static const void *arr(const struct outputs *o, int i)
{
	return o->present[i] ? o->t[i].data : o->zeros;
}

/* Checks rank me into rep; adds the absent tensors to v->not_checked. */
static int check_rank(struct verify *v, int me, struct ep_check_report *rep)
{
	struct ep_normal_ref ref;
	struct outputs o;
	int rc = ep_normal_ref_init(&ref, &v->m.shape, &v->routing, 0, me, v->m.ranks_per_node);
	if (rc)
		return ep_error_exit_code(rc);
	size_t T = (size_t)v->loaded[me].num_tokens, M = ref.in.base.num_recv;
	if (!(rc = load_outputs(v, me, T, M, &o))) {
		size_t rows = o.present[O_RX] ? o.t[O_RX].shape[0] : o.present[O_RSRC] ? o.t[O_RSRC].shape[0] : M;
		struct ep_layout lay = {(int32_t *)arr(&o, O_NTPR), (int32_t *)arr(&o, O_RDMA), (int32_t *)arr(&o, O_NTPE),
					(uint8_t *)arr(&o, O_ITIR)};
		struct ep_dispatch_out out = {
			.num_recv = rows, .recv_x = arr(&o, O_RX), .recv_x_scales = arr(&o, O_RXS),
			.recv_topk_idx = v->m.shape.with_topk ? arr(&o, O_RIDX) : NULL,
			.recv_topk_weights = v->m.shape.with_topk ? arr(&o, O_RW) : NULL, .recv_src_idx = arr(&o, O_RSRC),
			.num_recv_tokens_per_expert = arr(&o, O_NRTPE), .rank_prefix_matrix = arr(&o, O_RPM)};
		struct ep_check_hooks hooks = {.ctx = &o, .skip = skip_absent};
		rep->hooks = &hooks;
		ep_normal_ref_check(&ref, &lay, &out, arr(&o, O_CX), arr(&o, O_CW), rep);
		rep->hooks = NULL;
		for (int i = 0; i < O_N; i++)
			if (o.wanted[i] && !o.present[i] && !strstr(v->not_checked, out_names[i])) {
				size_t n = strlen(v->not_checked);
				snprintf(v->not_checked + n, sizeof(v->not_checked) - n, "%s%s", n ? ", " : "", out_names[i]);
			}
	}
	outputs_free(&o);
	ep_normal_ref_fini(&ref);
	return rc;
}

/* Low-latency rank me: the collective's shape from the manifest. */
static int ll_rank(struct verify *v, int me, struct ep_check_report *rep)
{
	const struct ep_shape *s = &v->m.shape;
	struct ep_ll_config c = {.num_ranks = s->num_ranks, .hidden = s->hidden, .num_topk = s->num_topk,
				 .num_experts = s->num_experts, .max_tokens = v->m.ll_max_tokens, .dtype = s->dtype,
				 .round_scale = v->m.ll_round_scale, .use_ue8m0 = v->m.ll_ue8m0,
				 .ranks_per_node = v->m.ranks_per_node ? v->m.ranks_per_node : s->num_ranks};
	if (c.max_tokens < 1 || (s->dtype == EP_DTYPE_FP8 && s->hidden % 128) || (c.use_ue8m0 && s->hidden % 512))
		return usage_line("the manifest's low-latency shape does not hold", NULL, NULL);
	return ep_ll_verify_rank(&c, &v->routing, s->num_tokens, me, v->dir, v->order_any, rep, v->not_checked,
				 sizeof(v->not_checked));
}

/* Every rank checked; the result as a run reports it. */
static int verify_all(struct verify *v)
{
	int R = v->m.shape.num_ranks, rc = 0;
	uint64_t *by_src = calloc((size_t)R, sizeof(uint64_t)), *matrix = calloc((size_t)R * (size_t)R, sizeof(uint64_t));
	struct ep_point pt = {.ranks = R, .tokens = v->m.shape.num_tokens, .hidden = v->m.shape.hidden};
	if (!by_src || !matrix)
		return free(by_src), free(matrix), EP_EXIT_ENV;
	pt.res.checked = 1;
	for (int me = 0; me < R && !rc && !v->ll && !v->ascend; me++) { /* a library's replica choice, before any output */
		struct ep_check_report rep;
		ep_report_init(&rep, R, NULL);
		rc = ep_oracle_check_replicas(v->dir, me, v->loaded[me].topk_idx, (size_t)v->loaded[me].num_tokens,
					      (size_t)v->m.shape.num_topk, &rep);
		pt.res.checked_bytes += rep.checked_bytes, pt.res.wrong_elems += rep.wrong_elems;
		pt.res.wrong_rows += rep.wrong_rows;
		if (rep.has_first && !pt.res.first_mismatch[0]) {
			char line[EP_TEXT_MAX - 16];
			ep_mismatch_format(&rep.first, line, sizeof(line));
			snprintf(pt.res.first_mismatch, sizeof(pt.res.first_mismatch), "rank %d: %.*s", me,
				 (int)sizeof(pt.res.first_mismatch) - 24, line);
		}
	}
	for (int me = 0; me < R && !rc; me++) {
		struct ep_check_report rep;
		ep_report_init(&rep, R, by_src);
		rc = v->ll ? ll_rank(v, me, &rep)
		     : v->ascend ? ep_ascend_verify_rank(&v->m, &v->routing, v->inputs, me, v->dir, &rep, v->not_checked,
							 sizeof(v->not_checked))
				 : check_rank(v, me, &rep);
		pt.res.checked_bytes += rep.checked_bytes, pt.res.wrong_elems += rep.wrong_elems;
		pt.res.wrong_rows += rep.wrong_rows;
		pt.res.handle_checked_bytes += rep.handle_checked_bytes, pt.res.handle_wrong_elems += rep.handle_wrong_elems;
		if (rep.has_handle_first && !v->handle_first[0]) {
			char line[EP_TEXT_MAX - 16];
			ep_mismatch_format(&rep.handle_first, line, sizeof(line));
			snprintf(v->handle_first, sizeof(v->handle_first), "rank %d: %.*s", me,
				 (int)sizeof(v->handle_first) - 24, line);
		}
		for (int s = 0; s < R; s++)
			matrix[(size_t)s * R + me] = by_src[s];
		if (rep.has_first && !pt.res.first_mismatch[0]) {
			char line[EP_TEXT_MAX - 16];
			ep_mismatch_format(&rep.first, line, sizeof(line));
			snprintf(pt.res.first_mismatch, sizeof(pt.res.first_mismatch), "rank %d: %.*s", me,
				 (int)sizeof(pt.res.first_mismatch) - 24, line);
		}
	}
	pt.res.wrong_matrix = matrix;
	pt.res.exit_code = rc ? rc : pt.res.wrong_elems ? EP_EXIT_WRONG : EP_EXIT_OK;
	if (!rc && !pt.res.checked_bytes)
		pt.res.exit_code = (fprintf(stderr, "epbench verify: no output tensor in '%s' to compare\n", v->dir),
				    EP_EXIT_USAGE);
	if (!rc && pt.res.checked_bytes) {
		if (v->changed_inputs)
			printf("# inputs: %d file%s differ from the manifest's SHA-256 (expectations follow the files): %s%s\n",
			       v->changed_inputs, v->changed_inputs == 1 ? "" : "s", v->changed, v->changed_inputs > 4 ? ", ..." : "");
		printf("# not checked (absent): %s\n", v->not_checked[0] ? v->not_checked : "nothing");
		if (v->handle_first[0]) /* the footer's handles line counts them; this names the first */
			printf("# handles: first wrong: %s\n", v->handle_first);
		ep_table_footer(stdout, &pt, 1, 1, NULL);
	}
	free(by_src), free(matrix);
	return pt.res.exit_code;
}

static int verify_main(const struct ep_command *self, int argc, char **argv)
{
	struct verify v = {0};
	char err[EP_TEXT_MAX];
	(void)self;
	int code = parse(argc, argv, &v);
	if (code)
		return code < 0 ? EP_EXIT_OK : code;
	if (ep_oracle_read_manifest(v.dir, &v.m, err, sizeof(err)))
		return fprintf(stderr, "epbench verify: %s\n", err), EP_EXIT_USAGE;
	if (strcmp(v.m.subcommand, v.sub))
		code = usage_line("the directory holds golden data of", v.m.subcommand, ", not of the subcommand named");
	else if (v.ascend != v.m.ascend.on)
		code = usage_line(v.m.ascend.on ? "the directory holds golden data of --ep-semantics ascend (Ascend's tensors); add --ep-semantics ascend"
						: "the directory holds golden data of DeepEP's semantics, not of --ep-semantics ascend",
				  NULL, NULL);
	else if (v.order_any && strcmp(v.sub, "low-latency"))
		code = usage_line("--ll-order is for low-latency; normal mode's order is defined and always exact", NULL,
				  NULL);
	v.ll = !strcmp(v.sub, "low-latency");
	if (!code && v.m.layer.on && (!v.ascend || v.m.layer.moe_tp > 1)) {
		code = v.ascend ? ep_ascend_tp_verify(&v.m, v.dir)
		       : v.ll	? ep_verify_ll_layer(&v.m, v.dir, v.order_any)
				: ep_verify_layer(&v.m, v.dir);
		ep_oracle_manifest_free(&v.m);
		return code;
	}
	if (!code && !(code = load_inputs(&v))) {
		const struct ep_shape *s = &v.m.shape;
		printf("# epbench verify %s%s %s: %d ranks, %d tokens, hidden %d, top-%d of %d experts, dtype %s, payload %s\n",
		       v.sub, v.ascend ? " --ep-semantics ascend" : "", v.dir, s->num_ranks, s->num_tokens, s->hidden, s->num_topk, s->num_experts,
		       ep_dtype_name(s->dtype), ep_payload_name(v.m.payload));
		printf("# inputs read from the directory; expected outputs computed by reference/ (golden: %s)\n",
		       v.m.command_line);
		code = verify_all(&v);
	}
	for (int i = 0; v.inputs && i < v.m.shape.num_ranks * 6; i++)
		ep_npy_free(&v.inputs[i]);
	free(v.inputs);
	free(v.loaded);
	ep_oracle_manifest_free(&v.m);
	return code;
}

const struct ep_command ep_cmd_verify = {
	.name = "verify",
	.help = "check another library's outputs in a golden directory against reference/, byte for byte",
	.main = verify_main,
};
