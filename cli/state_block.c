/* state_block.c - every rank's state as one block, and the likely culprit (see state_block.h). */
#define _GNU_SOURCE
#include "cli/state_block.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

char ep_proc_state(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	char st = '?';
	if (fgets(line, sizeof(line), f)) {
		const char *close = strrchr(line, ')'); /* the command name may hold spaces */
		if (close && close[1] == ' ')
			st = close[2];
	}
	fclose(f);
	return st;
}

/* How many ranks wait for local rank r; their global ranks into list. */
static int waiters(const struct ep_sync *s, int n, int r, int base, char *list, size_t len)
{
	int k = 0;
	size_t at = 0;
	list[0] = 0;
	for (int q = 0; q < n; q++) {
		struct ep_rank_view v;
		ep_sync_view(s, q, &v);
		if (q != r && v.waiting_on == r && ++k && at + 12 < len)
			at += (size_t)snprintf(list + at, len - at, "%s%d", at ? ", " : "", base + q);
	}
	return k;
}

void ep_state_culprit(const struct ep_sync *s, const struct ep_child *kids, int n, int base, char *buf,
		      size_t len)
{
	char list[160];
	buf[0] = 0;
	for (int r = 0; kids && r < n; r++) { /* a rank gone or stopped explains what waits on it */
		char st = kids[r].done ? 'X' : ep_proc_state(kids[r].pid);
		if (kids[r].done && WIFSIGNALED(kids[r].status)) {
			snprintf(buf, len, "rank %d is gone (killed by signal %d)", base + r, WTERMSIG(kids[r].status));
			return;
		}
		if (st == 'T' || st == 't') {
			struct ep_rank_view v;
			ep_sync_view(s, r, &v);
			int k = waiters(s, n, r, base, list, sizeof(list));
			snprintf(buf, len, "rank %d is stopped (SIGSTOP or a debugger) in phase %s%s%s%s", base + r, v.phase,
				 k ? "; rank" : "", k > 1 ? "s " : k ? " " : "", k ? list : "");
			if (k && strlen(buf) + 16 < len)
				strcat(buf, k > 1 ? " wait for it" : " waits for it");
			return;
		}
	}
	for (int r = 0; r < n; r++) {
		struct ep_rank_view v, w;
		ep_sync_view(s, r, &v);
		int k = waiters(s, n, r, base, list, sizeof(list));
		if (!k)
			continue;
		if (v.waiting_on < 0) {
			snprintf(buf, len, "rank %d (phase %s) holds up rank%s %s and waits for no one", base + r, v.phase,
				 k > 1 ? "s" : "", list);
			return;
		}
		ep_sync_view(s, v.waiting_on, &w);
		if (w.waiting_on == r) {
			snprintf(buf, len, "ranks %d and %d wait for each other (phases %s, %s): a message lost between them",
				 base + r, base + v.waiting_on, v.phase, w.phase);
			return;
		}
	}
}

void ep_state_briefs(const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		     const struct ep_traffic *t, struct ep_rank_brief *b)
{
	int num_ranks = t->num_ranks;
	for (int r = 0; r < num_ranks; r++)
		b[r] = (struct ep_rank_brief){0, -1, '?'};
	for (int r = 0; r < n && base + r < num_ranks; r++) {
		struct ep_rank_view v;
		ep_sync_view(s, r, &v);
		b[base + r].known = 1;
		b[base + r].waiting_on = v.waiting_on >= 0 ? base + v.waiting_on : ep_traffic_net_wait(t, base + r);
		b[base + r].state = kids && kids[r].done ? 'X' : kids ? ep_proc_state(kids[r].pid) : '?';
	}
}

void ep_state_likely(const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		     const struct ep_traffic_view *v, char *buf, size_t len)
{
	char waits[320], traffic[400];
	ep_state_culprit(s, kids, n, base, waits, sizeof(waits));
	int kind = v ? ep_traffic_culprit(v, ep_traffic_current(v->t, 0, v->t->num_ranks), traffic, sizeof(traffic)) : 0;
	if (!v)
		traffic[0] = 0;
	if (kind == 2 || !waits[0] || (kind == 1 && v->gathered)) /* across nodes the traffic sees further */
		snprintf(buf, len, "%s%s%s", traffic, traffic[0] && waits[0] ? "; " : "", waits);
	else
		snprintf(buf, len, "%s%s%s", waits, traffic[0] ? "; by traffic: " : "", traffic);
}

void ep_state_rank_line(FILE *out, int rank, int pid, char st, const char *phase, const char *op, int iter,
			int waits_for)
{
	char peer[16] = "-";
	if (waits_for >= 0)
		snprintf(peer, sizeof(peer), "rank %d", waits_for);
	fprintf(out, "#   %5d %8d %5c %-22s %-18s %6d %9s\n", rank, pid, st, phase, op, iter, peer);
}

void ep_state_header(FILE *out, int n, const char *why)
{
	fprintf(out, "# state of %d rank%s (%s):\n", n, n == 1 ? "" : "s", why);
	ep_state_header_columns(out);
}

void ep_state_header_columns(FILE *out)
{
	fprintf(out, "#   %5s %8s %5s %-22s %-18s %6s %9s\n", "rank", "pid", "state", "phase", "op", "iter", "waits for");
}

void ep_state_rank_lines(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
			 const char *const *op_names, int nops)
{
	for (int r = 0; r < n; r++) {
		struct ep_rank_view v;
		char op[24] = "-";
		ep_sync_view(s, r, &v);
		if (v.op >= 0)
			snprintf(op, sizeof(op), "%s", op_names && v.op < nops ? op_names[v.op] : "?");
		char st = kids && kids[r].done ? 'X' : kids ? ep_proc_state(kids[r].pid) : '?';
		ep_state_rank_line(out, base + r, v.pid, st, v.phase, op, v.op >= 0 ? v.iter : 0,
				   v.waiting_on >= 0 ? base + v.waiting_on : -1);
	}
}

void ep_state_tail(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		   const struct ep_traffic_view *v, char *likely, size_t len)
{
	if (v)
		ep_traffic_print(out, v, ep_traffic_current(v->t, 0, v->t->num_ranks));
	ep_state_likely(s, kids, n, base, v, likely, len);
	fprintf(out, "# likely: %s\n", likely[0] ? likely : "no rank waits for another");
	fflush(out);
}

void ep_state_block(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		    const char *why, const char *const *op_names, int nops, const struct ep_traffic *t)
{
	char culprit[800];
	ep_state_header(out, n, why);
	ep_state_rank_lines(out, s, kids, n, base, op_names, nops);
	struct ep_traffic_view tv = {t, NULL, 0, 0};
	struct ep_rank_brief *b = t ? calloc((size_t)t->num_ranks, sizeof(*b)) : NULL;
	if (b) {
		tv.brief = b;
		tv.ranks_per_node = t->num_ranks > n ? n : 0;
		ep_state_briefs(s, kids, n, base, t, b);
	}
	ep_state_tail(out, s, kids, n, base, b ? &tv : NULL, culprit, sizeof(culprit));
	free(b);
}

void ep_state_summary(const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		      const struct ep_traffic_view *v, char *buf, size_t len)
{
	char pairs[600] = "";
	ep_state_likely(s, kids, n, base, v, buf, len);
	if (v)
		ep_traffic_suspects_text(v, ep_traffic_current(v->t, 0, v->t->num_ranks), pairs, sizeof(pairs));
	size_t at = strlen(buf);
	if (pairs[0] && at + 24 < len)
		snprintf(buf + at, len - at, "%smissing pairs: %s", at ? "; " : "", pairs);
}

void ep_state_local(FILE *out, const struct ep_state_scene *sc, const char *why, char *buf, size_t len)
{
	const struct ep_traffic *t = sc->traffic;
	ep_state_block(out, sc->s, sc->kids, sc->n, sc->base, why, sc->op_names, sc->nops, t);
	struct ep_traffic_view tv = {t, NULL, t && t->num_ranks > sc->n ? sc->n : 0, 0};
	struct ep_rank_brief *b = t ? calloc((size_t)t->num_ranks, sizeof(*b)) : NULL;
	if (b) {
		tv.brief = b;
		ep_state_briefs(sc->s, sc->kids, sc->n, sc->base, t, b);
	}
	ep_state_summary(sc->s, sc->kids, sc->n, sc->base, b ? &tv : NULL, buf, len);
	free(b);
}
