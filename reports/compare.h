/* compare.h - is B faster or slower than A, beyond this machine's noise?
 *
 * Each op's figure is the median of its samples (each timed iteration's
 * maximum over ranks). The difference B vs A is the ratio of medians, as a
 * percentage; its confidence interval comes from a percentile bootstrap:
 * both sample sets resampled with replacement (GSL's MT19937 generator with
 * a fixed seed, so the same files always give the same answer), the ratio
 * of medians taken each time, the interval read from its (1-c)/2 and
 * (1+c)/2 quantiles. The verdict is "slower" or "faster" when the interval
 * excludes zero, else "same". A regression limit of PCT fails an op that is
 * slower by more than PCT with an interval that excludes zero.
 *
 * The median of the max over ranks is used because an op is done when its
 * last rank is (the max), and the median ignores the preemption spikes of a
 * shared machine that a mean would fold in.
 */
#ifndef EP_REPORTS_COMPARE_H
#define EP_REPORTS_COMPARE_H

#include <stddef.h>
#include <stdio.h>

#include "reports/result_json.h"

#define EP_BOOTSTRAP_ROUNDS 2000

enum ep_verdict { EP_SAME, EP_FASTER, EP_SLOWER, EP_UNKNOWN };

/* One op of one point, A against B. */
struct ep_op_cmp {
	char op[32];
	double median_a, median_b;   /* us */
	double delta_pct;            /* (median_b / median_a - 1) x 100: > 0 is slower */
	double lo_pct, hi_pct;       /* the confidence interval of delta_pct */
	int have_interval;           /* 0 when a side has no samples (epbench/1) */
	enum ep_verdict verdict;
	int regressed;               /* slower by more than the limit, the interval excluding zero */
};

/* A against B for one op's samples; max_regress_pct < 0: no limit. */
void ep_compare_samples(const double *a, int na, const double *b, int nb, double confidence,
			double max_regress_pct, struct ep_op_cmp *c);

/* Every op of two matched points (by name; ops in one only are skipped).
 * Returns how many were written to out (at most EP_MAX_OPS). */
int ep_compare_points(const struct ep_doc_point *a, const struct ep_doc_point *b, double confidence,
		      double max_regress_pct, struct ep_op_cmp *out);

/* "slower", "faster", "same", "?" */
const char *ep_verdict_word(enum ep_verdict v);

/* Refuses two results that are not the same experiment: another command,
 * other traffic, another check setting, or for a point of the same shape
 * another routing hash. 0, or 1 with one line in err naming the key and
 * both values. */
int ep_compare_comparable(const struct ep_doc *a, const struct ep_doc *b, char *err, size_t len);

/* The comparison table of a and b (header with what differs in their
 * provenance, a row per matched point and op, points present in one file
 * only listed). Returns how many ops regressed. */
int ep_compare_print(FILE *out, const struct ep_doc *a, const struct ep_doc *b, double confidence,
		     double max_regress_pct);

#endif
