/* moe_layer_ref.h - the expert stand-in of a parallel configuration's MoE layer.
 *
 * parallel-semantics.md sections 2-3, written as plainly as the sums read:
 *   a2a with MoE-TP: EP rank q's experts are held in moe_tp shards by the
 *     world ranks q moe_tp + i; shard i's output of a row is the stand-in of
 *     reference/transform.h for its world rank; member g's row returns as
 *     bf16(float(p_g) + float(p_{g+1}) + ...), peers in rotation order from
 *     g, one rounding (moe_tp 1: p_g itself, no arithmetic).
 *   allgather: rank q's partial of a token is bf16(sum over the slots j,
 *     ascending, whose expert q holds (a shard of), of float(y_j) * w_j,
 *     each product and sum rounded, from +0); the owner's output is
 *     bf16(+0 + float(p_0) + float(p_1) + ... over world ranks ascending).
 */
#ifndef EP_MOE_LAYER_REF_H
#define EP_MOE_LAYER_REF_H

#include <stdint.h>

#include "reference/inputs.h"
#include "reference/reference.h"

/* The a2a expert of EP group g (member g of every MoE-TP group), as a
 * struct ep_expert_fn for the group's reference. */
struct ep_moe_tp_expert {
	struct ep_expert_fn fn;
	enum ep_payload payload;
	int moe_tp, g;
};
void ep_moe_tp_expert_init(struct ep_moe_tp_expert *x, enum ep_payload payload, int moe_tp, int g);

/* Who holds which experts in allgather mode: L local experts per EP rank. */
struct ep_allgather_experts {
	enum ep_payload payload;
	int world, moe_tp, L, K, H;
};

/* Rank q's partial output of a token (x bf16 [H], idx/w [K]) into out [H];
 * acc float [H] and y bf16 [H] are scratch. Returns 1 when q holds any of
 * its experts (else out is +0). */
int ep_allgather_partial(const struct ep_allgather_experts *a, int q, const int64_t *idx, const float *w,
			 const uint16_t *x, uint16_t *out, float *acc, uint16_t *y);

/* The owner's output of a token: every rank's partial summed. 0 or -ENOMEM. */
int ep_allgather_row(const struct ep_allgather_experts *a, const int64_t *idx, const float *w, const uint16_t *x,
		     uint16_t *out);

#endif
