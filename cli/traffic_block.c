/* traffic_block.c - the per-pair matrix of a stuck op and its likely culprit (see traffic_block.h). */
#include "cli/traffic_block.h"

#include <string.h>

#define MAX_PAIR_LINES 24
#define MAX_GRID_RANKS 16

static int suspect(enum ep_pair_status st)
{
	return st == EP_PAIR_MISSING || st == EP_PAIR_NOT_STARTED;
}

static int stopped(char st)
{
	return st == 'T' || st == 't';
}

enum ep_pair_status ep_traffic_classify(const struct ep_traffic_view *v, uint32_t seq, int src, int dst,
					struct ep_traffic_pair *p, int *holder)
{
	const struct ep_rank_brief *bs = &v->brief[src];
	*holder = -1;
	ep_traffic_pair(v->t, seq, src, dst, p);
	if (!ep_traffic_pair_possible(v->t, src, dst)) /* different MoE-EP groups of a layer never exchange rows */
		return EP_PAIR_UNUSED;
	if (!bs->known || !v->brief[dst].known)
		return v->gathered ? EP_PAIR_NOT_STARTED : EP_PAIR_UNUSED;
	if (!p->known) { /* a source that answered and is at op seq sets its words at the start */
		uint32_t started = atomic_load(&v->t->ranks[src].op_seq);
		return started != seq ? EP_PAIR_NOT_STARTED : EP_PAIR_UNUSED;
	}
	if (p->arrived >= p->expected)
		return EP_PAIR_COMPLETE;
	/* who acts next: the sender until every row is put (over shared memory
	 * the copy is the arrival), then the receiver, which counts what lands */
	int mover = p->sent >= p->expected ? dst : src; /* sent: network puts, or rows published for a pull */
	const struct ep_rank_brief *bm = &v->brief[mover];
	if (stopped(bm->state))
		return EP_PAIR_MISSING;
	if (bm->waiting_on < 0) /* at work, or gone without waiting for anyone (a failed put) */
		return bm->state == 'X' || bm->state == 'Z' ? EP_PAIR_MISSING : EP_PAIR_PENDING;
	if (bm->waiting_on != src && bm->waiting_on != dst) {
		*holder = bm->waiting_on;
		return EP_PAIR_HELD;
	}
	return EP_PAIR_MISSING; /* it waits for the pair's other side */
}

/* "shm", or "tcp 10.0.0.1:4000 -> tcp 10.0.0.2:4002" from the ranks' endpoints. */
static void pair_path(const struct ep_traffic_view *v, const struct ep_traffic_pair *p, char *buf, size_t len)
{
	const char *a = v->t->ranks[p->src].path, *b = v->t->ranks[p->dst].path;
	if (p->hop == EP_HOP_NET)
		snprintf(buf, len, "%s -> %s", a[0] ? a : "net", b[0] ? b : "net");
	else
		snprintf(buf, len, "%s", p->hop == EP_HOP_SHM ? "shm" : "?");
}

static const char *op_name(const struct ep_traffic *t, uint32_t seq)
{
	for (int r = 0; r < t->num_ranks; r++)
		if (atomic_load(&t->ranks[r].op_seq) == seq && atomic_load(&t->ranks[r].op))
			return atomic_load(&t->ranks[r].op);
	return "?";
}

static void print_pair(FILE *out, const struct ep_traffic_view *v, const struct ep_traffic_pair *p,
		       enum ep_pair_status st, int holder)
{
	static const char *const names[] = {"complete", "held", "missing", "not started", "unused", "pending"};
	char status[32], rows[40], bytes[48], path[2 * EP_TRAFFIC_PATH_MAX + 8];
	if (st == EP_PAIR_HELD)
		snprintf(status, sizeof(status), "held (rank %d)", holder);
	else if (st == EP_PAIR_NOT_STARTED && (!v->brief[p->src].known || !v->brief[p->dst].known))
		snprintf(status, sizeof(status), "no answer");
	else
		snprintf(status, sizeof(status), "%s", names[st]);
	if (p->known) {
		if (p->hop == EP_HOP_NET && p->sent < p->expected)
			snprintf(rows, sizeof(rows), "%u/%u sent %u", p->arrived, p->expected, p->sent);
		else
			snprintf(rows, sizeof(rows), "%u/%u", p->arrived, p->expected);
		snprintf(bytes, sizeof(bytes), "%llu/%llu", (unsigned long long)(p->arrived * p->row_bytes),
			 (unsigned long long)(p->expected * p->row_bytes));
	} else {
		snprintf(rows, sizeof(rows), "%u/?", p->arrived);
		snprintf(bytes, sizeof(bytes), "?");
	}
	pair_path(v, p, path, sizeof(path));
	fprintf(out, "#   %5d -> %-5d %-15s %18s %23s  %s\n", p->src, p->dst, status, rows, bytes, path);
}

/* The pairs of one kind (suspects, or held and pending) in rank order;
 * prints up to budget of them and returns how many there are. */
static int print_kind(FILE *out, const struct ep_traffic_view *v, uint32_t seq, int want_suspect, int budget)
{
	int R = v->t->num_ranks, k = 0;
	for (int s = 0; s < R; s++)
		for (int d = 0; d < R; d++) {
			struct ep_traffic_pair p;
			int holder;
			if (s == d)
				continue;
			enum ep_pair_status st = ep_traffic_classify(v, seq, s, d, &p, &holder);
			if (want_suspect ? !suspect(st) : st != EP_PAIR_HELD && st != EP_PAIR_PENDING)
				continue;
			if (k++ < budget)
				print_pair(out, v, &p, st, holder);
		}
	return k;
}

static void print_grid(FILE *out, const struct ep_traffic_view *v, uint32_t seq)
{
	int R = v->t->num_ranks;
	fprintf(out, "#   grid: arrived/expected rows, source down, destination across (* suspect, h held, p pending)\n#   %7s", "src\\dst");
	for (int d = 0; d < R; d++)
		fprintf(out, " %11d", d);
	fputc('\n', out);
	for (int s = 0; s < R; s++) {
		fprintf(out, "#   %7d", s);
		for (int d = 0; d < R; d++) {
			struct ep_traffic_pair p;
			int holder;
			char cellbuf[32] = "-";
			enum ep_pair_status st = s == d ? EP_PAIR_UNUSED : ep_traffic_classify(v, seq, s, d, &p, &holder);
			if (st == EP_PAIR_NOT_STARTED)
				snprintf(cellbuf, sizeof(cellbuf), "%u/?*", p.arrived);
			else if (st != EP_PAIR_UNUSED)
				snprintf(cellbuf, sizeof(cellbuf), "%u/%u%s", p.arrived, p.expected,
					 suspect(st) ? "*" : st == EP_PAIR_HELD ? "h" : st == EP_PAIR_PENDING ? "p" : "");
			fprintf(out, " %11s", cellbuf);
		}
		fputc('\n', out);
	}
}

void ep_traffic_print(FILE *out, const struct ep_traffic_view *v, uint32_t seq)
{
	int R = v->t->num_ranks, complete = 0;
	if (!seq) {
		fprintf(out, "# traffic: no collective op started yet\n");
		return;
	}
	for (int s = 0; s < R; s++)
		for (int d = 0; d < R; d++) {
			struct ep_traffic_pair p;
			int holder;
			complete += s != d && ep_traffic_classify(v, seq, s, d, &p, &holder) == EP_PAIR_COMPLETE;
		}
	fprintf(out, "# traffic of op %s #%u (rows and bytes arrived/expected per source -> destination, suspects first):\n",
		op_name(v->t, seq), seq);
	fprintf(out, "#   %5s    %-5s %-15s %18s %23s  %s\n", "src", "dst", "status", "rows", "bytes", "path");
	int k = print_kind(out, v, seq, 1, MAX_PAIR_LINES);
	int h = print_kind(out, v, seq, 0, k < MAX_PAIR_LINES ? MAX_PAIR_LINES - k : 0);
	if (k + h > MAX_PAIR_LINES)
		fprintf(out, "#   ... %d more pairs not listed\n", k + h - MAX_PAIR_LINES);
	fprintf(out, "#   %d suspect, %d held or pending, %d complete pair%s\n", k, h, complete, complete == 1 ? "" : "s");
	if (R <= MAX_GRID_RANKS)
		print_grid(out, v, seq);
}

/* The suspect pairs of op seq, tallied. */
struct tally {
	int n;               /* suspect pairs */
	int a, b;            /* the first one */
	uint64_t arrived, expected;
	int *as_src, *as_dst; /* [R] suspect pairs per rank */
	int *clean;          /* [R] pairs with traffic that are not suspect */
	int *idle;           /* [R] suspect pairs whose source never started the op */
	int node_a, node_b;  /* the two nodes every suspect pair crosses between, or -1 */
	int live_n;          /* suspect pairs whose source did start the op */
	int live_a, live_b;  /* the two nodes every one of those crosses between, or -1 */
	int live_dirs;       /* 1: one of them goes live_a -> live_b, 2: one goes back */
};

static void tally_pair(const struct ep_traffic_view *v, struct tally *ty, int s, int d, enum ep_pair_status st,
		       const struct ep_traffic_pair *p)
{
	int P = v->ranks_per_node;
	if (!suspect(st)) {
		if (st != EP_PAIR_UNUSED && p->expected > 0)
			ty->clean[s]++, ty->clean[d]++;
		return;
	}
	if (!ty->n++)
		ty->a = s, ty->b = d;
	if (st == EP_PAIR_NOT_STARTED)
		ty->idle[s]++;
	ty->as_src[s]++;
	ty->as_dst[d]++;
	ty->arrived += p->arrived;
	ty->expected += p->expected;
	int ns = P > 0 ? s / P : 0, nd = P > 0 ? d / P : 0;
	int lo = ns < nd ? ns : nd, hi = ns < nd ? nd : ns;
	if (ty->n == 1)
		ty->node_a = ns == nd ? -1 : lo, ty->node_b = ns == nd ? -1 : hi;
	else if (ty->node_a != lo || ty->node_b != hi)
		ty->node_a = ty->node_b = -1;
	if (st == EP_PAIR_NOT_STARTED)
		return;
	if (!ty->live_n++)
		ty->live_a = ns == nd ? -1 : lo, ty->live_b = ns == nd ? -1 : hi;
	else if (ty->live_a != lo || ty->live_b != hi)
		ty->live_a = ty->live_b = -1;
	ty->live_dirs |= ns == nd ? 0 : ns == lo ? 1 : 2;
}

/* "0, 1, 3" from the ranks with a count in per[]. */
static void rank_list(const int *per, int R, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = 0;
	for (int r = 0; r < R && at + 12 < len; r++)
		if (per[r])
			at += (size_t)snprintf(buf + at, len - at, "%s%d", at ? ", " : "", r);
}

/* The ranks x is missing traffic with, as source (out) and destination (in). */
static void rank_verdict(const struct ep_traffic_view *v, uint32_t seq, int x, const struct tally *ty, char *buf,
			 size_t len)
{
	int R = v->t->num_ranks, to[R], from[R];
	char lt[160], lf[160];
	for (int r = 0; r < R; r++) {
		struct ep_traffic_pair p;
		int h;
		to[r] = r != x && suspect(ep_traffic_classify(v, seq, x, r, &p, &h));
		from[r] = r != x && suspect(ep_traffic_classify(v, seq, r, x, &p, &h));
	}
	rank_list(to, R, lt, sizeof(lt));
	rank_list(from, R, lf, sizeof(lf));
	char tally_text[64];
	if (ty->expected)
		snprintf(tally_text, sizeof(tally_text), "%llu of %llu rows arrived", (unsigned long long)ty->arrived,
			 (unsigned long long)ty->expected);
	else
		snprintf(tally_text, sizeof(tally_text), "it never started this op");
	if (ty->as_src[x] == ty->n)
		snprintf(buf, len, "rank %d never arrived anywhere: its rows to rank%s %s are missing (%s)", x,
			 strchr(lt, ',') ? "s" : "", lt, tally_text);
	else if (ty->as_dst[x] == ty->n)
		snprintf(buf, len, "nothing reached rank %d: rows from rank%s %s are missing (%s)", x,
			 strchr(lf, ',') ? "s" : "", lf, tally_text);
	else
		snprintf(buf, len, "rank %d never arrived anywhere: its traffic to rank%s %s and from rank%s %s is missing (%s)",
			 x, strchr(lt, ',') ? "s" : "", lt, strchr(lf, ',') ? "s" : "", lf, tally_text);
}

static int verdict(const struct ep_traffic_view *v, uint32_t seq, const struct tally *ty, char *buf, size_t len)
{
	int R = v->t->num_ranks, a = ty->a, b = ty->b, x = -1, cover = 0;
	char path[2 * EP_TRAFFIC_PATH_MAX + 8];
	struct ep_traffic_pair p;
	int h;
	ep_traffic_classify(v, seq, a, b, &p, &h);
	pair_path(v, &p, path, sizeof(path));
	int one_pair = ty->n == 1 || (ty->n == 2 && ty->as_src[b] && ty->as_dst[a]);
	for (int r = 0; r < R; r++)
		if (stopped(v->brief[r].state) && ty->as_src[r] + ty->as_dst[r] > 0) { /* a process, not a link */
			rank_verdict(v, seq, r, ty, buf, len);
			return 1;
		}
	/* Ranks that did start the op miss rows both ways between two nodes, and
	 * only there: a link, even when a rank that had not yet started it (it was
	 * behind when the link's failure ended the point) misses rows too. */
	int behind = 0;
	for (int r = 0; r < R; r++)
		behind += ty->idle[r] > 0;
	if (behind && ty->live_a >= 0 && ty->live_dirs == 3) {
		snprintf(buf, len, "link node %d <-> node %d: only pairs between these nodes are missing among the ranks that "
				   "started the op (%d pairs, %llu of %llu rows arrived; e.g. %s)",
			 ty->live_a, ty->live_b, ty->live_n, (unsigned long long)ty->arrived, (unsigned long long)ty->expected,
			 path);
		return 2;
	}
	for (int r = 0; r < R; r++)
		if (ty->idle[r]) { /* it never started the op: a rank, not a link, however few pairs are missing */
			rank_verdict(v, seq, r, ty, buf, len);
			return 1;
		}
	if (one_pair && p.hop == EP_HOP_SHM && ty->n == 1) { /* no link in shared memory: the copying rank */
		snprintf(buf, len, "rank %d has not finished its copy to rank %d (%u of %u rows; shm): it alone is behind", a, b,
			 p.arrived, p.expected);
		return 1;
	}
	if (one_pair && (p.hop == EP_HOP_NET || (ty->clean[a] && ty->clean[b]))) {
		snprintf(buf, len, "link rank %d %s rank %d: only this pair's rows are missing (%llu of %llu arrived; %s)", a,
			 ty->n == 2 ? "<->" : "->", b, (unsigned long long)ty->arrived, (unsigned long long)ty->expected, path);
		return 2;
	}
	for (int r = 0; r < R; r++)
		if (ty->as_src[r] + ty->as_dst[r] == ty->n)
			x = r, cover++;
	if (ty->node_a >= 0 && cover != 1) {
		snprintf(buf, len, "link node %d <-> node %d: only pairs between these nodes are missing (%d pairs, %llu of %llu rows arrived; e.g. %s)",
			 ty->node_a, ty->node_b, ty->n, (unsigned long long)ty->arrived, (unsigned long long)ty->expected, path);
		return 2;
	}
	if (x >= 0) {
		rank_verdict(v, seq, x, ty, buf, len);
		return 1;
	}
	int any[R];
	char list[200];
	for (int r = 0; r < R; r++)
		any[r] = ty->as_src[r] + ty->as_dst[r];
	rank_list(any, R, list, sizeof(list));
	snprintf(buf, len, "%d pairs missing among ranks %s: no single rank or link explains them", ty->n, list);
	return 0;
}

/* Gathered views: "ranks 2, 3 did not answer (nodes 1)" into buf; how many. */
static int silent_ranks(const struct ep_traffic_view *v, char *buf, size_t len)
{
	int R = v->t->num_ranks, P = v->ranks_per_node, k = 0, last = -1;
	size_t at = 0;
	int unknown[R];
	buf[0] = 0;
	for (int r = 0; r < R; r++)
		k += unknown[r] = v->gathered && !v->brief[r].known;
	if (!k)
		return 0;
	at += (size_t)snprintf(buf, len, "node%s ", "");
	for (int r = 0; r < R && at + 12 < len; r++) {
		int node = P > 0 ? r / P : 0;
		if (unknown[r] && node != last)
			at += (size_t)snprintf(buf + at, len - at, "%s%d", last >= 0 ? ", " : "", node), last = node;
	}
	if (at + 40 < len)
		at += (size_t)snprintf(buf + at, len - at, " did not answer (rank%s ", k > 1 ? "s" : "");
	rank_list(unknown, R, buf + at, len - at);
	at = strlen(buf);
	if (at + 60 < len)
		snprintf(buf + at, len - at, "): stopped, wedged or cut off; their pairs are unknown");
	return k;
}

int ep_traffic_culprit(const struct ep_traffic_view *v, uint32_t seq, char *buf, size_t len)
{
	int R = v->t->num_ranks;
	int as_src[R], as_dst[R], clean[R], idle[R];
	struct tally ty = {.as_src = as_src, .as_dst = as_dst, .clean = clean, .idle = idle, .node_a = -1, .node_b = -1,
			   .live_a = -1, .live_b = -1};
	memset(as_src, 0, sizeof(as_src));
	memset(as_dst, 0, sizeof(as_dst));
	memset(clean, 0, sizeof(clean));
	memset(idle, 0, sizeof(idle));
	int silent = silent_ranks(v, buf, len);
	for (int s = 0; seq && s < R; s++)
		for (int d = 0; d < R; d++) {
			struct ep_traffic_pair p;
			int h;
			if (s != d && v->brief[s].known && v->brief[d].known) /* a silent node's pairs are said above */
				tally_pair(v, &ty, s, d, ep_traffic_classify(v, seq, s, d, &p, &h), &p);
		}
	if (!ty.n)
		return silent ? 1 : 0;
	size_t at = strlen(buf);
	if (at + 16 < len && silent)
		at += (size_t)snprintf(buf + at, len - at, "; among the others, ");
	int kind = verdict(v, seq, &ty, buf + at, len - at);
	return silent ? 1 : kind;
}

void ep_traffic_suspects_text(const struct ep_traffic_view *v, uint32_t seq, char *buf, size_t len)
{
	int R = v->t->num_ranks;
	size_t at = 0;
	buf[0] = 0;
	for (int s = 0; seq && s < R; s++)
		for (int d = 0; d < R && at + 80 < len; d++) {
			struct ep_traffic_pair p;
			int h;
			if (s == d || !suspect(ep_traffic_classify(v, seq, s, d, &p, &h)))
				continue;
			char path[2 * EP_TRAFFIC_PATH_MAX + 8], rows[32];
			pair_path(v, &p, path, sizeof(path));
			if (p.known)
				snprintf(rows, sizeof(rows), "%u/%u", p.arrived, p.expected);
			else
				snprintf(rows, sizeof(rows), "%u/?", p.arrived);
			at += (size_t)snprintf(buf + at, len - at, "%s%d->%d %s rows %s", at ? ", " : "", s, d, rows, path);
		}
}
