/* options.h - command-line options of the subcommands that run points.
 *
 * One table (cli/options.c) describes every option, one row each: its names
 * (DeepEP's dashed names, their underscore spellings, nccl-tests letters),
 * kind, limits, default, help text and the scopes of commands that take it.
 * Parsing, range checks, defaults and the usage text (with each default
 * shown) all come from that row; a command changes a default with a row of
 * its own (struct ep_option_default), never by being named here. Parsing
 * checks every value and every combination DeepEP would reject and reports
 * the first problem as one printable line quoting the value, before any
 * rank exists.
 */
#ifndef EP_OPTIONS_H
#define EP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/bench.h"
#include "cli/parallel.h"
#include "collectives/ep.h"
#include "reference/inputs.h"
#include "reference/placement.h"
#include "reports/gates.h"

/* A swept integer: "4096", "128:8192:x2", "1024:4096:+1024" or "2,4,8". */
struct ep_sweep {
	int n;
	int *v;
};

#define EP_MAX_POINTS 65536      /* sweep points of one run (ranks x tokens x hidden) */
#define EP_MAX_SWEEP_VALUES 4096 /* values of one swept option */

/* Which commands take an option: bits of a command's scope. An option is
 * offered to a command whose scope holds every bit of the option's. */
enum ep_scope {
	EP_SCOPE_RUN = 1,    /* every command that runs points */
	EP_SCOPE_NORMAL = 2, /* normal dispatch/combine: intranode, internode */
	EP_SCOPE_LL = 4,     /* low-latency */
	EP_SCOPE_NODES = 8,  /* node jobs: internode, low-latency --nodes */
	EP_SCOPE_MIXED = 16, /* both modes on one arena: mixed */
};

/* --deepep-mode, as SGLang spells it: the mode a command runs (normal:
 * intranode, internode; low_latency: low-latency; auto: mixed). */
enum ep_deepep_mode { EP_DEEPEP_NORMAL, EP_DEEPEP_LOW_LATENCY, EP_DEEPEP_AUTO };

/* A command's own default for one option, e.g. {"num-tokens", "128"}. */
struct ep_option_default {
	const char *name;
	const char *value;
};

/* What the parser needs of a command. */
struct ep_option_spec {
	const char *command;                       /* its name, for messages */
	unsigned scope;                            /* EP_SCOPE_* bits */
	const struct ep_option_default *defaults;  /* {NULL, NULL}-terminated, or NULL */
};

#define EP_OPTION_WORDS 2 /* 128 option rows */

struct ep_options {
	const char *command;
	struct ep_sweep ranks, tokens, hidden;
	int num_topk, num_experts, expert_alignment;
	int num_groups, num_topk_groups;  /* 0: not given */
	enum ep_dtype dtype;
	enum ep_payload payload;          /* --payload */
	int simd;                         /* --simd: an enum ep_simd, or -1 for auto */
	int soak, soak_first;             /* --soak N (0: time instead), --soak-first I */
	int with_topk, num_bias;
	enum ep_expert_counts expert_counts;
	uint64_t seed;
	struct ep_routing routing;        /* file rows owned here when kind == FILE */
	char *routing_path;               /* --routing file:PATH or trace:FILE (its trace in routing.trace) */
	struct ep_eplb_spec eplb;         /* --redundant-experts, --eplb-*, --expert-placement, --replica-policy */
	int iters, warmup, check, cached, ops;
	int copy_probe_off;               /* --copy-probe off: no memcpy probe (a --min-copy gate probes anyway) */
	double timeout_s;                 /* deadline of any single wait */
	int numa;                         /* pin ranks to CPUs / NUMA nodes */
	const char *json_path, *csv_path, *dump_dir;
	int quiet, verbose;
	int progress;                     /* 0 auto (a terminal), 1 on, 2 off */
	/* low-latency */
	int num_max_dispatch_tokens;      /* N; 0 = the largest per-rank token count */
	int uneven_tokens;                /* ranks send different token counts (<= T) */
	int round_scale, use_ue8m0;       /* FP8 cast variants */
	int hook;                         /* split send and receive phases */
	int zero_copy;                    /* expert output written into the send buffer */
	/* mixed (both modes on one arena) */
	int deepep_mode;                  /* --deepep-mode: enum ep_deepep_mode, checked against the command */
	int ll_tokens;                    /* --ll-tokens: tokens per rank of the low-latency ops */
	struct ep_faults faults;          /* fault injection, for testing pipelines and this tool */
	struct ep_gates gates;            /* performance limits (exit 5); the baseline is read by the sweep */
	const char *perf_ctl;             /* perf control FIFO[,ACK]: events on only while timing */
	/* node jobs (cli/cluster/env.c resolves what is not given from the environment) */
	int nodes, node_rank;             /* -1 when not given */
	int ranks_per_node;               /* 0 when not given */
	int local_nodes;                  /* run every node on this host */
	const char *master;               /* "HOST:PORT" or NULL */
	const char *transport;            /* "auto", "tcp" or "verbs" */
	const char *ib_dev;               /* verbs device or NULL */
	int gid_index;                    /* -1 = default */
	const char *node_addr;            /* this node's address for data connections, or NULL */
	/* a deployment's parallel configuration (cli/parallel.h): --parallel over --mindie-config, key by key */
	const char *parallel_spec, *mindie_config, *moe_comm;
	struct ep_parallel parallel;      /* all zero when none given */
	int ep_semantics;                 /* --ep-semantics: enum ep_semantics */
	int sp_pad;                       /* --sp-pad: enum ep_sp_pad */
	int tokens_per_dp;                /* --tokens-per-dp T_d; 0: --num-tokens x tp */
	/* --ep-semantics ascend (parallel-semantics.md sections 4-5) */
	int shared_experts;               /* --shared-experts S_n */
	int shared_expert_ranks;          /* --shared-expert-ranks S_r */
	int smooth_scales;                /* --smooth-scales: int8 smoothing scales from the seed */
	int comm_quant;                   /* --comm-quant: 0 none, 1 int8 */
	/* deployment knobs (cli/deploy_env.h, cli/limits.h) */
	int limits;                       /* --limits: enum ep_limits_profile (0 none) */
	int warn_only;                    /* --warn-only: a violated limit is a '#' line, not exit 2 */
	char env_from[320];               /* which options the environment set ("" when none) */
	uint64_t given[EP_OPTION_WORDS];  /* bit i: option row i was on the command line */
};

/* Parses argv (argv[0] is the subcommand name) for the command spec.
 * Returns 0, 1 when --help was printed to out (the caller exits 0), or
 * -EP_EUSAGE with one printable line in err. */
int ep_options_parse(const struct ep_option_spec *spec, int argc, char **argv, struct ep_options *o,
		     FILE *out, char *err, size_t errlen);
void ep_options_free(struct ep_options *o);

/* Does the command line run a parallel configuration's MoE layer (given and
 * not plain EP, resolved for its first rank count into *p)? */
int ep_options_layer(const struct ep_options *o, struct ep_parallel *p);
/* The EP_OPS_* feature bits of that layer's phases (0 when none). */
int ep_options_layer_features(const struct ep_options *o);
/* A node job's world of R ranks (nodes x ranks per node) as the ranks of
 * the command line, and the layer's feature bits for it. */
void ep_options_set_world(struct ep_options *o, int R);

/* Was the option of that long name on the command line? */
int ep_option_given(const struct ep_options *o, const char *name);

/* Checks one sweep point's shape and routing (divisibility, limits, dtype
 * constraints). 0 or -EP_EUSAGE with one line in err. */
int ep_options_check_shape(const struct ep_options *o, const struct ep_shape *s,
			   const struct ep_routing *r, char *err, size_t errlen);

/* Checks that the --json and --csv reports can be written (a file name in
 * an existing, writable directory). 0 or -EP_EUSAGE with one line in err. */
int ep_options_check_outputs(const struct ep_options *o, char *err, size_t errlen);

/* Builds the shape of sweep point (ranks, tokens, hidden). */
void ep_options_shape(const struct ep_options *o, int ranks, int tokens, int hidden,
		      struct ep_shape *s);

/* The narrow copy ranks see. */
void ep_options_run_cfg(const struct ep_options *o, struct ep_run_cfg *cfg);

/* What makes two results comparable: every option that changes what moves
 * (not the seed: the routing hash of each point covers it), as sorted
 * "key=value\n" lines, for the JSON "traffic" object. */
void ep_options_traffic(const struct ep_options *o, const struct ep_routing *r, int nodes, char *buf,
			size_t len);

/* The routing as a header names it ("uniform", "zipf:1.2", ...). */
void ep_options_routing_text(const struct ep_options *o, const struct ep_routing *r, char *buf,
			     size_t len);

/* Parses a sweep spec; 0 or -EP_EUSAGE. Values must lie in [lo, hi]. */
int ep_sweep_parse(const char *spec, int lo, int hi, struct ep_sweep *out);

/* Prints the usage of a command: every option in its scope with its default. */
void ep_options_usage(const struct ep_option_spec *spec, FILE *out);

#endif
