/* golden.c - `epbench golden SUBCOMMAND OPTIONS --out DIR`: inputs and exact expected outputs of every rank.
 *
 * No rank process runs and nothing is communicated: for each rank in turn
 * the inputs are generated from the seed (as a run generates them) and the
 * expected outputs are what reference/ compares a run's outputs with,
 * captured row by row through the check hooks (reference/compare.h), so a
 * golden directory and a run's check can never disagree. Between dispatch
 * and combine the directory holds epbench's expert stand-in applied to the
 * expected dispatch outputs (combine_x, combine_topk_weights), the input
 * another library's combine must be given. Low-latency mode is written by
 * oracle_ll.c, --ep-semantics ascend by oracle_ascend.c (Ascend's names,
 * expert_outputs between the ops), a --parallel configuration's MoE layer
 * by golden_layer.c (Ascend's, moe_tp 1, by oracle_ascend.c on the slices,
 * attn_tp_gathered_x added; with MoE-TP by oracle_ascend_tp.c), on one
 * host or across nodes (--nodes, --ranks-per-node). Rank by rank: only one rank's
 * tensors are in memory. Everything is written into DIR.partial and renamed
 * to DIR at the end, so an interrupted or refused golden leaves no DIR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cli/budget.h"
#include "cli/command.h"
#include "cli/golden.h"
#include "cli/layer_figures.h"
#include "cli/low_latency.h"
#include "cli/normal_io.h"
#include "cli/oracle.h"
#include "cli/oracle_ascend_tp.h"
#include "cli/sweep.h"
#include "collectives/error.h"
#include "reference/routing_step.h"
#include "reports/atomic_file.h"
#include "reports/text_file.h"

int ep_golden_setup(int argc, char **argv, struct ep_golden *g, const char *verb, int want_out)
{
	char err[EP_TEXT_MAX];
	memset(g, 0, sizeof(*g));
	int n = 0;
	char **args = calloc((size_t)argc + 1, sizeof(char *));
	if (!args)
		return EP_EXIT_ENV;
	for (int i = 1; i < argc; i++) { /* argv[0] is the verb; --out DIR is ours */
		if (want_out && !strcmp(argv[i], "--out") && i + 1 < argc && !g->out)
			g->out = argv[++i];
		else
			args[n++] = argv[i];
	}
	g->argv = args, g->argc = n;
	if (n == 0 || !(g->cmd = ep_command_find(args[0])) || g->cmd->main)
		return fprintf(stderr, "epbench %s: want a subcommand that runs points (intranode, low-latency, internode)%s%s%s\n",
			       verb, n ? ", not '" : "", n ? ep_quote(args[0], err, sizeof(err)) : "", n ? "'" : ""),
		       EP_EXIT_USAGE;
	if (want_out && !g->out)
		return fprintf(stderr, "epbench %s: want --out DIR\n", verb), EP_EXIT_USAGE;
	int rc = ep_options_parse(&g->cmd->options, n, args, &g->o, stdout, err, sizeof(err));
	if (rc)
		return rc > 0 ? -1 : (fprintf(stderr, "epbench %s %s: %s\n", verb, g->cmd->name, err), EP_EXIT_USAGE);
	g->parsed = 1;
	return 0;
}

void ep_golden_free(struct ep_golden *g)
{
	if (g->parsed)
		ep_options_free(&g->o);
	ep_command_routing_free(&g->run.routing);
	free(g->argv);
	ep_oracle_manifest_free(&g->m);
}

/* The one point golden writes: ranks, nodes, shape, routing; checked. */
static int golden_point(struct ep_golden *g)
{
	struct ep_options *o = &g->o;
	char err[EP_TEXT_MAX];
	if (o->ranks.n > 1 || o->tokens.n > 1 || o->hidden.n > 1)
		return fprintf(stderr, "epbench golden: one point only (no sweeps of -r, -t or --hidden)\n"), EP_EXIT_USAGE;
	int R = o->ranks.v[0];
	if (o->nodes > 0 || o->ranks_per_node > 0) {
		if (o->nodes <= 0 || o->ranks_per_node <= 0)
			return fprintf(stderr, "epbench golden: across nodes, give --nodes N and --ranks-per-node P\n"),
			       EP_EXIT_USAGE;
		R = o->nodes * o->ranks_per_node;
		g->rpn = o->ranks_per_node;
		ep_options_set_world(o, R); /* a --parallel configuration resolves for this world */
	}
	struct ep_parallel par;
	g->ascend = o->ep_semantics == EP_SEM_ASCEND;
	g->layer = ep_options_layer(o, &par);
	if (g->ascend && g->layer && par.moe_comm != EP_MOE_A2A)
		return fprintf(stderr, "epbench golden: --ep-semantics ascend in allgather mode runs the deepep layer's phases (no EP "
				       "dispatch or combine): write its golden without --ep-semantics ascend\n"),
		       EP_EXIT_USAGE;
	g->ll = !strcmp(g->cmd->name, "low-latency");
	if (g->layer && !g->ascend && !g->ll && strcmp(g->cmd->name, g->rpn ? "internode" : "intranode"))
		return fprintf(stderr, "epbench golden: a --parallel configuration's MoE layer is written for intranode, internode "
				       "and low-latency\n"),
		       EP_EXIT_USAGE;
	if (g->layer && g->ll && o->eplb.redundant)
		return fprintf(stderr, "epbench golden low-latency: --redundant-experts in a low-latency layer's golden is not built "
				       "(the run takes it; golden writes no placement for it)\n"),
		       EP_EXIT_USAGE;
	if (!strcmp(g->cmd->name, "internode") && !g->rpn)
		return fprintf(stderr, "epbench golden: internode needs --nodes N and --ranks-per-node P\n"), EP_EXIT_USAGE;
	ep_options_run_cfg(o, &g->cfg);
	g->cfg.ranks_per_node = g->rpn;
	g->run = (struct ep_run){.cfg = &g->cfg};
	ep_options_shape(o, R, o->tokens.v[0], o->hidden.v[0], &g->run.shape);
	ep_command_routing(g->cmd, o, R, g->rpn ? o->nodes : 0, &g->run.routing);
	if (g->layer)
		g->run.parallel = par, g->run.attn_tokens = o->tokens.v[0];
	if (g->layer && g->ascend && ep_layer_slice_run(&g->run)) /* Ascend's EP group is the world: its ranks dispatch their slices */
		return fprintf(stderr, "epbench golden: out of memory\n"), EP_EXIT_ENV;
	/* rotating, trace: the step of the first iteration (a trace's STEP) */
	g->run.routing.step = ep_routing_step(&g->run.shape, &g->run.routing, 0);
	if (ep_options_check_shape(o, &g->run.shape, &g->run.routing, err, sizeof(err)) ||
	    (g->cmd->check && g->cmd->check(o, &g->run.shape, err, sizeof(err))))
		return fprintf(stderr, "epbench golden %s: %s\n", g->cmd->name, err), EP_EXIT_USAGE;
	return 0;
}

/* Bytes the directory will take (every rank's tensors, headers aside). */
static double disk_bytes(const struct ep_golden *g, const struct ep_normal_ref *ref)
{
	const struct ep_shape *s = &g->run.shape;
	double R = s->num_ranks, H = s->hidden, K = s->num_topk, E = s->num_experts, L = E / R;
	double S = ep_dtype_num_scales(s->dtype, s->hidden), row = (double)ep_dtype_row_bytes(s->dtype, s->hidden);
	double total = 0;
	for (int r = 0; r < s->num_ranks; r++) {
		double T = ep_routing_num_tokens(&g->run.routing, s->num_tokens, g->cfg.seed, r);
		double M = ref->in.base.recv_rows[r];
		total += T * (2 * H + 4 * S + 12 * K + 2 * H * s->num_bias + R + 2 * H + 4 * K) + 4 * (R + E + L + R * R);
		total += M * (row + 4 * S + 12 * K + 4 + 2 * H + 4 * K) + 22 * 128;
	}
	return total;
}

/* Refuses (exit 3, with the figures) a directory of need bytes that would
 * not fit the disk, or one rank's memory (bytes) that would not fit. */
static int fits(double need, size_t one, const char *dir)
{
	char msg[EP_TEXT_MAX];
	struct statvfs fs;
	if (statvfs(dir, &fs) == 0 && need > (double)fs.f_bavail * (double)fs.f_frsize)
		return fprintf(stderr, "epbench golden: the directory needs about %.2f GiB but %.2f GiB are free on its filesystem\n",
			       need / 1073741824.0, (double)fs.f_bavail * (double)fs.f_frsize / 1073741824.0), EP_EXIT_ENV;
	if (ep_budget_check(0, one, 1, msg, sizeof(msg)))
		return fprintf(stderr, "epbench golden: %s\n", msg), EP_EXIT_ENV;
	return 0;
}

/* Normal mode: the sizes from the reference of rank 0 (every rank's routing). */
static int golden_fits(const struct ep_golden *g, const struct ep_normal_ref *ref, const char *dir)
{
	size_t M = ep_reference_max_recv(&ref->in.base);
	return fits(disk_bytes(g, ref), ep_normal_rank_bytes(&g->run.shape, M) + M * (size_t)g->run.shape.hidden * 6, dir);
}

/* Before any reference is built: a floor of one rank's memory (every rank's
 * routing included) and of the disk (x and combined_x of every rank). */
static int golden_floor(const struct ep_golden *g)
{
	char msg[EP_TEXT_MAX];
	struct statvfs fs;
	const struct ep_shape *s = &g->run.shape;
	double disk = 4.0 * s->num_ranks * s->num_tokens * (double)s->hidden;
	if (statvfs(g->out_parent, &fs) == 0 && disk > (double)fs.f_bavail * (double)fs.f_frsize)
		return fprintf(stderr, "epbench golden: the directory needs more than %.2f GiB but %.2f GiB are free on its filesystem\n",
			       disk / 1073741824.0, (double)fs.f_bavail * (double)fs.f_frsize / 1073741824.0), EP_EXIT_ENV;
	if (ep_budget_check(0, ep_budget_rank_floor(s), 1, msg, sizeof(msg)))
		return fprintf(stderr, "epbench golden: %s\n", msg), EP_EXIT_ENV;
	return 0;
}

/* Where each expected tensor of rank me is captured. */
struct capture {
	struct { const char *name; void *base; } t[16];
	int n;
};

static void capture_row(void *ctx, const char *tensor, int64_t row, const void *data, size_t bytes)
{
	struct capture *c = ctx;
	for (int i = 0; i < c->n; i++)
		if (c->t[i].base && !strcmp(c->t[i].name, tensor))
			memcpy((char *)c->t[i].base + (size_t)row * bytes, data, bytes);
}

/* Expected dispatch outputs of rank me: buffers, owned by exp. */
struct expected {
	void *recv_x;
	float *scales, *topk_w, *cw;
	int64_t *topk_idx;
	int32_t *src, *per_expert, *prefix;
	uint16_t *cx;
};

static void expected_free(struct expected *e)
{
	free(e->recv_x), free(e->scales), free(e->topk_w), free(e->cw), free(e->topk_idx);
	free(e->src), free(e->per_expert), free(e->prefix), free(e->cx);
}

static int expected_alloc(const struct ep_shape *s, size_t M, struct expected *e, struct ep_dispatch_out *out)
{
	size_t H = (size_t)s->hidden, K = (size_t)s->num_topk, S = (size_t)ep_dtype_num_scales(s->dtype, s->hidden);
	size_t R = (size_t)s->num_ranks, L = (size_t)ep_local_experts(s);
	memset(e, 0, sizeof(*e));
	e->recv_x = calloc(M * ep_dtype_row_bytes(s->dtype, s->hidden) + 1, 1);
	e->scales = calloc(M * S + 1, sizeof(float));
	e->topk_idx = calloc(M * K + 1, sizeof(int64_t));
	e->topk_w = calloc(M * K + 1, sizeof(float));
	e->src = calloc(M + 1, sizeof(int32_t));
	e->per_expert = calloc(L + 1, sizeof(int32_t));
	e->prefix = calloc(R * R + 1, sizeof(int32_t));
	e->cx = calloc(M * H + 1, sizeof(uint16_t));
	e->cw = calloc(M * K + 1, sizeof(float));
	*out = (struct ep_dispatch_out){.num_recv = M, .recv_x = e->recv_x, .recv_x_scales = S ? e->scales : NULL,
					.recv_topk_idx = s->with_topk ? e->topk_idx : NULL,
					.recv_topk_weights = s->with_topk ? e->topk_w : NULL, .recv_src_idx = e->src,
					.num_recv_tokens_per_expert = e->per_expert, .rank_prefix_matrix = e->prefix};
	return e->recv_x && e->scales && e->topk_idx && e->topk_w && e->src && e->per_expert && e->prefix && e->cx &&
	       e->cw ? 0 : -ENOMEM;
}

static struct capture capture_of(struct ep_normal_io *io, const struct ep_dispatch_out *o)
{
	struct capture c = {.t = {
		{"num_tokens_per_rank", io->layout.num_tokens_per_rank},
		{"num_tokens_per_rdma_rank", io->layout.num_tokens_per_rdma_rank},
		{"num_tokens_per_expert", io->layout.num_tokens_per_expert},
		{"is_token_in_rank", io->layout.is_token_in_rank},
		{"rank_prefix_matrix", (void *)o->rank_prefix_matrix},
		{"num_recv_tokens_per_expert", (void *)o->num_recv_tokens_per_expert},
		{"recv_x", (void *)o->recv_x},
		{"recv_x_scales", (void *)o->recv_x_scales},
		{"recv_src_idx", (void *)o->recv_src_idx},
		{"recv_topk_idx", (void *)o->recv_topk_idx},
		{"recv_topk_weights", (void *)o->recv_topk_weights},
		{"combined_x", io->combined_x},
		{"combined_topk_weights", io->combined_w},
	}, .n = 13};
	return c;
}

/* Rank me of a normal-mode golden: generate, capture, apply the experts, write. */
static int normal_rank(struct ep_golden *g, int me, const char *dir)
{
	struct ep_normal_ref ref;
	struct ep_normal_io io;
	struct expected e = {0};
	struct ep_dispatch_out out;
	int rc = ep_normal_ref_init(&ref, &g->run.shape, &g->run.routing, g->cfg.seed, me, g->rpn);
	if (rc)
		return rc;
	rc = ep_normal_io_init(&io, &g->run, me, ep_reference_topk_idx(&ref.in.base, me),
			       ep_reference_topk_weights(&ref.in.base, me), g->rpn);
	if (!rc && !(rc = expected_alloc(&io.shape, ref.in.base.num_recv, &e, &out))) {
		struct capture c = capture_of(&io, &out);
		struct ep_check_hooks hooks = {.ctx = &c, .expected = capture_row};
		struct ep_check_report rep;
		ep_report_init(&rep, g->run.shape.num_ranks, NULL);
		rep.hooks = &hooks;
		ep_normal_ref_check(&ref, &io.layout, &out, io.combined_x, io.combined_w, &rep);
		io.out = out;
		ep_normal_io_apply_experts(&io, e.cx, e.cw);
		rc = rep.wrong_elems ? -EIO : ep_normal_io_dump(&io, dir, e.cx, e.cw);
	}
	expected_free(&e);
	ep_normal_io_fini(&io); /* safe after a failed init: it leaves io empty */
	ep_normal_ref_fini(&ref);
	return rc;
}

/* Redundant experts: the router's logical ids of rank me and the placement
 * that made them physical (phy2log [P], logcnt [E], log2phy [E][maxcnt],
 * the same in every rank's folder), so that a library given the logical
 * ids and the map can be held to the physical ids in topk_idx. */
static int placement_rank(struct ep_golden *g, int me, const char *dir)
{
	const struct ep_placement *pl = g->run.routing.placement;
	if (!pl)
		return 0;
	struct ep_shape ls = g->run.shape;
	struct ep_routing lr = g->run.routing;
	size_t T = (size_t)ls.num_tokens, K = (size_t)ls.num_topk;
	ls.num_experts = pl->logical, lr.placement = NULL;
	int64_t *ids = malloc(sizeof(int64_t) * (T * K + 1));
	float *w = malloc(sizeof(float) * (T * K + 1));
	int rc = ids && w ? ep_gen_routing(&ls, &lr, g->cfg.seed, me, ids, w) : -ENOMEM;
	size_t Tr = (size_t)ep_routing_num_tokens(&lr, ls.num_tokens, g->cfg.seed, me);
	struct ep_npy_item t[] = {
		{"topk_idx_logical", EP_NPY_I8, Tr, K, 2, ids},
		{"phy2log", EP_NPY_I4, (size_t)pl->physical, 0, 1, pl->phy2log},
		{"logcnt", EP_NPY_I4, (size_t)pl->logical, 0, 1, pl->logcnt},
		{"log2phy", EP_NPY_I4, (size_t)pl->logical, (size_t)pl->maxcnt, 2, pl->log2phy},
	};
	if (!rc)
		rc = ep_npy_write_items(dir, me, t, (int)(sizeof(t) / sizeof(t[0])));
	free(ids);
	free(w);
	return rc;
}

/* Every .npy of rank me's folder that the dump layout names, into the manifest. */
static int add_rank(struct ep_golden *g, const char *dir, int me)
{
	static const char *const deepep[] = {
		"x", "x_scales", "topk_idx", "topk_weights", "bias_0", "bias_1", "num_tokens_per_rank",
		"num_tokens_per_rdma_rank", "num_tokens_per_expert", "is_token_in_rank", "rank_prefix_matrix",
		"num_recv_tokens_per_expert", "recv_x", "recv_x_scales", "recv_src_idx", "recv_topk_idx",
		"recv_topk_weights", "combine_x", "combine_topk_weights", "combined_x", "combined_topk_weights",
		"packed_recv_x", "packed_recv_x_scales", "packed_recv_count", "packed_recv_src_info",
		"packed_recv_layout_range", "topk_idx_logical", "phy2log", "logcnt", "log2phy", NULL};
	const char *const *names = g->ascend ? ep_ascend_tensor_names : deepep;
	char path[8192];
	struct stat st;
	for (size_t i = 0; names[i]; i++) {
		snprintf(path, sizeof(path), "%s/rank%d/%s.npy", dir, me, names[i]);
		if (stat(path, &st))
			continue;
		int rc = ep_oracle_add(&g->m, dir, me, names[i], ep_oracle_role_of(names[i], g->ascend));
		if (rc)
			return rc;
	}
	return 0;
}

/* The manifest's header: subcommand, shape, payload, seed. */
static void manifest_head(struct ep_golden *g)
{
	struct ep_oracle_manifest *m = &g->m;
	size_t n = 0;
	snprintf(m->subcommand, sizeof(m->subcommand), "%s", g->cmd->name);
	n = (size_t)snprintf(m->command_line, sizeof(m->command_line), "epbench golden");
	for (int i = 0; i < g->argc && n < sizeof(m->command_line); i++)
		n += (size_t)snprintf(m->command_line + n, sizeof(m->command_line) - n, " %s", g->argv[i]);
	m->shape = g->run.shape;
	m->ranks_per_node = g->rpn;
	m->payload = g->run.routing.payload;
	m->seed = g->cfg.seed;
	if (g->ascend)
		m->ascend = (struct ep_oracle_ascend){1, g->cfg.shared_experts, g->cfg.shared_expert_ranks,
						      g->cfg.smooth_scales, g->cfg.comm_quant};
	if (g->layer)
		ep_golden_layer_head(g);
	if (g->ll) {
		struct ep_ll_config c;
		ep_ll_run_config(&g->run, g->rpn ? g->rpn : g->run.shape.num_ranks, &c);
		m->ll_max_tokens = c.max_tokens, m->ll_round_scale = c.round_scale, m->ll_ue8m0 = c.use_ue8m0;
	}
}

/* DIR must not exist yet (or be an empty folder); its parent must. */
static int check_out(struct ep_golden *g, char *partial, size_t len)
{
	struct stat st;
	char q[256];
	const char *slash = strrchr(g->out, '/');
	snprintf(g->out_parent, sizeof(g->out_parent), "%.*s", slash ? (int)(slash - g->out) + (slash == g->out) : 1,
		 slash ? g->out : ".");
	if (!g->out[0] || stat(g->out_parent, &st) || !S_ISDIR(st.st_mode))
		return fprintf(stderr, "epbench golden: --out '%s': its parent folder does not exist\n",
			       ep_quote(g->out, q, sizeof(q))), EP_EXIT_USAGE;
	if (stat(g->out, &st) == 0 && (!S_ISDIR(st.st_mode) || rmdir(g->out)))
		return fprintf(stderr, "epbench golden: --out '%s' exists and is not an empty folder\n",
			       ep_quote(g->out, q, sizeof(q))), EP_EXIT_USAGE;
	snprintf(partial, len, "%s.partial", g->out);
	if (stat(partial, &st) == 0)
		return fprintf(stderr, "epbench golden: '%s' is left from an earlier golden; remove it\n",
			       ep_quote(partial, q, sizeof(q))), EP_EXIT_USAGE;
	return 0;
}

static int write_all(struct ep_golden *g, const char *partial)
{
	int rc = ep_mkdir_p(partial);
	if (!rc && g->layer && (!g->ascend || g->run.parallel.v[EP_PAR_MOE_TP] > 1)) {
		rc = g->ascend ? ep_ascend_tp_golden(g, partial) : g->ll ? ep_golden_ll_layer(g, partial)
								 : ep_golden_layer(g, partial);
		if (!rc)
			rc = ep_oracle_write_manifest(&g->m, partial);
		return rc ? rc : rename(partial, g->out) ? -errno : 0;
	}
	for (int me = 0; !rc && me < g->run.shape.num_ranks; me++)
		if (!(rc = g->ll ? ep_ll_golden_rank(&g->run, g->rpn, me, partial)
			     : g->ascend ? ep_ascend_golden_rank(&g->run, me, partial) : normal_rank(g, me, partial)))
			rc = placement_rank(g, me, partial);
	for (int me = 0; !rc && g->layer && me < g->run.shape.num_ranks; me++) /* Ascend's layer: every combine first */
		rc = ep_golden_ascend_attn(g, me, partial);
	for (int me = 0; !rc && me < g->run.shape.num_ranks; me++)
		rc = add_rank(g, partial, me);
	if (!rc)
		rc = ep_oracle_write_manifest(&g->m, partial);
	return rc ? rc : rename(partial, g->out) ? -errno : 0;
}

static int golden_main(const struct ep_command *self, int argc, char **argv)
{
	struct ep_golden g;
	struct ep_normal_ref ref;
	char partial[4200];
	(void)self;
	int64_t t0 = ep_now_ns();
	int code = ep_golden_setup(argc, argv, &g, "golden", 1);
	if (!code)
		code = golden_point(&g);
	if (!code)
		code = check_out(&g, partial, sizeof(partial));
	if (!code)
		code = golden_floor(&g);
	if (!code && g.ascend) {
		size_t one;
		double need = ep_ascend_golden_bytes(&g.run, &one);
		code = fits(need, one, g.out_parent);
	}
	if (!code && !g.ll && !g.ascend && !g.layer && !(code = ep_error_exit_code(ep_normal_ref_init(&ref, &g.run.shape, &g.run.routing,
									      g.cfg.seed, 0, g.rpn)))) {
		code = golden_fits(&g, &ref, g.out_parent);
		ep_normal_ref_fini(&ref);
	}
	if (!code) {
		manifest_head(&g);
		int rc = write_all(&g, partial);
		if (rc) {
			fprintf(stderr, "epbench golden: writing '%s' failed: %s\n", partial, ep_strerror(rc));
			code = EP_EXIT_ENV;
		} else {
			printf("# golden %s%s: %d ranks, %d tensors in %s (%.1f s)\n", g.cmd->name,
			       g.ascend ? " --ep-semantics ascend" : "", g.run.shape.num_ranks,
			       g.m.ntensors, g.out, (double)(ep_now_ns() - t0) * 1e-9);
		}
	}
	ep_golden_free(&g);
	return code < 0 ? EP_EXIT_OK : code;
}

const struct ep_command ep_cmd_golden = {
	.name = "golden",
	.help = "write every rank's inputs and exact expected outputs (reference/ only, no ranks run) for another library",
	.main = golden_main,
};
