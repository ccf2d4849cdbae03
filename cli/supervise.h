/* supervise.h - watching one point's rank processes: who died, who is stuck, and why.
 *
 * The launcher forks the ranks of a point and hands them to ep_supervise,
 * which polls them every 10 ms until all have exited. The first rank that
 * crashes or reports a failure ends the point at once: every other rank is
 * killed and the message names the rank, its phase and the peers waiting on
 * it. If no rank makes progress for the timeout plus a grace period, the
 * point ends naming every rank's phase and whom it waits for. A signal to
 * the launcher (ep_launcher_interrupt) ends it too. A point that ends stuck
 * prints every rank's state on stderr and names the likely culprit in its
 * message; SIGUSR1 prints the same block while the point goes on. Everything it knows of
 * a rank comes from the sync block's published state (ep_sync_view) and,
 * for a stopped process, /proc.
 */
#ifndef EP_SUPERVISE_H
#define EP_SUPERVISE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "collectives/sync.h"
#include "collectives/traffic.h"

/* One rank process. */
struct ep_child {
	pid_t pid;
	int done;    /* reaped */
	int status;  /* waitpid status once done */
};

/* What the state block is drawn from: this node's n ranks (global ranks
 * base..base+n-1), their control blocks, processes and traffic area. */
struct ep_state_scene {
	const struct ep_sync *s;
	const struct ep_child *kids;
	int n, base;
	const struct ep_traffic *traffic; /* global ranks, or NULL */
	const char *const *op_names;
	int nops;
};

/* What the supervisor calls while it waits (every field may be 0/NULL). */
struct ep_watch_hooks {
	int rank_base;  /* global rank of local rank 0 (node jobs) */
	/* about every 10 ms: 0, or an exit status with the reason in msg when
	 * the point must end (another node failed, the job was aborted) */
	int (*poll)(void *arg, char *msg, size_t len);
	void *arg;
	/* about every 10 ms: what local rank 0 does now (progress displays) */
	void (*tick)(void *tick_arg, const struct ep_rank_view *rank0);
	void *tick_arg;
	const char *const *op_names; /* the variant's ops by index, for the state block (cli/state_block.h) */
	int nops;
	const struct ep_traffic *traffic; /* per-pair rows of the op in flight (global ranks), or NULL */
	/* Multi-node jobs (NULL on one host): the state block across nodes.
	 * With why, when the block is due (ending: the point ends stuck or
	 * another node failed; else SIGUSR1): prints what this node prints on
	 * out and leaves the culprit text for the message in buf ("" for
	 * none). With why NULL, about every 10 ms: answers node 0's request, if
	 * any. Blocks at most a few seconds (node 0 waiting for the shares). */
	void (*state)(void *arg, const char *why, int ending, const struct ep_state_scene *sc, FILE *out, char *buf,
		      size_t len);
};

/* The state block printed when the last supervised point ended stuck (its
 * text, as printed on stderr), handed to the caller to keep (free it), or
 * NULL when none was printed. */
char *ep_supervise_take_block(void);

/* Waits for the n ranks of kids (all forked); kills the rest on the first
 * failure and reaps them all. Returns the point's exit status (0, 1 wrong
 * data, 3, 4) with the reason in msg when it is not 0 or 1. */
int ep_supervise(struct ep_child *kids, int n, const struct ep_sync *s, double timeout_s,
		 const struct ep_watch_hooks *hk, char *msg, size_t len);

/* Kills (SIGKILL) and reaps the first n kids that are not done. */
void ep_kill_all(struct ep_child *kids, int n);

/* SIGINT, SIGTERM and SIGHUP from now on stop the run (ep_launcher_interrupt);
 * SIGUSR1 prints every rank's state (cli/state_block.h) and the run goes on. */
void ep_launcher_catch_signals(void);
/* Set from a signal handler: stop the current point, kill the ranks. */
void ep_launcher_interrupt(int sig);
/* The signal that asked the run to stop, or 0. */
int ep_launcher_interrupted(void);
/* Was the state block asked for (SIGUSR1) since the last call? Clears it:
 * for a process that supervises no ranks itself and passes it on. */
int ep_launcher_state_requested(void);

#endif
