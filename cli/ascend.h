/* ascend.h - what others need of the Ascend variant (cli/ascend.c): its collective's problem and inputs for a run. */
#ifndef EP_CLI_ASCEND_H
#define EP_CLI_ASCEND_H

#include "cli/bench.h"
#include "collectives/ascend.h"
#include "reference/ascend_ref.h"

/* The collective's parameters for a plain EP run: every rank of the run
 * is an EP rank, BS = the run's tokens, quant with --dtype int8. */
void ep_ascend_run_params(const struct ep_run *run, struct ep_ascend_params *p);

/* The reference's inputs beyond the routing: the seed's smoothing scales
 * with --smooth-scales, shared_expert_x with --bias 1. */
void ep_ascend_run_inputs(const struct ep_run *run, struct ep_ascend_inputs *in);

#endif
