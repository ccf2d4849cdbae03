/* plan.c - `epbench plan`: how big each library's buffers must be for a shape, without running it.
 *
 *   epbench plan -r 8 -t 4096 --hidden 7168 -k 8 -e 256 [--nodes 2 --ranks-per-node 8] [--json FILE]
 *
 * Takes the options of a run (shape, sweep, node layout, parallel keys),
 * spawns nothing, and prints per rank for every point: DeepEP's normal-mode
 * NVL and RDMA buffer bytes and its low-latency RDMA size hint, Ascend's
 * HCCL_BUFFSIZE minimum (MB) for A2 (and A2 layered across nodes) and A3,
 * all by the formulas of cli/buffer_hints.h, and epbench's own shared arena
 * per rank for a normal and a low-latency run of the shape, sized by the
 * launcher's own code (ep_launch_plan_bytes). With HCCL_BUFFSIZE in the
 * environment it says, per point, whether that is enough and by how much it
 * falls short. A shape whose sizes overflow 64 bits, or exceed any device
 * (1 TiB per rank), is refused: one line, exit 2.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buffer_hints.h"
#include "cli/command.h"
#include "cli/launcher.h"
#include "cli/layer_figures.h"
#include "cli/limits.h"
#include "collectives/error.h"
#include "reports/json.h"

#define DEVICE_CAP (1ull << 40)        /* bytes per rank no device holds */
#define SIZE_CAP_ENTRIES (1ull << 28)  /* routing entries (R x T x K) epbench sizes here */

/* One point's figures. */
struct plan_row {
	int R, T, H, nodes, P, N;           /* world, tokens/rank, hidden, nodes, ranks/node, LL max tokens */
	int W, Tep;                         /* the EP group's ranks and tokens per rank (a layer: moe_ep, its slices) */
	int deepep_ok;                      /* DeepEP has a default Config for R (else the normal hints are n/a) */
	uint64_t nvl, rdma, ll;             /* DeepEP bytes per rank */
	uint64_t a2, a2_layered, a3;        /* HCCL_BUFFSIZE minimum, MB (a2_layered: 0 on one node) */
	int normal_ok, ll_ok;               /* epbench sized the point */
	uint64_t normal_arena, ll_arena;    /* epbench's shared mapping per rank, bytes */
	uint64_t normal_heap, ll_heap;      /* epbench's estimate of one rank's heap, bytes */
};

static const struct ep_option_spec plan_spec = {"plan", EP_SCOPE_RUN | EP_SCOPE_NORMAL | EP_SCOPE_LL | EP_SCOPE_NODES, NULL};

/* epbench's arena for the point under variant v (procs rank processes here). */
static int epbench_bytes(const struct ep_options *o, const struct ep_command *cmd, const struct plan_row *w,
			 uint64_t *arena, uint64_t *heap)
{
	struct ep_run_cfg cfg;
	struct ep_run run = {.cfg = &cfg};
	size_t shared = 0, priv = 0;
	int procs = w->nodes > 1 ? w->P : w->R;
	if ((uint64_t)w->R * (uint64_t)w->T * (uint64_t)o->num_topk > SIZE_CAP_ENTRIES)
		return -1;
	ep_options_run_cfg(o, &cfg);
	cfg.ranks_per_node = w->nodes > 1 ? w->P : 0;
	ep_options_shape(o, w->R, w->T, w->H, &run.shape);
	if (cmd == &ep_cmd_low_latency && run.shape.dtype == EP_DTYPE_INT8)
		run.shape.dtype = EP_DTYPE_BF16; /* int8 is normal mode only */
	ep_command_routing(cmd, o, w->R, w->nodes > 1 ? w->nodes : 0, &run.routing);
	run.attn_tokens = w->T;
	char err[EP_TEXT_MAX];
	if (ep_parallel_given(&o->parallel) &&
	    ep_parallel_resolve(&o->parallel, w->R, o->ranks_per_node, &run.parallel, err, sizeof(err)))
		memset(&run.parallel, 0, sizeof(run.parallel));
	if (cmd == &ep_cmd_low_latency && ep_layer_run(&run) && ep_layer_slice_run(&run)) {
		ep_command_routing_free(&run.routing);
		return -EP_ENOMEM;
	}
	struct ep_command chosen; /* a layer's variant, as the run would pick it */
	const struct ep_command *c = ep_command_for(w->nodes > 1 && cmd != &ep_cmd_low_latency ? &ep_cmd_internode : cmd,
						    o, &chosen);
	int rc = ep_launch_plan_bytes(c->variant, &run, procs, &shared, &priv);
	ep_command_routing_free(&run.routing);
	*arena = shared / (size_t)procs;
	*heap = priv;
	return rc;
}

/* The point's refusal when a figure is past any device; 0 otherwise. */
static int past_devices(const struct plan_row *w, char *err, size_t len)
{
	const char *what = w->nvl > DEVICE_CAP ? "DeepEP's NVL buffer" : w->rdma > DEVICE_CAP ? "DeepEP's RDMA buffer"
			   : w->ll > DEVICE_CAP ? "DeepEP's low-latency RDMA buffer"
			   : w->a3 > DEVICE_CAP >> 20 || w->a2 > DEVICE_CAP >> 20 || w->a2_layered > DEVICE_CAP >> 20
				   ? "Ascend's HCCL_BUFFSIZE minimum" : NULL;
	if (!what)
		return 0;
	snprintf(err, len, "%d ranks x %d tokens x hidden %d: %s exceeds any device's memory (1 TiB per rank)", w->R, w->T,
		 w->H, what);
	return -EP_EUSAGE;
}

/* Every figure of one point. 0, or -EP_EUSAGE with one line in err. */
static int plan_point(const struct ep_options *o, int R, int T, int H, int nodes, struct plan_row *w, char *err,
		      size_t len)
{
	struct ep_shape s;
	struct ep_routing r;
	struct ep_options as_run = *o; /* checked as a normal run of the shape would be */
	struct ep_parallel layer;
	as_run.command = nodes > 1 ? "internode" : "intranode";
	*w = (struct plan_row){.R = R, .T = T, .H = H, .nodes = nodes, .P = R / nodes, .W = R, .Tep = T};
	ep_options_shape(o, R, T, H, &s);
	ep_command_routing(&ep_cmd_intranode, o, R, 0, &r);
	int rc = ep_options_check_shape(&as_run, &s, &r, err, len);
	ep_command_routing_free(&r);
	if (rc)
		return rc;
	if (ep_options_layer(o, &layer)) { /* DeepEP and Ascend run in the MoE-EP group, on the slices */
		int tp = layer.v[EP_PAR_TP] > 0 ? layer.v[EP_PAR_TP] : 1;
		long long Td = o->tokens_per_dp ? o->tokens_per_dp : (long long)T * tp;
		w->W = layer.v[EP_PAR_MOE_EP], w->Tep = (int)((Td + tp - 1) / tp);
	}
	w->N = o->num_max_dispatch_tokens ? o->num_max_dispatch_tokens : w->Tep;
	struct ep_limits_point lp;
	ep_limits_point_of(o, &s, nodes, &lp);
	lp.ranks = w->W, lp.tokens = w->Tep;
	lp.low_latency = 1, lp.max_dispatch_tokens = w->N; /* the operator's BS: what a rank sends per op */
	const char *formula;
	int nrc = ep_deepep_normal_bytes(w->W, H, &w->nvl, &w->rdma);
	w->deepep_ok = nrc == 0;
	if (nrc == -EP_EUSAGE || ep_deepep_ll_rdma_hint(w->N, H, w->W, s.num_experts, &w->ll) ||
	    ep_limits_hccl_min(EP_LIMITS_ASCEND_A2, &lp, ep_deploy_getenv, &w->a2, &formula) ||
	    ep_limits_hccl_min(EP_LIMITS_ASCEND_A3, &lp, ep_deploy_getenv, &w->a3, &formula) ||
	    (nodes > 1 && ep_hccl_a2_layered_min_mb((uint64_t)s.num_experts, (uint64_t)w->N, (uint64_t)H, 2,
						    (uint64_t)s.num_topk, &w->a2_layered))) {
		snprintf(err, len, "%d ranks x %d tokens x hidden %d: a buffer size overflows 64 bits", R, T, H);
		return -EP_EUSAGE;
	}
	if (past_devices(w, err, len))
		return -EP_EUSAGE;
	w->normal_ok = !epbench_bytes(o, &ep_cmd_intranode, w, &w->normal_arena, &w->normal_heap);
	w->ll_ok = !epbench_bytes(o, &ep_cmd_low_latency, w, &w->ll_arena, &w->ll_heap);
	return 0;
}

static void cell(char *buf, size_t len, int ok, uint64_t v)
{
	if (ok)
		snprintf(buf, len, "%" PRIu64, v);
	else
		snprintf(buf, len, "n/a");
}

static void print_table(const struct ep_options *o, const struct plan_row *rows, int n)
{
	printf("# epbench plan: buffers per rank by each library's own formula (README: Deployment knobs); nothing runs\n"
	       "# top-%d of %d experts (%d physical), low-latency N = %s\n",
	       o->num_topk, o->num_experts, o->num_experts + o->eplb.redundant,
	       o->num_max_dispatch_tokens ? "--num-max-dispatch-tokens-per-rank" : "tokens per rank");
	printf("# ranks nodes  tokens hidden     deepep_nvl    deepep_rdma deepep_ll_rdma hccl_a2 hccl_a2_pcie hccl_a3 "
	       "epbench_normal    epbench_ll\n"
	       "#                /rank             (bytes)        (bytes)        (bytes)    (MB)         (MB)    (MB) "
	       " (bytes/rank)  (bytes/rank)\n");
	for (int i = 0; i < n; i++)
		if (rows[i].W != rows[i].R || rows[i].Tep != rows[i].T)
				printf("# %d ranks x %d tokens: the MoE-EP group is %d ranks of %d tokens each (the layer's slices): "
			       "DeepEP's and Ascend's figures are for it\n", rows[i].R, rows[i].T, rows[i].W, rows[i].Tep);
	for (int i = 0; i < n; i++) {
		const struct plan_row *w = &rows[i];
		char nvl[24], rdma[24], layered[24], normal[24], ll[24];
		cell(nvl, sizeof(nvl), w->deepep_ok, w->nvl);
		cell(rdma, sizeof(rdma), w->deepep_ok, w->rdma);
		cell(layered, sizeof(layered), w->nodes > 1, w->a2_layered);
		cell(normal, sizeof(normal), w->normal_ok, w->normal_arena);
		cell(ll, sizeof(ll), w->ll_ok, w->ll_arena);
		printf("%7d %5d %7d %6d %14s %14s %14" PRIu64 " %7" PRIu64 " %12s %7" PRIu64 " %14s %13s\n", w->R, w->nodes,
		       w->T, w->H, nvl, rdma, w->ll, w->a2, layered, w->a3, normal, ll);
	}
}

/* With HCCL_BUFFSIZE set: enough, or the shortfall, per point and product. */
static void print_buffsize(const struct plan_row *rows, int n, uint64_t have)
{
	for (int i = 0; i < n; i++) {
		const struct plan_row *w = &rows[i];
		uint64_t a2 = w->nodes > 1 && w->a2_layered ? w->a2_layered : w->a2;
		char t2[80], t3[80];
		if (have >= a2)
			snprintf(t2, sizeof(t2), "enough for A2 (needs %" PRIu64 " MB)", a2);
		else
			snprintf(t2, sizeof(t2), "A2 short by %" PRIu64 " MB (needs %" PRIu64 " MB)", a2 - have, a2);
		if (have >= w->a3)
			snprintf(t3, sizeof(t3), "enough for A3 (needs %" PRIu64 " MB)", w->a3);
		else
			snprintf(t3, sizeof(t3), "A3 short by %" PRIu64 " MB (needs %" PRIu64 " MB)", w->a3 - have, w->a3);
		printf("# HCCL_BUFFSIZE=%" PRIu64 " MB at %d ranks x %d tokens x hidden %d: %s; %s\n", have, w->R, w->T, w->H,
		       t2, t3);
	}
}

static void print_sources(void)
{
	printf("# deepep_nvl/rdma: Config.get_nvl_buffer_size_hint / get_rdma_buffer_size_hint(hidden x 2, R), max of the default\n"
	       "#   dispatch and combine Configs (num_sms 20) [DeepEP csrc/legacy/config.hpp, deep_ep/buffers/legacy.py]\n"
	       "# deepep_ll_rdma: get_low_latency_rdma_size_hint(N, hidden, R, experts) [DeepEP csrc/legacy/config.hpp]\n"
	       "# hccl_a2 / hccl_a2_pcie / hccl_a3: HCCL_BUFFSIZE minimum of npu_moe_distribute_dispatch/combine, BS = N\n"
	       "#   [Ascend aclnnMoeDistributeDispatch constraints: A2, A2 with HCCL_INTRA_PCIE_ENABLE=1, A3]\n"
	       "# epbench_*: this tool's shared mapping per rank for the shape (cli/launcher.c, the variant's size())\n");
}

static void json_row(struct ep_json *j, const struct plan_row *w, int have_set, uint64_t have)
{
	ep_json_begin_object(j, NULL);
	ep_json_int(j, "ranks", w->R), ep_json_int(j, "nodes", w->nodes), ep_json_int(j, "ranks_per_node", w->P);
	ep_json_int(j, "tokens", w->T), ep_json_int(j, "hidden", w->H), ep_json_int(j, "max_dispatch_tokens", w->N);
	ep_json_int(j, "ep_ranks", w->W), ep_json_int(j, "ep_tokens", w->Tep);
	ep_json_begin_object(j, "deepep");
	w->deepep_ok ? ep_json_uint(j, "nvl_bytes", w->nvl) : ep_json_null(j, "nvl_bytes");
	w->deepep_ok ? ep_json_uint(j, "rdma_bytes", w->rdma) : ep_json_null(j, "rdma_bytes");
	ep_json_uint(j, "ll_rdma_bytes", w->ll);
	ep_json_end_object(j);
	ep_json_begin_object(j, "hccl_buffsize_min_mb");
	ep_json_uint(j, "a2", w->a2);
	w->nodes > 1 ? ep_json_uint(j, "a2_pcie", w->a2_layered) : ep_json_null(j, "a2_pcie");
	ep_json_uint(j, "a3", w->a3);
	ep_json_end_object(j);
	ep_json_begin_object(j, "epbench");
	w->normal_ok ? ep_json_uint(j, "normal_arena_bytes_per_rank", w->normal_arena) : ep_json_null(j, "normal_arena_bytes_per_rank");
	w->normal_ok ? ep_json_uint(j, "normal_heap_bytes_per_rank", w->normal_heap) : ep_json_null(j, "normal_heap_bytes_per_rank");
	w->ll_ok ? ep_json_uint(j, "ll_arena_bytes_per_rank", w->ll_arena) : ep_json_null(j, "ll_arena_bytes_per_rank");
	w->ll_ok ? ep_json_uint(j, "ll_heap_bytes_per_rank", w->ll_heap) : ep_json_null(j, "ll_heap_bytes_per_rank");
	ep_json_end_object(j);
	if (have_set) {
		uint64_t a2 = w->nodes > 1 && w->a2_layered ? w->a2_layered : w->a2;
		ep_json_begin_object(j, "hccl_buffsize");
		ep_json_uint(j, "set_mb", have);
		ep_json_uint(j, "a2_short_mb", have >= a2 ? 0 : a2 - have);
		ep_json_uint(j, "a3_short_mb", have >= w->a3 ? 0 : w->a3 - have);
		ep_json_end_object(j);
	}
	ep_json_end_object(j);
}

static int write_json(const struct ep_options *o, const struct plan_row *rows, int n, int have_set, uint64_t have)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "schema", "epbench-plan/1");
	ep_json_int(j, "num_topk", o->num_topk);
	ep_json_int(j, "num_experts", o->num_experts + o->eplb.redundant);
	ep_json_string(j, "environment", o->env_from[0] ? o->env_from : NULL);
	ep_json_begin_array(j, "points");
	for (int i = 0; i < n; i++)
		json_row(j, &rows[i], have_set, have);
	ep_json_end_array(j);
	ep_json_end_object(j);
	return ep_json_write_file(j, o->json_path);
}

/* The world of the command line: --nodes x --ranks-per-node when both are given, else --num-ranks. */
static int plan_world(struct ep_options *o, int *nodes, char *err, size_t len)
{
	*nodes = o->nodes > 0 ? o->nodes : 1;
	if (o->ranks_per_node > 0) {
		int R = *nodes * o->ranks_per_node;
		if (ep_option_given(o, "num-ranks") && (o->ranks.n != 1 || o->ranks.v[0] != R))
			return snprintf(err, len, "--num-ranks disagrees with --nodes %d x --ranks-per-node %d", *nodes,
					o->ranks_per_node), -EP_EUSAGE;
		o->ranks.v[0] = R, o->ranks.n = 1;
	}
	for (int i = 0; i < o->ranks.n; i++)
		if (o->ranks.v[i] % *nodes)
			return snprintf(err, len, "--num-ranks %d is not a multiple of --nodes %d", o->ranks.v[i], *nodes),
			       -EP_EUSAGE;
	return 0;
}

static int plan_run(struct ep_options *o, char *err, size_t len)
{
	int nodes, n = o->ranks.n * o->tokens.n * o->hidden.n, k = 0;
	uint64_t have = 0;
	int have_set = ep_hccl_buffsize(ep_deploy_getenv, &have);
	if (have_set < 0)
		return snprintf(err, len, "environment HCCL_BUFFSIZE='%.40s': want an integer number of MB, at least 1",
				ep_deploy_getenv("HCCL_BUFFSIZE")), -EP_EUSAGE;
	if (plan_world(o, &nodes, err, len) || (o->json_path && ep_options_check_outputs(o, err, len)))
		return -EP_EUSAGE;
	n = o->ranks.n * o->tokens.n * o->hidden.n;
	struct plan_row *rows = calloc((size_t)n, sizeof(*rows));
	if (!rows)
		return snprintf(err, len, "out of memory"), -EP_ENOMEM;
	for (int a = 0; a < o->ranks.n; a++)
		for (int b = 0; b < o->tokens.n; b++)
			for (int c = 0; c < o->hidden.n; c++, k++)
				if (plan_point(o, o->ranks.v[a], o->tokens.v[b], o->hidden.v[c], nodes, &rows[k], err, len)) {
					free(rows);
					return -EP_EUSAGE;
				}
	print_table(o, rows, n);
	if (o->env_from[0])
		printf("# environment: %s\n", o->env_from);
	if (have_set)
		print_buffsize(rows, n, have);
	print_sources();
	int rc = o->json_path && write_json(o, rows, n, have_set, have) ? -EP_ENODEV : 0;
	if (rc)
		snprintf(err, len, "cannot write --json %s", o->json_path);
	free(rows);
	return rc;
}

static int plan_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct ep_options o;
	char err[512];
	int rc = ep_options_parse(&plan_spec, argc, argv, &o, stdout, err, sizeof(err));
	if (rc == 1)
		return EP_EXIT_OK;
	if (rc == 0)
		rc = plan_run(&o, err, sizeof(err));
	ep_options_free(&o); /* also after a refused parse: it leaves nothing allocated */
	if (rc == 0)
		return EP_EXIT_OK;
	fprintf(stderr, "epbench %s: %s\n", cmd->name, err);
	return rc == -EP_EUSAGE ? EP_EXIT_USAGE : EP_EXIT_ENV;
}

const struct ep_command ep_cmd_plan = {
	.name = "plan",
	.help = "buffer sizes per rank a shape needs: DeepEP's hints, Ascend's HCCL_BUFFSIZE, epbench's arena (nothing runs)",
	.main = plan_main,
};
