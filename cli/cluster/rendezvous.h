/* rendezvous.h - how the nodes of a job meet and stay in touch: every message behind a typed function.
 *
 * Join: node 0 listens on the master address; every other node connects
 * (retrying until the timeout) and says HELLO with its host name, rank
 * count, data address and its full configuration text with a hash. Node 0
 * refuses a node whose configuration differs, naming the first differing
 * field, and ends the whole job; otherwise it answers every node with the
 * node table (WELCOME).
 *
 * During the job the same connections carry, per sweep point: the ranks'
 * transport addresses (ADDRS, to node 0; TABLE, back to every node), each
 * node's raw results (RESULT, to node 0) and node 0's verdict (DONE); and
 * at any time heartbeats, a node's own failure (FAIL, to node 0) and node
 * 0's order to stop (ABORT, to all), and for the state block node 0's
 * request (STATE_ASK, to all) and each node's share (STATE, to node 0). A failure or an order to stop always
 * carries an exit status and one line; nobody reads meaning out of the
 * line. A closed connection or a node silent for longer than the timeout
 * plus 5 s ends the job on every node with a message naming the node.
 */
#ifndef EP_CLUSTER_RENDEZVOUS_H
#define EP_CLUSTER_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/cluster/endpoint.h"
#include "cli/cluster/env.h"
#include "collectives/transport/transport.h"

#define EP_HOST_MAX 64

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
int ep_cluster_join(struct ep_cluster **out, const struct ep_cluster_cfg *cfg, const char *config_text,
		    double timeout_s, int listen_fd, const char *node_addr, char *err, size_t len);
void ep_cluster_close(struct ep_cluster *cl);

/* --local-nodes: node 0's rendezvous socket on loopback, made before the
 * nodes fork, at *port (0: any free port, written back). The fd, or -1
 * with one line in err. */
int ep_cluster_local_listener(int *port, char *err, size_t len);

/* --local-nodes: node(ctx, k, fd) as child process k of this one for k in
 * [0, N), each named epbench-n<k> and killed when this process dies; node
 * 0 gets listen_fd, the others -1 (and close it). The child exits with
 * node's return value. 0 with the pids, or -1 with one line in err (and
 * none left running). listen_fd stays open here: the caller closes it. */
int ep_cluster_fork_nodes(int N, int listen_fd, int (*node)(void *ctx, int k, int fd), void *ctx, pid_t *pids,
			  char *err, size_t len);
const struct ep_node_info *ep_cluster_nodes(const struct ep_cluster *cl);

/* Serves the connections for up to wait_ms: heartbeats out, messages in.
 * Returns 0, or an exit status when the job must end (another node failed,
 * node 0 aborted, a node was lost or went silent) with the reason in msg. */
int ep_cluster_pump(struct ep_cluster *cl, int wait_ms, char *msg, size_t len);

/* Per point (messages of earlier points are dropped by ep_cluster_forget).
 * Sends return 0 or a negative code; a getter returns NULL (or 0) until
 * its message has arrived (through ep_cluster_pump). */

/* This node's n ranks' transport addresses, to node 0 (not from node 0). */
int ep_cluster_send_addrs(struct ep_cluster *cl, int point, const struct ep_transport_addr *a, int n);
/* Node 0: node's n addresses for point. */
const struct ep_transport_addr *ep_cluster_addrs(struct ep_cluster *cl, int node, int point, int n);
/* Node 0: the table of all n ranks' addresses, to every node. */
void ep_cluster_send_table(struct ep_cluster *cl, int point, const struct ep_transport_addr *a, int n);
/* Other nodes: the table of point (n addresses). */
const struct ep_transport_addr *ep_cluster_table(struct ep_cluster *cl, int point, int n);
/* This node's raw results of point, to node 0. */
int ep_cluster_send_result(struct ep_cluster *cl, int point, const void *data, size_t len);
/* Node 0: node's raw results of point and their length. */
const void *ep_cluster_result(struct ep_cluster *cl, int node, int point, size_t *len);
/* Node 0: the job's verdict on point, to every node. */
void ep_cluster_send_done(struct ep_cluster *cl, int point, int verdict);
/* Other nodes: 1 with *verdict once node 0's verdict on point arrived, else 0. */
int ep_cluster_done(struct ep_cluster *cl, int point, int *verdict);
/* The state block across nodes (cli/cluster/state_share.h). Node 0 asks
 * every other node for its share of point's state (ask: a number > 0 that
 * grows with every request); a node sees the latest request through
 * ep_cluster_state_asked (0: none) and answers with ep_cluster_send_state
 * (ask 0: a share sent unasked, when its own point ends stuck); node 0
 * reads each node's latest share, and the request it answers, with
 * ep_cluster_state. */
void ep_cluster_ask_state(struct ep_cluster *cl, int point, int ask);
int ep_cluster_state_asked(struct ep_cluster *cl, int point);
int ep_cluster_send_state(struct ep_cluster *cl, int point, int ask, const void *data, size_t len);
const void *ep_cluster_state(struct ep_cluster *cl, int node, int point, int *ask, size_t *len);
/* Serves the connections for up to wait_ms even after the job's end was
 * decided (a share may follow a node's failure): messages are stored, a stop
 * only kept. -1 when no connection is left. */
int ep_cluster_serve(struct ep_cluster *cl, int wait_ms);

/* Drops every stored message of point and earlier ones. */
void ep_cluster_forget(struct ep_cluster *cl, int point);

/* A node's own failure (exit status and one line), to node 0. */
void ep_cluster_send_fail(struct ep_cluster *cl, int code, const char *msg);
/* Node 0's order to stop (exit status and one line), to every node. */
void ep_cluster_abort(struct ep_cluster *cl, int code, const char *msg);

#endif
