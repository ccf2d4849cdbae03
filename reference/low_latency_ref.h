/* low_latency_ref.h - the naive reference for low-latency dispatch and combine.
 *
 * Regenerates every rank's routing from the seed and says, with plain loops
 * over (source rank, token, top-k slot), what rank `me` must hold after
 * dispatch (DeepEP's low-latency dispatch in canonical order: source rank,
 * then token, then slot) and what its combine must return (fmaf over the
 * slots in order from +0.0f, the expert outputs being ep_expert_transform of
 * the dequantised rows under their own (rank, local expert)). Payload rows
 * are regenerated while checking, so the reference keeps no copy of them.
 * Written independently of collectives/low_latency.c: it shares only the
 * numeric conversions, the expert transform and the input generators, and
 * low_latency.h for the shape and output structs.
 *
 * Rows past packed_recv_count are unspecified in DeepEP and never compared.
 */
#ifndef EP_LOW_LATENCY_REF_H
#define EP_LOW_LATENCY_REF_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/low_latency.h"
#include "reference/compare.h"
#include "reference/inputs.h"
#include "reference/reference.h"

/* Inputs of the low-latency variant */

/* Tokens rank r sends: T_r = ep_rank_num_tokens(T, seed, r, uneven)
 * (reference/inputs.h; rank 0 keeps T, so N defaults to T). Rank r's tokens
 * are the first T_r rows of the routing ep_gen_routing generates for T
 * tokens, and x rows of ep_gen_bf16_row(seed, payload, EP_STREAM_X, r, t). */

struct ep_ll_ref {
	struct ep_ll_config cfg;
	uint64_t seed;
	enum ep_payload payload;        /* the routing's */
	const struct ep_routing *routing; /* the caller's, outlives the reference */
	/* the expert stand-in of a packed row (reference/reference.h), set by
	 * the caller after init: NULL, the plain transform of (EP rank, local
	 * expert); a MoE-TP stage sums its members' partials (reference/moe_layer_ref.h) */
	const struct ep_expert_fn *expert;
	const int *names;               /* [R] the rank a report names for rank s (NULL: s), set by the caller */
	const char *tag;                /* the dispatch tensors' names: tag_x, ... (NULL: packed_recv) */
	int me;
	int max_tokens_in;             /* T, the routing rows per rank */
	int32_t *num_tokens;           /* [R] T_r */
	int64_t *topk_idx;             /* [R][T][K], rows >= T_r unused */
	float *topk_weights;           /* [R][T][K] */
	/* expected for rank me */
	int32_t *count;                /* [L] */
	int64_t *layout_range;         /* [L][R] */
	int32_t *row_src_rank;         /* [L][R*N], rows < count[e] */
	int32_t *row_src_token;        /* [L][R*N] */
	int overflow;                  /* some (source, expert) list passes N: no layout exists */
	/* scratch of the checks */
	uint16_t *xrow, *deq, *y, *want;
	uint8_t *q, *got_bytes;
	float *scales, *acc;
};

/* Builds the reference of rank me for T tokens per rank (before uneven),
 * routing r and seed. 0 or -ENOMEM. */
int ep_ll_ref_init(struct ep_ll_ref *ref, const struct ep_ll_config *cfg, int num_tokens,
		   const struct ep_routing *r, uint64_t seed, int uneven, int me);
void ep_ll_ref_fini(struct ep_ll_ref *ref);

/* Rank `rank`'s inputs: token count and routing rows [T_r][K]. */
int ep_ll_ref_tokens(const struct ep_ll_ref *ref, int rank);
const int64_t *ep_ll_ref_topk_idx(const struct ep_ll_ref *ref, int rank);
const float *ep_ll_ref_topk_weights(const struct ep_ll_ref *ref, int rank);

/* Checks, each adding to rep: every valid byte of the dispatch outputs
 * (packed_recv_count, layout_range, and per valid packed row x, scales,
 * src_info), and combined_x [T_me][H]. */
void ep_ll_ref_check_dispatch(struct ep_ll_ref *ref, const struct ep_ll_dispatch_out *actual,
			      struct ep_check_report *rep);
void ep_ll_ref_check_combine(struct ep_ll_ref *ref, const uint16_t *combined_x,
			     struct ep_check_report *rep);
/* The expert output of rank me's packed row p of local expert e (p below
 * the expected count), bf16 [H]: what combine takes as its x there. */
void ep_ll_ref_expert_row(struct ep_ll_ref *ref, int e, int p, uint16_t *want);
/* What combine returns for token t of any rank src (bf16 [H]). 0. */
int ep_ll_ref_combined_row(struct ep_ll_ref *ref, int src, int t, uint16_t *want);

#endif
