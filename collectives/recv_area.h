/* recv_area.h - where normal dispatch lands: one rank's receive and combine area, and what dispatch returns.
 *
 * Intranode and internode dispatch fill the same receive area (rows grouped
 * by source rank, then source token) and combine reads the same combine
 * area; the reference checks outputs of the same form. This module is that
 * common part: the area's types and layout (one plan for sizing and
 * binding), the outputs it holds after a dispatch, and the per-expert
 * receive counts every rank derives from the counts all ranks published.
 */
#ifndef EP_RECV_AREA_H
#define EP_RECV_AREA_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ep.h"
#include "collectives/layout.h"

/* One rank's receive and combine buffers, as every rank sees them. */
struct ep_recv_area {
	void *x;                  /* [cap][H] payload (bf16, fp8 or int8) */
	float *x_scales;          /* [cap][S] (FP8: H/128, INT8: 1) */
	int64_t *topk_idx;        /* [cap][K] local expert ids or -1 */
	float *topk_weights;      /* [cap][K] */
	int32_t *src_idx;         /* [cap] source token index */
	uint16_t *combine_x;      /* [cap][H] bf16 combine input (written by the owner) */
	float *combine_w;         /* [cap][K] combine input weights */
};

/* Inputs of one dispatch (cached: layout and topk ignored, handle reused). */
struct ep_dispatch_in {
	const void *x;                 /* [T][H] bf16 or fp8 (INT8: bf16, quantised here) */
	const float *x_scales;         /* [T][H/128] FP8 only */
	const int64_t *topk_idx;       /* [T][K] global ids, or NULL (with_topk=0) */
	const float *topk_weights;     /* [T][K] or NULL */
	const struct ep_layout *layout;
};

/* What dispatch returns; all pointers into this rank's receive area. */
struct ep_dispatch_out {
	size_t num_recv;                       /* M */
	const void *recv_x;                    /* [M][H] */
	const float *recv_x_scales;            /* [M][S] or NULL */
	const int64_t *recv_topk_idx;          /* [M][K] or NULL */
	const float *recv_topk_weights;        /* [M][K] or NULL */
	const int32_t *recv_src_idx;           /* [M] */
	const int32_t *num_recv_tokens_per_expert; /* [L] */
	const int32_t *rank_prefix_matrix;     /* [R][R] */
};

/* The outputs a receive area holds after a dispatch: pointers into it, topk
 * tensors only when topk was dispatched (not in cached mode), weights only
 * when they were too. Shared by the intranode and internode collectives. */
struct ep_dispatch_out ep_recv_area_outputs(struct ep_recv_area *a, const struct ep_shape *s,
					    size_t num_recv, int topk, int weights,
					    const int32_t *num_recv_tokens_per_expert,
					    const int32_t *rank_prefix_matrix);

/* num_recv_tokens_per_expert of `rank` from every rank's num_tokens_per_expert
 * (expert_counts [R][E]): summed over sources, aligned up to
 * s->expert_alignment, as counts or prefix sums per s->expert_counts. */
void ep_recv_tokens_per_expert(const struct ep_shape *s, int rank, const int32_t *expert_counts,
			       int32_t *out);

/* Bytes of one area of cap rows (page-aligned pieces, page-aligned size). */
size_t ep_recv_area_bytes(const struct ep_shape *s, size_t cap);

/* The area of cap rows at base (ep_recv_area_bytes of memory). */
struct ep_recv_area ep_recv_area_at(void *base, const struct ep_shape *s, size_t cap);

#endif
