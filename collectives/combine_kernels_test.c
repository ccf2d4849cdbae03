/* combine_kernels_test.c - every level's combine reduction gives the scalar definition's bytes. */
#include "collectives/combine_kernels.h"
#include "tests/harness.h"

#include <errno.h>
#include <math.h>

#include "collectives/numeric.h"
#include "reference/inputs.h"
#include "tests/simd_levels.h"

/* BF16 rounding as its definition reads: NaN -> 0x7fff; otherwise the upper
 * half, plus one when the lower half is past the middle, or at it with the
 * upper half odd (a carry into the exponent gives the next power of two, or
 * infinity). Written apart from numeric.h's branch-free formula on purpose. */
static uint16_t bf16_plain(float f)
{
	uint32_t u = ep_f32_bits(f), lower = u & 0xffffu, upper = u >> 16;
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return 0x7fff;
	if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u)))
		upper++;
	return (uint16_t)upper;
}

/* The reduction of one column, one element at a time. */
static uint16_t column_plain(const uint16_t *const *in, int n, int pair_start, size_t c)
{
	if (n == 0)
		return 0;
	float acc = pair_start ? ep_bf16_to_f32(in[0][c]) + ep_bf16_to_f32(in[1][c])
			       : ep_bf16_to_f32(in[0][c]) + 0.0f;
	for (int j = pair_start ? 2 : 1; j < n; j++)
		acc += ep_bf16_to_f32(in[j][c]);
	return bf16_plain(acc);
}

static void expect_rows(enum ep_simd level, const uint16_t *const *in, int n, int pair_start, size_t H)
{
	uint16_t *out = malloc(H * sizeof(uint16_t) + 2);
	EP_ASSERT(out != NULL);
	out[H] = 0xbeef; /* nothing written past the row */
	ep_bf16_reduce_rows_at(level, in, n, pair_start, H, out);
	for (size_t c = 0; c < H; c++)
		if (out[c] != column_plain(in, n, pair_start, c))
			EP_FAIL("%s n %d pair %d H %zu column %zu: 0x%04x, the definition gives 0x%04x",
				ep_simd_name(level), n, pair_start, H, c, out[c], column_plain(in, n, pair_start, c));
	EP_ASSERT_UINT_EQ(out[H], 0xbeef);
	free(out);
}

/* Float to BF16 on every float (a sample under sanitizers), in blocks of 2^16. */
EP_TEST_EACH_LEVEL(rounds_every_float)
{
	enum { BLOCK = 1 << 16 };
	static float in[BLOCK];
	static uint16_t out[BLOCK];
	for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)BLOCK * EP_EXHAUSTIVE_STRIDE) {
		for (uint32_t i = 0; i < BLOCK; i++)
			in[i] = ep_f32_from_bits((uint32_t)base + i);
		ep_f32_row_to_bf16_at(level, in, out, BLOCK);
		for (uint32_t i = 0; i < BLOCK; i++)
			if (out[i] != bf16_plain(in[i]))
				EP_FAIL("%s: float 0x%08x -> 0x%04x, the definition gives 0x%04x", ep_simd_name(level),
					(uint32_t)base + i, out[i], bf16_plain(in[i]));
	}
}

/* Every BF16 input alone (-0 becomes +0, NaNs 0x7fff), and every pattern
 * against two others (pair starts, sums to infinity, cancellations). */
EP_TEST_EACH_LEVEL(every_bf16_input)
{
	enum { N = 65536 };
	static uint16_t a[N], b[N], d[N];
	for (uint32_t i = 0; i < N; i++) {
		a[i] = (uint16_t)i;
		b[i] = (uint16_t)(i * 40503u);          /* a permutation */
		d[i] = (uint16_t)((i * 40503u) ^ 0x8000u); /* its negation: x + (-x) */
	}
	const uint16_t *rows[4] = {a, b, d, a};
	for (int n = 0; n <= 4; n++)
		for (int pair = 0; pair <= (n >= 2); pair++)
			expect_rows(level, rows, n, pair, N);
}

/* Random rows of mixed magnitudes and specials at widths around the 64-column chunks. */
EP_TEST_EACH_LEVEL(random_rows_every_width)
{
	static const size_t widths[] = {1, 7, 63, 64, 65, 127, 128, 200, 7168};
	enum { MAXN = 10, MAXH = 7168 };
	static uint16_t rows[MAXN][MAXH];
	const uint16_t *in[MAXN];
	uint64_t h = 7;
	for (int j = 0; j < MAXN; j++) {
		in[j] = rows[j];
		for (int c = 0; c < MAXH; c++) {
			h = ep_mix64(h + 0x9e3779b97f4a7c15ULL);
			rows[j][c] = (h & 15) ? (uint16_t)((h >> 8 & 0x8000) | ((100 + (h >> 16) % 50) << 7) | (h >> 24 & 0x7f))
					      : (uint16_t)(h >> 32); /* 1 in 16: any pattern */
		}
	}
	for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++)
		for (int n = 0; n <= MAXN; n++)
			for (int pair = 0; pair <= (n >= 2); pair++)
				expect_rows(level, in, n, pair, widths[w]);
}

/* DeepEP's combine start: float(b0) + float(b1), a missing bias +0.0f;
 * then the rows. Signed zeros decide it: -0 + -0 stays -0, -0 + +0 is +0. */
EP_TEST_EACH_LEVEL(sum_start_signed_zeros)
{
	uint16_t mz[70], pz[70], one[70], out[70];
	for (int i = 0; i < 70; i++)
		mz[i] = 0x8000, pz[i] = 0x0000, one[i] = 0x3f80; /* -0, +0, 1.0 */
	const uint16_t *pair[] = {mz, mz}, *single[] = {mz}, *none[] = {NULL}, *three[] = {one, pz, one};
	ep_bf16_reduce_rows_at(level, pair, 2, 1, 70, out);
	EP_ASSERT_UINT_EQ(out[0], 0x8000);
	EP_ASSERT_UINT_EQ(out[69], 0x8000);
	ep_bf16_reduce_rows_at(level, single, 1, 0, 70, out);
	EP_ASSERT_UINT_EQ(out[0], 0x0000);
	EP_ASSERT_UINT_EQ(out[69], 0x0000);
	ep_bf16_reduce_rows_at(level, none, 0, 0, 70, out);
	EP_ASSERT_UINT_EQ(out[33], 0x0000);
	ep_bf16_reduce_rows_at(level, three, 3, 1, 70, out);
	EP_ASSERT_UINT_EQ(out[65], 0x4000); /* 2.0 */
}

/* internode combine sends a node partial of one row as the row itself
 * (collectives/internode.c, single_row): p = reduce(r) differs from r only
 * for -0 and NaN, and a sum that starts from a single first row or bias
 * cannot tell them apart. Every r, against a first row a before and after
 * it (signed zeros, subnormals, infinities, NaNs, the largest finite, and
 * every 251st pattern); and the two-bias start
 * where it does matter (-0 + -0 + -0 is -0, -0 + -0 + +0 is +0). */
EP_TEST_EACH_LEVEL(lone_row_stands_for_its_partial)
{
	enum { W = 1 << 16 };
	static uint16_t r[W], p[W], a[W], with_r[W], with_p[W];
	for (uint32_t i = 0; i < W; i++)
		r[i] = (uint16_t)i;
	const uint16_t *one[] = {r};
	ep_bf16_reduce_rows_at(level, one, 1, 0, W, p);
	for (uint32_t i = 0; i < W; i++)
		EP_ASSERT_UINT_EQ(p[i], i == 0x8000 ? 0u : (i & 0x7fffu) > 0x7f80u ? EP_BF16_NAN : i);
	ep_bf16_reduce_rows_at(level, (const uint16_t *const[]){p}, 1, 0, W, with_p);
	for (uint32_t i = 0; i < W; i++)
		EP_ASSERT_UINT_EQ(with_p[i], p[i]);
	static const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x007f, 0x0080, 0x3f80, 0xbf80,
					   0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7fc0, 0xffc0, 0x7f81, 0x7fff};
	int nspecial = (int)(sizeof(special) / sizeof(special[0]));
	for (uint32_t k = 0; k < (uint32_t)nspecial + W / 251; k++) {
		uint16_t v = k < (uint32_t)nspecial ? special[k] : (uint16_t)((k - (uint32_t)nspecial) * 251u);
		for (uint32_t i = 0; i < W; i++)
			a[i] = v;
		for (int first = 0; first < 2; first++) {
			const uint16_t *rows_r[] = {first ? r : a, first ? a : r}, *rows_p[] = {first ? p : a, first ? a : p};
			ep_bf16_reduce_rows_at(level, rows_r, 2, 0, W, with_r);
			ep_bf16_reduce_rows_at(level, rows_p, 2, 0, W, with_p);
			for (uint32_t i = 0; i < W; i++)
				if (with_r[i] != with_p[i])
					EP_FAIL("%s a 0x%04x r 0x%04x first %d: 0x%04x from r, 0x%04x from its partial",
						ep_simd_name(level), v, i, first, with_r[i], with_p[i]);
		}
	}
	uint16_t mz[1] = {0x8000}, pz[1] = {0x0000}, out[2];
	ep_bf16_reduce_rows_at(level, (const uint16_t *const[]){mz, mz, mz}, 3, 1, 1, out);
	ep_bf16_reduce_rows_at(level, (const uint16_t *const[]){mz, mz, pz}, 3, 1, 1, out + 1);
	EP_ASSERT_UINT_EQ(out[0], 0x8000);
	EP_ASSERT_UINT_EQ(out[1], 0x0000);
}

/* Ascend's weighted sum of one column, one element at a time: each product
 * stored (rounded) before it is added. */
static uint16_t wcolumn_plain(const uint16_t *const *in, const float *w, int nw, int n, const uint16_t *tail,
			      size_t c)
{
	float acc = 0.0f;
	for (int j = 0; j < n; j++) {
		volatile float v = ep_bf16_to_f32(in[j][c]);
		if (j < nw)
			v = v * w[j];
		acc = acc + v;
	}
	if (tail)
		acc = acc + ep_bf16_to_f32(tail[c]);
	return bf16_plain(acc);
}

static void expect_wsum(enum ep_simd level, const uint16_t *const *in, const float *w, int nw, int n,
			const uint16_t *tail, size_t H)
{
	uint16_t *out = malloc(H * sizeof(uint16_t) + 2);
	EP_ASSERT(out != NULL);
	out[H] = 0xbeef;
	ep_bf16_weighted_sum_rows_at(level, in, w, nw, n, tail, H, out);
	for (size_t c = 0; c < H; c++)
		if (out[c] != wcolumn_plain(in, w, nw, n, tail, c))
			EP_FAIL("%s weighted n %d nw %d tail %d H %zu column %zu: 0x%04x, the definition gives 0x%04x",
				ep_simd_name(level), n, nw, tail != NULL, H, c, out[c], wcolumn_plain(in, w, nw, n, tail, c));
	EP_ASSERT_UINT_EQ(out[H], 0xbeef);
	free(out);
}

/* Ascend's sum: every BF16 input under weights that round, overflow, go
 * subnormal or are NaN, weighted and shared rows, with and without shared_x. */
EP_TEST_EACH_LEVEL(weighted_every_bf16_input)
{
	enum { N = 65536 };
	static uint16_t a[N], b[N], d[N];
	for (uint32_t i = 0; i < N; i++) {
		a[i] = (uint16_t)i;
		b[i] = (uint16_t)(i * 40503u);
		d[i] = (uint16_t)((i * 40503u) ^ 0x8000u);
	}
	const uint16_t *rows[4] = {a, b, d, a};
	static const float ws[][4] = {{1.0f, 1.0f, 1.0f, 1.0f}, {0.3f, -1.7f, 1e-30f, 3e30f},
				      {-0.0f, 0.1234567f, 65504.0f, 1.0f / 3.0f}, {NAN, 0.5f, 2.0f, -0.25f}};
	for (size_t k = 0; k < sizeof(ws) / sizeof(ws[0]); k++)
		for (int n = 0; n <= 4; n++)
			for (int nw = 0; nw <= n; nw += n ? (n + 1) / 2 : 1)
				for (int t = 0; t < 2; t++)
					expect_wsum(level, rows, ws[k], nw, n, t ? b : NULL, N);
}

/* Random rows and weights (products a fused multiply-add would round
 * differently in most columns) at widths around the 64-column chunks. */
EP_TEST_EACH_LEVEL(weighted_random_rows_every_width)
{
	static const size_t widths[] = {1, 7, 63, 64, 65, 127, 128, 200, 7168};
	enum { MAXN = 10, MAXH = 7168 };
	static uint16_t rows[MAXN + 1][MAXH];
	const uint16_t *in[MAXN];
	float w[MAXN];
	uint64_t h = 11;
	for (int j = 0; j <= MAXN; j++) {
		if (j < MAXN)
			in[j] = rows[j], h = ep_mix64(h + 1), w[j] = (float)(h % 100000) / 70000.0f - 0.4f;
		for (int c = 0; c < MAXH; c++) {
			h = ep_mix64(h + 0x9e3779b97f4a7c15ULL);
			rows[j][c] = (h & 15) ? (uint16_t)((h >> 8 & 0x8000) | ((100 + (h >> 16) % 50) << 7) | (h >> 24 & 0x7f))
					      : (uint16_t)(h >> 32);
		}
	}
	for (size_t k = 0; k < sizeof(widths) / sizeof(widths[0]); k++)
		for (int n = 0; n <= MAXN; n += 3)
			for (int nw = 0; nw <= n; nw += 2)
				expect_wsum(level, in, w, nw, n, (n & 1) ? rows[MAXN] : NULL, widths[k]);
}

/* The product is rounded before the add: -1 weighted by 1 + 2^-7 + 2^-17
 * starts the sum at -(1 + 2^-7 + 2^-17); (1 + 2^-7) weighted by 1 + 2^-17
 * is that plus 2^-24, a tie the float product rounds away (to even), so the
 * sum is +0, where a fused multiply-add would keep 2^-24 (BF16 0x3380). */
EP_TEST_EACH_LEVEL(weighted_product_is_rounded)
{
	uint16_t m1[70], x[70], out[70];
	for (int i = 0; i < 70; i++)
		m1[i] = 0xbf80, x[i] = 0x3f81; /* -1, 1 + 2^-7 */
	const float w[2] = {1.0f + 0x1p-7f + 0x1p-17f, 1.0f + 0x1p-17f};
	ep_bf16_weighted_sum_rows_at(level, (const uint16_t *const[]){m1, x}, w, 2, 2, NULL, 70, out);
	EP_ASSERT_UINT_EQ(out[0], 0x0000);
	EP_ASSERT_UINT_EQ(out[69], 0x0000);
}

EP_TEST(active_level_is_the_widest_unless_chosen)
{
	EP_ASSERT_INT_EQ(ep_simd_active(), ep_simd_best());
	EP_ASSERT_INT_EQ(ep_simd_use(EP_SIMD_BASELINE), 0);
	EP_ASSERT_INT_EQ(ep_simd_active(), EP_SIMD_BASELINE);
	for (int l = 0; l < EP_SIMD_LEVELS; l++)
		if (!ep_simd_runs((enum ep_simd)l))
			EP_ASSERT_INT_EQ(ep_simd_use((enum ep_simd)l), -ENOTSUP);
	enum ep_simd l;
	EP_ASSERT_INT_EQ(ep_simd_parse("auto", &l), 0);
	EP_ASSERT_INT_EQ(l, ep_simd_best());
	EP_ASSERT_INT_EQ(ep_simd_parse("sse9", &l), -EINVAL);
}

EP_TEST_MAIN()
