/* mixed.c - `epbench mixed`: normal and low-latency dispatch/combine on the same ranks and one arena.
 *
 * What it models: a node serving prefill and decode at once (SGLang's
 * --deepep-mode auto: normal dispatch/combine for prefill batches,
 * low-latency for decode batches, one DeepEP Buffer built with
 * low_latency_mode=True serving both; DeepEP-Ascend tests the same in
 * tests/test_normal_and_low_latency.py). Both modes use the same memory, so
 * before low-latency kernels run after normal ones the low-latency receive
 * counters and flags must be zeroed again: DeepEP's
 * Buffer.clean_low_latency_buffer(num_max_dispatch_tokens_per_rank, hidden,
 * num_experts).
 *
 * The arena is shared, not two side by side: the launcher maps
 * max(normal bytes, low-latency bytes) per host (mixed_size), and both
 * modes bind at its base. Normal mode's count matrix [R][R]
 * (collectives/intranode.c) lies at offset 0, over rank 0's low-latency
 * signal lines; its expert counts and receive areas lie over the
 * low-latency rank regions (signals, send areas, combine areas, packed
 * outputs) and the harness's expert-output buffer. Each mode's data is gone
 * once the other mode ran.
 *
 * Ops: normal-dispatch and normal-combine with the point's --num-tokens (the
 * prefill batch), ll-dispatch and ll-combine with --ll-tokens (the decode
 * batch), checked bit for bit each by its mode's reference. The check pass
 * and every soak pass run them in that order, so every pass alternates
 * normal, hand-over, low-latency, hand-over; the timed loops time each op in
 * turn, with one hand-over between the normal and the low-latency ones.
 *
 * Hand-overs happen in an op's prepare (the first thing the engine runs of
 * an op), when the op's mode is not the one that used the arena last:
 *  - to normal: a barrier (no rank still reads low-latency areas), then the
 *    normal state is rebuilt (its outputs in the arena are gone); normal
 *    mode publishes everything it reads on every dispatch, so nothing is
 *    cleaned;
 *  - to low-latency: a barrier, the low-latency state rebuilt (its packed
 *    outputs and cached expert outputs are gone), then ep_ll_clean: a
 *    barrier, each rank zeroes its signal lines and restarts its call
 *    numbering, a barrier. --fault noclean:R leaves rank R's lines as
 *    normal mode left them: its first receive finds them far ahead (exit 1,
 *    naming the line's rank) or behind (a named timeout, exit 4).
 *
 * Composition: the two modes' own variants (ep_intranode_variant,
 * ep_low_latency_variant) do the work on their own states, each given a copy
 * of the rank's environment whose run has its mode's tokens; this file
 * routes each op to its mode's descriptor and does the hand-overs. One host
 * only: the modes' node jobs differ (DeepEP's internode normal mode uses
 * its RDMA buffer by channels; a mixed run across nodes is not built).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench.h"
#include "cli/command.h"
#include "cli/low_latency.h"
#include "collectives/error.h"
#include "collectives/low_latency.h"
#include "reference/routing_step.h"

enum { PART_NORMAL, PART_LL, NPARTS };
enum { MODE_NONE = -1 }; /* else a PART_*: the mode that used the arena last */

/* One mode: its variant, its run (the point's, with the mode's tokens) and
 * environment (the rank's, with that run), its state. */
struct part {
	const struct ep_variant *v;
	struct ep_run run;
	struct ep_bench_env env;
	void *st;
};

struct mixed_state {
	struct ep_bench_env *env;
	struct part part[NPARTS];
	int cur;   /* the op running: mixed op i is op i % 2 of part i / 2 */
	int mode;  /* PART_* that used the arena last, or MODE_NONE */
};

static const struct ep_variant *const part_variant[NPARTS] = {&ep_intranode_variant, &ep_low_latency_variant};

/* The run of a mode: the point's, the low-latency ops with --ll-tokens. */
static void part_run(const struct ep_run *run, int p, struct ep_run *out)
{
	*out = *run;
	if (p == PART_LL)
		out->shape.num_tokens = run->cfg->ll_tokens;
}

/* Launcher side: receive rows of normal mode; one arena of the larger
 * mode's bytes (both bind at its base); both modes' private bytes. */
static int mixed_size(struct ep_run *run, size_t *arena_bytes, size_t *rank_bytes)
{
	size_t arena[NPARTS], rank[NPARTS];
	struct ep_run r[NPARTS];
	for (int p = 0; p < NPARTS; p++) {
		part_run(run, p, &r[p]);
		int rc = part_variant[p]->size(&r[p], &arena[p], &rank[p]);
		if (rc)
			return rc;
	}
	run->capacity = r[PART_NORMAL].capacity;
	*arena_bytes = arena[PART_NORMAL] > arena[PART_LL] ? arena[PART_NORMAL] : arena[PART_LL];
	*rank_bytes = rank[PART_NORMAL] + rank[PART_LL];
	return 0;
}

static void mixed_teardown(void *p)
{
	struct mixed_state *m = p;
	if (!m)
		return;
	for (int i = 0; i < NPARTS; i++)
		if (m->part[i].st)
			m->part[i].v->teardown(m->part[i].st);
	free(m);
}

static int mixed_setup(struct ep_bench_env *env, void **out)
{
	struct mixed_state *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->env = env;
	m->mode = MODE_NONE;
	for (int p = 0; p < NPARTS; p++) {
		struct part *pt = &m->part[p];
		pt->v = part_variant[p];
		part_run(env->run, p, &pt->run);
		pt->env = *env;
		pt->env.run = &pt->run; /* same arena, waiter and rank */
		int rc = pt->v->setup(&pt->env, &pt->st);
		if (rc) {
			mixed_teardown(m);
			return rc;
		}
	}
	*out = m;
	return 0;
}

/* Soak: both modes' inputs and references for the run's new seed (the
 * runs' cfg is the engine's, whose seed moved). */
static int mixed_reseed(void *p)
{
	struct mixed_state *m = p;
	for (int i = 0; i < NPARTS; i++) {
		struct part *pt = &m->part[i];
		part_run(m->env->run, i, &pt->run);
		int rc = pt->v->reseed(pt->st);
		if (rc)
			return rc;
	}
	return 0;
}

/* Hands the arena to mode `to` (see the file comment). Collective. */
static int hand_over(struct mixed_state *m, int to)
{
	struct part *pt = &m->part[to];
	struct ep_waiter *w = m->env->waiter;
	int rc;
	if (m->mode == to)
		return 0;
	ep_set_phase(w, "mode hand-over");
	if ((rc = ep_barrier(w))) /* no rank still uses the other mode's memory */
		return rc;
	if (m->mode != MODE_NONE && (rc = pt->v->reseed(pt->st))) /* what it held in the arena is gone */
		return rc;
	if (to == PART_LL) {
		int keep = ep_faults_at(&m->env->run->cfg->faults, EP_FAULT_NOCLEAN, m->env->rank, 0);
		if ((rc = ep_ll_clean(ep_ll_variant_coll(pt->st), keep)))
			return rc;
	}
	m->mode = to;
	return 0;
}

static const struct ep_op_desc *sub_op(const struct mixed_state *m)
{
	return &m->part[m->cur / 2].v->ops[m->cur % 2];
}

static void *sub_state(const struct mixed_state *m)
{
	return m->part[m->cur / 2].st;
}

/* Op i's prepare: notes the op, hands the arena over, then its mode's prepare. */
static int prepare_op(struct mixed_state *m, int i)
{
	int rc;
	m->cur = i;
	if ((rc = hand_over(m, i / 2)))
		return rc;
	return sub_op(m)->prepare ? sub_op(m)->prepare(sub_state(m)) : 0;
}

static int prepare_normal_dispatch(void *p)
{
	return prepare_op(p, 0);
}

static int prepare_normal_combine(void *p)
{
	return prepare_op(p, 1);
}

static int prepare_ll_dispatch(void *p)
{
	return prepare_op(p, 2);
}

static int prepare_ll_combine(void *p)
{
	return prepare_op(p, 3);
}

/* The rest of an op goes to the op its prepare noted. */
static int op_run(void *p)
{
	return sub_op(p)->run(sub_state(p));
}

static int op_check(void *p, struct ep_check_report *rep)
{
	return sub_op(p)->check(sub_state(p), rep);
}

static void op_bytes(const void *p, uint64_t *alg, uint64_t *wire)
{
	sub_op(p)->bytes(sub_state(p), alg, wire);
}

static int op_outputs(void *p, struct ep_tensor_view *v, int max)
{
	return sub_op(p)->outputs ? sub_op(p)->outputs(sub_state(p), v, max) : 0;
}

/* Rows a mode's dispatch received (its ops' rows column; normal mode's
 * are the point's). */
static uint64_t part_recv_rows(const struct mixed_state *m, int p)
{
	return m->part[p].v->ops[0].recv_rows(m->part[p].st);
}

static uint64_t normal_recv_rows(const void *p)
{
	return part_recv_rows(p, PART_NORMAL);
}

static uint64_t ll_recv_rows(const void *p)
{
	return part_recv_rows(p, PART_LL);
}

/* Launcher side: the low-latency ops run --ll-tokens per rank. */
static int mixed_op_tokens(const struct ep_run *run, int i)
{
	return i / 2 == PART_LL ? run->cfg->ll_tokens : 0;
}

/* --dump is refused (mixed_check): each mode's tensors are gone once the other ran. */
static int mixed_dump(void *p, const char *dir)
{
	(void)p, (void)dir;
	return -EP_EUSAGE;
}

#define MIXED_OP(nm, m, prep, rows, recv) \
	{.name = nm, .mask = m, .prepare = prep, .run = op_run, .check = op_check, .bytes = op_bytes, \
	 .recv_rows = rows, .outputs = op_outputs, .receives = recv}

static const struct ep_op_desc mixed_ops[] = {
	MIXED_OP("normal-dispatch", EP_OPS_DISPATCH, prepare_normal_dispatch, normal_recv_rows, 1),
	MIXED_OP("normal-combine", EP_OPS_COMBINE, prepare_normal_combine, normal_recv_rows, 0),
	MIXED_OP("ll-dispatch", EP_OPS_DISPATCH, prepare_ll_dispatch, ll_recv_rows, 1),
	MIXED_OP("ll-combine", EP_OPS_COMBINE, prepare_ll_combine, ll_recv_rows, 0),
};

const struct ep_variant ep_mixed_variant = {
	.name = "mixed",
	.size = mixed_size,
	.setup = mixed_setup,
	.teardown = mixed_teardown,
	.dump = mixed_dump,
	.reseed = mixed_reseed,
	.tensors = "recv_x recv_x_scales recv_topk_idx recv_topk_weights recv_src_idx num_recv_tokens_per_expert rank_prefix_matrix combined_x combined_topk_weights packed_recv_x packed_recv_x_scales packed_recv_src_info packed_recv_count packed_recv_layout_range",
	.nops = 4,
	.ops = mixed_ops,
	.op_tokens = mixed_op_tokens,
};

/* The command */

/* Options of one mode that the other cannot follow on a shared arena, then
 * the low-latency command's own checks on the decode shape. */
static int mixed_check(const struct ep_options *o, const struct ep_shape *s, char *err, size_t len)
{
	struct ep_shape ls = *s;
	struct ep_parallel par;
	ls.num_tokens = o->ll_tokens;
	if (s->dtype == EP_DTYPE_INT8)
		snprintf(err, len, "--dtype int8 quantises normal dispatch only; mixed runs both modes with one --dtype (bf16 or fp8)");
	else if (o->cached)
		snprintf(err, len, "--cached reuses a normal dispatch's handle, which the low-latency ops overwrite in the shared arena");
	else if (o->hook)
		snprintf(err, len, "--hook splits the low-latency phases; mixed times whole ops (use `epbench low-latency --hook`)");
	else if (o->ep_semantics != EP_SEM_DEEPEP)
		snprintf(err, len, "--ep-semantics ascend: mixed runs DeepEP's normal and low-latency modes");
	else if (ep_options_layer(o, &par))
		snprintf(err, len, "--parallel: mixed runs plain expert parallelism (one EP group of every rank)");
	else if (o->dump_dir)
		snprintf(err, len, "--dump: the modes share one arena, so one mode's tensors are gone once the other ran (dump with intranode or low-latency)");
	else if (ep_routing_varies(&o->routing) || o->routing.kind == EP_ROUTE_FILE)
		snprintf(err, len, "--routing %s: mixed draws its routing per mode from the seed (the prefill and decode batches differ in tokens)",
			 o->routing.kind == EP_ROUTE_FILE ? "file" : o->routing.kind == EP_ROUTE_TRACE ? "trace" : "rotating");
	else
		return ep_cmd_low_latency.check(o, &ls, err, len);
	return -EP_EUSAGE;
}

static void mixed_describe(const struct ep_options *o, char *buf, size_t len)
{
	char n[16];
	snprintf(n, sizeof(n), "%d", o->num_max_dispatch_tokens ? o->num_max_dispatch_tokens : o->ll_tokens);
	snprintf(buf, len, "deepep_mode=auto ll_tokens=%d num_max_dispatch_tokens_per_rank=%s round_scale=%d ue8m0=%d zero_copy=%d",
		 o->ll_tokens, n, o->round_scale, o->use_ue8m0, o->zero_copy);
}

const struct ep_command ep_cmd_mixed = {
	.name = "mixed",
	.help = "normal (prefill) and low-latency (decode) dispatch/combine alternating on one arena (--deepep-mode auto)",
	.options = {"mixed", EP_SCOPE_RUN | EP_SCOPE_NORMAL | EP_SCOPE_LL | EP_SCOPE_MIXED, NULL},
	.variant = &ep_mixed_variant,
	.check = mixed_check,
	.describe = mixed_describe,
};
