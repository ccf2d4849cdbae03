/* generalised.c - warnings for shapes past a vendor's limits that epbench runs anyway (see generalised.h). */
#include "cli/generalised.h"

#include <stdio.h>
#include <string.h>

#include "cli/parallel.h"

#define OPD "torch_npu-npu_moe_distribute_dispatch_v2.md"

/* One rule: its line into buf when it applies (returns 1), else 0. */
typedef int (*rule_fn)(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len);

static int moe_tp(const struct ep_parallel *p)
{
	return p->v[EP_PAR_MOE_TP] > 0 ? p->v[EP_PAR_MOE_TP] : 1;
}

/* Routed experts per MoE rank (shared-expert ranks host none). */
static int local_experts(const struct ep_options *o, const struct ep_parallel *p)
{
	int mep = p->v[EP_PAR_MOE_EP] > 0 ? p->v[EP_PAR_MOE_EP] : 1, moe = mep - o->shared_expert_ranks;
	return moe > 0 ? o->num_experts / moe : 0;
}

static int tp_past_2(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	(void)o;
	return moe_tp(p) > 2 && snprintf(buf, len, "moe_tp=%d: Ascend's MoE-TP stage takes tp_world_size 0, 1 or 2 (" OPD
					 "); epbench generalises the tp = 2 order as a rotation (parallel-semantics.md "
					 "section 3)", moe_tp(p)) > 0;
}

static int tp_with_experts(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	int L = local_experts(o, p);
	return moe_tp(p) > 1 && L > 1 && snprintf(buf, len, "%d local experts with MoE-TP: Ascend allows MoE-TP only with "
						  "one local expert (" OPD "); epbench runs it (parallel-semantics.md "
						  "section 3)", L) > 0;
}

/* Ascend's combine takes comm_quant_mode 2 only when tp_world_size != 2
 * (torch_npu-npu_moe_distribute_combine_v2.md); epbench runs it with any
 * moe_tp, quantising the reduced rows the EP return carries (section 5). */
static int comm_quant_tp_2(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	return o->comm_quant && moe_tp(p) == 2 &&
	       snprintf(buf, len, "--comm-quant int8 with moe_tp=2: Ascend's combine takes comm_quant_mode 2 only when "
				  "tp_world_size != 2 (torch_npu-npu_moe_distribute_combine_v2.md); epbench runs it, the EP "
				  "return carrying the MoE-TP reduced rows as int8 (parallel-semantics.md section 5)") > 0;
}

static int k_past_8(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	(void)p;
	return o->num_topk > 8 && snprintf(buf, len, "--num-topk %d: Ascend's dispatch takes K <= 8 (" OPD ")",
					   o->num_topk) > 0;
}

/* The first hidden size of the run (a sweep's points in order) that is not 7168. */
static int h_not_a3(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	(void)p;
	for (int i = 0; i < o->hidden.n; i++)
		if (o->hidden.v[i] != 7168)
			return snprintf(buf, len, "--hidden %d: Ascend A3's dispatch takes H = 7168 (" OPD "; A2: H <= 7168)",
					o->hidden.v[i]) > 0;
	return 0;
}

static const rule_fn ascend_rules[] = {tp_past_2, tp_with_experts, comm_quant_tp_2, k_past_8, h_not_a3};

/* Allgather mode has no EP dispatch or combine (parallel-semantics.md
 * section 2): nothing of Ascend's semantics applies; the layer runs the
 * world gather and reduce, whose partials already round multiply and add
 * apart as Ascend's combine does. */
static int allgather_not_ascend(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	(void)o, (void)p;
	return snprintf(buf, len, "--ep-semantics ascend in allgather mode: the layer has no EP dispatch or combine, so "
				  "Ascend's semantics do not apply; it runs world_gather and world_reduce as with deepep "
				  "(parallel-semantics.md section 2)") > 0;
}

static const rule_fn ascend_allgather_rules[] = {allgather_not_ascend};

/* A TP group of whole nodes: MindIE allows tp and moe_tp up to a node's
 * ranks or the world (its `validate`, parallel-semantics.md section 1);
 * epbench also runs groups of several whole nodes, over the network. */
static int tp_whole_nodes(const struct ep_options *o, const struct ep_parallel *p, char *buf, size_t len)
{
	int P = o->ranks_per_node, W = p->v[EP_PAR_TP] * p->v[EP_PAR_DP] * (p->v[EP_PAR_CP] > 0 ? p->v[EP_PAR_CP] : 1);
	int tp = p->v[EP_PAR_TP], mtp = moe_tp(p);
	int wide = P > 0 && tp > P && tp != W ? tp : P > 0 && mtp > P && mtp != W ? mtp : 0;
	return wide && snprintf(buf, len, "%s=%d spans %d nodes of %d ranks: MindIE allows tp and moe_tp at most the ranks "
					  "of a node or the world (parallel-semantics.md section 1); epbench runs the "
					  "group over the network", wide == tp ? "tp" : "moe_tp", wide, wide / P, P) > 0;
}

static const rule_fn parallel_rules[] = {tp_whole_nodes};

/* Appends the lines of the rules that fire; returns how many. */
static int apply(const rule_fn *rules, size_t nrules, const struct ep_options *o, const struct ep_parallel *p,
		 char *buf, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < nrules; i++) {
		char line[400];
		size_t at = strlen(buf);
		if (!rules[i](o, p, line, sizeof(line)) || at + strlen(line) + 2 > len)
			continue;
		snprintf(buf + at, len - at, "%s\n", line);
		n++;
	}
	return n;
}

int ep_generalised_warnings(const struct ep_options *o, int W, char *buf, size_t len)
{
	struct ep_parallel p = {0};
	char err[160];
	buf[0] = '\0';
	if (ep_parallel_given(&o->parallel) && ep_parallel_resolve(&o->parallel, W, o->ranks_per_node, &p, err, sizeof(err)))
		return 0; /* refused elsewhere */
	if (!ep_parallel_given(&o->parallel))
		p.v[EP_PAR_MOE_TP] = p.v[EP_PAR_TP] = p.v[EP_PAR_DP] = 1, p.v[EP_PAR_MOE_EP] = W;
	int n = ep_parallel_given(&o->parallel) ? apply(parallel_rules, 1, o, &p, buf, len) : 0;
	if (o->ep_semantics == EP_SEM_ASCEND && ep_parallel_given(&o->parallel) && !ep_parallel_pure_ep(&p) &&
	    p.moe_comm == EP_MOE_ALLGATHER) /* Ascend's limits are its dispatch/combine's, absent here */
		n += apply(ascend_allgather_rules, 1, o, &p, buf, len);
	else if (o->ep_semantics == EP_SEM_ASCEND)
		n += apply(ascend_rules, sizeof(ascend_rules) / sizeof(ascend_rules[0]), o, &p, buf, len);
	return n;
}
