/* attn_gather.h - a MoE layer's last phase: the attention-TP group's combined slices put back together.
 *
 * parallel-semantics.md section 2: member i of attention-TP group d holds
 * the combined rows of its slice; row t of the group's output is member
 * t / c's row t - (t / c) c, i.e. the members' slices one after another.
 * Every rank leaves its combined rows in its slot of a node's shared
 * memory (slot r % P for world rank r); the gather copies the tp slots of
 * its group (collectives/group.h: node-wide barriers around the copies).
 * Used by the normal-mode layer (cli/moe_layer.c) and low-latency mode
 * (cli/low_latency.c).
 *
 * A group of whole nodes (tp a multiple of P) in a job whose ranks all
 * reach each other (low-latency's full mesh, struct ep_attn_net): after
 * `ready` (every rank of the job read the last contents) each rank puts
 * its rows into the receive area of every member on another node (block
 * = its index in the group), `exchange` signals every remote rank once and
 * waits for theirs, and the copy takes those members' slices from there.
 * With `rail` set (a job whose ranks reach only their rail peers on the
 * other nodes, e.g. low-latency mode's MoE layer with moe_tp > 1, whose
 * mesh is each MoE-EP group's: cli/ll_layer.c) the receive area is the
 * node's, shared by its P ranks: a rank puts its rows only to its rail
 * peer (its local index) on each of the group's other nodes, block = its
 * index in the group, which no other rank writes; `exchange` must then
 * signal (at least) those rail peers after the puts, and the gather's
 * opening node barrier orders every rail peer's landed blocks before the
 * node's reads. The normal-mode layer gathers over its rail peers too
 * (cli/moe_layer_net.c).
 */
#ifndef EP_ATTN_GATHER_H
#define EP_ATTN_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/sync.h"
#include "reference/compare.h"

/* The network half of a gather across nodes (NULL in ep_attn_gather: shared memory only). */
struct ep_attn_net {
	struct ep_transport *t;
	int me, recv_id, source_id; /* world rank; regions: recv, and the node's slots (a put source) */
	uint16_t *recv;             /* this rank's [tp][slot_rows][H], region recv_id (rail: the node's) */
	int rail;                   /* put to the rail peers only (the receive area is the node's) */
	int (*ready)(void *ctx);    /* the job's ranks meet */
	int (*exchange)(void *ctx); /* one signal to every remote rank, theirs awaited */
	void *ctx;
	uint64_t net_bytes[32];     /* the last gather's bytes put to each node */
};

struct ep_attn_gather {
	struct ep_attn_net *net;
	struct ep_waiter *waiter;
	int tp, d, P, hidden;    /* the group, the ranks of a node's slots, H */
	size_t slot_rows;        /* rows per slot (the longest slice) */
	uint16_t *slots;         /* shared [P][slot_rows][H] */
	uint16_t *out;           /* private [tp x slot_rows][H] */
	/* world rank r's slice length, and the expected combined row t of r */
	int (*len)(void *ctx, int r);
	int (*expected)(void *ctx, int r, int t, uint16_t *want);
	void *ctx;
};

/* Bytes of the shared slots for P ranks. */
size_t ep_attn_gather_slot_bytes(int P, size_t slot_rows, int hidden);

/* World rank r's slot (its combine output goes there). */
uint16_t *ep_attn_gather_slot(const struct ep_attn_gather *a, int r);

/* The receive area's bytes for a group of tp (across nodes). */
size_t ep_attn_gather_recv_bytes(int tp, size_t slot_rows, int hidden);

/* The gather: collective over the node (and across nodes with net and tp > P).
 * 0, -EP_ETIMEDOUT, or a transport's code. */
int ep_attn_gather_run(struct ep_attn_gather *a);

/* Every output row against `expected`, named attn_tp_gathered_x. */
void ep_attn_gather_check(struct ep_attn_gather *a, struct ep_check_report *rep);

/* Rows the group's output holds (this rank's own among them). */
size_t ep_attn_gather_rows(struct ep_attn_gather *a);

/* The gather's bytes for a rank with own_rows of them: algorithm (every
 * row), wire (the peers'). */
void ep_attn_gather_bytes(struct ep_attn_gather *a, size_t own_rows, uint64_t *alg, uint64_t *wire);

#endif
