/* combine_kernels.h - normal combine's reduction of one token, at the host's copy bandwidth.
 *
 * Bit for bit the plain definition (reference/reference.c): acc starts as
 * float(in[0]) + float(in[1]) when pair_start (two biases), else as
 * float(in[0]) + 0.0f (one bias, or the first row: the +0 start turns -0
 * into +0); every further row is added in order; one rounding to BF16
 * (numeric.h's ep_f32_to_bf16); no input at all gives +0. Columns go in
 * chunks whose accumulators stay in registers while the rows stream past, so
 * a token costs one read of each input row and one write of its output, with
 * no fp32 row in memory between. One clone per simd.h level, all compiled
 * from the same body; the active level is used. Pure: no state, no
 * allocation, no system call.
 */
#ifndef EP_COMBINE_KERNELS_H
#define EP_COMBINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/simd.h"

/* out[c] for c < H, as above, over in[0..n-1]; pair_start needs n >= 2. */
void ep_bf16_reduce_rows(const uint16_t *const *in, int n, int pair_start, size_t H, uint16_t *out);

/* Ascend's combine of one token (reference/ascend_ref.c): acc = +0; for
 * each row in[j] in order, v = float(in[j][c]), multiplied by w[j] when
 * j < nw (the product rounded to float, never fused with the add), then
 * acc = acc + v; then acc = acc + float(tail[c]) when tail is not NULL; one
 * rounding to BF16. n = 0 without tail gives +0. The file is compiled with
 * -ffp-contract=off (Makefile), so no level fuses the multiply and add. */
void ep_bf16_weighted_sum_rows(const uint16_t *const *in, const float *w, int nw, int n, const uint16_t *tail,
			       size_t H, uint16_t *out);

/* The same with level l (which this CPU must run): what the tests compare. */
void ep_bf16_weighted_sum_rows_at(enum ep_simd l, const uint16_t *const *in, const float *w, int nw, int n,
				  const uint16_t *tail, size_t H, uint16_t *out);

/* The same with level l (which this CPU must run): what the tests compare. */
void ep_bf16_reduce_rows_at(enum ep_simd l, const uint16_t *const *in, int n, int pair_start, size_t H,
			    uint16_t *out);

/* ep_f32_to_bf16 over a row, compiled for level l like the reduction's last
 * step, so a test can hold every float's rounding to the scalar formula. */
void ep_f32_row_to_bf16_at(enum ep_simd l, const float *in, uint16_t *out, size_t n);

#endif
