/* ll_packed.h - low-latency receive layouts (DeepEP's packed tensors) in the --dump layout, for a layer's dump and golden.
 *
 * A set of n blocks, each one EP rank's receive layout: x [L][R*N][H]
 * (e4m3 bytes or bf16), scales [L][R*N][S] row-major (4-byte words: float
 * or int32 of four UE8M0 bytes; none for BF16), count [L], src_info
 * [L][R*N], layout_range [L][R]. Only the first count[e] rows of expert e
 * hold data; the rest are zero, so a run's dump and golden are
 * byte-identical whatever a collective left past the counts. A layer with
 * MoE-TP writes its receive layout as one set (prefix packed_recv, no
 * block dimension) and its gathered blocks as another (prefix
 * moe_tp_gathered, a leading [moe_tp] dimension, block i from MoE-TP peer
 * (g + i) % moe_tp). Nothing here blocks; allocation failure is -ENOMEM.
 */
#ifndef EP_LL_PACKED_H
#define EP_LL_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/low_latency.h"
#include "reports/npy.h"

struct ep_ll_packed {
	size_t n, L, RN, R, H, S, row; /* blocks, local experts, R*N rows, ranks, hidden, scale words, row bytes */
	int fp8, ue8m0;
	uint8_t *x;                    /* [n][L][RN][row] */
	uint32_t *scales;              /* [n][L][RN][S], or NULL (BF16) */
	int32_t *count;                /* [n][L] */
	int32_t *src;                  /* [n][L][RN] */
	int64_t *range;                /* [n][L][R] */
};

/* A row of an expert's receive layout as --ll-order any orders them (verify
 * low-latency, with and without a layer): by source rank, then source
 * token, then position p in the layout. */
struct ep_ll_row_key {
	int32_t src, token, p;
};

/* qsort's comparator of struct ep_ll_row_key. */
int ep_ll_row_key_cmp(const void *a, const void *b);

/* n zeroed blocks for config c. 0 or -ENOMEM (p then safe to fini). */
int ep_ll_packed_init(struct ep_ll_packed *p, const struct ep_ll_config *c, size_t n);
void ep_ll_packed_fini(struct ep_ll_packed *p);

/* Block b from DeepEP's layout o (column-major scales): the counts, the
 * layout ranges and every valid row (a count outside [0, R*N] is clamped). */
void ep_ll_packed_put(struct ep_ll_packed *p, size_t b, const struct ep_ll_dispatch_out *o);

/* Expert e's valid rows in block b (count clamped to [0, R*N]). */
size_t ep_ll_packed_rows(const struct ep_ll_packed *p, size_t b, size_t e);

/* Scale of 128-element block k of row (b, e, r), as a float (UE8M0 decoded). */
float ep_ll_packed_scale(const struct ep_ll_packed *p, size_t b, size_t e, size_t r, size_t k);

/* Golden: records an expected row of ep_ll_ref_check_dispatch (tensor
 * names prefix_x[e], prefix_x_scales[e], prefix_src_info[e],
 * prefix_count, prefix_layout_range, whatever the prefix) into block b. */
void ep_ll_packed_capture(struct ep_ll_packed *p, size_t b, const char *tensor, int64_t row, const void *data,
			  size_t bytes);

/* Writes DIR/rank<me>/<prefix>_{x,x_scales,count,src_info,layout_range}.npy
 * (x_scales only with FP8); blocked: a leading [n] dimension, else block 0
 * alone. 0 or -errno. */
int ep_ll_packed_write(const struct ep_ll_packed *p, const char *dir, int me, const char *prefix, int blocked);

/* Writes DIR/rank<me>/<name>.npy of nd <= 4 dims (the folder made). 0 or -errno. */
int ep_rank_npy_write(const char *dir, int me, const char *name, enum ep_npy_dtype d, const size_t *shape, int nd,
		      const void *data);

#endif
