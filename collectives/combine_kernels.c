/* combine_kernels.c - normal combine's per-token reduction, one clone per level (see combine_kernels.h). */
#include "collectives/combine_kernels.h"

#include <string.h>

#include "collectives/numeric.h"

#define COLS 64 /* accumulators per chunk: 16 SSE, 8 AVX2 or 4 AVX-512 registers */

typedef void (*reduce_fn)(const uint16_t *const *in, int n, int pair_start, size_t H, uint16_t *restrict out);
typedef void (*wsum_fn)(const uint16_t *const *in, const float *w, int nw, int n, const uint16_t *tail, size_t H,
			uint16_t *restrict out);
typedef void (*cvt_fn)(const float *restrict in, uint16_t *restrict out, size_t n);

/* Columns c .. c+w-1 (w <= COLS); fixed-size loops are what -O2 vectorises. */
#define CHUNK(w)                                                                               \
	do {                                                                                   \
		float acc[COLS];                                                               \
		int j = pair_start ? 2 : 1;                                                    \
		if (pair_start)                                                                \
			for (size_t k = 0; k < (w); k++)                                       \
				acc[k] = ep_bf16_to_f32(in[0][c + k]) + ep_bf16_to_f32(in[1][c + k]); \
		else                                                                           \
			for (size_t k = 0; k < (w); k++)                                       \
				acc[k] = ep_bf16_to_f32(in[0][c + k]) + 0.0f;                  \
		for (; j < n; j++)                                                             \
			for (size_t k = 0; k < (w); k++)                                       \
				acc[k] += ep_bf16_to_f32(in[j][c + k]);                        \
		for (size_t k = 0; k < (w); k++)                                               \
			out[c + k] = ep_f32_to_bf16(acc[k]);                                   \
	} while (0)

#define REDUCE_BODY                                                                            \
	if (n == 0) {                                                                          \
		memset(out, 0, H * sizeof(uint16_t));                                          \
		return;                                                                        \
	}                                                                                      \
	size_t c = 0;                                                                          \
	for (; c + COLS <= H; c += COLS)                                                       \
		CHUNK(COLS);                                                                   \
	if (c < H)                                                                             \
		CHUNK(H - c);

/* Ascend's weighted sum over columns c .. c+w-1 (combine_kernels.h). */
#define WCHUNK(width)                                                                              \
	do {                                                                                   \
		float acc[COLS];                                                               \
		for (size_t k = 0; k < (width); k++)                                               \
			acc[k] = 0.0f;                                                         \
		for (int j = 0; j < n; j++) {                                                  \
			const uint16_t *r = in[j] + c;                                         \
			if (j < nw) {                                                          \
				float wj = w[j];                                               \
				for (size_t k = 0; k < (width); k++) {                             \
					float p = ep_bf16_to_f32(r[k]) * wj;                   \
					acc[k] = acc[k] + p;                                   \
				}                                                              \
			} else {                                                               \
				for (size_t k = 0; k < (width); k++)                               \
					acc[k] = acc[k] + ep_bf16_to_f32(r[k]);                \
			}                                                                      \
		}                                                                              \
		if (tail)                                                                      \
			for (size_t k = 0; k < (width); k++)                                       \
				acc[k] = acc[k] + ep_bf16_to_f32(tail[c + k]);                 \
		for (size_t k = 0; k < (width); k++)                                               \
			out[c + k] = ep_f32_to_bf16(acc[k]);                                   \
	} while (0)

#define WSUM_BODY                                                                              \
	size_t c = 0;                                                                          \
	for (; c + COLS <= H; c += COLS)                                                       \
		WCHUNK(COLS);                                                                  \
	if (c < H)                                                                             \
		WCHUNK(H - c);

#define CVT_BODY                                                                               \
	size_t i = 0;                                                                          \
	for (; i + COLS <= n; i += COLS)                                                       \
		for (size_t k = 0; k < COLS; k++)                                              \
			out[i + k] = ep_f32_to_bf16(in[i + k]);                                \
	for (; i < n; i++)                                                                     \
		out[i] = ep_f32_to_bf16(in[i]);

static void reduce_baseline(const uint16_t *const *in, int n, int pair_start, size_t H, uint16_t *restrict out)
{
	REDUCE_BODY
}

static void wsum_baseline(const uint16_t *const *in, const float *w, int nw, int n, const uint16_t *tail, size_t H,
			  uint16_t *restrict out)
{
	WSUM_BODY
}

static void cvt_baseline(const float *restrict in, uint16_t *restrict out, size_t n)
{
	CVT_BODY
}

#if defined(__x86_64__)
EP_SIMD_AVX2_FN static void reduce_avx2(const uint16_t *const *in, int n, int pair_start, size_t H, uint16_t *restrict out)
{
	REDUCE_BODY
}

EP_SIMD_AVX512_FN static void reduce_avx512(const uint16_t *const *in, int n, int pair_start, size_t H,
				 uint16_t *restrict out)
{
	REDUCE_BODY
}

EP_SIMD_AVX2_FN static void wsum_avx2(const uint16_t *const *in, const float *w, int nw, int n, const uint16_t *tail,
				     size_t H, uint16_t *restrict out)
{
	WSUM_BODY
}

EP_SIMD_AVX512_FN static void wsum_avx512(const uint16_t *const *in, const float *w, int nw, int n,
					 const uint16_t *tail, size_t H, uint16_t *restrict out)
{
	WSUM_BODY
}

EP_SIMD_AVX2_FN static void cvt_avx2(const float *restrict in, uint16_t *restrict out, size_t n)
{
	CVT_BODY
}

EP_SIMD_AVX512_FN static void cvt_avx512(const float *restrict in, uint16_t *restrict out, size_t n)
{
	CVT_BODY
}

static const reduce_fn reduce_at[EP_SIMD_LEVELS] = {reduce_baseline, reduce_avx2, reduce_avx512};
static const cvt_fn cvt_at[EP_SIMD_LEVELS] = {cvt_baseline, cvt_avx2, cvt_avx512};
static const wsum_fn wsum_at[EP_SIMD_LEVELS] = {wsum_baseline, wsum_avx2, wsum_avx512};
#else
static const reduce_fn reduce_at[EP_SIMD_LEVELS] = {reduce_baseline, reduce_baseline, reduce_baseline};
static const cvt_fn cvt_at[EP_SIMD_LEVELS] = {cvt_baseline, cvt_baseline, cvt_baseline};
static const wsum_fn wsum_at[EP_SIMD_LEVELS] = {wsum_baseline, wsum_baseline, wsum_baseline};
#endif

void ep_bf16_reduce_rows_at(enum ep_simd l, const uint16_t *const *in, int n, int pair_start, size_t H,
			    uint16_t *out)
{
	reduce_at[l](in, n, pair_start, H, out);
}

void ep_bf16_reduce_rows(const uint16_t *const *in, int n, int pair_start, size_t H, uint16_t *out)
{
	reduce_at[ep_simd_active()](in, n, pair_start, H, out);
}

void ep_f32_row_to_bf16_at(enum ep_simd l, const float *in, uint16_t *out, size_t n)
{
	cvt_at[l](in, out, n);
}

void ep_bf16_weighted_sum_rows_at(enum ep_simd l, const uint16_t *const *in, const float *w, int nw, int n,
				  const uint16_t *tail, size_t H, uint16_t *out)
{
	wsum_at[l](in, w, nw, n, tail, H, out);
}

void ep_bf16_weighted_sum_rows(const uint16_t *const *in, const float *w, int nw, int n, const uint16_t *tail,
			       size_t H, uint16_t *out)
{
	wsum_at[ep_simd_active()](in, w, nw, n, tail, H, out);
}
