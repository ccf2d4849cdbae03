/* iperf.h - the link's rate between two nodes, measured by iperf3 in the same job.
 *
 * A virtual link's nominal speed is no limit (veth reports 10 Gb/s or
 * nothing whatever it does; rxe reports its netdev's), so a pair's rate
 * is measured: the first node of the pair serves one test (iperf3 -s -1),
 * the second runs a bidirectional client against it (--bidir, retrying
 * while the server is not up yet). Both block at most seconds + 30 s while
 * pump keeps the cluster's heartbeats going. No iperf3 on the node: the
 * object says so and nothing is measured.
 */
#ifndef EP_ACCEPT_IPERF_H
#define EP_ACCEPT_IPERF_H

#include <jansson.h>

#include "cli/accept/spawn.h"

/* {"gbps_fwd", "gbps_rev", "gbps" (their mean, per direction)} on the
 * client; {"served": true} on the server; {"error": "..."} on failure. */
json_t *ep_accept_iperf(int server, const char *server_addr, int port, double seconds, const char *dir, int step,
			ep_pump_fn pump, void *ctx, int *pump_rc);

#endif
