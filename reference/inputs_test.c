/* inputs_test.c - seed-derived routing and payload properties. */
#include "reference/inputs.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "collectives/error.h"
#include "collectives/numeric.h"
#include "tests/harness.h"

static struct ep_shape shape(int R, int T, int K, int E)
{
	return (struct ep_shape){.num_ranks = R, .num_tokens = T, .hidden = 256, .num_topk = K,
				 .num_experts = E, .with_topk = 1};
}

EP_TEST(uniform_distinct_in_range_and_deterministic)
{
	struct ep_shape s = shape(4, 500, 8, 64);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM};
	int64_t a[500 * 8], b[500 * 8], c[500 * 8];
	float wa[500 * 8], wb[500 * 8], wc[500 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 42, 1, a, wa), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 42, 1, b, wb), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 42, 2, c, wc), 0);
	EP_ASSERT(memcmp(a, b, sizeof(a)) == 0 && memcmp(wa, wb, sizeof(wa)) == 0);
	EP_ASSERT(memcmp(a, c, sizeof(a)) != 0);
	int hist[64] = {0};
	for (int t = 0; t < 500; t++)
		for (int j = 0; j < 8; j++) {
			int64_t e = a[t * 8 + j];
			EP_ASSERT(e >= 0 && e < 64);
			EP_ASSERT(wa[t * 8 + j] > 0.0f && wa[t * 8 + j] < 1.0f);
			hist[e]++;
			for (int k = 0; k < j; k++)
				EP_ASSERT(a[t * 8 + k] != e);
		}
	for (int e = 0; e < 64; e++) /* 62.5 expected per expert */
		EP_ASSERT(hist[e] > 25 && hist[e] < 110);
}

EP_TEST(masked_ratio_one_masks_everything)
{
	struct ep_shape s = shape(2, 50, 4, 8);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM, .masked_ratio = 1.0};
	int64_t a[200];
	float w[200];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 1, 0, a, w), 0);
	for (int i = 0; i < 200; i++)
		EP_ASSERT_INT_EQ(a[i], -1);
}

EP_TEST(hot_expert_first_and_zipf_skewed)
{
	struct ep_shape s = shape(2, 200, 3, 16);
	struct ep_routing hot = {.kind = EP_ROUTE_HOT, .hot_expert = 9};
	struct ep_routing zipf = {.kind = EP_ROUTE_ZIPF, .zipf_s = 2.0};
	int64_t a[600];
	float w[600];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &hot, 3, 0, a, w), 0);
	for (int t = 0; t < 200; t++) {
		EP_ASSERT_INT_EQ(a[t * 3], 9);
		EP_ASSERT(a[t * 3 + 1] != 9 && a[t * 3 + 2] != 9);
	}
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &zipf, 3, 0, a, w), 0);
	int first = 0, last = 0;
	for (int i = 0; i < 600; i++) {
		first += a[i] == 0;
		last += a[i] == 15;
	}
	EP_ASSERT(first > 170); /* P(0) = 0.63 per draw: in nearly every token */
	EP_ASSERT(last < 40);
}

/* 300 tokens of 8 distinct ids among 64 experts, each within m of the 8 groups of 8. */
static void assert_within_groups(const int64_t *a, int m)
{
	for (int t = 0; t < 300; t++) {
		int groups[8] = {0}, n = 0;
		for (int j = 0; j < 8; j++) {
			EP_ASSERT(a[t * 8 + j] >= 0 && a[t * 8 + j] < 64);
			n += !groups[a[t * 8 + j] / 8]++;
			for (int i = 0; i < j; i++)
				EP_ASSERT(a[t * 8 + i] != a[t * 8 + j]);
		}
		EP_ASSERT(n <= m);
	}
}

EP_TEST(group_limited_uses_at_most_topk_groups)
{
	struct ep_shape s = shape(8, 300, 8, 64);
	struct ep_routing r = {.kind = EP_ROUTE_UNIFORM, .num_groups = 8, .num_topk_groups = 2};
	int64_t a[300 * 8];
	float w[300 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 5, 3, a, w), 0);
	assert_within_groups(a, 2);
}

EP_TEST(payload_finite_bounded_and_seed_dependent)
{
	uint16_t a[1000], b[1000];
	ep_gen_bf16_row(1, &(struct ep_routing){.payload = EP_PAYLOAD_NARROW}, EP_STREAM_X, 0, 0, 1000, a);
	ep_gen_bf16_row(2, &(struct ep_routing){.payload = EP_PAYLOAD_NARROW}, EP_STREAM_X, 0, 0, 1000, b);
	EP_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	ep_gen_bf16_row(1, &(struct ep_routing){.payload = EP_PAYLOAD_NARROW}, EP_STREAM_BIAS0, 0, 0, 1000, b);
	EP_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	int neg = 0;
	for (int i = 0; i < 1000; i++) {
		float v = ep_bf16_to_f32(a[i]);
		EP_ASSERT(isfinite(v));
		EP_ASSERT(fabsf(v) >= 1.0f / 128 && fabsf(v) < 2.0f);
		neg += v < 0;
	}
	EP_ASSERT(neg > 400 && neg < 600);
}

EP_TEST(routing_file_errors_name_line_and_value)
{
	char path[] = "/tmp/ep_routing_XXXXXX";
	int fd = mkstemp(path);
	EP_ASSERT(fd >= 0);
	const char text[] = "# comment\n1 2\n\n3 9\n";
	EP_ASSERT(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	int64_t *rows = NULL;
	size_t n = 0;
	char err[256];
	EP_ASSERT_INT_EQ(ep_load_routing_file(path, 2, 8, &rows, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, ":4:") && strstr(err, "'9'"));
	EP_ASSERT_INT_EQ(ep_load_routing_file(path, 2, 16, &rows, &n, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(n, 2);
	EP_ASSERT_INT_EQ(rows[3], 9);
	free(rows);
	EP_ASSERT_INT_EQ(ep_load_routing_file(path, 3, 16, &rows, &n, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "2 entries, want 3"));
	unlink(path);
}

/* WIDE: no zero, subnormal, inf or NaN; exponents cover 2^-24..2^24 and no more. */
EP_TEST(wide_payload_spread_without_specials)
{
	enum { N = 1 << 16 };
	static uint16_t a[N];
	int lo = 0, hi = 0, seen[49] = {0};
	ep_gen_bf16_row(5, &(struct ep_routing){.payload = EP_PAYLOAD_WIDE}, EP_STREAM_X, 1, 3, N, a);
	for (int i = 0; i < N; i++) {
		float v = ep_bf16_to_f32(a[i]);
		EP_ASSERT(isnormal(v));
		int e = ((a[i] >> 7) & 0xff) - 127;
		EP_ASSERT(e >= -24 && e <= 24);
		seen[e + 24] = 1;
		lo += e < -12, hi += e > 12;
	}
	for (int e = 0; e < 49; e++)
		EP_ASSERT(seen[e]);
	EP_ASSERT(lo > N / 5 && hi > N / 5);
}

/* SPECIAL: each kind of value at its documented rate (within 25%). */
EP_TEST(special_payload_rates)
{
	enum { N = 1 << 18 };
	static uint16_t a[N];
	int pz = 0, nz = 0, sub = 0, big = 0, inf = 0, nan = 0;
	ep_gen_bf16_row(9, &(struct ep_routing){.payload = EP_PAYLOAD_SPECIAL}, EP_STREAM_BIAS1, 2, 7, N, a);
	for (int i = 0; i < N; i++) {
		unsigned ex = (a[i] >> 7) & 0xff, m = a[i] & 0x7f;
		pz += a[i] == 0x0000, nz += a[i] == 0x8000;
		sub += ex == 0 && m != 0;
		big += ex == 254;
		inf += ex == 255 && m == 0;
		nan += ex == 255 && m != 0;
	}
	const int got[6] = {pz, nz, sub, big, inf, nan}, per[6] = {64, 64, 32, 128, 256, 512};
	for (int k = 0; k < 6; k++)
		EP_ASSERT(got[k] > N / per[k] * 3 / 4 && got[k] < N / per[k] * 5 / 4);
}

/* The top-k ids do not depend on the payload; WIDE's weights take four values. */
EP_TEST(payload_keeps_ids_and_ties_weights)
{
	struct ep_shape s = shape(4, 200, 8, 64);
	struct ep_routing n = {.kind = EP_ROUTE_UNIFORM}, w = {.kind = EP_ROUTE_UNIFORM, .payload = EP_PAYLOAD_WIDE};
	int64_t a[200 * 8], b[200 * 8];
	float wa[200 * 8], wb[200 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &n, 3, 1, a, wa), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &w, 3, 1, b, wb), 0);
	EP_ASSERT(memcmp(a, b, sizeof(a)) == 0);
	int ties = 0;
	for (int t = 0; t < 200; t++)
		for (int j = 1; j < 8; j++) {
			EP_ASSERT(wb[t * 8 + j] > 0.25f && wb[t * 8 + j] < 0.75f);
			ties += wb[t * 8 + j] == wb[t * 8];
		}
	EP_ASSERT(ties > 200 * 7 / 8);
}

/* hot:EXPERT as epbench generated it before the hot kinds were one code
 * path (commit 82820dd): slot 0 the hot expert, K - 1 others by
 * gsl_ran_choose and gsl_ran_shuffle, then weight and mask draws. The
 * alias must keep these bytes. */
static void old_hot_routing(const struct ep_shape *s, const struct ep_routing *r, uint64_t seed, int rank,
			    int64_t *idx, float *w)
{
	gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
	gsl_rng_set(g, (unsigned long)ep_mix64(seed * 0x9e3779b97f4a7c15ULL + (uint64_t)rank + 1));
	int E = s->num_experts, K = s->num_topk, allowed[E], chosen[K];
	for (int t = 0; t < s->num_tokens; t++) {
		int64_t *row = idx + (size_t)t * K;
		int n = 0;
		for (int e = 0; e < E; e++)
			if (e != r->hot_expert)
				allowed[n++] = e;
		row[0] = r->hot_expert;
		if (K > 1) {
			gsl_ran_choose(g, chosen, (size_t)K - 1, allowed, (size_t)n, sizeof(int));
			gsl_ran_shuffle(g, chosen, (size_t)K - 1, sizeof(int));
			for (int j = 0; j < K - 1; j++)
				row[j + 1] = chosen[j];
		}
		for (int j = 0; j < K; j++) {
			double u = gsl_rng_uniform_pos(g);
			w[(size_t)t * K + j] = (float)u;
			if (r->masked_ratio > 0 && gsl_rng_uniform(g) < r->masked_ratio)
				row[j] = -1;
		}
	}
	gsl_rng_free(g);
}

EP_TEST(hot_alias_keeps_the_old_bytes)
{
	static const int K[] = {1, 4, 8};
	for (int i = 0; i < 3; i++) {
		struct ep_shape s = shape(4, 300, K[i], 32);
		struct ep_routing r = {.kind = EP_ROUTE_HOT, .hot_expert = 5 + i, .masked_ratio = 0.1 * i};
		int64_t a[300 * 8], b[300 * 8];
		float wa[300 * 8], wb[300 * 8];
		EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 11, 2, a, wa), 0);
		old_hot_routing(&s, &r, 11, 2, b, wb);
		EP_ASSERT(memcmp(a, b, sizeof(int64_t) * 300 * (size_t)K[i]) == 0);
		EP_ASSERT(memcmp(wa, wb, sizeof(float) * 300 * (size_t)K[i]) == 0);
	}
}

/* The slot count of the hot kinds: min(N, max(round(F K), K - (E - N))). */
EP_TEST(hot_set_slots_follow_the_formula)
{
	struct ep_shape s = shape(4, 1, 8, 64);
	int first, count, slots;
	struct ep_routing r = {.kind = EP_ROUTE_HOT_RANK, .hot_rank = 2, .hot_frac = 0.5};
	EP_ASSERT(ep_routing_hot_set(&s, &r, &first, &count, &slots));
	EP_ASSERT_INT_EQ(first, 32);
	EP_ASSERT_INT_EQ(count, 16);
	EP_ASSERT_INT_EQ(slots, 4);
	r.hot_frac = 0.3; /* 2.4 -> 2 */
	ep_routing_hot_set(&s, &r, &first, &count, &slots);
	EP_ASSERT_INT_EQ(slots, 2);
	r.hot_frac = 0.0625; /* 0.5 -> 1: half away from zero */
	ep_routing_hot_set(&s, &r, &first, &count, &slots);
	EP_ASSERT_INT_EQ(slots, 1);
	r = (struct ep_routing){.kind = EP_ROUTE_HOT_EXPERTS, .hot_count = 3, .hot_frac = 1.0};
	ep_routing_hot_set(&s, &r, &first, &count, &slots); /* capped by N */
	EP_ASSERT_INT_EQ(first, 0);
	EP_ASSERT_INT_EQ(slots, 3);
	s = shape(1, 1, 8, 10);
	r = (struct ep_routing){.kind = EP_ROUTE_HOT_EXPERTS, .hot_count = 6, .hot_frac = 0.1};
	ep_routing_hot_set(&s, &r, &first, &count, &slots); /* only 4 others: 4 hot slots */
	EP_ASSERT_INT_EQ(slots, 4);
	r.kind = EP_ROUTE_ZIPF;
	EP_ASSERT(!ep_routing_hot_set(&s, &r, &first, &count, &slots));
}

/* Each token has exactly `slots` hot experts, all distinct, in its first slots. */
static void assert_hot_rows(const int64_t *a, int T, int K, int lo, int n, int slots)
{
	for (int t = 0; t < T; t++) {
		int hot = 0;
		for (int j = 0; j < K; j++) {
			int64_t e = a[t * K + j];
			int in = e >= lo && e < lo + n;
			EP_ASSERT(e >= 0);
			EP_ASSERT(in == (j < slots));
			hot += in;
			for (int k = 0; k < j; k++)
				EP_ASSERT(a[t * K + k] != e);
		}
		EP_ASSERT_INT_EQ(hot, slots);
	}
}

EP_TEST(hot_rank_and_hot_experts_rows)
{
	struct ep_shape s = shape(4, 400, 8, 64);
	struct ep_routing r = {.kind = EP_ROUTE_HOT_RANK, .hot_rank = 1, .hot_frac = 1.0};
	int64_t a[400 * 8];
	float w[400 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 4, 3, a, w), 0);
	assert_hot_rows(a, 400, 8, 16, 16, 8); /* every row on rank 1 */
	r.hot_frac = 0.5;
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 4, 3, a, w), 0);
	assert_hot_rows(a, 400, 8, 16, 16, 4);
	r = (struct ep_routing){.kind = EP_ROUTE_HOT_EXPERTS, .hot_count = 5, .hot_frac = 0.25};
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &r, 4, 0, a, w), 0);
	assert_hot_rows(a, 400, 8, 0, 5, 2);
}

/* Coefficient of variation of the tokens per expert over 4 ranks' routing. */
static double routing_cv(const struct ep_shape *s, const struct ep_routing *r, uint64_t seed)
{
	int64_t a[500 * 8];
	float w[500 * 8];
	double count[64] = {0}, mean = 0, var = 0;
	for (int rank = 0; rank < 4; rank++) {
		EP_ASSERT_INT_EQ(ep_gen_routing(s, r, seed, rank, a, w), 0);
		for (int i = 0; i < 500 * 8; i++)
			count[a[i]]++;
	}
	for (int e = 0; e < 64; e++)
		mean += count[e] / 64;
	for (int e = 0; e < 64; e++)
		var += (count[e] - mean) * (count[e] - mean) / 64;
	return sqrt(var) / mean;
}

EP_TEST(lognormal_skew_grows_with_sigma_and_is_seeded)
{
	struct ep_shape s = shape(4, 500, 8, 64);
	struct ep_routing lo = {.kind = EP_ROUTE_LOGNORMAL, .lognormal_sigma = 0.3};
	struct ep_routing hi = {.kind = EP_ROUTE_LOGNORMAL, .lognormal_sigma = 1.5};
	double cv_lo = routing_cv(&s, &lo, 7), cv_hi = routing_cv(&s, &hi, 7);
	EP_ASSERT(cv_lo < cv_hi);
	EP_ASSERT(cv_hi > 0.5);
	int64_t a[500 * 8], b[500 * 8];
	float w[500 * 8];
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &hi, 7, 1, a, w), 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &hi, 7, 1, b, w), 0);
	EP_ASSERT(memcmp(a, b, sizeof(a)) == 0);
	EP_ASSERT_INT_EQ(ep_gen_routing(&s, &hi, 8, 1, b, w), 0);
	EP_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	for (int t = 0; t < 500; t++)
		for (int j = 0; j < 8; j++)
			for (int k = 0; k < j; k++)
				EP_ASSERT(a[t * 8 + k] != a[t * 8 + j]);
}

/* Every kind keeps a token within num_topk_groups groups. */
EP_TEST(every_kind_honours_group_limits)
{
	struct ep_shape s = shape(4, 300, 8, 64);
	struct ep_routing kinds[] = {
		{.kind = EP_ROUTE_ZIPF, .zipf_s = 1.2},
		{.kind = EP_ROUTE_LOGNORMAL, .lognormal_sigma = 1.0},
		{.kind = EP_ROUTE_HOT, .hot_expert = 20},
		{.kind = EP_ROUTE_HOT_EXPERTS, .hot_count = 4, .hot_frac = 0.5},
		{.kind = EP_ROUTE_HOT_RANK, .hot_rank = 0, .hot_frac = 0.5},
	};
	int64_t a[300 * 8];
	float w[300 * 8];
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		kinds[k].num_groups = 8;
		kinds[k].num_topk_groups = 4;
		EP_ASSERT_INT_EQ(ep_gen_routing(&s, &kinds[k], 5, 2, a, w), 0);
		assert_within_groups(a, 4);
	}
}

EP_TEST_MAIN()
