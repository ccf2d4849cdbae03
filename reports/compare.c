/* compare.c - medians, bootstrap intervals and verdicts of two results (see compare.h). */
#include "reports/compare.h"

#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BOOTSTRAP_SEED 20261130UL

const char *ep_verdict_word(enum ep_verdict v)
{
	return v == EP_SLOWER ? "slower" : v == EP_FASTER ? "faster" : v == EP_SAME ? "same" : "?";
}

/* The median of n values drawn with replacement from v (scratch: n doubles). */
static double resampled_median(gsl_rng *g, const double *v, int n, double *scratch)
{
	for (int i = 0; i < n; i++)
		scratch[i] = v[gsl_rng_uniform_int(g, (unsigned long)n)];
	return gsl_stats_median(scratch, 1, (size_t)n); /* quickselect; reorders scratch */
}

static double median_of(const double *v, int n, double *scratch)
{
	memcpy(scratch, v, sizeof(double) * (size_t)n);
	return gsl_stats_median(scratch, 1, (size_t)n);
}

/* The percentile interval of the ratio of medians, as percent change. 0 or -1. */
static int bootstrap(const double *a, int na, const double *b, int nb, double confidence, double *lo,
		     double *hi)
{
	gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
	double *sa = malloc(sizeof(double) * (size_t)na), *sb = malloc(sizeof(double) * (size_t)nb);
	double *ratio = malloc(sizeof(double) * EP_BOOTSTRAP_ROUNDS);
	int rc = g && sa && sb && ratio ? 0 : -1;
	if (!rc) {
		gsl_rng_set(g, BOOTSTRAP_SEED);
		for (int i = 0; i < EP_BOOTSTRAP_ROUNDS; i++) {
			double ma = resampled_median(g, a, na, sa), mb = resampled_median(g, b, nb, sb);
			ratio[i] = ma > 0 ? (mb / ma - 1) * 100 : 0;
		}
		gsl_sort(ratio, 1, EP_BOOTSTRAP_ROUNDS);
		*lo = gsl_stats_quantile_from_sorted_data(ratio, 1, EP_BOOTSTRAP_ROUNDS, (1 - confidence) / 2);
		*hi = gsl_stats_quantile_from_sorted_data(ratio, 1, EP_BOOTSTRAP_ROUNDS, (1 + confidence) / 2);
	}
	if (g)
		gsl_rng_free(g);
	free(sa), free(sb), free(ratio);
	return rc;
}

void ep_compare_samples(const double *a, int na, const double *b, int nb, double confidence,
			double max_regress_pct, struct ep_op_cmp *c)
{
	c->verdict = EP_UNKNOWN;
	c->have_interval = 0;
	c->regressed = 0;
	c->delta_pct = c->median_a > 0 ? (c->median_b / c->median_a - 1) * 100 : 0;
	if (!a || !b || na < 2 || nb < 2)
		return;
	double *scratch = malloc(sizeof(double) * (size_t)(na > nb ? na : nb));
	if (!scratch)
		return;
	c->median_a = median_of(a, na, scratch);
	c->median_b = median_of(b, nb, scratch);
	free(scratch);
	c->delta_pct = c->median_a > 0 ? (c->median_b / c->median_a - 1) * 100 : 0;
	if (bootstrap(a, na, b, nb, confidence, &c->lo_pct, &c->hi_pct))
		return;
	c->have_interval = 1;
	c->verdict = c->lo_pct > 0 ? EP_SLOWER : c->hi_pct < 0 ? EP_FASTER : EP_SAME;
	c->regressed = max_regress_pct >= 0 && c->verdict == EP_SLOWER && c->delta_pct > max_regress_pct;
}

int ep_compare_points(const struct ep_doc_point *a, const struct ep_doc_point *b, double confidence,
		      double max_regress_pct, struct ep_op_cmp *out)
{
	int n = 0;
	for (int i = 0; i < a->nops && n < EP_MAX_OPS; i++) {
		const struct ep_doc_op *oa = &a->ops[i], *ob = ep_doc_op(b, oa->name);
		if (!ob)
			continue;
		struct ep_op_cmp *c = &out[n++];
		memset(c, 0, sizeof(*c));
		snprintf(c->op, sizeof(c->op), "%s", oa->name);
		c->median_a = oa->median_us;
		c->median_b = ob->median_us;
		ep_compare_samples(oa->samples_us, oa->nsamples, ob->samples_us, ob->nsamples, confidence,
				   max_regress_pct, c);
	}
	return n;
}

int ep_compare_comparable(const struct ep_doc *a, const struct ep_doc *b, char *err, size_t len)
{
	char diff[600];
	if (strcmp(a->command, b->command)) {
		snprintf(err, len, "command: '%s' in A, '%s' in B", a->command, b->command);
		return 1;
	}
	if (ep_doc_traffic_diff(a, b, diff, sizeof(diff))) {
		snprintf(err, len, "%s", diff);
		return 1;
	}
	if (a->check != b->check) {
		snprintf(err, len, "check: %s in A, %s in B", a->check ? "on" : "off", b->check ? "on" : "off");
		return 1;
	}
	for (int i = 0; i < a->npoints; i++) {
		const struct ep_doc_point *pa = &a->points[i];
		const struct ep_doc_point *pb = ep_doc_match(a, i, b);
		if (pb && pa->routing_hash[0] && pb->routing_hash[0] && strcmp(pa->routing_hash, pb->routing_hash)) {
			snprintf(err, len, "routing_hash of point ranks=%d tokens=%d hidden=%d: %.12s... in A, %.12s... in B (another seed or routing)",
				 pa->ranks, pa->tokens, pa->hidden, pa->routing_hash, pb->routing_hash);
			return 1;
		}
	}
	return 0;
}

/* The header: the two files and what differs between their provenance. */
static void print_header(FILE *out, const struct ep_doc *a, const struct ep_doc *b, double confidence)
{
	const char *names[] = {"commit", "version", "kernel", "cpu", "rdma"};
	const char *va[] = {a->commit, a->version, a->kernel, a->cpu_model, a->rdma};
	const char *vb[] = {b->commit, b->version, b->kernel, b->cpu_model, b->rdma};
	fprintf(out, "# compare: A %s (%s, %s) vs B %s (%s, %s)\n", a->path, a->commit[0] ? a->commit : "commit unknown",
		a->start_utc[0] ? a->start_utc : "time unknown", b->path, b->commit[0] ? b->commit : "commit unknown",
		b->start_utc[0] ? b->start_utc : "time unknown");
	for (int i = 0; i < 5; i++)
		if (strcmp(va[i], vb[i]))
			fprintf(out, "# %s differs: A %s, B %s\n", names[i], va[i][0] ? va[i] : "?", vb[i][0] ? vb[i] : "?");
	if (a->lacks[0] || b->lacks[0])
		fprintf(out, "# %s: %s\n", a->lacks[0] ? "A" : "B", a->lacks[0] ? a->lacks : b->lacks);
	fprintf(out, "# %s: medians of each iteration's max over ranks; delta = B/A - 1; %.0f%% bootstrap interval\n",
		a->command, confidence * 100);
	fprintf(out, "# %5s %7s %6s %-16s %11s %11s %8s %18s %7s\n", "ranks", "tokens", "hidden", "op", "A median",
		"B median", "delta", "interval", "verdict");
	fprintf(out, "# %5s %7s %6s %-16s %11s %11s %8s %18s %7s\n", "", "/rank", "", "", "(us)", "(us)", "(%)", "(%)", "");
}

static void print_row(FILE *out, const struct ep_doc_point *p, const struct ep_op_cmp *c)
{
	char interval[32] = "n/a";
	if (c->have_interval)
		snprintf(interval, sizeof(interval), "[%+.1f, %+.1f]", c->lo_pct, c->hi_pct);
	fprintf(out, "  %5d %7d %6d %-16s %11.1f %11.1f %+8.1f %18s %7s%s\n", p->ranks, p->tokens, p->hidden, c->op,
		c->median_a, c->median_b, c->delta_pct, interval, ep_verdict_word(c->verdict),
		c->regressed ? "  REGRESSION" : "");
}

/* Points of x that y lacks, listed. */
static void print_unmatched(FILE *out, const struct ep_doc *x, const struct ep_doc *y, const char *which)
{
	for (int i = 0; i < x->npoints; i++) {
		const struct ep_doc_point *p = &x->points[i];
		if (!ep_doc_match(x, i, y))
			fprintf(out, "# only in %s: point ranks=%d tokens=%d hidden=%d\n", which, p->ranks, p->tokens, p->hidden);
	}
}

int ep_compare_print(FILE *out, const struct ep_doc *a, const struct ep_doc *b, double confidence,
		     double max_regress_pct)
{
	int regressed = 0;
	print_header(out, a, b, confidence);
	for (int i = 0; i < a->npoints; i++) {
		const struct ep_doc_point *pa = &a->points[i];
		const struct ep_doc_point *pb = ep_doc_match(a, i, b);
		struct ep_op_cmp c[EP_MAX_OPS];
		int n = pb ? ep_compare_points(pa, pb, confidence, max_regress_pct, c) : 0;
		for (int k = 0; k < n; k++) {
			print_row(out, pa, &c[k]);
			regressed += c[k].regressed;
		}
	}
	print_unmatched(out, a, b, "A");
	print_unmatched(out, b, a, "B");
	if (max_regress_pct >= 0)
		fprintf(out, "# gate: %d op%s slower than A by more than %g%% (interval excluding zero)\n", regressed,
			regressed == 1 ? "" : "s", max_regress_pct);
	fflush(out);
	return regressed;
}
