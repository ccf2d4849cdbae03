/* result_json.h - a run's results as JSON: written by every run, read back by compare, ab, plot and --baseline.
 *
 * Schema "epbench/2" (written): the command and its command line; "config"
 * (as epbench/1); "traffic", every option that changes what moves, as
 * strings (two results are comparable only when these agree); "host";
 * "provenance" (reports/provenance.h); "points", each with its shape, its
 * "routing_hash" (SHA-256 of every rank's top-k ids), its verdict and check
 * figures, the limits it missed, and per op the statistics of the
 * per-iteration maximum over ranks and every sample of it ("samples_us", in
 * order); internode points also "nodes" and "links"; finally the verdict.
 *
 * Reading (Jansson) accepts epbench/1 and epbench/2, refuses a newer
 * schema, and says what an older one lacks (epbench/1: samples, routing
 * hashes, traffic beyond what its config holds, provenance).
 */
#ifndef EP_RESULT_JSON_H
#define EP_RESULT_JSON_H

#include <stddef.h>

#include "reports/report.h"

#define EP_JSON_SCHEMA "epbench/2"
#define EP_JSON_SCHEMA_VERSION 2

/* Writes the document of points [0, n) atomically. 0 or -errno. */
int ep_report_write_json(const char *path, const struct ep_report_meta *m, const struct ep_point *pts, int n);

/* One op of a point, as read. */
struct ep_doc_op {
	char name[32];
	double median_us, algbw_gbs, aggbw_gbs;
	double *samples_us;       /* NULL when the file has none (epbench/1) */
	int nsamples;
};

/* One node pair of an internode point, as read. */
struct ep_doc_link {
	int src, dst;
	double gbs[EP_MAX_OPS];   /* per op of the point, in the point's op order */
};

struct ep_doc_point {
	int ranks, tokens, hidden;
	char routing_hash[65];    /* "" when the file has none */
	int exit_code;
	int nops;
	struct ep_doc_op ops[EP_MAX_OPS];
	int nlinks;
	struct ep_doc_link *links;
};

/* A result file, as read. */
struct ep_doc {
	char path[512];
	int schema;               /* 1 or 2 */
	char command[32];
	char traffic[2048];       /* "key=value\n" lines, sorted by key */
	int check;
	double copy_gbs;
	int copy_threads;
	char commit[64], kernel[128], cpu_model[128], version[32], start_utc[32], rdma[256];
	int npoints;
	struct ep_doc_point *points;
	char lacks[200];          /* what an older schema cannot tell, or "" */
};

/* Reads path. 0, or a negative code with one line in err naming the file:
 * -EP_EUSAGE (missing, unreadable, not JSON, not an epbench result, a newer
 * schema than this reader knows) or -EP_ENOMEM. */
int ep_doc_read(const char *path, struct ep_doc *d, char *err, size_t len);

/* The same from text in memory (what ep_doc_read reads; the fuzz target's
 * entry). name stands for the file in messages. */
int ep_doc_parse(const char *text, size_t n, const char *name, struct ep_doc *d, char *err, size_t len);

void ep_doc_free(struct ep_doc *d);

/* Writes the result at base_path again, to out_path, with every op's
 * samples (and time statistics) replaced by d's for the same point and op
 * (ab's pooled results). 0, -EP_EUSAGE (base unreadable) or -errno. */
int ep_doc_write_samples(const char *base_path, const struct ep_doc *d, const char *out_path);

/* The point of d with this shape, or NULL. */
const struct ep_doc_point *ep_doc_find(const struct ep_doc *d, int ranks, int tokens, int hidden);

/* The point of b that matches a's point i: the same shape, and the same
 * occurrence of it when a sweep repeats a shape ("-t 16,16"). Or NULL. */
const struct ep_doc_point *ep_doc_match(const struct ep_doc *a, int i, const struct ep_doc *b);

/* The op of p with this name, or NULL. */
const struct ep_doc_op *ep_doc_op(const struct ep_doc_point *p, const char *name);

/* Names the first traffic key whose values differ in a and b ("dtype: bf16
 * in A, fp8 in B"), or returns 0 when they agree. */
int ep_doc_traffic_diff(const struct ep_doc *a, const struct ep_doc *b, char *out, size_t len);

#endif
