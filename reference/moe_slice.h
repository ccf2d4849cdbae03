/* moe_slice.h - which rows each rank puts into the MoE layer of a parallel configuration.
 *
 * parallel-semantics.md section 2 (a2a and allgather modes alike): after
 * attention every member of an attention-TP group holds the T_d rows of its
 * attention-DP group d; member i of the group takes the slice
 * [i c_d, (i+1) c_d) of them, c_d = ceil(T_d / tp), renumbered from 0:
 *   none        the rows that exist (the last slices may be short or empty);
 *   zero        c_d rows, zero rows past T_d (vLLM);
 *   replicate0  C = align(max_d T_d, tp) / tp rows for every group, copies
 *               of row 0 past T_d (MindIE).
 * The attention-TP all-gather puts row t of the group's output together
 * from member t / c back at t - (t / c) c (c = the slice length above).
 *
 * The MoE-EP group g = { g + k moe_tp } sees its ranks through a
 * struct ep_group_view (reference/inputs.h): routing drawn per world rank,
 * x rows drawn per attention-DP group, so that every rank of the world
 * regenerates any other's inputs.
 */
#ifndef EP_MOE_SLICE_H
#define EP_MOE_SLICE_H

#include <stdint.h>

#include "reference/inputs.h"

enum ep_slice_pad { EP_SLICE_NONE, EP_SLICE_ZERO, EP_SLICE_REPLICATE0 };

struct ep_slices {
	int world, tp, moe_tp, moe_ep, ndp; /* ndp = world / tp attention-DP groups */
	enum ep_slice_pad pad;
	int *tokens;       /* [ndp] T_d */
	int *step;         /* [ndp] c: slice length before clipping (C for replicate0) */
	int max_slice;     /* rows of the longest slice */
};

/* T_d = tokens_per_dp (or, with uneven, a value in [0, tokens_per_dp] drawn
 * from (seed, d); group 0 keeps it). 0 or -ENOMEM. */
int ep_slices_init(struct ep_slices *s, int world, int tp, int moe_tp, int moe_ep, enum ep_slice_pad pad,
		   int tokens_per_dp, int uneven, uint64_t seed);
void ep_slices_fini(struct ep_slices *s);

/* World rank r's slice: its first row in the group's T_d and its length. */
int ep_slice_first(const struct ep_slices *s, int r);
int ep_slice_len(const struct ep_slices *s, int r);

/* Rows of attention-DP group d after the attention-TP all-gather: T_d, or
 * tp x c with padding kept. */
int ep_slices_gathered(const struct ep_slices *s, int d);

/* The arrays of the group view of MoE-EP group g (each [moe_ep]; the view
 * points into them). */
struct ep_group_arrays {
	int *world_rank, *num_tokens, *x_key, *first, *real;
	struct ep_group_view view;
};
int ep_slices_group(const struct ep_slices *s, int g, struct ep_group_arrays *out);
void ep_group_arrays_fini(struct ep_group_arrays *a);

#endif
