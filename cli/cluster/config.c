/* config.c - the job's shared configuration: text, FNV-1a hash, first differing key. */
#include "cli/cluster/config.h"

#include <stdio.h>
#include <string.h>

#include "cli/bench.h"
#include "reference/trace.h"

#ifndef EP_VERSION
#define EP_VERSION "dev"
#endif

static size_t put_sweep(char *buf, size_t len, size_t n, const char *key, const struct ep_sweep *s)
{
	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s=", key);
	for (int i = 0; i < s->n; i++)
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%d", i ? "," : "", s->v[i]);
	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "\n");
	return n;
}

void ep_cluster_config_text(const struct ep_options *o, const struct ep_cluster_cfg *c,
			    const char *transport, char *buf, size_t len)
{
	size_t n = 0;
#define KV(key, fmt, ...) n += (size_t)snprintf(buf + n, n < len ? len - n : 0, key "=" fmt "\n", __VA_ARGS__)
	KV("version", "%s (results block %zu bytes)", EP_VERSION, sizeof(struct ep_rank_result));
	KV("command", "%s", o->command);
	KV("nodes", "%d", c->nodes);
	KV("ranks-per-node", "%d", c->ranks_per_node);
	n = put_sweep(buf, len, n, "num-tokens", &o->tokens);
	n = put_sweep(buf, len, n, "hidden", &o->hidden);
	KV("num-topk", "%d", o->num_topk);
	KV("num-experts", "%d", o->num_experts);
	KV("num-groups", "%d", o->num_groups);
	KV("num-topk-groups", "%d", o->num_topk_groups);
	KV("expert-alignment", "%d", o->expert_alignment);
	KV("dtype", "%s", ep_dtype_name(o->dtype));
	KV("with-topk", "%d", o->with_topk);
	KV("uneven-tokens", "%d", o->uneven_tokens);
	KV("bias", "%d", o->num_bias);
	KV("expert-counts", "%d", (int)o->expert_counts);
	KV("seed", "%llu", (unsigned long long)o->seed);
	KV("routing", "%d:%g:%d:%g:%d:%d:%g:%s", (int)o->routing.kind, o->routing.zipf_s, o->routing.hot_expert,
	   o->routing.lognormal_sigma, o->routing.hot_count, o->routing.hot_rank, o->routing.hot_frac,
	   o->routing_path ? o->routing_path : "");
	/* routing that changes between iterations: every node must replay the
	 * same steps (the trace's contents, not its path, must agree) */
	KV("routing (steps)", "rotating period %d, trace body sha256 %s from step %d", o->routing.rotate_period,
	   o->routing.trace ? o->routing.trace->sha256 : "-", o->routing.trace_first);
	KV("masked-ratio", "%g", o->routing.masked_ratio);
	char par[160];
	ep_parallel_text(&o->parallel, par, sizeof(par));
	KV("parallel", "%s", par);
	KV("ep-semantics", "%d", o->ep_semantics);
	KV("sp-pad", "%d", o->sp_pad);
	KV("tokens-per-dp", "%d", o->tokens_per_dp);
	char eplb[400] = "";
	uint32_t loads = 2166136261u; /* FNV-1a of a load file's values: nodes must read the same loads */
	if (ep_eplb_spec_active(&o->eplb))
		ep_placement_text(&o->eplb, o->num_experts, eplb, sizeof(eplb));
	for (size_t i = 0; i < (size_t)o->eplb.load.file_n * sizeof(float); i++)
		loads = (loads ^ ((const uint8_t *)o->eplb.load.file_loads)[i]) * 16777619u;
	KV("redundant-experts", "%s (loads %08x)", eplb, (unsigned)loads);
	KV("iters", "%d", o->iters);
	KV("warmup", "%d", o->warmup);
	KV("check", "%d", o->check);
	KV("cached", "%d", o->cached);
	KV("op", "%d", o->ops);
	KV("timeout", "%g", o->timeout_s);
	char faults[256];
	ep_faults_text(&o->faults, faults, sizeof(faults));
	KV("fault", "%s", faults);
	KV("num-max-dispatch-tokens-per-rank", "%d", o->num_max_dispatch_tokens);
	KV("round-scale", "%d", o->round_scale);
	KV("ue8m0", "%d", o->use_ue8m0);
	KV("hook", "%d", o->hook);
	KV("zero-copy", "%d", o->zero_copy);
	KV("transport", "%s", o->transport ? o->transport : "auto");
	KV("transport (chosen)", "%s", transport);
#undef KV
}

uint64_t ep_config_hash(const char *text)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h;
}

/* Value of key in text (up to the newline), or NULL. */
static const char *value_of(const char *text, const char *key, size_t klen, size_t *vlen)
{
	for (const char *line = text; line && *line;) {
		const char *eq = strchr(line, '='), *nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line);
		if (eq && eq < nl && (size_t)(eq - line) == klen && strncmp(line, key, klen) == 0) {
			*vlen = (size_t)(nl - eq - 1);
			return eq + 1;
		}
		line = *nl ? nl + 1 : NULL;
	}
	return NULL;
}

int ep_config_diff(const char *mine, const char *theirs, int their_node, char *out, size_t len)
{
	for (const char *line = mine; line && *line;) {
		const char *eq = strchr(line, '='), *nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line);
		if (eq && eq < nl) {
			size_t klen = (size_t)(eq - line), vlen = (size_t)(nl - eq - 1), tlen = 0;
			const char *tv = value_of(theirs, line, klen, &tlen);
			if (!tv || tlen != vlen || strncmp(tv, eq + 1, vlen) != 0) {
				/* a key is an option's name unless it is the version or
				 * has a space ("transport (chosen)", "routing (steps)") */
				int opt = strncmp(line, "version", klen) != 0 && !memchr(line, ' ', klen);
				snprintf(out, len, "%s%.*s differs: node 0 has %.*s, node %d has %.*s",
					 opt ? "--" : "", (int)klen, line,
					 (int)vlen, eq + 1, their_node, (int)(tv ? tlen : 7),
					 tv ? tv : "nothing");
				return 1;
			}
		}
		line = *nl ? nl + 1 : NULL;
	}
	if (strlen(mine) != strlen(theirs)) {
		snprintf(out, len, "node %d's configuration has fields node 0's lacks (another version?)", their_node);
		return 1;
	}
	return 0;
}
