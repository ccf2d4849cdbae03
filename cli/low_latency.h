/* low_latency.h - what others need of the low-latency variant (cli/low_latency.c): its collective's shape for a run. */
#ifndef EP_CLI_LOW_LATENCY_H
#define EP_CLI_LOW_LATENCY_H

#include "cli/bench.h"
#include "collectives/low_latency.h"

/* The collective's shape for a run of P ranks per node (P = R on one
 * host): N (num_max_dispatch_tokens_per_rank) defaults to T (rank 0 keeps
 * T even with --uneven-tokens), at least 1. */
void ep_ll_run_config(const struct ep_run *run, int P, struct ep_ll_config *cfg);

/* The collective context of a rank's low-latency state (what
 * ep_low_latency_variant.setup made), for a variant that shares the arena
 * with another mode and hands it over (cli/mixed.c: ep_ll_clean). */
struct ep_ll *ep_ll_variant_coll(void *st);

/* A parallel configuration's layer with moe_tp > 1 on one host: low-latency
 * dispatch and combine inside each strided MoE-EP group, the MoE-TP stage
 * between (cli/ll_layer.c). */
extern const struct ep_variant ep_ll_layer_variant;

#endif
