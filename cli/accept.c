/* accept.c - `epbench accept`: hardware acceptance (cli/accept/ has the parts).
 *
 * `epbench accept --preflight-only` checks this host's set-up item by item
 * (cli/preflight.h) and stops: exit 3 on a FAIL. Otherwise every node of
 * the job runs the plan (cli/accept/accept.h): the preflight of every node,
 * each node alone, each pair of nodes with the link's rate measured by
 * iperf3, then the full job; node 0 gives one verdict per node, pair and
 * job against the references and writes the reports.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accept/accept.h"
#include "cli/accept/report.h"
#include "cli/command.h"
#include "cli/preflight.h"
#include "collectives/error.h"
#include "reports/atomic_file.h"

static int preflight_only(const struct accept_args *a)
{
	struct ep_preflight pf;
	int nodes = a->nodes > 0 ? a->nodes : 2;
	/* verbs registers, per rank, a send and a receive region for every node's tokens */
	struct ep_pf_opts o = {.root = getenv("EP_PREFLIGHT_ROOT"), .want_verbs = !strcmp(a->transport, "verbs"),
			       .pin_bytes = (size_t)(2 * (size_t)nodes * (size_t)a->tokens * (2 * (size_t)a->hidden + 128))};
	ep_preflight_run(&o, &pf);
	enum ep_pf_level worst = ep_preflight_worst(&pf);
	printf("# epbench accept: preflight of this host (%d items)\n", pf.n);
	ep_preflight_print(stdout, &pf);
	printf("# preflight: %s%s\n", ep_pf_level_name(worst),
	       worst == EP_PF_FAIL ? ": acceptance runs would not mean anything until the FAIL items are fixed" : "");
	fflush(stdout);
	if (a->json) {
		json_t *j = ep_accept_preflight_json(&pf);
		char *t = json_dumps(j, JSON_INDENT(1));
		int rc = t ? ep_write_file_atomic(a->json, t, strlen(t)) : -1;
		free(t);
		json_decref(j);
		if (rc)
			return fprintf(stderr, "epbench accept: writing '%s' failed\n", a->json), EP_EXIT_ENV;
	}
	return worst == EP_PF_FAIL ? EP_EXIT_ENV : EP_EXIT_OK;
}

static int accept_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct accept_args a;
	(void)cmd;
	int rc = ep_accept_parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? EP_EXIT_OK : rc;
	return a.preflight_only ? preflight_only(&a) : ep_accept_job(&a);
}

const struct ep_command ep_cmd_accept = {
	.name = "accept",
	.help = "hardware acceptance: preflight, each node, each node pair and the job; PASS/DEGRADED/FAIL per item",
	.main = accept_main,
};
