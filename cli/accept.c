/* accept.c - `epbench accept`: hardware acceptance. Written so far: the preflight of this host.
 *
 * `epbench accept --preflight-only` checks this host's set-up item by item
 * (cli/preflight.h): PASS, WARN or FAIL, each with what was found, why it
 * matters and the fix; worst first. A FAIL makes acceptance runs
 * meaningless: exit 3. --json writes the items for machines.
 *
 * Not written yet (the rest of the acceptance issue): the runs per node,
 * per node pair and for the full job against line rate, NIC counters and
 * the PASS/DEGRADED/FAIL verdicts; `accept` without --preflight-only says
 * so and exits 2 rather than pretend.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "cli/preflight.h"
#include "collectives/error.h"
#include "reports/json.h"
#include "reports/text_file.h"

struct accept_args {
	int preflight_only;
	const char *json, *transport;
	long nodes, tokens, hidden;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench accept --preflight-only [options]\n\n"
		     "Hardware acceptance. Written so far: the preflight of this host (RDMA ports, rates, MTU,\n"
		     "GIDs, locked memory, NUMA balancing, CPU governor, versions, interfaces).\n\noptions:\n"
		     "  --preflight-only     check this host's set-up and stop (exit 3 on a FAIL)\n"
		     "  --transport T        auto | tcp | verbs: with verbs, no RDMA device is a FAIL [auto]\n"
		     "  --nodes N            nodes of the planned job, for the locked-memory need [2]\n"
		     "  --num-tokens T       tokens per rank of the planned shape [4096]\n"
		     "  --hidden H           hidden size of the planned shape [7168]\n"
		     "  --json FILE          the items as JSON\n");
}

static int bad(const char *what, const char *v)
{
	char q[256];
	fprintf(stderr, "epbench accept: %s '%s' (see epbench accept --help)\n", what, ep_quote(v ? v : "", q, sizeof(q)));
	return EP_EXIT_USAGE;
}

/* A number in [lo, hi] into *out, or -1. */
static int number(const char *v, long lo, long hi, long *out)
{
	char *end;
	long x = v ? strtol(v, &end, 10) : 0;
	if (!v || !*v || *end || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

static int parse(int argc, char **argv, struct accept_args *a)
{
	*a = (struct accept_args){.transport = "auto", .nodes = 2, .tokens = 4096, .hidden = 7168};
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(s, "--help") || !strcmp(s, "-h"))
			return usage(stdout), -1;
		if (!strcmp(s, "--preflight-only"))
			a->preflight_only = 1;
		else if (!strcmp(s, "--json") && v)
			a->json = argv[++i];
		else if (!strcmp(s, "--transport") && v && (!strcmp(v, "auto") || !strcmp(v, "tcp") || !strcmp(v, "verbs")))
			a->transport = argv[++i];
		else if ((!strcmp(s, "--nodes") && !number(v, 1, 4096, &a->nodes)) ||
			 (!strcmp(s, "--num-tokens") && !number(v, 1, 1 << 24, &a->tokens)) ||
			 (!strcmp(s, "--hidden") && !number(v, 1, 1 << 20, &a->hidden)))
			i++;
		else
			return bad(s[0] == '-' && v ? "invalid option or value" : "unexpected argument", s[0] == '-' && v ? v : s);
	}
	return 0;
}

static int write_json(const char *path, const struct ep_preflight *pf)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "schema", "epbench-preflight/1");
	ep_json_string(j, "verdict", ep_pf_level_name(ep_preflight_worst(pf)));
	ep_json_double(j, "port_gbps", pf->port_gbps);
	ep_json_begin_array(j, "items");
	for (int i = 0; i < pf->n; i++) {
		const struct ep_pf_item *it = &pf->items[i];
		ep_json_begin_object(j, NULL);
		ep_json_string(j, "name", it->name);
		ep_json_string(j, "level", ep_pf_level_name(it->level));
		ep_json_string(j, "value", it->value);
		ep_json_string(j, "reason", it->reason);
		ep_json_string(j, "fix", it->fix[0] ? it->fix : NULL);
		ep_json_end_object(j);
	}
	ep_json_end_array(j);
	ep_json_end_object(j);
	return ep_json_write_file(j, path);
}

static int accept_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct accept_args a;
	struct ep_preflight pf;
	char err[EP_TEXT_MAX];
	(void)cmd;
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? EP_EXIT_OK : rc;
	if (!a.preflight_only)
		return fprintf(stderr, "epbench accept: only --preflight-only is written yet; the per-node, per-pair and "
				       "full-job acceptance runs are not\n"), EP_EXIT_USAGE;
	if (a.json && ep_output_path_check("--json", a.json, err, sizeof(err)))
		return fprintf(stderr, "epbench accept: %s\n", err), EP_EXIT_USAGE;
	/* verbs registers, per rank, a send and a receive region for every node's tokens */
	struct ep_pf_opts o = {.root = getenv("EP_PREFLIGHT_ROOT"), .want_verbs = !strcmp(a.transport, "verbs"),
			       .pin_bytes = (size_t)(2 * a.nodes * a.tokens * (2 * a.hidden + 128))};
	ep_preflight_run(&o, &pf);
	enum ep_pf_level worst = ep_preflight_worst(&pf);
	printf("# epbench accept: preflight of this host (%d items)\n", pf.n);
	ep_preflight_print(stdout, &pf);
	printf("# preflight: %s%s\n", ep_pf_level_name(worst),
	       worst == EP_PF_FAIL ? ": acceptance runs would not mean anything until the FAIL items are fixed" : "");
	if (a.json && (rc = write_json(a.json, &pf)))
		return fprintf(stderr, "epbench accept: writing '%s' failed: %s\n", a.json, ep_strerror(rc)), EP_EXIT_ENV;
	return worst == EP_PF_FAIL ? EP_EXIT_ENV : EP_EXIT_OK;
}

const struct ep_command ep_cmd_accept = {
	.name = "accept",
	.help = "hardware acceptance; so far --preflight-only: this host's RDMA ports, limits and settings, PASS/WARN/FAIL",
	.main = accept_main,
};
