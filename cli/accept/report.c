/* report.c - the acceptance report: summary, Markdown and JSON from the judged job. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/accept/report.h"
#include "cli/accept/verdict.h"
#include "collectives/error.h"
#include "reports/atomic_file.h"
#include "reports/text_file.h"

json_t *ep_accept_preflight_json(const struct ep_preflight *pf)
{
	json_t *items = json_array();
	for (int i = 0; i < pf->n; i++) {
		const struct ep_pf_item *it = &pf->items[i];
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s*}", "name", it->name, "level",
						       ep_pf_level_name(it->level), "value", it->value, "reason",
						       it->reason, "fix", it->fix[0] ? it->fix : NULL));
	}
	return json_pack("{s:s, s:s, s:f, s:o}", "schema", "epbench-preflight/1", "verdict",
			 ep_pf_level_name(ep_preflight_worst(pf)), "port_gbps", pf->port_gbps, "items", items);
}

static json_t *config_json(const struct accept_args *a)
{
	json_t *c = json_pack("{s:i, s:i, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:s}", "nodes",
			 a->nodes, "ranks_per_node", a->ranks_per_node, "transport", a->transport, "num_tokens", a->tokens,
			 "hidden", a->hidden, "num_experts", a->experts, "num_topk", a->topk, "num_groups", a->groups,
			 "num_topk_groups", a->topk_groups, "ll_tokens", a->ll_tokens, "ll_experts", a->ll_experts, "iters",
			 a->iters, "warmup", a->warmup, "degraded_at", a->degraded_at, "fail_at", a->fail_at, "scopes",
			 a->scopes);
	static const char *const keys[4] = {"node_args", "pair_args", "job_args", "ll_args"};
	for (int k = 0; k < 4; k++)
		json_object_set_new(c, keys[k], a->run_args[k] ? json_string(a->run_args[k]) : json_null());
	return c;
}

/* The whole document: config, every node's preflight, the verdicts, the raw objects. */
static json_t *document(const struct accept_args *a, const struct ep_accept_results *res, json_t *v)
{
	json_t *pre = json_array(), *raw = json_array();
	for (int k = 0; k < res->nodes; k++)
		json_array_append(pre, res->done_steps ? json_object_get(res->r[k], "preflight") ?: json_null() : json_null());
	for (int s = 0; s < res->done_steps; s++)
		for (int k = 0; k < res->nodes; k++) {
			json_t *o = res->r[(size_t)s * (size_t)res->nodes + (size_t)k];
			if (s && o && json_is_true(json_object_get(o, "ran")))
				json_array_append_new(raw, json_pack("{s:s, s:i, s:O}", "step", res->steps[s].name, "node", k, "run", o));
		}
	int code = (int)json_integer_value(json_object_get(v, "exit"));
	const char *verdict = code == EP_EXIT_OK ? "PASS" : code == EP_EXIT_SLOW ? "DEGRADED" : "FAIL";
	json_t *first = json_array_get(json_object_get(v, "items"), 0);
	if (code == EP_EXIT_SLOW && first && json_is_string(json_object_get(first, "verdict")) &&
	    !strcmp(json_string_value(json_object_get(first, "verdict")), "FAIL"))
		verdict = "FAIL";
	char when[32];
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	return json_pack("{s:s, s:s, s:o, s:o, s:O, s:s, s:i, s:o, s:i, s:o}", "schema", "epbench-accept/1", "date", when,
			 "config", config_json(a), "preflight", pre, "items", json_object_get(v, "items"), "verdict",
			 verdict, "exit", code, "ended", res->lost_code ? json_string(res->lost_msg) : json_null(),
			 "steps_done", res->done_steps, "runs", raw);
}

static void summary(FILE *out, json_t *doc)
{
	json_t *it;
	size_t i;
	fprintf(out, "# epbench accept: %d nodes\n", (int)json_integer_value(json_object_get(json_object_get(doc, "config"), "nodes")));
	fprintf(out, "#   %-9s %-14s %s\n", "verdict", "item", "why");
	json_array_foreach(json_object_get(doc, "items"), i, it) {
		fprintf(out, "    %-9s %-14s %s\n", json_string_value(json_object_get(it, "verdict")),
			json_string_value(json_object_get(it, "name")), json_string_value(json_object_get(it, "why")));
		json_t *f;
		size_t k;
		json_array_foreach(json_object_get(it, "flags"), k, f)
			fprintf(out, "    %-9s %-14s   note: %s\n", "", "", json_string_value(f));
	}
	if (json_is_string(json_object_get(doc, "ended")))
		fprintf(out, "# the job ended early: %s\n", json_string_value(json_object_get(doc, "ended")));
	fprintf(out, "# acceptance: %s (exit %d)\n", json_string_value(json_object_get(doc, "verdict")),
		(int)json_integer_value(json_object_get(doc, "exit")));
}

static int write_text(const char *path, const char *text)
{
	return ep_write_file_atomic(path, text, strlen(text));
}

static int write_reports(const struct accept_args *a, json_t *doc)
{
	int rc = 0;
	if (a->json) {
		char *t = json_dumps(doc, JSON_INDENT(1));
		rc = t ? write_text(a->json, t) : -1;
		free(t);
		if (rc)
			return fprintf(stderr, "epbench accept: writing '%s' failed\n", a->json), EP_EXIT_ENV;
	}
	if (a->report) {
		char *md = NULL;
		size_t n = 0;
		FILE *f = open_memstream(&md, &n);
		if (f)
			ep_accept_markdown(f, doc), fclose(f);
		rc = md ? write_text(a->report, md) : -1;
		free(md);
		if (rc)
			return fprintf(stderr, "epbench accept: writing '%s' failed\n", a->report), EP_EXIT_ENV;
	}
	return 0;
}

int ep_accept_judge(const struct accept_args *a, const struct ep_accept_results *res)
{
	json_t *v = ep_accept_verdicts(a, res), *doc = document(a, res, v);
	summary(stdout, doc);
	fflush(stdout);
	int code = (int)json_integer_value(json_object_get(doc, "exit")), rc = write_reports(a, doc);
	json_decref(doc);
	json_decref(v);
	return rc ? ep_exit_worse(code, rc) : code;
}
