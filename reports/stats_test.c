/* stats_test.c - ep_stats_compute against values worked out by hand. */
#include "reports/stats.h"
#include "tests/harness.h"

#include <errno.h>

/* 1..10: mean 5.5, median (5+6)/2; GSL quantile at index (n-1)*f = 9f:
 * p90 at 8.1 -> 9 + 0.1*(10-9) = 9.1, p99 at 8.91 -> 9.91;
 * sum of squared deviations = 2*(0.25+2.25+6.25+12.25+20.25) = 82.5,
 * so sd = sqrt(82.5/9). */
EP_TEST(one_to_ten)
{
	double x[10];
	for (int i = 0; i < 10; i++)
		x[i] = i + 1;
	struct ep_stats s;
	EP_ASSERT_INT_EQ(ep_stats_compute(x, 10, &s), 0);
	EP_ASSERT_UINT_EQ(s.n, 10);
	EP_ASSERT_NEAR(s.min, 1.0, 0);
	EP_ASSERT_NEAR(s.max, 10.0, 0);
	EP_ASSERT_NEAR(s.median, 5.5, 1e-12);
	EP_ASSERT_NEAR(s.p90, 9.1, 1e-12);
	EP_ASSERT_NEAR(s.p99, 9.91, 1e-12);
	EP_ASSERT_NEAR(s.mean, 5.5, 1e-12);
	EP_ASSERT_NEAR(s.stddev, sqrt(82.5 / 9.0), 1e-12);
}

/* Odd count: the median is the middle element. {2,4,4,4,5,5,7,9}+{10}:
 * n = 9, sorted middle = 5; p90 at index 7.2 -> 9 + 0.2*(10-9) = 9.2;
 * p99 at 7.92 -> 9.92; mean 50/9. */
EP_TEST(odd_count)
{
	double x[] = {10, 2, 4, 4, 4, 5, 5, 7, 9};
	struct ep_stats s;
	EP_ASSERT_INT_EQ(ep_stats_compute(x, 9, &s), 0);
	EP_ASSERT_NEAR(s.median, 5.0, 0);
	EP_ASSERT_NEAR(s.p90, 9.2, 1e-12);
	EP_ASSERT_NEAR(s.p99, 9.92, 1e-12);
	EP_ASSERT_NEAR(s.mean, 50.0 / 9.0, 1e-12);
	EP_ASSERT_NEAR(s.min, 2.0, 0);
	EP_ASSERT_NEAR(s.max, 10.0, 0);
}

EP_TEST(single_sample)
{
	double x = 3.25;
	struct ep_stats s;
	EP_ASSERT_INT_EQ(ep_stats_compute(&x, 1, &s), 0);
	EP_ASSERT_UINT_EQ(s.n, 1);
	EP_ASSERT_NEAR(s.min, 3.25, 0);
	EP_ASSERT_NEAR(s.median, 3.25, 0);
	EP_ASSERT_NEAR(s.p90, 3.25, 0);
	EP_ASSERT_NEAR(s.p99, 3.25, 0);
	EP_ASSERT_NEAR(s.max, 3.25, 0);
	EP_ASSERT_NEAR(s.mean, 3.25, 0);
	EP_ASSERT_NEAR(s.stddev, 0.0, 0); /* not NaN */
}

/* Two samples: sd = |a-b|/sqrt(2); every quantile interpolates. */
EP_TEST(two_samples)
{
	double x[] = {3.0, 1.0};
	struct ep_stats s;
	EP_ASSERT_INT_EQ(ep_stats_compute(x, 2, &s), 0);
	EP_ASSERT_NEAR(s.median, 2.0, 1e-15);
	EP_ASSERT_NEAR(s.p90, 2.8, 1e-12);
	EP_ASSERT_NEAR(s.p99, 2.98, 1e-12);
	EP_ASSERT_NEAR(s.stddev, 2.0 / sqrt(2.0), 1e-12);
}

EP_TEST(input_not_modified)
{
	double x[] = {5, 3, 9, 1, 7};
	double copy[5];
	memcpy(copy, x, sizeof(x));
	struct ep_stats s;
	EP_ASSERT_INT_EQ(ep_stats_compute(x, 5, &s), 0);
	EP_ASSERT(memcmp(x, copy, sizeof(x)) == 0);
	EP_ASSERT_NEAR(s.min, 1.0, 0);
	EP_ASSERT_NEAR(s.median, 5.0, 0);
	EP_ASSERT_NEAR(s.max, 9.0, 0);
}

EP_TEST(empty_is_einval_and_zeroed)
{
	struct ep_stats s;
	memset(&s, 0xab, sizeof(s));
	double x = 1.0;
	EP_ASSERT_INT_EQ(ep_stats_compute(&x, 0, &s), -EINVAL);
	EP_ASSERT_UINT_EQ(s.n, 0);
	EP_ASSERT_NEAR(s.min, 0.0, 0);
	EP_ASSERT_NEAR(s.median, 0.0, 0);
	EP_ASSERT_NEAR(s.p90, 0.0, 0);
	EP_ASSERT_NEAR(s.p99, 0.0, 0);
	EP_ASSERT_NEAR(s.max, 0.0, 0);
	EP_ASSERT_NEAR(s.mean, 0.0, 0);
	EP_ASSERT_NEAR(s.stddev, 0.0, 0);
	EP_ASSERT_INT_EQ(ep_stats_compute(NULL, 3, &s), -EINVAL);
	EP_ASSERT_INT_EQ(ep_stats_compute(&x, 1, NULL), -EINVAL);
}

EP_TEST(non_finite_is_einval)
{
	double x[] = {1.0, NAN, 3.0};
	struct ep_stats s;
	EP_ASSERT_INT_EQ(ep_stats_compute(x, 3, &s), -EINVAL);
	EP_ASSERT_UINT_EQ(s.n, 0);
	x[1] = INFINITY;
	EP_ASSERT_INT_EQ(ep_stats_compute(x, 3, &s), -EINVAL);
}

/* P(X <= x) for X ~ Binomial(n, p), summed term by term (apart from GSL). */
static double binomial_cdf(unsigned long x, unsigned long n, double p)
{
	double sum = 0;
	for (unsigned long k = 0; k <= x; k++) /* each term in logs: (1 - p)^n underflows near p = 1 */
		sum += exp(lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1) +
			   (double)k * log(p) + (double)(n - k) * log1p(-p));
	return sum;
}

/* The Clopper-Pearson upper bound p is where seeing x or fewer failures
 * becomes as unlikely as 1 - conf. */
EP_TEST(rate_upper_bound_is_clopper_pearson)
{
	EP_ASSERT_NEAR(ep_rate_upper_bound(0, 10000, 0.95), 1 - pow(0.05, 1e-4), 1e-12);
	EP_ASSERT_NEAR(ep_rate_upper_bound(0, 10000, 0.95), 2.9953e-4, 1e-8);
	static const unsigned long cases[][2] = {{1, 100}, {5, 1000}, {3, 7}, {99, 100}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double p = ep_rate_upper_bound(cases[i][0], cases[i][1], 0.95);
		EP_ASSERT(p > (double)cases[i][0] / (double)cases[i][1] && p < 1);
		EP_ASSERT_NEAR(binomial_cdf(cases[i][0], cases[i][1], p), 0.05, 1e-9);
	}
	EP_ASSERT_NEAR(ep_rate_upper_bound(1, 100, 0.95), 0.04656, 5e-5);
	EP_ASSERT_NEAR(ep_rate_upper_bound(7, 7, 0.95), 1.0, 0);
	EP_ASSERT(isnan(ep_rate_upper_bound(0, 0, 0.95)));
	EP_ASSERT(isnan(ep_rate_upper_bound(8, 7, 0.95)));
}

EP_TEST_MAIN()
