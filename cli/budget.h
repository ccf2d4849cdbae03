/* budget.h - what a run may take of this machine: memory and processes, decided before any fork.
 *
 * A point costs the shared mapping (sync, results, timings, the variant's
 * arena), plus, for every rank process, the private memory the variant
 * says it allocates and a fixed per-process overhead (page tables, stack,
 * the pages of the launcher that fork duplicates, the kernel's own task
 * state): EP_RANK_OVERHEAD_BYTES. A point is refused (exit 3, with the
 * figure and what to lower) when that sum exceeds 90% of MemAvailable, or
 * when its rank processes exceed what the kernel (threads-max, pid_max)
 * and RLIMIT_NPROC still allow. The check runs twice: from a cheap lower
 * bound of every point before the first rank is spawned (so a hopeless
 * shape is refused in milliseconds), and from the variant's exact sizes
 * just before a point forks.
 */
#ifndef EP_BUDGET_H
#define EP_BUDGET_H

#include <stddef.h>

#include "collectives/ep.h"

#define EP_RANK_OVERHEAD_BYTES ((size_t)2 << 20) /* per rank process, measured ~0.6 MiB + margin */

/* A lower bound of one rank's private bytes for shape s, whatever the
 * variant: its input and output rows and every rank's routing (which each
 * rank regenerates to check itself). Cheap: arithmetic only. */
size_t ep_budget_rank_floor(const struct ep_shape *s);

/* Checks that `procs` rank processes on this host, each with rank_bytes of
 * private memory, plus shared_bytes of shared mapping, fit this machine.
 * 0, or -EP_ENOMEM with one line in msg giving the figure, the available
 * memory or process count, and what to lower. */
int ep_budget_check(size_t shared_bytes, size_t rank_bytes, int procs, char *msg, size_t len);

#endif
