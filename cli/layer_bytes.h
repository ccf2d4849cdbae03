/* layer_bytes.h - a MoE layer's algorithm and wire bytes per phase, split intra/inter node.
 *
 * parallel-semantics.md section 7 ("bytes per phase and domain"), computed
 * by the reporting process from the run's geometry and routing alone (the
 * ranks' own per-op bytes are the op rows'): for every phase of the
 * configuration's mode, what each world rank sends each other one, summed
 * over the world's ranks, each (source, destination) pair counted as intra
 * (one node: world rank / --ranks-per-node; one host is one node) or inter.
 * cli/layer_bytes.c states the rows and row bytes of each phase.
 */
#ifndef EP_LAYER_BYTES_H
#define EP_LAYER_BYTES_H

#include "cli/bench.h"
#include "reports/results.h"

/* Every phase of the run's configuration and mode (a2a: ep_dispatch,
 * moe_tp_gather and moe_tp_reduce when moe_tp > 1, ep_combine,
 * attn_tp_gather when tp > 1; allgather: world_gather, world_reduce,
 * attn_tp_gather when tp > 1), in the order a pass runs them, into
 * out[EP_LAYER_MAX_PHASES]. rows_per_expert: the EP group moves a row per
 * (token, expert) (low-latency, Ascend), not per (token, destination rank)
 * (DeepEP's normal mode); Ascend semantics (run->cfg) always do. Returns the
 * number of phases, -EINVAL (experts that do not split over the EP ranks) or
 * -ENOMEM. */
int ep_layer_bytes(const struct ep_run *run, int rows_per_expert, struct ep_phase_bytes *out);

/* The phase a layer variant's op times: "dispatch" and "combine" (the
 * low-latency and Ascend variants' names) are ep_dispatch and ep_combine,
 * a phase's own name is itself; NULL for any other op (hooks,
 * "dispatch+combine"). */
const char *ep_layer_phase_of_op(const char *op);

#endif
