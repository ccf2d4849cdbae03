/* layer_figures.h - the figures of a parallel configuration's MoE layer, from the routing and the timings.
 *
 * parallel-semantics.md section 7: tokens entering the layer after
 * de-duplication, rows per MoE-EP rank and their balancedness (the point's
 * imbalance, over the MoE-EP ranks: every EP group's sources counted, EP
 * rank q summing what its MoE-TP group receives), bytes and time per phase
 * (the table's op rows; per phase and domain, cli/layer_bytes.h), and the slowest rank of the slowest phase with
 * its groups. Computed by the reporting process, never by the ranks.
 */
#ifndef EP_LAYER_FIGURES_H
#define EP_LAYER_FIGURES_H

#include "cli/bench.h"
#include "reports/digest.h"
#include "reports/imbalance.h"
#include "reports/results.h"
#include "reference/moe_slice.h"

/* A low-latency run of a layer (moe_tp = 1: the MoE-EP group is the
 * world): its routing becomes the group's view (every rank dispatches its
 * attention-TP slice) and num_tokens the longest slice. The routing owns
 * the view (ep_command_routing_free). 0 or -ENOMEM (the run unchanged). */
int ep_layer_slice_run(struct ep_run *run);

/* The run's attention-TP slices (T_d from --tokens-per-dp or the point's
 * tokens x tp). 0 or -ENOMEM; ep_slices_fini frees them. */
int ep_layer_slices(const struct ep_run *run, struct ep_slices *sl);

/* Is the run a MoE layer (its resolved configuration other than plain EP)? */
int ep_layer_run(const struct ep_run *run);

/* The imbalance over the MoE-EP ranks of the layer's routing, every world
 * rank's top-k ids hashed in world order into h. NULL when out of memory. */
struct ep_imbalance *ep_layer_imbalance(const struct ep_run *run, struct ep_sha256 *h);

/* res->layer for the run (after the point ran: its slowest phase, and the
 * bytes of each phase it timed, cli/layer_bytes.h; rows_per_expert: the
 * variant's). */
void ep_layer_figures(const struct ep_run *run, int rows_per_expert, struct ep_run_result *res);

#endif
