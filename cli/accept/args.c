/* args.c - `epbench accept`'s options: one table, one parser, the checks that need no machine. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accept/accept.h"
#include "collectives/error.h"
#include "reports/text_file.h"

enum kind { FLAG, STR, INT, DBL };

struct opt {
	const char *name;
	char shrt;
	enum kind kind;
	size_t off;
	double lo, hi;
	const char *meta, *help;
};

#define O(f) offsetof(struct accept_args, f)
static const struct opt opts[] = {
	{"preflight-only", 0, FLAG, O(preflight_only), 0, 0, NULL, "check this host's set-up and stop (exit 3 on a FAIL)"},
	{"nodes", 0, INT, O(nodes), 1, EP_ACCEPT_MAX_NODES, "N", "nodes of the job (else from the launcher) [1]"},
	{"node-rank", 0, INT, O(node_rank), 0, EP_ACCEPT_MAX_NODES - 1, "I", "this node's index (else from the launcher)"},
	{"master", 0, STR, O(master), 0, 0, "HOST:PORT", "node 0's address (else MASTER_ADDR/MASTER_PORT)"},
	{"node-addr", 0, STR, O(node_addr), 0, 0, "IP", "this node's address for data connections"},
	{"local-nodes", 0, FLAG, O(local_nodes), 0, 0, NULL, "every node on this host, over loopback"},
	{"ranks-per-node", 0, INT, O(ranks_per_node), 1, 256, "R", "ranks on each node [2]"},
	{"transport", 0, STR, O(transport), 0, 0, "T", "auto | tcp | verbs, for the runs across nodes [auto]"},
	{"ib-dev", 0, STR, O(ib_dev), 0, 0, "DEV", "RDMA device of the runs across nodes (verbs)"},
	{"gid-index", 0, INT, O(gid_index), 0, 65535, "N", "GID index of the runs across nodes (verbs)"},
	{"num-tokens", 't', INT, O(tokens), 1, 1 << 20, "T", "tokens per rank, normal mode [4096, DeepEP's]"},
	{"hidden", 0, INT, O(hidden), 64, 1 << 16, "H", "hidden size [7168]"},
	{"num-experts", 'e', INT, O(experts), 1, 1 << 16, "E", "experts, normal mode [256, with 8 groups, top-4]"},
	{"num-topk", 'k', INT, O(topk), 1, 64, "K", "experts per token [8]"},
	{"num-groups", 0, INT, O(groups), 1, 1 << 16, "G", "expert groups for group-limited routing"},
	{"num-topk-groups", 0, INT, O(topk_groups), 1, 1 << 16, "G", "groups per token"},
	{"ll-tokens", 0, INT, O(ll_tokens), 1, 1 << 16, "T", "tokens per rank, low-latency [128]"},
	{"ll-experts", 0, INT, O(ll_experts), 1, 1 << 16, "E", "experts, low-latency [288]"},
	{"node-args", 0, STR, O(run_args[EP_RUN_NODE]), 0, 0, "'OPTS'", "more options for each node's intranode run (e.g. '-t 2048 --dtype fp8')"},
	{"pair-args", 0, STR, O(run_args[EP_RUN_PAIR]), 0, 0, "'OPTS'", "more options for each pair's internode run"},
	{"job-args", 0, STR, O(run_args[EP_RUN_JOB]), 0, 0, "'OPTS'", "more options for the full job's internode run"},
	{"ll-args", 0, STR, O(run_args[EP_RUN_LL]), 0, 0, "'OPTS'", "more options for the full job's low-latency run"},
	{"shapes", 0, STR, O(shapes), 0, 0, "SUITE", "each run's options from a suite's first case of its subcommand (cases/acceptance.suite)"},
	{"iters", 'n', INT, O(iters), 1, 100000, "N", "timed iterations of every run [5]"},
	{"warmup", 'w', INT, O(warmup), 0, 100000, "N", "warm-up iterations [1]"},
	{"scopes", 0, STR, O(scopes), 0, 0, "LIST", "runs to do: any of nodes,pairs,job [nodes,pairs,job]"},
	{"iperf-seconds", 0, DBL, O(iperf_s), 0.5, 600, "S", "length of each pair's iperf3 run [2]"},
	{"no-iperf", 0, FLAG, O(no_iperf), 0, 0, NULL, "do not measure link rates with iperf3"},
	{"degraded-at", 0, DBL, O(degraded_at), 0, 100, "PCT", "below PCT% of the reference: DEGRADED [90]"},
	{"fail-at", 0, DBL, O(fail_at), 0, 100, "PCT", "below PCT% of the reference: FAIL [70]"},
	{"reference", 0, STR, O(reference), 0, 0, "FILE", "a known-good `accept --json` file: its figures are the references"},
	{"baseline", 0, STR, O(baseline), 0, 0, "FILE", "passed to the full-job runs: the regression gate's baseline"},
	{"max-regress", 0, DBL, O(max_regress), 0, 100, "PCT", "passed to the full-job runs with --baseline"},
	{"fault", 0, STR, O(fault), 0, 0, "SPEC", "passed to every run (self-test: the verdict must catch it)"},
	{"timeout", 0, DBL, O(timeout_s), 1, 86400, "S", "deadline of any wait, and of each run x 10 [60]"},
	{"report", 0, STR, O(report), 0, 0, "FILE", "the Markdown report (node 0)"},
	{"json", 0, STR, O(json), 0, 0, "FILE", "the JSON report (node 0)"},
};
#define NOPTS (int)(sizeof(opts) / sizeof(opts[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench accept [options]            (on every node, or --local-nodes)\n"
		     "       epbench accept --preflight-only [options]\n\n"
		     "Hardware acceptance: the preflight of every node, then each node alone, each pair of\n"
		     "nodes and the full job, every run checked byte for byte; verdicts PASS / DEGRADED / FAIL\n"
		     "per node and per node pair against the references (README: Hardware acceptance).\n"
		     "Exit: 0 all PASS, 5 something DEGRADED or FAIL on speed, 1 wrong data, 4 a node or\n"
		     "rank lost, 3 a preflight FAIL (no runs), 2 bad options.\n\noptions:\n");
	for (int i = 0; i < NOPTS; i++) {
		char lhs[48];
		snprintf(lhs, sizeof(lhs), "%s%c%s--%s %s", opts[i].shrt ? "-" : "", opts[i].shrt ? opts[i].shrt : ' ',
			 opts[i].shrt ? ", " : " ", opts[i].name, opts[i].meta ? opts[i].meta : "");
		fprintf(out, "  %-30s %s\n", opts[i].shrt ? lhs : lhs + 2, opts[i].help);
	}
}

static int bad(const char *what, const char *v)
{
	char q[256];
	fprintf(stderr, "epbench accept: %s '%s' (see epbench accept --help)\n", what, ep_quote(v ? v : "", q, sizeof(q)));
	return EP_EXIT_USAGE;
}

static const struct opt *find(const char *s)
{
	for (int i = 0; i < NOPTS; i++)
		if ((s[0] == '-' && s[1] == '-' && !strcmp(s + 2, opts[i].name)) ||
		    (s[0] == '-' && s[1] == opts[i].shrt && opts[i].shrt && !s[2]))
			return &opts[i];
	return NULL;
}

/* One option's value into a; 0 or EP_EXIT_USAGE. */
static int store(const struct opt *o, const char *v, struct accept_args *a)
{
	char *end, *p = (char *)a + o->off;
	double x = o->kind == INT || o->kind == DBL ? strtod(v, &end) : 0;
	if (o->kind == STR) {
		if (!*v)
			return bad("empty value for option", o->name);
		*(const char **)p = v;
		return 0;
	}
	if (!*v || *end || x != x || x < o->lo || x > o->hi || (o->kind == INT && x != (int)x))
		return bad(o->kind == INT ? "invalid or out-of-range integer" : "invalid or out-of-range number", v);
	if (o->kind == INT)
		*(int *)p = (int)x;
	else
		*(double *)p = x;
	return 0;
}

static int check_scopes(const char *s)
{
	char buf[64];
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (strcmp(t, "nodes") && strcmp(t, "pairs") && strcmp(t, "job"))
			return -1;
	return 0;
}

/* Experts must split evenly over the ranks of every run the plan makes. */
int ep_accept_check_shape(const struct accept_args *a)
{
	int N = a->nodes > 0 ? a->nodes : 1, R = a->ranks_per_node, widest = N >= 2 ? N * R : R;
	char v[96];
	if (a->experts % widest || a->experts % R || (N >= 2 && a->experts % (2 * R))) {
		snprintf(v, sizeof(v), "%d experts over %d ranks", a->experts, a->experts % R ? R : widest);
		return bad("experts must divide evenly over the ranks of every run", v);
	}
	if (N >= 2 && a->ll_experts % (N * R)) {
		snprintf(v, sizeof(v), "%d experts over %d ranks", a->ll_experts, N * R);
		return bad("low-latency experts must divide evenly over the job's ranks", v);
	}
	if (a->topk > a->experts || a->topk > a->ll_experts)
		return snprintf(v, sizeof(v), "%d", a->topk), bad("--num-topk above the expert count", v);
	if (a->groups && (a->experts % a->groups || a->topk_groups > a->groups || a->topk_groups < 1)) {
		snprintf(v, sizeof(v), "%d groups, top-%d groups, %d experts", a->groups, a->topk_groups, a->experts);
		return bad("expert groups must divide the experts, with top groups in [1, groups]", v);
	}
	return 0;
}

static int check(struct accept_args *a)
{
	char err[512];
	if (strcmp(a->transport, "auto") && strcmp(a->transport, "tcp") && strcmp(a->transport, "verbs"))
		return bad("--transport must be auto, tcp or verbs, not", a->transport);
	if (check_scopes(a->scopes))
		return bad("--scopes takes nodes, pairs and job, comma-separated, not", a->scopes);
	if (a->fail_at > a->degraded_at) {
		snprintf(err, sizeof(err), "--fail-at %g above --degraded-at %g", a->fail_at, a->degraded_at);
		return bad("thresholds out of order", err);
	}
	if (a->max_regress >= 0 && !a->baseline)
		return bad("--max-regress needs --baseline", "--max-regress");
	if (a->node_rank >= 0 && a->nodes > 0 && a->node_rank >= a->nodes) {
		snprintf(err, sizeof(err), "%d of %d nodes", a->node_rank, a->nodes);
		return bad("--node-rank outside the job", err);
	}
	if (a->local_nodes && a->nodes < 0)
		return bad("--local-nodes needs", "--nodes");
	if (!a->given_experts && !a->groups)
		a->groups = 8, a->topk_groups = 4; /* DeepEP's normal-mode tests */
	if (a->groups && !a->topk_groups)
		a->topk_groups = a->groups;
	const char *outs[][2] = {{"--report", a->report}, {"--json", a->json}};
	for (int i = 0; i < 2; i++)
		if (outs[i][1] && ep_output_path_check(outs[i][0], outs[i][1], err, sizeof(err)))
			return fprintf(stderr, "epbench accept: %s\n", err), EP_EXIT_USAGE;
	return 0;
}

int ep_accept_parse(int argc, char **argv, struct accept_args *a)
{
	*a = (struct accept_args){.transport = "auto", .scopes = "nodes,pairs,job", .nodes = -1, .node_rank = -1,
				  .ranks_per_node = 2, .tokens = 4096, .hidden = 7168, .experts = 256, .topk = 8,
				  .ll_tokens = 128, .ll_experts = 288, .iters = 5, .warmup = 1, .degraded_at = 90,
				  .fail_at = 70, .max_regress = -1, .gid_index = -1, .timeout_s = 60, .iperf_s = 2};
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!strcmp(s, "--help") || !strcmp(s, "-h"))
			return usage(stdout), -1;
		const struct opt *o = find(s);
		if (!o)
			return bad(s[0] == '-' ? "unknown option" : "unexpected argument", s);
		if (o->kind == FLAG) {
			*(int *)((char *)a + o->off) = 1;
			continue;
		}
		if (i + 1 >= argc)
			return bad("missing value for", s);
		int rc = store(o, argv[++i], a);
		if (rc)
			return rc;
		a->given_experts |= o->off == O(experts);
	}
	return check(a);
}

void ep_accept_config_text(const struct accept_args *a, char *buf, size_t len)
{
	snprintf(buf, len,
		 "command=accept\nranks-per-node=%d\ntransport=%s\nnum-tokens=%d\nhidden=%d\nnum-experts=%d\nnum-topk=%d\n"
		 "num-groups=%d\nnum-topk-groups=%d\nll-tokens=%d\nll-experts=%d\niters=%d\nwarmup=%d\nscopes=%s\n"
		 "no-iperf=%d\niperf-seconds=%g\ndegraded-at=%g\nfail-at=%g\ntimeout=%g\nfault=%s\nnode-args=%s\n"
		 "pair-args=%s\njob-args=%s\nll-args=%s\n",
		 a->ranks_per_node, a->transport, a->tokens, a->hidden, a->experts, a->topk, a->groups, a->topk_groups,
		 a->ll_tokens, a->ll_experts, a->iters, a->warmup, a->scopes, a->no_iperf, a->iperf_s, a->degraded_at,
		 a->fail_at, a->timeout_s, a->fault ? a->fault : "", a->run_args[0] ? a->run_args[0] : "",
		 a->run_args[1] ? a->run_args[1] : "", a->run_args[2] ? a->run_args[2] : "", a->run_args[3] ? a->run_args[3] : "");
}
