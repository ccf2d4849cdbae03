/* mindie_config.c - MindIE's config.json: the parallel keys of its first ModelConfig. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/mindie_config.h"
#include "collectives/error.h"
#include "reports/text_file.h"

/* One integer key of mc into *out (absent: left alone). */
static int key(json_t *mc, const char *name, const char *what, int *out, char *err, size_t len)
{
	json_t *v = json_object_get(mc, name);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 65536 || json_integer_value(v) == 0)
		return ep_refuse(err, len, "%s: ModelConfig[0].%s must be -1 (unset) or a whole number from 1 to 65536", what, name);
	*out = (int)json_integer_value(v);
	return 0;
}

static int ep_level(json_t *mc, const char *what, struct ep_parallel *p, char *err, size_t len)
{
	json_t *lv = json_object_get(json_object_get(json_object_get(mc, "models"), "deepseekv2"), "ep_level");
	if (!lv)
		return 0;
	if (!json_is_integer(lv) || (json_integer_value(lv) != 1 && json_integer_value(lv) != 2))
		return ep_refuse(err, len, "%s: models.deepseekv2.ep_level must be 1 (allgather) or 2 (all-to-all)", what);
	p->moe_comm = json_integer_value(lv) == 1 ? EP_MOE_ALLGATHER : EP_MOE_A2A;
	p->comm_given = 1;
	return 0;
}

int ep_mindie_config_parse(const char *text, size_t n, const char *what, struct ep_parallel *p, char *err, size_t len)
{
	static const char *const keys[EP_PAR_KEYS] = {"dp", "tp", "cp", "sp", "moe_tp", "moe_ep"};
	json_error_t je;
	json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return ep_refuse(err, len, "%s is not JSON: %s (line %d)", what, je.text, je.line);
	json_t *mc = json_array_get(
		json_object_get(json_object_get(json_object_get(root, "BackendConfig"), "ModelDeployConfig"), "ModelConfig"), 0);
	int rc = 0;
	if (!json_is_object(mc))
		rc = ep_refuse(err, len, "%s has no BackendConfig.ModelDeployConfig.ModelConfig[0]", what);
	for (int k = 0; !rc && k < EP_PAR_KEYS; k++)
		rc = key(mc, keys[k], what, &p->v[k], err, len);
	if (!rc)
		rc = key(mc, "worldSize", what, &p->world, err, len);
	if (!rc)
		rc = ep_level(mc, what, p, err, len);
	if (!rc)
		snprintf(p->from, sizeof(p->from), "%s", what);
	json_decref(root);
	return rc;
}

int ep_mindie_config_read(const char *path, struct ep_parallel *p, char *err, size_t len)
{
	char *text, what[128], q[96];
	size_t n;
	if (ep_text_file_read("--mindie-config", path, 1 << 22, &text, &n, err, len))
		return -1;
	snprintf(what, sizeof(what), "--mindie-config '%s'", ep_quote(path, q, sizeof(q)));
	int rc = ep_mindie_config_parse(text, n, what, p, err, len);
	free(text);
	return rc;
}
