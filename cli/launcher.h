/* launcher.h - spawns and supervises one process per rank for one sweep point.
 *
 * The shared arena (sync blocks, result blocks, timing arrays and the
 * variant's buffers) is one anonymous MAP_SHARED mapping made before fork:
 * nothing is ever created in /dev/shm, so even kill -9 leaves nothing behind.
 * Ranks die with the launcher (PR_SET_PDEATHSIG), are named epbench-r<N>,
 * and are pinned to CPUs (and NUMA nodes) unless --numa off.
 *
 * Supervision: the launcher polls its children. The first rank that crashes,
 * or reports a timeout, ends the run at once: every other rank is killed and
 * the message names the rank, its phase and the peers waiting on it. If no
 * rank makes progress for the timeout plus a grace period, the run is ended
 * naming the stuck ranks and whom they wait for.
 */
#ifndef EP_LAUNCHER_H
#define EP_LAUNCHER_H

#include "cli/bench.h"
#include "reports/results.h"

/* Runs one point; fills res (free with ep_run_result_free). Returns the exit
 * status: 0 pass, 1 wrong data, 3 environment, 4 timeout or dead rank. */
int ep_launch(const struct ep_variant *v, struct ep_run *run, struct ep_run_result *res);

/* Set from a signal handler: stop the current point, kill the ranks. */
void ep_launcher_interrupt(int sig);
/* Nonzero once a signal asked the run to stop. */
int ep_launcher_interrupted(void);

#endif
