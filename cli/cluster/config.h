/* config.h - the configuration every node of a job must share, as text, hash and diff.
 *
 * Each node writes the options that change what runs ("key=value" lines)
 * and its chosen transport; node 0 compares every joining node's hash with
 * its own and, when they differ, names the first key whose values differ
 * ("--hidden differs: node 0 has 512, node 1 has 1024").
 */
#ifndef EP_CLUSTER_CONFIG_H
#define EP_CLUSTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cli/cluster/env.h"
#include "cli/options.h"

/* The configuration that must agree across nodes, as "key=value\n" lines. */
void ep_cluster_config_text(const struct ep_options *o, const struct ep_cluster_cfg *c,
			    const char *transport, char *buf, size_t len);
uint64_t ep_config_hash(const char *text);
/* Names the first key whose values differ: "--hidden differs: node 0 has 512,
 * node 1 has 1024". 0 when the texts agree, 1 otherwise. */
int ep_config_diff(const char *mine, const char *theirs, int their_node, char *out, size_t len);

#endif
