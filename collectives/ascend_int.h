/* ascend_int.h - what ascend.c and ascend_net.c share; not for callers.
 *
 * The pieces of a rank's area (ascend.c's file comment has the layout) and
 * the network half's entry points (ascend_net.c), each of which returns at
 * once (0) on a single host.
 */
#ifndef EP_ASCEND_INT_H
#define EP_ASCEND_INT_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/ascend.h"

/* The transport region every rank registers: its whole area. */
enum { ASCEND_NET_AREA };

/* A rank's area; offsets from base are the same in every rank's. */
struct ascend_area {
	uint8_t *base;
	uint8_t *x;          /* [C][row_bytes] */
	float *scales;       /* [C] */
	int32_t *assist;     /* [C][3] */
	uint8_t *landing;    /* [sets][BS][K + S_n][2H]: combine's slots, set = combine parity across nodes */
	int32_t *net_counts; /* [R][E + 2]: the counts rows of other nodes' ranks (across nodes only) */
	/* staging (across nodes only): the put sources */
	uint8_t *stage_x;    /* [BS (K + S_n)][row_bytes]: dispatch rows for other nodes */
	float *stage_scales; /* [BS (K + S_n)] */
	int32_t *stage_assist; /* [BS (K + S_n)][3] */
	int32_t *stage_counts; /* [E + 2]: this rank's counts row */
	uint8_t *stage_rows; /* [C][2H]: combine rows for other nodes (the dispatch pieces' space again) */
	size_t bytes;        /* of the whole area */
};

/* Area of EP rank `rank`, which must be on this rank's node. */
struct ascend_area ep_ascend_area(const struct ep_ascend *ctx, int rank);

/* Byte offset in an area of combine slot (t, slot) of the current combine's set. */
size_t ep_ascend_landing_offset(const struct ep_ascend *ctx, int t, int slot);

static inline int ascend_is_local(const struct ep_ascend *ctx, int q)
{
	return q / ctx->P == ctx->node;
}

/* The network half (ascend_net.c). */
/* Puts this rank's counts row (stage_counts) into every remote rank's net_counts and signals it. */
int ep_ascend_net_counts(struct ep_ascend *ctx);
/* Waits until every remote rank has signalled net_sends times: it has sent
 * what this rank waits for. record: note in arrival_ns when each node's last rank was seen. */
int ep_ascend_net_wait(struct ep_ascend *ctx, int record);
/* An op starts: start_ns, arrival_ns cleared. */
void ep_ascend_net_start(struct ep_ascend *ctx);
/* The staged dispatch rows to every remote rank, one put per (piece, expert), then one signal each.
 * next_row and stage_row hold the ends of this rank's blocks (send_rows has run). */
int ep_ascend_net_send_rows(struct ep_ascend *ctx, const int32_t *stage_row, int num_tokens);
/* Puts one staged combine row into slot (t, slot) of remote source s. */
int ep_ascend_net_put_slot(struct ep_ascend *ctx, int s, const uint8_t *row, int t, int slot);
/* One more collective send: a signal to every remote rank. */
int ep_ascend_net_signal(struct ep_ascend *ctx);

#endif
