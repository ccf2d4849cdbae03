/* endpoint.h - a node rank's network endpoint, shared by every variant that runs across nodes.
 *
 * The node job (cli/cluster/node_job.c) maps one struct ep_node_ctx per
 * point, MAP_SHARED before its ranks fork, and hands it to every rank as
 * env->variant_ctx: the transport the job chose, the table of every rank's
 * transport address, and the figures each rank leaves for the node's report.
 *
 * A rank of a node job, whatever it runs (internode, low-latency):
 *   ep_endpoint_open     creates its endpoint with the job's transport; the
 *                        network deadline is a second shorter than the
 *                        node's own, so that when a node stalls, the ranks
 *                        waiting on it over the network give up first and
 *                        the report names the stalled node, not a local
 *                        rank caught behind it;
 *   (its collective registers memory with e->net)
 *   ep_endpoint_connect  publishes its address, waits for the node job's
 *                        table of every rank's, connects to its peers;
 *   ep_endpoint_arrived  after each receive: when each node's data landed;
 *   ep_endpoint_figures  after an op's timed loop: the op's bytes per link
 *                        and the median arrival per node, for the report;
 *   ep_endpoint_close    at once when the rank failed (its peers' goodbyes
 *                        would only delay the report by another timeout).
 */
#ifndef EP_ENDPOINT_H
#define EP_ENDPOINT_H

#include <stdint.h>

#include "cli/bench.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"
#include "reports/results.h"

#ifndef EP_MAX_NODES
#define EP_MAX_NODES 32     /* nodes in one job */
#endif
#define EP_MAX_LOCAL 32     /* ranks per node */
#define EP_ADDR_STR_MAX 48  /* a node's numeric IPv4 address, as text */

/* One rank's network figures of every op, written after the op's timed loop. */
struct ep_rank_figures {
	uint64_t rdma_bytes[EP_MAX_OPS];                /* DeepEP's logical bytes (own node included) */
	uint64_t wire_bytes[EP_MAX_OPS];                /* bytes put on the network */
	uint64_t nvl_bytes[EP_MAX_OPS];                 /* DeepEP's bytes within the node */
	uint64_t link_bytes[EP_MAX_OPS][EP_MAX_NODES];  /* put to node m */
	double arrival_us[EP_MAX_OPS][EP_MAX_NODES];    /* median: op start -> last data from m */
};

/* The node's shared context for one point (MAP_SHARED, made before fork). */
struct ep_node_ctx {
	int nodes, per_node, node;
	char host[EP_ADDR_STR_MAX];            /* this node's data address */
	const struct ep_transport_ops *ops;    /* static table: same address after fork */
	char ib_dev[64];
	int gid_index;
	uint64_t job_id;
	struct ep_flag published;              /* local ranks whose address is in addr[] */
	struct ep_flag table_ready;            /* 1 once addr[] holds every rank's */
	struct ep_transport_addr addr[EP_MAX_NODES * EP_MAX_LOCAL];
	struct ep_rank_figures figures[EP_MAX_LOCAL];
};

/* One rank's endpoint (process-private). */
struct ep_endpoint {
	struct ep_node_ctx *ctx;
	struct ep_waiter *waiter;
	int rank, node, local;      /* global rank, its node, its index in the node */
	struct ep_transport net;
	int up;                     /* net initialised */
	int ring;                   /* arrival records kept per op: the last min(iters, 4096) */
	int64_t *arrivals;          /* [EP_MAX_OPS][ring][nodes] ns from the op's start */
	int narr[EP_MAX_OPS];
};

/* Creates the endpoint of env's rank in a job of num_ranks ranks. 0 or a
 * negative code; the rank's message then names it, its node and the cause. */
int ep_endpoint_open(struct ep_endpoint *e, struct ep_bench_env *env, int num_ranks);

/* Publishes this rank's address, waits (bounded by the rank's timeout)
 * until the node job has every rank's, and connects to the npeers ranks of
 * peers. what names them in a failure ("its rail peers"). 0 or a code. */
int ep_endpoint_connect(struct ep_endpoint *e, const int *peers, int npeers, const char *what);

/* Records a failure of this rank's setup: "rank q (node n): what: cause". */
int ep_endpoint_fail(struct ep_endpoint *e, int rc, const char *what);

/* A receive of op completed: arrival_ns[m] = when node m's data landed,
 * from the op's start (the latest ring entries count). Never blocks. */
void ep_endpoint_arrived(struct ep_endpoint *e, int op, const int64_t *arrival_ns);

/* After op's timed loop: its figures into the node context. net_bytes[m]
 * are the bytes this rank put to node m per op; the wire bytes are their sum. */
void ep_endpoint_figures(struct ep_endpoint *e, int op, uint64_t rdma, uint64_t nvl,
			 const uint64_t *net_bytes);

/* Closes the endpoint (accepts one never opened). */
void ep_endpoint_close(struct ep_endpoint *e);

#endif
