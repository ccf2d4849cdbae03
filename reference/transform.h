/* transform.h - the stand-in for expert computation between dispatch and combine.
 *
 * The harness applies it to every received row before combine, and the
 * reference applies the same function to the rows it expects. Its factor
 * depends on (rank, local expert) and is not 1, so a row that returns to
 * the wrong token, from the wrong rank or under the wrong expert changes
 * the combined result.
 *
 * NARROW: y = bf16(float(x) * a(rank, e) + b(rank)), a in [0.75, 1.25).
 * WIDE: y[c] = bf16(float(x[c]) * f(rank, e, c mod 64)), f = s * m(c mod 64)
 * * 2^k with sign s and k in {-10, 0, 10} hashed from (rank, e, c mod 64)
 * and m in {1, 1.5} from the column alone. One token's returns from
 * different ranks and slots are then, column by column, large values, their
 * exact negations (same k and m, other sign: a sixth of all pairs) and
 * terms 2^10 or 2^20 smaller: summing them in another order, unfusing a
 * multiply-add or rounding early changes the bf16 result.
 */
#ifndef EP_TRANSFORM_H
#define EP_TRANSFORM_H

#include <stdint.h>

#include "reference/inputs.h"

/* y as above for payload; local_expert -1 = none. */
void ep_expert_transform(enum ep_payload payload, int rank, int local_expert, const uint16_t *x, int hidden,
			 uint16_t *y);

/* The weight an expert returns for a slot: w * a(rank, e), or 0 when the
 * slot's expert is not on this rank (local_expert < 0). */
float ep_expert_weight(int rank, int local_expert, float w);

/* The expert a received row is processed by: its smallest local id, or -1. */
int ep_row_expert(const int64_t *recv_topk_idx_row, int num_topk);

#endif
