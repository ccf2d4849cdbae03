/* stats.c - summary statistics over timing samples, computed with GSL.
 *
 * One sorted copy of the samples serves every order statistic; mean and
 * standard deviation come from the same copy, so the caller's array stays
 * untouched. GSL's quantile is the interpolated one at index (n-1)*f.
 */
#include "reports/stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

int ep_stats_compute(const double *samples, size_t n, struct ep_stats *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!out || !samples || n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(samples[i]))
			return -EINVAL;

	double *sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, samples, n * sizeof(*sorted));
	gsl_sort(sorted, 1, n);

	out->n = n;
	out->min = sorted[0];
	out->max = sorted[n - 1];
	out->median = gsl_stats_median_from_sorted_data(sorted, 1, n);
	out->p90 = gsl_stats_quantile_from_sorted_data(sorted, 1, n, 0.90);
	out->p99 = gsl_stats_quantile_from_sorted_data(sorted, 1, n, 0.99);
	/* Interpolation between equal neighbours can round a quantile a hair
	 * below the median (3.966 vs 3.9660000000000006): keep them ordered. */
	out->p90 = out->p90 < out->median ? out->median : out->p90;
	out->p99 = out->p99 < out->p90 ? out->p90 : out->p99;
	out->mean = gsl_stats_mean(sorted, 1, n);
	/* GSL divides by n-1, which is 0/0 for a single sample. */
	out->stddev = n > 1 ? gsl_stats_sd_m(sorted, 1, n, out->mean) : 0.0;

	free(sorted);
	return 0;
}

double ep_median(double *v, size_t n)
{
	if (!v || n == 0)
		return 0;
	gsl_sort(v, 1, n);
	return gsl_stats_median_from_sorted_data(v, 1, n);
}

double ep_rate_upper_bound(unsigned long failed, unsigned long n, double conf)
{
	if (n == 0 || failed > n)
		return NAN;
	if (failed == n)
		return 1.0;
	return gsl_cdf_beta_Pinv(conf, (double)failed + 1, (double)(n - failed));
}
