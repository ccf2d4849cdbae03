/* node_job.h - one node's part of a multi-node job, for every subcommand that runs across nodes.
 *
 * `epbench internode` and `epbench low-latency --nodes N` run the same node
 * job (cli/internode_job.c): resolution of the job's shape from options or
 * launcher variables, rendezvous and configuration hash, the exchange of
 * the ranks' transport addresses, supervision (a dead or silent node ends
 * the job everywhere), and node 0's table of all nodes' results. What
 * differs between the subcommands is a struct ep_node_job.
 */
#ifndef EP_NODE_JOB_H
#define EP_NODE_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "cli/bench.h"
#include "cli/cluster.h"
#include "cli/options.h"
#include "collectives/sync.h"
#include "collectives/transport/transport.h"
#include "reports/results.h"

/* What the node job shares with its ranks: one struct node_ctx per point,
 * mapped MAP_SHARED before fork and handed to every rank as
 * env->variant_ctx: the transport choice, the table of every rank's
 * transport address, and the figures each rank leaves for the node's report. */
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


struct ep_node_job {
	const char *command;   /* the subcommand: "internode", "low-latency" */
	/* The variant the ranks run under these options (its ranks find the
	 * node's struct node_ctx in env->variant_ctx). */
	const struct ep_variant *(*variant)(const struct ep_options *o);
	/* The command's defaults for a job of `nodes` nodes, once
	 * o->ranks_per_node is known, before the shapes are checked. May be NULL. */
	void (*prepare)(struct ep_options *o, int nodes);
	/* The routing as the header names it, and the command's own options
	 * ("key=value ...", or empty). */
	void (*describe)(const struct ep_options *o, char *routing, size_t rlen, char *extra,
			 size_t elen);
};

/* Parses argv (argv[0] is the subcommand), resolves the job and runs this
 * node's part (all nodes' with --local-nodes). Returns the exit status. */
int ep_node_job_main(const struct ep_node_job *job, int argc, char **argv);

#endif
