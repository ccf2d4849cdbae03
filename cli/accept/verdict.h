/* verdict.h - PASS / DEGRADED / FAIL per node, per NIC, per node pair and for the job, with the figure that decided.
 *
 * Every figure is held to a reference, the first of: the same item's
 * figure in --reference (else that file's median over items of the same
 * kind); for a link's rate, the interface's nominal rate where it is a
 * real limit (a NIC, not veth, a bridge or loopback); else the median of
 * the same figure over the job's items of the same kind (its peers).
 * Below --fail-at percent of it: FAIL; below --degraded-at: DEGRADED.
 * Wrong data, a lost rank or node, a run that failed: FAIL whatever the
 * speed. A node whose preflight differs from node 0's in a rate, an MTU
 * or a version, or whose NIC counted errors during a run: DEGRADED, named.
 */
#ifndef EP_ACCEPT_VERDICT_H
#define EP_ACCEPT_VERDICT_H

#include <jansson.h>

#include "cli/accept/accept.h"
#include "cli/accept/item.h"

/* The judged job as JSON: {"items": [{scope, name, verdict, exit, why,
 * figures{}, checks[], flags[]}...], "exit": status}, items worst first. */
json_t *ep_accept_verdicts(const struct accept_args *a, const struct ep_accept_results *res);

/* Appends one item per NIC of every node (cli/accept/nic.c). */
void ep_accept_nic_items(json_t *items, const struct ep_accept_results *res);

/* Every item's figures against their references (cli/accept/reference.c):
 * a check each, and a lower verdict below the thresholds. */
void ep_accept_checks(json_t *items, const struct accept_args *a, json_t *ref_file);

#endif
