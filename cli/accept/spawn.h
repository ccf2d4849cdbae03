/* spawn.h - one child program of an acceptance step, under a deadline, while the node keeps talking.
 *
 * The child runs in a process group of its own with stdout and stderr in a
 * log file; it dies with this process (PR_SET_PDEATHSIG). While it runs,
 * pump is called every 100 ms (the cluster's heartbeats); a pump that
 * returns nonzero ends the child. At the deadline the whole group is
 * killed. Blocks at most deadline_s plus 1 s.
 */
#ifndef EP_ACCEPT_SPAWN_H
#define EP_ACCEPT_SPAWN_H

#include <stddef.h>

typedef int (*ep_pump_fn)(void *ctx, int wait_ms, char *msg, size_t len);

/* Runs prog (a path, or a name looked up in PATH) with argv (argv[0] is
 * prog's name). Returns its exit status (128 + signal when killed by
 * one); -1 when it could not start; -2 at the deadline; -3 when pump
 * ended it (its status in *pump_rc). msg holds one line when not 0. */
int ep_accept_spawn(const char *prog, char *const argv[], const char *log_path, double deadline_s,
		    ep_pump_fn pump, void *ctx, int *pump_rc, char *msg, size_t len);

/* The last n lines of a log file, into out (empty when unreadable). */
void ep_log_tail(const char *path, int n, char *out, size_t len);

#endif
