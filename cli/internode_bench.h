/* internode_bench.h - what the internode variant (in the ranks) and the node job (the launcher) share.
 *
 * The node job maps one struct node_ctx per point (MAP_SHARED, before fork)
 * and hands it to its ranks as env->variant_ctx: the transport choice, the
 * table of every rank's transport address, and the figures each rank leaves
 * for the node's report.
 */
#ifndef EP_INTERNODE_BENCH_H
#define EP_INTERNODE_BENCH_H

#include <stdint.h>

#include "cli/cluster.h"
#include "cli/options.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"
#include "reports/results.h"

#define MAX_LOCAL 32

/* One rank's network figures, written at the end of its timed loops. */
struct rank_figures {
	uint64_t rdma_bytes[EP_MAX_OPS];
	uint64_t wire_bytes[EP_MAX_OPS];
	uint64_t nvl_bytes[EP_MAX_OPS];
	uint64_t link_bytes[EP_MAX_OPS][EP_MAX_NODES]; /* put to node m */
	double arrival_us[EP_MAX_OPS][EP_MAX_NODES];   /* median: op start -> last chunk from m */
};

/* The node's shared context for one point (MAP_SHARED, made before fork). */
struct node_ctx {
	int nodes, per_node, node;
	char host[EP_ADDR_STR_MAX];            /* this node's data address */
	const struct ep_transport_ops *ops;    /* static table: same address after fork */
	char ib_dev[64];
	int gid_index;
	uint64_t job_id;
	struct ep_flag published;              /* local ranks whose address is in addr[] */
	struct ep_flag table_ready;            /* 1 once addr[] holds every rank's */
	struct ep_transport_addr addr[EP_MAX_NODES * MAX_LOCAL];
	struct rank_figures figures[MAX_LOCAL];
};

#endif
