/* parallel.c - the grammar, MindIE's defaults and checks, and the process groups. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/parallel.h"
#include "collectives/error.h"

static const char *const names[EP_PAR_KEYS] = {"dp", "tp", "cp", "sp", "moe_tp", "moe_ep"};

int ep_parallel_given(const struct ep_parallel *p)
{
	for (int k = 0; k < EP_PAR_KEYS; k++)
		if (p->v[k] > 0)
			return 1;
	return p->comm_given || p->world > 0;
}

/* One "key=value" of --parallel into p; seen marks keys already given. */
static int parse_pair(struct ep_parallel *p, const char *item, int *seen, char *err, size_t len)
{
	const char *eq = strchr(item, '=');
	size_t n = eq ? (size_t)(eq - item) : strlen(item);
	char *end;
	for (int k = 0; k < EP_PAR_KEYS; k++) {
		if (strlen(names[k]) != n || strncmp(item, names[k], n))
			continue;
		long v = eq ? strtol(eq + 1, &end, 10) : 0;
		if (!eq || !eq[1] || *end || v < 1 || v > 65536)
			return ep_refuse(err, len, "invalid --parallel '%s': %s wants a whole number from 1 to 65536", item, names[k]);
		if (seen[k]++)
			return ep_refuse(err, len, "invalid --parallel: '%s' given twice", names[k]);
		p->v[k] = (int)v;
		return 0;
	}
	return ep_refuse(err, len, "invalid --parallel '%s': unknown key (dp, tp, cp, sp, moe_tp, moe_ep)", item);
}

int ep_parallel_parse(struct ep_parallel *p, const char *spec, char *err, size_t len)
{
	int seen[EP_PAR_KEYS] = {0};
	char buf[256];
	if (!*spec || strlen(spec) >= sizeof(buf))
		return ep_refuse(err, len, "invalid --parallel '%.64s': want KEY=N[,KEY=N...] over dp, tp, cp, sp, moe_tp, moe_ep", spec);
	strcpy(buf, spec);
	for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (parse_pair(p, t, seen, err, len))
			return -1;
	return 0;
}

/* MindIE's defaults: tp -> W, dp/cp/sp -> 1, moe_tp -> tp, moe_ep -> 1. */
static void defaults(struct ep_parallel *o, int W)
{
	int *v = o->v;
	v[EP_PAR_TP] = v[EP_PAR_TP] <= 0 ? W : v[EP_PAR_TP];
	v[EP_PAR_DP] = v[EP_PAR_DP] <= 0 ? 1 : v[EP_PAR_DP];
	v[EP_PAR_CP] = v[EP_PAR_CP] <= 0 ? 1 : v[EP_PAR_CP];
	v[EP_PAR_SP] = v[EP_PAR_SP] <= 0 ? 1 : v[EP_PAR_SP];
	v[EP_PAR_MOE_TP] = v[EP_PAR_MOE_TP] <= 0 ? v[EP_PAR_TP] : v[EP_PAR_MOE_TP];
	v[EP_PAR_MOE_EP] = v[EP_PAR_MOE_EP] <= 0 ? 1 : v[EP_PAR_MOE_EP];
}

int ep_parallel_resolve(const struct ep_parallel *p, int W, int ranks_per_node, struct ep_parallel *out, char *err,
			size_t len)
{
	*out = *p;
	defaults(out, W);
	const int *v = out->v, dp = v[EP_PAR_DP], tp = v[EP_PAR_TP], cp = v[EP_PAR_CP], sp = v[EP_PAR_SP];
	const int mtp = v[EP_PAR_MOE_TP], mep = v[EP_PAR_MOE_EP], rpn = ranks_per_node > 0 ? ranks_per_node : W;
	if (p->world > 0 && p->world != W)
		return ep_refuse(err, len, "worldSize %d (from %s) is not the %d ranks launched", p->world, p->from, W);
	if ((long)dp * cp * tp != W)
		return ep_refuse(err, len, "World size must equal to attention's dp_size * attention's cp_size * attention's tp_size: "
				      "dp=%d * cp=%d * tp=%d != %d ranks; please check `dp`, `cp`, `tp`", dp, cp, tp, W);
	if (cp > 1 && dp > 1)
		return ep_refuse(err, len, "The attention module cannot support context parallel and data parallel simultaneously: "
				      "cp=%d, dp=%d; please check `cp` and `dp`", cp, dp);
	if (sp != 1 && sp != tp)
		return ep_refuse(err, len, "sp must equal tp: sp=%d, tp=%d", sp, tp);
	if (mep > 1 && (long)mep * mtp != W) /* the default moe_tp = tp surprises: say so, and what would fit */
		return p->v[EP_PAR_MOE_TP] > 0 || W % mep
			? ep_refuse(err, len, "moe_ep * moe_tp must equal the world size: moe_ep=%d * moe_tp=%d != %d ranks",
				    mep, mtp, W)
			: ep_refuse(err, len, "moe_ep * moe_tp must equal the world size: moe_ep=%d * moe_tp=%d != %d ranks "
					      "(moe_tp unset takes tp, as MindIE's does: give moe_tp=%d)", mep, mtp, W, W / mep);
	if (mep == 1 && mtp != W)
		return ep_refuse(err, len, "with moe_ep=1, moe_tp must equal the world size: moe_tp=%d, %d ranks", mtp, W);
	/* MindIE: at most a node or the world; epbench also runs groups of whole nodes (README, Parallel configurations) */
	if ((tp > rpn && tp != W && tp % rpn) || (mtp > rpn && mtp != W && mtp % rpn))
		return ep_refuse(err, len, "tp=%d and moe_tp=%d must be at most the %d ranks of a node, whole nodes, or the "
				      "world (%d)", tp, mtp, rpn, W);
	return 0;
}

int ep_parallel_group(const struct ep_parallel *p, enum ep_par_group g, int r, int *members, int max)
{
	const int *v = p->v;
	int size = g == EP_GROUP_ATTN_TP ? v[EP_PAR_TP] : g == EP_GROUP_ATTN_DP ? v[EP_PAR_DP] * v[EP_PAR_CP]
					  : g == EP_GROUP_MOE_TP ? v[EP_PAR_MOE_TP] : v[EP_PAR_MOE_EP];
	int block = g == EP_GROUP_ATTN_TP || g == EP_GROUP_ATTN_DP ? v[EP_PAR_TP] : v[EP_PAR_MOE_TP];
	int contiguous = g == EP_GROUP_ATTN_TP || g == EP_GROUP_MOE_TP, n = 0;
	for (int i = 0; i < size && n < max; i++)
		members[n++] = contiguous ? (r / block) * block + i : r % block + i * block;
	return n;
}

/* "[8..15]" for a contiguous run, else "{0,4,8,12}". */
static void set_text(const int *m, int n, char *buf, size_t len)
{
	int run = n > 2;
	for (int i = 1; i < n; i++)
		run &= m[i] == m[i - 1] + 1;
	if (run) {
		snprintf(buf, len, "[%d..%d]", m[0], m[n - 1]);
		return;
	}
	size_t w = (size_t)snprintf(buf, len, "{");
	for (int i = 0; i < n && w < len; i++)
		w += (size_t)snprintf(buf + w, len - w, "%s%d", i ? "," : "", m[i]);
	if (w < len)
		snprintf(buf + w, len - w, "}");
}

void ep_parallel_describe(const struct ep_parallel *p, int r, char *buf, size_t len)
{
	int m[4096], n;
	char atp[96], mtp[96], ep[160];
	n = ep_parallel_group(p, EP_GROUP_ATTN_TP, r, m, 4096);
	set_text(m, n, atp, sizeof(atp));
	n = ep_parallel_group(p, EP_GROUP_MOE_TP, r, m, 4096);
	set_text(m, n, mtp, sizeof(mtp));
	n = ep_parallel_group(p, EP_GROUP_MOE_EP, r, m, 4096);
	set_text(m, n, ep, sizeof(ep));
	snprintf(buf, len, "attn_tp=%s dp=%d moe_tp=%s ep=%d/%s", atp, r / p->v[EP_PAR_TP], mtp, r / p->v[EP_PAR_MOE_TP], ep);
}

void ep_parallel_text(const struct ep_parallel *p, char *buf, size_t len)
{
	size_t w = 0;
	for (int k = 0; k < EP_PAR_KEYS && w < len; k++)
		w += (size_t)snprintf(buf + w, len - w, "%s=%d,", names[k], p->v[k]);
	if (w < len)
		snprintf(buf + w, len - w, "moe_comm=%s", p->moe_comm == EP_MOE_ALLGATHER ? "allgather" : "a2a");
}

int ep_parallel_pure_ep(const struct ep_parallel *p)
{
	const int *v = p->v;
	return v[EP_PAR_TP] == 1 && v[EP_PAR_MOE_TP] == 1 && v[EP_PAR_CP] == 1 && v[EP_PAR_SP] == 1 &&
	       p->moe_comm == EP_MOE_A2A;
}
