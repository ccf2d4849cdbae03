/* item.c - a judged item and the readers of what nodes sent. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/accept/item.h"
#include "collectives/error.h"

const char *ep_av_name(enum ep_av v)
{
	return v == EP_AV_FAIL ? "FAIL" : v == EP_AV_DEGRADED ? "DEGRADED" : "PASS";
}

/* A string member, "" when absent or not a string (objects from other nodes and files are not trusted). */
const char *ep_item_str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

json_t *ep_result_of(const struct ep_accept_results *res, int step, int node)
{
	return step >= 0 && step < res->done_steps ? res->r[(size_t)step * (size_t)res->nodes + (size_t)node] : NULL;
}

int ep_step_find(const struct ep_accept_results *res, enum ep_step_kind k, int a, int b)
{
	for (int s = 0; s < res->nsteps; s++)
		if (res->steps[s].kind == k && (k != EP_STEP_NODE || res->steps[s].a == a) &&
		    (k != EP_STEP_PAIR || (res->steps[s].a == a && res->steps[s].b == b)))
			return s;
	return -1;
}

json_t *ep_item_new(const char *scope, const char *name)
{
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:o}", "scope", scope, "name", name, "verdict", "PASS",
			 "exit", 0, "why", "every check passed", "figures", json_object(), "checks", json_array(),
			 "flags", json_array());
}

enum ep_av ep_item_level(json_t *it)
{
	const char *v = json_string_value(json_object_get(it, "verdict"));
	return !strcmp(v, "FAIL") ? EP_AV_FAIL : !strcmp(v, "DEGRADED") ? EP_AV_DEGRADED : EP_AV_PASS;
}

/* Lowers it to v (never raises it) with why, and folds code into its exit status. */
void ep_item_lower(json_t *it, enum ep_av v, int code, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	int old = (int)json_integer_value(json_object_get(it, "exit"));
	json_object_set_new(it, "exit", json_integer(ep_exit_worse(old, code)));
	if (v > ep_item_level(it) || (v == ep_item_level(it) && v != EP_AV_PASS && ep_exit_worse(old, code) != old)) {
		json_object_set_new(it, "verdict", json_string(ep_av_name(v)));
		json_object_set_new(it, "why", json_string(why));
	}
}

void ep_item_flag(json_t *it, const char *fmt, ...)
{
	char s[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	json_array_append_new(json_object_get(it, "flags"), json_string(s));
}

void ep_item_fig(json_t *it, const char *key, double v)
{
	if (v > 0 && isfinite(v))
		json_object_set_new(json_object_get(it, "figures"), key, json_real(v));
}

double ep_item_get(json_t *it, const char *key)
{
	return json_number_value(json_object_get(json_object_get(it, "figures"), key));
}

/* Preflight items that must agree across nodes: rates, MTUs, versions. */
int ep_pf_compared(const char *name)
{
	size_t n = strlen(name);
	int port_figure = !strncmp(name, "port ", 5) && ((n > 5 && !strcmp(name + n - 5, " rate")) ||
							(n > 4 && !strcmp(name + n - 4, " mtu")));
	return port_figure || !strncmp(name, "interface ", 10) || !strcmp(name, "kernel") || !strcmp(name, "rdma-core") ||
	       !strcmp(name, "ports at one rate");
}

const char *ep_pf_value(json_t *pf, const char *name)
{
	json_t *x;
	size_t i;
	json_array_foreach(json_object_get(pf, "items"), i, x) {
		const char *n = json_string_value(json_object_get(x, "name"));
		if (n && !strcmp(n, name))
			return json_string_value(json_object_get(x, "value"));
	}
	return NULL;
}
