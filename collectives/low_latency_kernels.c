/* low_latency_kernels.c - the sender's FP8 cast and combine's reduction, vectorised and bit-exact. */
#include "collectives/low_latency_kernels.h"

#include <math.h>
#include <stdint.h>

#include "collectives/numeric.h"

/* Combine's reduction of one token: out[c] = bf16(acc), acc = fmaf(y_j[c],
 * w_j, acc) over its n rows in slot order from +0.0f. Columns go in chunks
 * whose accumulators stay in registers while all n rows stream by. The
 * FMA clone is bit-identical (an FMA instruction is exactly fmaf); without
 * one, libm's fmaf. */
typedef void (*reduce_fn)(const uint16_t *const *ys, const float *ws, int n, int H,
			  uint16_t *out);

#define REDUCE_CHUNK 32
#define REDUCE_BODY                                                                    \
	int c = 0;                                                                     \
	for (; c + REDUCE_CHUNK <= H; c += REDUCE_CHUNK) {                             \
		float acc[REDUCE_CHUNK] = {0};                                         \
		for (int j = 0; j < n; j++)                                            \
			for (int k = 0; k < REDUCE_CHUNK; k++)                         \
				acc[k] = fmaf(ep_bf16_to_f32(ys[j][c + k]), ws[j], acc[k]); \
		for (int k = 0; k < REDUCE_CHUNK; k++)                                 \
			out[c + k] = ep_f32_to_bf16(acc[k]);                           \
	}                                                                              \
	for (; c < H; c++) {                                                           \
		float acc = 0.0f;                                                      \
		for (int j = 0; j < n; j++)                                            \
			acc = fmaf(ep_bf16_to_f32(ys[j][c]), ws[j], acc);              \
		out[c] = ep_f32_to_bf16(acc);                                          \
	}

static void reduce_plain(const uint16_t *const *ys, const float *ws, int n, int H, uint16_t *out)
{
	REDUCE_BODY
}

#if defined(__x86_64__)
EP_SIMD_AVX2_FN static void reduce_avx2(const uint16_t *const *ys, const float *ws, int n, int H, uint16_t *out)
{
	REDUCE_BODY
}

EP_SIMD_AVX512_FN static void reduce_avx512(const uint16_t *const *ys, const float *ws, int n, int H,
					    uint16_t *out)
{
	REDUCE_BODY
}
#endif

/* |x| of the largest non-NaN element of a BF16 block, as BF16 bits: for
 * non-negative floats the bit order is the numeric order, and a 16-bit
 * integer max vectorises where a float max reduction does not. */
static inline uint16_t block_amax_bits(const uint16_t *restrict x)
{
	int16_t m = 0;
	for (int i = 0; i < EP_FP8_BLOCK; i++) {
		int16_t v = (int16_t)(x[i] & 0x7fff);
		v = v > 0x7f80 ? 0 : v; /* NaN: ignored, as fmaxf does */
		m = v > m ? v : m;
	}
	return (uint16_t)m;
}

/* ep_f32_to_e4m3 without branches. |v| is first clamped to 448 (SATFINITE:
 * 448 encodes as 0x7e, infinity included; a NaN is selected last). A normal
 * result rebiases the exponent (127 -> 7) and rounds the mantissa to 3 bits,
 * ties to even, by the scalar's integer arithmetic; a subnormal one is |v|
 * rounded to a multiple of 2^-9 by one float addition of 2^14 (whose ulp is
 * 2^-9: round to nearest even, as the scalar's shift with its tie rule), its
 * code the difference of the bit patterns (8 at the top is the smallest
 * normal's code too). No product: nothing for the compiler to fuse. */
static inline uint8_t e4m3_branchless(float v)
{
	int32_t u = (int32_t)ep_f32_bits(v), a = u & 0x7fffffff, sign = (u >> 24) & 0x80;
	int32_t c = a < 0x43e00000 ? a : 0x43e00000; /* min(|v|, 448) */
	int32_t normal = (c + (0x7ffff - (120 << 23)) + ((c >> 20) & 1)) >> 20;
	int32_t sub = (int32_t)ep_f32_bits(ep_f32_from_bits((uint32_t)c) + 0x1p14f) - 0x46800000; /* - bits(2^14) */
	int32_t is_normal = -(int32_t)(c >= 0x3c800000); /* 2^-6, the smallest normal */
	int32_t is_nan = -(int32_t)(a > 0x7f800000);
	int32_t code = sign | (normal & is_normal) | (sub & ~is_normal);
	return (uint8_t)((EP_E4M3_NAN & is_nan) | (code & ~is_nan));
}

/* A whole row, one clone per simd.h level (same bits): per 128-element
 * block the maximum, the scales, then the cast, all inlined into the clone
 * so that each runs at the clone's vector width. */
typedef void (*cast_row_fn)(const uint16_t *restrict x, size_t hidden, int round_scale, uint8_t *restrict q,
			    float *restrict scale_inv);

#define CAST_ROW_BODY                                                                  \
	for (size_t b = 0; b < hidden / EP_FP8_BLOCK; b++) {                           \
		const uint16_t *restrict xb = x + b * EP_FP8_BLOCK;                    \
		uint8_t *restrict qb = q + b * EP_FP8_BLOCK;                           \
		float amax = ep_bf16_to_f32(block_amax_bits(xb)), scale;               \
		amax = amax > EP_FP8_MARGIN ? amax : EP_FP8_MARGIN;                    \
		ep_fp8_scales(amax, round_scale, &scale, &scale_inv[b]);               \
		for (int i = 0; i < EP_FP8_BLOCK; i++)                                 \
			qb[i] = e4m3_branchless(ep_bf16_to_f32(xb[i]) * scale);        \
	}

static void cast_row_plain(const uint16_t *restrict x, size_t hidden, int round_scale, uint8_t *restrict q,
			   float *restrict scale_inv)
{
	CAST_ROW_BODY
}

/* The encoder alone over n floats (ep_ll_e4m3_at: the tests sweep it). */
typedef void (*e4m3_fn)(const float *restrict in, uint8_t *restrict out, size_t n);

#define E4M3_BODY                                                                      \
	for (size_t i = 0; i < n; i++)                                                 \
		out[i] = e4m3_branchless(in[i]);

static void e4m3_plain(const float *restrict in, uint8_t *restrict out, size_t n)
{
	E4M3_BODY
}

#if defined(__x86_64__)
EP_SIMD_AVX2_FN static void e4m3_avx2(const float *restrict in, uint8_t *restrict out, size_t n)
{
	E4M3_BODY
}

EP_SIMD_AVX512_FN static void e4m3_avx512(const float *restrict in, uint8_t *restrict out, size_t n)
{
	E4M3_BODY
}

EP_SIMD_AVX2_FN static void cast_row_avx2(const uint16_t *restrict x, size_t hidden, int round_scale,
					  uint8_t *restrict q, float *restrict scale_inv)
{
	CAST_ROW_BODY
}

EP_SIMD_AVX512_FN static void cast_row_avx512(const uint16_t *restrict x, size_t hidden, int round_scale,
					      uint8_t *restrict q, float *restrict scale_inv)
{
	CAST_ROW_BODY
}

static const cast_row_fn cast_at[EP_SIMD_LEVELS] = {cast_row_plain, cast_row_avx2, cast_row_avx512};
static const e4m3_fn e4m3_at[EP_SIMD_LEVELS] = {e4m3_plain, e4m3_avx2, e4m3_avx512};
static const reduce_fn reduce_at[EP_SIMD_LEVELS] = {reduce_plain, reduce_avx2, reduce_avx512};
#else
static const cast_row_fn cast_at[EP_SIMD_LEVELS] = {cast_row_plain, cast_row_plain, cast_row_plain};
static const e4m3_fn e4m3_at[EP_SIMD_LEVELS] = {e4m3_plain, e4m3_plain, e4m3_plain};
static const reduce_fn reduce_at[EP_SIMD_LEVELS] = {reduce_plain, reduce_plain, reduce_plain};
#endif

void ep_ll_fp8_cast_row_at(enum ep_simd l, const uint16_t *x, size_t hidden, int round_scale, uint8_t *q,
			   float *scale_inv)
{
	cast_at[l](x, hidden, round_scale, q, scale_inv);
}


void ep_ll_e4m3_at(enum ep_simd l, const float *in, uint8_t *out, size_t n)
{
	e4m3_at[l](in, out, n);
}

void ep_ll_fp8_cast_row(const uint16_t *x, size_t hidden, int round_scale, uint8_t *q, float *scale_inv)
{
	ep_ll_fp8_cast_row_at(ep_simd_active(), x, hidden, round_scale, q, scale_inv);
}

void ep_ll_reduce_rows_at(enum ep_simd l, const uint16_t *const *ys, const float *ws, int n, int H,
			  uint16_t *out)
{
	reduce_at[l](ys, ws, n, H, out);
}

void ep_ll_reduce_rows(const uint16_t *const *ys, const float *ws, int n, int H, uint16_t *out)
{
	reduce_at[ep_simd_active()](ys, ws, n, H, out);
}
