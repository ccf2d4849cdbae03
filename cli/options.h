/* options.h - command-line options of the benchmark subcommands.
 *
 * One table describes every option: its names (DeepEP's dashed names, their
 * underscore spellings, nccl-tests letters), argument, default and help text;
 * parsing and the usage text both come from it. Parsing checks every value
 * and every combination DeepEP would reject, and reports the first problem
 * as one line quoting the bad value, before any rank exists.
 */
#ifndef EP_OPTIONS_H
#define EP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "collectives/ep.h"
#include "reference/inputs.h"

/* A swept integer: "4096", "128:8192:x2", "1024:4096:+1024" or "2,4,8". */
struct ep_sweep {
	int n;
	int *v;
};

#define EP_MAX_NODES 32 /* internode: nodes in one job */
#define EP_MAX_POINTS 65536 /* sweep points of one run (ranks x tokens x hidden) */

/* Which ops are timed. */
enum ep_op_mask { EP_OPS_DISPATCH = 1, EP_OPS_COMBINE = 2, EP_OPS_BOTH = 3 };

struct ep_options {
	const char *command;          /* "intranode", ... */
	struct ep_sweep ranks, tokens, hidden;
	int num_topk, num_experts, expert_alignment;
	int num_groups, num_topk_groups;
	enum ep_dtype dtype;
	int with_topk, num_bias;
	enum ep_expert_counts expert_counts;
	uint64_t seed;
	struct ep_routing routing;    /* file rows owned here when kind == FILE */
	char *routing_path;           /* --routing file:PATH */
	int iters, warmup, check, cached, ops;
	double timeout_s;             /* deadline of any single wait */
	int numa;                     /* pin ranks to CPUs / NUMA nodes */
	const char *json_path, *csv_path, *dump_dir;
	int quiet, verbose;
	/* low-latency only */
	int num_max_dispatch_tokens;  /* N; 0 = the largest per-rank token count */
	int uneven_tokens;            /* ranks send different token counts (<= T) */
	int round_scale, use_ue8m0;   /* FP8 cast variants */
	int hook;                     /* split send and receive phases */
	int zero_copy;                /* expert output written into the send buffer */
	/* fault injection, for testing pipelines and this tool */
	enum ep_fault { EP_FAULT_NONE, EP_FAULT_CORRUPT, EP_FAULT_DIE, EP_FAULT_HANG } fault;
	int fault_rank;
	const char *perf_ctl;         /* perf control FIFO[,ACK FIFO]: events on only while timing */
	/* the node job: internode, low-latency --nodes (cluster.c resolves what is not given from the environment) */
	int nodes, node_rank;         /* -1 when not given */
	int ranks_per_node;           /* 0 when not given */
	int ranks_given;              /* --num-ranks was on the command line */
	int local_nodes;              /* run every node on this host */
	const char *master;           /* "HOST:PORT" or NULL */
	const char *transport;        /* "auto", "tcp" or "verbs" */
	const char *ib_dev;           /* verbs device or NULL */
	int gid_index;                /* -1 = default */
	const char *node_addr;        /* this node's address for data connections, or NULL */
};

/* Parses argv (argv[0] is the subcommand name). Returns 0, 1 when --help was
 * printed to out (the caller exits 0), or -EP_EUSAGE with one line in err. */
int ep_options_parse(const char *command, int argc, char **argv, struct ep_options *o,
		     FILE *out, char *err, size_t errlen);
void ep_options_free(struct ep_options *o);

/* Checks one sweep point's shape (divisibility, limits, dtype constraints).
 * 0 or -EP_EUSAGE with one line in err. */
int ep_options_check_shape(const struct ep_options *o, const struct ep_shape *s, char *err,
			   size_t errlen);

/* Checks that the --json and --csv reports can be written (a file name in
 * an existing, writable directory). 0 or -EP_EUSAGE with one line in err. */
int ep_options_check_outputs(const struct ep_options *o, char *err, size_t errlen);

/* Builds the shape of sweep point (ranks[i], tokens[j], hidden[k]). */
void ep_options_shape(const struct ep_options *o, int ranks, int tokens, int hidden,
		      struct ep_shape *s);

/* Parses a sweep spec; 0 or -EP_EUSAGE. Values must lie in [lo, hi]. */
int ep_sweep_parse(const char *spec, int lo, int hi, struct ep_sweep *out);

/* Prints the usage of a subcommand. */
void ep_options_usage(const char *command, FILE *out);

#endif
