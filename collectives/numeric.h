/* numeric.h - bit-exact CPU versions of the number formats DeepEP uses.
 *
 * Everything here reproduces what the CUDA side computes, bit for bit, so
 * that references can be compared with memcmp: BF16 <-> FP32 as
 * static_cast<nv_bfloat16>, FP8 E4M3 as __nv_cvt_float_to_fp8(__NV_SATFINITE),
 * DeepEP's per-token, per-128-channel FP8 cast (csrc/kernels/internode_ll.cu) with
 * its UE8M0 scale packing, and our documented INT8 per-token quantisation.
 *
 * Floating-point contract: plain IEEE single precision in the default
 * rounding mode (round to nearest even); nothing here is built with
 * -ffast-math. No function evaluates a*b+c, so FMA contraction (which gcc
 * applies in gnu11 mode on targets that have FMA) cannot change a result.
 * Values are passed as raw bit patterns (uint16_t for BF16, uint8_t for
 * E4M3) so that NaN payloads and -0 survive.
 */
#ifndef EP_NUMERIC_H
#define EP_NUMERIC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Float <-> bits (memcpy, so no aliasing trouble; compiles to a move). */
static inline uint32_t ep_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline float ep_f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* BF16 <-> FP32 */

/* The NaN every conversion to BF16 produces: CUDART_NAN_BF16, what both
 * cuda_bf16.hpp's host path (__internal_float2bfloat16) and sm_80+'s
 * cvt.rn.bf16.f32 return for any NaN input, whatever its sign or payload. */
#define EP_BF16_NAN ((uint16_t)0x7fff)

/* Exact: the BF16 bits become the top half of the float. */
static inline float ep_bf16_to_f32(uint16_t b)
{
	return ep_f32_from_bits((uint32_t)b << 16);
}

/* static_cast<nv_bfloat16>(f): round to nearest, ties to even, on the bit
 * pattern. Infinities and zeros keep their sign, float subnormals round like
 * any other value, finite values past the largest BF16 (0x7f7f) by half an
 * ulp or more become infinity, and any NaN becomes EP_BF16_NAN. Branch-free
 * (one select) so row loops vectorize. */
static inline uint16_t ep_f32_to_bf16(float f)
{
	uint32_t u = ep_f32_bits(f);
	uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
	return (u & 0x7fffffffu) > 0x7f800000u ? EP_BF16_NAN
					       : (uint16_t)(rounded >> 16);
}

/* Convert n values; in and out must not overlap. */
void ep_bf16_row_to_f32(const uint16_t *restrict in, float *restrict out,
			size_t n);
void ep_f32_row_to_bf16(const float *restrict in, uint16_t *restrict out,
			size_t n);

/* FP8 E4M3 (the "fn" variant: bias 7, no infinities, NaN = 0x7f/0xff,
 * largest finite +-448 = 0x7e/0xfe, subnormals m * 2^-9) */

#define EP_E4M3_MAX 448.0f
#define EP_E4M3_NAN ((uint8_t)0x7f)

/* __nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3): round to nearest
 * even; |f| >= 448, infinities included, gives +-448 (0x7e/0xfe); |f| <=
 * 2^-10 gives a zero of f's sign (2^-10 itself is a tie that goes to the even
 * code 0); subnormal results are kept. Any NaN gives 0x7f, sign dropped,
 * as cuda_fp8.hpp's portable path does (it replaces a NaN input by
 * 0x7fffffff before converting, then returns 0x7f). On sm_90 the same call
 * is one cvt.rn.satfinite.e4m3x2.f32, which yields an E4M3 NaN; that it is
 * the positive 0x7f there too is assumed, not checked on hardware. */
uint8_t ep_f32_to_e4m3(float f);

/* Exact. 0x7f and 0xff give the float NaN 0x7fffffff, which is what
 * float(__nv_fp8_e4m3) yields (E4M3 -> half canonical NaN 0x7fff -> float). */
float ep_e4m3_to_f32(uint8_t q);

/* DeepEP's per-token, per-128-channel FP8 cast (low-latency dispatch) */

#define EP_FP8_BLOCK 128
/* Scale entries for a row of `hidden` elements. */
#define EP_FP8_NBLOCKS(hidden) (((hidden) + EP_FP8_BLOCK - 1) / EP_FP8_BLOCK)
/* kFP8Margin: the floor of every block's amax. */
#define EP_FP8_MARGIN 1e-4f
/* kFinfoAmaxInvE4M3 = 1/448.0f, as float bits. */
#define EP_FP8_AMAX_INV_BITS 0x3b124925u

/* DeepEP's calculate_fp8_scales for one block maximum amax (> 0):
 *   round_scale = 0: scale = 448.0f / amax (IEEE divide) and
 *                    scale_inv = amax * 1/448.0f (a multiply, which differs
 *                    from amax/448 by one ulp for about half of all amax);
 *   round_scale = 1: e = ceil(log2(amax * 1/448.0f)) read off the exponent
 *                    bits (biased exponent - 127, plus 1 if any mantissa bit
 *                    is set), scale = 2^-e, scale_inv = 2^e, both built as
 *                    bits (uint32_t)(127 +- e) << 23 like fast_pow2.
 * An infinite amax (an infinite input) is reproduced as the device computes
 * it: scale 0 and scale_inv inf, or with round_scale e = 128, scale = the
 * bits 0xff800000 (-inf) and scale_inv = +inf. Inline: the vector casts
 * (low_latency_kernels.c) compute it per block inside their loops. */
static inline void ep_fp8_scales(float amax, int round_scale, float *scale, float *scale_inv)
{
	const float amax_inv = ep_f32_from_bits(EP_FP8_AMAX_INV_BITS);

	if (round_scale) {
		uint32_t b = ep_f32_bits(amax * amax_inv);
		uint32_t e = ((b >> 23) & 0xffu) - 127u + ((b & 0x7fffffu) != 0);
		/* fast_pow2 in uint32_t arithmetic: wraps exactly as the
		 * device's int shift does (amax = inf gives e = 128, so
		 * scale = -inf and scale_inv = +inf). */
		*scale = ep_f32_from_bits((127u - e) << 23);
		*scale_inv = ep_f32_from_bits((127u + e) << 23);
	} else {
		*scale = EP_E4M3_MAX / amax;
		*scale_inv = amax * amax_inv;
	}
}

/* Quantise one BF16 row of `hidden` elements (DeepEP requires hidden % 128
 * == 0; a shorter last block would be treated as a block of its own). Per
 * block b: amax = max(1e-4f, max |x_i|) with NaN inputs ignored (fmaxf),
 * ep_fp8_scales(amax, round_scale), q_i = ep_f32_to_e4m3(float(x_i) * scale),
 * scale_inv[b] = scale_inv. q holds hidden bytes, scale_inv
 * EP_FP8_NBLOCKS(hidden) floats. */
void ep_fp8_cast_row(const uint16_t *x, size_t hidden, int round_scale,
		     uint8_t *q, float *scale_inv);

/* UE8M0 scale byte: float_bits(scale_inv) >> 23, the biased exponent of a
 * positive power-of-two scale_inv (round_scale = 1). */
uint8_t ep_ue8m0_from_scale(float scale_inv);

/* The float whose bits are (uint32_t)e << 23, as per_token_cast_back does:
 * 2^(e-127) for 1..254, +0 for 0 and +inf for 255. */
float ep_ue8m0_to_f32(uint8_t e);

/* Pack nblocks UE8M0 bytes (nblocks % 4 == 0) four per word, little endian:
 * byte k of packed[p] is the byte of block 4p + k. */
void ep_ue8m0_pack(const float *scale_inv, size_t nblocks, uint32_t *packed);

/* Dequantise as DeepEP's tests do (per_token_cast_back):
 * out_i = bf16(float(q_i) * scale_inv[i / 128]). */
void ep_fp8_dequant_row(const uint8_t *q, const float *scale_inv,
			size_t hidden, uint16_t *out);

/* INT8 per-token quantisation (our formula for the Ascend-style INT8 normal
 * dispatch; DeepEP has none) */

#define EP_INT8_MARGIN 1e-4f

/* amax = max(1e-4f, max |x_i| over the whole row), NaN inputs ignored;
 * q_i = clamp(rintf(float(x_i) * (127.0f / amax)), -127, 127), so ties go to
 * even (2.5 -> 2, 63.5 -> 64). A NaN product (a NaN input, or an infinite
 * input, which makes amax infinite and the factor 0) gives q_i = 0. The clamp
 * cannot bind for finite inputs: |x_i * RN(127/amax)| rounds to at most 127.
 * Returns scale_inv = amax / 127.0f. */
float ep_int8_quant_row(const uint16_t *x, size_t hidden, int8_t *q);

/* out_i = bf16(float(q_i) * scale_inv); q and out must not overlap. */
void ep_int8_dequant_row(const int8_t *restrict q, float scale_inv,
			 size_t hidden, uint16_t *restrict out);

#endif
