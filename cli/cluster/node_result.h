/* node_result.h - one node's raw results of a point, as sent to node 0, and the job's result made of them.
 *
 * After a point each node packs what its ranks left (their result blocks,
 * per-iteration times, wrong-row counts and network figures) into one
 * RESULT payload; node 0 unpacks every node's into job-wide arrays,
 * aggregates them with the launcher's own code (ep_launch_collect), and
 * adds the per-node and per-link figures.
 */
#ifndef EP_NODE_RESULT_H
#define EP_NODE_RESULT_H

#include <stddef.h>

#include "cli/cluster/endpoint.h"
#include "cli/cluster/rendezvous.h"
#include "cli/launcher.h"

/* A node's RESULT payload: malloc'ed, *len bytes. P local ranks; the raw
 * blocks from ep_launch (keep_raw), the figures from the node context. */
char *ep_node_result_pack(const struct ep_variant *v, const struct ep_run *run, int P,
			  const struct ep_run_result *mine, const struct ep_raw_results *raw,
			  const struct ep_rank_figures *figures, size_t *len);

/* Its size for this point (every node's is the same). */
size_t ep_node_result_bytes(const struct ep_variant *v, const struct ep_run *run, int P);

/* The status a node put in its payload. */
int ep_node_result_code(const char *blob);

/* Node 0: the job's result from every node's payload (blobs[k] of node k,
 * each ep_node_result_bytes long). 0 or -ENOMEM. */
int ep_node_result_aggregate(const struct ep_variant *v, const struct ep_run *run, int nodes, int P,
			     const struct ep_node_info *info, const char *const *blobs,
			     struct ep_run_result *res);

#endif
