/* transform.h - the stand-in for expert computation between dispatch and combine.
 *
 * The harness applies it to every received row before combine, and the
 * reference applies the same function to the rows it expects. Its factor
 * depends on (rank, local expert) and is not 1, so a row that returns to
 * the wrong token, from the wrong rank or under the wrong expert changes
 * the combined result.
 */
#ifndef EP_TRANSFORM_H
#define EP_TRANSFORM_H

#include <stdint.h>

/* y[c] = bf16(float(x[c]) * a(rank, e) + b(rank)); local_expert -1 = none. */
void ep_expert_transform(int rank, int local_expert, const uint16_t *x, int hidden,
			 uint16_t *y);

/* The weight an expert returns for a slot: w * a(rank, e), or 0 when the
 * slot's expert is not on this rank (local_expert < 0). */
float ep_expert_weight(int rank, int local_expert, float w);

/* The expert a received row is processed by: its smallest local id, or -1. */
int ep_row_expert(const int64_t *recv_topk_idx_row, int num_topk);

#endif
