/* groups.c - `epbench groups`: the process groups of a parallel configuration, rank by rank.
 *
 *   epbench groups -r 16 --parallel dp=2,tp=8,moe_tp=4,moe_ep=4 [--ranks-per-node 8]
 *   epbench groups -r 16 --mindie-config config.json
 *
 * Resolves the configuration as a run would (cli/parallel.h: MindIE's
 * defaults and checks; a bad one is one line and exit 2), prints every
 * group once, which of them cross nodes, and each rank's groups.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "cli/mindie_config.h"
#include "cli/parallel.h"
#include "collectives/error.h"
#include "reports/text_file.h"

struct groups_args {
	int world, rpn;
	const char *spec, *file, *comm;
};

static int usage_error(const char *what, const char *v)
{
	char q[128];
	fprintf(stderr, "epbench groups: %s '%s' (see epbench groups --help)\n", what, ep_quote(v ? v : "", q, sizeof(q)));
	return EP_EXIT_USAGE;
}

static int parse(int argc, char **argv, struct groups_args *g)
{
	*g = (struct groups_args){0};
	for (int i = 1; i < argc; i += 2) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			printf("usage: epbench groups -r N [--parallel dp=D,tp=T,cp=C,sp=S,moe_tp=M,moe_ep=E] [--mindie-config FILE]\n"
			       "                      [--moe-comm a2a|allgather] [--ranks-per-node R]\n\n"
			       "The process groups of a parallel configuration (README: Parallel configurations):\n"
			       "attention TP (contiguous), attention DP (strided), MoE-TP (contiguous), MoE-EP (strided).\n");
			return -1;
		}
		if (!v)
			return usage_error("missing value for", s);
		long x = strtol(v, &end, 10);
		if ((!strcmp(s, "-r") || !strcmp(s, "--num-ranks")) && !*end && x >= 1 && x <= 4096)
			g->world = (int)x;
		else if (!strcmp(s, "--ranks-per-node") && !*end && x >= 1 && x <= 4096)
			g->rpn = (int)x;
		else if (!strcmp(s, "--parallel"))
			g->spec = v;
		else if (!strcmp(s, "--mindie-config"))
			g->file = v;
		else if (!strcmp(s, "--moe-comm") && (!strcmp(v, "a2a") || !strcmp(v, "allgather")))
			g->comm = v;
		else
			return usage_error(s[0] == '-' ? "invalid option or value" : "unexpected argument", s[0] == '-' ? v : s);
	}
	return g->world ? 0 : usage_error("how many ranks? give", "-r N");
}

/* Every group of kind k once, with the nodes it spans. */
static void print_kind(const struct ep_parallel *p, enum ep_par_group k, const char *name, int W, int rpn)
{
	int m[4096], seen[4096] = {0};
	printf("# %s groups:", name);
	for (int r = 0; r < W; r++) {
		int n = ep_parallel_group(p, k, r, m, 4096), first = m[0], across = 0;
		if (seen[first]++)
			continue;
		printf(" {");
		for (int i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", m[i]), across |= rpn && m[i] / rpn != first / rpn;
		printf("}%s", across ? "*" : "");
	}
	printf("\n");
}

static int groups_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct groups_args g;
	struct ep_parallel p = {0}, r;
	char err[512], line[512];
	(void)cmd;
	int rc = parse(argc, argv, &g);
	if (rc)
		return rc < 0 ? EP_EXIT_OK : rc;
	if ((g.file && ep_mindie_config_read(g.file, &p, err, sizeof(err))) ||
	    (g.spec && ep_parallel_parse(&p, g.spec, err, sizeof(err))))
		return fprintf(stderr, "epbench groups: %s\n", err), EP_EXIT_USAGE;
	if (g.comm)
		p.moe_comm = !strcmp(g.comm, "allgather") ? EP_MOE_ALLGATHER : EP_MOE_A2A;
	if (ep_parallel_resolve(&p, g.world, g.rpn, &r, err, sizeof(err)))
		return fprintf(stderr, "epbench groups: %s\n", err), EP_EXIT_USAGE;
	ep_parallel_text(&r, line, sizeof(line));
	printf("# %d ranks%s: %s%s%s\n", g.world, g.rpn ? "" : " on one host", line, p.from[0] ? " from " : "", p.from);
	print_kind(&r, EP_GROUP_ATTN_TP, "attn-TP", g.world, g.rpn);
	print_kind(&r, EP_GROUP_ATTN_DP, "attn-DP", g.world, g.rpn);
	print_kind(&r, EP_GROUP_MOE_TP, "MoE-TP", g.world, g.rpn);
	print_kind(&r, EP_GROUP_MOE_EP, "MoE-EP", g.world, g.rpn);
	if (g.rpn)
		printf("# (* spans nodes of %d ranks: its traffic crosses the network)\n", g.rpn);
	for (int k = 0; k < g.world; k++) {
		ep_parallel_describe(&r, k, line, sizeof(line));
		printf("  rank %-4d %s\n", k, line);
	}
	return EP_EXIT_OK;
}

const struct ep_command ep_cmd_groups = {
	.name = "groups",
	.help = "the process groups of --parallel / --mindie-config (attention TP/DP, MoE-TP, MoE-EP), rank by rank",
	.main = groups_main,
};
