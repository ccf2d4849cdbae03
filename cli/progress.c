/* progress.c - the status line of long runs (see progress.h). */
#include "cli/progress.h"

#include <stdio.h>
#include <unistd.h>

#define TERM_PERIOD_NS (200 * 1000 * 1000LL)    /* a terminal line: 5 times a second */
#define PLAIN_PERIOD_NS (5 * 1000 * 1000 * 1000LL) /* --progress on: a line every 5 s */

void ep_progress_init(struct ep_progress *p, int mode, int quiet, int points, const struct ep_variant *v,
		      const struct ep_run_cfg *cfg)
{
	*p = (struct ep_progress){.points = points, .v = v, .cfg = cfg, .warmup = cfg->warmup, .iters = cfg->iters};
	if (mode == 1)
		p->mode = 2;
	else if (mode == 0 && !quiet && isatty(STDERR_FILENO))
		p->mode = 1;
	for (int i = 0; i < v->nops; i++)
		if (ep_op_present(&v->ops[i], cfg) && ep_op_timed(&v->ops[i], cfg))
			p->per_point += cfg->warmup + cfg->iters;
	p->start_ns = p->last_ns = ep_now_ns();
}

void ep_progress_point(struct ep_progress *p, int k)
{
	p->point = k;
	if (p->mode == 2)
		p->last_ns = 0; /* plain lines: one as each point gets going, then every few seconds */
}

/* Iterations of the current point done, from rank 0's step. */
static int done_in_point(const struct ep_progress *p, const struct ep_rank_view *v)
{
	int done = 0;
	for (int i = 0; v->op >= 0 && i < v->op && i < p->v->nops; i++)
		if (ep_op_present(&p->v->ops[i], p->cfg) && ep_op_timed(&p->v->ops[i], p->cfg))
			done += p->warmup + p->iters;
	return v->op >= 0 ? done + p->warmup + v->iter : 0;
}

static void human_time(double s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "?");
	else if (s < 90)
		snprintf(buf, len, "%.0f s", s);
	else if (s < 5400)
		snprintf(buf, len, "%.0f min", s / 60);
	else
		snprintf(buf, len, "%.1f h", s / 3600);
}

void ep_progress_tick(void *arg, const struct ep_rank_view *v)
{
	struct ep_progress *p = arg;
	int64_t now = ep_now_ns();
	if (!p->mode || now - p->last_ns < (p->mode == 1 ? TERM_PERIOD_NS : PLAIN_PERIOD_NS))
		return;
	if (p->mode == 2 && !p->last_ns && v->op < 0 && now - p->start_ns < TERM_PERIOD_NS)
		return; /* wait for the point to be under way */
	p->last_ns = now;
	char what[96], elapsed[16], left[16];
	if (v->op >= 0 && v->op < p->v->nops && v->iter < 0)
		snprintf(what, sizeof(what), "%s warm-up %d of %d", p->v->ops[v->op].name, v->iter + p->warmup + 1,
			 p->warmup);
	else if (v->op >= 0 && v->op < p->v->nops)
		snprintf(what, sizeof(what), "%s iteration %d of %d", p->v->ops[v->op].name, v->iter + 1, p->iters);
	else
		snprintf(what, sizeof(what), "%s", v->phase ? v->phase : "starting");
	double total = (double)p->points * p->per_point;
	double done = (double)p->point * p->per_point + done_in_point(p, v);
	double secs = (double)(now - p->start_ns) * 1e-9;
	human_time(secs, elapsed, sizeof(elapsed));
	human_time(done > 0 ? secs * (total / done - 1) : -1, left, sizeof(left));
	fprintf(stderr, "%s# point %d of %d: %s; %s elapsed, about %s left%s", p->mode == 1 ? "\r\033[K" : "",
		p->point + 1, p->points, what, elapsed, left, p->mode == 1 ? "" : "\n");
	fflush(stderr);
	p->shown = p->mode == 1;
}

void ep_progress_clear(struct ep_progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = 0;
}
