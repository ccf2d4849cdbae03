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

const char *ep_av_name(enum ep_av v)
{
	return v == EP_AV_FAIL ? "FAIL" : v == EP_AV_DEGRADED ? "DEGRADED" : "PASS";
}

/* A string member, "" when absent or not a string (objects from other nodes and files are not trusted). */
static const char *sget(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static json_t *obj(const struct ep_accept_results *res, int step, int node)
{
	return step >= 0 && step < res->done_steps ? res->r[(size_t)step * (size_t)res->nodes + (size_t)node] : NULL;
}

static int step_of(const struct ep_accept_results *res, enum ep_step_kind k, int a, int b)
{
	for (int s = 0; s < res->nsteps; s++)
		if (res->steps[s].kind == k && (k != EP_STEP_NODE || res->steps[s].a == a) &&
		    (k != EP_STEP_PAIR || (res->steps[s].a == a && res->steps[s].b == b)))
			return s;
	return -1;
}

static json_t *new_item(const char *scope, const char *name)
{
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:o}", "scope", scope, "name", name, "verdict", "PASS",
			 "exit", 0, "why", "every check passed", "figures", json_object(), "checks", json_array(),
			 "flags", json_array());
}

static enum ep_av level(json_t *it)
{
	const char *v = json_string_value(json_object_get(it, "verdict"));
	return !strcmp(v, "FAIL") ? EP_AV_FAIL : !strcmp(v, "DEGRADED") ? EP_AV_DEGRADED : EP_AV_PASS;
}

/* Lowers it to v (never raises it) with why, and folds code into its exit status. */
static void lower(json_t *it, enum ep_av v, int code, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	int old = (int)json_integer_value(json_object_get(it, "exit"));
	json_object_set_new(it, "exit", json_integer(ep_exit_worse(old, code)));
	if (v > level(it) || (v == level(it) && v != EP_AV_PASS && ep_exit_worse(old, code) != old)) {
		json_object_set_new(it, "verdict", json_string(ep_av_name(v)));
		json_object_set_new(it, "why", json_string(why));
	}
}

static void flag(json_t *it, const char *fmt, ...)
{
	char s[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	json_array_append_new(json_object_get(it, "flags"), json_string(s));
}

static void fig(json_t *it, const char *key, double v)
{
	if (v > 0 && isfinite(v))
		json_object_set_new(json_object_get(it, "figures"), key, json_real(v));
}

static double get_fig(json_t *it, const char *key)
{
	return json_number_value(json_object_get(json_object_get(it, "figures"), key));
}

/* A child run's exit status, as the item's verdict (lead: the node that
 * writes the run's result, node 0 of its job). */
static void judge_exit(json_t *it, json_t *o, int node, int lead)
{
	if (!o)
		return lower(it, EP_AV_FAIL, EP_EXIT_TIMEOUT, "node %d sent nothing for this run (lost)", node);
	if (!json_is_true(json_object_get(o, "ran")))
		return;
	int code = (int)json_integer_value(json_object_get(o, "exit"));
	const char *msg = json_string_value(json_object_get(o, "msg"));
	const char *log = json_string_value(json_object_get(o, "log"));
	const char *tail = log && strrchr(log, '\n') ? strrchr(log, '\n') + 1 : log ? log : "";
	if (code == EP_EXIT_WRONG)
		lower(it, EP_AV_FAIL, code, "wrong data on node %d: %s", node, tail);
	else if (code == EP_EXIT_TIMEOUT)
		lower(it, EP_AV_FAIL, code, "a rank or node was lost on node %d: %s", node, msg ? msg : tail);
	else if (code == EP_EXIT_SLOW)
		lower(it, EP_AV_DEGRADED, code, "node %d: the regression gate fired: %s", node, tail);
	else if (code)
		lower(it, EP_AV_FAIL, EP_EXIT_ENV, "node %d: the run failed (exit %d): %s", node, code, msg ? msg : tail);
	else if (lead && !json_object_get(o, "result"))
		lower(it, EP_AV_FAIL, EP_EXIT_ENV, "node %d: the run wrote no result", node);
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
	const char *name, *iface = sget(c, "iface");
	char key[48];
	if (!c)
		return;
	if (json_object_get(c, "note") && json_is_string(json_object_get(c, "note")))
		return flag(it, "node %d: %s: WARN, the wire bytes are not measured", node,
			    json_string_value(json_object_get(c, "note")));
	json_object_foreach(d, name, v) if (json_integer_value(v) > 0 && ep_nic_is_error(name))
		lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "node %d's NIC counted %s +%lld during the run", node, name,
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
	fig(it, key, wire / computed);
	if (wire < 0.97 * computed || wire > 1.15 * computed)
		flag(it, "node %d: %s sent %.3g MB on the wire, epbench computed %.3g MB (%.0f%%): outside [97%%, 115%%]",
		     node, iface, wire / 1e6, computed / 1e6, 100 * wire / computed);
}

/* Preflight items that must agree across nodes: rates, MTUs, versions. */
static int compared(const char *name)
{
	return !strncmp(name, "interface ", 10) || !strncmp(name, "port ", 5) || !strcmp(name, "kernel") ||
	       !strcmp(name, "rdma-core") || !strcmp(name, "ports at one rate");
}

static const char *pf_value(json_t *pf, const char *name)
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

/* Node k's preflight: its FAILs, and what differs from node 0's. */
static void judge_preflight(json_t *it, const struct ep_accept_results *res, int k)
{
	json_t *pf = json_object_get(obj(res, 0, k), "preflight"), *pf0 = json_object_get(obj(res, 0, 0), "preflight"), *x;
	size_t i;
	if (!res->done_steps)
		return flag(it, "preflight: not gathered (the job ended before: %s)", res->lost_msg);
	if (!pf)
		return lower(it, EP_AV_FAIL, EP_EXIT_TIMEOUT, "node %d sent no preflight (lost)", k);
	json_array_foreach(json_object_get(pf, "items"), i, x) {
		const char *n = json_string_value(json_object_get(x, "name")), *v = json_string_value(json_object_get(x, "value"));
		if (!n || !v)
			continue;
		const char *lv = sget(x, "level"), *v0 = k ? pf_value(pf0, n) : NULL;
		if (!strcmp(lv, "FAIL"))
			lower(it, EP_AV_FAIL, EP_EXIT_ENV, "preflight FAIL on node %d: %s: %s (%s)", k, n, v, sget(x, "fix"));
		else if (v0 && compared(n) && strcmp(v, v0))
			lower(it, EP_AV_DEGRADED, EP_EXIT_SLOW, "preflight differs from node 0: %s is '%s' on node %d, '%s' on node 0",
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
		return lower(it, EP_AV_FAIL, res->lost_code, "%s: the job ended during this run: %s", res->steps[s].name,
			     res->lost_msg[0] ? res->lost_msg : "a node was lost"), 0;
	flag(it, "%s: not run (the job ended before it%s%s)", res->steps[s].name, res->lost_msg[0] ? ": " : "",
	     res->lost_msg);
	return 0;
}

static void node_item(json_t *it, const struct accept_args *a, const struct ep_accept_results *res, int k)
{
	judge_preflight(it, res, k);
	int s = step_of(res, EP_STEP_NODE, k, -1);
	if (!was_run(it, res, s))
		return;
	json_t *o = obj(res, s, k);
	judge_exit(it, o, k, 1);
	double copy = json_number_value(json_object_get(json_object_get(json_object_get(o, "result"), "host"), "copy_gbs"));
	fig(it, "copy_gbs", copy);
	const char *ops[] = {"dispatch", "combine"};
	for (int i = 0; i < 2 && copy > 0; i++) {
		char key[48];
		double agg = op_fig(o, ops[i], "aggbw_gbs");
		snprintf(key, sizeof(key), "%s_aggbw_gbs", ops[i]);
		fig(it, key, agg);
		snprintf(key, sizeof(key), "%s_over_copy", ops[i]);
		fig(it, key, agg / copy);
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
	int s = step_of(res, EP_STEP_PAIR, p, q), ex = a->warmup + a->iters + 1;
	if (!was_run(it, res, s))
		return;
	json_t *op = obj(res, s, p), *oq = obj(res, s, q);
	judge_exit(it, op, p, 1);
	judge_exit(it, oq, q, 0);
	judge_counters(it, op, p, 0, ex);
	judge_counters(it, oq, q, 1, ex);
	json_t *ip = json_object_get(oq, "iperf");
	if (json_object_get(ip, "error"))
		flag(it, "iperf3 from node %d to node %d: %s: the link's rate is not measured", q, p,
		     sget(ip, "error"));
	fig(it, "link_gbs", json_number_value(json_object_get(ip, "gbps")));
	double np = json_number_value(json_object_get(op, "nominal_gbs")), nq = json_number_value(json_object_get(oq, "nominal_gbs"));
	fig(it, "nominal_gbs", np > 0 && nq > 0 ? fmin(np, nq) : 0);
	fig(it, "dispatch_link_gbs", link_fig(op, "dispatch"));
	fig(it, "combine_link_gbs", link_fig(op, "combine"));
	if (get_fig(it, "link_gbs") > 0)
		fig(it, "dispatch_over_link", get_fig(it, "dispatch_link_gbs") / get_fig(it, "link_gbs"));
}

static void job_item(json_t *it, const struct accept_args *a, const struct ep_accept_results *res)
{
	enum ep_step_kind kinds[] = {EP_STEP_JOB, EP_STEP_JOB_LL};
	const char *prefix[] = {"", "ll_"}, *ops[] = {"dispatch", "combine"};
	for (int i = 0; i < 2; i++) {
		int s = step_of(res, kinds[i], -1, -1);
		if (!was_run(it, res, s))
			continue;
		for (int k = 0; s >= 0 && k < res->nodes; k++) {
			judge_exit(it, obj(res, s, k), k, k == 0);
			if (kinds[i] == EP_STEP_JOB)
				judge_counters(it, obj(res, s, k), k, k, a->warmup + a->iters + 1);
		}
		for (int o = 0; s >= 0 && o < 2; o++) {
			char key[48];
			snprintf(key, sizeof(key), "%s%s_algbw_gbs", prefix[i], ops[o]);
			fig(it, key, op_fig(obj(res, s, 0), ops[o], "algbw_gbs"));
		}
	}
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
		double f = get_fig(x, key);
		if (v && f > 0 && !strcmp(sget(x, "scope"), scope))
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
	const char *scope = sget(it, "scope"), *name = sget(it, "name");
	json_t *ritems = json_object_get(ref_file, "items"), *x;
	size_t i;
	json_array_foreach(ritems, i, x) {
		const char *n = json_string_value(json_object_get(x, "name"));
		if (n && !strcmp(n, name) && get_fig(x, key) > 0)
			return snprintf(from, len, "--reference's %s", name), get_fig(x, key);
	}
	double m = ref_file ? median(ritems, scope, key) : 0;
	if (m > 0)
		return snprintf(from, len, "--reference's median %s", scope), m;
	if (!strcmp(key, "link_gbs") && get_fig(it, "nominal_gbs") > 0)
		return snprintf(from, len, "the interfaces' nominal rate"), get_fig(it, "nominal_gbs");
	if (!strcmp(scope, "job"))
		return 0; /* one job: no peers */
	int peers = 0;
	json_array_foreach(items, i, x) peers += !strcmp(sget(x, "scope"), scope) && get_fig(x, key) > 0;
	snprintf(from, len, peers > 1 ? "the median %s" : "itself (the only %s: give --reference)", scope);
	return median(items, scope, key);
}

/* One figure against its reference: a check, and maybe a lower verdict. */
static void check(json_t *it, json_t *items, const struct accept_args *a, json_t *ref_file, const char *key,
		  const char *what, const char *unit)
{
	char from[96];
	double f = get_fig(it, key), r = f > 0 ? reference(it, items, key, ref_file, from, sizeof(from)) : 0;
	if (f <= 0 || r <= 0)
		return;
	double pct = 100 * f / r;
	enum ep_av v = pct < a->fail_at ? EP_AV_FAIL : pct < a->degraded_at ? EP_AV_DEGRADED : EP_AV_PASS;
	json_array_append_new(json_object_get(it, "checks"),
			      json_pack("{s:s, s:f, s:f, s:s, s:f, s:s}", "what", what, "figure", f, "reference", r, "from",
					from, "pct", pct, "verdict", ep_av_name(v)));
	if (v != EP_AV_PASS)
		lower(it, v, EP_EXIT_SLOW, "%s %.3g%s is %.0f%% of %s (%.3g%s): below %s %g%%", what, f, unit, pct, from, r,
		      unit, v == EP_AV_FAIL ? "--fail-at" : "--degraded-at", v == EP_AV_FAIL ? a->fail_at : a->degraded_at);
}

static void checks(json_t *items, const struct accept_args *a, json_t *ref_file)
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
			if (!strcmp(sget(it, "scope"), keys[k][0]))
				check(it, items, a, ref_file, keys[k][1], keys[k][2], keys[k][3]);
	}
}

static int worse_first(const void *x, const void *y)
{
	json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	return (int)level(b) - (int)level(a);
}

json_t *ep_accept_verdicts(const struct accept_args *a, const struct ep_accept_results *res)
{
	json_t *items = json_array();
	char name[32];
	int N = res->nodes, code = res->lost_code;
	for (int k = 0; k < N; k++)
		snprintf(name, sizeof(name), "node %d", k), json_array_append_new(items, new_item("node", name));
	for (int p = 0; p < N; p++)
		for (int q = p + 1; q < N && step_of(res, EP_STEP_PAIR, p, q) >= 0; q++)
			snprintf(name, sizeof(name), "pair %d-%d", p, q), json_array_append_new(items, new_item("pair", name));
	if (step_of(res, EP_STEP_JOB, -1, -1) >= 0)
		json_array_append_new(items, new_item("job", "job"));
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *scope = sget(it, "scope"), *n = sget(it, "name");
		int p = -1, q = -1;
		if (!strcmp(scope, "node") && sscanf(n, "node %d", &p) == 1)
			node_item(it, a, res, p);
		else if (!strcmp(scope, "pair") && sscanf(n, "pair %d-%d", &p, &q) == 2)
			pair_item(it, a, res, p, q);
		else
			job_item(it, a, res);
	}
	checks(items, a, res->reference);
	size_t n = json_array_size(items);
	json_t **v = calloc(n + 1, sizeof(*v));
	for (i = 0; v && i < n; i++)
		v[i] = json_incref(json_array_get(items, i)), code = ep_exit_worse(code, (int)json_integer_value(json_object_get(v[i], "exit")));
	if (v) {
		qsort(v, n, sizeof(*v), worse_first);
		json_array_clear(items);
		for (i = 0; i < n; i++)
			json_array_append_new(items, v[i]);
	}
	free(v);
	return json_pack("{s:o, s:i}", "items", items, "exit", code);
}
