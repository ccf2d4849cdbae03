/* shapes.c - --shapes SUITE: each acceptance run's options from a suite file's cases. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli/accept/accept.h"
#include "collectives/error.h"
#include "reports/suite_file.h"

/* Options the plan sets itself: dropped from a suite case (1: with a value). */
static int planned(const char *w)
{
	static const char *const with_value[] = {"-r", "--num-ranks", "--nodes", "--ranks-per-node", "--node-rank",
						 "--master", "--json", "--csv", "--dump", "--transport", "--node-addr",
						 "--timeout", "--ib-dev", "--gid-index"};
	static const char *const flags[] = {"--local-nodes", "-q", "--quiet", "-v", "--verbose"};
	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
		if (!strcmp(w, with_value[i]))
			return 2;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (!strcmp(w, flags[i]))
			return 1;
	return 0;
}

/* The first case of subcommand cmd, its options without the planned ones, into out. */
static int take(const struct ep_suite *s, const char *cmd, char *out, size_t len)
{
	for (int c = 0; c < s->n; c++) {
		const struct ep_suite_case *k = &s->cases[c];
		if (strcmp(k->argv[0], cmd))
			continue;
		size_t n = 0;
		out[0] = 0;
		for (int i = 1; i < k->argc; i++) {
			int skip = planned(k->argv[i]);
			if (skip) {
				i += skip - 1;
				continue;
			}
			n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s", n ? " " : "", k->argv[i]);
		}
		return n < len ? 0 : -1;
	}
	return 1; /* no such case */
}

int ep_accept_load_shapes(struct accept_args *a)
{
	static const char *const cmd[4] = {"intranode", "internode", "internode", "low-latency"};
	struct ep_suite s;
	char err[512];
	if (!a->shapes)
		return 0;
	if (ep_suite_load(a->shapes, &s, err, sizeof(err)))
		return fprintf(stderr, "epbench accept: --shapes: %s\n", err), EP_EXIT_USAGE;
	int rc = 0;
	for (int k = 0; k < 4 && !rc; k++) {
		if (a->run_args[k])
			continue;
		int got = take(&s, cmd[k], a->shape_text[k], sizeof(a->shape_text[k]));
		if (got < 0) {
			fprintf(stderr, "epbench accept: --shapes '%s': the %s case's options are too long\n", a->shapes, cmd[k]);
			rc = EP_EXIT_USAGE;
		}
		else if (got == 0)
			a->run_args[k] = a->shape_text[k];
	}
	ep_suite_free(&s);
	return rc;
}
