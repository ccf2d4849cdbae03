/* group.h - all-gather and reduce inside groups of ranks that share memory.
 *
 * The collectives of a parallel configuration's MoE layer around EP
 * dispatch and combine (parallel-semantics.md sections 2-3): the MoE-TP
 * all-gather and reduce, the attention-TP all-gather, and allgather mode's
 * world all-gather and reduce-scatter. Every member's data already lies in
 * shared memory (a receive area, a combine output, a published slice), so
 * a gather is one copy per received byte and a reduce one read of every
 * partial row, straight from where the peers left them.
 *
 * Synchronisation: each call opens and closes with ep_barrier (node-wide),
 * so every rank of the node calls it the same number of times, whatever
 * its group: the opening barrier orders the peers' writes before the reads,
 * the closing one keeps a peer from overwriting what is still being read.
 * Both wait with the waiter's deadline; a timeout returns -EP_ETIMEDOUT.
 * No allocation, no printing.
 */
#ifndef EP_GROUP_H
#define EP_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/sync.h"

/* One member's rows as the gather reads them. */
struct ep_group_piece {
	const void *data; /* rows * row_bytes bytes */
	size_t rows;
};

/* out = the pieces one after another, each rows * row_bytes bytes, for
 * every tensor of a row (ntensors pieces per member, tensor k of member i at
 * pieces[i * ntensors + k], written to outs[k]). Collective. 0 or -EP_ETIMEDOUT. */
int ep_group_gather(struct ep_waiter *w, const struct ep_group_piece *pieces, int members, int ntensors,
		    const size_t *row_bytes, void *const *outs);

/* out[r] = bf16(sum over members in order of float(parts[i][r])), rows
 * [0, rows) of H columns: the sum starts with the first two members added
 * (pair) or with +0 plus the first (no pair), one rounding at the end
 * (collectives/combine_kernels.h). Collective. 0, -EP_ETIMEDOUT, or -EINVAL
 * for no member or more than 4096. */
int ep_group_reduce(struct ep_waiter *w, const uint16_t *const *parts, int members, int pair, size_t rows, size_t H,
		    uint16_t *out);
/* ep_group_reduce with row r written to outs[r] (H columns) instead of
 * out + r H: sums straight to where the next step reads them (a
 * low-latency combine's packed positions, its zero-copy buffer).
 * Collective. 0, -EP_ETIMEDOUT or -EINVAL as above. */
int ep_group_reduce_to(struct ep_waiter *w, const uint16_t *const *parts, int members, int pair, size_t rows, size_t H,
		       uint16_t *const *outs);

#endif
