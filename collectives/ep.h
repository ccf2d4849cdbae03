/* ep.h - the shapes and element types shared by every epbench collective.
 *
 * Names follow DeepEP: R ranks, T tokens per rank, H hidden, K top-k, E
 * experts, L = E / R local experts per rank. Tensors are row-major and their
 * element types are DeepEP's: x is BF16 (stored as uint16_t bits) or FP8 E4M3
 * (uint8_t) with float per-128-channel scales, topk_idx is int64, weights are
 * float, per-rank counts int32, is_token_in_rank is bool (uint8_t).
 */
#ifndef EP_EP_H
#define EP_EP_H

#include <stddef.h>
#include <stdint.h>

/* Payload type of dispatch's x (combine is always BF16, as in DeepEP). */
enum ep_dtype {
	EP_DTYPE_BF16, /* uint16_t bits */
	EP_DTYPE_FP8,  /* E4M3 bytes + float scales [T][H/128] carried verbatim */
	EP_DTYPE_INT8, /* int8 quantised on send, one float scale per token */
};

/* How the per-expert receive counts are reported (Ascend's DeepEP offers both). */
enum ep_expert_counts { EP_COUNTS_PLAIN, EP_COUNTS_PREFIX };

/* The problem one run solves; identical on every rank. */
struct ep_shape {
	int num_ranks;        /* R */
	int num_tokens;       /* T: tokens per rank (the largest, with uneven token counts) */
	int hidden;           /* H: elements per token row */
	int num_topk;         /* K: experts chosen per token */
	int num_experts;      /* E: total experts, E % R == 0 */
	int expert_alignment; /* per-expert receive counts rounded up to this */
	enum ep_dtype dtype;
	int with_topk;        /* 1: dispatch carries topk_idx/topk_weights */
	int num_bias;         /* 0, 1 or 2 bias tensors added by combine */
	enum ep_expert_counts expert_counts;
};

#define EP_PAGE 4096 /* alignment of shared buffers */

/* v rounded up to a multiple of a (a > 0). */
static inline size_t ep_align_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

static inline int ep_local_experts(const struct ep_shape *s)
{
	return s->num_experts / s->num_ranks;
}

/* Bytes of one x row on the wire (payload only, no scales). */
static inline size_t ep_dtype_row_bytes(enum ep_dtype d, int hidden)
{
	return d == EP_DTYPE_BF16 ? (size_t)hidden * 2 : (size_t)hidden;
}

/* Number of float scales per x row: H/128 for FP8, 1 for INT8, 0 for BF16. */
static inline int ep_dtype_num_scales(enum ep_dtype d, int hidden)
{
	return d == EP_DTYPE_FP8 ? hidden / 128 : d == EP_DTYPE_INT8 ? 1 : 0;
}

static inline const char *ep_dtype_name(enum ep_dtype d)
{
	return d == EP_DTYPE_BF16 ? "bf16" : d == EP_DTYPE_FP8 ? "fp8" : "int8";
}

#endif
