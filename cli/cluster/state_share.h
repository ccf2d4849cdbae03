/* state_share.h - one node's share of the state block, as sent to node 0, and node 0's block across nodes.
 *
 * A share is what node 0 cannot see of another node: its ranks' lines
 * (pid, process state, phase, op, iteration, whom they wait for) and the
 * traffic words its ranks wrote (collectives/traffic.h): for each of its
 * ranks, the row of pairs it sends on (expected rows, and the arrivals it
 * counts over shared memory) and the column of pairs it receives on (the
 * arrivals it counts over the network). Node 0 merges the shares into a
 * copy of its own area, so the matrix and the culprit are computed over
 * the whole job; a node that did not answer before the deadline is named,
 * and its pairs read as "no answer".
 *
 * The share is a flat record of fixed-size structs built and read only
 * here (only cells ever written travel: a rank's row holds its node's and
 * its rails' pairs, not all R); nothing outside this file knows its layout.
 */
#ifndef EP_CLUSTER_STATE_SHARE_H
#define EP_CLUSTER_STATE_SHARE_H

#include <stddef.h>
#include <stdio.h>

#include "cli/state_block.h"
#include "cli/supervise.h"
#include "collectives/traffic.h"

/* This node's share (malloc'ed, *len bytes), or NULL without a traffic area
 * or memory. */
void *ep_state_share_pack(const struct ep_state_scene *sc, size_t *len);

/* Is data a well-formed share for a job of num_ranks ranks? 1 or 0. */
int ep_state_share_valid(const void *data, size_t len, int num_ranks);

/* Node 0: merges a valid share into the merged area and the briefs (both
 * over all R ranks), and prints its ranks' lines on out (may be NULL). */
void ep_state_share_merge(const void *data, struct ep_traffic *merged, struct ep_rank_brief *b, FILE *out);

/* A copy of area t (R ranks) in fresh memory, for merging; free() it. */
struct ep_traffic *ep_state_share_copy(const struct ep_traffic *t);

#endif
