/* numeric_test.c - hand-derived vectors for the BF16, E4M3, FP8-cast, UE8M0
 * and INT8 conversions in numeric.h.
 *
 * Every expected value below is written out with its derivation (or comes
 * from an independent oracle written here: nearest representable value by
 * search, in double precision), never from the code under test. Floats are
 * given as bit patterns where rounding matters.
 */
#include "collectives/numeric.h"

#include "tests/harness.h"

#include <float.h>
#include <math.h>

static float fb(uint32_t bits)
{
	return ep_f32_from_bits(bits);
}

struct f2b {
	uint32_t in;  /* float bits */
	uint16_t out; /* expected bf16 bits */
};

static void check_f2b(const struct f2b *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t got = ep_f32_to_bf16(fb(v[i].in));
		if (got != v[i].out)
			EP_FAIL("ep_f32_to_bf16(0x%08x) = 0x%04x, want 0x%04x",
				v[i].in, got, v[i].out);
	}
}

/* --- BF16 -------------------------------------------------------------- */

EP_TEST(bf16_to_f32_is_exact)
{
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0x3f80), 1.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0xc000), -2.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0x4060), 3.5f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0x8000), -0.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0x7f80), fb(0x7f800000));
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0xff80), fb(0xff800000));
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0x0001), fb(0x00010000));
	/* NaN payloads pass through unchanged. */
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0x7fc1), fb(0x7fc10000));
	EP_ASSERT_FLOAT_BITS_EQ(ep_bf16_to_f32(0xff81), fb(0xff810000));
}

EP_TEST(bf16_rounds_ties_to_even)
{
	static const struct f2b v[] = {
		{0x3f808000, 0x3f80}, /* tie, 0x3f80 even: down */
		{0x3f818000, 0x3f82}, /* tie, 0x3f81 odd: up */
		{0x3f808001, 0x3f81}, /* just above the tie: up */
		{0x3f807fff, 0x3f80}, /* just below the tie: down */
		{0x3f818001, 0x3f82},
		{0x3f817fff, 0x3f81},
		{0xbf808000, 0xbf80}, /* negative ties mirror */
		{0xbf818000, 0xbf82},
		{0xbf808001, 0xbf81},
		{0x3fff8000, 0x4000}, /* odd 0x3fff + carry into the exponent */
		{0x3f800000, 0x3f80}, /* exact */
		{0x40490fdb, 0x4049}, /* pi: remainder 0x0fdb < half */
	};
	check_f2b(v, sizeof(v) / sizeof(v[0]));
}

EP_TEST(bf16_nan_is_canonical)
{
	static const struct f2b v[] = {
		{0x7fc00000, 0x7fff}, /* quiet */
		{0xffc00000, 0x7fff}, /* negative quiet: sign dropped */
		{0x7fc12345, 0x7fff}, /* payload dropped */
		{0x7f800001, 0x7fff}, /* signalling; plain rounding would give inf */
		{0xff800001, 0x7fff},
		{0x7fbfffff, 0x7fff}, /* signalling, largest payload */
		{0x7fffffff, 0x7fff},
		{0xffffffff, 0x7fff}, /* rounding would carry out of 32 bits */
	};
	check_f2b(v, sizeof(v) / sizeof(v[0]));
	EP_ASSERT_UINT_EQ(ep_f32_to_bf16(NAN), 0x7fff);
	EP_ASSERT_UINT_EQ(ep_f32_to_bf16(-NAN), 0x7fff);
}

EP_TEST(bf16_inf_zero_subnormal)
{
	static const struct f2b v[] = {
		{0x7f800000, 0x7f80}, {0xff800000, 0xff80}, /* +-inf kept */
		{0x00000000, 0x0000}, {0x80000000, 0x8000}, /* +-0 kept */
		{0x00000001, 0x0000}, /* smallest subnormal: down to +0 */
		{0x80000001, 0x8000}, /* ... and to -0 */
		{0x00008000, 0x0000}, /* tie, 0x0000 even */
		{0x00018000, 0x0002}, /* tie, 0x0001 odd */
		{0x00008001, 0x0001}, /* above the tie */
		{0x80008001, 0x8001},
		{0x007fffff, 0x0080}, /* largest subnormal rounds to 2^-126 */
		{0x00400000, 0x0040}, /* exact subnormal */
	};
	check_f2b(v, sizeof(v) / sizeof(v[0]));
}

EP_TEST(bf16_overflow_rounds_to_inf)
{
	static const struct f2b v[] = {
		{0x7f7fffff, 0x7f80}, /* FLT_MAX */
		{0xff7fffff, 0xff80},
		{0x7f7f8000, 0x7f80}, /* tie above odd 0x7f7f: up to inf */
		{0x7f7f7fff, 0x7f7f}, /* below the tie: largest BF16 */
		{0x7f7f0000, 0x7f7f},
		{0xff7f7fff, 0xff7f},
	};
	check_f2b(v, sizeof(v) / sizeof(v[0]));
}

/* Independent oracle: the BF16 neighbours of f are its bit pattern
 * truncated (lo) and one BF16 ulp further from zero (hi); pick the nearer in
 * double, a tie goes to the even one. The step past the largest finite BF16
 * counts as 2^128, which is IEEE's overflow rule for round to nearest. */
static uint16_t bf16_oracle(uint32_t u)
{
	uint32_t lo = u & 0xffff0000u;
	double x = fabs((double)fb(u));
	double dlo = fabs((double)fb(lo));
	uint32_t hi_abs = (lo & 0x7fffffffu) + 0x10000u;
	double dhi = hi_abs == 0x7f800000u ? ldexp(1.0, 128)
					   : (double)fb(hi_abs);
	uint16_t l = (uint16_t)(lo >> 16);
	if (x - dlo < dhi - x)
		return l;
	if (x - dlo > dhi - x)
		return (uint16_t)(l + 1);
	return (l & 1u) ? (uint16_t)(l + 1) : l;
}

EP_TEST(bf16_matches_nearest_oracle)
{
	long checked = 0;
	for (uint64_t u = 0; u < 0x7f800000u; u += 4099) {
		uint32_t base = (uint32_t)u;
		/* the sample, the exact tie above its truncation, and the
		 * patterns either side of the tie */
		uint32_t tie = (base & 0xffff0000u) | 0x8000u;
		uint32_t c[] = {base, tie, tie - 1, tie + 1};
		for (unsigned k = 0; k < 4; k++)
			for (uint32_t s = 0; s < 2; s++) {
				uint32_t in = c[k] | (s << 31);
				uint16_t want = bf16_oracle(in);
				uint16_t got = ep_f32_to_bf16(fb(in));
				if (got != want)
					EP_FAIL("0x%08x: got 0x%04x, want 0x%04x",
						in, got, want);
				checked++;
			}
	}
	EP_ASSERT(checked > 1000000);
}

EP_TEST(bf16_rows)
{
	/* 19 values: not a multiple of any vector width. */
	static const uint32_t in[19] = {
		0x3f808000, 0x3f818000, 0x3f808001, 0x7fc00000, 0x7f800001,
		0xff800000, 0x80000000, 0x00018000, 0x7f7fffff, 0x40490fdb,
		0x3f800000, 0xbf818000, 0x00000001, 0x7f7f7fff, 0xc0000000,
		0x3fff8000, 0xffc00000, 0x00008001, 0x42fe0000,
	};
	static const uint16_t want[19] = {
		0x3f80, 0x3f82, 0x3f81, 0x7fff, 0x7fff, 0xff80, 0x8000,
		0x0002, 0x7f80, 0x4049, 0x3f80, 0xbf82, 0x0000, 0x7f7f,
		0xc000, 0x4000, 0x7fff, 0x0001, 0x42fe,
	};
	float f[20];
	uint16_t b[20];
	for (int i = 0; i < 19; i++)
		f[i] = fb(in[i]);
	b[19] = 0xabcd;
	ep_f32_row_to_bf16(f, b, 19);
	for (int i = 0; i < 19; i++)
		EP_ASSERT_UINT_EQ(b[i], want[i]);
	EP_ASSERT_UINT_EQ(b[19], 0xabcd); /* nothing past n written */

	float back[20];
	back[19] = 42.0f;
	ep_bf16_row_to_f32(want, back, 19);
	for (int i = 0; i < 19; i++)
		EP_ASSERT_FLOAT_BITS_EQ(back[i], fb((uint32_t)want[i] << 16));
	EP_ASSERT_FLOAT_BITS_EQ(back[19], 42.0f);
}

/* --- FP8 E4M3 ---------------------------------------------------------- */

struct f2q {
	float in;
	uint8_t out;
};

static void check_f2q(const struct f2q *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t got = ep_f32_to_e4m3(v[i].in);
		if (got != v[i].out)
			EP_FAIL("ep_f32_to_e4m3(%a) = 0x%02x, want 0x%02x",
				(double)v[i].in, got, v[i].out);
	}
}

EP_TEST(e4m3_exact_encodings)
{
	/* code = s eeee mmm, value (1 + m/8) 2^(e-7), or m 2^-9 when e = 0 */
	static const struct f2q v[] = {
		{1.0f, 0x38},            /* e = 7, m = 0 */
		{-1.0f, 0xb8},
		{448.0f, 0x7e},          /* 1.75 * 2^8: e = 15, m = 6 */
		{-448.0f, 0xfe},
		{0x1p-9f, 0x01},         /* smallest subnormal */
		{-0x1p-9f, 0x81},
		{7 * 0x1p-9f, 0x07},     /* largest subnormal */
		{0x1p-6f, 0x08},         /* smallest normal: e = 1, m = 0 */
		{0x1.ep-6f, 0x0f},       /* 1.875 * 2^-6 */
		{240.0f, 0x77},          /* 1.875 * 2^7: e = 14, m = 7 */
		{256.0f, 0x78},          /* 2^8 */
		{1.5f, 0x3c},
		{0.1f, 0x1d},            /* 1.6 * 2^-4: m = 4.8 -> 5, e = 3 */
		{0.0f, 0x00},
		{-0.0f, 0x80},
	};
	check_f2q(v, sizeof(v) / sizeof(v[0]));
}

EP_TEST(e4m3_rounds_ties_to_even)
{
	static const struct f2q v[] = {
		{1.0625f, 0x38},   /* between 1.0 (m 0) and 1.125 (m 1): even 0 */
		{1.1875f, 0x3a},   /* between 1.125 (m 1) and 1.25 (m 2): even 2 */
		{-1.0625f, 0xb8},
		{-1.1875f, 0xba},
		{15.5f, 0x58},     /* 1.9375 * 2^3: m 7 odd, carry to 16 = 2^4 */
		{400.0f, 0x7c},    /* between 384 (m 4) and 416 (m 5): 384 */
		{432.0f, 0x7e},    /* between 416 (m 5) and 448 (m 6): 448 */
		{0x1.1p0f, 0x38},  /* 1.0625 again, as hex */
		{1.25f, 0x3a},
	};
	check_f2q(v, sizeof(v) / sizeof(v[0]));
	/* one float ulp either side of a tie decides it */
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(1.0625f, 2.0f)), 0x39);
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(1.1875f, 0.0f)), 0x39);
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(1.0625f, 0.0f)), 0x38);
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(400.0f, 500.0f)), 0x7d);
}

EP_TEST(e4m3_subnormals_and_underflow)
{
	static const struct f2q v[] = {
		{1.5f * 0x1p-9f, 0x02},  /* tie 1|2: even 2 */
		{2.5f * 0x1p-9f, 0x02},  /* tie 2|3: even 2 */
		{3.5f * 0x1p-9f, 0x04},  /* tie 3|4: even 4 */
		{6.5f * 0x1p-9f, 0x06},  /* tie 6|7: even 6 */
		{7.5f * 0x1p-9f, 0x08},  /* tie 7|8: 8 = 2^-6, the smallest normal */
		{1.25f * 0x1p-9f, 0x01},
		{1.75f * 0x1p-9f, 0x02},
		{-2.5f * 0x1p-9f, 0x82},
		{0x1p-10f, 0x00},        /* tie 0|1: even 0 */
		{-0x1p-10f, 0x80},       /* keeps its sign */
		{0x1p-11f, 0x00},
		{0x1p-149f, 0x00},       /* float subnormals underflow */
		{-0x1p-149f, 0x80},
	};
	check_f2q(v, sizeof(v) / sizeof(v[0]));
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(0x1p-10f, 1.0f)), 0x01);
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(-nextafterf(0x1p-10f, 1.0f)), 0x81);
	/* just under 2^-6 rounds up to the smallest normal */
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(0x1p-6f, 0.0f)), 0x08);
}

EP_TEST(e4m3_saturates)
{
	const float inf = fb(0x7f800000);
	static const struct f2q v[] = {
		{449.0f, 0x7e},  {460.0f, 0x7e}, {464.0f, 0x7e}, /* 464: tie */
		{465.0f, 0x7e},  {480.0f, 0x7e}, {500.0f, 0x7e},
		{1e9f, 0x7e},    {FLT_MAX, 0x7e},
		{-500.0f, 0xfe}, {-1e9f, 0xfe},  {-FLT_MAX, 0xfe},
	};
	check_f2q(v, sizeof(v) / sizeof(v[0]));
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(inf), 0x7e);
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(-inf), 0xfe);
	EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(nextafterf(448.0f, 0.0f)), 0x7e);
}

EP_TEST(e4m3_nan)
{
	static const uint32_t nans[] = {0x7fc00000, 0xffc00000, 0x7f800001,
					0xff800001, 0x7fffffff, 0xffffffff};
	for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++)
		EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(fb(nans[i])), 0x7f);
}

/* value of an E4M3 code from the format's definition, in double */
static double e4m3_formula(unsigned code)
{
	unsigned e = (code >> 3) & 15, m = code & 7;
	double v = e ? ldexp(1.0 + m / 8.0, (int)e - 7) : ldexp(m, -9);
	return (code & 0x80) ? -v : v;
}

EP_TEST(e4m3_decodes_exactly)
{
	for (unsigned c = 0; c < 256; c++) {
		float got = ep_e4m3_to_f32((uint8_t)c);
		if ((c & 0x7f) == 0x7f) {
			EP_ASSERT_FLOAT_BITS_EQ(got, fb(0x7fffffff));
			continue;
		}
		if ((double)got != e4m3_formula(c))
			EP_FAIL("code 0x%02x: %a, want %a", c, (double)got,
				e4m3_formula(c));
		EP_ASSERT_INT_EQ(signbit(got) != 0, (c & 0x80) != 0);
	}
	EP_ASSERT_FLOAT_BITS_EQ(ep_e4m3_to_f32(0x7e), 448.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_e4m3_to_f32(0x01), 0x1p-9f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_e4m3_to_f32(0x08), 0x1p-6f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_e4m3_to_f32(0x80), -0.0f);
	/* positive codes are ordered like their values */
	for (unsigned c = 1; c <= 0x7e; c++)
		EP_ASSERT(ep_e4m3_to_f32((uint8_t)c) >
			  ep_e4m3_to_f32((uint8_t)(c - 1)));
}

EP_TEST(e4m3_roundtrips_all_254_codes)
{
	int n = 0;
	for (unsigned c = 0; c < 256; c++) {
		if ((c & 0x7f) == 0x7f)
			continue;
		EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(ep_e4m3_to_f32((uint8_t)c)), c);
		n++;
	}
	EP_ASSERT_INT_EQ(n, 254);
}

/* Independent oracle for |f| < 448: the nearest code by search over the
 * formula's values, a tie going to the even code (whose mantissa is even). */
static uint8_t e4m3_oracle_abs(double x)
{
	unsigned lo = 0, hi = 0x7e;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;
		if (e4m3_formula(mid) <= x)
			lo = mid;
		else
			hi = mid;
	}
	double dl = x - e4m3_formula(lo), dh = e4m3_formula(hi) - x;
	if (dl < dh)
		return (uint8_t)lo;
	if (dh < dl)
		return (uint8_t)hi;
	return (uint8_t)((lo & 1) ? hi : lo);
}

EP_TEST(e4m3_matches_nearest_oracle)
{
	long checked = 0;
	/* every 257th float up to 448, and every midpoint between codes with
	 * its float neighbours */
	for (uint32_t u = 0; u < 0x43e00000u; u += 257) {
		uint8_t want = e4m3_oracle_abs(fb(u));
		EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(fb(u)), want);
		EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(fb(u | 0x80000000u)),
				  want | 0x80);
		checked++;
	}
	for (unsigned c = 0; c < 0x7e; c++) {
		float mid = (float)((e4m3_formula(c) + e4m3_formula(c + 1)) / 2);
		float around[3] = {nextafterf(mid, 0.0f), mid,
				   nextafterf(mid, 1e9f)};
		for (int k = 0; k < 3; k++)
			EP_ASSERT_UINT_EQ(ep_f32_to_e4m3(around[k]),
					  e4m3_oracle_abs(around[k]));
	}
	EP_ASSERT(checked > 1000000);
}

/* --- DeepEP FP8 cast --------------------------------------------------- */

/* 1/448 = 2^-9 * (1 + 1/7); 1/7 = 0.001001001..b, whose first 23 bits
 * 0x124924 are followed by 1001..., so it rounds up to 0x124925. Both
 * DeepEP's constant and the compiler's 1.0f/448.0f have these bits. */
EP_TEST(fp8_amax_inv_constant)
{
	EP_ASSERT_UINT_EQ(EP_FP8_AMAX_INV_BITS, 0x3b124925);
	EP_ASSERT_UINT_EQ(ep_f32_bits(1.0f / 448.0f), 0x3b124925);
	EP_ASSERT_UINT_EQ(ep_f32_bits(EP_FP8_MARGIN), 0x38d1b717);
}

/* c = float(0x3b124925) = 9586981 * 2^-32 exactly. */

EP_TEST(fp8_scales_multiply_not_divide)
{
	float scale, scale_inv;

	/* amax 3.5: 3.5 * c = 7 * 9586981 * 2^-33 = (2^26 + 3) * 2^-33,
	 * which rounds (27 -> 24 bits, dropping 3/8) to 2^-7 = 3.5/448. */
	ep_fp8_scales(3.5f, 0, &scale, &scale_inv);
	EP_ASSERT_FLOAT_BITS_EQ(scale, 128.0f);
	EP_ASSERT_FLOAT_BITS_EQ(scale_inv, 0x1p-7f);

	/* amax 77/64 = 1.203125 (BF16 0x3f9a): 77/64/448 = 11/4096 exactly,
	 * bits 0x3b300000. The multiply: 77 * 9586981 = 738197537 (30 bits),
	 * * 2^-38; dropping 6 bits gives 11534336.52 -> 11534337 = 0xb00001,
	 * so scale_inv = 0x3b300001, one ulp above the quotient. */
	ep_fp8_scales(1.203125f, 0, &scale, &scale_inv);
	EP_ASSERT_UINT_EQ(ep_f32_bits(scale_inv), 0x3b300001);
	EP_ASSERT_UINT_EQ(ep_f32_bits(1.203125f / 448.0f), 0x3b300000);
	/* scale = 28672/77 = 1.4545.. * 2^8, mantissa 5/11 * 2^23 =
	 * 3813003.64 -> 3813004 = 0x3a2e8c */
	EP_ASSERT_UINT_EQ(ep_f32_bits(scale), 0x43ba2e8c);

	/* amax 9/8: 9 * 9586981 = 86282829 (27 bits) * 2^-35; /8 =
	 * 10785353.625 -> 10785354 = 0xa4924a: 0x3b24924a, while 9/8/448 =
	 * 2^-9 * 9/7 has mantissa 2/7 * 2^23 = 2396745.14 -> 0x249249. */
	ep_fp8_scales(1.125f, 0, &scale, &scale_inv);
	EP_ASSERT_UINT_EQ(ep_f32_bits(scale_inv), 0x3b24924a);
	EP_ASSERT_UINT_EQ(ep_f32_bits(1.125f / 448.0f), 0x3b249249);
}

EP_TEST(fp8_scales_round_scale)
{
	float scale, scale_inv;

	/* 3.5 * c = 2^-7 exactly (above): mantissa 0, e = -7 */
	ep_fp8_scales(3.5f, 1, &scale, &scale_inv);
	EP_ASSERT_FLOAT_BITS_EQ(scale, 128.0f);
	EP_ASSERT_FLOAT_BITS_EQ(scale_inv, 0x1p-7f);
	/* 4 * c = 9586981 * 2^-30 = 1.14 * 2^-7: mantissa != 0, e = -6 */
	ep_fp8_scales(4.0f, 1, &scale, &scale_inv);
	EP_ASSERT_FLOAT_BITS_EQ(scale, 64.0f);
	EP_ASSERT_FLOAT_BITS_EQ(scale_inv, 0x1p-6f);
	/* 9/8 * c = 0x3b24924a = 1.29 * 2^-9: e = -8 */
	ep_fp8_scales(1.125f, 1, &scale, &scale_inv);
	EP_ASSERT_FLOAT_BITS_EQ(scale, 256.0f);
	EP_ASSERT_FLOAT_BITS_EQ(scale_inv, 0x1p-8f);
	/* 448 * c = 7 * 9586981 * 2^-26 = (2^26 + 3) * 2^-26, which rounds
	 * to 1.0f: mantissa 0, e = 0, both scales 1. */
	ep_fp8_scales(448.0f, 1, &scale, &scale_inv);
	EP_ASSERT_FLOAT_BITS_EQ(scale, 1.0f);
	EP_ASSERT_FLOAT_BITS_EQ(scale_inv, 1.0f);
}

/* Row helpers: hidden BF16 zeros, then set elements. */
static void zero_row(uint16_t *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = 0;
}

EP_TEST(fp8_cast_row_known_amax)
{
	uint16_t x[256];
	uint8_t q[256];
	float si[2];

	zero_row(x, 256);
	/* block 0: amax 3.5, scale 128 exactly */
	x[0] = 0x4060; /* 3.5 -> 448 = 0x7e */
	x[1] = 0xc060; /* -3.5 -> 0xfe */
	x[2] = 0x3f80; /* 1 -> 128 = 2^7: e 14 -> 0x70 */
	x[3] = 0x3c00; /* 2^-7 -> 1.0 = 0x38 */
	x[4] = 0x3780; /* 2^-16 -> 2^-9 = 0x01 */
	x[5] = 0x3700; /* 2^-17 -> 2^-10: tie 0|1 -> 0x00 */
	x[6] = 0x37c0; /* 1.5 * 2^-16 -> 1.5 * 2^-9: tie 1|2 -> 0x02 */
	x[7] = 0x8000; /* -0 -> -0 = 0x80 */
	x[8] = 0x3f88; /* 1.0625 -> 136 = 1.0625 * 2^7: tie -> 128 = 0x70 */
	/* block 1: amax 1.203125 (0x3f9a): scale 0x43ba2e8c, and
	 * amax * scale = 448.0000134 -> rounds to 448 -> 0x7e */
	x[128] = 0x3f9a;
	x[129] = 0xbf9a;
	x[130] = 0x3f00; /* 0.5 * scale = 186.18: between 176 and 192 ->
			  * 192 = 1.5 * 2^7 -> 0x74 */
	memset(q, 0xee, sizeof(q));
	ep_fp8_cast_row(x, 256, 0, q, si);

	static const uint8_t want0[9] = {0x7e, 0xfe, 0x70, 0x38, 0x01,
					 0x00, 0x02, 0x80, 0x70};
	for (int i = 0; i < 9; i++)
		EP_ASSERT_UINT_EQ(q[i], want0[i]);
	for (int i = 9; i < 128; i++)
		EP_ASSERT_UINT_EQ(q[i], 0x00);
	EP_ASSERT_UINT_EQ(q[128], 0x7e);
	EP_ASSERT_UINT_EQ(q[129], 0xfe);
	EP_ASSERT_UINT_EQ(q[130], 0x74);
	for (int i = 131; i < 256; i++)
		EP_ASSERT_UINT_EQ(q[i], 0x00);
	EP_ASSERT_UINT_EQ(ep_f32_bits(si[0]), 0x3c000000); /* 2^-7 */
	EP_ASSERT_UINT_EQ(ep_f32_bits(si[1]), 0x3b300001); /* not ...000 */
}

EP_TEST(fp8_cast_row_ignores_nan_in_amax)
{
	uint16_t x[128];
	uint8_t q[128];
	float si[1];

	zero_row(x, 128);
	x[0] = 0x7fc0; /* NaN */
	x[1] = 0x4000; /* 2 -> amax: scale 224, 2 * 224 = 448 -> 0x7e */
	x[2] = 0xbf80; /* -1 -> -224 = -1.75 * 2^7 -> 0xf6 */
	x[3] = 0xffc1; /* negative NaN */
	x[4] = 0x7f81; /* signalling NaN */
	ep_fp8_cast_row(x, 128, 0, q, si);
	EP_ASSERT_UINT_EQ(q[0], 0x7f);
	EP_ASSERT_UINT_EQ(q[1], 0x7e);
	EP_ASSERT_UINT_EQ(q[2], 0xf6);
	EP_ASSERT_UINT_EQ(q[3], 0x7f);
	EP_ASSERT_UINT_EQ(q[4], 0x7f);
	/* 2 * c: the constant's bits with the exponent one higher */
	EP_ASSERT_UINT_EQ(ep_f32_bits(si[0]), 0x3b924925);
}

EP_TEST(fp8_cast_row_zero_block_uses_margin)
{
	uint16_t x[128];
	uint8_t q[128];
	float si[1];

	zero_row(x, 128);
	x[5] = 0x8000;
	ep_fp8_cast_row(x, 128, 0, q, si);
	for (int i = 0; i < 128; i++)
		EP_ASSERT_UINT_EQ(q[i], i == 5 ? 0x80 : 0x00);
	/* amax = 1e-4f = 0x38d1b717 = 13743895 * 2^-37; times
	 * c = 9586981 * 2^-32 is 131762460230995 * 2^-69 (47 bits): the top
	 * 24 bits 0xefacad, the next bit 0, so it rounds down:
	 * 1.87.. * 2^-23 = 0x346facad (= 2.23e-7, i.e. 1e-4/448). */
	EP_ASSERT_UINT_EQ(ep_f32_bits(si[0]), 0x346facad);

	/* round_scale: 2^-23 <= 2.23e-7 < 2^-22, mantissa != 0 -> e = -22 */
	ep_fp8_cast_row(x, 128, 1, q, si);
	EP_ASSERT_UINT_EQ(ep_f32_bits(si[0]), 0x34800000);
	EP_ASSERT_UINT_EQ(ep_ue8m0_from_scale(si[0]), 105);
	EP_ASSERT_UINT_EQ(q[0], 0x00);
	EP_ASSERT_UINT_EQ(q[5], 0x80);
}

EP_TEST(fp8_cast_row_round_scale_and_ue8m0_pack)
{
	uint16_t x[512];
	uint8_t q[512];
	float si[4];
	uint32_t packed[2] = {0, 0xdeadbeef};

	zero_row(x, 512);
	x[0] = 0x4060;   /* block 0 amax 3.5: scale_inv 2^-7; 3.5*128 = 448 */
	x[128] = 0x4080; /* block 1 amax 4: 2^-6; 4 * 64 = 256 = 2^8 -> 0x78 */
	x[129] = 0xc040; /* -3 * 64 = -192 = -1.5 * 2^7 -> 0xf4 */
	x[256] = 0x3f90; /* block 2 amax 1.125: 2^-8; 1.125 * 256 = 288 =
			  * 1.125 * 2^8 -> e 15, m 1 -> 0x79 (not 448: the
			  * power-of-two scale leaves headroom) */
	/* block 3 all zero: margin -> 2^-22 */
	ep_fp8_cast_row(x, 512, 1, q, si);

	EP_ASSERT_UINT_EQ(q[0], 0x7e);
	EP_ASSERT_UINT_EQ(q[128], 0x78);
	EP_ASSERT_UINT_EQ(q[129], 0xf4);
	EP_ASSERT_UINT_EQ(q[256], 0x79);
	EP_ASSERT_FLOAT_BITS_EQ(si[0], 0x1p-7f);
	EP_ASSERT_FLOAT_BITS_EQ(si[1], 0x1p-6f);
	EP_ASSERT_FLOAT_BITS_EQ(si[2], 0x1p-8f);
	EP_ASSERT_FLOAT_BITS_EQ(si[3], 0x1p-22f);
	for (int b = 0; b < 4; b++)
		EP_ASSERT_UINT_EQ(ep_f32_bits(si[b]) & 0x7fffff, 0);

	/* biased exponents 120, 121, 119, 105 = 0x78 0x79 0x77 0x69, block 0
	 * in the low byte */
	ep_ue8m0_pack(si, 4, packed);
	EP_ASSERT_UINT_EQ(packed[0], 0x69777978);
	EP_ASSERT_UINT_EQ(packed[1], 0xdeadbeef);
}

EP_TEST(fp8_cast_row_infinite_input)
{
	/* Not a case DeepEP's tests reach, pinned so it cannot drift: an inf
	 * makes amax inf, scale 448/inf = 0, scale_inv inf; inf * 0 is NaN. */
	uint16_t x[128];
	uint8_t q[128];
	float si[1];

	zero_row(x, 128);
	x[0] = 0x7f80;
	x[1] = 0x3f80;
	ep_fp8_cast_row(x, 128, 0, q, si);
	EP_ASSERT_UINT_EQ(q[0], 0x7f);
	EP_ASSERT_UINT_EQ(q[1], 0x00);
	EP_ASSERT_FLOAT_BITS_EQ(si[0], fb(0x7f800000));
	/* round_scale: inf * c = inf, e = 255 - 127 + 0 = 128, and
	 * fast_pow2's (e + 127) << 23 gives scale = bits 0xff800000 (-inf)
	 * and scale_inv = 0x7f800000 (+inf). So inf and 1 both become -inf
	 * -> -448 = 0xfe, and 0 * -inf = NaN -> 0x7f. */
	ep_fp8_cast_row(x, 128, 1, q, si);
	EP_ASSERT_FLOAT_BITS_EQ(si[0], fb(0x7f800000));
	EP_ASSERT_UINT_EQ(q[0], 0xfe);
	EP_ASSERT_UINT_EQ(q[1], 0xfe);
	EP_ASSERT_UINT_EQ(q[2], 0x7f);
}

/* --- UE8M0 ------------------------------------------------------------- */

EP_TEST(ue8m0_byte_and_value)
{
	EP_ASSERT_UINT_EQ(ep_ue8m0_from_scale(1.0f), 127);
	EP_ASSERT_UINT_EQ(ep_ue8m0_from_scale(2.0f), 128);
	EP_ASSERT_UINT_EQ(ep_ue8m0_from_scale(0x1p-7f), 120);
	EP_ASSERT_UINT_EQ(ep_ue8m0_from_scale(0x1p-126f), 1);
	EP_ASSERT_UINT_EQ(ep_ue8m0_from_scale(0x1p127f), 254);
	EP_ASSERT_FLOAT_BITS_EQ(ep_ue8m0_to_f32(127), 1.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_ue8m0_to_f32(120), 0x1p-7f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_ue8m0_to_f32(128), 2.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_ue8m0_to_f32(0), 0.0f);
	EP_ASSERT_FLOAT_BITS_EQ(ep_ue8m0_to_f32(255), fb(0x7f800000));
}

EP_TEST(ue8m0_pack_order)
{
	/* 2^-1 .. 2^-8: bytes 126 .. 119 = 0x7e .. 0x77 */
	float si[8];
	uint32_t packed[3] = {0, 0, 0x12345678};
	for (int b = 0; b < 8; b++)
		si[b] = ldexpf(1.0f, -(b + 1));
	ep_ue8m0_pack(si, 8, packed);
	EP_ASSERT_UINT_EQ(packed[0], 0x7b7c7d7e); /* byte k = block k */
	EP_ASSERT_UINT_EQ(packed[1], 0x7778797a); /* byte k = block 4 + k */
	EP_ASSERT_UINT_EQ(packed[2], 0x12345678);
	uint8_t bytes[4];
	memcpy(bytes, &packed[0], 4); /* little endian in memory too */
	EP_ASSERT_UINT_EQ(bytes[0], 0x7e);
	EP_ASSERT_UINT_EQ(bytes[3], 0x7b);
}

/* --- FP8 dequantisation ------------------------------------------------ */

EP_TEST(fp8_dequant_row)
{
	uint8_t q[256];
	uint16_t out[256];
	const float si[2] = {0x1p-7f, fb(0x3b300001)};

	memset(q, 0, sizeof(q));
	q[0] = 0x7e; /* 448 * 2^-7 = 3.5 -> 0x4060 */
	q[1] = 0xfe; /* -3.5 -> 0xc060 */
	q[2] = 0x38; /* 2^-7 -> exponent 120: 0x3c00 */
	q[3] = 0x01; /* 2^-9 * 2^-7 = 2^-16 -> exponent 111: 0x3780 */
	q[4] = 0x80; /* -0 */
	q[5] = 0x7f; /* NaN -> canonical BF16 NaN */
	/* 448 * 0x3b300001: 7 * 11534337 = 80740359 (27 bits) * 2^-26; /8 =
	 * 10092544.875 -> 10092545 = 0x9a0001 -> 0x3f9a0001 -> BF16 0x3f9a:
	 * the 1.203125 it was quantised from */
	q[128] = 0x7e;
	q[129] = 0x74; /* 192: see the last assert */
	ep_fp8_dequant_row(q, si, 256, out);
	EP_ASSERT_UINT_EQ(out[0], 0x4060);
	EP_ASSERT_UINT_EQ(out[1], 0xc060);
	EP_ASSERT_UINT_EQ(out[2], 0x3c00);
	EP_ASSERT_UINT_EQ(out[3], 0x3780);
	EP_ASSERT_UINT_EQ(out[4], 0x8000);
	EP_ASSERT_UINT_EQ(out[5], 0x7fff);
	EP_ASSERT_UINT_EQ(out[6], 0x0000);
	EP_ASSERT_UINT_EQ(out[127], 0x0000);
	EP_ASSERT_UINT_EQ(out[128], 0x3f9a);
	/* 192 = 3 * 2^6: 3 * 11534337 = 34603011 (26 bits) * 2^-26; /4 =
	 * 8650752.75 -> 8650753 = 0x840001 -> 0x3f040001 -> BF16 0x3f04
	 * (0.515625; the 0.5 it came from is off by the FP8 step) */
	EP_ASSERT_UINT_EQ(out[129], 0x3f04);
}

/* --- INT8 -------------------------------------------------------------- */

EP_TEST(int8_rint_ties_with_unit_scale)
{
	/* amax 127: factor 127/127 = 1, scale_inv 1 */
	static const uint16_t x[9] = {0x42fe, 0x4020, 0x4060, 0xc020, 0x3fc0,
				      0x3f00, 0xbf00, 0x0000, 0xc2fe};
	/*            127    2.5   3.5   -2.5  1.5  0.5 -0.5  0  -127 */
	static const int8_t want[9] = {127, 2, 4, -2, 2, 0, 0, 0, -127};
	int8_t q[9];
	float si = ep_int8_quant_row(x, 9, q);
	EP_ASSERT_FLOAT_BITS_EQ(si, 1.0f);
	for (int i = 0; i < 9; i++)
		EP_ASSERT_INT_EQ(q[i], want[i]);
}

EP_TEST(int8_quant_dequant_half_scale)
{
	/* amax 254 (0x437e): factor 0.5 exactly, scale_inv 2 */
	static const uint16_t x[5] = {0x437e, 0x40a0, 0x40e0, 0xc0a0, 0xc37e};
	/*            254    5 -> 2.5   7 -> 3.5   -5   -254 */
	static const int8_t want[5] = {127, 2, 4, -2, -127};
	/* dequant: 254, 4, 8, -4, -254 */
	static const uint16_t back[5] = {0x437e, 0x4080, 0x4100, 0xc080,
					 0xc37e};
	int8_t q[5];
	uint16_t out[5];
	float si = ep_int8_quant_row(x, 5, q);
	EP_ASSERT_FLOAT_BITS_EQ(si, 2.0f);
	for (int i = 0; i < 5; i++)
		EP_ASSERT_INT_EQ(q[i], want[i]);
	ep_int8_dequant_row(q, si, 5, out);
	for (int i = 0; i < 5; i++)
		EP_ASSERT_UINT_EQ(out[i], back[i]);
}

EP_TEST(int8_inexact_scale)
{
	/* amax 1: factor 127 exactly; scale_inv = RN(1/127): 1/127 =
	 * 2^-7 * (1 + 1/127), 1/127 = 0.0000001 repeated in binary, so the
	 * 23-bit mantissa is bits 7, 14, 21 = 0x010204 with a remainder
	 * below half: 0x3c010204. */
	static const uint16_t x[4] = {0x3f80, 0x3f00, 0xbf00, 0x3c40};
	/*             1    0.5 -> 63.5 -> 64 (even)   3/256 -> 1.49 -> 1 */
	static const int8_t want[4] = {127, 64, -64, 1};
	int8_t q[4];
	uint16_t out[4];
	float si = ep_int8_quant_row(x, 4, q);
	EP_ASSERT_UINT_EQ(ep_f32_bits(si), 0x3c010204);
	for (int i = 0; i < 4; i++)
		EP_ASSERT_INT_EQ(q[i], want[i]);
	ep_int8_dequant_row(q, si, 4, out);
	/* 127 * si = 127 * 8454660 * 2^-30 = (2^30 - 4) * 2^-30 -> 1.0f;
	 * 64 * si = 0x3f010204 -> 0x3f01; si itself -> 0x3c01 */
	EP_ASSERT_UINT_EQ(out[0], 0x3f80);
	EP_ASSERT_UINT_EQ(out[1], 0x3f01);
	EP_ASSERT_UINT_EQ(out[2], 0xbf01);
	EP_ASSERT_UINT_EQ(out[3], 0x3c01);
}

EP_TEST(int8_dequant_long_row)
{
	/* 20 codes -9..10 (vector chunks plus a tail) times 0.25: every
	 * product k/4 is exact and has at most 5 significant bits, so the
	 * BF16 is just the top half of the float k/4. */
	int8_t q[20];
	uint16_t out[21];
	out[20] = 0x5555;
	for (int i = 0; i < 20; i++)
		q[i] = (int8_t)(i - 9);
	ep_int8_dequant_row(q, 0.25f, 20, out);
	for (int i = 0; i < 20; i++)
		EP_ASSERT_UINT_EQ(out[i], ep_f32_bits((float)(i - 9) / 4) >> 16);
	EP_ASSERT_UINT_EQ(out[0], 0xc010);  /* -2.25 */
	EP_ASSERT_UINT_EQ(out[9], 0x0000);  /* +0, not -0 */
	EP_ASSERT_UINT_EQ(out[19], 0x4020); /* 2.5 */
	EP_ASSERT_UINT_EQ(out[20], 0x5555);
}

EP_TEST(int8_scale_inv_is_a_divide)
{
	/* amax 9/8 (0x3f90): 9/8/127 = 2^-7 * (1 + 17/127), mantissa
	 * 17/127 * 2^23 = 1122884.54 -> 0x112245: 0x3c112245. Multiplying by
	 * RN(1/127) = 8454660 * 2^-30 instead gives 76091940 * 2^-33, a tie
	 * (9511492.5) that goes down to 0x3c112244. */
	static const uint16_t x[2] = {0x3f90, 0xbf90};
	int8_t q[2];
	float si = ep_int8_quant_row(x, 2, q);
	EP_ASSERT_UINT_EQ(ep_f32_bits(si), 0x3c112245);
	EP_ASSERT_INT_EQ(q[0], 127);
	EP_ASSERT_INT_EQ(q[1], -127);
}

EP_TEST(int8_clamp_boundary)
{
	/* amax 75/64 (0x3f96): factor RN(8128/75 = 108.3733) = 0x42d8bf26
	 * (mantissa 0.69333 * 2^23 = 5816101.55 -> 5816102); amax * factor =
	 * 75 * 14204710 * 2^-23 = 127 + 34 * 2^-23, which rounds to the float
	 * 127 + 2^-17 > 127. rintf still gives 127, so the code stays 127. */
	static const uint16_t x[3] = {0x3f96, 0xbf96, 0x3f16};
	int8_t q[3];
	ep_int8_quant_row(x, 3, q);
	EP_ASSERT_UINT_EQ(ep_f32_bits(127.0f / 1.171875f), 0x42d8bf26);
	EP_ASSERT_INT_EQ(q[0], 127);
	EP_ASSERT_INT_EQ(q[1], -127);
	/* 75/128 * factor = 63.5 + 34 * 2^-24 -> float 63.5 + 2^-18 -> 64 */
	EP_ASSERT_INT_EQ(q[2], 64);
}

EP_TEST(int8_margin_nan_and_inf)
{
	uint16_t x[4] = {0, 0x8000, 0, 0};
	int8_t q[4];
	/* all zero: amax = 1e-4f, scale_inv = RN(0x38d1b717 / 127) =
	 * 0x35535dd3 (7.874e-7) */
	float si = ep_int8_quant_row(x, 4, q);
	EP_ASSERT_UINT_EQ(ep_f32_bits(si), 0x35535dd3);
	for (int i = 0; i < 4; i++)
		EP_ASSERT_INT_EQ(q[i], 0);

	/* NaN ignored by amax (= 1), quantised to 0 */
	x[0] = 0x7fc0;
	x[1] = 0x3f80;
	x[2] = 0xffc0;
	x[3] = 0xbf00;
	si = ep_int8_quant_row(x, 4, q);
	EP_ASSERT_UINT_EQ(ep_f32_bits(si), 0x3c010204);
	EP_ASSERT_INT_EQ(q[0], 0);
	EP_ASSERT_INT_EQ(q[1], 127);
	EP_ASSERT_INT_EQ(q[2], 0);
	EP_ASSERT_INT_EQ(q[3], -64);

	/* inf: amax inf, factor 0, inf * 0 = NaN -> 0, scale_inv inf */
	x[0] = 0x7f80;
	x[1] = 0x3f80;
	x[2] = 0xc000;
	x[3] = 0xff80;
	si = ep_int8_quant_row(x, 4, q);
	EP_ASSERT_FLOAT_BITS_EQ(si, fb(0x7f800000));
	for (int i = 0; i < 4; i++)
		EP_ASSERT_INT_EQ(q[i], 0);
}

EP_TEST_MAIN()
