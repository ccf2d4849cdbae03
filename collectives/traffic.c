/* traffic.c - per-pair expected and arrived rows of the op in flight (see traffic.h). */
#include "collectives/traffic.h"

#include <stdio.h>
#include <string.h>

static size_t ranks_bytes(int num_ranks)
{
	size_t b = (size_t)num_ranks * sizeof(struct ep_traffic_rank);
	return (b + 63) & ~(size_t)63;
}

size_t ep_traffic_bytes(int num_ranks)
{
	size_t head = (sizeof(struct ep_traffic) + 63) & ~(size_t)63;
	return head + ranks_bytes(num_ranks) + (size_t)num_ranks * (size_t)num_ranks * sizeof(struct ep_traffic_cell);
}

struct ep_traffic *ep_traffic_init(void *mem, int num_ranks)
{
	size_t head = (sizeof(struct ep_traffic) + 63) & ~(size_t)63;
	struct ep_traffic *t = mem; /* zeroed by the caller: untouched cells cost no memory */
	t->num_ranks = num_ranks;
	t->ranks = (struct ep_traffic_rank *)((char *)mem + head);
	t->cells = (struct ep_traffic_cell *)((char *)mem + head + ranks_bytes(num_ranks));
	return t;
}

int ep_traffic_pair_possible(const struct ep_traffic *t, int src, int dst)
{
	return t->pair_stride <= 1 || src % t->pair_stride == dst % t->pair_stride;
}

struct ep_traffic *ep_traffic_view(struct ep_traffic *view, const struct ep_traffic *t, const int *map)
{
	if (!t)
		return NULL;
	*view = *t;
	view->map = map;
	return view;
}

/* The area's rank of a writer's rank r. */
static int area_rank(const struct ep_traffic *t, int r)
{
	return t->map ? t->map[r] : r;
}

static struct ep_traffic_cell *cell(struct ep_traffic *t, int src, int dst)
{
	return &t->cells[(size_t)area_rank(t, src) * (size_t)t->num_ranks + (size_t)area_rank(t, dst)];
}

uint32_t ep_traffic_begin(struct ep_traffic *t, int rank, const char *op)
{
	if (!t)
		return 0;
	struct ep_traffic_rank *r = &t->ranks[area_rank(t, rank)];
	uint32_t seq = atomic_load_explicit(&r->op_seq, memory_order_relaxed) + 1;
	atomic_store_explicit(&r->op, op, memory_order_relaxed);
	atomic_store_explicit(&r->op_seq, seq, memory_order_release);
	return seq;
}

void ep_traffic_expect(struct ep_traffic *t, uint32_t seq, int src, int dst, uint32_t rows,
		       uint32_t row_bytes, enum ep_traffic_hop hop)
{
	if (!t)
		return;
	struct ep_traffic_cell *c = cell(t, src, dst);
	atomic_store_explicit(&c->row_bytes, row_bytes, memory_order_relaxed);
	atomic_store_explicit(&c->hop, (uint32_t)hop, memory_order_relaxed);
	atomic_store_explicit(&c->expected, (uint64_t)seq << 32 | rows, memory_order_release);
}

void ep_traffic_arrived(struct ep_traffic *t, uint32_t seq, int src, int dst, uint32_t rows)
{
	if (t)
		atomic_store_explicit(&cell(t, src, dst)->arrived, (uint64_t)seq << 32 | rows, memory_order_relaxed);
}

void ep_traffic_sent(struct ep_traffic *t, uint32_t seq, int src, int dst, uint32_t rows)
{
	if (t)
		atomic_store_explicit(&cell(t, src, dst)->sent, (uint64_t)seq << 32 | rows, memory_order_relaxed);
}

void ep_traffic_waits(struct ep_traffic *t, int rank, int peer)
{
	if (t)
		atomic_store_explicit(&t->ranks[area_rank(t, rank)].net_wait, peer < 0 ? 0 : area_rank(t, peer) + 1,
				      memory_order_relaxed);
}

int ep_traffic_net_wait(const struct ep_traffic *t, int rank)
{
	return t ? atomic_load_explicit(&t->ranks[area_rank(t, rank)].net_wait, memory_order_relaxed) - 1 : -1;
}

void ep_traffic_set_path(struct ep_traffic *t, int rank, const char *path)
{
	if (t)
		snprintf(t->ranks[area_rank(t, rank)].path, sizeof(t->ranks[0].path), "%s", path);
}

uint32_t ep_traffic_current(const struct ep_traffic *t, int lo, int hi)
{
	uint32_t best = 0;
	for (int r = lo; t && r < hi; r++) {
		uint32_t s = atomic_load_explicit(&t->ranks[r].op_seq, memory_order_acquire);
		if ((int32_t)(s - best) > 0)
			best = s;
	}
	return best;
}

void ep_traffic_pair(const struct ep_traffic *t, uint32_t seq, int src, int dst, struct ep_traffic_pair *p)
{
	const struct ep_traffic_cell *c = &t->cells[(size_t)src * (size_t)t->num_ranks + (size_t)dst];
	uint64_t e = atomic_load_explicit(&c->expected, memory_order_acquire);
	uint64_t a = atomic_load_explicit(&c->arrived, memory_order_relaxed);
	uint64_t sn = atomic_load_explicit(&c->sent, memory_order_relaxed);
	memset(p, 0, sizeof(*p));
	p->src = src;
	p->dst = dst;
	p->known = seq && (uint32_t)(e >> 32) == seq;
	p->expected = p->known ? (uint32_t)e : 0;
	p->arrived = seq && (uint32_t)(a >> 32) == seq ? (uint32_t)a : 0;
	p->sent = seq && (uint32_t)(sn >> 32) == seq ? (uint32_t)sn : 0;
	p->row_bytes = p->known ? atomic_load_explicit(&c->row_bytes, memory_order_relaxed) : 0;
	p->hop = p->known ? (enum ep_traffic_hop)atomic_load_explicit(&c->hop, memory_order_relaxed) : EP_HOP_NONE;
}
