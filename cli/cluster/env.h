/* env.h - who this node is in a job: from the command line, else from the launcher that started it.
 *
 * The node count, this node's rank and node 0's address come from
 * --nodes/--node-rank/--master, else from the environment of a launcher
 * people already use, each from the first convention of one table that has
 * it: NNODES/NODE_RANK, torchrun (WORLD_SIZE/LOCAL_WORLD_SIZE, GROUP_RANK),
 * mpirun (OMPI_COMM_WORLD_*), srun (SLURM_*), plain WORLD_SIZE/RANK with
 * MASTER_ADDR. The result says which convention gave what, for the banner.
 */
#ifndef EP_CLUSTER_ENV_H
#define EP_CLUSTER_ENV_H

#include <stddef.h>

#include "cli/options.h"

/* Who this node is in the job. */
struct ep_cluster_cfg {
	int nodes, node_rank, ranks_per_node;
	char master_host[256];
	int master_port;
	char convention[160];   /* which options / variables gave nodes and rank */
	char master_from[96];   /* which gave the master address */
	int master_via_pmix;    /* master_host is still to be read through PMIx (cli/cluster/pmix.h) */
};

/* Environment lookup (getenv in the program; a table in tests). */
typedef const char *(*ep_env_fn)(const char *name);

/* Fills c from the options, else the environment. 0 or -EP_EUSAGE with one
 * line in err (e.g. no master address, a node rank outside [0, nodes)). */
int ep_cluster_resolve(const struct ep_options *o, ep_env_fn env, struct ep_cluster_cfg *c,
		       char *err, size_t len);

/* First host of a SLURM node list: "gpu[07-09,12],cpu1" -> "gpu07". 0 or -1. */
int ep_slurm_first_host(const char *list, char *out, size_t len);

#endif
