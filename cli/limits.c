/* limits.c - one table of documented limits per profile, each row citing its source.
 *
 * A row is a limit (as the refusal names it), its source document, whether
 * it is only a recommendation (advisory), and a predicate that says, with
 * the offending value, whether a point breaks it. The sources:
 *
 * [A2G]  sgl-project/sgl-kernel-npu python/deep_ep/doc/A2_DEEPEP.md (the
 *        DeepEP-Ascend A2 guide): HCCL_BUFFSIZE must be set (1024 there),
 *        HCCL_OP_EXPANSION_MODE disabled on A2; one node of 8 ranks: normal
 *        up to bs=8000, low-latency up to bs=512; across nodes: normal up to
 *        4096, low-latency up to 512, no int8 quantisation in prefill,
 *        HCCL_INTRA_PCIE_ENABLE=1 and HCCL_INTRA_ROCE_ENABLE=0 required.
 * [OPD]  Ascend's operator documentation of npu_moe_distribute_dispatch /
 *        combine (aclnnMoeDistributeDispatch "约束说明"; CANN ops-transformer
 *        and torch_npu 7.0.0 ptaoplist_002364): A2: H in (0, 7168] and a
 *        multiple of 32, 0 < K <= 16, serverNum 2, 4 or 8; A3: H = 7168,
 *        0 < BS <= 512, 0 < K <= 8, epWorldSize 8, 16, 32, 64, 128, 144, 256
 *        or 288; HCCL_BUFFSIZE formulas (cli/buffer_hints.h).
 * [DEP]  deepseek-ai/DeepEP at dd758ca: csrc/kernels/legacy/launch.cuh
 *        (SWITCH_RANKS 2, 4, 8; SWITCH_RDMA_RANKS 2, 3, 4, 6, 8, 12, 16, 18, 20;
 *        SWITCH_HIDDEN of the low-latency kernels), csrc/kernels/legacy/
 *        internode.cu (NUM_MAX_NVL_PEERS == 8), internode_ll.cu
 *        (num_topk <= kNumMaxTopK = 11), deep_ep/buffers/legacy.py (a default
 *        Config only for 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 144, 160 ranks).
 *
 * DeepEP's SM and channel counts (Config.num_sms, even, channels = num_sms/2)
 * size its buffers (epbench plan) but bound no shape of a CPU run.
 */
#include "cli/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buffer_hints.h"
#include "collectives/error.h"

#define A2G "sgl-kernel-npu python/deep_ep/doc/A2_DEEPEP.md"
#define OPD "Ascend aclnnMoeDistributeDispatch/Combine constraints (torch_npu npu_moe_distribute_dispatch)"
#define DEP_LAUNCH "DeepEP csrc/kernels/legacy/launch.cuh"

typedef int (*broken_fn)(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len);

struct rule {
	const char *limit;   /* what the limit says */
	const char *source;  /* the document that says it */
	int advisory;        /* a recommendation: a '#' line, never a refusal */
	broken_fn broken;    /* 1 with the offending value in why, else 0 */
};

static int in_list(int v, const int *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == v)
			return 1;
	return 0;
}

static int bs_of(const struct ep_limits_point *p)
{
	return p->low_latency && p->max_dispatch_tokens > p->tokens ? p->max_dispatch_tokens : p->tokens;
}

/* The operator's rows apply to what calls it: low-latency kernels and --ep-semantics ascend. */
static int op_mode(const struct ep_limits_point *p)
{
	return p->low_latency || p->ascend;
}

#define WHY(...) (snprintf(why, len, __VA_ARGS__), 1)

/* ---- ascend-a2 ------------------------------------------------------------ */

static int a2_node_size(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return p->ranks_per_node > 8 ? WHY("%d ranks per node", p->ranks_per_node) : 0;
}

static int a2_single_eight(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return p->nodes == 1 && p->ranks < 8 ? WHY("%d ranks", p->ranks) : 0;
}

static int a2_normal_one_node(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return !p->low_latency && p->nodes == 1 && p->tokens > 8000 ? WHY("%d tokens per rank", p->tokens) : 0;
}

static int a2_normal_nodes(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return !p->low_latency && p->nodes > 1 && p->tokens > 4096 ? WHY("%d tokens per rank on %d nodes", p->tokens, p->nodes) : 0;
}

static int a2_ll_tokens(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return p->low_latency && bs_of(p) > 512 ? WHY("%d tokens per rank", bs_of(p)) : 0;
}

static int a2_int8_nodes(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return !p->low_latency && p->nodes > 1 && p->dtype == EP_DTYPE_INT8 ? WHY("--dtype int8 on %d nodes", p->nodes) : 0;
}

static int a2_expansion_mode(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)p;
	const char *v = env("HCCL_OP_EXPANSION_MODE");
	return v ? WHY("HCCL_OP_EXPANSION_MODE is set ('%.40s')", v) : 0;
}

static int a2_intra_pair(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	const char *pcie = env("HCCL_INTRA_PCIE_ENABLE"), *roce = env("HCCL_INTRA_ROCE_ENABLE");
	if (p->nodes <= 1 || (pcie && !strcmp(pcie, "1") && roce && !strcmp(roce, "0")))
		return 0;
	return WHY("%d nodes with HCCL_INTRA_PCIE_ENABLE=%.20s HCCL_INTRA_ROCE_ENABLE=%.20s", p->nodes,
		   pcie ? pcie : "(unset)", roce ? roce : "(unset)");
}

static int a2_servers(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	static const int ok[] = {2, 4, 8};
	return op_mode(p) && p->nodes > 1 && !in_list(p->nodes, ok, 3) ? WHY("%d nodes", p->nodes) : 0;
}

static int a2_hidden(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return op_mode(p) && (p->hidden > 7168 || p->hidden % 32) ? WHY("--hidden %d", p->hidden) : 0;
}

static int a2_topk(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return op_mode(p) && p->topk > 16 ? WHY("--num-topk %d", p->topk) : 0;
}

/* HCCL_BUFFSIZE, when set, against the operator's formula for this product (shared by A2 and A3). */
static int buffsize_short(int profile, const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	uint64_t have, need;
	const char *formula;
	if (!op_mode(p) || ep_hccl_buffsize(env, &have) != 1)
		return 0;
	if (ep_limits_hccl_min(profile, p, env, &need, &formula))
		return WHY("the minimum of %s overflows 64 bits for this shape", formula);
	return have < need ? WHY("HCCL_BUFFSIZE=%" PRIu64 " MB is %" PRIu64 " MB short of the %" PRIu64 " MB %s needs",
				 have, need - have, need, formula)
			   : 0;
}

static int a2_buffsize(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	return buffsize_short(EP_LIMITS_ASCEND_A2, p, env, why, len);
}

static const struct rule a2_rules[] = {
	{"an A2 node holds 8 ranks (NPUs)", A2G, 0, a2_node_size},
	{"one A2 node runs 8 ranks (fewer are not recommended)", A2G, 1, a2_single_eight},
	{"normal dispatch/combine on one node: up to 8000 tokens per rank", A2G, 0, a2_normal_one_node},
	{"normal dispatch/combine across nodes: up to 4096 tokens per rank", A2G, 0, a2_normal_nodes},
	{"low-latency dispatch/combine: up to 512 tokens per rank", A2G, 0, a2_ll_tokens},
	{"no int8 quantisation of normal dispatch across nodes (DEEP_NORMAL_MODE_USE_INT8_QUANT unset or 0)", A2G, 0, a2_int8_nodes},
	{"HCCL_OP_EXPANSION_MODE must be unset on A2", A2G, 0, a2_expansion_mode},
	{"across nodes HCCL_INTRA_PCIE_ENABLE=1 and HCCL_INTRA_ROCE_ENABLE=0 are required", A2G, 0, a2_intra_pair},
	{"serverNum 2, 4 or 8", OPD, 0, a2_servers},
	{"A2: H in (0, 7168] and a multiple of 32", OPD, 0, a2_hidden},
	{"A2: 0 < K <= 16", OPD, 0, a2_topk},
	{"HCCL_BUFFSIZE at least the operator's minimum", OPD, 0, a2_buffsize},
};

/* ---- ascend-a3 ------------------------------------------------------------ */

static int a3_world(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	static const int ok[] = {8, 16, 32, 64, 128, 144, 256, 288};
	return !in_list(p->ranks, ok, 8) ? WHY("ep_world_size %d", p->ranks) : 0;
}

static int a3_hidden(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return op_mode(p) && p->hidden != 7168 ? WHY("--hidden %d", p->hidden) : 0;
}

static int a3_bs(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return op_mode(p) && bs_of(p) > 512 ? WHY("BS %d tokens per rank", bs_of(p)) : 0;
}

static int a3_topk(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return op_mode(p) && p->topk > 8 ? WHY("--num-topk %d", p->topk) : 0;
}

static int a3_buffsize(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	return buffsize_short(EP_LIMITS_ASCEND_A3, p, env, why, len);
}

static const struct rule a3_rules[] = {
	{"A3: ep_world_size 8, 16, 32, 64, 128, 144, 256 or 288", OPD, 0, a3_world},
	{"A3: H = 7168", OPD, 0, a3_hidden},
	{"A3: 0 < BS <= 512", OPD, 0, a3_bs},
	{"0 < K <= 8", OPD, 0, a3_topk},
	{"HCCL_BUFFSIZE at least the operator's minimum", OPD, 0, a3_buffsize},
};

/* ---- deepep --------------------------------------------------------------- */

static int dep_intranode_ranks(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	static const int ok[] = {2, 4, 8};
	return !p->low_latency && p->nodes == 1 && !in_list(p->ranks, ok, 3) ? WHY("%d ranks", p->ranks) : 0;
}

static int dep_nvl_peers(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return !p->low_latency && p->nodes > 1 && p->ranks_per_node != 8 ? WHY("%d ranks per node", p->ranks_per_node) : 0;
}

static int dep_rdma_ranks(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	static const int ok[] = {2, 3, 4, 6, 8, 12, 16, 18, 20};
	return !p->low_latency && p->nodes > 1 && !in_list(p->nodes, ok, 9) ? WHY("%d nodes", p->nodes) : 0;
}

static int dep_config(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	struct ep_deepep_config c;
	return !p->low_latency && ep_deepep_default_config(p->ranks, 0, &c) ? WHY("%d ranks", p->ranks) : 0;
}

static int dep_ll_hidden(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	static const int ok[] = {2048, 2560, 3072, 4096, 5120, 6144, 7168, 8192};
	return p->low_latency && !in_list(p->hidden, ok, 8) ? WHY("--hidden %d", p->hidden) : 0;
}

static int dep_ll_topk(const struct ep_limits_point *p, ep_deploy_getenv_fn env, char *why, size_t len)
{
	(void)env;
	return p->low_latency && p->topk > 11 ? WHY("--num-topk %d", p->topk) : 0;
}

static const struct rule deepep_rules[] = {
	{"intranode kernels: 2, 4 or 8 ranks (SWITCH_RANKS)", DEP_LAUNCH, 0, dep_intranode_ranks},
	{"internode kernels: 8 ranks per node (NUM_MAX_NVL_PEERS)", "DeepEP csrc/kernels/legacy/internode.cu", 0, dep_nvl_peers},
	{"internode kernels: 2, 3, 4, 6, 8, 12, 16, 18 or 20 nodes (SWITCH_RDMA_RANKS)", DEP_LAUNCH, 0, dep_rdma_ranks},
	{"a default Config for the world size (get_dispatch_config)", "DeepEP deep_ep/buffers/legacy.py", 0, dep_config},
	{"low-latency kernels: hidden 2048, 2560, 3072, 4096, 5120, 6144, 7168 or 8192 (SWITCH_HIDDEN)", DEP_LAUNCH, 0, dep_ll_hidden},
	{"low-latency kernels: num_topk <= 11 (kNumMaxTopK)", "DeepEP csrc/kernels/legacy/internode_ll.cu", 0, dep_ll_topk},
};

/* ---- profiles ------------------------------------------------------------- */

static const struct {
	const char *name;
	const struct rule *rules;
	int n;
} profiles[] = {
	[EP_LIMITS_NONE] = {"none", NULL, 0},
	[EP_LIMITS_DEEPEP] = {"deepep", deepep_rules, sizeof(deepep_rules) / sizeof(deepep_rules[0])},
	[EP_LIMITS_ASCEND_A2] = {"ascend-a2", a2_rules, sizeof(a2_rules) / sizeof(a2_rules[0])},
	[EP_LIMITS_ASCEND_A3] = {"ascend-a3", a3_rules, sizeof(a3_rules) / sizeof(a3_rules[0])},
};
#define NPROFILES (int)(sizeof(profiles) / sizeof(profiles[0]))

const char *ep_limits_name(int profile)
{
	return profile >= 0 && profile < NPROFILES ? profiles[profile].name : "?";
}

int ep_hccl_buffsize(ep_deploy_getenv_fn env, uint64_t *mb)
{
	const char *v = env("HCCL_BUFFSIZE");
	char *end;
	if (!v || !*v)
		return 0;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-' || v[0] == '+' || x < 1 || x >= (1ull << 40))
		return -1;
	*mb = x;
	return 1;
}

int ep_limits_hccl_min(int profile, const struct ep_limits_point *p, ep_deploy_getenv_fn env, uint64_t *mb,
		       const char **formula)
{
	uint64_t W = (uint64_t)p->ranks, moe = W > (uint64_t)p->shared_expert_ranks ? W - (uint64_t)p->shared_expert_ranks : 1;
	uint64_t L = (uint64_t)p->experts / moe, BS = (uint64_t)bs_of(p), K = (uint64_t)p->topk, H = (uint64_t)p->hidden;
	const char *pcie = env("HCCL_INTRA_PCIE_ENABLE"), *roce = env("HCCL_INTRA_ROCE_ENABLE");
	if (profile == EP_LIMITS_ASCEND_A3) {
		*formula = "the A3 formula";
		return ep_hccl_a3_min_mb(BS, W, L, K, H, mb);
	}
	if (p->nodes > 1 && pcie && !strcmp(pcie, "1") && roce && !strcmp(roce, "0")) {
		*formula = "the A2 formula with HCCL_INTRA_PCIE_ENABLE=1";
		return ep_hccl_a2_layered_min_mb((uint64_t)p->experts, BS, H, 2, K, mb);
	}
	*formula = "the A2 formula";
	return ep_hccl_a2_min_mb(BS, W, L, K, H, mb);
}

void ep_limits_point_of(const struct ep_options *o, const struct ep_shape *s, int nodes, struct ep_limits_point *p)
{
	int N = nodes > 0 ? nodes : 1;
	struct ep_parallel par; /* allgather mode calls no dispatch/combine operator, Ascend's neither */
	int allgather = ep_options_layer(o, &par) && par.moe_comm == EP_MOE_ALLGATHER;
	*p = (struct ep_limits_point){
		.ranks = s->num_ranks, .nodes = N, .ranks_per_node = s->num_ranks / N, .tokens = s->num_tokens,
		.max_dispatch_tokens = o->num_max_dispatch_tokens, .hidden = s->hidden, .topk = s->num_topk,
		.experts = s->num_experts, .shared_expert_ranks = o->shared_expert_ranks, .dtype = s->dtype,
		.low_latency = !strcmp(o->command, "low-latency"), .ascend = o->ep_semantics == EP_SEM_ASCEND && !allgather,
	};
}

/* err made one printable line (the environment's values may hold anything); -EP_EUSAGE. */
static int refuse(char *err)
{
	for (unsigned char *c = (unsigned char *)err; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	return -EP_EUSAGE;
}

int ep_limits_check(int profile, int warn_only, const struct ep_limits_point *p, ep_deploy_getenv_fn env,
		    FILE *warn, char *err, size_t len)
{
	uint64_t mb;
	if (profile <= EP_LIMITS_NONE || profile >= NPROFILES)
		return warn_only ? (snprintf(err, len, "--warn-only applies to --limits PROFILE (none given)"), -EP_EUSAGE) : 0;
	if (profile >= EP_LIMITS_ASCEND_A2 && ep_hccl_buffsize(env, &mb) < 0) {
		const char *v = env("HCCL_BUFFSIZE");
		snprintf(err, len, "environment HCCL_BUFFSIZE='%.40s': want an integer number of MB, at least 1 (HCCL's default is 200)", v);
		return refuse(err);
	}
	for (int i = 0; i < profiles[profile].n; i++) {
		const struct rule *r = &profiles[profile].rules[i];
		char why[240];
		if (!r->broken(p, env, why, sizeof(why)))
			continue;
		if (!warn_only && !r->advisory) {
			snprintf(err, len, "--limits %s: %s [%s]: %s", profiles[profile].name, r->limit, r->source, why);
			return refuse(err);
		}
		refuse(why);
		if (warn)
			fprintf(warn, "limits %s%s: %s [%s]: %s\n", profiles[profile].name,
				r->advisory ? " (advice)" : " (warn only)", r->limit, r->source, why);
	}
	return 0;
}
