/* state_block.h - every rank's state as one block, and the likely culprit of a stall in one line.
 *
 * Printed by the supervisor when a point times out or stalls and, without
 * stopping anything, when the launcher gets SIGUSR1: each rank's pid,
 * process state, phase, op and iteration, and whom it waits for; then one
 * line naming what holds the others up. Everything comes from the ranks'
 * published state (ep_sync_view) and /proc (read with stdio: not for a
 * signal handler); nothing here blocks. With the per-pair traffic area
 * (collectives/traffic.h) the block also holds the source x destination
 * matrix of the op in flight (cli/traffic_block.h), and the culprit line
 * says what the matrix shows: a rank whose rows reached nobody, or a link.
 */
#ifndef EP_STATE_BLOCK_H
#define EP_STATE_BLOCK_H

#include <stddef.h>
#include <stdio.h>

#include "cli/supervise.h"
#include "cli/traffic_block.h"

/* The likely culprit among the n ranks (global ranks base..base+n-1), one
 * line into buf: a rank others wait for that waits for no one (stuck in
 * its own work, or stopped), a rank that is gone, or two ranks waiting for
 * each other (a message lost between them); "" when nothing is waited for. */
void ep_state_culprit(const struct ep_sync *s, const struct ep_child *kids, int n, int base, char *buf,
		      size_t len);

/* What this node knows of every global rank (t->num_ranks of them, into b):
 * its own n ranks (global base..base+n-1) known, whom they wait for (in a
 * barrier or flag, else over the network), the others not. */
void ep_state_briefs(const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		     const struct ep_traffic *t, struct ep_rank_brief *b);

/* The culprit line of the block: the traffic's verdict (v may be NULL)
 * joined with ep_state_culprit's; a link leads, and so does the traffic's
 * rank in a view gathered across nodes (the waits seen are one node's);
 * otherwise this node's waits lead. "" when neither says anything. */
void ep_state_likely(const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		     const struct ep_traffic_view *v, char *buf, size_t len);

/* The block: a '#' header line saying why (e.g. "SIGUSR1; the run goes on"),
 * one '#' line per rank, the traffic matrix when t is given (this node's
 * pairs), and the culprit line. op_names (may be NULL) names
 * the ops by index. */
void ep_state_block(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		    const char *why, const char *const *op_names, int nops, const struct ep_traffic *t);

/* The block's pieces, for a block put together across nodes
 * (cli/cluster/state_share.h): the header line and column names; one rank's
 * line (waits_for: global rank or -1); the lines of this node's n ranks;
 * and the tail, the traffic matrix of v (may be NULL) and the culprit line,
 * which is also left in likely. */
void ep_state_header(FILE *out, int n, const char *why);
void ep_state_header_columns(FILE *out);
void ep_state_rank_line(FILE *out, int rank, int pid, char st, const char *phase, const char *op, int iter,
			int waits_for);
void ep_state_rank_lines(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
			 const char *const *op_names, int nops);
void ep_state_tail(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		   const struct ep_traffic_view *v, char *likely, size_t len);

/* The culprit line of v (may be NULL) followed by "; missing pairs: ..."
 * when the traffic has suspects: the text a failure message carries. */
void ep_state_summary(const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		      const struct ep_traffic_view *v, char *buf, size_t len);
/* This node's own block on out and its summary in buf (one host, or a
 * node's view before anything is gathered). */
void ep_state_local(FILE *out, const struct ep_state_scene *sc, const char *why, char *buf, size_t len);

/* A rank process's state letter from /proc (R, S, D, T, Z, ...), '?' if unknown. */
char ep_proc_state(int pid);

#endif
