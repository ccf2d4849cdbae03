/* reference.c - --reference: a known-good `epbench accept --json` file for the same shape. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/accept/accept.h"
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
