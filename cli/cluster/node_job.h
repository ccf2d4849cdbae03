/* node_job.h - one node's part of a cluster job, for every command that runs across nodes.
 *
 * `epbench internode` and `epbench low-latency --nodes N` run the same node
 * job: the job's shape from options or launcher variables
 * (cli/cluster/env.h), every point checked before anyone meets, the
 * rendezvous with a configuration hash (cli/cluster/rendezvous.h), then the
 * command's sweep (cli/sweep.h) with this node as its runner. For each
 * point the node maps a shared context for its ranks (their endpoints'
 * addresses, their figures: cli/cluster/endpoint.h), launches them and
 * serves the cluster connections while they run (forwarding the addresses
 * to node 0 and the table back, relaying failures). Then each node plays
 * its role: other nodes report their raw results to node 0 and wait for
 * its verdict; node 0 gathers everyone's and prints the one table of the
 * job, or, when a point failed, aborts the job on every node with the
 * status and the reason. With --local-nodes every node is a child process
 * of this one, over loopback.
 */
#ifndef EP_NODE_JOB_H
#define EP_NODE_JOB_H

#include "cli/command.h"
#include "cli/options.h"

/* Resolves the job for cmd under o, runs this node's part (every node's
 * with --local-nodes); returns the exit status. */
int ep_node_job_main(const struct ep_command *cmd, struct ep_options *o, const char *cmdline);

#endif
