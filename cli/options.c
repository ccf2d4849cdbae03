/* options.c - one option table, parsed with getopt_long and printed as usage. */
#include "cli/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collectives/error.h"
#include "reports/text_file.h"

enum opt_id {
	OPT_RANKS = 256, OPT_TOKENS, OPT_HIDDEN, OPT_TOPK, OPT_EXPERTS, OPT_GROUPS,
	OPT_TOPK_GROUPS, OPT_ALIGN, OPT_SEED, OPT_DTYPE, OPT_WITH_TOPK, OPT_BIAS,
	OPT_COUNTS, OPT_ROUTING, OPT_MASKED, OPT_ITERS, OPT_WARMUP, OPT_CHECK,
	OPT_CACHED, OPT_OP, OPT_TIMEOUT, OPT_NUMA, OPT_JSON, OPT_CSV, OPT_DUMP,
	OPT_QUIET, OPT_VERBOSE, OPT_HELP, OPT_MAX_TOKENS, OPT_UNEVEN, OPT_ROUND_SCALE,
	OPT_UE8M0, OPT_HOOK, OPT_ZERO_COPY, OPT_FAULT, OPT_PERF_CTL,
	OPT_NODES, OPT_NODE_RANK, OPT_RANKS_PER_NODE, OPT_MASTER, OPT_LOCAL_NODES, OPT_TRANSPORT,
	OPT_IB_DEV, OPT_GID_INDEX, OPT_NODE_ADDR,
};

/* Which subcommands an option belongs to. */
#define FOR_NORMAL 1
#define FOR_LL 2
#define FOR_ALL 3
#define FOR_INTERNODE 4 /* only `epbench internode` (which also takes FOR_NORMAL ones) */
#define FOR_NODES (FOR_INTERNODE | FOR_LL) /* the node job's: internode, low-latency --nodes */

struct opt_def {
	const char *name;    /* dashed long name; the underscore spelling is accepted too */
	char letter;         /* short option, 0 if none */
	int has_arg;
	int id;
	const char *metavar;
	const char *help;
	int scope;           /* FOR_* bits (0 means FOR_ALL) */
};

static const struct opt_def opt_table[] = {
	{"num-ranks", 'r', 1, OPT_RANKS, "N|SWEEP", "rank processes (devices) [8]", FOR_ALL},
	{"num-tokens", 't', 1, OPT_TOKENS, "N|SWEEP", "tokens per rank [4096; low-latency: 128]", FOR_ALL},
	{"hidden", 0, 1, OPT_HIDDEN, "N|SWEEP", "hidden size [7168]", FOR_ALL},
	{"num-topk", 'k', 1, OPT_TOPK, "N", "experts per token [8]", FOR_ALL},
	{"num-experts", 'e', 1, OPT_EXPERTS, "N", "total experts, a multiple of ranks [256; low-latency: 288]", FOR_ALL},
	{"num-groups", 0, 1, OPT_GROUPS, "N", "expert groups for group-limited routing [ranks]", FOR_ALL},
	{"num-topk-groups", 0, 1, OPT_TOPK_GROUPS, "N", "groups one token may use (0: no limit) [0]", FOR_ALL},
	{"expert-alignment", 0, 1, OPT_ALIGN, "N", "round per-expert receive counts up to N [1]", FOR_NORMAL},
	{"num-max-dispatch-tokens-per-rank", 0, 1, OPT_MAX_TOKENS, "N", "receive buffer slots per (expert, source rank) [largest token count]", FOR_LL},
	{"uneven-tokens", 0, 1, OPT_UNEVEN, "0|1", "ranks send different token counts, 0 to --num-tokens (rank 0 keeps it) [0]", FOR_ALL},
	{"round-scale", 0, 0, OPT_ROUND_SCALE, NULL, "FP8 scales rounded to powers of two", FOR_LL},
	{"ue8m0", 0, 0, OPT_UE8M0, NULL, "FP8 scales packed as UE8M0 exponent bytes (needs --round-scale)", FOR_LL},
	{"hook", 0, 0, OPT_HOOK, NULL, "split send and receive phases and time them apart", FOR_LL},
	{"zero-copy", 0, 0, OPT_ZERO_COPY, NULL, "expert outputs written straight into the combine send buffer", FOR_LL},
	{"seed", 's', 1, OPT_SEED, "N", "seed of every input [0]", FOR_ALL},
	{"dtype", 'd', 1, OPT_DTYPE, "bf16|fp8|int8", "dispatch payload type (int8: normal mode only) [bf16]", FOR_ALL},
	{"with-topk", 0, 1, OPT_WITH_TOPK, "0|1", "dispatch carries topk_idx/topk_weights [1]", FOR_NORMAL},
	{"bias", 0, 1, OPT_BIAS, "0|1|2", "bias tensors added by combine [0]", FOR_NORMAL},
	{"expert-counts", 0, 1, OPT_COUNTS, "counts|prefix", "per-expert receive numbers as counts or prefix sums [counts]", FOR_NORMAL},
	{"routing", 0, 1, OPT_ROUTING, "KIND", "uniform | zipf:S | hot:EXPERT | file:PATH [uniform]", FOR_ALL},
	{"masked-ratio", 0, 1, OPT_MASKED, "F", "fraction of top-k entries set to -1 [0]", FOR_ALL},
	{"iters", 'n', 1, OPT_ITERS, "N", "timed iterations [20]", FOR_ALL},
	{"warmup", 'w', 1, OPT_WARMUP, "N", "warm-up iterations [5]", FOR_ALL},
	{"check", 'c', 1, OPT_CHECK, "0|1", "check every output byte against reference/ [1]", FOR_ALL},
	{"cached", 0, 0, OPT_CACHED, NULL, "time dispatch with the previous handle (cached mode)", FOR_NORMAL},
	{"op", 0, 1, OPT_OP, "dispatch|combine|both", "ops to time [both]", FOR_ALL},
	{"timeout", 0, 1, OPT_TIMEOUT, "SECS", "deadline of any single wait [60]", FOR_ALL},
	{"numa", 0, 1, OPT_NUMA, "on|off", "pin ranks to CPUs and NUMA nodes [on]", FOR_ALL},
	{"json", 0, 1, OPT_JSON, "FILE", "write the results as JSON (atomically)", FOR_ALL},
	{"csv", 0, 1, OPT_CSV, "FILE", "write one CSV row per op and sweep point (atomically)", FOR_ALL},
	{"dump", 0, 1, OPT_DUMP, "DIR", "write every rank's tensors as DIR/rank<N>/<name>.npy", FOR_ALL},
	{"nodes", 0, 1, OPT_NODES, "N", "nodes in the job [NNODES, or a launcher's environment]", FOR_NODES},
	{"node-rank", 0, 1, OPT_NODE_RANK, "I", "this node's rank, 0 hosts the rendezvous [NODE_RANK, ...]", FOR_NODES},
	{"ranks-per-node", 0, 1, OPT_RANKS_PER_NODE, "P", "rank processes per node (DeepEP: 8) [8]", FOR_NODES},
	{"master", 0, 1, OPT_MASTER, "HOST:PORT", "node 0's rendezvous address [MASTER_ADDR:MASTER_PORT]", FOR_NODES},
	{"local-nodes", 0, 0, OPT_LOCAL_NODES, NULL, "run all --nodes on this host over loopback TCP", FOR_NODES},
	{"transport", 0, 1, OPT_TRANSPORT, "auto|tcp|verbs", "network between nodes (auto: verbs if an RDMA device works) [auto]", FOR_NODES},
	{"ib-dev", 0, 1, OPT_IB_DEV, "NAME", "verbs: RDMA device [the first]", FOR_NODES},
	{"gid-index", 0, 1, OPT_GID_INDEX, "N", "verbs: GID index for RoCE [device default]", FOR_NODES},
	{"node-addr", 0, 1, OPT_NODE_ADDR, "IPV4", "address other nodes reach this one at [the one used to reach the master]", FOR_NODES},
	{"perf-ctl", 0, 1, OPT_PERF_CTL, "CTL[,ACK]", "perf control FIFOs: 'enable' before the timed loops, 'disable' after", FOR_ALL},
	{"fault", 0, 1, OPT_FAULT, "KIND:RANK", "inject a fault to test the checks: corrupt, die or hang, on RANK", FOR_ALL},
	{"quiet", 'q', 0, OPT_QUIET, NULL, "print only the table and the verdict", FOR_ALL},
	{"verbose", 'v', 0, OPT_VERBOSE, NULL, "print per-rank figures", FOR_ALL},
	{"help", 'h', 0, OPT_HELP, NULL, "this text", FOR_ALL},
};
#define NOPTS (int)(sizeof(opt_table) / sizeof(opt_table[0]))

static int scope_of(const char *command)
{
	if (strcmp(command, "internode") == 0)
		return FOR_NORMAL | FOR_INTERNODE;
	return strcmp(command, "low-latency") == 0 ? FOR_LL : FOR_NORMAL;
}

static int in_scope(const struct opt_def *d, const char *command)
{
	return (d->scope ? d->scope : FOR_ALL) & scope_of(command);
}

void ep_options_usage(const char *command, FILE *out)
{
	fprintf(out, "usage: epbench %s [options]\n\noptions:\n", command);
	for (int i = 0; i < NOPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		if (!in_scope(d, command))
			continue;
		char left[64];
		snprintf(left, sizeof(left), "%c%c%s--%s%s%s", d->letter ? '-' : ' ',
			 d->letter ? d->letter : ' ', d->letter ? ", " : "  ", d->name,
			 d->metavar ? " " : "", d->metavar ? d->metavar : "");
		fprintf(out, "  %-40s %s\n", left, d->help);
	}
	fprintf(out, "  %-40s %s\n", "    --case FILE", "read options from a case file (cases/*.case); later options override");
	fprintf(out, "\nSWEEP: N, A:B:xF (multiply), A:B:+S (add) or a list A,B,C.\n"
		     "Underscore spellings (--num_tokens) are accepted too.\n");
}

static void set_defaults(struct ep_options *o, const char *command)
{
	int ll = scope_of(command) == FOR_LL;
	memset(o, 0, sizeof(*o));
	o->command = command;
	o->num_topk = 8;
	o->num_experts = ll ? 288 : 256; /* DeepEP's test_low_latency / test_intranode */
	o->expert_alignment = 1;
	o->dtype = EP_DTYPE_BF16;
	o->with_topk = 1;
	o->expert_counts = EP_COUNTS_PLAIN;
	o->routing.kind = EP_ROUTE_UNIFORM;
	o->iters = 20;
	o->warmup = 5;
	o->check = 1;
	o->ops = EP_OPS_BOTH;
	o->timeout_s = 60;
	o->numa = 1;
	o->nodes = o->node_rank = -1; /* internode: not given (the environment may say) */
	o->gid_index = -1;
	o->transport = "auto";
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	for (unsigned char *c = (unsigned char *)err; *c; c++) /* one printable line, whatever was typed */
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	return -EP_EUSAGE;
}

static int parse_long(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int ep_sweep_parse(const char *spec, int lo, int hi, struct ep_sweep *out)
{
	long long a, b, step;
	int cap = 64, n = 0;
	int *v = malloc(sizeof(int) * (size_t)cap);
	char *copy = strdup(spec);
	int rc = -EP_EUSAGE;
	if (!v || !copy)
		goto out;
	char *c1 = strchr(copy, ':');
	if (c1) {
		char *c2 = strchr(c1 + 1, ':');
		*c1 = 0;
		if (c2)
			*c2 = 0;
		if (parse_long(copy, lo, hi, &a) || parse_long(c1 + 1, lo, hi, &b) || b < a)
			goto out;
		int mul = 1;
		step = 2;
		if (c2) {
			const char *st = c2 + 1;
			if (*st == 'x' || *st == '*')
				mul = 1, st++;
			else if (*st == '+')
				mul = 0, st++;
			else
				goto out;
			if (parse_long(st, 1, INT_MAX, &step) || (mul && step < 2))
				goto out;
		}
		if (mul && a == 0)
			goto out;
		for (long long x = a; x <= b; x = mul ? x * step : x + step) {
			if (n == cap) {
				int *nv = realloc(v, sizeof(int) * (size_t)(cap *= 2));
				if (!nv)
					goto out;
				v = nv;
			}
			v[n++] = (int)x;
			if (n > 4096)
				goto out;
		}
	} else {
		for (char *tok = copy, *comma; tok; tok = comma) {
			if ((comma = strchr(tok, ',')))
				*comma++ = 0; /* "1,,2" and "1," have an empty element: refused */
			if (parse_long(tok, lo, hi, &a) || n >= 4096)
				goto out;
			if (n == cap) {
				int *nv = realloc(v, sizeof(int) * (size_t)(cap *= 2));
				if (!nv)
					goto out;
				v = nv;
			}
			v[n++] = (int)a;
		}
		if (n == 0)
			goto out;
	}
	free(out->v);
	out->v = v;
	out->n = n;
	v = NULL;
	rc = 0;
out:
	free(v);
	free(copy);
	return rc;
}

static int single(struct ep_sweep *s, int value)
{
	free(s->v);
	s->v = malloc(sizeof(int));
	if (!s->v)
		return -ENOMEM;
	s->v[0] = value;
	s->n = 1;
	return 0;
}

static int parse_fault(const char *arg, struct ep_options *o, char *err, size_t len)
{
	static const char *kinds[] = {"", "corrupt", "die", "hang"};
	const char *colon = strchr(arg, ':');
	long long r;
	for (int k = 1; colon && k < 4; k++)
		if ((size_t)(colon - arg) == strlen(kinds[k]) && strncmp(arg, kinds[k], strlen(kinds[k])) == 0 &&
		    parse_long(colon + 1, 0, 4095, &r) == 0) {
			o->fault = (enum ep_fault)k;
			o->fault_rank = (int)r;
			return 0;
		}
	return fail(err, len, "invalid --fault '%s': want corrupt:RANK, die:RANK or hang:RANK", arg);
}

static int parse_routing(const char *arg, struct ep_options *o, char *err, size_t len)
{
	double s;
	long long e;
	if (strcmp(arg, "uniform") == 0) {
		o->routing.kind = EP_ROUTE_UNIFORM;
	} else if (strncmp(arg, "zipf:", 5) == 0) {
		if (parse_double(arg + 5, &s) || s <= 0 || s > 100)
			return fail(err, len, "invalid --routing '%s': zipf exponent must be in (0, 100]", arg);
		o->routing.kind = EP_ROUTE_ZIPF;
		o->routing.zipf_s = s;
	} else if (strncmp(arg, "hot:", 4) == 0) {
		if (parse_long(arg + 4, 0, INT_MAX, &e))
			return fail(err, len, "invalid --routing '%s': want hot:EXPERT", arg);
		o->routing.kind = EP_ROUTE_HOT;
		o->routing.hot_expert = (int)e;
	} else if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
		o->routing.kind = EP_ROUTE_FILE;
		free(o->routing_path); /* read once K and E are known */
		o->routing_path = strdup(arg + 5);
		if (!o->routing_path)
			return -ENOMEM;
	} else {
		return fail(err, len, "invalid --routing '%s': want uniform, zipf:S, hot:EXPERT or file:PATH", arg);
	}
	return 0;
}

static int parse_bool(const char *arg, const char *name, int *out, char *err, size_t len)
{
	if (strcmp(arg, "0") == 0 || strcmp(arg, "off") == 0 || strcmp(arg, "false") == 0)
		*out = 0;
	else if (strcmp(arg, "1") == 0 || strcmp(arg, "on") == 0 || strcmp(arg, "true") == 0)
		*out = 1;
	else
		return fail(err, len, "invalid --%s '%s': want 0 or 1", name, arg);
	return 0;
}

static int parse_int_opt(const char *arg, const char *name, long long lo, long long hi, int *out,
			 char *err, size_t len)
{
	long long v;
	if (parse_long(arg, lo, hi, &v))
		return fail(err, len, "invalid --%s '%s': want an integer in [%lld, %lld]", name, arg, lo, hi);
	*out = (int)v;
	return 0;
}

/* --perf-ctl CTL[,ACK]: both must be FIFOs that exist (perf makes them with
 * mkfifo); anything else would be overwritten or silently ignored. */
static int check_perf_ctl(const char *spec, char *err, size_t len)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *ack = strchr(buf, ',');
	if (ack)
		*ack++ = 0;
	for (const char *f = buf; f; f = ack, ack = NULL) {
		struct stat st;
		if (stat(f, &st))
			return fail(err, len, "invalid --perf-ctl '%s': '%s': %s (want perf's control FIFOs, see scripts/perf-timed.sh)",
				    spec, f, strerror(errno));
		if (!S_ISFIFO(st.st_mode))
			return fail(err, len, "invalid --perf-ctl '%s': '%s' is not a FIFO (want perf's control FIFOs, made by mkfifo)",
				    spec, f);
	}
	return 0;
}

/* Files named by options, checked before anything runs. Report paths are
 * checked by the sweep that writes them (only node 0 writes a node job's). */
static int check_files(const struct ep_options *o, char *err, size_t len)
{
	if (o->perf_ctl && check_perf_ctl(o->perf_ctl, err, len))
		return -EP_EUSAGE;
	if (o->dump_dir && ep_output_dir_check("--dump", o->dump_dir, err, len))
		return -EP_EUSAGE;
	return 0;
}

int ep_options_check_outputs(const struct ep_options *o, char *err, size_t len)
{
	if (o->json_path && ep_output_path_check("--json", o->json_path, err, len))
		return -EP_EUSAGE;
	if (o->csv_path && ep_output_path_check("--csv", o->csv_path, err, len))
		return -EP_EUSAGE;
	return 0;
}

/* getopt_long table: each option under its dashed and underscore names. */
static void build_long_options(const char *command, struct option *lo, char (*names)[40],
			       char *shortopts)
{
	int n = 0;
	char *sp = shortopts;
	*sp++ = ':'; /* report a missing argument as ':' */
	for (int i = 0; i < NOPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		if (!in_scope(d, command))
			continue;
		lo[n++] = (struct option){d->name, d->has_arg ? required_argument : no_argument, NULL, d->id};
		if (strchr(d->name, '-')) {
			snprintf(names[i], 40, "%s", d->name);
			for (char *c = names[i]; *c; c++)
				if (*c == '-')
					*c = '_';
			lo[n++] = (struct option){names[i], d->has_arg ? required_argument : no_argument, NULL, d->id};
		}
		if (d->letter) {
			*sp++ = d->letter;
			if (d->has_arg)
				*sp++ = ':';
		}
	}
	*sp = 0;
	lo[n] = (struct option){0, 0, 0, 0};
}

static const struct opt_def *def_of(int id)
{
	for (int i = 0; i < NOPTS; i++)
		if (opt_table[i].id == id || opt_table[i].letter == id)
			return &opt_table[i];
	return NULL;
}

static int apply(struct ep_options *o, int id, const char *arg, char *err, size_t len)
{
	const struct opt_def *d = def_of(id);
	const char *name = d ? d->name : "?";
	switch (d ? d->id : 0) {
	case OPT_RANKS:
		if (ep_sweep_parse(arg, 1, 4096, &o->ranks))
			return fail(err, len, "invalid --num-ranks '%s': want N in [1, 4096], A:B:xF, A:B:+S or A,B,C", arg);
		return 0;
	case OPT_TOKENS:
		if (ep_sweep_parse(arg, 0, 1 << 24, &o->tokens))
			return fail(err, len, "invalid --num-tokens '%s': want N in [0, 16777216], A:B:xF, A:B:+S or A,B,C", arg);
		return 0;
	case OPT_HIDDEN:
		if (ep_sweep_parse(arg, 1, 1 << 20, &o->hidden))
			return fail(err, len, "invalid --hidden '%s': want N in [1, 1048576], A:B:xF, A:B:+S or A,B,C", arg);
		return 0;
	case OPT_TOPK: return parse_int_opt(arg, name, 1, 1024, &o->num_topk, err, len);
	case OPT_EXPERTS: return parse_int_opt(arg, name, 1, 1 << 20, &o->num_experts, err, len);
	case OPT_GROUPS: return parse_int_opt(arg, name, 1, 1 << 20, &o->num_groups, err, len);
	case OPT_TOPK_GROUPS: return parse_int_opt(arg, name, 0, 1 << 20, &o->num_topk_groups, err, len);
	case OPT_ALIGN: return parse_int_opt(arg, name, 1, 1 << 20, &o->expert_alignment, err, len);
	case OPT_SEED: {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(arg, &end, 0);
		if (errno || end == arg || *end || arg[0] == '-')
			return fail(err, len, "invalid --seed '%s': want a non-negative integer", arg);
		o->seed = v;
		return 0;
	}
	case OPT_DTYPE:
		if (strcmp(arg, "bf16") == 0)
			o->dtype = EP_DTYPE_BF16;
		else if (strcmp(arg, "fp8") == 0)
			o->dtype = EP_DTYPE_FP8;
		else if (strcmp(arg, "int8") == 0)
			o->dtype = EP_DTYPE_INT8;
		else
			return fail(err, len, "invalid --dtype '%s': want bf16, fp8 or int8", arg);
		return 0;
	case OPT_WITH_TOPK: return parse_bool(arg, name, &o->with_topk, err, len);
	case OPT_BIAS: return parse_int_opt(arg, name, 0, 2, &o->num_bias, err, len);
	case OPT_COUNTS:
		if (strcmp(arg, "counts") == 0)
			o->expert_counts = EP_COUNTS_PLAIN;
		else if (strcmp(arg, "prefix") == 0)
			o->expert_counts = EP_COUNTS_PREFIX;
		else
			return fail(err, len, "invalid --expert-counts '%s': want counts or prefix", arg);
		return 0;
	case OPT_ROUTING: return parse_routing(arg, o, err, len);
	case OPT_MASKED:
		if (parse_double(arg, &o->routing.masked_ratio) || o->routing.masked_ratio < 0 ||
		    o->routing.masked_ratio > 1)
			return fail(err, len, "invalid --masked-ratio '%s': want a number in [0, 1]", arg);
		return 0;
	case OPT_ITERS: return parse_int_opt(arg, name, 1, 1000000, &o->iters, err, len);
	case OPT_WARMUP: return parse_int_opt(arg, name, 0, 1000000, &o->warmup, err, len);
	case OPT_CHECK: return parse_bool(arg, name, &o->check, err, len);
	case OPT_CACHED: o->cached = 1; return 0;
	case OPT_OP:
		if (strcmp(arg, "dispatch") == 0)
			o->ops = EP_OPS_DISPATCH;
		else if (strcmp(arg, "combine") == 0)
			o->ops = EP_OPS_COMBINE;
		else if (strcmp(arg, "both") == 0)
			o->ops = EP_OPS_BOTH;
		else
			return fail(err, len, "invalid --op '%s': want dispatch, combine or both", arg);
		return 0;
	case OPT_TIMEOUT:
		if (parse_double(arg, &o->timeout_s) || o->timeout_s <= 0 || o->timeout_s > 86400)
			return fail(err, len, "invalid --timeout '%s': want seconds in (0, 86400]", arg);
		return 0;
	case OPT_NUMA: return parse_bool(arg, name, &o->numa, err, len);
	case OPT_JSON: o->json_path = arg; return 0;
	case OPT_CSV: o->csv_path = arg; return 0;
	case OPT_DUMP: o->dump_dir = arg; return 0;
	case OPT_MAX_TOKENS: return parse_int_opt(arg, name, 1, 1 << 20, &o->num_max_dispatch_tokens, err, len);
	case OPT_UNEVEN: return parse_bool(arg, name, &o->uneven_tokens, err, len);
	case OPT_ROUND_SCALE: o->round_scale = 1; return 0;
	case OPT_UE8M0: o->use_ue8m0 = 1; return 0;
	case OPT_HOOK: o->hook = 1; return 0;
	case OPT_ZERO_COPY: o->zero_copy = 1; return 0;
	case OPT_FAULT: return parse_fault(arg, o, err, len);
	case OPT_PERF_CTL: o->perf_ctl = arg; return 0;
	case OPT_NODES: return parse_int_opt(arg, name, 1, EP_MAX_NODES, &o->nodes, err, len);
	case OPT_NODE_RANK: return parse_int_opt(arg, name, 0, EP_MAX_NODES - 1, &o->node_rank, err, len);
	case OPT_RANKS_PER_NODE: return parse_int_opt(arg, name, 1, 32, &o->ranks_per_node, err, len);
	case OPT_MASTER: o->master = arg; return 0;
	case OPT_LOCAL_NODES: o->local_nodes = 1; return 0;
	case OPT_TRANSPORT:
		if (strcmp(arg, "auto") && strcmp(arg, "tcp") && strcmp(arg, "verbs"))
			return fail(err, len, "invalid --transport '%s': want auto, tcp or verbs", arg);
		o->transport = arg;
		return 0;
	case OPT_IB_DEV: o->ib_dev = arg; return 0;
	case OPT_GID_INDEX: return parse_int_opt(arg, name, 0, 255, &o->gid_index, err, len);
	case OPT_NODE_ADDR: o->node_addr = arg; return 0;
	case OPT_QUIET: o->quiet = 1; return 0;
	case OPT_VERBOSE: o->verbose = 1; return 0;
	}
	return fail(err, len, "internal: unhandled option %d", id);
}

int ep_options_parse(const char *command, int argc, char **argv, struct ep_options *o,
		     FILE *out, char *err, size_t errlen)
{
	struct option lo[2 * NOPTS + 1];
	char names[NOPTS][40];
	char shortopts[3 * NOPTS + 2];
	int rc;
	set_defaults(o, command);
	build_long_options(command, lo, names, shortopts);
	optind = 0; /* full reset, also of getopt's internal state */
	opterr = 0;
	for (;;) {
		int idx = -1;
		int c = getopt_long(argc, argv, shortopts, lo, &idx);
		if (c == -1)
			break;
		if (c == '?') {
			const char *bad = argv[optind - 1];
			if (optopt && !(bad[0] == '-' && bad[1] == '-'))
				rc = fail(err, errlen, "unknown option '-%c' (see epbench %s --help)", optopt, command);
			else
				rc = fail(err, errlen, "unknown option '%s' (see epbench %s --help)", bad, command);
			goto bad;
		}
		if (c == ':') {
			rc = fail(err, errlen, "option '%s' needs a value", argv[optind - 1]);
			goto bad;
		}
		if (c == OPT_HELP || c == 'h') {
			ep_options_usage(command, out);
			ep_options_free(o); /* what options before --help allocated (found by fuzz_options) */
			return 1;
		}
		if ((rc = apply(o, c, optarg, err, errlen)))
			goto bad;
	}
	if (optind < argc) {
		rc = fail(err, errlen, "unexpected argument '%s' (see epbench %s --help)", argv[optind], command);
		goto bad;
	}
	o->ranks_given = o->ranks.n > 0;
	if ((!o->ranks.n && (rc = single(&o->ranks, 8))) ||
	    (!o->tokens.n && (rc = single(&o->tokens, scope_of(command) == FOR_LL ? 128 : 4096))) ||
	    (!o->hidden.n && (rc = single(&o->hidden, 7168))))
		goto bad;
	long long points = (long long)o->ranks.n * o->tokens.n * o->hidden.n;
	if (points > EP_MAX_POINTS) {
		rc = fail(err, errlen, "the sweep has %lld points (%d ranks x %d tokens x %d hidden values); at most %d are allowed",
			  points, o->ranks.n, o->tokens.n, o->hidden.n, EP_MAX_POINTS);
		goto bad;
	}
	if ((rc = check_files(o, err, errlen)))
		goto bad;
	if (o->nodes > 0 && o->node_rank >= o->nodes) {
		rc = fail(err, errlen, "--node-rank %d is outside [0, %d) for --nodes %d", o->node_rank, o->nodes,
			  o->nodes);
		goto bad;
	}
	if (o->routing_path) {
		int64_t *rows = NULL;
		size_t n = 0;
		if ((rc = ep_load_routing_file(o->routing_path, o->num_topk, o->num_experts, &rows, &n,
					       err, errlen)))
			goto bad;
		o->routing.file_idx = rows;
		o->routing.file_rows = n;
	}
	o->routing.num_groups = o->num_groups;
	o->routing.num_topk_groups = o->num_topk_groups;
	if (o->cached && !o->check && o->ops == EP_OPS_COMBINE)
		o->cached = 0; /* nothing to time in cached mode */
	return 0;
bad:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory parsing options");
	ep_options_free(o);
	return -EP_EUSAGE;
}

void ep_options_free(struct ep_options *o)
{
	free(o->ranks.v);
	free(o->tokens.v);
	free(o->hidden.v);
	free(o->routing_path);
	free((void *)o->routing.file_idx);
	o->ranks.v = o->tokens.v = o->hidden.v = NULL;
	o->ranks.n = o->tokens.n = o->hidden.n = 0;
	o->routing_path = NULL;
	o->routing.file_idx = NULL;
}

void ep_options_shape(const struct ep_options *o, int ranks, int tokens, int hidden,
		      struct ep_shape *s)
{
	*s = (struct ep_shape){
		.num_ranks = ranks,
		.num_tokens = tokens,
		.hidden = hidden,
		.num_topk = o->num_topk,
		.num_experts = o->num_experts,
		.expert_alignment = o->expert_alignment,
		.dtype = o->dtype,
		.with_topk = o->with_topk,
		.num_bias = o->num_bias,
		.expert_counts = o->expert_counts,
		.uneven_tokens = o->uneven_tokens,
	};
}

/* What DeepEP's low_latency_dispatch asserts, and our cast's own needs. */
static int check_low_latency(const struct ep_options *o, const struct ep_shape *s, char *err,
			     size_t len)
{
	int N = o->num_max_dispatch_tokens, H = s->hidden;
	if (s->dtype == EP_DTYPE_INT8)
		return fail(err, len, "--dtype int8 is for normal mode; low-latency dispatch sends bf16 or fp8");
	if (o->round_scale && s->dtype != EP_DTYPE_FP8)
		return fail(err, len, "--round-scale needs --dtype fp8 (it rounds FP8 scales), not %s",
			    ep_dtype_name(s->dtype));
	if (o->use_ue8m0 && !o->round_scale)
		return fail(err, len, "--ue8m0 needs --round-scale (UE8M0 holds power-of-two scales only)");
	if (o->use_ue8m0 && H % 512)
		return fail(err, len, "--hidden %d is not a multiple of 512, which --ue8m0 needs (four scale bytes per int32)", H);
	if (s->num_topk > 11)
		return fail(err, len, "--num-topk %d exceeds DeepEP's limit of 11 for low-latency kernels", s->num_topk);
	if (N && s->num_tokens > N)
		return fail(err, len, "--num-tokens %d exceeds --num-max-dispatch-tokens-per-rank %d (DeepEP: x.size(0) <= num_max_dispatch_tokens_per_rank)",
			    s->num_tokens, N);
	return 0;
}

int ep_options_check_shape(const struct ep_options *o, const struct ep_shape *s, char *err,
			   size_t len)
{
	int R = s->num_ranks, E = s->num_experts, K = s->num_topk, H = s->hidden;
	/* A sweep may aim a fault at a rank only its larger points have; a rank
	 * that no point has is a usage error. A node job's R is the job's. */
	int most = R;
	for (int i = 0; o->ranks_per_node <= 0 && i < o->ranks.n; i++)
		most = o->ranks.v[i] > most ? o->ranks.v[i] : most;
	if (o->fault != EP_FAULT_NONE && o->fault_rank >= most)
		return fail(err, len, "--fault targets rank %d, but the run has ranks 0 to %d", o->fault_rank, most - 1);
	if (strcmp(o->command, "low-latency") == 0 && check_low_latency(o, s, err, len))
		return -EP_EUSAGE;
	if (E % R)
		return fail(err, len, "--num-experts %d is not a multiple of --num-ranks %d", E, R);
	if (E / R > 1024)
		return fail(err, len, "--num-experts %d gives %d local experts per rank; DeepEP allows at most 1024", E, E / R);
	if (K > 32)
		return fail(err, len, "--num-topk %d exceeds DeepEP's limit of 32 for normal kernels", K);
	if (K > E)
		return fail(err, len, "--num-topk %d exceeds --num-experts %d", K, E);
	if (s->dtype == EP_DTYPE_FP8 && H % 128)
		return fail(err, len, "--hidden %d is not a multiple of 128, which --dtype fp8 needs (per-128-channel scales)", H);
	if ((size_t)H * (s->dtype == EP_DTYPE_BF16 ? 2 : 1) % 16)
		return fail(err, len, "--hidden %d gives %zu-byte %s rows; DeepEP needs a multiple of 16 bytes", H,
			    (size_t)H * (s->dtype == EP_DTYPE_BF16 ? 2 : 1), ep_dtype_name(s->dtype));
	const struct ep_routing *r = &o->routing;
	if (r->kind == EP_ROUTE_HOT && r->hot_expert >= E)
		return fail(err, len, "--routing hot:%d names an expert outside [0, %d)", r->hot_expert, E);
	if (o->num_groups || o->num_topk_groups) {
		int G = o->num_groups ? o->num_groups : R;
		if (E % G)
			return fail(err, len, "--num-experts %d is not a multiple of --num-groups %d", E, G);
		if (o->num_topk_groups > G)
			return fail(err, len, "--num-topk-groups %d exceeds the %d expert groups", o->num_topk_groups, G);
		if (o->num_topk_groups && K > o->num_topk_groups * (E / G))
			return fail(err, len, "--num-topk %d exceeds the %d experts of %d groups", K,
				    o->num_topk_groups * (E / G), o->num_topk_groups);
		if (r->kind != EP_ROUTE_UNIFORM)
			return fail(err, len, "--num-topk-groups works with --routing uniform only");
	}
	return 0;
}
