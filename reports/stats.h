/* stats.h - summary statistics over timing samples (min, quantiles, mean, sd). */
#ifndef EP_STATS_H
#define EP_STATS_H

#include <stddef.h>

/* Summary of n samples, all in the samples' own unit (usually seconds). */
struct ep_stats {
	size_t n;      /* number of samples */
	double min;
	double median;
	double p90;    /* GSL quantiles: linear interpolation at (n-1)*f */
	double p99;
	double max;
	double mean;
	double stddev; /* sample standard deviation (n-1 denominator); 0 if n == 1 */
};

/* Computing */

/*
 * Fills *out from samples[0..n-1]. The samples are copied and sorted; the
 * caller's array is not modified. Does not block; allocates n doubles.
 * On failure every field of *out is 0 and the return is negative:
 * -EINVAL if n == 0, samples or out is NULL, or a sample is NaN or infinite
 * (neither has a place in a sort or a mean); -ENOMEM if the copy fails.
 */
int ep_stats_compute(const double *samples, size_t n, struct ep_stats *out);

/* The median of v[0..n-1] (sorts v in place, O(n log n)); 0 when n == 0. */
double ep_median(double *v, size_t n);

/* Failure rates */

/* The one-sided Clopper-Pearson upper bound, at confidence conf, of a rate
 * of which `failed` events were seen in n trials: the p whose Beta(failed
 * + 1, n - failed) quantile is conf (GSL); 1 when failed == n, NaN when n
 * is 0 or failed > n. 0 of 10,000 at 0.95 gives 1 - 0.05^(1/10000). */
double ep_rate_upper_bound(unsigned long failed, unsigned long n, double conf);

#endif
