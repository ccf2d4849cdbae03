/* options.c - one option table: parsing, limits, defaults and usage from one row per option. */
#include "cli/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cluster/endpoint.h"
#include "cli/deploy_env.h"
#include "cli/mindie_config.h"
#include "collectives/error.h"
#include "collectives/simd.h"
#include "reference/routing_step.h"
#include "reference/trace.h"
#include "reports/text_file.h"

/* How a row's value is parsed and stored (at offset `off` in ep_options). */
enum kind {
	K_FLAG,   /* no argument: sets an int to 1 */
	K_BOOL,   /* 0|1|on|off|true|false into an int */
	K_INT,    /* an integer in [lo, hi] into an int */
	K_SWEEP,  /* N, A:B:xF, A:B:+S or A,B,C, each in [lo, hi], into a struct ep_sweep */
	K_ENUM,   /* one of `choices` ("a|b|c") into an int: its index, or values[index] */
	K_WORD,   /* one of `choices`, kept as the argument's string */
	K_STRING, /* any string, kept as the argument (a path, an address) */
	K_CUSTOM, /* parse() does it all */
};

struct opt_def {
	const char *name;      /* dashed long name; the underscore spelling is accepted too */
	char letter;           /* short option, 0 if none */
	enum kind kind;
	size_t off;            /* of the field in struct ep_options */
	long long lo, hi;      /* K_INT, K_SWEEP */
	const char *choices;   /* K_ENUM, K_WORD */
	const int *values;     /* K_ENUM: the value of each choice (NULL: its index) */
	int (*parse)(struct ep_options *o, const char *arg, char *err, size_t len); /* K_CUSTOM */
	const char *def;       /* default, parsed as an argument would be (unchecked); NULL: zero */
	const char *def_doc;   /* what --help shows when the default is computed, or NULL */
	const char *metavar;
	const char *help;
	unsigned scope;        /* EP_SCOPE_* bits a command must have */
};

static int parse_routing(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_fault(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_seed(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_timeout(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_masked(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_min_algbw(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_max_median(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_min_copy(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_max_regress(struct ep_options *o, const char *arg, char *err, size_t len);
static int parse_confidence(struct ep_options *o, const char *arg, char *err, size_t len);
static int parallel_options(struct ep_options *o, char *err, size_t len);
static int parse_eplb_load(struct ep_options *o, const char *arg, char *err, size_t len);

#define F(field) offsetof(struct ep_options, field)
#define RUN EP_SCOPE_RUN
#define NORMAL (EP_SCOPE_RUN | EP_SCOPE_NORMAL)
#define LL (EP_SCOPE_RUN | EP_SCOPE_LL)
#define NODES (EP_SCOPE_RUN | EP_SCOPE_NODES)
static const int op_values[] = {EP_OPS_DISPATCH, EP_OPS_COMBINE, EP_OPS_BOTH};
static const int simd_values[] = {-1, EP_SIMD_BASELINE, EP_SIMD_AVX2, EP_SIMD_AVX512};

static const struct opt_def opt_table[] = {
	{"num-ranks", 'r', K_SWEEP, F(ranks), 1, 4096, .def = "8", .metavar = "N|SWEEP", .help = "rank processes (devices)", .scope = RUN},
	{"num-tokens", 't', K_SWEEP, F(tokens), 0, 1 << 24, .def = "4096", .metavar = "N|SWEEP", .help = "tokens per rank", .scope = RUN},
	{"hidden", 0, K_SWEEP, F(hidden), 1, 1 << 20, .def = "7168", .metavar = "N|SWEEP", .help = "hidden size", .scope = RUN},
	{"num-topk", 'k', K_INT, F(num_topk), 1, 1024, .def = "8", .metavar = "N", .help = "experts per token", .scope = RUN},
	{"num-experts", 'e', K_INT, F(num_experts), 1, 1 << 20, .def = "256", .metavar = "N", .help = "experts the router picks from (with --redundant-experts: logical; physical = + N, a multiple of ranks)", .scope = RUN},
	{"num-groups", 0, K_INT, F(num_groups), 1, 1 << 20, .def_doc = "ranks", .metavar = "N", .help = "expert groups for group-limited routing", .scope = RUN},
	{"num-topk-groups", 0, K_INT, F(num_topk_groups), 0, 1 << 20, .def = "0", .metavar = "N", .help = "groups one token may use (0: no limit)", .scope = RUN},
	{"expert-alignment", 0, K_INT, F(expert_alignment), 1, 1 << 20, .def = "1", .metavar = "N", .help = "round per-expert receive counts up to N", .scope = NORMAL},
	{"num-max-dispatch-tokens-per-rank", 0, K_INT, F(num_max_dispatch_tokens), 1, 1 << 20, .def_doc = "largest token count", .metavar = "N", .help = "receive buffer slots per (expert, source rank)", .scope = LL},
	{"uneven-tokens", 0, K_BOOL, F(uneven_tokens), .def = "0", .metavar = "0|1", .help = "ranks send different token counts, 0 to --num-tokens (rank 0 keeps it)", .scope = RUN},
	{"round-scale", 0, K_FLAG, F(round_scale), .help = "FP8 scales rounded to powers of two", .scope = LL},
	{"ue8m0", 0, K_FLAG, F(use_ue8m0), .help = "FP8 scales packed as UE8M0 exponent bytes (needs --round-scale)", .scope = LL},
	{"hook", 0, K_FLAG, F(hook), .help = "split send and receive phases and time them apart", .scope = LL},
	{"zero-copy", 0, K_FLAG, F(zero_copy), .help = "expert outputs written straight into the combine send buffer", .scope = LL},
	{"deepep-mode", 0, K_ENUM, F(deepep_mode), .choices = "normal|low_latency|auto", .def_doc = "the command's", .metavar = "normal|low_latency|auto", .help = "SGLang's --deepep-mode: normal is intranode/internode, low_latency is low-latency, auto is mixed (README: Mixed mode); another command's mode is refused", .scope = RUN},
	{"ll-tokens", 0, K_INT, F(ll_tokens), 1, 1 << 20, .def = "128", .metavar = "N", .help = "tokens per rank of the low-latency (decode) ops; --num-tokens is the normal (prefill) batch", .scope = RUN | EP_SCOPE_MIXED},
	{"seed", 's', K_CUSTOM, F(seed), .parse = parse_seed, .def = "0", .metavar = "N", .help = "seed of every input", .scope = RUN},
	{"payload", 0, K_ENUM, F(payload), .choices = "narrow|wide|special", .def = "wide", .metavar = "narrow|wide|special", .help = "the values tokens carry: wide makes summation order, fusion and rounding visible; special adds +-0, subnormals, near-max, inf and NaN (README, How it checks)", .scope = RUN},
	{"dtype", 'd', K_ENUM, F(dtype), .choices = "bf16|fp8|int8", .def = "bf16", .metavar = "bf16|fp8|int8", .help = "dispatch payload type (int8: normal mode only)", .scope = RUN},
	{"with-topk", 0, K_BOOL, F(with_topk), .def = "1", .metavar = "0|1", .help = "dispatch carries topk_idx/topk_weights", .scope = NORMAL},
	{"bias", 0, K_INT, F(num_bias), 0, 2, .def = "0", .metavar = "0|1|2", .help = "bias tensors added by combine", .scope = NORMAL},
	{"expert-counts", 0, K_ENUM, F(expert_counts), .choices = "counts|prefix", .def = "counts", .metavar = "counts|prefix", .help = "per-expert receive numbers as counts or prefix sums", .scope = NORMAL},
	{"routing", 0, K_CUSTOM, F(routing), .parse = parse_routing, .def = "uniform", .metavar = "KIND", .help = "uniform | zipf:S | lognormal:SIGMA | hot:EXPERT | hot-experts:N:F | hot-rank:R[:F] | rotating:PERIOD[:S] | trace:FILE[:STEP] | file:PATH (README: Routing and imbalance)", .scope = RUN},
	{"redundant-experts", 0, K_INT, F(eplb.redundant), 0, 1 << 20, .def = "0", .metavar = "N", .help = "physical experts = --num-experts + N, placed as --eplb-load says (README: Redundant experts)", .scope = RUN},
	{"eplb-load", 0, K_CUSTOM, F(eplb), .parse = parse_eplb_load, .def_doc = "none: vLLM's initial map", .metavar = "LOAD", .help = "place experts with DeepSeek's EPLB for this per-expert load: uniform | zipf:S | lognormal:SIGMA | FILE (one load per logical expert)", .scope = RUN},
	{"eplb-groups", 0, K_INT, F(eplb.groups), 1, 1 << 20, .def_doc = "--num-groups when group-limited, else 1", .metavar = "G", .help = "EPLB expert groups", .scope = RUN},
	{"eplb-nodes", 0, K_INT, F(eplb.nodes), 1, 1 << 20, .def_doc = "the run's nodes", .metavar = "N", .help = "EPLB nodes (hierarchical when G % N == 0)", .scope = RUN},
	{"expert-placement", 0, K_ENUM, F(eplb.placement), .choices = "linear|round_robin", .def = "linear", .metavar = "linear|round_robin", .help = "physical expert p on rank p / (P/R), or on rank p % R", .scope = RUN},
	{"replica-policy", 0, K_ENUM, F(eplb.policy), .choices = "modpos|static|dynamic", .def = "modpos", .metavar = "modpos|static|dynamic", .help = "which replica a (token, slot) uses: vLLM's position, SGLang's static table or a hash", .scope = RUN},
	{"masked-ratio", 0, K_CUSTOM, F(routing), .parse = parse_masked, .def = "0", .metavar = "F", .help = "fraction of top-k entries set to -1", .scope = RUN},
	{"iters", 'n', K_INT, F(iters), 1, 1000000, .def = "20", .metavar = "N", .help = "timed iterations", .scope = RUN},
	{"warmup", 'w', K_INT, F(warmup), 0, 1000000, .def = "5", .metavar = "N", .help = "warm-up iterations", .scope = RUN},
	{"check", 'c', K_BOOL, F(check), .def = "1", .metavar = "0|1", .help = "check every output byte against reference/", .scope = RUN},
	{"copy-probe", 0, K_ENUM, F(copy_probe_off), .choices = "on|off", .def = "on", .metavar = "on|off", .help = "measure the host's memcpy bandwidth before the run (the copy % column and --min-copy); off saves its 0.3-1 s in many small correctness runs: copy reads - (also EPBENCH_COPY_PROBE)", .scope = RUN},
	{"cached", 0, K_FLAG, F(cached), .help = "time dispatch with the previous handle (cached mode)", .scope = NORMAL},
	{"op", 0, K_ENUM, F(ops), .choices = "dispatch|combine|both", .values = op_values, .def = "both", .metavar = "dispatch|combine|both", .help = "ops to time", .scope = RUN},
	{"timeout", 0, K_CUSTOM, F(timeout_s), .parse = parse_timeout, .def = "60", .metavar = "SECS", .help = "deadline of any single wait", .scope = RUN},
	{"soak", 0, K_INT, F(soak), 0, 100000000, .def = "0", .metavar = "N", .help = "instead of timing: N checked passes, pass i with seed + i (fresh inputs and routing); failures per pass, a 95% upper bound on the rate, the first failure and a command that repeats it", .scope = RUN},
	{"soak-first", 0, K_INT, F(soak_first), 0, 1000000000, .def = "0", .metavar = "I", .help = "index of the first soak pass (seed + I): what a soak's reproduce line sets", .scope = RUN},
	{"simd", 0, K_ENUM, F(simd), .choices = "auto|baseline|avx2|avx512", .values = simd_values, .def = "auto", .metavar = "auto|baseline|avx2|avx512", .help = "instruction set of the combine and cast kernels (auto: the widest this CPU runs; every one gives the same bytes)", .scope = RUN},
	{"numa", 0, K_BOOL, F(numa), .def = "on", .metavar = "on|off", .help = "pin ranks to CPUs and NUMA nodes", .scope = RUN},
	{"json", 0, K_STRING, F(json_path), .metavar = "FILE", .help = "write the results as JSON (atomically)", .scope = RUN},
	{"csv", 0, K_STRING, F(csv_path), .metavar = "FILE", .help = "write one CSV row per op and sweep point (atomically)", .scope = RUN},
	{"dump", 0, K_STRING, F(dump_dir), .metavar = "DIR", .help = "write every rank's tensors as DIR/rank<N>/<name>.npy", .scope = RUN},
	{"nodes", 0, K_INT, F(nodes), 1, EP_MAX_NODES, .def = "-1", .def_doc = "NNODES, or a launcher's environment", .metavar = "N", .help = "nodes in the job", .scope = NODES},
	{"node-rank", 0, K_INT, F(node_rank), 0, EP_MAX_NODES - 1, .def = "-1", .def_doc = "NODE_RANK, ...", .metavar = "I", .help = "this node's rank, 0 hosts the rendezvous", .scope = NODES},
	{"ranks-per-node", 0, K_INT, F(ranks_per_node), 1, EP_MAX_LOCAL, .def = "0", .def_doc = "8", .metavar = "P", .help = "rank processes per node (DeepEP: 8)", .scope = NODES},
	{"master", 0, K_STRING, F(master), .def_doc = "MASTER_ADDR:MASTER_PORT", .metavar = "HOST:PORT", .help = "node 0's rendezvous address", .scope = NODES},
	{"local-nodes", 0, K_FLAG, F(local_nodes), .help = "run all --nodes on this host over loopback TCP", .scope = NODES},
	{"transport", 0, K_WORD, F(transport), .choices = "auto|tcp|verbs", .def = "auto", .metavar = "auto|tcp|verbs", .help = "network between nodes (auto: verbs if an RDMA device works)", .scope = NODES},
	{"ib-dev", 0, K_STRING, F(ib_dev), .def_doc = "the first", .metavar = "NAME", .help = "verbs: RDMA device", .scope = NODES},
	{"gid-index", 0, K_INT, F(gid_index), 0, 255, .def = "-1", .def_doc = "device default", .metavar = "N", .help = "verbs: GID index for RoCE", .scope = NODES},
	{"parallel", 0, K_STRING, F(parallel_spec), .metavar = "dp=D,tp=T,...", .help = "a deployment's parallel configuration: dp, tp, cp, sp, moe_tp, moe_ep (README: Parallel configurations)", .scope = RUN},
	{"mindie-config", 0, K_STRING, F(mindie_config), .metavar = "FILE", .help = "the parallel keys of a MindIE config.json (--parallel overrides them key by key)", .scope = RUN},
	{"moe-comm", 0, K_WORD, F(moe_comm), .choices = "a2a|allgather", .metavar = "a2a|allgather", .help = "MoE communication: all-to-all (MindIE ep_level 2) or world all-gather (ep_level 1) [a2a]", .scope = RUN},
	{"ep-semantics", 0, K_ENUM, F(ep_semantics), .choices = "deepep|ascend", .def = "deepep", .metavar = "deepep|ascend", .help = "dispatch/combine inside the MoE-EP group: DeepEP's or Ascend's npu_moe_distribute_* (README: Parallel configurations)", .scope = NORMAL},
	{"sp-pad", 0, K_ENUM, F(sp_pad), .choices = "none|zero|replicate0", .def = "none", .metavar = "none|zero|replicate0", .help = "attention-TP slices: ceil(T_d/tp) rows, unpadded, padded with zero rows (vLLM) or with copies of row 0 to align(max T_d, tp)/tp (MindIE)", .scope = RUN},
	{"tokens-per-dp", 0, K_INT, F(tokens_per_dp), 0, 1 << 24, .def = "0", .def_doc = "--num-tokens x tp", .metavar = "N", .help = "T_d: tokens of each attention-DP group before slicing (--uneven-tokens varies it per group)", .scope = RUN},
	{"shared-experts", 0, K_INT, F(shared_experts), 0, 1 << 16, .def = "0", .metavar = "S_n", .help = "--ep-semantics ascend: shared experts, each on --shared-expert-ranks / S_n ranks", .scope = NORMAL},
	{"shared-expert-ranks", 0, K_INT, F(shared_expert_ranks), 0, 1 << 16, .def = "0", .metavar = "S_r", .help = "--ep-semantics ascend: EP ranks [0, S_r) host the shared experts, the others the routed ones", .scope = NORMAL},
	{"smooth-scales", 0, K_FLAG, F(smooth_scales), .help = "--ep-semantics ascend --dtype int8: smoothing scales [(S_n + E), H] from the seed multiply x before quantisation", .scope = NORMAL},
	{"comm-quant", 0, K_ENUM, F(comm_quant), .choices = "none|int8", .def = "none", .metavar = "none|int8", .help = "--ep-semantics ascend: combine moves expert outputs as int8 in blocks of 8 (comm_quant_mode 2)", .scope = NORMAL},
	{"limits", 0, K_ENUM, F(limits), .choices = "none|deepep|ascend-a2|ascend-a3", .def = "none", .metavar = "none|deepep|ascend-a2|ascend-a3", .help = "refuse (exit 2) a shape, mode, dtype, node count or environment outside what that library documents (README: Deployment knobs)", .scope = RUN},
	{"warn-only", 0, K_FLAG, F(warn_only), .help = "with --limits: a violated limit is a '#' warning line instead of exit 2", .scope = RUN},
	{"node-addr", 0, K_STRING, F(node_addr), .def_doc = "the one used to reach the master", .metavar = "IPV4", .help = "address other nodes reach this one at", .scope = NODES},
	{"perf-ctl", 0, K_STRING, F(perf_ctl), .metavar = "CTL[,ACK]", .help = "perf control FIFOs: 'enable' before the timed loops, 'disable' after", .scope = RUN},
	{"fault", 0, K_CUSTOM, F(faults), .parse = parse_fault, .metavar = "KIND:RANK[:ARG][@ITER],...", .help = "inject faults to test the checks (README, Faults): corrupt:R, bitflip:R:TENSOR, permute:R, drop:R, stale:R, die:R, hang:R[:OP], stall:R@I, slow:R:US, delay:R:US@I; @ITER picks the iteration (repeatable)", .scope = RUN},
	{"min-algbw", 0, K_CUSTOM, F(gates), .parse = parse_min_algbw, .metavar = "OP=GB/s,...", .help = "exit 5 when an op's algbw is below its limit", .scope = RUN},
	{"max-median-us", 0, K_CUSTOM, F(gates), .parse = parse_max_median, .metavar = "OP=us,...", .help = "exit 5 when an op's median time is above its limit", .scope = RUN},
	{"min-copy", 0, K_CUSTOM, F(gates), .parse = parse_min_copy, .metavar = "OP=%,...", .help = "exit 5 when an op's aggbw is below this share of the host copy bandwidth", .scope = RUN},
	{"baseline", 0, K_STRING, F(gates.baseline_path), .metavar = "FILE", .help = "a stored result (--json) to hold this run to, with --max-regress", .scope = RUN},
	{"max-regress", 0, K_CUSTOM, F(gates), .parse = parse_max_regress, .def = "-1", .def_doc = "none", .metavar = "PCT", .help = "exit 5 when an op is slower than --baseline by more than PCT (beyond noise)", .scope = RUN},
	{"confidence", 0, K_CUSTOM, F(gates), .parse = parse_confidence, .def = "0.95", .metavar = "C", .help = "confidence of the bootstrap interval used by --max-regress", .scope = RUN},
	{"progress", 0, K_ENUM, F(progress), .choices = "auto|on|off", .def = "auto", .metavar = "auto|on|off", .help = "a status line on stderr (auto: when it is a terminal; on: lines every few seconds)", .scope = RUN},
	{"quiet", 'q', K_FLAG, F(quiet), .help = "print only the table and the verdict", .scope = RUN},
	{"verbose", 'v', K_FLAG, F(verbose), .help = "print per-rank figures", .scope = RUN},
	{"help", 'h', K_FLAG, 0, .help = "this text", .scope = RUN},
};
#define NOPTS (int)(sizeof(opt_table) / sizeof(opt_table[0]))
_Static_assert(sizeof(opt_table) / sizeof(opt_table[0]) <= 64 * EP_OPTION_WORDS, "ep_options.given has too few bits");
#define OPT_HELP (NOPTS - 1)

/* err made one printable line, whatever was typed; returns -EP_EUSAGE. */
static int printable(char *err)
{
	for (unsigned char *c = (unsigned char *)err; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	return -EP_EUSAGE;
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return printable(err);
}

static int in_scope(const struct opt_def *d, unsigned scope)
{
	return (d->scope & scope) == d->scope;
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

/* Appends x to the values being built; 0 or -1 past the cap. */
static int push(int **v, int *n, int *cap, long long x)
{
	if (*n >= EP_MAX_SWEEP_VALUES)
		return -1;
	if (*n == *cap) {
		int *nv = realloc(*v, sizeof(int) * (size_t)(*cap *= 2));
		if (!nv)
			return -1;
		*v = nv;
	}
	(*v)[(*n)++] = (int)x;
	return 0;
}

/* "A:B", "A:B:xF" or "A:B:+S" (the text is modified). */
static int sweep_range(char *spec, char *c1, int lo, int hi, int **v, int *n, int *cap)
{
	long long a, b, step = 2;
	int mul = 1;
	char *c2 = strchr(c1 + 1, ':');
	*c1 = 0;
	if (c2)
		*c2 = 0;
	if (parse_long(spec, lo, hi, &a) || parse_long(c1 + 1, lo, hi, &b) || b < a)
		return -1;
	if (c2) {
		const char *st = c2 + 1;
		if (*st == 'x' || *st == '*')
			mul = 1, st++;
		else if (*st == '+')
			mul = 0, st++;
		else
			return -1;
		if (parse_long(st, 1, INT_MAX, &step) || (mul && step < 2))
			return -1;
	}
	if (mul && a == 0)
		return -1;
	for (long long x = a; x <= b; x = mul ? x * step : x + step)
		if (push(v, n, cap, x))
			return -1;
	return 0;
}

/* "A,B,C": no element may be empty ("1,,2" and "1," are typos). */
static int sweep_list(char *spec, int lo, int hi, int **v, int *n, int *cap)
{
	long long a;
	for (char *tok = spec, *comma; tok; tok = comma) {
		if ((comma = strchr(tok, ',')))
			*comma++ = 0;
		if (parse_long(tok, lo, hi, &a) || push(v, n, cap, a))
			return -1;
	}
	return *n ? 0 : -1;
}

int ep_sweep_parse(const char *spec, int lo, int hi, struct ep_sweep *out)
{
	int cap = 64, n = 0;
	int *v = malloc(sizeof(int) * (size_t)cap);
	char *copy = strdup(spec), *c1 = copy ? strchr(copy, ':') : NULL;
	int rc = !v || !copy ? -1 : c1 ? sweep_range(copy, c1, lo, hi, &v, &n, &cap)
				       : sweep_list(copy, lo, hi, &v, &n, &cap);
	free(copy);
	if (rc) {
		free(v);
		return -EP_EUSAGE;
	}
	free(out->v);
	out->v = v;
	out->n = n;
	return 0;
}

static int parse_seed(struct ep_options *o, const char *arg, char *err, size_t len)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-')
		return fail(err, len, "invalid --seed '%s': want a non-negative integer", arg);
	o->seed = v;
	return 0;
}

static int parse_timeout(struct ep_options *o, const char *arg, char *err, size_t len)
{
	if (parse_double(arg, &o->timeout_s) || o->timeout_s <= 0 || o->timeout_s > 86400)
		return fail(err, len, "invalid --timeout '%s': want seconds in (0, 86400]", arg);
	return 0;
}

static int parse_masked(struct ep_options *o, const char *arg, char *err, size_t len)
{
	double *m = &o->routing.masked_ratio;
	if (parse_double(arg, m) || *m < 0 || *m > 1)
		return fail(err, len, "invalid --masked-ratio '%s': want a number in [0, 1]", arg);
	return 0;
}

static int parse_min_algbw(struct ep_options *o, const char *arg, char *err, size_t len)
{
	return ep_gates_add(&o->gates, EP_GATE_MIN_ALGBW, "--min-algbw", arg, err, len);
}

static int parse_max_median(struct ep_options *o, const char *arg, char *err, size_t len)
{
	return ep_gates_add(&o->gates, EP_GATE_MAX_MEDIAN, "--max-median-us", arg, err, len);
}

static int parse_min_copy(struct ep_options *o, const char *arg, char *err, size_t len)
{
	return ep_gates_add(&o->gates, EP_GATE_MIN_COPY, "--min-copy", arg, err, len);
}

/* The default -1 means "no limit" and is stored unchecked. */
static int parse_max_regress(struct ep_options *o, const char *arg, char *err, size_t len)
{
	double v;
	if (strcmp(arg, "-1") && (parse_double(arg, &v) || v < 0 || v > 1000))
		return fail(err, len, "invalid --max-regress '%s': want a percentage in [0, 1000]", arg);
	o->gates.max_regress = strcmp(arg, "-1") ? v : -1;
	return 0;
}

static int parse_confidence(struct ep_options *o, const char *arg, char *err, size_t len)
{
	double v;
	if (parse_double(arg, &v) || v <= 0 || v >= 1)
		return fail(err, len, "invalid --confidence '%s': want a number in (0, 1), e.g. 0.95", arg);
	o->gates.confidence = v;
	return 0;
}

static int parse_eplb_load(struct ep_options *o, const char *arg, char *err, size_t len)
{
	o->eplb.load_given = 1;
	return ep_eplb_load_parse(&o->eplb.load, arg, err, len);
}

static int parse_fault(struct ep_options *o, const char *arg, char *err, size_t len)
{
	return ep_faults_parse(&o->faults, arg, err, len);
}

/* "N[:F]" of the hot kinds: N an integer >= lo, F in (0, 1] (def when
 * absent and def > 0). 0 or -1. */
static int parse_hot_spec(const char *spec, long long lo, double def, long long *n, double *f)
{
	char buf[64];
	if (strlen(spec) >= sizeof(buf))
		return -1;
	strcpy(buf, spec);
	char *colon = strchr(buf, ':');
	if (colon)
		*colon++ = 0;
	if (parse_long(buf, lo, INT_MAX, n))
		return -1;
	*f = def;
	if (colon && parse_double(colon, f))
		return -1;
	return *f > 0 && *f <= 1 ? 0 : -1;
}

#define ROUTING_KINDS "uniform, zipf:S, lognormal:SIGMA, hot:EXPERT, hot-experts:N:F, hot-rank:R[:F], rotating:PERIOD[:S], trace:FILE[:STEP] or file:PATH"

/* rotating:PERIOD[:S]: PERIOD iterations per step, Zipf exponent S (1.2). */
static int parse_rotating(struct ep_routing *r, const char *arg, char *err, size_t len)
{
	char buf[64];
	long long p;
	double zs = 1.2;
	snprintf(buf, sizeof(buf), "%s", arg + 9);
	char *colon = strchr(buf, ':');
	if (colon)
		*colon++ = 0;
	if (strlen(arg + 9) >= sizeof(buf) || parse_long(buf, 1, 1000000, &p) ||
	    (colon && (parse_double(colon, &zs) || zs <= 0 || zs > 100)))
		return fail(err, len, "invalid --routing '%s': want rotating:PERIOD[:S], PERIOD iterations in [1, 1000000], S in (0, 100]", arg);
	r->kind = EP_ROUTE_ROTATING;
	r->rotate_period = (int)p;
	r->zipf_s = zs;
	return 0;
}

/* trace:FILE[:STEP]: a final ":digits" is the first step (the file is read by finish()). */
static int parse_trace(struct ep_options *o, const char *arg, char *err, size_t len)
{
	const char *path = arg + 6, *colon = strrchr(path, ':');
	long long first = 0;
	size_t n = strlen(path);
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
		if (parse_long(colon + 1, 0, INT_MAX, &first))
			return fail(err, len, "invalid --routing '%s': want trace:FILE[:STEP], STEP a step of the trace", arg);
		n = (size_t)(colon - path);
	}
	if (n == 0)
		return fail(err, len, "invalid --routing '%s': want trace:FILE[:STEP]", arg);
	o->routing.kind = EP_ROUTE_TRACE;
	o->routing.trace_first = (int)first;
	free(o->routing_path);
	o->routing_path = strndup(path, n);
	return o->routing_path ? 0 : fail(err, len, "out of memory");
}

static int parse_routing(struct ep_options *o, const char *arg, char *err, size_t len)
{
	double s;
	long long e;
	struct ep_routing *r = &o->routing;
	if (strcmp(arg, "uniform") == 0) {
		r->kind = EP_ROUTE_UNIFORM;
	} else if (strncmp(arg, "zipf:", 5) == 0) {
		if (parse_double(arg + 5, &s) || s <= 0 || s > 100)
			return fail(err, len, "invalid --routing '%s': zipf exponent must be in (0, 100]", arg);
		r->kind = EP_ROUTE_ZIPF;
		r->zipf_s = s;
	} else if (strncmp(arg, "lognormal:", 10) == 0) {
		if (parse_double(arg + 10, &s) || s <= 0 || s > 20)
			return fail(err, len, "invalid --routing '%s': lognormal sigma must be in (0, 20]", arg);
		r->kind = EP_ROUTE_LOGNORMAL;
		r->lognormal_sigma = s;
	} else if (strncmp(arg, "hot:", 4) == 0) {
		if (parse_long(arg + 4, 0, INT_MAX, &e))
			return fail(err, len, "invalid --routing '%s': want hot:EXPERT", arg);
		r->kind = EP_ROUTE_HOT;
		r->hot_expert = (int)e;
	} else if (strncmp(arg, "hot-experts:", 12) == 0) {
		if (!strchr(arg + 12, ':') || parse_hot_spec(arg + 12, 1, 0, &e, &r->hot_frac))
			return fail(err, len, "invalid --routing '%s': want hot-experts:N:F, N >= 1 experts, F in (0, 1]", arg);
		r->kind = EP_ROUTE_HOT_EXPERTS;
		r->hot_count = (int)e;
	} else if (strncmp(arg, "hot-rank:", 9) == 0) {
		if (parse_hot_spec(arg + 9, 0, 0.5, &e, &r->hot_frac))
			return fail(err, len, "invalid --routing '%s': want hot-rank:R[:F], R a rank, F in (0, 1]", arg);
		r->kind = EP_ROUTE_HOT_RANK;
		r->hot_rank = (int)e;
	} else if (strncmp(arg, "rotating:", 9) == 0) {
		return parse_rotating(r, arg, err, len);
	} else if (strncmp(arg, "trace:", 6) == 0) {
		return parse_trace(o, arg, err, len);
	} else if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
		r->kind = EP_ROUTE_FILE;
		free(o->routing_path); /* read once K and E are known */
		o->routing_path = strdup(arg + 5);
		if (!o->routing_path)
			return fail(err, len, "out of memory");
	} else {
		return fail(err, len, "invalid --routing '%s': want " ROUTING_KINDS, arg);
	}
	return 0;
}

/* Index of arg in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *arg)
{
	size_t n = strlen(arg);
	int i = 0;
	for (const char *c = choices; *c; i++) {
		size_t w = strcspn(c, "|");
		if (w == n && strncmp(c, arg, n) == 0)
			return i;
		c += w + (c[w] == '|');
	}
	return -1;
}

/* Stores arg into o for row d. 0 or -EP_EUSAGE with err naming option and value. */
static int apply(struct ep_options *o, const struct opt_def *d, const char *arg, int checked, char *err,
		 size_t len)
{
	char *field = (char *)o + d->off;
	long long v;
	int i;
	switch (d->kind) {
	case K_FLAG: *(int *)field = 1; return 0;
	case K_BOOL:
		if ((i = choice_index("0|1|off|on|false|true", arg)) < 0)
			return fail(err, len, "invalid --%s '%s': want 0 or 1", d->name, arg);
		*(int *)field = i % 2;
		return 0;
	case K_INT:
		if (parse_long(arg, checked ? d->lo : LLONG_MIN, checked ? d->hi : LLONG_MAX, &v))
			return fail(err, len, "invalid --%s '%s': want an integer in [%lld, %lld]", d->name, arg,
				    d->lo, d->hi);
		*(int *)field = (int)v;
		return 0;
	case K_SWEEP:
		if (ep_sweep_parse(arg, (int)d->lo, (int)d->hi, (struct ep_sweep *)field))
			return fail(err, len, "invalid --%s '%s': want N in [%lld, %lld], A:B:xF, A:B:+S or A,B,C (at most %d values)",
				    d->name, arg, d->lo, d->hi, EP_MAX_SWEEP_VALUES);
		return 0;
	case K_ENUM:
	case K_WORD:
		if ((i = choice_index(d->choices, arg)) < 0)
			return fail(err, len, "invalid --%s '%s': want %s", d->name, arg, d->choices);
		if (d->kind == K_WORD)
			*(const char **)field = arg;
		else
			*(int *)field = d->values ? d->values[i] : i;
		return 0;
	case K_STRING: *(const char **)field = arg; return 0;
	case K_CUSTOM: return d->parse(o, arg, err, len);
	}
	return fail(err, len, "internal: option --%s has no kind", d->name);
}

/* The default of row d for this command: its own row, else the table's. */
static const char *default_of(const struct ep_option_spec *spec, const struct opt_def *d)
{
	for (const struct ep_option_default *x = spec->defaults; x && x->name; x++)
		if (strcmp(x->name, d->name) == 0)
			return x->value;
	return d->def;
}

static int set_defaults(const struct ep_option_spec *spec, struct ep_options *o, char *err, size_t len)
{
	memset(o, 0, sizeof(*o));
	o->command = spec->command;
	for (int i = 0; i < NOPTS; i++) {
		const char *def = default_of(spec, &opt_table[i]);
		int rc = def && in_scope(&opt_table[i], spec->scope) ? apply(o, &opt_table[i], def, 0, err, len) : 0;
		if (rc)
			return rc;
	}
	if (!o->transport)
		o->transport = "auto";
	if (!(spec->scope & EP_SCOPE_NODES)) /* commands without node options: not given */
		o->nodes = o->node_rank = o->gid_index = -1;
	return 0;
}

void ep_options_usage(const struct ep_option_spec *spec, FILE *out)
{
	fprintf(out, "usage: epbench %s [options]\n\noptions:\n", spec->command);
	for (int i = 0; i < NOPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		if (!in_scope(d, spec->scope))
			continue;
		char left[64], def[96] = "";
		const char *dv = default_of(spec, d) && default_of(spec, d) != d->def ? default_of(spec, d)
			: d->def_doc ? d->def_doc : d->def;
		snprintf(left, sizeof(left), "%c%c%s--%s%s%s", d->letter ? '-' : ' ', d->letter ? d->letter : ' ',
			 d->letter ? ", " : "  ", d->name, d->metavar ? " " : "", d->metavar ? d->metavar : "");
		if (dv && d->kind != K_FLAG)
			snprintf(def, sizeof(def), " [%s]", dv);
		fprintf(out, "  %-40s %s%s\n", left, d->help, def);
	}
	fprintf(out, "  %-40s %s\n", "    --case FILE", "read options from a case file (cases/*.case); later options override");
	fprintf(out, "\nSWEEP: N, A:B:xF (multiply), A:B:+S (add) or a list A,B,C.\n"
		     "Underscore spellings (--num_tokens) are accepted too.\n");
}

/* getopt_long table: each option in scope under its dashed and underscore names. */
static void build_long_options(unsigned scope, struct option *lo, char (*names)[40], char *shortopts)
{
	int n = 0;
	char *sp = shortopts;
	*sp++ = ':'; /* report a missing argument as ':' */
	for (int i = 0; i < NOPTS; i++) {
		const struct opt_def *d = &opt_table[i];
		int has_arg = d->kind == K_FLAG ? no_argument : required_argument;
		if (!in_scope(d, scope))
			continue;
		lo[n++] = (struct option){d->name, has_arg, NULL, 256 + i};
		if (strchr(d->name, '-')) {
			snprintf(names[i], 40, "%s", d->name);
			for (char *c = names[i]; *c; c++)
				if (*c == '-')
					*c = '_';
			lo[n++] = (struct option){names[i], has_arg, NULL, 256 + i};
		}
		if (d->letter) {
			*sp++ = d->letter;
			if (has_arg == required_argument)
				*sp++ = ':';
		}
	}
	*sp = 0;
	lo[n] = (struct option){0, 0, 0, 0};
}

/* The row of a getopt result (256 + row for long names, the letter for short ones). */
static int row_of(int c)
{
	if (c >= 256)
		return c - 256;
	for (int i = 0; i < NOPTS; i++)
		if (opt_table[i].letter == c)
			return i;
	return -1;
}

int ep_option_given(const struct ep_options *o, const char *name)
{
	for (int i = 0; i < NOPTS; i++)
		if (strcmp(opt_table[i].name, name) == 0)
			return (int)(o->given[i / 64] >> (i % 64) & 1);
	return 0;
}

/* One getopt error as a line. */
static int getopt_error(int c, char **argv, const char *command, char *err, size_t len)
{
	const char *bad = argv[optind - 1];
	if (c == ':')
		return fail(err, len, "option '%s' needs a value", bad);
	if (optopt && !(bad[0] == '-' && bad[1] == '-'))
		return fail(err, len, "unknown option '-%c' (see epbench %s --help)", optopt, command);
	return fail(err, len, "unknown option '%s' (see epbench %s --help)", bad, command);
}

static int check_perf_ctl(const char *spec, char *err, size_t len);
static int check_soak(struct ep_options *o, char *err, size_t len);
static int check_fault_iter(struct ep_options *o, struct ep_fault *f, char *err, size_t len);
static int finish(const struct ep_option_spec *spec, struct ep_options *o, char *err, size_t len);

int ep_options_parse(const struct ep_option_spec *spec, int argc, char **argv, struct ep_options *o,
		     FILE *out, char *err, size_t errlen)
{
	struct option lo[2 * NOPTS + 1];
	char names[NOPTS][40];
	char shortopts[3 * NOPTS + 2];
	int rc = set_defaults(spec, o, err, errlen);
	build_long_options(spec->scope, lo, names, shortopts);
	optind = 0; /* full reset, also of getopt's internal state */
	opterr = 0;
	for (int c; !rc && (c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1;) {
		int row = row_of(c);
		if (c == '?' || c == ':' || row < 0) {
			rc = getopt_error(c, argv, spec->command, err, errlen);
		} else if (row == OPT_HELP) {
			ep_options_usage(spec, out);
			ep_options_free(o); /* what options before --help allocated (found by fuzz_options) */
			return 1;
		} else {
			o->given[row / 64] |= 1ULL << (row % 64);
			rc = apply(o, &opt_table[row], optarg, 1, err, errlen);
		}
	}
	if (!rc && optind < argc)
		rc = fail(err, errlen, "unexpected argument '%s' (see epbench %s --help)", argv[optind], spec->command);
	if (!rc)
		rc = finish(spec, o, err, errlen);
	if (rc) {
		ep_options_free(o);
		return -EP_EUSAGE;
	}
	return 0;
}

/* --routing trace:FILE[:STEP]: read and checked once, before anything
 * runs, against the run's experts and top-k; the ranks inherit it. */
static int load_trace(struct ep_options *o, char *err, size_t len)
{
	struct ep_trace *t = calloc(1, sizeof(*t));
	char q[256];
	if (!t)
		return fail(err, len, "out of memory");
	o->routing.trace = t;
	int rc = ep_trace_read(o->routing_path, t, err, len);
	if (rc)
		return rc;
	ep_quote(o->routing_path, q, sizeof(q));
	if (t->num_experts != o->num_experts || t->num_topk != o->num_topk)
		return fail(err, len, "--routing trace:%s holds %d experts and top-%d (model '%.55s', layer %d); the run has --num-experts %d --num-topk %d",
			    q, t->num_experts, t->num_topk, t->model, t->layer, o->num_experts, o->num_topk);
	if (o->routing.trace_first >= t->num_steps)
		return fail(err, len, "--routing trace:%s:%d: the trace has %d steps (0 to %d)", q, o->routing.trace_first,
			    t->num_steps, t->num_steps - 1);
	if (o->cached)
		return fail(err, len, "--cached reuses one dispatch's handle, but --routing trace:%s changes the routing between iterations: drop one of them", q);
	return 0;
}

/* After every option: what needs several of them, and files checked before anything runs. */
/* --deepep-mode names the mode of the command it is given to (its scope
 * says which): SGLang's spelling accepted, another command's mode refused. */
static int check_deepep_mode(const struct ep_option_spec *spec, const struct ep_options *o, char *err, size_t len)
{
	static const char *const names[] = {"normal", "low_latency", "auto"};
	static const char *const commands[] = {"intranode or internode", "low-latency", "mixed"};
	int normal = !!(spec->scope & EP_SCOPE_NORMAL), ll = !!(spec->scope & EP_SCOPE_LL);
	int own = normal && ll ? EP_DEEPEP_AUTO : ll ? EP_DEEPEP_LOW_LATENCY : EP_DEEPEP_NORMAL;
	if (!ep_option_given(o, "deepep-mode") || o->deepep_mode == own)
		return 0;
	return fail(err, len, "--deepep-mode %s is `epbench %s`; `epbench %s` runs --deepep-mode %s",
		    names[o->deepep_mode], commands[o->deepep_mode], spec->command, names[own]);
}

static int finish(const struct ep_option_spec *spec, struct ep_options *o, char *err, size_t len)
{
	if (ep_deploy_env_apply(spec->scope, o, ep_deploy_getenv, err, len))
		return printable(err);
	long long points = (long long)o->ranks.n * o->tokens.n * o->hidden.n;
	if (points > EP_MAX_POINTS)
		return fail(err, len, "the sweep has %lld points (%d ranks x %d tokens x %d hidden values); at most %d are allowed",
			    points, o->ranks.n, o->tokens.n, o->hidden.n, EP_MAX_POINTS);
	if (o->perf_ctl && check_perf_ctl(o->perf_ctl, err, len))
		return -EP_EUSAGE;
	if (o->dump_dir && ep_output_dir_check("--dump", o->dump_dir, err, len))
		return -EP_EUSAGE;
	if (o->nodes > 0 && o->node_rank >= o->nodes)
		return fail(err, len, "--node-rank %d is outside [0, %d) for --nodes %d", o->node_rank, o->nodes,
			    o->nodes);
	if (o->hook)
		o->ops |= EP_OPS_HOOK;
	if (check_deepep_mode(spec, o, err, len))
		return -EP_EUSAGE;
	if (check_soak(o, err, len))
		return -EP_EUSAGE;
	if (o->gates.max_regress >= 0 && !o->gates.baseline_path)
		return fail(err, len, "--max-regress needs --baseline FILE (the result to hold this run to)");
	if (o->gates.baseline_path && o->gates.max_regress < 0)
		return fail(err, len, "--baseline needs --max-regress PCT (how much slower is too slow)");
	if (o->routing_path && o->routing.kind == EP_ROUTE_TRACE) {
		if (load_trace(o, err, len))
			return -EP_EUSAGE;
	} else if (o->routing_path) {
		int64_t *rows = NULL;
		size_t n = 0;
		int rc = ep_load_routing_file(o->routing_path, o->num_topk, o->num_experts, &rows, &n, err, len);
		if (rc)
			return rc;
		o->routing.file_idx = rows;
		o->routing.file_rows = n;
	}
	if (parallel_options(o, err, len))
		return -EP_EUSAGE;
	o->ops |= ep_options_layer_features(o);
	if (o->eplb.load.kind == EP_LOAD_FILE) {
		int rc = ep_eplb_load_file(o->eplb.load.path, o->num_experts, &o->eplb.load.file_loads, err, len);
		if (rc)
			return rc;
		o->eplb.load.file_n = o->num_experts;
	}
	o->routing.uneven_tokens = o->uneven_tokens;
	o->routing.payload = o->payload;
	o->routing.num_groups = o->num_groups;
	o->routing.num_topk_groups = o->num_topk_groups;
	if (o->cached && !o->check && o->ops == EP_OPS_COMBINE)
		o->cached = 0; /* nothing to time in cached mode */
	return 0;
}

/* --mindie-config, then --parallel over it key by key, then --moe-comm. */
static int parallel_options(struct ep_options *o, char *err, size_t len)
{
	if (o->mindie_config && ep_mindie_config_read(o->mindie_config, &o->parallel, err, len))
		return printable(err); /* the parsers quote what was typed */
	if (o->parallel_spec && ep_parallel_parse(&o->parallel, o->parallel_spec, err, len))
		return printable(err);
	if (o->moe_comm) {
		o->parallel.moe_comm = strcmp(o->moe_comm, "allgather") ? EP_MOE_A2A : EP_MOE_ALLGATHER;
		o->parallel.comm_given = 1;
	}
	return 0;
}

int ep_options_layer(const struct ep_options *o, struct ep_parallel *p)
{
	char err[EP_TEXT_MAX];
	int R = o->ranks.n ? o->ranks.v[0] : 0;
	if (!ep_parallel_given(&o->parallel) || ep_parallel_resolve(&o->parallel, R, o->ranks_per_node, p, err, sizeof(err)))
		return 0;
	return !ep_parallel_pure_ep(p);
}

void ep_options_set_world(struct ep_options *o, int R)
{
	if (o->ranks.n >= 1)
		o->ranks.v[0] = R;
	o->ops = (o->ops & ~(EP_OPS_A2A | EP_OPS_ALLGATHER | EP_OPS_MOE_TP | EP_OPS_ATTN_TP)) |
		 ep_options_layer_features(o);
}

int ep_options_layer_features(const struct ep_options *o)
{
	struct ep_parallel p;
	if (!ep_options_layer(o, &p))
		return 0;
	int bits = p.moe_comm == EP_MOE_ALLGATHER ? EP_OPS_ALLGATHER : EP_OPS_A2A;
	if (p.v[EP_PAR_MOE_TP] > 1 && p.moe_comm != EP_MOE_ALLGATHER)
		bits |= EP_OPS_MOE_TP;
	if (p.v[EP_PAR_TP] > 1)
		bits |= EP_OPS_ATTN_TP;
	return bits;
}

void ep_options_free(struct ep_options *o)
{
	free(o->ranks.v);
	free(o->tokens.v);
	free(o->hidden.v);
	free(o->routing_path);
	free((void *)o->routing.file_idx);
	if (o->routing.trace) {
		ep_trace_free((struct ep_trace *)o->routing.trace);
		free((void *)o->routing.trace);
		o->routing.trace = NULL;
	}
	ep_eplb_load_free(&o->eplb.load);
	o->ranks.v = o->tokens.v = o->hidden.v = NULL;
	o->ranks.n = o->tokens.n = o->hidden.n = 0;
	o->routing_path = NULL;
	o->routing.file_idx = NULL;
}

/* --soak and faults aimed at one iteration: every fault must strike an
 * iteration the run has (a fault that cannot fire proves nothing). */
static int check_soak(struct ep_options *o, char *err, size_t len)
{
	if (o->cached && o->routing.kind == EP_ROUTE_ROTATING)
		return fail(err, len, "--cached reuses one dispatch's handle, but --routing rotating:%d changes the routing every %d iterations: drop one of them",
			    o->routing.rotate_period, o->routing.rotate_period);
	if (o->soak && o->cached)
		return fail(err, len, "--soak routes every pass anew; --cached reuses one dispatch's handle: drop one of them");
	if (o->soak && !o->check)
		return fail(err, len, "--soak with --check 0 checks nothing: it could never count a failure");
	if (o->soak && (o->gates.n || o->gates.max_regress >= 0))
		return fail(err, len, "--soak times nothing, so a performance limit (--min-algbw, --max-median-us, --min-copy, --max-regress) could never fire");
	if (o->soak_first && !o->soak)
		return fail(err, len, "--soak-first %d needs --soak N", o->soak_first);
	for (int i = 0; i < o->faults.n; i++)
		if (check_fault_iter(o, &o->faults.f[i], err, len))
			return -EP_EUSAGE;
	return 0;
}

/* One fault must strike an iteration the run has, and its effect must be
 * seen: data faults need the check, timing faults the timed loops. */
static int check_fault_iter(struct ep_options *o, struct ep_fault *f, char *err, size_t len)
{
	struct ep_faults one = {.n = 1, .f = {*f}};
	char text[64];
	ep_faults_text(&one, text, sizeof(text));
	if (ep_fault_is_data(f) && !o->check)
		return fail(err, len, "--fault %s damages outputs, but --check 0 compares none", text);
	if (f->kind == EP_FAULT_SLOW && o->soak)
		return fail(err, len, "--fault %s slows timed iterations; --soak times none", text);
	if (f->kind == EP_FAULT_STALE && !o->soak)
		return fail(err, len, "--fault stale:%d needs --soak: it leaves a row from the previous pass", f->rank);
	if (f->kind == EP_FAULT_NOCLEAN && strcmp(o->command, "mixed"))
		return fail(err, len, "--fault %s skips the low-latency buffer cleaning between modes, which only `epbench mixed` does", text);
	if (f->kind == EP_FAULT_NOCLEAN && f->iter >= 0)
		return fail(err, len, "--fault %s strikes every hand-over to low-latency mode; @ITER is not for it", text);
	long lo = o->soak ? o->soak_first : 0;
	/* routing that changes between iterations checks up to one pass per
	 * iteration (one per distinct step; the ranks refuse a later one) */
	long checked = ep_routing_varies(&o->routing) ? (long)o->warmup + o->iters : 1;
	long hi = o->soak ? lo + o->soak : ep_fault_is_data(f) ? checked : o->iters;
	if (f->kind == EP_FAULT_STALE && f->iter < 0)
		f->iter = lo + 1; /* the second pass: the first with a previous one */
	long at = f->iter >= 0 ? f->iter : f->kind == EP_FAULT_SLOW ? lo : 0; /* where it strikes */
	if (at < lo || at >= hi || (f->kind == EP_FAULT_STALE && at == lo))
		return fail(err, len, "--fault %s never strikes: the run's %s iterations are %ld to %ld%s", text,
			    o->soak ? "soak" : ep_fault_is_data(f) ? "checked" : "timed", lo, hi - 1,
			    f->kind == EP_FAULT_STALE ? " (and stale needs a pass before it)" : "");
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

int ep_options_check_outputs(const struct ep_options *o, char *err, size_t len)
{
	if (o->json_path && ep_output_path_check("--json", o->json_path, err, len))
		return -EP_EUSAGE;
	if (o->csv_path && ep_output_path_check("--csv", o->csv_path, err, len))
		return -EP_EUSAGE;
	return 0;
}

void ep_options_shape(const struct ep_options *o, int ranks, int tokens, int hidden,
		      struct ep_shape *s)
{
	*s = (struct ep_shape){
		.num_ranks = ranks,
		.num_tokens = tokens,
		.hidden = hidden,
		.num_topk = o->num_topk,
		.num_experts = o->num_experts + o->eplb.redundant, /* physical */
		.expert_alignment = o->expert_alignment,
		.dtype = o->dtype,
		.with_topk = o->with_topk,
		.num_bias = o->num_bias,
		.expert_counts = o->expert_counts,
	};
}

void ep_options_run_cfg(const struct ep_options *o, struct ep_run_cfg *cfg)
{
	*cfg = (struct ep_run_cfg){
		.seed = o->seed, .iters = o->iters, .warmup = o->warmup, .check = o->check,
		.cached = o->cached, .ops = o->ops, .timeout_s = o->timeout_s, .numa = o->numa,
		.faults = o->faults, .perf_ctl = o->perf_ctl, .dump_dir = o->dump_dir,
		.max_dispatch_tokens = o->num_max_dispatch_tokens, .round_scale = o->round_scale,
		.use_ue8m0 = o->use_ue8m0, .zero_copy = o->zero_copy, .soak = o->soak, .soak_first = o->soak_first,
		.ep_semantics = o->ep_semantics, .sp_pad = o->sp_pad, .tokens_per_dp = o->tokens_per_dp,
		.shared_experts = o->shared_experts, .shared_expert_ranks = o->shared_expert_ranks,
		.smooth_scales = o->smooth_scales, .comm_quant = o->comm_quant, .ll_tokens = o->ll_tokens,
	};
}

void ep_options_traffic(const struct ep_options *o, const struct ep_routing *r, int nodes, char *buf,
			size_t len)
{
	char routing[512];
	ep_options_routing_text(o, r, routing, sizeof(routing));
	if (o->ep_semantics == EP_SEM_ASCEND) { /* keys sort before "cached"; DeepEP runs keep their traffic */
		int n = snprintf(buf, len, "ascend_comm_quant=%d\nascend_shared_expert_ranks=%d\nascend_shared_experts=%d\n"
				 "ascend_smooth_scales=%d\n", o->comm_quant, o->shared_expert_ranks, o->shared_experts,
				 o->smooth_scales);
		if (n < 0 || (size_t)n >= len)
			return;
		buf += n, len -= (size_t)n;
	}
	snprintf(buf, len,
		 "cached=%d\ndtype=%s\nexpert_alignment=%d\nexpert_counts=%s\nhook=%d\nmasked_ratio=%g\n"
		 "max_dispatch_tokens=%d\nnodes=%d\nnum_bias=%d\nnum_experts=%d\nnum_topk=%d\nops=%d\npayload=%s\n"
		 "ranks_per_node=%d\nround_scale=%d\nrouting=%s\nue8m0=%d\nuneven_tokens=%d\nwith_topk=%d\n"
		 "zero_copy=%d\n",
		 o->cached, ep_dtype_name(o->dtype), o->expert_alignment,
		 o->expert_counts == EP_COUNTS_PREFIX ? "prefix" : "counts", o->hook, o->routing.masked_ratio,
		 o->num_max_dispatch_tokens, nodes, o->num_bias, o->num_experts, o->num_topk, o->ops & EP_OPS_BOTH,
		 ep_payload_name(r->payload),
		 nodes ? o->ranks_per_node : 0, o->round_scale, routing, o->use_ue8m0, o->uneven_tokens,
		 o->with_topk, o->zero_copy);
	struct ep_parallel p; /* a MoE layer moves other rows: its configuration and slicing are traffic too */
	size_t at = strlen(buf);
	char text[160];
	if (ep_options_layer(o, &p) && at < len) {
		ep_parallel_text(&p, text, sizeof(text));
		snprintf(buf + at, len - at, "layer_parallel=%s\nlayer_sp_pad=%d\nlayer_tokens_per_dp=%d\n", text, o->sp_pad,
			 o->tokens_per_dp);
	}
}

void ep_options_routing_text(const struct ep_options *o, const struct ep_routing *r, char *buf,
			     size_t len)
{
	char groups[64] = "";
	if (r->num_topk_groups)
		snprintf(groups, sizeof(groups), ", top-%d of %d groups", r->num_topk_groups, r->num_groups);
	switch (r->kind) {
	case EP_ROUTE_UNIFORM: snprintf(buf, len, "uniform%s", groups); break;
	case EP_ROUTE_ZIPF: snprintf(buf, len, "zipf:%g%s", r->zipf_s, groups); break;
	case EP_ROUTE_LOGNORMAL: snprintf(buf, len, "lognormal:%g%s", r->lognormal_sigma, groups); break;
	case EP_ROUTE_HOT: snprintf(buf, len, "hot:%d%s", r->hot_expert, groups); break;
	case EP_ROUTE_HOT_EXPERTS: snprintf(buf, len, "hot-experts:%d:%g%s", r->hot_count, r->hot_frac, groups); break;
	case EP_ROUTE_HOT_RANK: snprintf(buf, len, "hot-rank:%d:%g%s", r->hot_rank, r->hot_frac, groups); break;
	case EP_ROUTE_FILE: snprintf(buf, len, "file:%s", o->routing_path); break;
	case EP_ROUTE_ROTATING: snprintf(buf, len, "rotating:%d:%g%s", r->rotate_period, r->zipf_s, groups); break;
	case EP_ROUTE_TRACE:
		snprintf(buf, len, "trace:%s:%d (sha256 %.16s)", o->routing_path, r->trace_first, r->trace ? r->trace->sha256 : "?");
		break;
	}
	size_t n = strlen(buf);
	if (ep_eplb_spec_active(&o->eplb) && n + 3 < len) {
		snprintf(buf + n, len - n, "; ");
		ep_placement_text(&o->eplb, o->num_experts, buf + n + 2, len - n - 2);
	}
}

/* A hot kind under group-limited routing must fit every token: the groups
 * of its hot slots within the M a token may use, and its other slots among
 * the experts of M groups outside the hot set, in the worst case the M
 * groups holding the most hot experts. */
static int check_hot_groups(const struct ep_options *o, const struct ep_shape *s, const struct ep_routing *r,
			    char *err, size_t len)
{
	char what[600];
	int first, count, slots, G, M, E = s->num_experts, K = s->num_topk;
	if (!ep_routing_hot_set(s, r, &first, &count, &slots) || !ep_routing_groups(s, r, &G, &M))
		return 0;
	int per = E / G, hot[G], spanned = 0, worst = 0;
	for (int g = 0; g < G; g++) {
		int lo = g * per > first ? g * per : first;
		int hi = (g + 1) * per < first + count ? (g + 1) * per : first + count;
		hot[g] = hi > lo ? hi - lo : 0;
		spanned += hot[g] > 0;
	}
	for (int i = 0; i < M; i++) { /* the M largest overlaps */
		int best = 0;
		for (int g = 1; g < G; g++)
			best = hot[g] > hot[best] ? g : best;
		worst += hot[best];
		hot[best] = 0;
	}
	ep_options_routing_text(o, r, what, sizeof(what));
	if ((slots < spanned ? slots : spanned) > M)
		return fail(err, len, "--routing %s: %d hot slots may span %d expert groups, more than --num-topk-groups %d",
			    what, slots, spanned < slots ? spanned : slots, M);
	if (K - slots > M * per - worst)
		return fail(err, len, "--routing %s: %d slots must go outside the hot experts, but %d groups may hold only %d others",
			    what, K - slots, M, M * per - worst);
	return 0;
}

/* Across nodes the EP groups go over the network, the TP groups must stay in a node. */
static int check_layer_nodes(const struct ep_options *o, const struct ep_parallel *p, const char *text, char *err,
			     size_t len)
{
	int P = o->ranks_per_node, tp = p->v[EP_PAR_TP], mtp = p->v[EP_PAR_MOE_TP];
	/* a TP group lies inside a node or holds whole nodes (cli/moe_layer_net.c, moe_layer_tpnet.c) */
	if (P % tp && tp % P)
		return fail(err, len, "%s with %d ranks per node: tp must divide the ranks of a node or be a multiple of "
				      "them (a group that spans nodes holds whole nodes)", text, P);
	if (p->moe_comm != EP_MOE_ALLGATHER && P % mtp && mtp % P) /* allgather mode has no MoE-TP phase */
		return fail(err, len, "%s with %d ranks per node: moe_tp must divide the ranks of a node or be a multiple "
				      "of them (a group that spans nodes holds whole nodes)", text, P);
	return 0;
}

/* Low-latency mode with moe_tp > 1 (cli/ll_layer.c), its ops the layer's
 * phases: on one host, or across nodes with its MoE-TP groups inside a node
 * (the MoE-EP groups and an attention-TP group of whole nodes over the
 * network; check_layer refuses a tp that straddles nodes). */
static int check_ll_moe_tp(const struct ep_options *o, const struct ep_parallel *p, const char *text, char *err,
			   size_t len)
{
	int P = o->ranks_per_node, M = p->v[EP_PAR_MOE_TP];
	if (P > 0 && P % M && M % P)
		return fail(err, len, "%s with %d ranks per node: low-latency mode with moe_tp > 1 runs across nodes with moe_tp "
				      "dividing the ranks of a node or a multiple of them (a group that spans nodes holds "
				      "whole nodes)", text, P);
	if (P > 0 && M > P && p->v[EP_PAR_TP] > P)
		return fail(err, len, "%s with %d ranks per node: low-latency mode with MoE-TP groups of whole nodes and an "
				      "attention-TP group of whole nodes (tp > %d) is not built", text, P, P);
	if (P > 0 && M > P && (o->zero_copy || o->hook || o->dump_dir))
		return fail(err, len, "%s with %d ranks per node: --%s in low-latency mode with MoE-TP groups of whole nodes "
				      "is not built (their gather and reduce go over cli/ll_tpnet.c)", text, P,
			    o->zero_copy ? "zero-copy" : o->hook ? "hook" : "dump");
	return 0;
}

/* --ep-semantics ascend in allgather mode (parallel-semantics.md section 2):
 * the layer has no EP dispatch or combine, so Ascend's semantics have
 * nothing to apply to and the layer runs as with deepep; the options that
 * only Ascend's dispatch/combine give meaning to are refused. */
static int check_ascend_allgather(const struct ep_options *o, const char *text, char *err, size_t len)
{
	if (o->shared_experts || o->shared_expert_ranks || o->comm_quant)
		return fail(err, len, "%s: --%s with --ep-semantics ascend in allgather mode: the layer has no EP %s "
				      "(it applies with --moe-comm a2a)", text,
			    o->comm_quant ? "comm-quant int8" : o->shared_experts ? "shared-experts" : "shared-expert-ranks",
			    o->comm_quant ? "combine whose expert outputs it would quantise"
					  : "dispatch to send rows to shared-expert ranks");
	return 0;
}

/* What the MoE layer of a parallel configuration runs so far (cli/moe_layer.h). */
static int check_layer(const struct ep_options *o, const struct ep_parallel *p, int R, char *err, size_t len)
{
	char text[160];
	ep_parallel_text(p, text, sizeof(text));
	int nodes = !strcmp(o->command, "internode"), ll = !strcmp(o->command, "low-latency");
	/* Ascend's dispatch/combine run in the layer: a2a mode (allgather mode runs the DeepEP layer's phases) */
	int asc = o->ep_semantics == EP_SEM_ASCEND && p->moe_comm != EP_MOE_ALLGATHER;
	if (ll && p->moe_comm == EP_MOE_ALLGATHER)
		return fail(err, len, "%s: in low-latency mode the layer runs all-to-all (DeepEP's low-latency kernels); "
				      "allgather mode is a normal-mode phase (epbench intranode, internode)", text);
	if (ll && p->v[EP_PAR_MOE_TP] > 1 && check_ll_moe_tp(o, p, text, err, len))
		return -1;
	if (ll && o->ranks_per_node > 0 && o->ranks_per_node % p->v[EP_PAR_TP] && p->v[EP_PAR_TP] % o->ranks_per_node)
		return fail(err, len, "%s with %d ranks per node: tp must divide the ranks of a node or be a multiple of them "
				      "(a group that spans nodes holds whole nodes)", text, o->ranks_per_node);
	if (asc && o->ranks_per_node > 0 && o->ranks_per_node % p->v[EP_PAR_TP] && p->v[EP_PAR_TP] % o->ranks_per_node)
		return fail(err, len, "%s with %d ranks per node: with --ep-semantics ascend tp must divide the ranks of a node "
				      "or be a multiple of them (a group that spans nodes holds whole nodes)", text, o->ranks_per_node);
	if (!nodes && !ll && (strcmp(o->command, "intranode") || o->ranks_per_node > 0))
		return fail(err, len, "%s on %d ranks: the MoE layer of a parallel configuration runs in epbench intranode, "
				      "internode and low-latency", text, R);
	if (nodes && check_layer_nodes(o, p, text, err, len))
		return -1;
	if (o->ranks.n > 1)
		return fail(err, len, "--parallel fixes the world (%d ranks): sweep --num-tokens or --hidden instead", R);
	if (o->ep_semantics == EP_SEM_ASCEND && !asc && check_ascend_allgather(o, text, err, len))
		return -1;
	if (asc && p->v[EP_PAR_MOE_TP] > 1 && ll)
		return fail(err, len, "%s: Ascend's MoE-TP stage (moe_tp > 1) runs in epbench intranode and internode; in %s "
				      "it is not built", text, o->command);
	if (!ll && !o->with_topk)
		return fail(err, len, "--with-topk 0: the MoE layer's experts need the top-k ids dispatch carries");
	if (o->cached && p->moe_comm == EP_MOE_ALLGATHER)
		return fail(err, len, "--cached: allgather mode has no EP dispatch whose handle a cached dispatch could reuse "
				      "(the layer's cached dispatch runs with --moe-comm a2a)");
	if ((ll || asc) && o->soak && o->uneven_tokens)
		return fail(err, len, "--soak with --uneven-tokens in a %s layer: its slices are drawn once per point, so T_d "
				      "would not change between passes (not built yet)", ll ? "low-latency" : "--ep-semantics ascend");
	if (p->moe_comm == EP_MOE_ALLGATHER && (o->dtype != EP_DTYPE_BF16 || o->num_bias))
		return fail(err, len, "--moe-comm allgather moves bf16 rows and adds no bias (got --dtype %s, --bias %d)",
			    ep_dtype_name(o->dtype), o->num_bias);
	if (!asc && o->num_experts % p->v[EP_PAR_MOE_EP]) /* Ascend: its MoE ranks (check_ascend) */
		return fail(err, len, "--num-experts %d is not a multiple of moe_ep %d", o->num_experts, p->v[EP_PAR_MOE_EP]);
	return 0;
}

/* The first option of Ascend's (--shared-experts, ...) on the command line, or NULL. */
static const char *ascend_option_given(const struct ep_options *o)
{
	static const char *const names[] = {"shared-experts", "shared-expert-ranks", "smooth-scales", "comm-quant"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (ep_option_given(o, names[i]))
			return names[i];
	return NULL;
}

/* A routing file's row that repeats an expert (Ascend's expert_ids may not): its index, or -1. */
static long repeated_expert_row(const struct ep_routing *r, int K)
{
	for (size_t t = 0; r->kind == EP_ROUTE_FILE && t < r->file_rows; t++)
		for (int j = 0; j < K; j++)
			for (int i = 0; i < j; i++)
				if (r->file_idx[t * K + j] >= 0 && r->file_idx[t * K + i] == r->file_idx[t * K + j])
					return (long)t;
	return -1;
}

/* --ep-semantics ascend (parallel-semantics.md section 4): what Ascend's
 * dispatch/combine takes; its options without it are refused. */
static int check_ascend(const struct ep_options *o, const struct ep_shape *s, const struct ep_routing *r, char *err,
			size_t len)
{
	int R = s->num_ranks, Sn = o->shared_experts, Sr = o->shared_expert_ranks;
	const char *given = ascend_option_given(o);
	if (o->ep_semantics != EP_SEM_ASCEND)
		return given ? fail(err, len, "--%s applies only with --ep-semantics ascend", given) : 0;
	if (strcmp(o->command, "intranode") && strcmp(o->command, "internode"))
		return fail(err, len, "--ep-semantics ascend runs with intranode and internode, not %s", o->command);
	if (s->dtype == EP_DTYPE_FP8)
		return fail(err, len, "--ep-semantics ascend moves bf16 or int8 (quant_mode 0 or 2), not --dtype fp8");
	if ((Sn > 0) != (Sr > 0))
		return fail(err, len, "--shared-experts %d and --shared-expert-ranks %d: give both or neither", Sn, Sr);
	if (Sn && Sr % Sn)
		return fail(err, len, "--shared-expert-ranks %d is not a multiple of --shared-experts %d", Sr, Sn);
	if (Sr >= R)
		return fail(err, len, "--shared-expert-ranks %d leaves no MoE rank of --num-ranks %d", Sr, R);
	if (o->smooth_scales && s->dtype != EP_DTYPE_INT8)
		return fail(err, len, "--smooth-scales scales x before int8 quantisation: it needs --dtype int8");
	if (o->comm_quant && s->hidden % 8)
		return fail(err, len, "--hidden %d is not a multiple of 8, which --comm-quant int8 needs (blocks of 8)", s->hidden);
	if (o->cached || !o->with_topk || o->num_bias > 1 || o->expert_alignment != 1)
		return fail(err, len, "--ep-semantics ascend has no %s", o->cached ? "cached mode (--cached)"
			    : !o->with_topk ? "dispatch without expert ids (--with-topk 0)"
			    : o->num_bias > 1 ? "second bias (--bias 2; --bias 1 is shared_expert_x)"
					      : "--expert-alignment");
	if (Sr && ep_eplb_spec_active(&o->eplb))
		return fail(err, len, "--redundant-experts with --shared-expert-ranks %d: placing physical experts on the %d MoE ranks only is not built",
			    Sr, R - Sr);
	for (int i = 0; i < o->faults.n; i++)
		if (o->faults.f[i].kind == EP_FAULT_REPLICA)
			return fail(err, len, "--fault replica:%d is not built for --ep-semantics ascend", o->faults.f[i].rank);
	long row = repeated_expert_row(r, s->num_topk);
	if (row >= 0)
		return fail(err, len, "--routing file:%s: row %ld repeats an expert, which Ascend's expert_ids may not",
			    o->routing_path, row + 1);
	return 0;
}

/* A parallel configuration must resolve for R ranks. */
static int check_parallel(const struct ep_options *o, int R, char *err, size_t len)
{
	struct ep_parallel p;
	if (ep_parallel_resolve(&o->parallel, R, o->ranks_per_node, &p, err, len))
		return -1;
	if (ep_parallel_pure_ep(&p)) {
		if (o->sp_pad || o->tokens_per_dp)
			return fail(err, len, "%s applies to attention-TP slices; this configuration is plain EP",
				    o->sp_pad ? "--sp-pad" : "--tokens-per-dp");
		return 0;
	}
	return check_layer(o, &p, R, err, len) ? -1 : 0;
}

/* Routing that changes between iterations checks one pass per distinct
 * step (reference/routing_step.h): a data fault aimed at a later pass would
 * never strike. Checked here, before anything is spawned, when the run has
 * one point outside a layer (the ranks check every other run: cli/bench.c). */
static int check_fault_steps(const struct ep_options *o, const struct ep_shape *s, const struct ep_routing *r,
			     int in_layer, char *err, size_t len)
{
	if (!ep_routing_varies(r) || in_layer || o->soak || o->ranks.n > 1 || o->tokens.n > 1 || o->hidden.n > 1)
		return 0;
	long n = ep_routing_distinct_steps(s, r, (long)o->warmup + o->iters);
	for (int k = 0; k < o->faults.n; k++) {
		const struct ep_fault *f = &o->faults.f[k];
		if (ep_fault_is_data(f) && f->iter >= n)
			return fail(err, len, "--fault %s:%d@%ld never strikes: the run checks %ld routing step%s (0 to %ld)",
				    f->name, f->rank, f->iter, n, n > 1 ? "s" : "", n - 1);
	}
	return 0;
}

int ep_options_check_shape(const struct ep_options *o, const struct ep_shape *s,
			   const struct ep_routing *r, char *err, size_t len)
{
	int R = s->num_ranks, E = s->num_experts, K = s->num_topk, H = s->hidden;
	struct ep_parallel layer = {0};
	int in_layer = ep_options_layer(o, &layer);
	int Rep = in_layer ? layer.v[EP_PAR_MOE_EP] : R; /* ranks experts are spread over */
	if (ep_parallel_given(&o->parallel) && check_parallel(o, R, err, len))
		return -EP_EUSAGE;
	/* A sweep may aim a fault at a rank only its larger points have; a rank
	 * that no point has is a usage error. A node job's R is the job's. */
	int most = R;
	for (int i = 0; o->ranks_per_node <= 0 && i < o->ranks.n; i++)
		most = o->ranks.v[i] > most ? o->ranks.v[i] : most;
	if (ep_faults_max_rank(&o->faults) >= most)
		return fail(err, len, "--fault targets rank %d, but the run has ranks 0 to %d", ep_faults_max_rank(&o->faults),
			    most - 1);
	if (ep_placement_check(&o->eplb, o->num_experts, Rep, 0, r->num_topk_groups ? r->num_groups : 0, err, len))
		return -EP_EUSAGE;
	for (int i = 0; i < o->faults.n; i++)
		if (o->faults.f[i].kind == EP_FAULT_REPLICA && !ep_eplb_spec_active(&o->eplb))
			return fail(err, len, "--fault replica:%d needs a placement (--redundant-experts) to move a replica of",
				    o->faults.f[i].rank);
		else if (o->faults.f[i].kind == EP_FAULT_REPLICA && o->faults.f[i].iter >= 0)
			return fail(err, len, "--fault replica:%d@%ld: the replica is moved for the whole run, not at one iteration",
				    o->faults.f[i].rank, o->faults.f[i].iter);
	if (ep_eplb_spec_active(&o->eplb) && !r->placement)
		return fail(err, len, "out of memory placing %d physical experts", E);
	if (ep_faults_check_nodes(&o->faults, o->ranks_per_node > 0 ? R / o->ranks_per_node : 1, err, len))
		return -EP_EUSAGE;
	if (check_ascend(o, s, r, err, len) || check_fault_steps(o, s, r, in_layer, err, len))
		return -EP_EUSAGE;
	if (o->ep_semantics == EP_SEM_ASCEND && o->shared_expert_ranks >= Rep) /* a MoE-EP group of moe_ep < R ranks */
		return fail(err, len, "--shared-expert-ranks %d leaves no MoE rank of moe_ep %d (each MoE-EP group's first "
				      "EP ranks host the shared experts)", o->shared_expert_ranks, Rep);
	if (o->ep_semantics == EP_SEM_ASCEND && E % (Rep - o->shared_expert_ranks))
		return fail(err, len, "--num-experts %d is not a multiple of the %d MoE ranks (%s %d - --shared-expert-ranks %d)",
			    E, Rep - o->shared_expert_ranks, Rep == R ? "--num-ranks" : "moe_ep", Rep, o->shared_expert_ranks);
	if (o->ep_semantics != EP_SEM_ASCEND && E % Rep)
		return fail(err, len, "--num-experts %d is not a multiple of %s %d", E, Rep == R ? "--num-ranks" : "moe_ep", Rep);
	if (o->ep_semantics != EP_SEM_ASCEND && E / Rep > 1024)
		return fail(err, len, "--num-experts %d gives %d local experts per rank; DeepEP allows at most 1024", E, E / Rep);
	struct ep_shape logical = *s; /* from here on the router's experts (E without redundant ones) */
	logical.num_experts = E = o->num_experts;
	s = &logical;
	if (K > 32)
		return fail(err, len, "--num-topk %d exceeds DeepEP's limit of 32 for normal kernels", K);
	if (K > E)
		return fail(err, len, "--num-topk %d exceeds --num-experts %d", K, E);
	if (s->dtype == EP_DTYPE_FP8 && H % 128)
		return fail(err, len, "--hidden %d is not a multiple of 128, which --dtype fp8 needs (per-128-channel scales)", H);
	if ((size_t)H * (s->dtype == EP_DTYPE_BF16 ? 2 : 1) % 16)
		return fail(err, len, "--hidden %d gives %zu-byte %s rows; DeepEP needs a multiple of 16 bytes", H,
			    (size_t)H * (s->dtype == EP_DTYPE_BF16 ? 2 : 1), ep_dtype_name(s->dtype));
	if (r->kind == EP_ROUTE_HOT && r->hot_expert >= E)
		return fail(err, len, "--routing hot:%d names an expert outside [0, %d)", r->hot_expert, E);
	if (r->kind == EP_ROUTE_HOT_EXPERTS && r->hot_count > E)
		return fail(err, len, "--routing hot-experts:%d:%g names more experts than --num-experts %d", r->hot_count,
			    r->hot_frac, E);
	if (r->kind == EP_ROUTE_HOT_RANK && r->hot_rank >= Rep)
		return fail(err, len, "--routing hot-rank:%d:%g names a rank outside [0, %d)", r->hot_rank, r->hot_frac, Rep);
	if (r->num_groups || r->num_topk_groups) {
		int G = r->num_groups ? r->num_groups : R;
		if (E % G)
			return fail(err, len, "--num-experts %d is not a multiple of --num-groups %d", E, G);
		if (r->num_topk_groups > G)
			return fail(err, len, "--num-topk-groups %d exceeds the %d expert groups", r->num_topk_groups, G);
		if (r->num_topk_groups && K > r->num_topk_groups * (E / G))
			return fail(err, len, "--num-topk %d exceeds the %d experts of %d groups", K,
				    r->num_topk_groups * (E / G), r->num_topk_groups);
		if (r->kind == EP_ROUTE_FILE || r->kind == EP_ROUTE_TRACE)
			return fail(err, len, "--num-topk-groups does not apply to --routing %s:%s (its rows are given)",
				    r->kind == EP_ROUTE_FILE ? "file" : "trace", o->routing_path);
	}
	int T = s->num_tokens; /* a MoE layer's ranks route their slices: ceil(T_d / tp) rows at most */
	if (in_layer) {
		int tp = layer.v[EP_PAR_TP] > 0 ? layer.v[EP_PAR_TP] : 1;
		long long Td = o->tokens_per_dp ? o->tokens_per_dp : (long long)s->num_tokens * tp;
		T = (int)((Td + tp - 1) / tp);
	}
	if (r->kind == EP_ROUTE_TRACE && r->trace && (long long)R * T > r->trace->tokens_per_step)
		return fail(err, len, "--routing trace:%s: a step has %d tokens, the run asks for %d ranks x %d tokens = %lld",
			    o->routing_path, r->trace->tokens_per_step, R, T, (long long)R * T);
	return check_hot_groups(o, s, r, err, len);
}
