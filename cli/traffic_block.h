/* traffic_block.h - the source x destination matrix of a stuck op: which transfers never arrived, and whose fault.
 *
 * Reads the per-pair words of collectives/traffic.h (expected versus arrived
 * rows of the op in flight) together with what is known of each rank
 * (whom it waits for, whether its process is stopped or gone), classifies
 * every pair, prints the pairs that did not complete (suspects first, with
 * the transport and path of each) and a grid, and names the likely culprit
 * in one line: a rank whose rows reached nobody (or that nothing reached),
 * or a pair, or a pair of nodes, that alone is missing (a link). A stopped
 * process among the suspects is the culprit before any link.
 *
 * A pair with rows missing has a side that must act next (its mover): the
 * sender while rows are unsent (a pushed copy over shared memory is the
 * arrival), the receiver, which counts what lands or what it pulls, once
 * the pair's rows are all put (network) or published (a pull). The pair is
 *   complete     every expected row arrived;
 *   held         the mover waits for a third rank: a consequence;
 *   pending      the mover is at work (waits for no one): not yet a suspect;
 *   missing      the mover is stopped, or gone without a wait, or waits for
 *                the other side of the pair itself (e.g. a receiver for rows
 *                put but never landed): a suspect;
 *   not started  the source never started this op: a suspect.
 * Nothing here blocks or allocates more than the R ranks' briefs.
 */
#ifndef EP_TRAFFIC_BLOCK_H
#define EP_TRAFFIC_BLOCK_H

#include <stddef.h>
#include <stdio.h>

#include "collectives/traffic.h"

/* What is known of one global rank when the matrix is read. */
struct ep_rank_brief {
	int known;       /* its node answered (its words in the area are current) */
	int waiting_on;  /* global rank it waits for, -1 when none */
	char state;      /* process state letter (R, S, T...), 'X' gone, '?' unknown */
};

/* The view the matrix is read in: the area, the R ranks' briefs, and how
 * ranks group into nodes (ranks_per_node 0: one host). */
struct ep_traffic_view {
	const struct ep_traffic *t;
	const struct ep_rank_brief *brief; /* [R] */
	int ranks_per_node;
	int gathered; /* every node was asked: a pair with a side not known is a suspect ("no answer");
		       * 0: one node's own view, where such pairs are out of sight */
};

enum ep_pair_status { EP_PAIR_COMPLETE, EP_PAIR_HELD, EP_PAIR_MISSING, EP_PAIR_NOT_STARTED, EP_PAIR_UNUSED,
		      EP_PAIR_PENDING };

/* Status of the pair src -> dst in op seq (p is filled); *holder gets the
 * rank a held pair waits for. */
enum ep_pair_status ep_traffic_classify(const struct ep_traffic_view *v, uint32_t seq, int src, int dst,
					struct ep_traffic_pair *p, int *holder);

/* The likely culprit by traffic in op seq, one line into buf ("" when no
 * pair is suspect); returns 2 for a link, 1 for a rank, 0 otherwise. */
int ep_traffic_culprit(const struct ep_traffic_view *v, uint32_t seq, char *buf, size_t len);

/* The '#' lines: the op, the pairs that did not complete (suspects first)
 * with their paths, a count of the complete ones, and the grid for R <= 16. */
void ep_traffic_print(FILE *out, const struct ep_traffic_view *v, uint32_t seq);

/* The suspect pairs as "2->0 0/21 rows shm, ..." (up to len), for the JSON error. */
void ep_traffic_suspects_text(const struct ep_traffic_view *v, uint32_t seq, char *buf, size_t len);

#endif
