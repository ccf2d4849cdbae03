/* sync.h - flags and barriers between rank processes that share memory.
 *
 * Every wait has a deadline. A waiter spins briefly (only when ranks have
 * cores of their own), then sleeps on a futex, so eight ranks on two cores
 * make progress instead of burning each other's time. Before it waits, a rank
 * publishes what it is doing (phase) and whom it waits for (peer) in its
 * control block, so that the launcher, or the rank itself on timeout, can say
 * exactly where a run got stuck.
 *
 * Wake-up protocol: a setter stores the value, then wakes only if the flag
 * counts waiters; a waiter counts itself in, re-checks, then sleeps on the
 * value it saw. Both sides use sequentially consistent atomics, so a wake-up
 * is never lost.
 */
#ifndef EP_SYNC_H
#define EP_SYNC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A 32-bit counter one rank advances and others wait on. */
struct ep_flag {
	_Atomic uint32_t value;
	_Atomic uint32_t waiters; /* processes asleep (or about to be) on value */
};

#define EP_MESSAGE_MAX 320

/* One rank's control block in shared memory (own cache lines). */
struct ep_rank_ctl {
	struct ep_flag arrive;          /* barrier epoch: rank has reached barrier N */
	_Atomic(const char *) phase;    /* static string; valid in every forked process */
	_Atomic int32_t waiting_on;     /* peer rank waited for, -1 when not waiting (kept by a wait that timed out) */
	_Atomic uint64_t progress;      /* bumped at every phase change and finished wait */
	_Atomic int32_t status;         /* 0, or the negative code the rank failed with */
	_Atomic int32_t pid;            /* set by the rank at start */
	_Atomic int32_t op, iter;       /* step: op index and iteration (-1: not timing) */
	char message[EP_MESSAGE_MAX];   /* the rank's own failure message, if any */
} __attribute__((aligned(128)));

/* The control blocks of all ranks; lives at the start of the shared arena. */
struct ep_sync {
	int num_ranks;
	struct ep_rank_ctl ctl[];
};

struct ep_traffic; /* collectives/traffic.h */

/* A rank's handle on the sync area (process-private). */
struct ep_waiter {
	struct ep_sync *sync;
	struct ep_traffic *traffic; /* per-pair rows of the op in flight, or NULL (set by the launcher) */
	int rank;
	int64_t timeout_ns; /* deadline of every single wait */
	int spin_limit;     /* pause-loop iterations before sleeping */
	uint32_t epoch;     /* barriers passed so far */
	int64_t wait_ns;    /* time spent in waits (spinning or asleep); callers reset it */
};

/* Setup: bytes to reserve for R ranks, and initialisation before fork. */
size_t ep_sync_bytes(int num_ranks);
void ep_sync_init(struct ep_sync *s, int num_ranks);

/* Per-rank handle. spin_limit < 0 picks one from the core count: a short spin
 * when every rank can have its own core, none when ranks outnumber cores. */
void ep_waiter_init(struct ep_waiter *w, struct ep_sync *s, int rank,
		    double timeout_s, int spin_limit);

/* Names what this rank does now (a static string) and bumps its progress. */
void ep_set_phase(struct ep_waiter *w, const char *phase);
/* Publishes which op and iteration this rank is at (iter < 0 for warm-up;
 * op -1 when it is not timing), for progress displays. Never blocks. */
void ep_set_step(struct ep_waiter *w, int op, int iter);

/* What one rank's control block says, for supervisors and diagnostics: a
 * snapshot of atomics, each read once (fields may be a moment apart). */
struct ep_rank_view {
	const char *phase;        /* static string */
	int waiting_on;           /* peer rank, -1 when not waiting */
	uint64_t progress;
	int status;               /* 0, or the negative code it failed with */
	int pid;
	int op, iter;             /* ep_set_step */
	const char *message;      /* its failure message ("" if none); lives in the block */
};
void ep_sync_view(const struct ep_sync *s, int rank, struct ep_rank_view *v);

/* The code this waiter's rank failed with (ep_sync_fail), 0 if none. */
int ep_waiter_failed(const struct ep_waiter *w);

/* Set / add to a flag, waking sleepers when there are any. Never blocks. */
void ep_flag_store(struct ep_flag *f, uint32_t value);
void ep_flag_add(struct ep_flag *f, uint32_t delta);

/* Blocks until f->value - target >= 0 (wrap-safe) or the deadline passes.
 * peer is the rank expected to advance the flag (recorded for diagnostics).
 * Returns 0 or -EP_ETIMEDOUT; on timeout the rank's message says what it
 * waited for (see ep_sync_describe). */
int ep_flag_wait_geq(struct ep_waiter *w, struct ep_flag *f, uint32_t target,
		     int peer);

/* All ranks meet; 0 or -EP_ETIMEDOUT naming the first missing peer. */
int ep_barrier(struct ep_waiter *w);

/* Monotonic clock in nanoseconds. */
int64_t ep_now_ns(void);

/* Records a failure in the rank's control block (status + message). */
void ep_sync_fail(struct ep_waiter *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
