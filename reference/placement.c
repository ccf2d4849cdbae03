/* placement.c - logical to physical experts for one run (see placement.h).
 *
 * Without --eplb-load the map is vLLM's initial one (phy2log[p] = p for
 * p < E, (p - E) % E after); with it, EPLB's (reference/eplb.h) for the
 * loads it names. Either way P = E + N_red and the table is turned into
 * engine ids by --expert-placement.
 */
#include "reference/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reference/eplb.h"
#include "reference/inputs.h"
#include "reports/npy.h"

#define REPLICA_SALT 0x5245504c494341ULL /* "REPLICA": the dynamic policy's hash */

int ep_eplb_spec_active(const struct ep_eplb_spec *sp)
{
	return sp->redundant > 0 || sp->load_given || sp->placement == EP_PLACE_ROUND_ROBIN;
}

static int eplb_groups(const struct ep_eplb_spec *sp, int route_groups)
{
	return sp->groups ? sp->groups : route_groups > 0 ? route_groups : 1;
}

static int eplb_nodes(const struct ep_eplb_spec *sp, int nodes)
{
	return sp->nodes ? sp->nodes : nodes > 0 ? nodes : 1;
}

int ep_placement_check(const struct ep_eplb_spec *sp, int E, int R, int nodes, int route_groups, char *err,
		       size_t errlen)
{
	int P = E + sp->redundant, G = eplb_groups(sp, route_groups), N = eplb_nodes(sp, nodes);
	if (!ep_eplb_spec_active(sp))
		return 0;
	if (P % R) {
		snprintf(err, errlen, "--redundant-experts %d gives %d physical experts (--num-experts %d + %d), not a multiple of %d ranks",
			 sp->redundant, P, E, sp->redundant, R);
		return -EP_EUSAGE;
	}
	if (!sp->load_given)
		return 0;
	if ((long long)sp->redundant * E > (1LL << 28)) { /* replicate_experts is O(N_red E) */
		snprintf(err, errlen, "--redundant-experts %d with --num-experts %d is too large to place (N x E at most 2^28)",
			 sp->redundant, E);
		return -EP_EUSAGE;
	}
	if (sp->load.kind == EP_LOAD_FILE && sp->load.file_n != E) {
		snprintf(err, errlen, "--eplb-load %s has %d loads, want %d (one per logical expert)", sp->load.path,
			 sp->load.file_n, E);
		return -EP_EUSAGE;
	}
	if (E % G) {
		snprintf(err, errlen, "--eplb-groups %d does not divide --num-experts %d", G, E);
		return -EP_EUSAGE;
	}
	if (G % N == 0 && R % N) { /* hierarchical: GPUs split over the nodes */
		snprintf(err, errlen, "--eplb-nodes %d does not divide the %d ranks", N, R);
		return -EP_EUSAGE;
	}
	return 0;
}

/* The raw map (EPLB's physical order) into pl: EPLB or the initial map. */
static int raw_map(const struct ep_eplb_spec *sp, struct ep_placement *pl, uint64_t seed, struct ep_eplb_map *m)
{
	int E = pl->logical, P = pl->physical;
	if (sp->load_given) {
		float *load = malloc(sizeof(float) * (size_t)E);
		int rc = load ? ep_eplb_load_values(&sp->load, E, seed, load) : -EP_ENOMEM;
		if (!rc)
			rc = ep_eplb_rebalance(load, E, P, pl->groups, pl->nodes, pl->ranks, m);
		free(load);
		return rc;
	}
	*m = (struct ep_eplb_map){.logical = E, .physical = P, .maxcnt = (P + E - 1) / E,
				  .phy2log = malloc(sizeof(int) * (size_t)P), .phyrank = malloc(sizeof(int) * (size_t)P),
				  .logcnt = calloc((size_t)E, sizeof(int)),
				  .log2phy = malloc(sizeof(int) * (size_t)E * (size_t)((P + E - 1) / E))};
	if (!m->phy2log || !m->phyrank || !m->logcnt || !m->log2phy)
		return -EP_ENOMEM;
	for (size_t i = 0; i < (size_t)E * (size_t)m->maxcnt; i++)
		m->log2phy[i] = -1;
	for (int p = 0; p < P; p++) {
		int e = p < E ? p : (p - E) % E;
		m->phy2log[p] = e;
		m->phyrank[p] = m->logcnt[e]++;
		m->log2phy[(size_t)e * m->maxcnt + m->phyrank[p]] = p;
	}
	return 0;
}

/* EPLB's physical expert p as an engine id. */
static int engine_id(const struct ep_placement *pl, int p)
{
	int R = pl->ranks, L = pl->physical / pl->ranks;
	return pl->placement == EP_PLACE_ROUND_ROBIN ? (p % R) * L + p / R : p;
}

struct ep_placement *ep_placement_new(const struct ep_eplb_spec *sp, int E, int R, int nodes, int ranks_per_node,
				      int route_groups, uint64_t seed)
{
	char err[256];
	if (!ep_eplb_spec_active(sp) || E <= 0 || R <= 0 || ep_placement_check(sp, E, R, nodes, route_groups, err, sizeof(err)))
		return NULL;
	struct ep_placement *pl = calloc(1, sizeof(*pl));
	struct ep_eplb_map m = {0};
	if (!pl)
		return NULL;
	*pl = (struct ep_placement){.logical = E, .physical = E + sp->redundant, .ranks = R, .eplb = sp->load_given,
				    .ranks_per_node = ranks_per_node, .groups = eplb_groups(sp, route_groups),
				    .nodes = eplb_nodes(sp, nodes), .policy = sp->policy, .placement = sp->placement};
	if (raw_map(sp, pl, seed, &m))
		goto fail;
	pl->maxcnt = m.maxcnt;
	pl->phy2log = malloc(sizeof(int) * (size_t)pl->physical);
	pl->logcnt = malloc(sizeof(int) * (size_t)E);
	pl->log2phy = malloc(sizeof(int) * (size_t)E * (size_t)m.maxcnt);
	if (!pl->phy2log || !pl->logcnt || !pl->log2phy)
		goto fail;
	for (int p = 0; p < pl->physical; p++)
		pl->phy2log[engine_id(pl, p)] = m.phy2log[p];
	memcpy(pl->logcnt, m.logcnt, sizeof(int) * (size_t)E);
	for (size_t i = 0; i < (size_t)E * (size_t)m.maxcnt; i++)
		pl->log2phy[i] = m.log2phy[i] < 0 ? -1 : engine_id(pl, m.log2phy[i]);
	ep_eplb_map_free(&m);
	return pl;
fail:
	ep_eplb_map_free(&m);
	ep_placement_free(pl);
	return NULL;
}

void ep_placement_free(struct ep_placement *pl)
{
	if (!pl)
		return;
	free(pl->phy2log);
	free(pl->logcnt);
	free(pl->log2phy);
	free(pl);
}

/* static: e's replicas on this rank, else on its node, else all; C[rank % |C|]. */
static int static_pick(const struct ep_placement *pl, int rank, const int *reps, int cnt)
{
	int L = pl->physical / pl->ranks, rpn = pl->ranks_per_node;
	int node = rpn > 0 ? rank / rpn : 0, on_rank = 0, on_node = 0;
	for (int k = 0; k < cnt; k++) {
		on_rank += reps[k] / L == rank;
		on_node += (rpn > 0 ? reps[k] / L / rpn : 0) == node;
	}
	int level = on_rank ? 0 : on_node ? 1 : 2, n = on_rank ? on_rank : on_node ? on_node : cnt, want = rank % n;
	for (int k = 0; k < cnt; k++) {
		int q = reps[k] / L;
		int in = level == 0 ? q == rank : level == 1 ? (rpn > 0 ? q / rpn : 0) == node : 1;
		if (in && want-- == 0)
			return reps[k];
	}
	return reps[0]; /* not reached */
}

void ep_placement_map(const struct ep_placement *pl, uint64_t seed, int rank, int64_t *topk_idx, int T, int K)
{
	uint64_t base = ep_mix64(seed ^ REPLICA_SALT) ^ ((uint64_t)(uint32_t)rank << 40);
	for (int t = 0; t < T; t++)
		for (int j = 0; j < K; j++) {
			int64_t *id = &topk_idx[(size_t)t * K + j];
			if (*id < 0 || *id >= pl->logical)
				continue;
			const int *reps = pl->log2phy + (size_t)*id * pl->maxcnt;
			int cnt = pl->logcnt[*id];
			uint64_t slot = (uint64_t)t * (uint64_t)K + (uint64_t)j;
			switch (pl->policy) {
			case EP_REPLICA_MODPOS: *id = reps[slot % (uint64_t)cnt]; break;
			case EP_REPLICA_DYNAMIC: *id = reps[ep_mix64(base ^ slot) % (uint64_t)cnt]; break;
			default: *id = static_pick(pl, rank, reps, cnt); break;
			}
		}
}

void ep_placement_text(const struct ep_eplb_spec *sp, int E, char *buf, size_t len)
{
	static const char *const where[] = {"linear", "round_robin"}, *const policy[] = {"modpos", "static", "dynamic"};
	char load[300] = "initial map", g[32] = "", n[32] = "";
	if (sp->load_given) {
		char l[256];
		ep_eplb_load_text(&sp->load, l, sizeof(l));
		if (sp->groups)
			snprintf(g, sizeof(g), " groups %d", sp->groups);
		if (sp->nodes)
			snprintf(n, sizeof(n), " nodes %d", sp->nodes);
		snprintf(load, sizeof(load), "eplb %s%s%s", l, g, n);
	}
	snprintf(buf, len, "%d physical = %d + %d redundant, %s, %s, %s", E + sp->redundant, E, sp->redundant, load,
		 where[sp->placement & 1], policy[sp->policy % 3]);
}

void ep_placement_summary(const struct ep_placement *pl, char *buf, size_t len)
{
	char how[64] = "vLLM's initial map";
	if (pl->eplb)
		snprintf(how, sizeof(how), "eplb groups %d nodes %d", pl->groups, pl->nodes);
	snprintf(buf, len, "%d physical experts (%d logical + %d redundant) on %d ranks, %d each; up to %d replicas; %s",
		 pl->physical, pl->logical, pl->physical - pl->logical, pl->ranks, pl->physical / pl->ranks, pl->maxcnt, how);
}

int ep_placement_dump(const struct ep_placement *pl, const char *dir)
{
	char path[4096];
	size_t p[1] = {(size_t)pl->physical}, e[1] = {(size_t)pl->logical}, l2p[2] = {(size_t)pl->logical, (size_t)pl->maxcnt};
	int rc;
	snprintf(path, sizeof(path), "%s/phy2log.npy", dir);
	if ((rc = ep_npy_write(path, EP_NPY_I4, p, 1, pl->phy2log)))
		return rc;
	snprintf(path, sizeof(path), "%s/log2phy.npy", dir);
	if ((rc = ep_npy_write(path, EP_NPY_I4, l2p, 2, pl->log2phy)))
		return rc;
	snprintf(path, sizeof(path), "%s/logcnt.npy", dir);
	return ep_npy_write(path, EP_NPY_I4, e, 1, pl->logcnt);
}

void ep_placement_move_replica(const struct ep_placement *pl, int64_t *topk_idx, size_t n)
{
	int L = pl->physical / pl->ranks, first = pl->ranks > 1 ? L : 1, last = pl->ranks > 1 ? 2 * L : L, p1 = first;
	for (int q = first; q < last; q++)
		if (pl->phy2log[q] != pl->phy2log[0]) {
			p1 = q;
			break;
		}
	for (size_t i = 0; i < n; i++)
		topk_idx[i] = topk_idx[i] == 0 ? p1 : topk_idx[i] == p1 ? 0 : topk_idx[i];
}
