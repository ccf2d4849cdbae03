/* eplb.c - DeepSeek's EPLB placement, one layer (see eplb.h).
 *
 * Follows eplb.py step by step; names are its own (mlog: logical experts
 * renumbered node-major after the groups are packed onto nodes, pphy:
 * physical experts renumbered GPU-major after they are packed onto GPUs).
 */
#include "reference/eplb.h"

#include <errno.h>
#include <stdlib.h>

struct item {
	float w;
	int i;
};

/* Stable descending order: heavier first, the lower index first on ties. */
static int by_weight_desc(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->w != y->w)
		return x->w > y->w ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

int ep_eplb_pack(const float *w, int n, int packs, int *pack, int *rank)
{
	int per = n / packs;
	if (per == 1) { /* eplb.py: every item is its own pack */
		for (int i = 0; i < n; i++)
			pack[i] = i, rank[i] = 0;
		return 0;
	}
	struct item *order = malloc(sizeof(*order) * (size_t)n);
	float *load = calloc((size_t)packs, sizeof(float));
	int *items = calloc((size_t)packs, sizeof(int));
	int rc = order && load && items ? 0 : -ENOMEM;
	for (int i = 0; !rc && i < n; i++)
		order[i] = (struct item){w[i], i};
	if (!rc)
		qsort(order, (size_t)n, sizeof(*order), by_weight_desc);
	for (int k = 0; !rc && k < n; k++) {
		int best = -1;
		for (int p = 0; p < packs; p++) /* the lightest non-full pack, the lowest on ties */
			if (items[p] < per && (best < 0 || load[p] < load[best]))
				best = p;
		int i = order[k].i;
		pack[i] = best;
		rank[i] = items[best]++;
		load[best] += w[i]; /* float32, as the torch scalar it is */
	}
	free(order);
	free(load);
	free(items);
	return rc;
}

/* replicate_experts: nphy physical experts for nlog logical ones of load
 * w[nlog]; each extra replica goes to the expert of largest w / cnt (the
 * lowest index on ties). phy2log[nphy], rank[nphy], cnt[nlog]. */
static void replicate(const float *w, int nlog, int nphy, int *phy2log, int *rank, int *cnt)
{
	for (int i = 0; i < nlog; i++)
		phy2log[i] = i, rank[i] = 0, cnt[i] = 1;
	for (int i = nlog; i < nphy; i++) {
		int best = 0;
		for (int e = 1; e < nlog; e++)
			if (w[e] / (float)cnt[e] > w[best] / (float)cnt[best])
				best = e;
		phy2log[i] = best;
		rank[i] = cnt[best]++;
	}
}

/* The shape of one rebalance. */
struct plan {
	int E, P, G, N, M;
	const int *mlog2log; /* [E] */
	int *mlogcnt;        /* [E] replicas by mlog id */
};

/* Steps 2 and 3 for node n: replicate its E/N logical experts onto P/N
 * physical ones, pack these onto its M/N GPUs, write its part of phy2log
 * and phyrank. 0 or -ENOMEM. */
static int node_step(const struct plan *pl, const float *load, int n, struct ep_eplb_map *m)
{
	int lpn = pl->E / pl->N, ppn = pl->P / pl->N, ppg = pl->P / pl->M, rc = -ENOMEM;
	float *wm = malloc(sizeof(float) * (size_t)lpn), *wp = malloc(sizeof(float) * (size_t)ppn);
	int *p2m = malloc(sizeof(int) * (size_t)ppn), *prank = malloc(sizeof(int) * (size_t)ppn);
	int *pack = malloc(sizeof(int) * (size_t)ppn), *inpack = malloc(sizeof(int) * (size_t)ppn);
	int *pp2p = malloc(sizeof(int) * (size_t)ppn);
	int *cnt = pl->mlogcnt + (size_t)n * lpn;
	if (!wm || !wp || !p2m || !prank || !pack || !inpack || !pp2p)
		goto out;
	for (int i = 0; i < lpn; i++)
		wm[i] = load[pl->mlog2log[n * lpn + i]];
	replicate(wm, lpn, ppn, p2m, prank, cnt);
	for (int k = 0; k < ppn; k++)
		wp[k] = wm[p2m[k]] / (float)cnt[p2m[k]];
	if ((rc = ep_eplb_pack(wp, ppn, pl->M / pl->N, pack, inpack)))
		goto out;
	for (int k = 0; k < ppn; k++)
		pp2p[pack[k] * ppg + inpack[k]] = k;
	for (int q = 0; q < ppn; q++) {
		int k = pp2p[q];
		m->phy2log[n * ppn + q] = pl->mlog2log[n * lpn + p2m[k]];
		m->phyrank[n * ppn + q] = prank[k];
	}
out:
	free(wm);
	free(wp);
	free(p2m);
	free(prank);
	free(pack);
	free(inpack);
	free(pp2p);
	return rc;
}

/* log2phy from phy2log and phyrank: replica k of e at column k. */
static int fill_log2phy(struct ep_eplb_map *m)
{
	m->maxcnt = 1;
	for (int e = 0; e < m->logical; e++)
		m->maxcnt = m->logcnt[e] > m->maxcnt ? m->logcnt[e] : m->maxcnt;
	m->log2phy = malloc(sizeof(int) * (size_t)m->logical * (size_t)m->maxcnt);
	if (!m->log2phy)
		return -ENOMEM;
	for (size_t i = 0; i < (size_t)m->logical * (size_t)m->maxcnt; i++)
		m->log2phy[i] = -1;
	for (int p = 0; p < m->physical; p++)
		m->log2phy[(size_t)m->phy2log[p] * m->maxcnt + m->phyrank[p]] = p;
	return 0;
}

/* Step 1: groups (their summed loads) packed onto nodes; mlog ids follow. */
static int pack_groups(const float *load, int E, int G, int N, int *log2mlog, int *mlog2log)
{
	int gs = E / G, gpn = G / N;
	float *tpg = calloc((size_t)G, sizeof(float));
	int *pack = malloc(sizeof(int) * (size_t)G), *rank = malloc(sizeof(int) * (size_t)G);
	int rc = tpg && pack && rank ? 0 : -ENOMEM;
	for (int e = 0; !rc && e < E; e++)
		tpg[e / gs] += load[e];
	if (!rc)
		rc = ep_eplb_pack(tpg, G, N, pack, rank);
	for (int e = 0; !rc && e < E; e++) {
		log2mlog[e] = (pack[e / gs] * gpn + rank[e / gs]) * gs + e % gs;
		mlog2log[log2mlog[e]] = e;
	}
	free(tpg);
	free(pack);
	free(rank);
	return rc;
}

int ep_eplb_rebalance(const float *load, int E, int P, int G, int N, int M, struct ep_eplb_map *m)
{
	*m = (struct ep_eplb_map){0};
	if (E <= 0 || G <= 0 || N <= 0 || M <= 0 || P < E || E % G || P % M)
		return -EINVAL;
	if (G % N) /* eplb.py: the global policy */
		G = N = 1;
	if (M % N || E % N)
		return -EINVAL;
	int *log2mlog = malloc(sizeof(int) * (size_t)E), *mlog2log = malloc(sizeof(int) * (size_t)E);
	int *mlogcnt = malloc(sizeof(int) * (size_t)E);
	*m = (struct ep_eplb_map){.logical = E, .physical = P, .phy2log = malloc(sizeof(int) * (size_t)P),
				  .phyrank = malloc(sizeof(int) * (size_t)P), .logcnt = malloc(sizeof(int) * (size_t)E)};
	int rc = log2mlog && mlog2log && mlogcnt && m->phy2log && m->phyrank && m->logcnt ? 0 : -ENOMEM;
	if (!rc)
		rc = pack_groups(load, E, G, N, log2mlog, mlog2log);
	struct plan pl = {E, P, G, N, M, mlog2log, mlogcnt};
	for (int n = 0; !rc && n < N; n++)
		rc = node_step(&pl, load, n, m);
	for (int e = 0; !rc && e < E; e++)
		m->logcnt[e] = mlogcnt[log2mlog[e]];
	if (!rc)
		rc = fill_log2phy(m);
	free(log2mlog);
	free(mlog2log);
	free(mlogcnt);
	if (rc)
		ep_eplb_map_free(m);
	return rc;
}

void ep_eplb_map_free(struct ep_eplb_map *m)
{
	free(m->phy2log);
	free(m->phyrank);
	free(m->logcnt);
	free(m->log2phy);
	*m = (struct ep_eplb_map){0};
}
