/* gates.c - absolute and baseline limits of a run (see gates.h). */
#include "reports/gates.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/compare.h"
#include "reports/text_file.h"

static int bad(char *err, size_t len, const char *option, const char *spec, const char *want)
{
	char q[256];
	snprintf(err, len, "invalid %s '%s': %s", option, ep_quote(spec, q, sizeof(q)), want);
	return -EP_EUSAGE;
}

int ep_gates_add(struct ep_gates *g, enum ep_gate_kind kind, const char *option, const char *spec, char *err,
		 size_t len)
{
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *item = copy, *comma; item; item = comma) {
		if ((comma = strchr(item, ',')))
			*comma++ = 0;
		char *eq = strchr(item, '='), *end;
		if (!eq || eq == item || (size_t)(eq - item) >= sizeof(g->g[0].op) || g->n >= EP_MAX_GATES)
			return bad(err, len, option, spec, "want OP=VALUE[,OP=VALUE]");
		*eq = 0;
		errno = 0;
		double v = strtod(eq + 1, &end);
		if (errno || end == eq + 1 || *end || !isfinite(v) || v <= 0)
			return bad(err, len, option, spec, "each limit must be a positive number");
		struct ep_gate *x = &g->g[g->n++];
		x->kind = kind;
		x->limit = v;
		snprintf(x->op, sizeof(x->op), "%.31s", item);
	}
	return 0;
}

int ep_gates_check_ops(const struct ep_gates *g, const char *const *ops, int nops, const char *command, char *err,
		       size_t len)
{
	for (int i = 0; i < g->n; i++) {
		int known = 0;
		for (int k = 0; k < nops; k++)
			known |= strcmp(g->g[i].op, ops[k]) == 0;
		if (!known) {
			char q[64];
			snprintf(err, len, "a limit names op '%s', which epbench %s does not have", ep_quote(g->g[i].op, q, sizeof(q)),
				 command);
			return -EP_EUSAGE;
		}
	}
	return 0;
}

int ep_gates_load(struct ep_gates *g, const char *command, const char *traffic, int check, char *err, size_t len)
{
	if (!g->baseline_path)
		return 0;
	int rc = ep_doc_read(g->baseline_path, &g->baseline, err, len);
	if (rc)
		return rc == -EP_ENOMEM ? rc : -EP_EUSAGE;
	g->have_baseline = 1;
	struct ep_doc mine = {.check = check};
	snprintf(mine.command, sizeof(mine.command), "%s", command);
	snprintf(mine.traffic, sizeof(mine.traffic), "%s", traffic);
	char why[600];
	if (ep_compare_comparable(&g->baseline, &mine, why, sizeof(why))) {
		snprintf(err, len, "--baseline '%s' is another experiment: %s (A: the baseline, B: this run)",
			 g->baseline_path, why);
		return -EP_EUSAGE;
	}
	return 0;
}

void ep_gates_free(struct ep_gates *g)
{
	if (g->have_baseline)
		ep_doc_free(&g->baseline);
	g->have_baseline = 0;
}

/* Marks op and appends "OP what\n" to res->limits. */
static void miss(struct ep_run_result *r, struct ep_op_result *op, const char *what)
{
	size_t n = strlen(r->limits);
	op->missed = 1;
	if (n < sizeof(r->limits))
		snprintf(r->limits + n, sizeof(r->limits) - n, "%s %s\n", op->name, what);
}

static void absolute_limits(const struct ep_gates *g, struct ep_run_result *r, double copy_gbs)
{
	for (int i = 0; i < r->nops; i++) {
		struct ep_op_result *op = &r->ops[i];
		for (int k = 0; op->timed && k < g->n; k++) {
			const struct ep_gate *x = &g->g[k];
			double copy_pct = copy_gbs > 0 ? 100 * op->aggbw_gbs / copy_gbs : 0;
			char what[200] = "";
			if (strcmp(x->op, op->name))
				continue;
			if (x->kind == EP_GATE_MIN_ALGBW && op->algbw_gbs < x->limit)
				snprintf(what, sizeof(what), "algbw %.3g GB/s is below the limit of %g GB/s (--min-algbw)",
					 op->algbw_gbs, x->limit);
			if (x->kind == EP_GATE_MAX_MEDIAN && op->time_us.median > x->limit)
				snprintf(what, sizeof(what), "median %.1f us is above the limit of %g us (--max-median-us)",
					 op->time_us.median, x->limit);
			if (x->kind == EP_GATE_MIN_COPY && copy_gbs > 0 && copy_pct < x->limit)
				snprintf(what, sizeof(what), "copy %.1f%% is below the limit of %g%% (--min-copy)", copy_pct,
					 x->limit);
			if (what[0])
				miss(r, op, what);
		}
	}
}

static void baseline_limits(const struct ep_gates *g, struct ep_point *pt)
{
	struct ep_run_result *r = &pt->res;
	const struct ep_doc_point *base = ep_doc_find(&g->baseline, pt->ranks, pt->tokens, pt->hidden);
	for (int i = 0; base && i < r->nops; i++) {
		struct ep_op_result *op = &r->ops[i];
		const struct ep_doc_op *b = op->timed ? ep_doc_op(base, op->name) : NULL;
		if (!b)
			continue;
		struct ep_op_cmp c = {.median_a = b->median_us, .median_b = op->time_us.median};
		ep_compare_samples(b->samples_us, b->nsamples, op->samples_us, op->nsamples, g->confidence, g->max_regress, &c);
		if (c.regressed) {
			char what[240];
			snprintf(what, sizeof(what), "median %.1f us is %+.1f%% [%+.1f%%, %+.1f%%] against the baseline's %.1f us, over the limit of %g%% (--max-regress)",
				 c.median_b, c.delta_pct, c.lo_pct, c.hi_pct, c.median_a, g->max_regress);
			miss(r, op, what);
		}
	}
}

int ep_gates_need_copy(const struct ep_gates *g)
{
	for (int i = 0; i < g->n; i++)
		if (g->g[i].kind == EP_GATE_MIN_COPY)
			return 1;
	return 0;
}

int ep_gates_apply(const struct ep_gates *g, struct ep_point *pt, double copy_gbs)
{
	struct ep_run_result *r = &pt->res;
	if (r->exit_code != EP_EXIT_OK)
		return 0;
	absolute_limits(g, r, copy_gbs);
	if (g->have_baseline && g->max_regress >= 0)
		baseline_limits(g, pt);
	int misses = 0;
	for (int i = 0; i < r->nops; i++)
		misses += r->ops[i].missed;
	if (misses)
		r->exit_code = EP_EXIT_SLOW;
	return misses;
}
