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
static uint16_t block_amax_bits(const uint16_t *restrict x)
{
	int16_t m = 0;
	for (int i = 0; i < EP_FP8_BLOCK; i++) {
		int16_t v = (int16_t)(x[i] & 0x7fff);
		v = v > 0x7f80 ? 0 : v; /* NaN: ignored, as fmaxf does */
		m = v > m ? v : m;
	}
	return (uint16_t)m;
}

/* ep_f32_to_e4m3 without branches: the same bit arithmetic for normal
 * results, |v| * 2^9 rounded to an integer by adding 2^23 (an exact
 * product, then one round-to-nearest-even sum) for subnormal ones, and
 * selects through masks for saturation and NaN. */
static inline uint8_t e4m3_branchless(float v)
{
	int32_t u = (int32_t)ep_f32_bits(v);
	int32_t a = u & 0x7fffffff, sign = (u >> 24) & 0x80;
	int32_t r = a - (120 << 23); /* rebias 127 -> 7 */
	r += 0x7ffff + ((r >> 20) & 1);
	int32_t normal = r >> 20;
	int32_t sub = (int32_t)ep_f32_bits(ep_f32_from_bits((uint32_t)a) * 512.0f + 0x1p23f) -
		      0x4b000000;
	int32_t is_normal = -(int32_t)(a >= 0x3c800000); /* 2^-6 */
	int32_t is_sat = -(int32_t)(a >= 0x43e00000);    /* 448 */
	int32_t is_nan = -(int32_t)(a > 0x7f800000);
	int32_t code = (normal & is_normal) | (sub & ~is_normal);
	code = (0x7e & is_sat) | (code & ~is_sat);
	return (uint8_t)((EP_E4M3_NAN & is_nan) | ((sign | code) & ~is_nan));
}

/* One 128-element block; one clone per simd.h level (same bits). */
typedef void (*cast_block_fn)(const uint16_t *restrict x, float scale, uint8_t *restrict q);

#define CAST_BLOCK_BODY                                                                \
	for (int i = 0; i < EP_FP8_BLOCK; i++)                                         \
		q[i] = e4m3_branchless(ep_bf16_to_f32(x[i]) * scale);

static void cast_block_plain(const uint16_t *restrict x, float scale, uint8_t *restrict q)
{
	CAST_BLOCK_BODY
}

#if defined(__x86_64__)
EP_SIMD_AVX2_FN static void cast_block_avx2(const uint16_t *restrict x, float scale, uint8_t *restrict q)
{
	CAST_BLOCK_BODY
}

EP_SIMD_AVX512_FN static void cast_block_avx512(const uint16_t *restrict x, float scale, uint8_t *restrict q)
{
	CAST_BLOCK_BODY
}

static const cast_block_fn cast_at[EP_SIMD_LEVELS] = {cast_block_plain, cast_block_avx2, cast_block_avx512};
static const reduce_fn reduce_at[EP_SIMD_LEVELS] = {reduce_plain, reduce_avx2, reduce_avx512};
#else
static const cast_block_fn cast_at[EP_SIMD_LEVELS] = {cast_block_plain, cast_block_plain, cast_block_plain};
static const reduce_fn reduce_at[EP_SIMD_LEVELS] = {reduce_plain, reduce_plain, reduce_plain};
#endif

void ep_ll_fp8_cast_row_at(enum ep_simd l, const uint16_t *x, size_t hidden, int round_scale, uint8_t *q,
			   float *scale_inv)
{
	cast_block_fn cast_block = cast_at[l];
	for (size_t b = 0; b < hidden / EP_FP8_BLOCK; b++) {
		const uint16_t *xb = x + b * EP_FP8_BLOCK;
		float amax = ep_bf16_to_f32(block_amax_bits(xb)), scale;
		amax = amax > EP_FP8_MARGIN ? amax : EP_FP8_MARGIN;
		ep_fp8_scales(amax, round_scale, &scale, &scale_inv[b]);
		cast_block(xb, scale, q + b * EP_FP8_BLOCK);
	}
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
