/* sweep.c - the one sweep driver (see sweep.h). */
#include "cli/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/generalised.h"
#include "cli/hostinfo.h"
#include "cli/layer_figures.h"
#include "cli/limits.h"
#include "cli/progress.h"
#include "collectives/error.h"
#include "collectives/simd.h"
#include "reference/moe_slice.h"
#include "reference/placement.h"
#include "reference/routing_step.h"
#include "reports/digest.h"
#include "reports/provenance.h"
#include "reports/result_json.h"

#ifndef EP_VERSION
#define EP_VERSION "dev"
#endif

void ep_command_default_routing(const struct ep_options *o, int ranks, int nodes, struct ep_routing *r)
{
	(void)nodes;
	*r = o->routing;
	if (o->num_topk_groups && !o->num_groups)
		r->num_groups = ranks; /* one group per rank */
}

const struct ep_command *ep_command_for(const struct ep_command *cmd, const struct ep_options *o,
					struct ep_command *out)
{
	if (!cmd->variant_for)
		return cmd;
	*out = *cmd;
	out->variant = cmd->variant_for(o);
	return out;
}

void ep_command_routing(const struct ep_command *cmd, const struct ep_options *o, int ranks, int nodes,
			struct ep_routing *r)
{
	(cmd->routing ? cmd->routing : ep_command_default_routing)(o, ranks, nodes, r);
	struct ep_parallel p; /* a MoE layer places experts on the ranks of an EP group */
	int per_node = nodes ? o->ranks_per_node : 0;
	if (ep_options_layer(o, &p))
		ranks = p.v[EP_PAR_MOE_EP], per_node /= p.v[EP_PAR_MOE_TP];
	if (ep_eplb_spec_active(&o->eplb)) /* NULL when refused or out of memory: ep_options_check_shape says which */
		r->placement = ep_placement_new(&o->eplb, o->num_experts, ranks, nodes, per_node,
						r->num_topk_groups ? r->num_groups : 0, o->seed);
}

void ep_command_routing_free(struct ep_routing *r)
{
	if (r->group_owned) {
		ep_group_arrays_fini(r->group_owned);
		free(r->group_owned);
	}
	r->group_owned = NULL, r->group = NULL;
	ep_placement_free(r->placement);
	r->placement = NULL;
}

/* The sweep's points, in order (ranks outermost, hidden innermost). */
/* The host copy bandwidth of `threads` threads (cli/hostinfo.h), or 0 (the
 * copy figures read "-") with --copy-probe off, unless a --min-copy gate
 * needs it. */
static double copy_gbs(const struct ep_options *o, int threads)
{
	return o->copy_probe_off && !ep_gates_need_copy(&o->gates) ? 0 : ep_host_copy_gbs(threads);
}

static struct ep_point *make_points(const struct ep_options *o, int fixed_ranks, int *n)
{
	int nr = fixed_ranks ? 1 : o->ranks.n;
	*n = nr * o->tokens.n * o->hidden.n; /* <= EP_MAX_POINTS: checked by the parser */
	struct ep_point *pts = calloc((size_t)*n, sizeof(*pts));
	for (int i = 0; pts && i < *n; i++) {
		int a = i / (o->tokens.n * o->hidden.n), b = i / o->hidden.n % o->tokens.n, c = i % o->hidden.n;
		pts[i] = (struct ep_point){fixed_ranks ? fixed_ranks : o->ranks.v[a], o->tokens.v[b], o->hidden.v[c], {0}};
	}
	return pts;
}

/* A point's run: shape, the command's routing, the ranks' configuration. */
static void point_run(const struct ep_command *cmd, const struct ep_options *o, const struct ep_point *pt,
		      int nodes, const struct ep_run_cfg *cfg, struct ep_run *run)
{
	*run = (struct ep_run){.cfg = cfg};
	ep_options_shape(o, pt->ranks, pt->tokens, pt->hidden, &run->shape);
	ep_command_routing(cmd, o, pt->ranks, nodes, &run->routing);
	char err[EP_TEXT_MAX]; /* a configuration that does not resolve: ep_options_check_shape says why */
	if (ep_parallel_given(&o->parallel) &&
	    ep_parallel_resolve(&o->parallel, pt->ranks, o->ranks_per_node, &run->parallel, err, sizeof(err)))
		memset(&run->parallel, 0, sizeof(run->parallel));
	run->attn_tokens = pt->tokens;
	if (ep_layer_run(run) && cmd->variant->sliced_routing)
		ep_layer_slice_run(run); /* its ranks dispatch their slices: the routing sees the layer's EP group */
}

/* A limit may only name an op this command's runs time. */
static int check_gates(const struct ep_command *cmd, const struct ep_options *o, const struct ep_run_cfg *cfg,
		       char *err, size_t len)
{
	const char *ops[EP_MAX_OPS];
	int n = 0;
	for (int i = 0; i < cmd->variant->nops && n < EP_MAX_OPS; i++)
		if (ep_op_present(&cmd->variant->ops[i], cfg))
			ops[n++] = cmd->variant->ops[i].name;
	return ep_gates_check_ops(&o->gates, ops, n, cmd->name, err, len);
}

/* --fault hang:R:OP: OP must be an op this run times. */
static int check_fault_op(const struct ep_command *cmd, const struct ep_run_cfg *cfg, const struct ep_fault *f,
			  char *err, size_t len)
{
	char names[256] = "";
	for (int i = 0; i < cmd->variant->nops; i++) {
		const struct ep_op_desc *op = &cmd->variant->ops[i];
		if (!ep_op_present(op, cfg) || !ep_op_timed(op, cfg))
			continue;
		if (!strcmp(op->name, f->tensor))
			return 0;
		size_t at = strlen(names);
		snprintf(names + at, sizeof(names) - at, "%s%s", at ? " " : "", op->name);
	}
	snprintf(err, len, "--fault hang:%d:%s: %s times no op '%s' (it times: %s)", f->rank, f->tensor, cmd->name,
		 f->tensor, names);
	return EP_EXIT_USAGE;
}

/* --fault bitflip:R:T: T must be an output tensor of this subcommand. */
static int check_fault_tensors(const struct ep_command *cmd, const struct ep_options *o,
			       const struct ep_run_cfg *cfg, char *err, size_t len)
{
	const char *all = cmd->variant->tensors ? cmd->variant->tensors : "";
	for (int i = 0; i < o->faults.n; i++) {
		const char *t = o->faults.f[i].tensor;
		size_t n = strlen(t);
		if (n && o->faults.f[i].kind == EP_FAULT_HANG) {
			if (check_fault_op(cmd, cfg, &o->faults.f[i], err, len))
				return EP_EXIT_USAGE;
			continue;
		}
		const char *at = all;
		while (n && (at = strstr(at, t)) && ((at > all && at[-1] != ' ') || (at[n] && at[n] != ' ')))
			at += n;
		if (n && !at) {
			snprintf(err, len, "--fault bitflip:%d:%s: %s has no output tensor '%s' (it has: %s)",
				 o->faults.f[i].rank, t, cmd->name, t, all);
			return EP_EXIT_USAGE;
		}
	}
	return 0;
}

int ep_sweep_check(const struct ep_command *cmd, const struct ep_options *o, int fixed_ranks, int nodes,
		   int procs_here, int reporter, char *err, size_t len)
{
	int n, code = 0;
	struct ep_point *pts = make_points(o, fixed_ranks, &n);
	struct ep_run_cfg cfg;
	if (!pts)
		return snprintf(err, len, "out of memory"), EP_EXIT_ENV;
	ep_options_run_cfg(o, &cfg);
	cfg.ranks_per_node = o->ranks_per_node > 0 && nodes ? o->ranks_per_node : 0;
	if (ep_routing_varies(&o->routing) && !cmd->variant->reseed) {
		snprintf(err, len, "--routing %s changes between iterations, which %s cannot follow (it rebuilds no routing between iterations)",
			 o->routing.kind == EP_ROUTE_TRACE ? "trace" : "rotating", cmd->name);
		code = EP_EXIT_USAGE;
	}
	/* usage errors of every point first, then what this machine can take */
	for (int pass = 0; pass < 2 && !code; pass++)
		for (int i = 0; i < n && !code; i++) {
			struct ep_run run;
			point_run(cmd, o, &pts[i], nodes, &cfg, &run);
			struct ep_limits_point lp;
			ep_limits_point_of(o, &run.shape, nodes, &lp);
			if (pass == 0 && (ep_options_check_shape(o, &run.shape, &run.routing, err, len) ||
					  (cmd->check && cmd->check(o, &run.shape, err, len)) ||
					  ep_limits_check(o->limits, o->warn_only, &lp, ep_deploy_getenv, NULL, err, len)))
				code = EP_EXIT_USAGE;
			else if (pass == 1 && ep_launch_precheck(cmd->variant, &run, procs_here ? procs_here : pts[i].ranks,
								   err, len))
				code = EP_EXIT_ENV;
			ep_command_routing_free(&run.routing);
		}
	if (!code && reporter && ep_options_check_outputs(o, err, len))
		code = EP_EXIT_USAGE;
	if (!code && check_gates(cmd, o, &cfg, err, len))
		code = EP_EXIT_USAGE;
	if (!code)
		code = check_fault_tensors(cmd, o, &cfg, err, len);
	if (!code && o->soak && (nodes || !cmd->variant->reseed)) {
		snprintf(err, len, "--soak runs on one host (intranode, low-latency); %s across nodes is not supported yet",
			 cmd->name);
		code = EP_EXIT_USAGE;
	}
	if (!code && o->simd >= 0 && !ep_simd_runs((enum ep_simd)o->simd)) {
		snprintf(err, len, "--simd %s: this CPU does not run it (the widest it runs: %s)",
			 ep_simd_name((enum ep_simd)o->simd), ep_simd_name(ep_simd_best()));
		code = EP_EXIT_ENV;
	}
	free(pts);
	return code;
}

char *ep_sweep_command_line(int argc, char **argv)
{
	size_t len = 16;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *s = malloc(len);
	size_t n = s ? (size_t)snprintf(s, len, "epbench") : 0;
	for (int i = 0; s && i < argc; i++)
		n += (size_t)snprintf(s + n, len - n, " %s", argv[i]);
	return s;
}

/* What the run is, for the header and the reports. */
struct sweep_texts {
	char routing[300], transport[200], where[1500], options[1800], traffic[2048], warnings[1024];
	struct ep_provenance prov;
};

/* --parallel / --mindie-config: the resolved configuration and rank 0's groups, after the options text. */
static void parallel_text(const struct ep_options *o, int ranks, char *buf, size_t len)
{
	struct ep_parallel p;
	char cfg[160], groups[400];
	size_t n = strlen(buf);
	if (!ep_parallel_given(&o->parallel) || ep_parallel_resolve(&o->parallel, ranks, o->ranks_per_node, &p, cfg, sizeof(cfg)))
		return;
	ep_parallel_text(&p, cfg, sizeof(cfg));
	ep_parallel_describe(&p, 0, groups, sizeof(groups));
	snprintf(buf + n, len - n, "%sparallel %s%s%s (rank 0: %s)", n ? "; " : "", cfg, o->parallel.from[0] ? " from " : "",
		 o->parallel.from, groups);
}

/* The lines --limits lets run (--warn-only, advice) over every point, each
 * once, after what is already in buf ('\n' after each line). */
static void limits_warnings(const struct ep_command *cmd, const struct ep_options *o, const struct ep_sweep_runner *r,
			    char *buf, size_t len)
{
	int n;
	char *text = NULL, err[EP_TEXT_MAX];
	size_t tlen = 0;
	struct ep_run_cfg cfg;
	if (o->limits == EP_LIMITS_NONE)
		return;
	ep_options_run_cfg(o, &cfg);
	struct ep_point *pts = make_points(o, r->fixed_ranks, &n);
	FILE *f = pts ? open_memstream(&text, &tlen) : NULL;
	for (int i = 0; f && i < n; i++) {
		struct ep_run run;
		struct ep_limits_point lp;
		point_run(cmd, o, &pts[i], r->nodes, &cfg, &run);
		ep_limits_point_of(o, &run.shape, r->nodes, &lp);
		ep_limits_check(o->limits, o->warn_only, &lp, ep_deploy_getenv, f, err, sizeof(err));
		ep_command_routing_free(&run.routing);
	}
	if (f)
		fclose(f);
	for (char *line = text, *e; line && *line; line = e + 1) {
		if (!(e = strchr(line, '\n')))
			break;
		*e = '\0';
		size_t at = strlen(buf), k = strlen(line);
		char *seen = strstr(buf, line);
		if ((!seen || (seen[k] != '\n')) && at + k + 2 < len)
			snprintf(buf + at, len - at, "%s\n", line);
	}
	free(text);
	free(pts);
}

static void fill_meta(const struct ep_command *cmd, const struct ep_options *o, const struct ep_sweep_runner *r,
		      struct sweep_texts *t, const struct ep_hostinfo *h, const char *cmdline,
		      struct ep_report_meta *m)
{
	struct ep_routing first;
	char extra[300] = "";
	int ranks = r->ranks_here ? r->ranks_here : r->fixed_ranks ? r->fixed_ranks : o->ranks.v[0];
	for (int i = 0; !r->ranks_here && !r->fixed_ranks && i < o->ranks.n; i++)
		ranks = o->ranks.v[i] > ranks ? o->ranks.v[i] : ranks;
	ep_command_routing(cmd, o, r->fixed_ranks ? r->fixed_ranks : o->ranks.v[0], r->nodes, &first);
	ep_options_routing_text(o, &first, t->routing, sizeof(t->routing));
	ep_command_routing_free(&first);
	if (cmd->describe)
		cmd->describe(o, extra, sizeof(extra));
	snprintf(t->options, sizeof(t->options), "%s%s%s", t->where, t->where[0] && extra[0] ? "; " : "", extra);
	parallel_text(o, r->fixed_ranks ? r->fixed_ranks : o->ranks.v[0], t->options, sizeof(t->options));
	size_t at = strlen(t->options); /* what the deployment's environment set, as the launcher's variables are said */
	if (o->env_from[0] && at < sizeof(t->options))
		snprintf(t->options + at, sizeof(t->options) - at, "%senvironment: %s", at ? "; " : "", o->env_from);
	ep_options_traffic(o, &first, r->nodes, t->traffic, sizeof(t->traffic));
	ep_generalised_warnings(o, r->fixed_ranks ? r->fixed_ranks : o->ranks.v[0], t->warnings, sizeof(t->warnings));
	limits_warnings(cmd, o, r, t->warnings, sizeof(t->warnings));
	ep_provenance_collect(&t->prov, EP_VERSION);
	t->prov.mem_total = h->mem_total, t->prov.numa_nodes = h->numa_nodes, t->prov.cores = h->cores;
	t->prov.seed = o->seed;
	snprintf(t->prov.transport, sizeof(t->prov.transport), "%s", t->transport);
	snprintf(t->prov.launcher, sizeof(t->prov.launcher), "%.199s", r->nodes ? t->where : "");
	snprintf(t->prov.environment, sizeof(t->prov.environment), "%s", o->env_from);
	if (strncmp(t->transport, "verbs", 5) == 0)
		ep_provenance_rdma(&t->prov, o->ib_dev);
	int copy_threads = ranks < h->cores ? ranks : h->cores;
	*m = (struct ep_report_meta){
		.command = cmd->name, .version = EP_VERSION, .command_line = cmdline,
		.dtype = ep_dtype_name(o->dtype), .payload = ep_payload_name(o->payload), .num_topk = o->num_topk, .num_experts = o->num_experts,
		.routing = t->routing, .masked_ratio = o->routing.masked_ratio, .seed = o->seed,
		.iters = o->iters, .warmup = o->warmup, .check = o->check, .cached = o->cached,
		.num_bias = o->num_bias, .timeout_s = o->timeout_s, .transport = t->transport,
		.simd = ep_simd_name(ep_simd_active()), .variant_options = t->options[0] ? t->options : NULL,
		.warnings = t->warnings,
		.hostname = h->hostname, .cpu_model = h->cpu_model, .cores = h->cores,
		.numa_nodes = h->numa_nodes, .mem_total = h->mem_total,
		.copy_gbs = r->reporter ? copy_gbs(o, copy_threads) : 0, .copy_threads = copy_threads,
		.traffic = t->traffic, .provenance = &t->prov,
	};
}

/* One routing step's ids of every rank into the hash and the counts. 0 or -ENOMEM. */
static int step_figures(const struct ep_run *run, const struct ep_routing *r, int64_t *idx, float *w,
			struct ep_sha256 *h, struct ep_imbalance *im)
{
	const struct ep_shape *s = &run->shape;
	size_t TK = (size_t)s->num_tokens * (size_t)s->num_topk;
	for (int q = 0; q < s->num_ranks; q++) {
		int rc = ep_gen_routing(s, r, run->cfg->seed, q, idx, w);
		if (rc)
			return rc;
		ep_sha256_update(h, idx, sizeof(int64_t) * TK);
		if (im)
			ep_imbalance_add(im, q, idx, ep_routing_num_tokens(r, s->num_tokens, run->cfg->seed, q), s->num_topk);
	}
	return 0;
}

/* What a point's routing is, from the generator alone: the SHA-256 of
 * every rank's top-k ids (int64, rank-major; two results with the same hash
 * moved the same rows) and its imbalance figures (each rank's first T_r
 * rows, the ones it sends). Routing that changes between iterations
 * (reference/routing_step.h): the hash covers every distinct step the
 * timed iterations use, in order of use; the figures are those of the
 * first timed iteration's step (one op's load: a sum over steps would
 * hide a hot spot that moves). "" and NULL when memory is short (the hash
 * is then not compared). */
static void routing_figures(const struct ep_command *cmd, const struct ep_run *run, struct ep_run_result *res)
{
	const struct ep_shape *s = &run->shape;
	struct ep_routing r = run->routing;
	long p = ep_routing_step_period(&r), w0 = run->cfg->warmup, end = w0 + run->cfg->iters;
	long first = ep_routing_step(s, &r, w0);
	size_t TK = (size_t)s->num_tokens * (size_t)s->num_topk;
	int64_t *idx = malloc(sizeof(int64_t) * (TK + 1));
	float *w = malloc(sizeof(float) * (TK + 1));
	struct ep_imbalance *im = ep_imbalance_new(s->num_ranks, s->num_experts, run->cfg->ranks_per_node,
						   cmd->variant->rows_per_expert);
	struct ep_sha256 h;
	res->routing_hash[0] = 0;
	ep_sha256_init(&h);
	if (ep_layer_run(run)) { /* the routing the MoE-EP groups dispatch */
		ep_imbalance_free(im);
		im = ep_layer_imbalance(run, &h);
		ep_sha256_hex(&h, res->routing_hash);
		res->imbalance = im;
		im = NULL;
		goto out;
	}
	for (long j = w0; idx && w && j < end; j = (j / p + 1) * p) {
		r.step = ep_routing_step(s, &r, j);
		if (j > w0 && r.step == first)
			break; /* a full cycle: every step is counted */
		if (step_figures(run, &r, idx, w, &h, j == w0 ? im : NULL))
			goto out;
	}
	if (idx && w) {
		ep_sha256_hex(&h, res->routing_hash);
		if (im)
			ep_imbalance_finish(im);
		res->imbalance = im;
		im = NULL;
	}
out:
	ep_imbalance_free(im);
	free(idx);
	free(w);
}

/* With redundant experts: the placement, and the imbalance the same logical
 * routing had before it (E experts linearly on the ranks, no replicas). */
static void placement_figures(const struct ep_command *cmd, const struct ep_run *run, struct ep_run_result *res)
{
	const struct ep_placement *pl = run->routing.placement;
	if (!pl)
		return;
	struct ep_shape ls = run->shape;
	struct ep_routing lr = run->routing;
	size_t TK = (size_t)ls.num_tokens * (size_t)ls.num_topk;
	struct ep_placement_figures *f = calloc(1, sizeof(*f));
	int64_t *idx = malloc(sizeof(int64_t) * (TK + 1));
	float *w = malloc(sizeof(float) * (TK + 1));
	if (!f || !idx || !w || !(f->phy2log = malloc(sizeof(int) * (size_t)pl->physical)) ||
	    !(f->logcnt = malloc(sizeof(int) * (size_t)pl->logical)))
		goto out;
	f->logical = pl->logical, f->physical = pl->physical;
	memcpy(f->phy2log, pl->phy2log, sizeof(int) * (size_t)pl->physical);
	memcpy(f->logcnt, pl->logcnt, sizeof(int) * (size_t)pl->logical);
	ep_placement_summary(pl, f->text, sizeof(f->text));
	ls.num_experts = pl->logical;
	lr.placement = NULL;
	f->before = ep_imbalance_new(ls.num_ranks, ls.num_experts, run->cfg->ranks_per_node, cmd->variant->rows_per_expert);
	for (int r = 0; f->before && r < ls.num_ranks; r++) {
		if (ep_gen_routing(&ls, &lr, run->cfg->seed, r, idx, w)) {
			ep_imbalance_free(f->before);
			f->before = NULL;
			break;
		}
		ep_imbalance_add(f->before, r, idx, ep_routing_num_tokens(&lr, ls.num_tokens, run->cfg->seed, r), ls.num_topk);
	}
	if (f->before)
		ep_imbalance_finish(f->before);
	res->placement = f;
	f = NULL;
out:
	if (f) {
		free(f->phy2log);
		free(f->logcnt);
		free(f);
	}
	free(idx);
	free(w);
}

/* After point i: its rows and the rewritten reports (reporter only), and
 * the run's own line for a failure. */
static void report_point(const struct ep_command *cmd, const struct ep_options *o, const struct ep_sweep_runner *r,
			 const struct ep_report_meta *m, struct ep_point *pts, int i, const struct ep_gates *gates,
			 const struct ep_hostinfo *h, char *report_error, size_t elen)
{
	const struct ep_run_result *res = &pts[i].res;
	if (r->reporter) {
		int here = r->ranks_here ? r->ranks_here : pts[i].ranks;
		double copy = r->nodes ? 0 : copy_gbs(o, here < h->cores ? here : h->cores);
		ep_gates_apply(gates, &pts[i], copy);
		ep_table_point(stdout, &pts[i], copy, o->verbose);
		ep_table_soak(stdout, &pts[i], m->command_line, o->seed);
		ep_table_nodes(stdout, &pts[i]);
		ep_report_write_all(o->json_path, o->csv_path, m, pts, i + 1, report_error, elen);
	}
	if (res->exit_code != EP_EXIT_OK && res->exit_code != EP_EXIT_WRONG && res->exit_code != EP_EXIT_SLOW &&
	    (r->reporter || !r->nodes))
		fprintf(stderr, "epbench %s: %s\n", cmd->name, res->message);
}

/* Runs every point; returns how many ran. */
static int run_points(const struct ep_command *cmd, const struct ep_options *o, const struct ep_sweep_runner *r,
		      struct ep_point *pts, int n, const struct ep_report_meta *m, const struct ep_gates *gates,
		      const struct ep_hostinfo *h, char *report_error, size_t elen)
{
	struct ep_run_cfg cfg;
	struct ep_progress prog;
	ep_options_run_cfg(o, &cfg);
	cfg.ranks_per_node = r->nodes ? o->ranks_per_node : 0;
	ep_progress_init(&prog, o->progress, o->quiet || !r->reporter, n, cmd->variant, &cfg);
	int done = 0;
	for (int i = 0; i < n && !ep_launcher_interrupted(); i++) {
		struct ep_run run;
		struct ep_launch_opts lo = {.watch = {.tick = ep_progress_tick, .tick_arg = &prog}};
		point_run(cmd, o, &pts[i], r->nodes, &cfg, &run);
		ep_progress_point(&prog, i);
		r->run(r->ctx, i, &run, &lo, &pts[i].res);
		ep_progress_clear(&prog);
		if (r->reporter) {
			routing_figures(cmd, &run, &pts[i].res);
			placement_figures(cmd, &run, &pts[i].res);
			if (ep_layer_run(&run))
				ep_layer_figures(&run, cmd->variant->rows_per_expert, &pts[i].res);
		}
		done = i + 1;
		ep_command_routing_free(&run.routing);
		report_point(cmd, o, r, m, pts, i, gates, h, report_error, elen);
		int c = pts[i].res.exit_code;
		if (r->stop_on_failure && c != EP_EXIT_OK && c != EP_EXIT_WRONG)
			break; /* a node is gone or the job was stopped: no later point can run */
	}
	ep_progress_clear(&prog);
	return done;
}

int ep_sweep_run(const struct ep_command *cmd, const struct ep_options *o, const struct ep_sweep_runner *r,
		 const char *cmdline)
{
	struct sweep_texts t = {.transport = "shm"};
	struct ep_report_meta m;
	struct ep_hostinfo h;
	struct ep_gates gates = o->gates; /* the baseline is read here, into this copy */
	char report_error[EP_TEXT_MAX] = "", err[EP_TEXT_MAX];
	int n, done = 0, code = EP_EXIT_OK;
	if (o->simd >= 0 && ep_simd_use((enum ep_simd)o->simd)) /* ep_sweep_check refused it already */
		return EP_EXIT_ENV;
	ep_launcher_catch_signals();
	if (r->begin && (code = r->begin(r->ctx, t.transport, sizeof(t.transport), t.where, sizeof(t.where))))
		return code;
	struct ep_point *pts = make_points(o, r->fixed_ranks, &n);
	if (!pts) {
		fprintf(stderr, "epbench %s: out of memory\n", cmd->name);
		code = EP_EXIT_ENV;
		goto end;
	}
	ep_hostinfo_read(&h);
	fill_meta(cmd, o, r, &t, &h, cmdline, &m);
	if (r->reporter && ep_gates_load(&gates, cmd->name, t.traffic, o->check, err, sizeof(err))) {
		fprintf(stderr, "epbench %s: %s\n", cmd->name, err);
		code = EP_EXIT_USAGE;
		goto end;
	}
	if (r->reporter)
		ep_table_header(stdout, &m, o->quiet);
	done = run_points(cmd, o, r, pts, n, &m, &gates, &h, report_error, sizeof(report_error));
	code = ep_points_verdict(pts, done);
	if (r->reporter)
		code = ep_table_footer(stdout, pts, done, o->check, report_error[0] ? report_error : NULL);
end:
	for (int i = 0; pts && i < n; i++)
		ep_run_result_free(&pts[i].res);
	free(pts);
	ep_gates_free(&gates);
	if (r->end)
		r->end(r->ctx, done, code);
	return code;
}

static int run_here(void *ctx, int index, struct ep_run *run, struct ep_launch_opts *lo,
		    struct ep_run_result *res)
{
	(void)index;
	return ep_launch(ctx, run, lo, res);
}

struct ep_sweep_runner ep_sweep_here(const struct ep_command *cmd)
{
	return (struct ep_sweep_runner){.ctx = (void *)cmd->variant, .reporter = 1, .run = run_here};
}
