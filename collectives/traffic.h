/* traffic.h - expected versus arrived rows per (source, destination) pair, for the op in flight.
 *
 * One cell per ordered pair of global ranks, in memory the supervisor can
 * read (the launcher maps it beside the control blocks), so that a stuck run
 * can say which transfers never arrived: a rank whose rows reach nobody, or
 * a pair that alone is missing (a link).
 *
 * Op numbers: every rank numbers the collective ops it starts
 * (ep_traffic_begin). All ranks run the same ops in the same order, so op
 * number S names the same op everywhere. Each word of a cell is
 * (S << 32 | rows): a word tagged with another op number is stale and reads
 * as "not yet known" (expected) or 0 (arrived); nothing is ever reset.
 *
 * Writers: in one op each word has exactly one writer, chosen by the
 * collective (a shared-memory sender knows when its copy is done; a network
 * receiver knows when a chunk's signal came, and its sender counts what it
 * put, so that rows never sent differ from rows lost on the way). Stores are single relaxed
 * 64-bit stores, made once per chunk or per peer, never per row; the hot
 * path pays a few stores per op and peer. A reader's snapshot may be a
 * moment apart between cells, never torn within a word.
 *
 * Every function accepts a NULL area (unit tests, runs without one) and
 * then does nothing.
 */
#ifndef EP_TRAFFIC_H
#define EP_TRAFFIC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define EP_TRAFFIC_PATH_MAX 72

/* One ordered pair (src -> dst). */
struct ep_traffic_cell {
	_Atomic uint64_t expected;  /* op << 32 | rows the pair carries in that op */
	_Atomic uint64_t arrived;   /* op << 32 | rows landed so far */
	_Atomic uint64_t sent;      /* op << 32 | rows put so far (network pairs; the sender's count) */
	_Atomic uint32_t row_bytes; /* bytes per row on this hop, stored with expected */
	_Atomic uint32_t hop;       /* enum ep_traffic_hop, stored with expected */
};

/* How a pair's rows travel. */
enum ep_traffic_hop { EP_HOP_NONE, EP_HOP_SHM, EP_HOP_NET };

/* One rank's op counter and where it can be reached. */
struct ep_traffic_rank {
	_Atomic uint32_t op_seq;     /* collective ops this rank has started */
	_Atomic(const char *) op;    /* static name of its op in flight */
	_Atomic int32_t net_wait;    /* 1 + the global rank it waits for over the network, 0 when none */
	char path[EP_TRAFFIC_PATH_MAX]; /* its network endpoint ("tcp 10.0.0.2:40111"), "" if none */
};

/* The area: R ranks (global), then R*R cells [src][dst]. A node maps its own
 * and fills only its ranks' words; node 0 merges the others' into a copy. */
struct ep_traffic {
	int num_ranks;
	struct ep_traffic_rank *ranks; /* [R], inside the area */
	struct ep_traffic_cell *cells; /* [R][R], inside the area */
	const int *map;                /* a view's ranks -> the area's (ep_traffic_view), or NULL: the same */
	int pair_stride;               /* rows move only between ranks equal modulo it (a layer's strided
					* MoE-EP groups); 0: between any two. Set before fork. */
};

/* Bytes of the area for R ranks, and binding it at mem, which must be
 * zero-filled (a fresh anonymous mapping, calloc: the R*R cells are only
 * touched where pairs carry traffic) and stay mapped at the same address
 * in every process that uses it. */
size_t ep_traffic_bytes(int num_ranks);
struct ep_traffic *ep_traffic_init(void *mem, int num_ranks);

/* Can the pair src -> dst carry rows at all (pair_stride)? */
int ep_traffic_pair_possible(const struct ep_traffic *t, int src, int dst);

/* A view of t for a collective over a group of its ranks (a parallel
 * configuration's MoE-EP group): the writers below take the group's rank
 * r and record it as map[r]. view is a private copy; map (one entry per
 * group rank, global ranks) must outlive it. t NULL: the view is NULL too. */
struct ep_traffic *ep_traffic_view(struct ep_traffic *view, const struct ep_traffic *t, const int *map);

/* Rank starts its next collective op (op: static name); returns its number. */
uint32_t ep_traffic_begin(struct ep_traffic *t, int rank, const char *op);
/* The pair src -> dst carries rows rows of row_bytes each over hop in op seq. */
void ep_traffic_expect(struct ep_traffic *t, uint32_t seq, int src, int dst, uint32_t rows,
		       uint32_t row_bytes, enum ep_traffic_hop hop);
/* rows of them (in all, not added) have arrived at dst so far. */
void ep_traffic_arrived(struct ep_traffic *t, uint32_t seq, int src, int dst, uint32_t rows);
/* Network pairs: rows of them (in all) src has put so far; with arrived
 * this tells rows never put from rows put and lost on the way. */
void ep_traffic_sent(struct ep_traffic *t, uint32_t seq, int src, int dst, uint32_t rows);
/* Rank waits for peer over the network now (peer -1: no longer; a wait
 * that failed keeps its peer); once per wait, not per row. ep_traffic_net_wait reads it back (-1: none). */
void ep_traffic_waits(struct ep_traffic *t, int rank, int peer);
int ep_traffic_net_wait(const struct ep_traffic *t, int rank);
/* Rank's network endpoint, for messages. Not for the hot path. */
void ep_traffic_set_path(struct ep_traffic *t, int rank, const char *path);

/* A snapshot of one pair in op seq. */
struct ep_traffic_pair {
	int src, dst;
	int known;           /* expected was set for this op */
	uint32_t expected, arrived; /* rows (expected 0 when unknown) */
	uint32_t sent;              /* network pairs: rows put so far (0 when not this op) */
	uint64_t row_bytes;
	enum ep_traffic_hop hop;
};
/* The highest op number any of ranks [lo, hi) has started (0: none). */
uint32_t ep_traffic_current(const struct ep_traffic *t, int lo, int hi);
void ep_traffic_pair(const struct ep_traffic *t, uint32_t seq, int src, int dst, struct ep_traffic_pair *p);

#endif
