/* ascend_ref.h - the naive reference for Ascend's dispatch/combine (parallel-semantics.md sections 4-5).
 *
 * Regenerates every EP rank's routing from the seed (reference/inputs.h),
 * lists with plain loops the rows rank `me` must receive, in Ascend's
 * order (local expert, then source rank, then token; on a shared-expert
 * rank source rank, then token), and what its combine must produce, and
 * checks actual outputs byte for byte. Rows are regenerated while
 * checking, so the reference holds no copy of expand_x. Written
 * independently of collectives/ascend.c: it shares its parameter and
 * output types, the bf16 conversions and the expert stand-in.
 *
 * Handles: assist_info_for_combine and ep_recv_counts are compared with
 * ep_compare_handle_row, so their mismatches are also counted apart (the
 * `handles` line): products and versions may define them differently.
 */
#ifndef EP_ASCEND_REF_H
#define EP_ASCEND_REF_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ascend.h"
#include "collectives/ep.h"
#include "reference/compare.h"
#include "reference/inputs.h"
#include "reference/reference.h"

/* The run's inputs beyond the routing. */
struct ep_ascend_inputs {
	uint64_t seed;
	const struct ep_routing *routing;
	int smooth;          /* smoothing scales [(S_n + E)][H] from the seed (quant only) */
	int shared_x;        /* combine adds shared_expert_x (bias stream 0) */
	/* with smooth: each source rank's own scales [R] -> [(S_n + E)][H]
	 * (verify reads them from a directory), or NULL: the seed's, one table */
	const float *const *smooth_of;
	/* the expert stand-in of a row (dequantised first), or NULL:
	 * reference/transform.h's of the EP rank. A MoE-TP stage sums its
	 * members' (reference/moe_layer_ref.h ep_moe_tp_expert). */
	const struct ep_expert_fn *expert;
};

struct ep_ascend_ref {
	struct ep_ascend_params p;
	struct ep_ascend_inputs in;
	int me;
	int64_t *ids;               /* [R][BS][K] every rank's expert ids */
	float *weights;             /* [R][BS][K] */
	int *tokens;                /* [R] T_r */
	float *smooth;              /* [(S_n + E)][H] or NULL */
	/* expected for rank me */
	size_t num_recv;
	int32_t *rows;              /* [num_recv][3]: (source rank, token, slot) */
	int num_local, num_counts;
	int64_t *expert_token_nums; /* [num_local] */
	int32_t *ep_recv_counts;    /* [num_counts] */
};

/* Builds the reference of EP rank me. s is the run's shape the routing is
 * generated for (num_tokens = BS, num_experts = E, num_topk = K). 0,
 * -EINVAL (a duplicate expert in a row, an id out of range) or -ENOMEM. */
int ep_ascend_ref_init(struct ep_ascend_ref *ref, const struct ep_ascend_params *p, const struct ep_shape *s,
		       const struct ep_ascend_inputs *in, int me);
void ep_ascend_ref_fini(struct ep_ascend_ref *ref);

/* Rank `rank`'s expert ids and weights ([BS][K], its first T_r rows active). */
const int64_t *ep_ascend_ref_ids(const struct ep_ascend_ref *ref, int rank);
const float *ep_ascend_ref_weights(const struct ep_ascend_ref *ref, int rank);

/* The smoothing scales of a seed: rows x hidden values (1 + m/8) * 2^k,
 * m in 0..7, k in {-1, 0, 1}, from a hash of (seed, row, column). */
void ep_ascend_gen_smooth(uint64_t seed, int rows, int hidden, float *out);

/* Section 4's quantisation of one row: xf = x (* smooth), ds = 127/amax,
 * q = rint_even(xf * ds), returns scale = 1/ds (amax 0: q = 0, scale +0). */
float ep_ascend_ref_quant(const uint16_t *x, const float *smooth, int hidden, int8_t *q);

/* Section 5.4's int8 transport of one bf16 row (blocks of 8), as the
 * receiver reads it back: y -> q, bf16 scale -> bf16(q * scale). */
void ep_ascend_ref_comm_quant(const uint16_t *y, int hidden, uint16_t *out);

/* The expert stand-in on one expand_x row: dequantised (bf16(q * scale))
 * when quant, then reference/transform.h's map for (rank, local expert). */
void ep_ascend_expert_row(enum ep_payload payload, int rank, int local_expert, int quant, const void *row,
			  float scale, int hidden, uint16_t *y);

/* The expert output of one expand_x row (as ep_ascend_ref_row gives it) on
 * EP rank `rank`, local expert el: in.expert's, or ep_ascend_expert_row's. */
void ep_ascend_ref_expert(const struct ep_ascend_ref *ref, int rank, int el, const void *row, float scale,
			  uint16_t *y);

/* Expected row m of expand_x (row_bytes of ep_ascend_row_bytes) and its scale. */
void ep_ascend_ref_row(const struct ep_ascend_ref *ref, size_t m, void *row, float *scale);

/* Checks, each adding to rep. */
void ep_ascend_ref_check_dispatch(const struct ep_ascend_ref *ref, const struct ep_ascend_out *a,
				  struct ep_check_report *rep);
/* Combine's x for token t of any rank src (bf16 [H]). 0 or -ENOMEM. */
int ep_ascend_ref_combined_row(const struct ep_ascend_ref *ref, int src, int t, uint16_t *want);
void ep_ascend_ref_check_combine(const struct ep_ascend_ref *ref, const uint16_t *x_out,
				 struct ep_check_report *rep);

#endif
