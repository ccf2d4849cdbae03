/* numeric.c - FP8 E4M3, DeepEP's per-block FP8 cast, UE8M0 and INT8 rows.
 *
 * The E4M3 encoder works on the float's bit pattern rather than with float
 * arithmetic, so its result does not depend on the rounding mode or on
 * what the compiler does with intermediate precision. The row functions
 * only multiply, divide and compare; none of them computes a*b+c, so there
 * is nothing for FMA contraction to change.
 */
#include "collectives/numeric.h"

#include <math.h>

/* Row loops run in fixed chunks of CHUNK elements plus a scalar tail: at
 * -O2, gcc's "very cheap" vectorizer cost model only takes loops whose trip
 * count it knows, so a plain loop over n stays scalar while the fixed inner
 * loop becomes SSE code. */
#define CHUNK 8

/* BF16 rows. */

void ep_bf16_row_to_f32(const uint16_t *restrict in, float *restrict out,
			size_t n)
{
	size_t i = 0;
	for (; i + CHUNK <= n; i += CHUNK)
		for (size_t j = 0; j < CHUNK; j++)
			out[i + j] = ep_bf16_to_f32(in[i + j]);
	for (; i < n; i++)
		out[i] = ep_bf16_to_f32(in[i]);
}

void ep_f32_row_to_bf16(const float *restrict in, uint16_t *restrict out,
			size_t n)
{
	size_t i = 0;
	for (; i + CHUNK <= n; i += CHUNK)
		for (size_t j = 0; j < CHUNK; j++)
			out[i + j] = ep_f32_to_bf16(in[i + j]);
	for (; i < n; i++)
		out[i] = ep_f32_to_bf16(in[i]);
}

/* E4M3. Float bit patterns of the range boundaries. */
#define F32_ABS_INF 0x7f800000u
#define F32_E4M3_MAX 0x43e00000u /* 448 */
#define F32_E4M3_MIN_NORMAL 0x3c800000u /* 2^-6 */
#define F32_E4M3_HALF_MIN_SUB 0x3a800000u /* 2^-10, half of 2^-9 */

uint8_t ep_f32_to_e4m3(float f)
{
	uint32_t u = ep_f32_bits(f);
	uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
	uint32_t a = u & 0x7fffffffu;

	if (a > F32_ABS_INF)
		return EP_E4M3_NAN;
	/* SATFINITE: everything from 448 up, infinity included. Values in
	 * (448, 464] would round to 448 anyway, larger ones clamp to it. */
	if (a >= F32_E4M3_MAX)
		return sign | 0x7e;
	if (a >= F32_E4M3_MIN_NORMAL) {
		/* Rebias the exponent (127 -> 7) and round the 23-bit mantissa
		 * to 3 bits, ties to even. A carry out of the mantissa moves
		 * into the exponent, which is the right result; a < 448
		 * keeps the code at or below 0x7e. */
		uint32_t r = a - ((127u - 7u) << 23);
		r += 0x7ffffu + ((r >> 20) & 1u);
		return sign | (uint8_t)(r >> 20);
	}
	/* At most half the smallest subnormal: zero (2^-10 is a tie that goes
	 * to the even code 0). Float subnormals all land here. */
	if (a <= F32_E4M3_HALF_MIN_SUB)
		return sign;
	/* Subnormal: code = |f| * 2^9 rounded to an integer, ties to even.
	 * |f| = m * 2^(exp-150) with m the 24-bit significand and exp the
	 * biased exponent (117..120 here), so code = m >> (141 - exp). A
	 * result of 8 is the smallest normal, whose code is also 8. */
	uint32_t m = (a & 0x7fffffu) | 0x800000u;
	unsigned shift = 141u - (a >> 23);
	uint32_t q = m >> shift;
	uint32_t rem = m & ((1u << shift) - 1u);
	uint32_t half = 1u << (shift - 1u);
	q += (rem > half || (rem == half && (q & 1u))) ? 1u : 0u;
	return sign | (uint8_t)q;
}

float ep_e4m3_to_f32(uint8_t q)
{
	uint32_t sign = (uint32_t)(q & 0x80u) << 24;
	uint32_t e = (q >> 3) & 0xfu;
	uint32_t m = q & 0x7u;

	if ((q & 0x7fu) == 0x7fu)
		return ep_f32_from_bits(0x7fffffffu);
	if (e == 0) {
		float v = (float)m * 0x1p-9f; /* exact */
		return sign ? -v : v;
	}
	return ep_f32_from_bits(sign | ((e + 127u - 7u) << 23) | (m << 20));
}

/* DeepEP's FP8 cast. */

/* max(acc, |v|) that ignores a NaN v, like fmaxf(acc, fabsf(v)) once acc
 * is known not to be NaN (it starts at a positive margin). Written as a
 * compare so that gcc emits an inline maxss instead of calling fmaxf. */
static inline float amax_step(float acc, float v)
{
	float a = fabsf(v);
	return a > acc ? a : acc;
}

void ep_fp8_cast_row(const uint16_t *x, size_t hidden, int round_scale,
		     uint8_t *q, float *scale_inv)
{
	for (size_t b0 = 0, blk = 0; b0 < hidden; b0 += EP_FP8_BLOCK, blk++) {
		size_t n = hidden - b0 < EP_FP8_BLOCK ? hidden - b0
						      : EP_FP8_BLOCK;
		float amax = EP_FP8_MARGIN, scale;

		for (size_t i = 0; i < n; i++)
			amax = amax_step(amax, ep_bf16_to_f32(x[b0 + i]));
		ep_fp8_scales(amax, round_scale, &scale, &scale_inv[blk]);
		for (size_t i = 0; i < n; i++)
			q[b0 + i] =
				ep_f32_to_e4m3(ep_bf16_to_f32(x[b0 + i]) * scale);
	}
}

uint8_t ep_ue8m0_from_scale(float scale_inv)
{
	return (uint8_t)(ep_f32_bits(scale_inv) >> 23);
}

float ep_ue8m0_to_f32(uint8_t e)
{
	return ep_f32_from_bits((uint32_t)e << 23);
}

void ep_ue8m0_pack(const float *scale_inv, size_t nblocks, uint32_t *packed)
{
	for (size_t p = 0; p < nblocks / 4; p++) {
		uint32_t w = 0;
		for (unsigned k = 0; k < 4; k++)
			w |= (uint32_t)ep_ue8m0_from_scale(scale_inv[4 * p + k])
			     << (8 * k);
		packed[p] = w;
	}
}

void ep_fp8_dequant_row(const uint8_t *q, const float *scale_inv,
			size_t hidden, uint16_t *out)
{
	for (size_t i = 0; i < hidden; i++)
		out[i] = ep_f32_to_bf16(ep_e4m3_to_f32(q[i]) *
					scale_inv[i / EP_FP8_BLOCK]);
}

/* INT8. */

float ep_int8_quant_row(const uint16_t *x, size_t hidden, int8_t *q)
{
	float amax = EP_INT8_MARGIN;

	for (size_t i = 0; i < hidden; i++)
		amax = amax_step(amax, ep_bf16_to_f32(x[i]));

	const float s = 127.0f / amax;
	for (size_t i = 0; i < hidden; i++) {
		float v = rintf(ep_bf16_to_f32(x[i]) * s);
		/* NaN has no int8 value, and converting it would be UB. */
		v = isnan(v) ? 0.0f : v;
		v = v > 127.0f ? 127.0f : v;
		v = v < -127.0f ? -127.0f : v;
		q[i] = (int8_t)v;
	}
	return amax / 127.0f;
}

void ep_int8_dequant_row(const int8_t *restrict q, float scale_inv,
			 size_t hidden, uint16_t *restrict out)
{
	size_t i = 0;
	for (; i + CHUNK <= hidden; i += CHUNK)
		for (size_t j = 0; j < CHUNK; j++)
			out[i + j] = ep_f32_to_bf16((float)q[i + j] * scale_inv);
	for (; i < hidden; i++)
		out[i] = ep_f32_to_bf16((float)q[i] * scale_inv);
}
