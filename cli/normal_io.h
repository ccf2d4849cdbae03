/* normal_io.h - one rank's tensors in normal (intranode or internode) mode.
 *
 * Both normal-mode variants hold the same things: the inputs regenerated
 * from the seed (x and its scales, routing, biases, layout), the last
 * dispatch's outputs and combine's outputs. This module owns them, applies
 * the expert stand-in between dispatch and combine, and writes them out for
 * --dump, so a variant only adds its collective.
 */
#ifndef EP_NORMAL_IO_H
#define EP_NORMAL_IO_H

#include <stdint.h>

#include "cli/damage.h"

#include "cli/bench.h"
#include "collectives/intranode.h"
#include "collectives/layout.h"

struct ep_normal_io {
	struct ep_shape shape;        /* the run's, with this rank's own token count */
	int rank;                     /* global rank */
	enum ep_payload payload;      /* the values inputs carry (--payload) */
	int nodes;                    /* > 0: num_tokens_per_rdma_rank is kept for that many nodes */
	void *x;                      /* [T][H] bf16, or fp8 bytes (INT8: bf16, quantised by dispatch) */
	float *x_scales;              /* [T][H/128], FP8 only */
	int64_t *topk_idx;            /* [T][K], NULL when with_topk = 0 */
	float *topk_weights;          /* [T][K] or NULL */
	uint16_t *bias[2];            /* [T][H] or NULL */
	struct ep_layout layout;      /* of this rank's routing */
	struct ep_dispatch_out out;   /* the last dispatch's outputs (the collective's memory) */
	uint16_t *combined_x;         /* [T][H] */
	float *combined_w;            /* [T][K] or NULL */
};

/* Regenerates rank `rank`'s inputs. idx/weights are its routing rows for
 * run->shape.num_tokens tokens (the reference's); ranks_per_node > 0 also
 * fills num_tokens_per_rdma_rank. 0 or -ENOMEM (io is then empty). */
int ep_normal_io_init(struct ep_normal_io *io, const struct ep_run *run, int rank,
		      const int64_t *idx, const float *weights, int ranks_per_node);
void ep_normal_io_fini(struct ep_normal_io *io);

/* The dispatch input that io's tensors make. */
struct ep_dispatch_in ep_normal_io_dispatch_in(const struct ep_normal_io *io);

/* The experts: every received row dequantised and transformed per (rank,
 * local expert) into combine_x [M][H], weights into combine_w [M][K]. */
void ep_normal_io_apply_experts(const struct ep_normal_io *io, uint16_t *combine_x,
				float *combine_w);

/* --dump: every tensor as DIR/rank<N>/<name>.npy (DeepEP's names);
 * combine_x and combine_w are the combine inputs the collective holds (the
 * expert stand-in's outputs and weights), so that an outside tool can
 * recompute combined_x and combined_topk_weights from the dump alone.
 * 0 or -errno. */
int ep_normal_io_dump(const struct ep_normal_io *io, const char *dir, const uint16_t *combine_x,
		      const float *combine_w);

/* The views of dispatch's outputs for the data faults (received rows
 * first) and of combine's; how many were written to v (at most max). */
int ep_normal_io_dispatch_outputs(const struct ep_normal_io *io, struct ep_tensor_view *v, int max);
int ep_normal_io_combine_outputs(const struct ep_normal_io *io, struct ep_tensor_view *v, int max);

/* An upper estimate of the private memory one normal-mode rank allocates for
 * its tensors and its reference (bytes), capacity being its receive rows:
 * the launcher adds the collective's own and refuses what would not fit. */
size_t ep_normal_rank_bytes(const struct ep_shape *s, size_t capacity);

/* DeepEP's dispatch bytes per row: payload plus float scales. */
uint64_t ep_normal_dispatch_row_bytes(const struct ep_shape *s);

#endif
