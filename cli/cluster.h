/* cluster.h - the nodes of one internode job: who they are, how they meet, how they stay in touch.
 *
 * Resolution: the node count, this node's rank and node 0's address come
 * from the command line, else from the environment of a launcher people
 * already use (NNODES/NODE_RANK/MASTER_*, torchrun, mpirun, srun); the
 * result says which convention was read, for the banner.
 *
 * Rendezvous: node 0 listens on the master address; every other node
 * connects (retrying until --timeout) and sends a HELLO carrying its host
 * name, rank count, chosen transport and its full configuration as text with
 * a hash. Node 0 refuses a node whose configuration differs, naming the first
 * differing field, and ends the whole job; otherwise it answers every node
 * with the node table.
 *
 * During the job the same connections carry, as framed messages: the
 * transport addresses of every rank (per sweep point), heartbeats, a node's
 * failure (FAIL), node 0's order to stop (ABORT), each node's raw results
 * (RESULT) and node 0's verdict per point (DONE). A closed connection or a
 * node silent for longer than the timeout ends the job on every node with a
 * message naming the node.
 */
#ifndef EP_CLUSTER_H
#define EP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "cli/options.h"

#define EP_HOST_MAX 64
#define EP_ADDR_STR_MAX 48

/* Who this node is in the job. */
struct ep_cluster_cfg {
	int nodes, node_rank, ranks_per_node;
	char master_host[256];
	int master_port;
	char convention[160];   /* which options / variables gave nodes and rank */
	char master_from[96];   /* which gave the master address */
};

/* Environment lookup (getenv in the program; a table in tests). */
typedef const char *(*ep_env_fn)(const char *name);

/* Fills c from the options, else the environment. 0 or -EP_EUSAGE with one
 * line in err (e.g. no master address, a node rank outside [0, nodes)). */
int ep_cluster_resolve(const struct ep_options *o, ep_env_fn env, struct ep_cluster_cfg *c,
		       char *err, size_t len);

/* First host of a SLURM node list: "gpu[07-09,12],cpu1" -> "gpu07". 0 or -1. */
int ep_slurm_first_host(const char *list, char *out, size_t len);

/* The configuration that must agree across nodes, as "key=value\n" lines. */
void ep_cluster_config_text(const struct ep_options *o, const struct ep_cluster_cfg *c,
			    const char *transport, char *buf, size_t len);
uint64_t ep_config_hash(const char *text);
/* Names the first key whose values differ: "--hidden: node 0 has 512, node 1 has 1024".
 * 0 when the texts agree, 1 otherwise. */
int ep_config_diff(const char *mine, const char *theirs, int their_node, char *out, size_t len);

/* One node as node 0 announces it. */
struct ep_node_info {
	char host[EP_HOST_MAX];
	char addr[EP_ADDR_STR_MAX];  /* numeric IPv4 for data connections */
	int ranks;
};

struct ep_cluster;

/* Meets the other nodes. listen_fd >= 0: node 0 uses this listening socket
 * (made by --local-nodes before forking); node_addr overrides this node's
 * data address. Blocks at most timeout_s. 0, or -EP_ETIMEDOUT (master
 * unreachable, nodes missing), -EP_EMISMATCH (configuration differs),
 * -EP_EUSAGE, -errno; err holds the line to print. */
int ep_cluster_join(struct ep_cluster **out, const struct ep_cluster_cfg *cfg,
		    const char *config_text, const char *transport, double timeout_s, int listen_fd,
		    const char *node_addr, char *err, size_t len);
void ep_cluster_close(struct ep_cluster *cl);

const struct ep_node_info *ep_cluster_nodes(const struct ep_cluster *cl);

/* Messages between node launchers. */
enum ep_msg {
	EP_MSG_HELLO = 1, EP_MSG_WELCOME, EP_MSG_REFUSE, EP_MSG_HEARTBEAT, EP_MSG_ADDRS,
	EP_MSG_TABLE, EP_MSG_FAIL, EP_MSG_ABORT, EP_MSG_RESULT, EP_MSG_DONE,
};

/* Serves the connections for up to wait_ms: heartbeats out, messages in.
 * Returns 0, or an exit status when the job must end (another node failed,
 * node 0 aborted, a node was lost or went silent) with the reason in msg. */
int ep_cluster_pump(struct ep_cluster *cl, int wait_ms, char *msg, size_t len);

/* Sends one message to node `node` (node 0 sends to any, others only to 0). */
int ep_cluster_send(struct ep_cluster *cl, int node, enum ep_msg type, const void *data,
		    size_t len);
/* Node 0: the same message to every other node (best effort). */
void ep_cluster_broadcast(struct ep_cluster *cl, enum ep_msg type, const void *data, size_t len);

/* The last message of `type` received from `node` for point `point` (the first
 * 4 bytes of ADDRS/TABLE/RESULT/DONE payloads carry the point), or NULL.
 * Owned by the cluster until ep_cluster_forget(point). */
const void *ep_cluster_received(const struct ep_cluster *cl, int node, enum ep_msg type,
				int point, size_t *len);
void ep_cluster_forget(struct ep_cluster *cl, int point);

#endif
