/* state_share.c - a node's share of the state block, and merging it at node 0 (see state_share.h). */
#include "cli/cluster/state_share.h"

#include <stdlib.h>
#include <string.h>

#define SHARE_MAGIC 0x45505353u /* "EPSS" */

struct share_head {
	uint32_t magic;
	int32_t base, n, num_ranks; /* the node's ranks: global base..base+n-1, of num_ranks */
};

/* One rank's line and its traffic counter. */
struct share_rank {
	int32_t pid, waiting_on, iter; /* waiting_on: global rank or -1; iter as the block shows it */
	int32_t state;                 /* process state letter */
	uint32_t op_seq;               /* collective ops started (traffic.h) */
	char op[16];                   /* the collective op in flight ("dispatch") */
	char step[24];                 /* the variant's op it times */
	char phase[32];
	char path[EP_TRAFFIC_PATH_MAX];
};

/* One traffic cell that was ever written, copied word by word. */
struct share_cell {
	int32_t src, dst;
	uint64_t expected, arrived, sent;
	uint32_t row_bytes, hop;
};

/* After the ranks: the number of cells, then the cells. */
static size_t share_bytes(int n, size_t cells)
{
	return sizeof(struct share_head) + (size_t)n * sizeof(struct share_rank) + sizeof(uint64_t) +
	       cells * sizeof(struct share_cell);
}

/* Copies cell (src, dst) into c; 0 when it was never written. */
static int get_cell(const struct ep_traffic *t, int src, int dst, struct share_cell *c)
{
	const struct ep_traffic_cell *x = &t->cells[(size_t)src * (size_t)t->num_ranks + (size_t)dst];
	*c = (struct share_cell){src, dst, atomic_load(&x->expected), atomic_load(&x->arrived), atomic_load(&x->sent),
				 atomic_load(&x->row_bytes), atomic_load(&x->hop)};
	return c->expected || c->arrived || c->sent;
}

static void pack_rank(const struct ep_state_scene *sc, int r, struct share_rank *o)
{
	const struct ep_traffic *t = sc->traffic;
	struct ep_rank_view v;
	int g = sc->base + r;
	ep_sync_view(sc->s, r, &v);
	o->pid = v.pid;
	o->waiting_on = v.waiting_on >= 0 ? sc->base + v.waiting_on : ep_traffic_net_wait(t, g);
	o->iter = v.op >= 0 ? v.iter : 0;
	o->state = sc->kids && sc->kids[r].done ? 'X' : sc->kids ? ep_proc_state(sc->kids[r].pid) : '?';
	o->op_seq = atomic_load(&t->ranks[g].op_seq);
	const char *op = atomic_load(&t->ranks[g].op);
	snprintf(o->op, sizeof(o->op), "%s", op ? op : "");
	snprintf(o->step, sizeof(o->step), "%s",
		 v.op < 0 ? "-" : sc->op_names && v.op < sc->nops ? sc->op_names[v.op] : "?");
	snprintf(o->phase, sizeof(o->phase), "%s", v.phase ? v.phase : "?");
	memcpy(o->path, t->ranks[g].path, sizeof(o->path));
	o->path[sizeof(o->path) - 1] = 0;
}

void *ep_state_share_pack(const struct ep_state_scene *sc, size_t *len)
{
	const struct ep_traffic *t = sc->traffic;
	if (!t)
		return NULL;
	int R = t->num_ranks, n = sc->n, lo = sc->base, hi = sc->base + n;
	/* room for every cell of the node's rows and columns; only written ones go */
	char *buf = calloc(1, share_bytes(n, (size_t)n * 2 * (size_t)R));
	if (!buf)
		return NULL;
	struct share_head h = {SHARE_MAGIC, sc->base, n, R};
	memcpy(buf, &h, sizeof(h));
	/* every record copied in and out with memcpy: the pieces sit at offsets no alignment promises */
	char *ranks = buf + sizeof(h), *cells = ranks + (size_t)n * sizeof(struct share_rank) + sizeof(uint64_t);
	uint64_t k = 0;
	for (int r = 0; r < n; r++) {
		struct share_rank o = {0};
		struct share_cell c;
		pack_rank(sc, r, &o);
		memcpy(ranks + (size_t)r * sizeof(o), &o, sizeof(o));
		for (int q = 0; q < R; q++) {
			if (get_cell(t, lo + r, q, &c))                          /* its row: what it sends */
				memcpy(cells + k++ * sizeof(c), &c, sizeof(c));
			if ((q < lo || q >= hi) && get_cell(t, q, lo + r, &c)) /* its column from other nodes */
				memcpy(cells + k++ * sizeof(c), &c, sizeof(c));
		}
	}
	memcpy(ranks + (size_t)n * sizeof(struct share_rank), &k, sizeof(k));
	*len = share_bytes(n, k);
	return buf;
}

/* The number of cells a share holds (its header checked by the caller). */
static uint64_t share_cells(const void *data, int n)
{
	uint64_t k;
	memcpy(&k, (const char *)data + sizeof(struct share_head) + (size_t)n * sizeof(struct share_rank), sizeof(k));
	return k;
}

int ep_state_share_valid(const void *data, size_t len, int num_ranks)
{
	struct share_head h;
	if (!data || len < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	if (h.magic != SHARE_MAGIC || h.num_ranks != num_ranks || h.n <= 0 || h.base < 0 || h.base + h.n > num_ranks ||
	    len < share_bytes(h.n, 0))
		return 0;
	uint64_t k = share_cells(data, h.n);
	if (k > (uint64_t)h.n * 2 * (uint64_t)num_ranks || len != share_bytes(h.n, (size_t)k))
		return 0;
	const char *cells = (const char *)data + share_bytes(h.n, 0);
	for (uint64_t i = 0; i < k; i++) { /* every cell names a pair of the job */
		struct share_cell c;
		memcpy(&c, cells + i * sizeof(c), sizeof(c));
		if (c.src < 0 || c.src >= num_ranks || c.dst < 0 || c.dst >= num_ranks)
			return 0;
	}
	return 1;
}

/* The op names a share may carry, as this process's own static strings. */
static const char *intern(const char *op)
{
	static const char *const known[] = {"dispatch", "combine", "ll.dispatch", "ll.combine"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(op, known[i]))
			return known[i];
	return op[0] ? "?" : NULL;
}

static void put_cell(struct ep_traffic *t, int src, int dst, const struct share_cell *c, int words, int arrived)
{
	struct ep_traffic_cell *x = &t->cells[(size_t)src * (size_t)t->num_ranks + (size_t)dst];
	if (words) {
		atomic_store(&x->expected, c->expected);
		atomic_store(&x->sent, c->sent);
		atomic_store(&x->row_bytes, c->row_bytes);
		atomic_store(&x->hop, c->hop);
	}
	if (arrived)
		atomic_store(&x->arrived, c->arrived);
}

void ep_state_share_merge(const void *data, struct ep_traffic *merged, struct ep_rank_brief *b, FILE *out)
{
	struct share_head h;
	memcpy(&h, data, sizeof(h));
	const char *ranks = (const char *)data + sizeof(h), *cells = (const char *)data + share_bytes(h.n, 0);
	int lo = h.base, hi = h.base + h.n;
	for (int r = 0; r < h.n; r++) {
		struct share_rank rank;
		const struct share_rank *o = &rank;
		memcpy(&rank, ranks + (size_t)r * sizeof(rank), sizeof(rank));
		int g = lo + r;
		b[g] = (struct ep_rank_brief){1, o->waiting_on, (char)o->state};
		atomic_store(&merged->ranks[g].op_seq, o->op_seq);
		atomic_store(&merged->ranks[g].op, intern(o->op));
		memcpy(merged->ranks[g].path, o->path, sizeof(o->path));
		if (out)
			ep_state_rank_line(out, g, o->pid, (char)o->state, o->phase, o->step, o->iter, o->waiting_on);
	}
	/* a source's node writes what it sends; a destination's node counts arrivals */
	for (uint64_t i = 0, k = share_cells(data, h.n); i < k; i++) {
		struct share_cell c;
		memcpy(&c, cells + i * sizeof(c), sizeof(c));
		put_cell(merged, c.src, c.dst, &c, c.src >= lo && c.src < hi, c.dst >= lo && c.dst < hi);
	}
}

struct ep_traffic *ep_state_share_copy(const struct ep_traffic *t)
{
	void *mem = calloc(1, ep_traffic_bytes(t->num_ranks));
	if (!mem)
		return NULL;
	struct ep_traffic *c = ep_traffic_init(mem, t->num_ranks);
	c->pair_stride = t->pair_stride;
	for (int r = 0; r < t->num_ranks; r++) {
		atomic_store(&c->ranks[r].op_seq, atomic_load(&t->ranks[r].op_seq));
		atomic_store(&c->ranks[r].op, atomic_load(&t->ranks[r].op));
		memcpy(c->ranks[r].path, t->ranks[r].path, sizeof(c->ranks[r].path));
	}
	for (size_t i = 0; i < (size_t)t->num_ranks * (size_t)t->num_ranks; i++) {
		atomic_store(&c->cells[i].expected, atomic_load(&t->cells[i].expected));
		atomic_store(&c->cells[i].arrived, atomic_load(&t->cells[i].arrived));
		atomic_store(&c->cells[i].sent, atomic_load(&t->cells[i].sent));
		atomic_store(&c->cells[i].row_bytes, atomic_load(&t->cells[i].row_bytes));
		atomic_store(&c->cells[i].hop, atomic_load(&t->cells[i].hop));
	}
	return c;
}
