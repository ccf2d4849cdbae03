/* verdict.c - from what every node measured to one verdict per node, node pair and job. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/accept/counters.h"
#include "cli/accept/verdict.h"
#include "collectives/error.h"

/* A child run's exit status, as the item's verdict (lead: the node that
 * writes the run's result, node 0 of its job). */
static void judge_exit(json_t *it, json_t *o, int node, int lead)
{
	if (!o)
		return ep_item_lower(it, EP_AV_FAIL, EP_EXIT_TIMEOUT, "node %d sent nothing for this run (lost)", node);
	if (!json_is_true(json_object_get(o, "ran")))
		return;
	int code = (int)json_integer_value(json_object_get(o, "exit"));
	const char *msg = json_string_value(json_object_get(o, "msg"));
	const char *log = json_string_value(json_object_get(o, "log"));
	const char *tail = log && strrchr(log, '\n') ? strrchr(log, '\n') + 1 : log ? log : "";
	if (code == EP_EXIT_WRONG)
		ep_item_lower(it, EP_AV_FAIL, code, "wrong data on node %d: %s", node, tail);
	else if (code == EP_EXIT_TIMEOUT)
		ep_item_lower(it, EP_AV_FAIL, code, "a rank or node was lost on node %d: %s", node, msg ? msg : tail);
	else if (code == EP_EXIT_SLOW)
		ep_item_lower(it, EP_AV_DEGRADED, code, "node %d: the regression gate fired: %s", node, tail);
	else if (code)
		ep_item_lower(it, EP_AV_FAIL, EP_EXIT_ENV, "node %d: the run failed (exit %d): %s", node, code, msg ? msg : tail);
	else if (lead && !json_object_get(o, "result"))
		ep_item_lower(it, EP_AV_FAIL, EP_EXIT_ENV, "node %d: the run wrote no result", node);
}

/* An op's figure of a child result (points[0].ops[op].key). */
static double op_fig(json_t *o, const char *op, const char *key)
{
	json_t *ops = json_object_get(json_array_get(json_object_get(json_object_get(o, "result"), "points"), 0), "ops"), *x;
	size_t i;
	json_array_foreach(ops, i, x) {
		const char *name = json_string_value(json_object_get(x, "op"));
		if (name && !strcmp(name, op))
			return json_number_value(json_object_get(x, key));
	}
	return 0;
}

/* The NIC counters of node's run o: errors that moved lower the item;
 * the bytes on the wire go next to the bytes epbench computed (node_in_run:
 * the node's index inside that run's job). */
static void judge_counters(json_t *it, json_t *o, int node, int node_in_run, int executions)
{
	json_t *c = json_object_get(o, "counters"), *d = json_object_get(c, "delta"), *v;
	const char *name, *iface = ep_item_str(c, "iface");
	char key[48];
	if (!c)
		return;
	if (json_object_get(c, "note") && json_is_string(json_object_get(c, "note")))
		return ep_item_flag(it, "node %d: %s: WARN, the wire bytes are not measured", node,
			    json_string_value(json_object_get(c, "note")));
	json_object_foreach(d, name, v) if (json_integer_value(v) > 0 && ep_nic_is_error(name))
		ep_item_lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "node %d's NIC counted %s +%lld during the run", node, name,
		      (long long)json_integer_value(v));
	if (json_is_true(json_object_get(c, "loopback")))
		return; /* --local-nodes: loopback carries every emulated node's traffic, nobody's own */
	snprintf(key, sizeof(key), "%s tx_bytes", iface);
	double wire = (double)json_integer_value(json_object_get(d, key)), computed = 0;
	json_t *nd = json_array_get(
		json_object_get(json_array_get(json_object_get(json_object_get(o, "result"), "points"), 0), "nodes"),
		(size_t)node_in_run);
	const char *ops[] = {"dispatch", "combine"};
	for (int i = 0; i < 2; i++)
		computed += json_number_value(json_object_get(json_object_get(nd, ops[i]), "wire_bytes"));
	computed *= executions;
	if (wire <= 0 || computed <= 0)
		return;
	snprintf(key, sizeof(key), "node%d_wire_over_computed", node);
	ep_item_fig(it, key, wire / computed);
	if (wire < 0.97 * computed || wire > 1.15 * computed)
		ep_item_flag(it, "node %d: %s sent %.3g MB on the wire, epbench computed %.3g MB (%.0f%%): outside [97%%, 115%%]",
		     node, iface, wire / 1e6, computed / 1e6, 100 * wire / computed);
}

/* Node k's preflight: its FAILs, and what differs from node 0's. */
static void judge_preflight(json_t *it, const struct ep_accept_results *res, int k)
{
	json_t *pf = json_object_get(ep_result_of(res, 0, k), "preflight"), *pf0 = json_object_get(ep_result_of(res, 0, 0), "preflight"), *x;
	size_t i;
	if (!res->done_steps)
		return ep_item_flag(it, "preflight: not gathered (the job ended before: %s)", res->lost_msg);
	if (!pf)
		return ep_item_lower(it, EP_AV_FAIL, EP_EXIT_TIMEOUT, "node %d sent no preflight (lost)", k);
	json_array_foreach(json_object_get(pf, "items"), i, x) {
		const char *n = json_string_value(json_object_get(x, "name")), *v = json_string_value(json_object_get(x, "value"));
		if (!n || !v)
			continue;
		const char *lv = ep_item_str(x, "level"), *v0 = k ? ep_pf_value(pf0, n) : NULL;
		if (!strcmp(lv, "FAIL"))
			ep_item_lower(it, EP_AV_FAIL, EP_EXIT_ENV, "preflight FAIL on node %d: %s: %s (%s)", k, n, v, ep_item_str(x, "fix"));
		else if (v0 && ep_pf_compared(n) && strcmp(v, v0))
			ep_item_lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "preflight differs from node 0: %s is '%s' on node %d, '%s' on node 0",
			      n, v, k, v0);
	}
}

/* Was step s run to its end? If not, the item says so (its verdict stays). */
static int was_run(json_t *it, const struct ep_accept_results *res, int s)
{
	if (s < 0)
		return 0;
	if (s < res->done_steps)
		return 1;
	if (s == res->done_steps && res->lost_code)
		return ep_item_lower(it, EP_AV_FAIL, res->lost_code, "%s: the job ended during this run: %s", res->steps[s].name,
			     res->lost_msg[0] ? res->lost_msg : "a node was lost"), 0;
	ep_item_flag(it, "%s: not run (the job ended before it%s%s)", res->steps[s].name, res->lost_msg[0] ? ": " : "",
	     res->lost_msg);
	return 0;
}

static void node_item(json_t *it, const struct accept_args *a, const struct ep_accept_results *res, int k)
{
	judge_preflight(it, res, k);
	int s = ep_step_find(res, EP_STEP_NODE, k, -1);
	if (!was_run(it, res, s))
		return;
	json_t *o = ep_result_of(res, s, k);
	judge_exit(it, o, k, 1);
	double copy = json_number_value(json_object_get(json_object_get(json_object_get(o, "result"), "host"), "copy_gbs"));
	ep_item_fig(it, "copy_gbs", copy);
	const char *ops[] = {"dispatch", "combine"};
	for (int i = 0; i < 2 && copy > 0; i++) {
		char key[48];
		double agg = op_fig(o, ops[i], "aggbw_gbs");
		snprintf(key, sizeof(key), "%s_aggbw_gbs", ops[i]);
		ep_item_fig(it, key, agg);
		snprintf(key, sizeof(key), "%s_over_copy", ops[i]);
		ep_item_fig(it, key, agg / copy);
	}
	(void)a;
}

/* The slower direction of a pair's link for op (points[0].links). */
static double link_fig(json_t *o, const char *op)
{
	json_t *links = json_object_get(json_array_get(json_object_get(json_object_get(o, "result"), "points"), 0), "links"), *x;
	size_t i;
	double worst = 0;
	json_array_foreach(links, i, x) {
		double g = json_number_value(json_object_get(json_object_get(x, op), "gbs"));
		worst = i == 0 || g < worst ? g : worst;
	}
	return worst;
}

static void pair_item(json_t *it, const struct accept_args *a, const struct ep_accept_results *res, int p, int q)
{
	int s = ep_step_find(res, EP_STEP_PAIR, p, q), ex = a->warmup + a->iters + 1;
	if (!was_run(it, res, s))
		return;
	json_t *op = ep_result_of(res, s, p), *oq = ep_result_of(res, s, q);
	judge_exit(it, op, p, 1);
	judge_exit(it, oq, q, 0);
	judge_counters(it, op, p, 0, ex);
	judge_counters(it, oq, q, 1, ex);
	json_t *ip = json_object_get(oq, "iperf");
	if (json_object_get(ip, "error"))
		ep_item_flag(it, "iperf3 from node %d to node %d: %s: the link's rate is not measured", q, p,
		     ep_item_str(ip, "error"));
	ep_item_fig(it, "link_gbs", json_number_value(json_object_get(ip, "gbps")));
	double np = json_number_value(json_object_get(op, "nominal_gbs")), nq = json_number_value(json_object_get(oq, "nominal_gbs"));
	ep_item_fig(it, "nominal_gbs", np > 0 && nq > 0 ? fmin(np, nq) : 0);
	ep_item_fig(it, "dispatch_link_gbs", link_fig(op, "dispatch"));
	ep_item_fig(it, "combine_link_gbs", link_fig(op, "combine"));
	if (ep_item_get(it, "link_gbs") > 0)
		ep_item_fig(it, "dispatch_over_link", ep_item_get(it, "dispatch_link_gbs") / ep_item_get(it, "link_gbs"));
}

static void job_item(json_t *it, const struct accept_args *a, const struct ep_accept_results *res)
{
	enum ep_step_kind kinds[] = {EP_STEP_JOB, EP_STEP_JOB_LL};
	const char *prefix[] = {"", "ll_"}, *ops[] = {"dispatch", "combine"};
	for (int i = 0; i < 2; i++) {
		int s = ep_step_find(res, kinds[i], -1, -1);
		if (!was_run(it, res, s))
			continue;
		for (int k = 0; s >= 0 && k < res->nodes; k++) {
			judge_exit(it, ep_result_of(res, s, k), k, k == 0);
			if (kinds[i] == EP_STEP_JOB)
				judge_counters(it, ep_result_of(res, s, k), k, k, a->warmup + a->iters + 1);
		}
		for (int o = 0; s >= 0 && o < 2; o++) {
			char key[48];
			snprintf(key, sizeof(key), "%s%s_algbw_gbs", prefix[i], ops[o]);
			ep_item_fig(it, key, op_fig(ep_result_of(res, s, 0), ops[o], "algbw_gbs"));
		}
	}
}

json_t *ep_accept_verdicts(const struct accept_args *a, const struct ep_accept_results *res)
{
	json_t *items = json_array();
	char name[32];
	int N = res->nodes, code = res->lost_code;
	for (int k = 0; k < N; k++)
		snprintf(name, sizeof(name), "node %d", k), json_array_append_new(items, ep_item_new("node", name));
	for (int p = 0; p < N; p++)
		for (int q = p + 1; q < N && ep_step_find(res, EP_STEP_PAIR, p, q) >= 0; q++)
			snprintf(name, sizeof(name), "pair %d-%d", p, q), json_array_append_new(items, ep_item_new("pair", name));
	if (ep_step_find(res, EP_STEP_JOB, -1, -1) >= 0)
		json_array_append_new(items, ep_item_new("job", "job"));
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *scope = ep_item_str(it, "scope"), *n = ep_item_str(it, "name");
		int p = -1, q = -1;
		if (!strcmp(scope, "node") && sscanf(n, "node %d", &p) == 1)
			node_item(it, a, res, p);
		else if (!strcmp(scope, "pair") && sscanf(n, "pair %d-%d", &p, &q) == 2)
			pair_item(it, a, res, p, q);
		else
			job_item(it, a, res);
	}
	ep_accept_nic_items(items, res);
	ep_accept_checks(items, a, res->reference);
	json_t *sorted = json_array(); /* worst first, in plan order within a level */
	for (int lv = EP_AV_FAIL; lv >= EP_AV_PASS; lv--)
		json_array_foreach(items, i, it) if ((int)ep_item_level(it) == lv) {
			code = ep_exit_worse(code, (int)json_integer_value(json_object_get(it, "exit")));
			json_array_append(sorted, it);
		}
	json_decref(items);
	items = sorted;
	return json_pack("{s:o, s:i}", "items", items, "exit", code);
}
