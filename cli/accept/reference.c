/* reference.c - what each figure is held to: --reference, a nominal rate, or the peers' median. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accept/accept.h"
#include "cli/accept/item.h"
#include "cli/accept/verdict.h"
#include "collectives/error.h"

int ep_accept_load_reference(const struct accept_args *a, json_t **out, char *err, size_t len)
{
	json_error_t je;
	json_t *r = json_load_file(a->reference, JSON_REJECT_DUPLICATES, &je), *cfg = json_object_get(r, "config");
	const char *schema = json_string_value(json_object_get(r, "schema"));
	*out = NULL;
	if (!r)
		return snprintf(err, len, "--reference '%s': %s (line %d)", a->reference, je.text, je.line), EP_EXIT_USAGE;
	if (!schema || strcmp(schema, "epbench-accept/1") || !json_is_array(json_object_get(r, "items")))
		return json_decref(r), snprintf(err, len, "--reference '%s' is not an `epbench accept --json` file", a->reference),
		       EP_EXIT_USAGE;
	const struct {
		const char *key;
		int here;
	} same[] = {{"ranks_per_node", a->ranks_per_node}, {"num_tokens", a->tokens}, {"hidden", a->hidden},
		    {"num_experts", a->experts}, {"num_topk", a->topk}, {"ll_tokens", a->ll_tokens},
		    {"ll_experts", a->ll_experts}};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		json_t *v = json_object_get(cfg, same[i].key);
		if (!json_is_integer(v) || json_integer_value(v) != same[i].here) {
			snprintf(err, len, "--reference '%s' is for another shape: %s %lld there, %d here", a->reference,
				 same[i].key, (long long)json_integer_value(v), same[i].here);
			return json_decref(r), EP_EXIT_USAGE;
		}
	}
	*out = r;
	return 0;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

/* The median of key over items of scope in items (0 when none has it). */
static double median(json_t *items, const char *scope, const char *key)
{
	size_t i, n = 0;
	json_t *x;
	double *v = calloc(json_array_size(items) + 1, sizeof(double)), m = 0;
	json_array_foreach(items, i, x) {
		double f = ep_item_get(x, key);
		if (v && f > 0 && !strcmp(ep_item_str(x, "scope"), scope))
			v[n++] = f;
	}
	if (v && n) {
		qsort(v, n, sizeof(double), cmp_double);
		m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	}
	free(v);
	return m;
}

/* The reference of key for it, and where it came from. */
static double reference(json_t *it, json_t *items, const char *key, json_t *ref_file, char *from, size_t len)
{
	const char *scope = ep_item_str(it, "scope"), *name = ep_item_str(it, "name");
	json_t *ritems = json_object_get(ref_file, "items"), *x;
	size_t i;
	json_array_foreach(ritems, i, x) {
		const char *n = json_string_value(json_object_get(x, "name"));
		if (n && !strcmp(n, name) && ep_item_get(x, key) > 0)
			return snprintf(from, len, "--reference's %s", name), ep_item_get(x, key);
	}
	double m = ref_file ? median(ritems, scope, key) : 0;
	if (m > 0)
		return snprintf(from, len, "--reference's median %s", scope), m;
	if (!strcmp(key, "link_gbs") && ep_item_get(it, "nominal_gbs") > 0)
		return snprintf(from, len, "the interfaces' nominal rate"), ep_item_get(it, "nominal_gbs");
	if (!strcmp(scope, "job"))
		return 0; /* one job: no peers */
	int peers = 0;
	json_array_foreach(items, i, x) peers += !strcmp(ep_item_str(x, "scope"), scope) && ep_item_get(x, key) > 0;
	snprintf(from, len, peers > 1 ? "the median %s" : "itself (the only %s: give --reference)", scope);
	return median(items, scope, key);
}

/* One figure against its reference: a check, and maybe a lower verdict. */
static void check(json_t *it, json_t *items, const struct accept_args *a, json_t *ref_file, const char *key,
		  const char *what, const char *unit)
{
	char from[96];
	double f = ep_item_get(it, key), r = f > 0 ? reference(it, items, key, ref_file, from, sizeof(from)) : 0;
	if (f <= 0 || r <= 0)
		return;
	double pct = 100 * f / r;
	enum ep_av v = pct < a->fail_at ? EP_AV_FAIL : pct < a->degraded_at ? EP_AV_DEGRADED : EP_AV_PASS;
	json_array_append_new(json_object_get(it, "checks"),
			      json_pack("{s:s, s:f, s:f, s:s, s:f, s:s}", "what", what, "figure", f, "reference", r, "from",
					from, "pct", pct, "verdict", ep_av_name(v)));
	if (v != EP_AV_PASS)
		ep_item_lower(it, v, EP_EXIT_SLOW, "%s %.3g%s is %.0f%% of %s (%.3g%s): below %s %g%%", what, f, unit, pct, from, r,
		      unit, v == EP_AV_FAIL ? "--fail-at" : "--degraded-at", v == EP_AV_FAIL ? a->fail_at : a->degraded_at);
}

void ep_accept_checks(json_t *items, const struct accept_args *a, json_t *ref_file)
{
	static const char *const keys[][4] = {
		{"node", "copy_gbs", "copy bandwidth", " GB/s"},
		{"node", "dispatch_over_copy", "intranode dispatch / copy", "x"},
		{"node", "combine_over_copy", "intranode combine / copy", "x"},
		{"pair", "link_gbs", "link rate (iperf3, per direction)", " GB/s"},
		{"pair", "dispatch_link_gbs", "internode dispatch on the link", " GB/s"},
		{"pair", "combine_link_gbs", "internode combine on the link", " GB/s"},
		{"job", "dispatch_algbw_gbs", "job dispatch algbw", " GB/s"},
		{"job", "combine_algbw_gbs", "job combine algbw", " GB/s"},
		{"job", "ll_dispatch_algbw_gbs", "job low-latency dispatch algbw", " GB/s"},
		{"job", "ll_combine_algbw_gbs", "job low-latency combine algbw", " GB/s"},
	};
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strcmp(ep_item_str(it, "scope"), keys[k][0]))
				check(it, items, a, ref_file, keys[k][1], keys[k][2], keys[k][3]);
	}
}
