/* state_block.h - every rank's state as one block, and the likely culprit of a stall in one line.
 *
 * Printed by the supervisor when a point times out or stalls and, without
 * stopping anything, when the launcher gets SIGUSR1: each rank's pid,
 * process state, phase, op and iteration, and whom it waits for; then one
 * line naming what holds the others up. Everything comes from the ranks'
 * published state (ep_sync_view) and /proc (read with stdio: not for a
 * signal handler); nothing here blocks. Not yet: the expected versus arrived rows per (source,
 * destination) pair.
 */
#ifndef EP_STATE_BLOCK_H
#define EP_STATE_BLOCK_H

#include <stddef.h>
#include <stdio.h>

#include "cli/supervise.h"

/* The likely culprit among the n ranks (global ranks base..base+n-1), one
 * line into buf: a rank others wait for that waits for no one (stuck in
 * its own work, or stopped), a rank that is gone, or two ranks waiting for
 * each other (a message lost between them); "" when nothing is waited for. */
void ep_state_culprit(const struct ep_sync *s, const struct ep_child *kids, int n, int base, char *buf,
		      size_t len);

/* The block: a '#' header line saying why (e.g. "SIGUSR1; the run goes on"),
 * one '#' line per rank, and the culprit line. op_names (may be NULL) names
 * the ops by index. */
void ep_state_block(FILE *out, const struct ep_sync *s, const struct ep_child *kids, int n, int base,
		    const char *why, const char *const *op_names, int nops);

/* A rank process's state letter from /proc (R, S, D, T, Z, ...), '?' if unknown. */
char ep_proc_state(int pid);

#endif
