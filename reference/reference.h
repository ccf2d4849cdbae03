/* reference.h - the naive reference for normal (intranode) dispatch and combine.
 *
 * Regenerates every rank's routing from the seed, derives with plain loops
 * what rank `me` must receive and what its combine must produce, and checks
 * actual outputs against that byte for byte. Payload rows are regenerated on
 * the fly while checking, so the reference holds no copy of recv_x.
 * Written independently of collectives/ (it shares only the numeric
 * conversions and the expert transform, which define the expected values).
 */
#ifndef EP_REFERENCE_H
#define EP_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ep.h"
#include "collectives/recv_area.h"
#include "collectives/layout.h"
#include "reference/compare.h"
#include "reference/inputs.h"

/* The expert stand-in of a received row as the run computes it (NULL in
 * struct ep_reference: reference/transform.h's of the rank). A MoE-TP
 * stage, for one, sums partial outputs of several world ranks. */
struct ep_expert_fn {
	const void *ctx;
	/* y = the expert output of row x on (EP) rank, local expert e (-1: none) */
	void (*row)(const void *ctx, int rank, int e, const uint16_t *x, int hidden, uint16_t *y);
	/* the weight rank returns for a slot of local expert `local` (-1: not its) */
	float (*weight)(const void *ctx, int rank, int local, float w);
};

/* Names of the received-row tensors checked by ep_reference_check_rows. */
struct ep_row_names {
	const char *x, *x_scales, *src_idx, *topk_idx, *topk_weights;
};

struct ep_reference {
	struct ep_shape shape;
	const struct ep_expert_fn *expert; /* NULL: the plain stand-in */
	const struct ep_routing *routing;
	uint64_t seed;
	int me;
	int64_t *topk_idx;             /* [R][T][K] every rank's routing */
	float *topk_weights;           /* [R][T][K] */
	int32_t *recv_rows;            /* [R] rows each rank receives */
	/* expected for rank me */
	int32_t *num_tokens_per_rank;  /* [R] */
	int32_t *num_tokens_per_expert;/* [E] */
	uint8_t *is_token_in_rank;     /* [T][R] */
	int32_t *rank_prefix_matrix;   /* [R][R] */
	int32_t *num_recv_tokens_per_expert; /* [L], counts or prefix per shape */
	size_t num_recv;               /* M */
	int32_t *row_src_rank;         /* [M] */
	int32_t *row_src_token;        /* [M] */
};

/* Builds the reference for rank me. 0 or -ENOMEM. */
int ep_reference_init(struct ep_reference *ref, const struct ep_shape *s,
		      const struct ep_routing *r, uint64_t seed, int me);
void ep_reference_fini(struct ep_reference *ref);

/* Rank `rank`'s routing rows (pointers into the reference). */
const int64_t *ep_reference_topk_idx(const struct ep_reference *ref, int rank);
const float *ep_reference_topk_weights(const struct ep_reference *ref, int rank);

/* Largest receive row count over all ranks (buffer sizing). */
size_t ep_reference_max_recv(const struct ep_reference *ref);

/* Checks, each adding to rep. */
void ep_reference_check_layout(const struct ep_reference *ref, const struct ep_layout *actual,
			       struct ep_check_report *rep);
void ep_reference_check_dispatch(const struct ep_reference *ref,
				 const struct ep_dispatch_out *actual, int cached,
				 struct ep_check_report *rep);
void ep_reference_check_combine(const struct ep_reference *ref, const uint16_t *combined_x,
				const float *combined_w, struct ep_check_report *rep);

/* The received rows of a dispatch output as rank me's (payload, scales,
 * source index, topk), named as names says (a gathered copy of them, say). */
void ep_reference_check_rows(const struct ep_reference *ref, const struct ep_dispatch_out *a,
			     const struct ep_row_names *names, struct ep_check_report *rep);

/* The expected combine input of rank me's received row m (its expert
 * output), bf16 [H]. 0, or -ENOMEM. */
int ep_reference_expert_output(const struct ep_reference *ref, size_t m, uint16_t *y);

/* The expected combined row of token t of any rank src (bf16 [H]) and its
 * combined weights ([K], may be NULL). 0, or -ENOMEM. */
int ep_reference_combined_row(const struct ep_reference *ref, int src, int t, uint16_t *want, float *wsum);

/* The world rank of EP rank r (its group view's, else r). */
int ep_reference_world(const struct ep_reference *ref, int r);

/* The BF16 value of a dispatched x row as an expert sees it (FP8 and INT8
 * dequantised as DeepEP's tests do). row/scales are in the dispatch dtype. */
void ep_dispatched_row_to_bf16(const struct ep_shape *s, const void *row, const float *scales,
			       uint16_t *out);

#endif
