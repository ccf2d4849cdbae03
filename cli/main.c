/* main.c - the epbench command: a table of subcommands. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/cases.h"
#include "cli/hostinfo.h"
#include "cli/launcher.h"
#include "cli/node_job.h"
#include "cli/options.h"
#include "collectives/error.h"
#include "reports/report.h"

#ifndef EP_VERSION
#define EP_VERSION "dev"
#endif

struct subcommand {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;
};

static int intranode_main(int argc, char **argv);
static int low_latency_main(int argc, char **argv);
static int info_main(int argc, char **argv);
static int version_main(int argc, char **argv);
static int help_main(int argc, char **argv);

static const struct subcommand subcommands[] = {
	{"intranode", intranode_main, "normal dispatch/combine between ranks of one host (shared memory)"},
	{"low-latency", low_latency_main, "DeepEP low-latency dispatch/combine into per-expert buffers (shared memory; --nodes: TCP or verbs too)"},
	{"internode", ep_internode_main, "normal dispatch/combine across nodes (TCP or verbs, then shared memory)"},
	{"info", info_main, "describe this host and measure its memory copy bandwidth"},
	{"version", version_main, "print the version"},
	{"help", help_main, "this text; 'epbench CMD --help' for a command's options"},
};
#define NSUB (int)(sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench COMMAND [options]\n\n"
		     "Benchmarks and checks, bit for bit, DeepEP-style MoE dispatch and combine.\n\n"
		     "commands:\n");
	for (int i = 0; i < NSUB; i++)
		fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(out, "\nexit codes: 0 pass, 1 wrong data, 2 usage, 3 environment, 4 timeout or dead rank, 5 too slow\n");
}

static int help_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return EP_EXIT_OK;
}

static int version_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("epbench %s\n", EP_VERSION);
	return EP_EXIT_OK;
}

static int info_main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: epbench info\n");
		return EP_EXIT_OK;
	}
	if (argc > 1) {
		fprintf(stderr, "epbench: unexpected argument '%s' (see epbench info --help)\n", argv[1]);
		return EP_EXIT_USAGE;
	}
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	printf("# host %s\n# cpu %s\n# cores %d\n# numa_nodes %d\n# memory %.1f GiB (%.1f GiB available)\n",
	       h.hostname, h.cpu_model, h.cores, h.numa_nodes, (double)h.mem_total / (1 << 30),
	       (double)h.mem_available / (1 << 30));
	printf("# %7s %10s\n# %7s %10s\n", "threads", "memcpy", "", "(GB/s)");
	for (int t = 1; t <= h.cores && t <= 64; t *= 2)
		printf("  %7d %10.2f\n", t, ep_host_copy_gbs(t));
	return EP_EXIT_OK;
}

static void on_signal(int sig)
{
	ep_launcher_interrupt(sig);
}

static char *join_args(int argc, char **argv)
{
	size_t len = 16;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	size_t n = (size_t)snprintf(s, len, "epbench");
	for (int i = 0; i < argc; i++)
		n += (size_t)snprintf(s + n, len - n, " %s", argv[i]);
	return s;
}

static void routing_name(const struct ep_options *o, char *buf, size_t len)
{
	switch (o->routing.kind) {
	case EP_ROUTE_UNIFORM:
		if (o->num_topk_groups)
			snprintf(buf, len, "uniform, top-%d groups", o->num_topk_groups);
		else
			snprintf(buf, len, "uniform");
		break;
	case EP_ROUTE_ZIPF: snprintf(buf, len, "zipf:%g", o->routing.zipf_s); break;
	case EP_ROUTE_HOT: snprintf(buf, len, "hot:%d", o->routing.hot_expert); break;
	case EP_ROUTE_FILE: snprintf(buf, len, "file:%s", o->routing_path); break;
	}
}

/* The low-latency options, for the report header and JSON (empty elsewhere). */
static void variant_options_of(const struct ep_options *o, char *buf, size_t len)
{
	buf[0] = 0;
	if (strcmp(o->command, "low-latency") != 0)
		return;
	char n[16] = "tokens";
	if (o->num_max_dispatch_tokens)
		snprintf(n, sizeof(n), "%d", o->num_max_dispatch_tokens);
	snprintf(buf, len, "num_max_dispatch_tokens_per_rank=%s round_scale=%d ue8m0=%d zero_copy=%d hook=%d uneven_tokens=%d",
		 n, o->round_scale, o->use_ue8m0, o->zero_copy, o->hook, o->uneven_tokens);
}

/* Runs every sweep point of a normal-mode variant, reporting as it goes. */
static int run_sweep(const struct ep_variant *v, int argc, char **argv)
{
	struct ep_options o;
	char err[512];
	char **args = NULL, *case_text = NULL;
	int nargs = 0;
	if (ep_cases_expand(argc, argv, &nargs, &args, &case_text, err, sizeof(err))) {
		fprintf(stderr, "epbench %s: %s\n", v->name, err);
		return EP_EXIT_USAGE;
	}
	int rc = ep_options_parse(v->name, nargs, args, &o, stdout, err, sizeof(err));
	if (rc) {
		free(args);
		free(case_text);
		if (rc == 1)
			return EP_EXIT_OK;
		fprintf(stderr, "epbench %s: %s\n", v->name, err);
		return EP_EXIT_USAGE;
	}
	if (o.hook && v == &ep_low_latency_variant)
		v = &ep_low_latency_hook_variant; /* adds the send and receive phase ops */
	if (v != &ep_intranode_variant && o.ranks_per_node > 0) { /* low-latency --nodes 1 */
		if (o.ranks_given && (o.ranks.n != 1 || o.ranks.v[0] != o.ranks_per_node)) {
			fprintf(stderr, "epbench %s: --num-ranks %d disagrees with --nodes 1 x --ranks-per-node %d\n",
				v->name, o.ranks.v[0], o.ranks_per_node);
			ep_options_free(&o);
			free(args);
			free(case_text);
			return EP_EXIT_USAGE;
		}
		o.ranks.v[0] = o.ranks_per_node;
	}
	if (ep_options_check_outputs(&o, err, sizeof(err))) {
		fprintf(stderr, "epbench %s: %s\n", v->name, err);
		ep_options_free(&o);
		free(args);
		free(case_text);
		return EP_EXIT_USAGE;
	}
	int npts = o.ranks.n * o.tokens.n * o.hidden.n;
	struct ep_point *pts = calloc((size_t)npts, sizeof(*pts));
	char *cmdline = join_args(argc, argv);
	if (!pts || !cmdline) {
		fprintf(stderr, "epbench %s: out of memory\n", v->name);
		free(pts);
		free(cmdline);
		ep_options_free(&o);
		free(args);
		free(case_text);
		return EP_EXIT_ENV;
	}
	/* Every point is checked before the first rank is spawned. */
	int n = 0;
	for (int a = 0; a < o.ranks.n; a++)
		for (int b = 0; b < o.tokens.n; b++)
			for (int c = 0; c < o.hidden.n; c++) {
				struct ep_shape s;
				ep_options_shape(&o, o.ranks.v[a], o.tokens.v[b], o.hidden.v[c], &s);
				int bad = ep_options_check_shape(&o, &s, err, sizeof(err)) ? EP_EXIT_USAGE : 0;
				struct ep_run probe = {.opt = &o, .shape = s, .routing = o.routing};
				if (o.num_topk_groups && !o.num_groups)
					probe.routing.num_groups = s.num_ranks;
				if (!bad && ep_launch_precheck(v, &probe, s.num_ranks, err, sizeof(err)))
					bad = ep_error_exit_code(-EP_ENOMEM);
				if (bad) {
					fprintf(stderr, "epbench %s: %s\n", v->name, err);
					free(pts);
					free(cmdline);
					ep_options_free(&o);
					free(args);
					free(case_text);
					return bad;
				}
				pts[n++] = (struct ep_point){o.ranks.v[a], o.tokens.v[b], o.hidden.v[c], {0}};
			}

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	int max_ranks = 1;
	for (int i = 0; i < o.ranks.n; i++)
		if (o.ranks.v[i] > max_ranks)
			max_ranks = o.ranks.v[i];
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	int copy_threads = max_ranks < h.cores ? max_ranks : h.cores;
	char routing[300], variant_options[200];
	routing_name(&o, routing, sizeof(routing));
	variant_options_of(&o, variant_options, sizeof(variant_options));
	struct ep_report_meta meta = {
		.command = v->name, .version = EP_VERSION, .command_line = cmdline,
		.dtype = ep_dtype_name(o.dtype), .num_topk = o.num_topk, .num_experts = o.num_experts,
		.routing = routing, .masked_ratio = o.routing.masked_ratio, .seed = o.seed,
		.iters = o.iters, .warmup = o.warmup, .check = o.check, .cached = o.cached,
		.num_bias = o.num_bias, .timeout_s = o.timeout_s, .transport = "shm",
		.variant_options = variant_options[0] ? variant_options : NULL,
		.hostname = h.hostname, .cpu_model = h.cpu_model, .cores = h.cores,
		.numa_nodes = h.numa_nodes, .mem_total = h.mem_total,
		.copy_gbs = ep_host_copy_gbs(copy_threads), .copy_threads = copy_threads,
	};
	FILE *out = stdout;
	char report_error[EP_TEXT_MAX] = "";
	ep_table_header(out, &meta, o.quiet);
	int done = 0;
	for (int i = 0; i < n; i++) {
		struct ep_run run = {.opt = &o, .routing = o.routing};
		ep_options_shape(&o, pts[i].ranks, pts[i].tokens, pts[i].hidden, &run.shape);
		if (o.num_topk_groups && !o.num_groups)
			run.routing.num_groups = pts[i].ranks; /* default: one group per rank */
		ep_launch(v, &run, &pts[i].res);
		done = i + 1;
		double copy = ep_host_copy_gbs(pts[i].ranks < h.cores ? pts[i].ranks : h.cores);
		ep_table_point(out, &pts[i], copy, o.verbose);
		/* Rewrite the reports after every point: nothing measured is lost. */
		ep_report_write_all(o.json_path, o.csv_path, &meta, pts, done, report_error, sizeof(report_error));
		if (pts[i].res.exit_code != EP_EXIT_OK && pts[i].res.exit_code != EP_EXIT_WRONG)
			fprintf(stderr, "epbench %s: %s\n", v->name, pts[i].res.message);
		if (ep_launcher_interrupted())
			break;
	}
	int code = ep_table_footer(out, pts, done, o.check, report_error[0] ? report_error : NULL);
	for (int i = 0; i < n; i++)
		ep_run_result_free(&pts[i].res);
	free(pts);
	free(cmdline);
	ep_options_free(&o);
	free(args);
	free(case_text);
	return code;
}

static int intranode_main(int argc, char **argv)
{
	return run_sweep(&ep_intranode_variant, argc, argv);
}

/* low-latency across nodes: the node job runs the multi-node variants. */

static const struct ep_variant *ll_nodes_variant(const struct ep_options *o)
{
	return o->hook ? &ep_low_latency_nodes_hook_variant : &ep_low_latency_nodes_variant;
}

/* As on one host: --num-topk-groups without --num-groups makes a group per rank. */
static void ll_nodes_prepare(struct ep_options *o, int nodes)
{
	if (o->num_topk_groups && !o->num_groups)
		o->routing.num_groups = nodes * o->ranks_per_node;
}

static void ll_nodes_describe(const struct ep_options *o, char *routing, size_t rlen, char *extra,
			      size_t elen)
{
	routing_name(o, routing, rlen);
	variant_options_of(o, extra, elen);
}

static const struct ep_node_job low_latency_job = {
	.command = "low-latency",
	.variant = ll_nodes_variant,
	.prepare = ll_nodes_prepare,
	.describe = ll_nodes_describe,
};

/* Does this low-latency command line ask for a job across nodes? --nodes
 * N > 1, or, without --nodes, any other node option (--local-nodes,
 * --node-rank, --ranks-per-node, --master, --node-addr, --transport other
 * than auto, --ib-dev, --gid-index): the node count then comes from the
 * environment (NNODES, torchrun, mpirun, srun), as for internode. Anything
 * else, --nodes 1 included, runs on this host as it always did. */
static int wants_nodes(int argc, char **argv)
{
	struct ep_options o;
	char err[512];
	FILE *quiet = fopen("/dev/null", "w");
	int rc = quiet ? ep_options_parse("low-latency", argc, argv, &o, quiet, err, sizeof(err)) : -1;
	if (quiet)
		fclose(quiet);
	if (rc) /* --help, or an error the one-host path will report */
		return 0;
	int yes = o.nodes > 1 ||
		  (o.nodes < 0 && (o.local_nodes || o.node_rank >= 0 || o.ranks_per_node > 0 || o.master ||
				   o.node_addr || strcmp(o.transport, "auto") != 0 || o.ib_dev ||
				   o.gid_index >= 0));
	ep_options_free(&o);
	return yes;
}

static int low_latency_main(int argc, char **argv)
{
	char **args = NULL, *case_text = NULL, err[512];
	int nargs = 0;
	if (ep_cases_expand(argc, argv, &nargs, &args, &case_text, err, sizeof(err))) {
		fprintf(stderr, "epbench low-latency: %s\n", err);
		return EP_EXIT_USAGE;
	}
	int code = wants_nodes(nargs, args) ? ep_node_job_main(&low_latency_job, nargs, args)
					    : run_sweep(&ep_low_latency_variant, argc, argv);
	free(args);
	free(case_text);
	return code;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EP_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
		return help_main(argc - 1, argv + 1);
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
		return version_main(argc - 1, argv + 1);
	for (int i = 0; i < NSUB; i++)
		if (strcmp(cmd, subcommands[i].name) == 0)
			return subcommands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "epbench: unknown command '%s' (see epbench --help)\n", cmd);
	return EP_EXIT_USAGE;
}
