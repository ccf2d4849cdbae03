/* item.h - one judged item of an acceptance job (a node, a NIC, a node pair, the job) and what judges read.
 *
 * An item is a JSON object {scope, name, verdict, exit, why, figures{},
 * checks[], flags[]}. It starts PASS ("every check passed"); each finding
 * can only lower it (ep_item_lower keeps the worst finding's reason, and
 * folds every finding's exit status in the one severity order). Objects
 * from other nodes and files are read through ep_item_str and
 * json_number_value: never trusted to hold what they should.
 */
#ifndef EP_ACCEPT_ITEM_H
#define EP_ACCEPT_ITEM_H

#include <jansson.h>

#include "cli/accept/accept.h"

enum ep_av { EP_AV_PASS, EP_AV_DEGRADED, EP_AV_FAIL };

const char *ep_av_name(enum ep_av v);

json_t *ep_item_new(const char *scope, const char *name);
enum ep_av ep_item_level(json_t *it);
/* Lowers it to v (never raises it) with why; folds code into its exit status. */
void ep_item_lower(json_t *it, enum ep_av v, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A note that does not change the verdict. */
void ep_item_flag(json_t *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A figure (kept only when positive and finite), and reading one back (0: none). */
void ep_item_fig(json_t *it, const char *key, double v);
double ep_item_get(json_t *it, const char *key);

/* A string member, "" when absent or not a string. */
const char *ep_item_str(json_t *o, const char *key);
/* Node's object of step (NULL when the step did not finish or it never came). */
json_t *ep_result_of(const struct ep_accept_results *res, int step, int node);
/* The step of kind k (NODE a; PAIR a-b), or -1. */
int ep_step_find(const struct ep_accept_results *res, enum ep_step_kind k, int a, int b);

/* Preflight items that must agree across nodes: port and interface rates
 * and MTUs, the ports' common rate, kernel and rdma-core versions (not
 * addresses or GIDs, which differ by design). */
int ep_pf_compared(const char *name);
/* The value of the item called name in a preflight object, or NULL. */
const char *ep_pf_value(json_t *pf, const char *name);

#endif
