/* plot.h - gnuplot scripts for results: a sweep, a comparison, a node-pair heatmap.
 *
 * Each function writes one self-contained gnuplot script (data inline, in
 * named data blocks) that draws into `out` with the terminal its suffix
 * names (.svg or .png); cli/plot.c runs gnuplot on it.
 *   sweep     x: the swept size (tokens, hidden or ranks; log scale when
 *             the sweep is geometric); y: algbw (GB/s) or the median time
 *             (us); one series per file and op; for algbw the host's copy
 *             bandwidth per rank, measured in the same run, as a dashed
 *             roofline (not for internode results, whose limit is the link)
 *   compare   B against A: delta % per point and op with the bootstrap
 *             interval as whiskers (reports/compare.h)
 *   links     internode: GB/s per node pair (source x destination) of one op
 */
#ifndef EP_PLOT_H
#define EP_PLOT_H

#include <stdio.h>

#include "reports/result_json.h"

enum ep_plot_y { EP_PLOT_ALGBW, EP_PLOT_TIME };

/* 0, or -EP_EUSAGE with one line in err (nothing to draw). */
int ep_plot_sweep(FILE *script, const char *out, const struct ep_doc *docs, int ndocs, enum ep_plot_y y,
		  char *err, size_t len);
int ep_plot_compare(FILE *script, const char *out, const struct ep_doc *a, const struct ep_doc *b,
		    double confidence, char *err, size_t len);
/* op: the op to draw (NULL: the first of the first internode point). */
int ep_plot_links(FILE *script, const char *out, const struct ep_doc *d, const char *op, char *err, size_t len);

#endif
