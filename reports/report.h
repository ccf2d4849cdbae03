/* report.h - the console table, JSON and CSV views of a run's sweep points.
 *
 * The console table follows nccl-tests: every non-data line starts with '#',
 * a units row sits under the header, one data row per (point, op), verdict
 * lines at the end. JSON (schema "epbench/2", reports/result_json.h) and CSV carry the same
 * numbers for machines; both are rewritten atomically after every point, so
 * a later failure never erases what was measured before it.
 */
#ifndef EP_REPORT_H
#define EP_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "reports/provenance.h"
#include "reports/results.h"


/* Everything about the run that is not per point. */
struct ep_report_meta {
	const char *command;      /* "intranode" */
	const char *version;
	const char *command_line; /* argv joined */
	const char *dtype;
	const char *payload;      /* "narrow", "wide" */
	int num_topk, num_experts;
	const char *routing;      /* "uniform", "zipf:1.2", ... */
	double masked_ratio;
	uint64_t seed;
	int iters, warmup, check, cached, num_bias;
	double timeout_s;
	const char *transport;    /* "shm" */
	const char *simd;         /* the kernels' instruction set, "avx512" (or NULL) */
	const char *variant_options; /* "key=value ..." of the subcommand's own options, or NULL */
	const char *warnings;     /* lines ('\n' after each) the header prints as "# warning: ...", or NULL */
	/* host */
	const char *hostname, *cpu_model;
	int cores, numa_nodes;
	uint64_t mem_total;
	double copy_gbs;          /* aggregate memcpy GB/s for min(ranks, cores) threads */
	int copy_threads;
	/* what makes two results comparable: every option that changes the
	 * traffic, as "key=value" lines (cli/sweep.c makes them) */
	const char *traffic;
	const struct ep_provenance *provenance; /* or NULL */
};

/* One sweep point. */
struct ep_point {
	int ranks, tokens, hidden;
	struct ep_run_result res;
};

/* Console. */
/* quiet: only the column headers, without the run and host lines. */
void ep_table_header(FILE *out, const struct ep_report_meta *m, int quiet);
void ep_table_point(FILE *out, const struct ep_point *pt, double copy_gbs, int verbose);
/* Internode: per-node and per-link lines of a point, then the slowest node
 * and link named (nothing when the point has no node figures). */
/* A soak's line (nothing for a timed point): passes, failures, the 95%
 * bound; for a failure, the first failed pass and the command line that
 * repeats just that pass (command_line with --soak-first and --soak 1). */
void ep_table_soak(FILE *out, const struct ep_point *pt, const char *command_line, uint64_t seed);
void ep_table_nodes(FILE *out, const struct ep_point *pt);
/* The run's exit status: the most severe point's (ep_exit_worse). */
int ep_points_verdict(const struct ep_point *pts, int n);
/* Verdict lines for all points; returns the run's exit status (worst point).
 * check: whether the run asked for checking (the footer says so even when
 * no point got that far); report_error: why a requested --json/--csv
 * report could not be written, or NULL (it makes the status at least 3). */
int ep_table_footer(FILE *out, const struct ep_point *pts, int n, int check, const char *report_error);

/* Files (atomic). 0 or -errno. JSON: reports/result_json.h. */
int ep_report_write_csv(const char *path, const struct ep_report_meta *m,
			const struct ep_point *pts, int n);

/* Rewrites the --json and --csv reports (either path may be NULL) after a
 * point. On a failure, keeps the first in err as one line naming the path,
 * prints it to stderr, and returns -errno; the caller's footer then makes
 * the run fail (a report asked for and lost must not pass). */
int ep_report_write_all(const char *json_path, const char *csv_path, const struct ep_report_meta *m,
			const struct ep_point *pts, int n, char *err, size_t errlen);

/* Name of an exit status: "PASS", "WRONG DATA", ... */
const char *ep_verdict_name(int exit_code);

#endif
