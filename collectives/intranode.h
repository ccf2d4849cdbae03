/* intranode.h - DeepEP normal dispatch/combine between ranks sharing memory.
 *
 * Semantics are DeepEP V1's (csrc/kernels/intranode.cu, deep_ep/buffer.py;
 * the README's "How it checks" section): received rows
 * grouped by source rank, then source token; local expert ids with -1 and
 * weight 0 elsewhere; combine sums in fp32 from the bias (or +0) over the
 * destination ranks in ascending order and rounds once to BF16.
 *
 * Data path: every rank exposes a receive area and a combine area in one
 * shared arena. Once the layout is known (the notify step), a sender writes
 * each token straight into its row of every destination's receive area (one
 * copy per received byte); combine reads the partial rows where they lie, in
 * the peers' combine areas, and reduces them (one read per byte).
 *
 * Synchronisation: barriers of collectives/sync, each a named phase. Output
 * pointers refer to shared memory and stay valid until the next dispatch.
 */
#ifndef EP_INTRANODE_H
#define EP_INTRANODE_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ep.h"
#include "collectives/layout.h"
#include "collectives/recv_area.h"
#include "collectives/sync.h"

/* A rank's view of the collective; process-private, points into the arena. */
struct ep_intranode {
	struct ep_shape shape;
	int rank;
	size_t capacity;               /* receive rows per rank */
	struct ep_waiter *waiter;
	int32_t *counts;               /* shared [R][R]: row i = num_tokens_per_rank of rank i */
	int32_t *expert_counts;        /* shared [R][E] */
	struct ep_recv_area *areas;    /* [R] */
	/* handle (valid after a non-cached dispatch) */
	int32_t *rank_prefix_matrix;   /* [R][R] inclusive prefix over sources */
	uint8_t *is_token_in_rank;     /* [T][R] copy of the dispatch layout */
	int32_t *num_recv_tokens_per_expert; /* [L] counts or prefix sums */
	size_t num_recv;               /* M */
	int have_handle;
	int8_t *quant_row;             /* [H] INT8 send staging */
};

/* Arena bytes for R ranks with cap receive rows each (shared, page aligned). */
size_t ep_intranode_arena_bytes(const struct ep_shape *s, size_t capacity);
/* Private (heap) bytes one rank's context allocates: an upper estimate. */
size_t ep_intranode_rank_bytes(const struct ep_shape *s);

/* An arena as every rank sees it, without a context: the count rows [R][R]
 * every rank published (valid after a dispatch's notify step) and rank
 * `rank`'s receive area. */
void ep_intranode_arena_view(const struct ep_shape *s, size_t capacity, void *arena, int rank, int32_t **counts,
			     struct ep_recv_area *area);

/* Binds a rank to an arena mapped in every rank at the same address (mapped
 * before fork, zero-filled). Allocates private scratch. 0 or -ENOMEM. */
int ep_intranode_init(struct ep_intranode *ctx, const struct ep_shape *s, int rank,
		      void *arena, size_t capacity, struct ep_waiter *w);
void ep_intranode_fini(struct ep_intranode *ctx);

/* Dispatch: collective, blocks until every rank's rows for this rank have
 * landed. Non-cached runs the notify step (counts exchange) first; cached
 * reuses the handle of the previous non-cached dispatch (DeepEP's cached
 * mode: payload and scales only). Returns 0, -EP_ETIMEDOUT, or -EP_ENOSPC
 * when some rank's rows exceed the capacity (every rank sees the same
 * counts, so all fail together instead of hanging). */
int ep_intranode_dispatch(struct ep_intranode *ctx, const struct ep_dispatch_in *in,
			  int cached, struct ep_dispatch_out *out);

/* Where this rank writes its combine input before calling combine: bf16
 * [M][H] and weights [M][K], rows in dispatch receive order. */
uint16_t *ep_intranode_combine_x(struct ep_intranode *ctx);
float *ep_intranode_combine_w(struct ep_intranode *ctx);

/* Combine: collective, blocks. For each own token, sums the rows of every
 * destination rank (ascending) from bias0 + bias1 (each [T][H] bf16 or NULL)
 * and rounds once into combined_x [T][H]; combined_w [T][K] (may be NULL)
 * sums the weights the same way. Needs a previous dispatch. */
int ep_intranode_combine(struct ep_intranode *ctx, const uint16_t *bias0,
			 const uint16_t *bias1, uint16_t *combined_x, float *combined_w);

#endif
