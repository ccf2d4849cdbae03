/* progress.h - a sign of life on long runs: one status line on stderr.
 *
 * On a terminal (--progress auto, the default) one line is rewritten in
 * place: point k of M, what rank 0 does (setup, checking, warm-up i of W,
 * op iteration i of N), the elapsed time and an estimate of the time left;
 * it is erased before a table row is printed, so the table stays clean.
 * --progress on prints the same as plain lines (logs): one as each point
 * gets under way, then every few seconds, -q or not;
 * --progress off, -q, or a stderr that is not a terminal (under auto) show
 * nothing. The estimate counts timed and warm-up iterations of the timed
 * ops: points done, plus the current point's iterations done.
 */
#ifndef EP_PROGRESS_H
#define EP_PROGRESS_H

#include <stdint.h>

#include "cli/bench.h"
#include "collectives/sync.h"

struct ep_progress {
	int mode;                 /* 0 off, 1 in place (a terminal), 2 plain lines */
	int points, point;        /* M, and k (0-based) */
	int per_point;            /* iterations of a point: timed ops x (warm-up + iters) */
	int warmup, iters;
	const struct ep_variant *v;
	const struct ep_run_cfg *cfg;
	int64_t start_ns, last_ns;
	int shown;                /* a line is on the terminal */
};

/* mode: the --progress value (0 auto, 1 on, 2 off); quiet: -q. */
void ep_progress_init(struct ep_progress *p, int mode, int quiet, int points, const struct ep_variant *v,
		      const struct ep_run_cfg *cfg);
/* Point k starts. */
void ep_progress_point(struct ep_progress *p, int k);
/* From the supervisor about every 10 ms: rank 0's state (prints at most a
 * few times a second, or every few seconds in plain mode). */
void ep_progress_tick(void *p, const struct ep_rank_view *rank0);
/* Erases the line (before a table row, and at the end). */
void ep_progress_clear(struct ep_progress *p);

#endif
