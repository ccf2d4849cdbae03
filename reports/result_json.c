/* result_json.c - writing results as epbench/2 JSON, and reading epbench/1 and /2 with Jansson. */
#include "reports/result_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/atomic_file.h"
#include "reports/json.h"
#include "reports/stats.h"
#include "reports/text_file.h"

/* ---- writing ------------------------------------------------------------ */

static void json_stats(struct ep_json *j, const char *key, const struct ep_stats *s)
{
	ep_json_begin_object(j, key);
	ep_json_uint(j, "n", s->n);
	ep_json_double(j, "min", s->min);
	ep_json_double(j, "median", s->median);
	ep_json_double(j, "p90", s->p90);
	ep_json_double(j, "p99", s->p99);
	ep_json_double(j, "max", s->max);
	ep_json_double(j, "mean", s->mean);
	ep_json_double(j, "stddev", s->stddev);
	ep_json_end_object(j);
}

static void json_doubles(struct ep_json *j, const char *key, const double *v, int n)
{
	ep_json_begin_array(j, key);
	for (int i = 0; i < n; i++)
		ep_json_double(j, NULL, v[i]);
	ep_json_end_array(j);
}

static void json_check(struct ep_json *j, const struct ep_point *pt)
{
	const struct ep_run_result *r = &pt->res;
	ep_json_begin_object(j, "check");
	ep_json_bool(j, "enabled", r->checked);
	ep_json_uint(j, "compared_bytes", r->checked_bytes);
	ep_json_uint(j, "wrong_elements", r->wrong_elems);
	ep_json_uint(j, "wrong_rows", r->wrong_rows);
	if (r->handle_checked_bytes) {
		ep_json_uint(j, "handle_compared_bytes", r->handle_checked_bytes);
		ep_json_uint(j, "handle_wrong_elements", r->handle_wrong_elems);
	}
	ep_json_string(j, "first_mismatch", r->first_mismatch[0] ? r->first_mismatch : NULL);
	if (r->wrong_matrix && r->wrong_elems) {
		ep_json_begin_array(j, "wrong_rows_src_dst");
		for (int s = 0; s < pt->ranks; s++) {
			ep_json_begin_array(j, NULL);
			for (int d = 0; d < pt->ranks; d++)
				ep_json_uint(j, NULL, r->wrong_matrix[s * pt->ranks + d]);
			ep_json_end_array(j);
		}
		ep_json_end_array(j);
	}
	ep_json_end_object(j);
}

static void json_ops(struct ep_json *j, const struct ep_point *pt)
{
	const struct ep_run_result *r = &pt->res;
	ep_json_begin_array(j, "ops");
	for (int i = 0; i < r->nops; i++) {
		const struct ep_op_result *op = &r->ops[i];
		if (!op->timed)
			continue;
		ep_json_begin_object(j, NULL);
		ep_json_string(j, "op", op->name);
		if (op->tokens) /* an op that runs other tokens than the point's (mixed) */
			ep_json_int(j, "tokens", op->tokens);
		if (op->recv_rows && op->recv_rows != r->recv_rows)
			ep_json_uint(j, "recv_rows", op->recv_rows);
		json_stats(j, "time_us", &op->time_us);
		ep_json_int(j, "slowest_rank", op->slowest_rank);
		ep_json_uint(j, "alg_bytes", op->alg_bytes);
		ep_json_uint(j, "wire_bytes", op->wire_bytes);
		ep_json_double(j, "algbw_gbs", op->algbw_gbs);
		ep_json_double(j, "wirebw_gbs", op->wirebw_gbs);
		ep_json_double(j, "aggbw_gbs", op->aggbw_gbs);
		ep_json_bool(j, "missed_limit", op->missed);
		if (op->rank_median_us)
			json_doubles(j, "rank_median_us", op->rank_median_us, pt->ranks);
		if (op->rank_busy_us)
			json_doubles(j, "rank_busy_us", op->rank_busy_us, pt->ranks);
		if (op->samples_us)
			json_doubles(j, "samples_us", op->samples_us, op->nsamples);
		ep_json_end_object(j);
	}
	ep_json_end_array(j);
}

static void json_nodes(struct ep_json *j, const struct ep_run_result *r)
{
	ep_json_begin_array(j, "nodes");
	for (int k = 0; k < r->num_nodes; k++) {
		const struct ep_node_result *n = &r->nodes[k];
		ep_json_begin_object(j, NULL);
		ep_json_int(j, "node", k);
		ep_json_string(j, "host", n->host);
		ep_json_int(j, "ranks", n->ranks);
		for (int i = 0; i < r->nops; i++) {
			if (!r->ops[i].timed)
				continue;
			ep_json_begin_object(j, r->ops[i].name);
			ep_json_double(j, "median_us", n->median_us[i]);
			ep_json_uint(j, "rdma_bytes", n->rdma_bytes[i]);
			ep_json_uint(j, "wire_bytes", n->wire_bytes[i]);
			ep_json_uint(j, "nvl_bytes", n->nvl_bytes[i]);
			ep_json_end_object(j);
		}
		ep_json_end_object(j);
	}
	ep_json_end_array(j);
}

static void json_links(struct ep_json *j, const struct ep_run_result *r)
{
	ep_json_begin_array(j, "links");
	for (int l = 0; l < r->num_links; l++) {
		const struct ep_link_result *lk = &r->links[l];
		ep_json_begin_object(j, NULL);
		ep_json_int(j, "src_node", lk->src);
		ep_json_int(j, "dst_node", lk->dst);
		for (int i = 0; i < r->nops; i++) {
			if (!r->ops[i].timed)
				continue;
			ep_json_begin_object(j, r->ops[i].name);
			ep_json_uint(j, "bytes", lk->bytes[i]);
			ep_json_double(j, "arrival_us", lk->arrival_us[i]);
			ep_json_double(j, "gbs", lk->gbs[i]);
			ep_json_end_object(j);
		}
		ep_json_end_object(j);
	}
	ep_json_end_array(j);
}

/* "line\nline\n" as an array of strings. */
static void json_lines(struct ep_json *j, const char *key, const char *text)
{
	ep_json_begin_array(j, key);
	for (const char *l = text; l && *l;) {
		size_t n = strcspn(l, "\n");
		char one[EP_TEXT_MAX];
		snprintf(one, sizeof(one), "%.*s", (int)n, l);
		ep_json_string(j, NULL, one);
		l += n + (l[n] == '\n');
	}
	ep_json_end_array(j);
}

/* A soak's passes, failures and bound (--soak). */
static void json_soak(struct ep_json *j, const struct ep_soak_result *s)
{
	ep_json_begin_object(j, "soak");
	ep_json_int(j, "passes", s->passes);
	ep_json_int(j, "first_pass", s->first);
	ep_json_int(j, "failed", s->failed);
	ep_json_double(j, "rate_upper_95", s->upper95);
	if (s->first_failed >= 0)
		ep_json_int(j, "first_failed_pass", s->first_failed);
	else
		ep_json_null(j, "first_failed_pass");
	ep_json_double(j, "seconds", s->seconds);
	ep_json_end_object(j);
}

static void json_spread(struct ep_json *j, const char *key, const struct ep_spread *s, const char *hottest,
			const uint64_t *values, int n)
{
	ep_json_begin_object(j, key);
	ep_json_double(j, "min", s->min);
	ep_json_double(j, "mean", s->mean);
	ep_json_double(j, "max", s->max);
	ep_json_double(j, "max_over_mean", s->max_over_mean);
	ep_json_double(j, "balancedness", s->balancedness);
	ep_json_double(j, "cv", s->cv);
	ep_json_int(j, hottest, s->hottest);
	if (values) {
		ep_json_begin_array(j, "values");
		for (int i = 0; i < n; i++)
			ep_json_uint(j, NULL, values[i]);
		ep_json_end_array(j);
	}
	ep_json_end_object(j);
}

/* A point's imbalance (reports/imbalance.h): spreads with their values, the
 * rank matrix up to 256 ranks and tokens per expert up to 65,536 experts. */
static void json_imbalance(struct ep_json *j, const char *key, const struct ep_imbalance *im)
{
	ep_json_begin_object(j, key);
	ep_json_string(j, "row", im->per_expert ? "token_expert" : "token_rank");
	json_spread(j, "rows_per_rank", &im->rank, "hottest_rank", im->rank_rows, im->ranks);
	if (im->nodes) {
		json_spread(j, "rows_per_node", &im->node, "hottest_node", im->node_rows, im->nodes);
		json_spread(j, "records_per_link", &im->link, "hottest_link", NULL, 0);
		ep_json_int(j, "hottest_link_src", im->link_src);
		ep_json_int(j, "hottest_link_dst", im->link_dst);
		ep_json_begin_array(j, "link_matrix"); /* [source node][destination node] records */
		for (int s = 0; s < im->nodes; s++) {
			ep_json_begin_array(j, NULL);
			for (int d = 0; d < im->nodes; d++)
				ep_json_uint(j, NULL, im->link_rows[(size_t)s * im->nodes + d]);
			ep_json_end_array(j);
		}
		ep_json_end_array(j);
	}
	json_spread(j, "tokens_per_expert", &im->expert, "hottest_expert",
		    im->experts <= 65536 ? im->expert_tokens : NULL, im->experts);
	if (im->ranks <= 256) {
		ep_json_begin_array(j, "rank_matrix"); /* [source][destination] rows */
		for (int s = 0; s < im->ranks; s++) {
			ep_json_begin_array(j, NULL);
			for (int d = 0; d < im->ranks; d++)
				ep_json_uint(j, NULL, im->matrix[(size_t)s * im->ranks + d]);
			ep_json_end_array(j);
		}
		ep_json_end_array(j);
	}
	ep_json_end_object(j);
}

/* Redundant experts: the placement, and the imbalance before it. */
static void json_placement(struct ep_json *j, const struct ep_placement_figures *f)
{
	ep_json_begin_object(j, "placement");
	ep_json_int(j, "logical_experts", f->logical);
	ep_json_int(j, "physical_experts", f->physical);
	ep_json_string(j, "summary", f->text);
	ep_json_begin_array(j, "phy2log");
	for (int p = 0; p < f->physical; p++)
		ep_json_int(j, NULL, f->phy2log[p]);
	ep_json_end_array(j);
	ep_json_begin_array(j, "logcnt");
	for (int e = 0; e < f->logical; e++)
		ep_json_int(j, NULL, f->logcnt[e]);
	ep_json_end_array(j);
	if (f->before)
		json_imbalance(j, "imbalance_before", f->before);
	ep_json_end_object(j);
}

/* A MoE layer: tokens entering it, T_d per DP group, the slowest phase's slowest rank, bytes per phase and domain. */
static void json_layer(struct ep_json *j, const struct ep_run_result *r)
{
	const struct ep_layer_figures *f = r->layer;
	ep_json_begin_object(j, "layer");
	ep_json_string(j, "config", f->config);
	ep_json_int(j, "moe_tokens", f->moe_tokens);
	ep_json_int(j, "attn_tokens", f->attn_tokens);
	ep_json_begin_array(j, "tokens_per_dp");
	for (int d = 0; f->tokens_per_dp && d < f->ndp; d++)
		ep_json_int(j, NULL, f->tokens_per_dp[d]);
	ep_json_end_array(j);
	if (r->imbalance) {
		ep_json_begin_array(j, "ep_recv_rows");
		for (int q = 0; q < r->imbalance->ranks; q++)
			ep_json_uint(j, NULL, r->imbalance->rank_rows[q]);
		ep_json_end_array(j);
		ep_json_double(j, "balancedness", r->imbalance->rank.balancedness);
	}
	ep_json_string(j, "slowest_op", f->slowest_op >= 0 ? r->ops[f->slowest_op].name : NULL);
	ep_json_int(j, "slowest_rank", f->slowest_rank);
	ep_json_string(j, "slowest_rank_groups", f->slowest_groups[0] ? f->slowest_groups : NULL);
	ep_json_begin_object(j, "bytes"); /* per phase the run timed, summed over the ranks */
	for (int k = 0; k < f->nphases; k++) {
		const struct ep_phase_bytes *b = &f->bytes[k];
		ep_json_begin_object(j, b->phase);
		ep_json_uint(j, "alg_intra", b->alg_intra);
		ep_json_uint(j, "alg_inter", b->alg_inter);
		ep_json_uint(j, "wire_intra", b->wire_intra);
		ep_json_uint(j, "wire_inter", b->wire_inter);
		ep_json_end_object(j);
	}
	ep_json_end_object(j);
	ep_json_end_object(j);
}

static void json_point(struct ep_json *j, const struct ep_point *pt)
{
	const struct ep_run_result *r = &pt->res;
	ep_json_begin_object(j, NULL);
	ep_json_int(j, "ranks", pt->ranks);
	ep_json_int(j, "tokens", pt->tokens);
	ep_json_int(j, "hidden", pt->hidden);
	ep_json_string(j, "routing_hash", r->routing_hash[0] ? r->routing_hash : NULL);
	ep_json_string(j, "verdict", ep_verdict_name(r->exit_code));
	ep_json_int(j, "exit_code", r->exit_code);
	ep_json_string(j, "error", r->message[0] ? r->message : NULL);
	if (r->state_block) /* the whole block as printed: ranks, pairs, culprit */
		ep_json_string(j, "state_block", r->state_block);
	json_lines(j, "limits_missed", r->limits);
	ep_json_double(j, "wall_s", r->wall_s);
	ep_json_uint(j, "recv_rows", r->recv_rows);
	if (r->imbalance)
		json_imbalance(j, "imbalance", r->imbalance);
	if (r->placement)
		json_placement(j, r->placement);
	if (r->layer)
		json_layer(j, r);
	json_check(j, pt);
	if (r->soak.passes)
		json_soak(j, &r->soak);
	json_ops(j, pt);
	if (r->num_nodes && r->nodes) {
		json_nodes(j, r);
		json_links(j, r);
	}
	ep_json_end_object(j);
}

/* "key=value" lines as an object of strings. */
static void json_pairs(struct ep_json *j, const char *key, const char *text)
{
	ep_json_begin_object(j, key);
	for (const char *l = text; l && *l;) {
		size_t n = strcspn(l, "\n");
		const char *eq = memchr(l, '=', n);
		if (eq) {
			char k[128], v[512];
			snprintf(k, sizeof(k), "%.*s", (int)(eq - l), l);
			snprintf(v, sizeof(v), "%.*s", (int)(l + n - eq - 1), eq + 1);
			ep_json_string(j, k, v);
		}
		l += n + (l[n] == '\n');
	}
	ep_json_end_object(j);
}

static void json_provenance(struct ep_json *j, const struct ep_provenance *p)
{
	ep_json_begin_object(j, "provenance");
	ep_json_string(j, "version", p->version);
	ep_json_string(j, "commit", p->commit);
	ep_json_string(j, "compiler", p->compiler);
	ep_json_string(j, "cflags", p->cflags);
	ep_json_string(j, "sanitizer", p->sanitizer);
	ep_json_string(j, "libraries", p->libs);
	ep_json_string(j, "kernel", p->kernel);
	ep_json_string(j, "cpu_model", p->cpu_model);
	ep_json_string(j, "cpu_simd", p->cpu_simd);
	ep_json_string(j, "build_simd", p->build_simd);
	ep_json_uint(j, "mem_total_bytes", p->mem_total);
	ep_json_int(j, "numa_nodes", p->numa_nodes);
	ep_json_string(j, "transport", p->transport);
	ep_json_string(j, "launcher", p->launcher[0] ? p->launcher : NULL);
	ep_json_string(j, "environment", p->environment[0] ? p->environment : NULL);
	ep_json_string(j, "rdma", p->rdma[0] ? p->rdma : NULL);
	ep_json_uint(j, "seed", p->seed);
	ep_json_string(j, "start_utc", p->start_utc);
	ep_json_end_object(j);
}

static void json_config(struct ep_json *j, const struct ep_report_meta *m)
{
	ep_json_begin_object(j, "config");
	ep_json_string(j, "dtype", m->dtype);
	ep_json_int(j, "num_topk", m->num_topk);
	ep_json_int(j, "num_experts", m->num_experts);
	ep_json_string(j, "routing", m->routing);
	ep_json_double(j, "masked_ratio", m->masked_ratio);
	ep_json_uint(j, "seed", m->seed);
	ep_json_int(j, "iters", m->iters);
	ep_json_int(j, "warmup", m->warmup);
	ep_json_bool(j, "check", m->check);
	ep_json_bool(j, "cached", m->cached);
	ep_json_int(j, "num_bias", m->num_bias);
	ep_json_double(j, "timeout_s", m->timeout_s);
	ep_json_string(j, "transport", m->transport);
	if (m->variant_options)
		ep_json_string(j, "variant_options", m->variant_options);
	if (m->warnings && *m->warnings) { /* the header's '# warning:' lines */
		char line[512];
		ep_json_begin_array(j, "warnings");
		for (const char *w = m->warnings, *e; *w; w = *e ? e + 1 : e) {
			e = strchr(w, '\n');
			e = e ? e : w + strlen(w);
			snprintf(line, sizeof(line), "%.*s", (int)(e - w), w);
			ep_json_string(j, NULL, line);
		}
		ep_json_end_array(j);
	}
	ep_json_end_object(j);
	ep_json_begin_object(j, "host");
	ep_json_string(j, "hostname", m->hostname);
	ep_json_string(j, "cpu_model", m->cpu_model);
	ep_json_int(j, "cores", m->cores);
	ep_json_int(j, "numa_nodes", m->numa_nodes);
	ep_json_uint(j, "mem_total_bytes", m->mem_total);
	ep_json_double(j, "copy_gbs", m->copy_gbs);
	ep_json_int(j, "copy_threads", m->copy_threads);
	ep_json_end_object(j);
}

int ep_report_write_json(const char *path, const struct ep_report_meta *m, const struct ep_point *pts, int n)
{
	struct ep_json *j = ep_json_new();
	if (!j)
		return -ENOMEM;
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "schema", EP_JSON_SCHEMA);
	ep_json_string(j, "version", m->version);
	ep_json_string(j, "command", m->command);
	ep_json_string(j, "command_line", m->command_line);
	json_config(j, m);
	json_pairs(j, "traffic", m->traffic);
	if (m->provenance)
		json_provenance(j, m->provenance);
	ep_json_begin_array(j, "points");
	for (int i = 0; i < n; i++)
		json_point(j, &pts[i]);
	ep_json_end_array(j);
	ep_json_string(j, "verdict", ep_verdict_name(ep_points_verdict(pts, n)));
	ep_json_end_object(j);
	return ep_json_write_file(j, path);
}

/* ---- reading ------------------------------------------------------------ */

#define MAX_DOC_POINTS 65536
#define MAX_SAMPLES (1 << 24)
#define MAX_DOC_BYTES ((size_t)1 << 31)

static int bad(char *err, size_t len, const char *name, const char *what)
{
	char q[256];
	snprintf(err, len, "'%s' is not an epbench result: %s", ep_quote(name, q, sizeof(q)), what);
	return -EP_EUSAGE;
}

static void get_str(json_t *o, const char *key, char *out, size_t len)
{
	const char *v = json_string_value(json_object_get(o, key));
	snprintf(out, len, "%s", v ? v : "");
}

static double get_num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : 0;
}

/* An int in [lo, hi] at key, or -1 (with *ok cleared). */
static int get_int(json_t *o, const char *key, int lo, int hi, int *ok)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		*ok = 0;
		return -1;
	}
	return (int)json_integer_value(v);
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends "key=value\n" to d->traffic, then keeps the lines sorted. */
static void add_traffic(struct ep_doc *d, const char *key, const char *value)
{
	size_t n = strlen(d->traffic);
	snprintf(d->traffic + n, sizeof(d->traffic) - n, "%s=%s\n", key, value);
}

static int has_traffic(const struct ep_doc *d, const char *key)
{
	size_t k = strlen(key);
	for (const char *l = d->traffic; *l;) {
		size_t n = strcspn(l, "\n");
		if (n > k && !strncmp(l, key, k) && l[k] == '=')
			return 1;
		l += n + (l[n] == '\n');
	}
	return 0;
}

static void sort_traffic(struct ep_doc *d)
{
	char copy[sizeof(d->traffic)], *lines[128];
	int n = 0;
	snprintf(copy, sizeof(copy), "%s", d->traffic);
	for (char *save, *l = strtok_r(copy, "\n", &save); l && n < 128; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	qsort(lines, (size_t)n, sizeof(lines[0]), cmp_lines);
	d->traffic[0] = 0;
	for (int i = 0; i < n; i++) {
		size_t k = strlen(d->traffic);
		snprintf(d->traffic + k, sizeof(d->traffic) - k, "%s\n", lines[i]);
	}
}

/* The traffic: epbench/2's object, or what epbench/1's config holds. */
static void read_traffic(json_t *root, struct ep_doc *d)
{
	json_t *t = json_object_get(root, "traffic"), *v;
	const char *key;
	char num[64];
	if (json_is_object(t)) {
		json_object_foreach(t, key, v) {
			if (json_is_string(v))
				add_traffic(d, key, json_string_value(v));
		}
	} else {
		static const char *const keys[] = {"dtype", "num_topk", "num_experts", "routing", "masked_ratio",
						   "num_bias", "cached", "variant_options"};
		json_t *c = json_object_get(root, "config");
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			v = json_object_get(c, keys[i]);
			if (json_is_string(v))
				add_traffic(d, keys[i], json_string_value(v));
			else if (json_is_number(v) || json_is_boolean(v))
				snprintf(num, sizeof(num), "%g", json_is_boolean(v) ? (double)json_is_true(v) : json_number_value(v)),
					add_traffic(d, keys[i], num);
		}
	}
	/* results from before --payload carried the narrow payload */
	if (!has_traffic(d, "payload"))
		add_traffic(d, "payload", "narrow");
	sort_traffic(d);
}

static int read_op(json_t *o, struct ep_doc_op *op)
{
	json_t *s = json_object_get(o, "samples_us"), *v;
	size_t i;
	get_str(o, "op", op->name, sizeof(op->name));
	op->median_us = get_num(json_object_get(o, "time_us"), "median");
	op->algbw_gbs = get_num(o, "algbw_gbs");
	op->aggbw_gbs = get_num(o, "aggbw_gbs");
	if (!op->name[0])
		return -1;
	if (!json_is_array(s))
		return 0;
	if (json_array_size(s) > MAX_SAMPLES || !(op->samples_us = malloc(sizeof(double) * (json_array_size(s) + 1))))
		return -1;
	json_array_foreach(s, i, v) {
		if (!json_is_number(v))
			return -1;
		op->samples_us[op->nsamples++] = json_number_value(v);
	}
	return 0;
}

static int read_links(json_t *p, struct ep_doc_point *pt)
{
	json_t *ls = json_object_get(p, "links"), *l;
	size_t i;
	if (!json_is_array(ls) || !json_array_size(ls))
		return 0;
	if (json_array_size(ls) > 32 * 32 || !(pt->links = calloc(json_array_size(ls), sizeof(*pt->links))))
		return -1;
	json_array_foreach(ls, i, l) {
		struct ep_doc_link *k = &pt->links[pt->nlinks++];
		int ok = 1;
		k->src = get_int(l, "src_node", 0, 31, &ok);
		k->dst = get_int(l, "dst_node", 0, 31, &ok);
		for (int o = 0; o < pt->nops; o++)
			k->gbs[o] = get_num(json_object_get(l, pt->ops[o].name), "gbs");
		if (!ok)
			return -1;
	}
	return 0;
}

static int read_point(json_t *p, struct ep_doc_point *pt)
{
	json_t *ops = json_object_get(p, "ops"), *o;
	size_t i;
	int ok = 1;
	pt->ranks = get_int(p, "ranks", 1, 1 << 20, &ok);
	pt->tokens = get_int(p, "tokens", 0, 1 << 30, &ok);
	pt->hidden = get_int(p, "hidden", 1, 1 << 30, &ok);
	pt->exit_code = get_int(p, "exit_code", 0, 255, &ok);
	get_str(p, "routing_hash", pt->routing_hash, sizeof(pt->routing_hash));
	if (!ok || (ops && !json_is_array(ops)) || json_array_size(ops) > EP_MAX_OPS)
		return -1;
	json_array_foreach(ops, i, o) {
		if (!json_is_object(o) || read_op(o, &pt->ops[pt->nops++]))
			return -1;
	}
	return read_links(p, pt);
}

static void read_provenance(json_t *root, struct ep_doc *d)
{
	json_t *p = json_object_get(root, "provenance"), *h = json_object_get(root, "host");
	get_str(p, "commit", d->commit, sizeof(d->commit));
	get_str(p, "kernel", d->kernel, sizeof(d->kernel));
	get_str(p, "start_utc", d->start_utc, sizeof(d->start_utc));
	get_str(p, "rdma", d->rdma, sizeof(d->rdma));
	get_str(root, "version", d->version, sizeof(d->version));
	get_str(h, "cpu_model", d->cpu_model, sizeof(d->cpu_model));
	d->copy_gbs = get_num(h, "copy_gbs");
	d->copy_threads = (int)get_num(h, "copy_threads");
}

/* The schema number of "epbench/N", 0 when it is not ours. */
static int schema_of(json_t *root)
{
	const char *s = json_string_value(json_object_get(root, "schema"));
	int n = 0;
	if (!s || strncmp(s, "epbench/", 8) != 0 || sscanf(s + 8, "%d", &n) != 1)
		return 0;
	return n;
}

static int read_root(json_t *root, const char *name, struct ep_doc *d, char *err, size_t len)
{
	json_t *pts = json_object_get(root, "points"), *p;
	size_t i;
	char q[256];
	if (!json_is_object(root) || !(d->schema = schema_of(root)))
		return bad(err, len, name, "no \"schema\": \"epbench/N\"");
	if (d->schema > EP_JSON_SCHEMA_VERSION) {
		snprintf(err, len, "'%s' has schema epbench/%d, newer than this epbench reads (%s)",
			 ep_quote(name, q, sizeof(q)), d->schema, EP_JSON_SCHEMA);
		return -EP_EUSAGE;
	}
	get_str(root, "command", d->command, sizeof(d->command));
	if (!d->command[0] || !json_is_array(pts) || json_array_size(pts) > MAX_DOC_POINTS)
		return bad(err, len, name, "no command or points");
	d->check = json_is_true(json_object_get(json_object_get(root, "config"), "check"));
	read_traffic(root, d);
	read_provenance(root, d);
	if (d->schema == 1)
		snprintf(d->lacks, sizeof(d->lacks), "epbench/1 has no samples, routing hashes, full traffic or provenance");
	if (!(d->points = calloc(json_array_size(pts) + 1, sizeof(*d->points))))
		return -EP_ENOMEM;
	json_array_foreach(pts, i, p) {
		if (!json_is_object(p) || read_point(p, &d->points[d->npoints++]))
			return bad(err, len, name, "a malformed point");
	}
	return 0;
}

int ep_doc_parse(const char *text, size_t n, const char *name, struct ep_doc *d, char *err, size_t len)
{
	json_error_t je;
	char q[256], why[256];
	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "%s", name);
	json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
	if (!root) { /* Jansson's text quotes the input near the error: any bytes, newlines included */
		snprintf(err, len, "'%s' is not JSON: line %d: %s", ep_quote(name, q, sizeof(q)), je.line,
			 ep_quote(je.text, why, sizeof(why)));
		return -EP_EUSAGE;
	}
	int rc = read_root(root, name, d, err, len);
	json_decref(root);
	if (rc)
		ep_doc_free(d);
	return rc;
}

int ep_doc_read(const char *path, struct ep_doc *d, char *err, size_t len)
{
	char *text;
	size_t n;
	int rc = ep_text_file_read("result file", path, MAX_DOC_BYTES, &text, &n, err, len);
	if (rc) {
		memset(d, 0, sizeof(*d));
		return rc;
	}
	rc = ep_doc_parse(text, n, path, d, err, len);
	free(text);
	return rc;
}

void ep_doc_free(struct ep_doc *d)
{
	for (int i = 0; d->points && i < d->npoints; i++) {
		for (int o = 0; o < d->points[i].nops; o++)
			free(d->points[i].ops[o].samples_us);
		free(d->points[i].links);
	}
	free(d->points);
	d->points = NULL;
	d->npoints = 0;
}

const struct ep_doc_point *ep_doc_find(const struct ep_doc *d, int ranks, int tokens, int hidden)
{
	for (int i = 0; i < d->npoints; i++)
		if (d->points[i].ranks == ranks && d->points[i].tokens == tokens && d->points[i].hidden == hidden)
			return &d->points[i];
	return NULL;
}

static int same_shape(const struct ep_doc_point *x, const struct ep_doc_point *y)
{
	return x->ranks == y->ranks && x->tokens == y->tokens && x->hidden == y->hidden;
}

const struct ep_doc_point *ep_doc_match(const struct ep_doc *a, int i, const struct ep_doc *b)
{
	int nth = 0;
	for (int k = 0; k < i; k++)
		nth += same_shape(&a->points[k], &a->points[i]);
	for (int k = 0; k < b->npoints; k++)
		if (same_shape(&b->points[k], &a->points[i]) && nth-- == 0)
			return &b->points[k];
	return NULL;
}

const struct ep_doc_op *ep_doc_op(const struct ep_doc_point *p, const char *name)
{
	for (int i = 0; i < p->nops; i++)
		if (strcmp(p->ops[i].name, name) == 0)
			return &p->ops[i];
	return NULL;
}

/* The value of key in "key=value\n" lines, as a NUL-terminated copy ("" absent). */
static void value_in(const char *lines, const char *key, char *out, size_t len)
{
	size_t k = strlen(key);
	out[0] = 0;
	for (const char *l = lines; *l;) {
		size_t n = strcspn(l, "\n");
		if (n > k && l[k] == '=' && strncmp(l, key, k) == 0) {
			snprintf(out, len, "%.*s", (int)(n - k - 1), l + k + 1);
			return;
		}
		l += n + (l[n] == '\n');
	}
}

int ep_doc_traffic_diff(const struct ep_doc *a, const struct ep_doc *b, char *out, size_t len)
{
	for (int pass = 0; pass < 2; pass++) {
		const char *lines = pass ? b->traffic : a->traffic;
		for (const char *l = lines; *l;) {
			size_t n = strcspn(l, "\n"), eq = strcspn(l, "=");
			char key[128], va[512], vb[512];
			snprintf(key, sizeof(key), "%.*s", (int)(eq < n ? eq : n), l);
			value_in(a->traffic, key, va, sizeof(va));
			value_in(b->traffic, key, vb, sizeof(vb));
			if (strcmp(va, vb)) {
				snprintf(out, len, "%s: '%s' in A, '%s' in B", key, va[0] ? va : "(absent)", vb[0] ? vb : "(absent)");
				return 1;
			}
			l += n + (l[n] == '\n');
		}
	}
	return 0;
}

/* time_us and samples_us of one op object from samples. */
static int set_samples(json_t *op, const double *v, int n)
{
	struct ep_stats s;
	json_t *arr = json_array(), *t = json_object();
	if (!arr || !t || ep_stats_compute(v, (size_t)n, &s)) {
		json_decref(arr), json_decref(t);
		return -1;
	}
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, json_real(v[i]));
	json_object_set_new(t, "n", json_integer((json_int_t)s.n));
	json_object_set_new(t, "min", json_real(s.min));
	json_object_set_new(t, "median", json_real(s.median));
	json_object_set_new(t, "p90", json_real(s.p90));
	json_object_set_new(t, "p99", json_real(s.p99));
	json_object_set_new(t, "max", json_real(s.max));
	json_object_set_new(t, "mean", json_real(s.mean));
	json_object_set_new(t, "stddev", json_real(s.stddev));
	json_object_set_new(op, "samples_us", arr);
	json_object_set_new(op, "time_us", t);
	return 0;
}

int ep_doc_write_samples(const char *base_path, const struct ep_doc *d, const char *out_path)
{
	json_error_t je;
	json_t *root = json_load_file(base_path, 0, &je), *p, *o;
	size_t i, k;
	if (!root)
		return -EP_EUSAGE;
	json_array_foreach(json_object_get(root, "points"), i, p) {
		int ok = 1;
		const struct ep_doc_point *dp = ep_doc_find(d, get_int(p, "ranks", 1, 1 << 20, &ok),
							    get_int(p, "tokens", 0, 1 << 30, &ok), get_int(p, "hidden", 1, 1 << 30, &ok));
		json_array_foreach(json_object_get(p, "ops"), k, o) {
			const char *name = json_string_value(json_object_get(o, "op"));
			const struct ep_doc_op *dop = dp && name ? ep_doc_op(dp, name) : NULL;
			if (dop && dop->nsamples && set_samples(o, dop->samples_us, dop->nsamples)) {
				json_decref(root);
				return -ENOMEM;
			}
		}
	}
	char *text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text)
		return -ENOMEM;
	int rc = ep_write_file_atomic(out_path, text, strlen(text));
	free(text);
	return rc;
}
