/* report.h - what `epbench accept` says: the summary on stdout, the Markdown report, the JSON.
 *
 * Node 0 writes them once the job ends, whatever ended it: what was
 * measured before a failure is never dropped. A report that cannot be
 * written is a failure (exit 3 naming the path), not a quiet exit 0.
 */
#ifndef EP_ACCEPT_REPORT_H
#define EP_ACCEPT_REPORT_H

#include <jansson.h>
#include <stdio.h>

#include "cli/accept/accept.h"
#include "cli/preflight.h"

/* One node's preflight as JSON (schema epbench-preflight/1). */
json_t *ep_accept_preflight_json(const struct ep_preflight *pf);

/* The Markdown report of a judged job (doc: the JSON report). */
void ep_accept_markdown(FILE *out, json_t *doc);

#endif
