/* report.c - console table, JSON and CSV writers over ep_point arrays. */
#include "reports/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/atomic_file.h"
#include "reports/result_json.h"

const char *ep_verdict_name(int code)
{
	switch (code) {
	case EP_EXIT_OK: return "PASS";
	case EP_EXIT_WRONG: return "WRONG DATA";
	case EP_EXIT_USAGE: return "USAGE ERROR";
	case EP_EXIT_ENV: return "ENVIRONMENT";
	case EP_EXIT_TIMEOUT: return "TIMEOUT OR DEAD RANK";
	case EP_EXIT_SLOW: return "TOO SLOW";
	}
	return "UNKNOWN";
}

void ep_table_header(FILE *out, const struct ep_report_meta *m, int quiet)
{
	if (quiet)
		goto columns;
	fprintf(out, "# epbench %s %s: dtype %s, payload %s, top-%d of %d experts, routing %s", m->version,
		m->command, m->dtype, m->payload ? m->payload : "narrow", m->num_topk, m->num_experts, m->routing);
	if (m->masked_ratio > 0)
		fprintf(out, " (masked %.3g)", m->masked_ratio);
	fprintf(out, ", bias %d, seed %llu\n", m->num_bias, (unsigned long long)m->seed);
	fprintf(out, "# iters %d, warmup %d, check %s%s, timeout %g s, transport %s%s%s\n", m->iters,
		m->warmup, m->check ? "on" : "off", m->cached ? ", cached dispatch" : "",
		m->timeout_s, m->transport, m->simd ? ", simd " : "", m->simd ? m->simd : "");
	if (m->variant_options)
		fprintf(out, "# %s: %s\n", m->command, m->variant_options);
	for (const char *w = m->warnings, *e; w && *w; w = *e ? e + 1 : e) {
		e = strchr(w, '\n');
		e = e ? e : w + strlen(w);
		fprintf(out, "# warning: %.*s\n", (int)(e - w), w);
	}
	char copy[80] = "memcpy not measured (--copy-probe off or EPBENCH_COPY_PROBE=off)";
	if (m->copy_gbs > 0)
		snprintf(copy, sizeof(copy), "memcpy %.2f GB/s with %d thread%s", m->copy_gbs, m->copy_threads,
			 m->copy_threads == 1 ? "" : "s");
	fprintf(out, "# host %s: %s, %d cores, %d NUMA node%s; %s\n", m->hostname, m->cpu_model, m->cores,
		m->numa_nodes, m->numa_nodes == 1 ? "" : "s", copy);
	fprintf(out, "#\n");
columns:
	fprintf(out, "# %5s %7s %6s %-16s %9s %9s %9s %9s %9s %9s %9s %9s %8s %7s %8s %8s %8s %6s %7s\n",
		"ranks", "tokens", "hidden", "op", "rows", "bytes", "min", "median", "p90", "p99",
		"max", "mean", "stddev", "slowest", "algbw", "wirebw", "aggbw", "copy", "#wrong");
	fprintf(out, "# %5s %7s %6s %-16s %9s %9s %9s %9s %9s %9s %9s %9s %8s %7s %8s %8s %8s %6s %7s\n",
		"", "/rank", "", "", "(all)", "(/rank)", "(us)", "(us)", "(us)", "(us)", "(us)", "(us)",
		"(us)", "(rank)", "(GB/s)", "(GB/s)", "(GB/s)", "(%)", "(rows)");
	fflush(out);
}

static void human_bytes(double b, char *buf, size_t len)
{
	const char *unit = "";
	if (b >= 1e9)
		b /= 1e9, unit = "G";
	else if (b >= 1e6)
		b /= 1e6, unit = "M";
	else if (b >= 1e3)
		b /= 1e3, unit = "K";
	snprintf(buf, len, "%.4g%s", b, unit);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Hardware acceptance: per op, the rank whose median busy time (op time less
 * its waits on peers) is furthest above the median rank's, when it is more
 * than 10% above: the rank that makes the others wait. */
static void print_slow_ranks(FILE *out, const struct ep_point *pt)
{
	const struct ep_run_result *r = &pt->res;
	int R = pt->ranks;
	if (R < 2 || R > 4096)
		return;
	double sorted[R];
	for (int i = 0; i < r->nops; i++) {
		const struct ep_op_result *op = &r->ops[i];
		if (!op->timed || !op->rank_busy_us)
			continue;
		memcpy(sorted, op->rank_busy_us, sizeof(double) * (size_t)R);
		qsort(sorted, (size_t)R, sizeof(double), cmp_double);
		double mid = R % 2 ? sorted[R / 2] : (sorted[R / 2 - 1] + sorted[R / 2]) / 2;
		int worst = 0;
		for (int q = 1; q < R; q++)
			if (op->rank_busy_us[q] > op->rank_busy_us[worst])
				worst = q;
		if (mid > 0 && op->rank_busy_us[worst] > 1.1 * mid)
			fprintf(out, "# %s: rank %d is the slowest: busy %.1f us per op, %.0f%% above the median rank's %.1f us\n",
				op->name, worst, op->rank_busy_us[worst],
				100.0 * (op->rank_busy_us[worst] / mid - 1), mid);
	}
}

/* An R x R matrix by (source, destination) rank or node, for up to 64 of them. */
static void print_matrix(FILE *out, const char *what, const char *unit, const uint64_t *m, int R)
{
	if (!m || R > 64)
		return;
	fprintf(out, "#   %s by source (row) and destination (column) %s:\n#   %6s", what, unit, "src\\dst");
	for (int d = 0; d < R; d++)
		fprintf(out, " %6d", d);
	fprintf(out, "\n");
	for (int s = 0; s < R; s++) {
		fprintf(out, "#   %6d ", s);
		for (int d = 0; d < R; d++)
			fprintf(out, " %6llu", (unsigned long long)m[s * R + d]);
		fprintf(out, "\n");
	}
}

/* One load vector under -v: "r0=12 r1=40 ...". */
static void print_loads(FILE *out, const char *what, char tag, const uint64_t *v, int n)
{
	fprintf(out, "# imbalance %s:", what);
	for (int i = 0; i < n; i++)
		fprintf(out, " %c%d=%llu", tag, i, (unsigned long long)v[i]);
	fprintf(out, "\n");
}

/* The point's imbalance line; under -v every rank's and node's rows, the
 * (source, destination) matrix and the tokens per expert (up to 1024). */
static void print_imbalance(FILE *out, const char *label, const struct ep_imbalance *im, int verbose)
{
	if (!im)
		return;
	const struct ep_spread *r = &im->rank, *e = &im->expert;
	fprintf(out, "# %s: rows/rank min %.0f mean %.1f max %.0f, max/mean %.3f, balancedness %.3f (hottest rank %d); "
		"tokens/expert max/mean %.3f, cv %.3f (hottest expert %d)", label,
		r->min, r->mean, r->max, r->max_over_mean, r->balancedness, r->hottest, e->max_over_mean, e->cv, e->hottest);
	if (im->nodes)
		fprintf(out, "; rows/node max/mean %.3f, balancedness %.3f (hottest node %d); records/link max/mean %.3f, "
			"balancedness %.3f (hottest link node %d -> node %d)", im->node.max_over_mean, im->node.balancedness,
			im->node.hottest, im->link.max_over_mean, im->link.balancedness, im->link_src, im->link_dst);
	fprintf(out, "\n");
	if (!verbose)
		return;
	print_loads(out, im->per_expert ? "rows per rank, one per (token, expert)" : "rows per rank, one per (token, rank)",
		    'r', im->rank_rows, im->ranks);
	if (im->nodes)
		print_loads(out, "rows per node", 'n', im->node_rows, im->nodes);
	if (im->experts <= 1024)
		print_loads(out, "tokens per expert", 'e', im->expert_tokens, im->experts);
	print_matrix(out, "imbalance: rows", "rank", im->matrix, im->ranks);
	if (im->nodes)
		print_matrix(out, "imbalance: records per link", "node", im->link_rows, im->nodes);
}

/* A MoE layer: what enters it, and who the slowest phase waits for. */
static void print_layer(FILE *out, const struct ep_run_result *r)
{
	const struct ep_layer_figures *f = r->layer;
	if (!f)
		return;
	fprintf(out, "# layer %s: %ld tokens enter the MoE layer (the %d attention-DP groups' %ld rows, each once: "
		"attention-TP replicas sliced, padding kept)", f->config, f->moe_tokens, f->ndp, f->attn_tokens);
	if (f->slowest_op >= 0 && f->slowest_rank >= 0)
		fprintf(out, "; slowest phase %s (median %.1f us), slowest rank %d: %s", r->ops[f->slowest_op].name,
			r->ops[f->slowest_op].time_us.median, f->slowest_rank, f->slowest_groups);
	fprintf(out, "\n");
	for (int k = 0; k < f->nphases; k++) { /* summed over the ranks: the op rows' bytes are per rank */
		const struct ep_phase_bytes *b = &f->bytes[k];
		char ai[16], ae[16], wi[16], we[16];
		human_bytes((double)b->alg_intra, ai, sizeof(ai));
		human_bytes((double)b->alg_inter, ae, sizeof(ae));
		human_bytes((double)b->wire_intra, wi, sizeof(wi));
		human_bytes((double)b->wire_inter, we, sizeof(we));
		fprintf(out, "# layer bytes: %-14s alg %9s intra %9s inter, wire %9s intra %9s inter (all %d ranks)\n",
			b->phase, ai, ae, wi, we, r->num_ranks);
	}
}

/* n ids as " a b c", all of them under -v or up to 64, else the first 32 and "...". */
static void print_ids(FILE *out, const char *what, const int *v, int n, int verbose)
{
	int shown = verbose || n <= 64 ? n : 32;
	fprintf(out, "# placement %s:", what);
	for (int i = 0; i < shown; i++)
		fprintf(out, " %d", v[i]);
	fprintf(out, "%s\n", shown < n ? " ... (-v: all)" : "");
}

/* Redundant experts: the placement and the imbalance before it. */
static void print_placement(FILE *out, const struct ep_placement_figures *f, int verbose)
{
	if (!f)
		return;
	fprintf(out, "# placement: %s\n", f->text);
	print_ids(out, "phy2log (logical expert of each physical one, rank-major)", f->phy2log, f->physical, verbose);
	print_ids(out, "logcnt (replicas of each logical expert)", f->logcnt, f->logical, verbose);
	if (f->before)
		print_imbalance(out, "imbalance before placement", f->before, verbose);
	else
		fprintf(out, "# imbalance before placement: n/a (%d logical experts do not split over the ranks)\n", f->logical);
}

void ep_table_point(FILE *out, const struct ep_point *pt, double copy_gbs, int verbose)
{
	const struct ep_run_result *r = &pt->res;
	if (r->exit_code != EP_EXIT_OK && r->exit_code != EP_EXIT_WRONG && r->exit_code != EP_EXIT_SLOW) {
		fprintf(out, "  %5d %7d %6d %-16s  failed: %s\n", pt->ranks, pt->tokens, pt->hidden,
			"-", r->message);
		fflush(out);
		return;
	}
	for (int i = 0; i < r->nops; i++) {
		const struct ep_op_result *op = &r->ops[i];
		if (!op->timed)
			continue;
		const struct ep_stats *s = &op->time_us;
		char bytes[16];
		human_bytes((double)op->alg_bytes / (pt->ranks ? pt->ranks : 1), bytes, sizeof(bytes));
		char wrong[24];
		if (r->checked)
			snprintf(wrong, sizeof(wrong), "%llu", (unsigned long long)r->wrong_rows);
		else
			snprintf(wrong, sizeof(wrong), "N/A");
		char copy[16] = "-"; /* no host reference (e.g. across nodes) */
		if (copy_gbs > 0)
			snprintf(copy, sizeof(copy), "%.1f", 100.0 * op->aggbw_gbs / copy_gbs);
		fprintf(out, "  %5d %7d %6d %-16s %9llu %9s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8.1f %7d %8.3g %8.3g %8.3g %6s %7s%s\n",
			pt->ranks, op->tokens ? op->tokens : pt->tokens, pt->hidden, op->name,
			(unsigned long long)(op->recv_rows ? op->recv_rows : r->recv_rows), bytes, s->min, s->median, s->p90, s->p99, s->max, s->mean, s->stddev, op->slowest_rank,
			op->algbw_gbs, op->wirebw_gbs, op->aggbw_gbs, copy, wrong, op->missed ? "  < LIMIT" : "");
		if (verbose && op->rank_median_us) {
			fprintf(out, "# %s per-rank median (us):", op->name);
			for (int q = 0; q < pt->ranks; q++)
				fprintf(out, " r%d=%.1f", q, op->rank_median_us[q]);
			fprintf(out, "\n");
		}
		if (verbose && op->rank_busy_us) {
			fprintf(out, "# %s per-rank busy (us):", op->name);
			for (int q = 0; q < pt->ranks; q++)
				fprintf(out, " r%d=%.1f", q, op->rank_busy_us[q]);
			fprintf(out, "\n");
		}
	}
	print_slow_ranks(out, pt);
	print_layer(out, r);
	print_placement(out, r->placement, verbose);
	print_imbalance(out, r->placement ? "imbalance after placement" : "imbalance", r->imbalance, verbose);
	fflush(out);
}

void ep_table_soak(FILE *out, const struct ep_point *pt, const char *command_line, uint64_t seed)
{
	const struct ep_soak_result *s = &pt->res.soak;
	if (!s->passes)
		return;
	fprintf(out, "# soak: %ld passes (seeds %llu to %llu) in %.1f s, %.0f passes/s: %ld failed, rate < %.3g%% at 95%% (one-sided Clopper-Pearson)\n",
		s->passes, (unsigned long long)(seed + (uint64_t)s->first),
		(unsigned long long)(seed + (uint64_t)(s->first + s->passes - 1)), s->seconds,
		s->seconds > 0 ? (double)s->passes / s->seconds : 0.0, s->failed, 100 * s->upper95);
	if (s->first_failed < 0)
		return;
	fprintf(out, "# soak: first failure in pass %ld (seed %llu): %s\n", s->first_failed,
		(unsigned long long)(seed + (uint64_t)s->first_failed), pt->res.first_mismatch);
	/* a stale row needs the pass before it: repeat both */
	int stale = command_line && strstr(command_line, "stale:") && s->first_failed > s->first;
	fprintf(out, "# soak: reproduce: %s --soak-first %ld --soak %d\n", command_line ? command_line : "epbench ...",
		s->first_failed - stale, 1 + stale);
}

void ep_table_nodes(FILE *out, const struct ep_point *pt)
{
	const struct ep_run_result *r = &pt->res;
	if (!r->num_nodes || !r->nodes)
		return;
	fprintf(out, "#   %4s %-16s %5s %-9s %10s %10s %10s %10s %8s %8s %8s\n", "node", "host", "ranks",
		"op", "median", "rdma", "wire", "nvl", "rdmabw", "wirebw", "nvlbw");
	fprintf(out, "#   %4s %-16s %5s %-9s %10s %10s %10s %10s %8s %8s %8s\n", "", "", "", "", "(us)",
		"(B/node)", "(B/node)", "(B/node)", "(GB/s)", "(GB/s)", "(GB/s)");
	int slow_node = -1, slow_op = -1, slow_link = -1, slow_link_op = -1;
	for (int i = 0; i < r->nops; i++) {
		const struct ep_op_result *op = &r->ops[i];
		if (!op->timed)
			continue;
		for (int k = 0; k < r->num_nodes; k++) {
			const struct ep_node_result *n = &r->nodes[k];
			double t = n->median_us[i] * 1e-6;
			char rb[16], wb[16], nb[16];
			human_bytes((double)n->rdma_bytes[i], rb, sizeof(rb));
			human_bytes((double)n->wire_bytes[i], wb, sizeof(wb));
			human_bytes((double)n->nvl_bytes[i], nb, sizeof(nb));
			fprintf(out, "#   %4d %-16.16s %5d %-9s %10.1f %10s %10s %10s %8.3g %8.3g %8.3g\n", k, n->host,
				n->ranks, op->name, n->median_us[i], rb, wb, nb,
				t > 0 ? (double)n->rdma_bytes[i] / t / 1e9 : 0.0,
				t > 0 ? (double)n->wire_bytes[i] / t / 1e9 : 0.0,
				t > 0 ? (double)n->nvl_bytes[i] / t / 1e9 : 0.0);
			if (slow_node < 0 || n->median_us[i] > r->nodes[slow_node].median_us[slow_op])
				slow_node = k, slow_op = i;
		}
		for (int l = 0; l < r->num_links; l++) {
			const struct ep_link_result *lk = &r->links[l];
			char bb[16];
			human_bytes((double)lk->bytes[i], bb, sizeof(bb));
			fprintf(out, "#   link %d->%d %-9s %10s in %10.1f us: %8.3g GB/s\n", lk->src, lk->dst,
				op->name, bb, lk->arrival_us[i], lk->gbs[i]);
			if (lk->bytes[i] && (slow_link < 0 || lk->gbs[i] < r->links[slow_link].gbs[slow_link_op]))
				slow_link = l, slow_link_op = i;
		}
	}
	if (slow_node >= 0)
		fprintf(out, "# slowest node: %d (%s), %s median %.1f us", slow_node, r->nodes[slow_node].host,
			r->ops[slow_op].name, r->nodes[slow_node].median_us[slow_op]);
	if (slow_link >= 0)
		fprintf(out, "; slowest link: node %d -> node %d (%s), %.3g GB/s",
			r->links[slow_link].src, r->links[slow_link].dst, r->ops[slow_link_op].name,
			r->links[slow_link].gbs[slow_link_op]);
	if (slow_node >= 0)
		fprintf(out, "\n");
	fflush(out);
}

/* A point's missed limits, one line each. */
static void print_limits(FILE *out, const char *limits)
{
	fprintf(out, "\n");
	for (const char *l = limits; *l;) {
		size_t n = strcspn(l, "\n");
		fprintf(out, "#   %.*s\n", (int)n, l);
		l += n + (l[n] == '\n');
	}
}

int ep_points_verdict(const struct ep_point *pts, int n)
{
	int worst = EP_EXIT_OK;
	for (int i = 0; i < n; i++)
		worst = ep_exit_worse(worst, pts[i].res.exit_code);
	return worst;
}

/* The handles verdict (reference/compare.h, ep_compare_handle_row): handle
 * tensors apart from data, since products may define their values differently. */
static void print_handles(FILE *out, uint64_t checked, uint64_t wrong, uint64_t all_wrong)
{
	char amount[16];
	human_bytes((double)checked, amount, sizeof(amount));
	fprintf(out, "# handles: %sB of handle tensors (assist_info_for_combine, ep_recv_counts, tp_recv_counts) in the check above, "
		     "%llu wrong element%s; data tensors: %llu wrong\n", amount, (unsigned long long)wrong,
		wrong == 1 ? "" : "s", (unsigned long long)(all_wrong - wrong));
}

int ep_table_footer(FILE *out, const struct ep_point *pts, int n, int check, const char *report_error)
{
	int worst = ep_points_verdict(pts, n), failed = 0;
	uint64_t checked = 0, wrong = 0, hchecked = 0, hwrong = 0;
	int any_checked = 0;
	for (int i = 0; i < n; i++) {
		const struct ep_run_result *r = &pts[i].res;
		checked += r->checked_bytes;
		wrong += r->wrong_elems;
		hchecked += r->handle_checked_bytes;
		hwrong += r->handle_wrong_elems;
		any_checked |= r->checked;
		if (r->exit_code != EP_EXIT_OK)
			failed++;
	}
	fprintf(out, "#\n");
	char amount[16];
	human_bytes((double)checked, amount, sizeof(amount));
	if (any_checked)
		fprintf(out, "# check: %sB compared byte for byte with reference/, %llu wrong element%s\n",
			amount, (unsigned long long)wrong, wrong == 1 ? "" : "s");
	else if (check)
		fprintf(out, "# check: on; no point completed, so no check result was collected\n");
	else
		fprintf(out, "# check: off (--check 0): outputs were not compared\n");
	if (any_checked && hchecked)
		print_handles(out, hchecked, hwrong, wrong);
	for (int i = 0; i < n; i++) {
		const struct ep_point *pt = &pts[i];
		const struct ep_run_result *r = &pt->res;
		if (r->exit_code == EP_EXIT_OK)
			continue;
		fprintf(out, "# point ranks=%d tokens=%d hidden=%d: %s", pt->ranks, pt->tokens,
			pt->hidden, ep_verdict_name(r->exit_code));
		if (r->exit_code == EP_EXIT_WRONG)
			fprintf(out, ": %llu wrong rows; first: %s\n", (unsigned long long)r->wrong_rows,
				r->first_mismatch);
		else if (r->exit_code == EP_EXIT_SLOW)
			print_limits(out, r->limits);
		else
			fprintf(out, ": %s\n", r->message);
		if (r->exit_code == EP_EXIT_WRONG)
			print_matrix(out, "wrong rows", "rank", r->wrong_matrix, pt->ranks);
	}
	if (report_error) { /* a report asked for and not written is a failure of the run */
		fprintf(out, "# report: %s\n", report_error);
		worst = ep_exit_worse(worst, EP_EXIT_ENV);
	}
	fprintf(out, "# verdict: %s (%d point%s, %d failed)\n", ep_verdict_name(worst), n,
		n == 1 ? "" : "s", failed);
	fflush(out);
	return worst;
}

/* The imbalance columns, last in a CSV row (empty when the point has none,
 * node and link columns empty on one host; hottest_link "SRC->DST"). */
#define CSV_IMBALANCE                                                                                   \
	"rows_rank_min,rows_rank_mean,rows_rank_max,rows_rank_max_over_mean,rows_rank_balancedness,"   \
	"hottest_rank,tokens_expert_max_over_mean,tokens_expert_cv,hottest_expert,"                    \
	"rows_node_max_over_mean,rows_node_balancedness,hottest_node,"                                \
	"link_max_over_mean,link_balancedness,hottest_link"

/* A MoE layer's columns, last in a row (empty without one), and the newline. */
#define CSV_LAYER                                                                                       \
	"parallel,moe_tokens,layer_slowest_rank,"                                                      \
	"layer_alg_intra,layer_alg_inter,layer_wire_intra,layer_wire_inter"
/* The layer's bytes columns are those of the row's op's phase (op -1: a
 * failed point's row; empty when the op is no phase). */
static void csv_layer(FILE *f, const struct ep_layer_figures *l, int op)
{
	if (!l) {
		fputs(",,,,,,,\n", f);
		return;
	}
	fprintf(f, ",\"%s\",%ld,%d", l->config, l->moe_tokens, l->slowest_rank); /* the config has commas */
	int k = op >= 0 && op < EP_MAX_OPS ? l->op_phase[op] : -1;
	if (k >= 0)
		fprintf(f, ",%llu,%llu,%llu,%llu\n", (unsigned long long)l->bytes[k].alg_intra,
			(unsigned long long)l->bytes[k].alg_inter, (unsigned long long)l->bytes[k].wire_intra,
			(unsigned long long)l->bytes[k].wire_inter);
	else
		fputs(",,,,\n", f);
}

/* The imbalance columns (the layer's after them). */
static void csv_imbalance(FILE *f, const struct ep_imbalance *im)
{
	if (!im) {
		fputs(",,,,,,,,,,,,,,,", f);
		return;
	}
	const struct ep_spread *r = &im->rank, *e = &im->expert;
	fprintf(f, ",%.0f,%.4f,%.0f,%.4f,%.4f,%d,%.4f,%.4f,%d", r->min, r->mean, r->max, r->max_over_mean,
		r->balancedness, r->hottest, e->max_over_mean, e->cv, e->hottest);
	if (im->nodes)
		fprintf(f, ",%.4f,%.4f,%d", im->node.max_over_mean, im->node.balancedness, im->node.hottest);
	else
		fputs(",,,", f);
	if (im->nodes && im->link_rows)
		fprintf(f, ",%.4f,%.4f,%d->%d", im->link.max_over_mean, im->link.balancedness, im->link_src, im->link_dst);
	else
		fputs(",,,", f);
}

/* One point's rows: one per timed op, or one saying why it failed. */
static void csv_point(FILE *f, const struct ep_report_meta *m, const struct ep_point *pt)
{
	const struct ep_run_result *r = &pt->res;
	int rows = 0;
	for (int k = 0; k < r->nops; k++) {
		const struct ep_op_result *op = &r->ops[k];
		if (!op->timed)
			continue;
		const struct ep_stats *s = &op->time_us;
		rows++;
		fprintf(f, "%s,%s,%d,%d,%d,%d,%d,%s,%s,%llu,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%.4f,%.4f,%.4f,%.4f,%llu",
			m->command, m->dtype, pt->ranks, op->tokens ? op->tokens : pt->tokens, pt->hidden, m->num_topk,
			m->num_experts, op->name, ep_verdict_name(r->exit_code),
			(unsigned long long)(op->recv_rows ? op->recv_rows : r->recv_rows), (unsigned long long)op->alg_bytes,
			(unsigned long long)op->wire_bytes, s->min, s->median, s->p90, s->p99, s->max, s->mean, s->stddev,
			op->slowest_rank, op->algbw_gbs, op->wirebw_gbs, op->aggbw_gbs, m->copy_gbs,
			(unsigned long long)r->wrong_rows);
		csv_imbalance(f, r->imbalance);
		csv_layer(f, r->layer, k);
	}
	if (!rows) { /* a failed point (or a soak) still gets its row */
		fprintf(f, "%s,%s,%d,%d,%d,%d,%d,,%s,,,,,,,,,,,,,,,%.4f,", m->command, m->dtype, pt->ranks, pt->tokens,
			pt->hidden, m->num_topk, m->num_experts, ep_verdict_name(r->exit_code), m->copy_gbs);
		csv_imbalance(f, r->imbalance);
		csv_layer(f, r->layer, -1);
	}
}

int ep_report_write_csv(const char *path, const struct ep_report_meta *m,
			const struct ep_point *pts, int n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len); /* grows as needed: no row is ever cut */
	if (!f)
		return -ENOMEM;
	fputs("command,dtype,ranks,tokens,hidden,topk,experts,op,verdict,recv_rows,alg_bytes,wire_bytes,"
	      "min_us,median_us,p90_us,p99_us,max_us,mean_us,stddev_us,slowest_rank,algbw_gbs,wirebw_gbs,"
	      "aggbw_gbs,copy_gbs,wrong_rows," CSV_IMBALANCE "," CSV_LAYER "\n", f);
	for (int i = 0; i < n; i++)
		csv_point(f, m, &pts[i]);
	int bad = ferror(f);
	if (fclose(f) || bad) {
		free(buf);
		return -ENOMEM;
	}
	int rc = ep_write_file_atomic(path, buf, len);
	free(buf);
	return rc;
}

int ep_report_write_all(const char *json_path, const char *csv_path, const struct ep_report_meta *m,
			const struct ep_point *pts, int n, char *err, size_t errlen)
{
	int rc = 0, one;
	const char *paths[2] = {json_path, csv_path};
	for (int i = 0; i < 2; i++) {
		if (!paths[i])
			continue;
		one = i == 0 ? ep_report_write_json(paths[i], m, pts, n) : ep_report_write_csv(paths[i], m, pts, n);
		if (!one)
			continue;
		fprintf(stderr, "epbench %s: writing report '%s' failed: %s\n", m->command, paths[i], ep_strerror(one));
		if (!err[0])
			snprintf(err, errlen, "writing '%s' failed: %s", paths[i], ep_strerror(one));
		rc = rc ? rc : one;
	}
	return rc;
}
