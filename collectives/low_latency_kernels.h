/* low_latency_kernels.h - the row kernels of low-latency mode: the sender's FP8 cast, combine's reduction.
 *
 * Both are bit for bit their plain definitions (numeric.h's ep_fp8_cast_row;
 * fmaf over the rows in order from +0.0f, one rounding to BF16), written so
 * that -O2 vectorises them, one clone per simd.h level: the active one is
 * used, the _at forms take a level this CPU runs (for the tests). Pure
 * functions of their arguments: no state, no allocation, no system call.
 */
#ifndef EP_LOW_LATENCY_KERNELS_H
#define EP_LOW_LATENCY_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/simd.h"

/* The sender's cast: bit for bit ep_fp8_cast_row (numeric.h) for hidden a
 * multiple of 128, but written without branches so that -O2 vectorises it
 * (the scalar E4M3 encoder was most of an FP8 dispatch's time). */
void ep_ll_fp8_cast_row(const uint16_t *x, size_t hidden, int round_scale, uint8_t *q,
			float *scale_inv);

/* Combine's reduction of one token: out[c] = bf16(acc), acc = fmaf(ys[j][c],
 * ws[j], acc) over its n rows in order from +0.0f (n = 0 gives +0). */
void ep_ll_reduce_rows(const uint16_t *const *ys, const float *ws, int n, int H, uint16_t *out);

void ep_ll_fp8_cast_row_at(enum ep_simd l, const uint16_t *x, size_t hidden, int round_scale, uint8_t *q,
			   float *scale_inv);
/* The cast's E4M3 encoder alone, out[i] = ep_f32_to_e4m3(in[i]) bit for bit
 * (for the tests, which sweep it over whole float exponents). */
void ep_ll_e4m3_at(enum ep_simd l, const float *in, uint8_t *out, size_t n);
void ep_ll_reduce_rows_at(enum ep_simd l, const uint16_t *const *ys, const float *ws, int n, int H,
			  uint16_t *out);

#endif
