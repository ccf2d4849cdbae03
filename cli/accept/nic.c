/* nic.c - one verdict per NIC of each node: its preflight items and its counters over every run.
 *
 * A node's NICs are the RDMA ports its preflight found ("port DEV/P ...")
 * and the interface that carries its data (from the counters of its
 * runs). A NIC's item is FAIL when one of its preflight items is, DEGRADED
 * when one differs from node 0's (rate, MTU) or when one of its error or
 * congestion counters moved during any run (named, with the total); its
 * figures are its rate and the bytes it sent over all runs.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accept/counters.h"
#include "cli/accept/verdict.h"
#include "collectives/error.h"

#define MAX_NICS 16

/* Does a preflight or counter name belong to nic ("port rxe0/1 rate", "eth0 tx_bytes")? */
static int belongs(const char *name, const char *nic)
{
	size_t n = strlen(nic);
	const char *p = strstr(name, nic);
	return p && (p == name || p[-1] == ' ') && (p[n] == ' ' || !p[n]);
}

static int add_nic(char nics[][40], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(nics[i], name))
			return n;
	if (n >= MAX_NICS || !*name)
		return n;
	snprintf(nics[n], 40, "%s", name);
	return n + 1;
}

/* Node k's NICs: RDMA ports from its preflight, its data interface from its runs. */
static int find_nics(const struct ep_accept_results *res, int k, char nics[][40])
{
	json_t *x, *pf = json_object_get(ep_result_of(res, 0, k), "preflight");
	size_t i;
	int n = 0;
	char dev[40];
	json_array_foreach(json_object_get(pf, "items"), i, x) if (sscanf(ep_item_str(x, "name"), "port %39s rate", dev) == 1)
		n = add_nic(nics, n, dev);
	for (int s = 1; s < res->done_steps; s++) {
		json_t *c = json_object_get(ep_result_of(res, s, k), "counters");
		if (!json_is_true(json_object_get(c, "loopback")))
			n = add_nic(nics, n, ep_item_str(c, "iface"));
	}
	return n;
}

static void nic_preflight(json_t *it, const struct ep_accept_results *res, int k, const char *nic)
{
	json_t *x, *pf = json_object_get(ep_result_of(res, 0, k), "preflight");
	json_t *pf0 = json_object_get(ep_result_of(res, 0, 0), "preflight");
	size_t i;
	json_array_foreach(json_object_get(pf, "items"), i, x) {
		const char *n = ep_item_str(x, "name"), *v = ep_item_str(x, "value"), *v0 = k ? ep_pf_value(pf0, n) : NULL;
		double gbps;
		if (!belongs(n, nic))
			continue;
		if (strstr(n, " rate") || !strncmp(n, "interface ", 10))
			if (sscanf(v, "%lf Gb/s", &gbps) == 1)
				ep_item_fig(it, "rate_gbps", gbps);
		if (!strcmp(ep_item_str(x, "level"), "FAIL"))
			ep_item_lower(it, EP_AV_FAIL, EP_EXIT_ENV, "preflight FAIL: %s: %s", n, v);
		else if (v0 && ep_pf_compared(n) && strcmp(v, v0))
			ep_item_lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "%s is '%s' here, '%s' on node 0", n, v, v0);
	}
}

/* The NIC's counters summed over every run of node k. */
static void nic_counters(json_t *it, const struct ep_accept_results *res, int k, const char *nic)
{
	json_t *sum = json_object(), *v;
	const char *name;
	for (int s = 1; s < res->done_steps; s++)
		json_object_foreach(json_object_get(json_object_get(ep_result_of(res, s, k), "counters"), "delta"), name, v) {
			if (!belongs(name, nic) || !json_is_integer(v))
				continue;
			json_int_t was = json_integer_value(json_object_get(sum, name));
			json_object_set_new(sum, name, json_integer(was + json_integer_value(v)));
		}
	json_object_foreach(sum, name, v) {
		double x = (double)json_integer_value(v);
		if (x > 0 && ep_nic_is_error(name))
			ep_item_lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "%s +%.0f over the runs", name, x);
		if (strstr(name, " tx_bytes"))
			ep_item_fig(it, "tx_bytes", x);
		else if (strstr(name, " port_xmit_data") && ep_item_get(it, "tx_bytes") <= 0)
			ep_item_fig(it, "tx_bytes", 4 * x);
	}
	json_decref(sum);
}

void ep_accept_nic_items(json_t *items, const struct ep_accept_results *res)
{
	char nics[MAX_NICS][40], name[96];
	for (int k = 0; k < res->nodes && res->done_steps; k++) {
		int n = find_nics(res, k, nics);
		for (int i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "node %d %.39s", k, nics[i]);
			json_t *it = ep_item_new("nic", name);
			nic_preflight(it, res, k, nics[i]);
			nic_counters(it, res, k, nics[i]);
			json_array_append_new(items, it);
		}
	}
}
