/* sweep.h - the one driver of a command's sweep of points, on one host or as one node of a job.
 *
 * A sweep is the command line's points (ranks x tokens x hidden; a node job
 * sweeps tokens x hidden at its fixed rank count). ep_sweep_check refuses,
 * before anything runs, a point whose shape is wrong (exit 2), a report
 * that could not be written (2), or a point that would not fit this
 * machine (3; so is a --simd level this CPU does not run). ep_sweep_run
 * selects that level, installs the signal handlers, prints the
 * header, runs each point through a runner (this host's launcher, or a
 * node's part of a cluster job), prints its rows, rewrites the --json and
 * --csv reports after every point (atomically, so nothing measured is
 * lost), keeps a status line on a terminal, and ends with the footer and
 * the exit status (the most severe point's; a report that could not be
 * written makes it at least 3).
 */
#ifndef EP_SWEEP_H
#define EP_SWEEP_H

#include <stddef.h>

#include "cli/command.h"
#include "cli/launcher.h"
#include "reports/report.h"

/* What runs the points. */
struct ep_sweep_runner {
	void *ctx;
	int reporter;          /* this process prints the table and writes the reports */
	int fixed_ranks;       /* a node job's R (ranks are not swept); 0 on one host */
	int nodes;             /* N of a node job, 0 on one host */
	int ranks_here;        /* rank processes per point on this host (0: the point's R) */
	int stop_on_failure;   /* a point that fails other than with wrong data ends the sweep */
	/* Before the first point (may be NULL): what the header says of where the
	 * run happens. 0, or an exit status (the sweep then ends, nothing run). */
	int (*begin)(void *ctx, char *transport, size_t tlen, char *where, size_t wlen);
	/* One point: fills res (and returns res->exit_code). lo carries the
	 * supervisor hooks of the sweep (progress); the runner adds its own. */
	int (*run)(void *ctx, int index, struct ep_run *run, struct ep_launch_opts *lo,
		   struct ep_run_result *res);
	/* After the last point (may be NULL): how many ran, the sweep's status. */
	void (*end)(void *ctx, int done, int code);
};

/* Checks every point of the sweep before anything runs: shapes and routing
 * (the common checks, then the command's), the report paths when this
 * process writes them, then whether procs_here rank processes of each point
 * fit this machine (0: the point's R). Returns 0, or the exit status (2
 * usage, 3 environment) with one line in err. */
int ep_sweep_check(const struct ep_command *cmd, const struct ep_options *o, int fixed_ranks, int nodes,
		   int procs_here, int reporter, char *err, size_t len);

/* Runs the sweep; returns the exit status. cmdline is the command as typed
 * (for the report). */
int ep_sweep_run(const struct ep_command *cmd, const struct ep_options *o,
		 const struct ep_sweep_runner *r, const char *cmdline);

/* "epbench ARGS...": the command as typed, for the reports (malloc'ed, or NULL). */
char *ep_sweep_command_line(int argc, char **argv);

/* The runner of a one-host sweep: each point of cmd through ep_launch. */
struct ep_sweep_runner ep_sweep_here(const struct ep_command *cmd);

#endif
