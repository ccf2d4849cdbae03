/* fuzz_accept.c - libFuzzer target: what node 0 of `epbench accept` reads from
 * others: each node's object per step (from the network) and --reference (a
 * file), through the verdicts and the Markdown report; and accept's option
 * parser. The input is split at NUL bytes: the first piece is the options
 * (newline-separated), then one JSON text per (step, node) of a 2-node plan,
 * the last piece the reference. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accept/accept.h"
#include "cli/accept/report.h"
#include "cli/accept/verdict.h"
#include "tests/fuzz/fuzz.h"

#define MAX_PIECES 24

static void options(char *text)
{
	char *argv[40] = {"accept"};
	int argc = 1;
	for (char *p = text; *p && argc < 39;) {
		argv[argc++] = p;
		p += strcspn(p, "\n");
		if (*p)
			*p++ = 0;
	}
	struct accept_args a;
	FILE *saved = stdout;
	stdout = fopen("/dev/null", "w");
	if (ep_accept_parse(argc, argv, &a) == 0)
		ep_accept_check_shape(&a);
	fclose(stdout);
	stdout = saved;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *text = malloc(size + 1), *piece[MAX_PIECES];
	int n = 0;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	for (char *p = text; n < MAX_PIECES && p <= text + size; p += strlen(p) + 1)
		piece[n++] = p;
	options(piece[0]);
	struct accept_args a;
	char *argv[] = {"accept", "--nodes", "2", NULL};
	ep_accept_parse(3, argv, &a);
	struct ep_step steps[8];
	struct ep_accept_results res = {.nodes = 2, .steps = steps};
	res.nsteps = res.done_steps = ep_accept_plan(&a, steps, 8);
	json_t *r[16] = {0};
	res.r = r;
	json_error_t je;
	for (int i = 1; i < n - 1 && i <= 2 * res.nsteps; i++)
		r[i - 1] = json_loads(piece[i], JSON_REJECT_DUPLICATES, &je);
	res.reference = n > 2 ? json_loads(piece[n - 1], 0, &je) : NULL;
	json_t *v = ep_accept_verdicts(&a, &res);
	FILE *null = fopen("/dev/null", "w");
	if (null) {
		json_t *doc = json_pack("{s:O, s:{s:i}}", "items", json_object_get(v, "items"), "config", "nodes", 2);
		ep_accept_markdown(null, doc);
		json_decref(doc);
		fclose(null);
	}
	json_decref(v);
	json_decref(res.reference);
	for (int i = 0; i < 16; i++)
		json_decref(r[i]);
	free(text);
	return 0;
}
