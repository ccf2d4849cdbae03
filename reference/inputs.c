/* inputs.c - seed-derived routing and payloads (see inputs.h). */
#include "reference/inputs.h"

#include <errno.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/numeric.h"
#include "reference/placement.h"
#include "reference/routing_step.h"
#include "reference/trace.h"
#include "reports/text_file.h"

/* Salt of the uneven token counts ("LL" in the high bytes, where they began). */
#define UNEVEN_SALT 0x4c4c000000000000ULL

int ep_routing_num_tokens(const struct ep_routing *r, int num_tokens, uint64_t seed, int rank)
{
	if (r->group)
		return r->group->num_tokens[rank];
	return r->loaded ? r->loaded[rank].num_tokens : ep_rank_num_tokens(num_tokens, seed, rank, r->uneven_tokens);
}

int ep_rank_num_tokens(int num_tokens, uint64_t seed, int rank, int uneven)
{
	if (!uneven || rank == 0 || num_tokens <= 0)
		return num_tokens;
	uint64_t h = ep_mix64(seed * 0x9e3779b97f4a7c15ULL + UNEVEN_SALT + (uint64_t)rank);
	return (int)(h % ((uint64_t)num_tokens + 1));
}

static gsl_rng *rank_rng(uint64_t seed, int rank)
{
	gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
	if (g)
		gsl_rng_set(g, (unsigned long)ep_mix64(seed * 0x9e3779b97f4a7c15ULL + (uint64_t)rank + 1));
	return g;
}

/* Salt of the lognormal popularities: one generator per seed, not per rank,
 * so every rank sees the same w_e. */
#define LOGNORMAL_SALT 0x4c4f474e4f524dULL /* "LOGNORM" */

/* K distinct experts drawn uniformly from the allowed ones, in random order. */
static void pick_uniform(gsl_rng *g, int *allowed, int nallowed, int k, int64_t *out)
{
	int chosen[k > 0 ? k : 1];
	if (k <= 0)
		return;
	gsl_ran_choose(g, chosen, (size_t)k, allowed, (size_t)nallowed, sizeof(int));
	gsl_ran_shuffle(g, chosen, (size_t)k, sizeof(int));
	for (int j = 0; j < k; j++)
		out[j] = chosen[j];
}

int ep_routing_groups(const struct ep_shape *s, const struct ep_routing *r, int *groups, int *topk)
{
	if (r->num_groups <= 0 || r->num_topk_groups <= 0 || r->num_topk_groups >= r->num_groups ||
	    s->num_experts % r->num_groups)
		return 0;
	*groups = r->num_groups;
	*topk = r->num_topk_groups;
	return 1;
}

/* Experts of num_topk_groups distinct groups (all experts when ungrouped). */
static int allowed_experts(gsl_rng *g, const struct ep_shape *s,
			   const struct ep_routing *r, int *allowed)
{
	int E = s->num_experts, G, M;
	if (!ep_routing_groups(s, r, &G, &M)) {
		for (int e = 0; e < E; e++)
			allowed[e] = e;
		return E;
	}
	int per = E / G, groups[G], chosen[G], n = 0;
	for (int i = 0; i < G; i++)
		groups[i] = i;
	gsl_ran_choose(g, chosen, (size_t)M, groups, (size_t)G, sizeof(int));
	for (int i = 0; i < M; i++)
		for (int e = 0; e < per; e++)
			allowed[n++] = chosen[i] * per + e;
	return n;
}

/* k distinct ids of [0, n) drawn from table (P(id) ~ its weight), keeping
 * only ids with ok[id] (all when ok is NULL), repeats rejected; after a
 * bounded number of draws the lowest unused acceptable ids fill the rest,
 * so a steep law cannot loop for long. */
static void pick_weighted(gsl_rng *g, gsl_ran_discrete_t *table, const unsigned char *ok, int n_ids, int k,
			  int64_t *out)
{
	int n = 0;
	for (int tries = 0; n < k && tries < 64 * k; tries++) {
		int e = (int)gsl_ran_discrete(g, table);
		int dup = ok && !ok[e];
		for (int j = 0; j < n; j++)
			dup |= out[j] == e;
		if (!dup)
			out[n++] = e;
	}
	for (int e = 0; n < k && e < n_ids; e++) {
		int dup = ok && !ok[e];
		for (int j = 0; j < n; j++)
			dup |= out[j] == e;
		if (!dup)
			out[n++] = e;
	}
}

int ep_routing_hot_set(const struct ep_shape *s, const struct ep_routing *r, int *first, int *count,
		       int *slots)
{
	int E = s->num_experts, K = s->num_topk;
	switch (r->kind) {
	case EP_ROUTE_HOT:
		*first = r->hot_expert, *count = 1, *slots = 1;
		return 1;
	case EP_ROUTE_HOT_EXPERTS:
		*first = 0, *count = r->hot_count;
		break;
	case EP_ROUTE_HOT_RANK:
		*count = s->num_ranks > 0 ? E / s->num_ranks : E;
		*first = r->hot_rank * *count;
		break;
	default:
		return 0;
	}
	int n = (int)lround(r->hot_frac * K);
	n = n > K - (E - *count) ? n : K - (E - *count);
	*slots = n < *count ? n : *count;
	return 1;
}

/* What one rank's generator holds while it draws its tokens. */
struct gen {
	gsl_rng *g;
	int *pool;                   /* [E] scratch: candidate experts */
	unsigned char *ok;           /* [E] scratch: experts of the token's groups */
	gsl_ran_discrete_t *experts; /* weighted kinds: P(e) ~ w_e */
	gsl_ran_discrete_t *groups;  /* weighted kinds, group-limited: P(g) ~ sum of w_e in g */
	int G, M;                    /* groups and groups per token when limited, else M = 0 */
	int hot_first, hot_count, hot_slots; /* hot kinds */
};

/* Per-expert popularity w_e of a weighted kind ([E], caller frees), or NULL
 * when out of memory. Lognormal weights are scaled by exp(-sigma max z),
 * which leaves the law unchanged and keeps them finite. */
static double *expert_weights(const struct ep_shape *s, const struct ep_routing *r, uint64_t seed)
{
	int E = s->num_experts;
	double *w = malloc(sizeof(double) * (size_t)E), zmax = -HUGE_VAL;
	if (!w || r->kind == EP_ROUTE_ZIPF || r->kind == EP_ROUTE_ROTATING) {
		for (int e = 0; w && e < E; e++)
			w[e] = pow(e + 1.0, -r->zipf_s);
		return w;
	}
	gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
	if (!g) {
		free(w);
		return NULL;
	}
	gsl_rng_set(g, (unsigned long)ep_mix64(seed ^ LOGNORMAL_SALT));
	for (int e = 0; e < E; e++) {
		w[e] = gsl_ran_gaussian(g, 1.0);
		zmax = w[e] > zmax ? w[e] : zmax;
	}
	for (int e = 0; e < E; e++)
		w[e] = exp(r->lognormal_sigma * (w[e] - zmax));
	gsl_rng_free(g);
	return w;
}

/* The tables of a weighted kind: experts, and groups when limited. */
static int weighted_tables(struct gen *x, const struct ep_shape *s, const struct ep_routing *r, uint64_t seed)
{
	int E = s->num_experts;
	double *w = expert_weights(s, r, seed), gw[x->M ? x->G : 1];
	if (!w)
		return -ENOMEM;
	x->experts = gsl_ran_discrete_preproc((size_t)E, w);
	for (int i = 0; x->M && i < x->G; i++) {
		gw[i] = 0;
		for (int e = i * (E / x->G); e < (i + 1) * (E / x->G); e++)
			gw[i] += w[e];
	}
	if (x->M)
		x->groups = gsl_ran_discrete_preproc((size_t)x->G, gw);
	free(w);
	return x->experts && (!x->M || x->groups) ? 0 : -ENOMEM;
}

static void gen_close(struct gen *x)
{
	if (x->experts)
		gsl_ran_discrete_free(x->experts);
	if (x->groups)
		gsl_ran_discrete_free(x->groups);
	free(x->pool);
	free(x->ok);
	if (x->g)
		gsl_rng_free(x->g);
}

static int gen_open(struct gen *x, const struct ep_shape *s, const struct ep_routing *r, uint64_t seed,
		    int rank)
{
	size_t E = (size_t)(s->num_experts > 0 ? s->num_experts : 1);
	*x = (struct gen){.g = rank_rng(seed, rank), .pool = malloc(sizeof(int) * E), .ok = malloc(E)};
	if (!ep_routing_groups(s, r, &x->G, &x->M))
		x->M = 0;
	ep_routing_hot_set(s, r, &x->hot_first, &x->hot_count, &x->hot_slots);
	if (!x->g || !x->pool || !x->ok)
		return -ENOMEM;
	if (r->kind == EP_ROUTE_ZIPF || r->kind == EP_ROUTE_LOGNORMAL || r->kind == EP_ROUTE_ROTATING)
		return weighted_tables(x, s, r, seed);
	return 0;
}

/* Weighted kinds: the token's groups by weight, then its experts within them. */
static void pick_weighted_row(struct gen *x, int E, int K, int64_t *row)
{
	if (!x->M) {
		pick_weighted(x->g, x->experts, NULL, E, K, row);
		return;
	}
	int64_t chosen[x->M];
	int per = E / x->G;
	pick_weighted(x->g, x->groups, NULL, x->G, x->M, chosen);
	memset(x->ok, 0, (size_t)E);
	for (int i = 0; i < x->M; i++)
		memset(x->ok + chosen[i] * per, 1, (size_t)per);
	pick_weighted(x->g, x->experts, x->ok, E, K, row);
}

/* Limited groups of a hot-kind token: those of its hot experts (row[0..h)),
 * then uniformly chosen others up to M, marked in x->ok. */
static void hot_groups(struct gen *x, int E, const int64_t *row, int h)
{
	int per = E / x->G, used[x->G], other[x->G], chosen[x->G], n_used = 0, n_other = 0;
	memset(used, 0, sizeof(used));
	for (int j = 0; j < h; j++)
		n_used += !used[row[j] / per]++;
	for (int i = 0; i < x->G; i++)
		if (!used[i])
			other[n_other++] = i;
	int more = x->M - n_used < n_other ? x->M - n_used : n_other;
	if (more > 0)
		gsl_ran_choose(x->g, chosen, (size_t)more, other, (size_t)n_other, sizeof(int));
	for (int i = 0; i < more; i++)
		used[chosen[i]] = 1;
	for (int e = 0; e < E; e++)
		x->ok[e] = used[e / per] != 0;
}

/* Hot kinds: hot_slots experts of the hot set, then the rest uniform over
 * the other experts (of the token's groups when limited). A pool too small
 * for the rest (refused by the option checks) leaves -1 entries. */
static void pick_hot_row(struct gen *x, int E, int K, int64_t *row)
{
	int n = 0, h = x->hot_slots;
	for (int e = x->hot_first; e < x->hot_first + x->hot_count; e++)
		x->pool[n++] = e;
	if (h == n) { /* the whole set, in random order */
		gsl_ran_shuffle(x->g, x->pool, (size_t)n, sizeof(int));
		for (int j = 0; j < h; j++)
			row[j] = x->pool[j];
	} else {
		pick_uniform(x->g, x->pool, n, h, row);
	}
	if (x->M)
		hot_groups(x, E, row, h);
	n = 0;
	for (int e = 0; e < E; e++)
		if ((e < x->hot_first || e >= x->hot_first + x->hot_count) && (!x->M || x->ok[e]))
			x->pool[n++] = e;
	int rest = K - h < n ? K - h : n;
	pick_uniform(x->g, x->pool, n, rest, row + h);
	for (int j = h + rest; j < K; j++)
		row[j] = -1;
}

/* A top-k weight from a uniform draw u in (0,1): u itself, or for WIDE one
 * of four values with full 24-bit mantissas (the same draws, so the ids
 * that follow do not change). */
static float weight(enum ep_payload payload, double u)
{
	static const float levels[4] = {0.2928932188f, 0.3819660113f, 0.6180339887f, 0.7071067812f};
	return payload == EP_PAYLOAD_NARROW ? (float)u : levels[(int)(u * 4) & 3];
}

/* Loaded traffic's routing rows of rank, -1 and 0 past its T_r. */
static void loaded_routing(const struct ep_shape *s, const struct ep_loaded_rank *l, int64_t *idx, float *w)
{
	size_t K = (size_t)s->num_topk;
	for (size_t i = 0; i < (size_t)s->num_tokens * K; i++) {
		int in = i / K < (size_t)l->num_tokens;
		idx[i] = in && l->topk_idx ? l->topk_idx[i] : -1;
		w[i] = in && l->topk_weights ? l->topk_weights[i] : 0.0f;
	}
}

/* Routing that changes between iterations (reference/routing_step.h):
 * rotating moves step 0's ids by step x u experts, a trace with weights
 * gives its own (the seed's draws are made all the same, so the ids and
 * masks do not depend on whether a trace has weights). */
static void step_row(const struct ep_shape *s, const struct ep_routing *r, int rank, int t, int64_t *row, float *w)
{
	int K = s->num_topk, E = s->num_experts;
	if (r->kind == EP_ROUTE_ROTATING) {
		int64_t by = (int64_t)(r->step * ep_rotating_unit(s, r) % E);
		for (int j = 0; j < K; j++)
			row[j] = row[j] < 0 ? row[j] : (row[j] + by) % E;
	} else if (r->kind == EP_ROUTE_TRACE && r->trace->weights) {
		const float *from = r->trace->weights + ((size_t)r->step * (size_t)r->trace->tokens_per_step +
							 (size_t)rank * (size_t)s->num_tokens + (size_t)t) * (size_t)K;
		memcpy(w, from, sizeof(float) * (size_t)K);
	}
}

int ep_gen_routing(const struct ep_shape *s, const struct ep_routing *r,
		   uint64_t seed, int rank, int64_t *topk_idx, float *topk_weights)
{
	if (r->loaded) {
		loaded_routing(s, &r->loaded[rank], topk_idx, topk_weights);
		return 0;
	}
	struct ep_shape logical;
	if (r->placement) { /* draw logical experts, map them at the end */
		logical = *s;
		logical.num_experts = r->placement->logical;
		s = &logical;
	}
	int T = s->num_tokens, K = s->num_topk, E = s->num_experts, place_rank = rank;
	if (r->group) /* drawn for the world rank; replicas picked for the EP rank */
		rank = r->group->world_rank[rank];
	struct gen x;
	int rc = gen_open(&x, s, r, seed, rank);
	for (int t = 0; !rc && t < T; t++) {
		int64_t *row = topk_idx + (size_t)t * K;
		switch (r->kind) {
		case EP_ROUTE_FILE:
			memcpy(row, r->file_idx + (((size_t)rank * T + t) % r->file_rows) * K,
			       sizeof(int64_t) * (size_t)K);
			break;
		case EP_ROUTE_TRACE:
			ep_trace_row(r->trace, (int)r->step, (int64_t)rank * T + t, row);
			break;
		case EP_ROUTE_ZIPF:
		case EP_ROUTE_LOGNORMAL:
		case EP_ROUTE_ROTATING:
			pick_weighted_row(&x, E, K, row);
			break;
		case EP_ROUTE_HOT:
		case EP_ROUTE_HOT_EXPERTS:
		case EP_ROUTE_HOT_RANK:
			pick_hot_row(&x, E, K, row);
			break;
		case EP_ROUTE_UNIFORM:
			pick_uniform(x.g, x.pool, allowed_experts(x.g, s, r, x.pool), K, row);
			break;
		}
		for (int j = 0; j < K; j++) {
			topk_weights[(size_t)t * K + j] = weight(r->payload, gsl_rng_uniform_pos(x.g));
			if (r->masked_ratio > 0 && gsl_rng_uniform(x.g) < r->masked_ratio)
				row[j] = -1;
		}
		step_row(s, r, rank, t, row, topk_weights + (size_t)t * K);
	}
	gen_close(&x);
	if (!rc && r->placement)
		ep_placement_map(r->placement, seed, place_rank, topk_idx, T, K);
	return rc;
}

const char *ep_payload_name(enum ep_payload p)
{
	return p == EP_PAYLOAD_NARROW ? "narrow" : p == EP_PAYLOAD_WIDE ? "wide" : "special";
}

/* 16 hash bits as one value: sign | exponent | 7 mantissa bits. */
static uint16_t payload_value(enum ep_payload payload, uint16_t b)
{
	unsigned e = payload == EP_PAYLOAD_NARROW ? 120 + ((b >> 7) & 7)     /* 2^-7 .. 2^0 */
						  : 103 + ((b >> 7) & 0xff) % 49; /* 2^-24 .. 2^24 */
	return (uint16_t)((b & 0x8000) | (e << 7) | (b & 0x7f));
}

/* SPECIAL: value v (WIDE, from bits b) replaced by sel's class, 9 bits of an
 * independent hash: the rates of inputs.h. */
static uint16_t special_value(uint16_t v, uint16_t b, unsigned sel)
{
	uint16_t sign = b & 0x8000, mant = b & 0x7f;
	if (sel < 8)
		return 0x0000;                               /* +0 */
	if (sel < 16)
		return 0x8000;                               /* -0 */
	if (sel < 32)
		return (uint16_t)(sign | mant | 1);          /* subnormal */
	if (sel < 36)
		return (uint16_t)(sign | (254u << 7) | mant); /* near the maximum */
	if (sel < 38)
		return (uint16_t)(sign | 0x7f80);            /* infinity */
	if (sel < 39)
		return (uint16_t)(sign | 0x7fc0 | mant);     /* quiet NaN */
	return v;
}

/* A loaded row of stream, or zeros when the loaded traffic lacks it. */
static void loaded_row(const struct ep_loaded_rank *l, enum ep_stream stream, int64_t token, int hidden,
		       uint16_t *row)
{
	const uint16_t *from = stream == EP_STREAM_X ? l->x : l->bias[stream == EP_STREAM_BIAS1];
	if (from && token < l->num_tokens)
		memcpy(row, from + (size_t)token * (size_t)hidden, sizeof(uint16_t) * (size_t)hidden);
	else
		memset(row, 0, sizeof(uint16_t) * (size_t)hidden);
}

/* Payload streams of the attention-DP groups' rows (x of a group view). */
#define DP_ROWS_SALT 0x40000000

/* A group view's row: moves (rank, token) to the world's identity of the
 * row (1 to generate it), or writes a padding row (0: done). */
static int group_row(uint64_t seed, const struct ep_routing *r, enum ep_stream stream, int *rank, int64_t *token,
		     int hidden, uint16_t *row)
{
	const struct ep_group_view *g = r->group;
	int q = *rank;
	if (stream != EP_STREAM_X) {
		*rank = g->world_rank[q];
		return 1;
	}
	int64_t at = g->first[q] + *token;
	*rank = DP_ROWS_SALT + g->x_key[q];
	*token = at;
	if (at < g->real[q])
		return 1;
	if (!g->replicate0) {
		memset(row, 0, sizeof(uint16_t) * (size_t)hidden);
		return 0;
	}
	struct ep_routing plain = *r;
	plain.group = NULL;
	ep_gen_bf16_row(seed, &plain, stream, *rank, 0, hidden, row);
	return 0;
}

void ep_gen_bf16_row(uint64_t seed, const struct ep_routing *r, enum ep_stream stream, int rank,
		     int64_t token, int hidden, uint16_t *row)
{
	enum ep_payload payload = r->payload;
	if (r->loaded) {
		loaded_row(&r->loaded[rank], stream, token, hidden, row);
		return;
	}
	if (r->group && !group_row(seed, r, stream, &rank, &token, hidden, row))
		return;
	uint64_t base = ep_mix64(seed ^ ((uint64_t)stream << 56) ^ ((uint64_t)(uint32_t)rank << 32)) +
			(uint64_t)token * 0x9e3779b97f4a7c15ULL;
	for (int c = 0; c < hidden; c += 4) {
		uint64_t h = ep_mix64(base + (uint64_t)c * 0xd1b54a32d192ed03ULL);
		uint64_t h2 = payload == EP_PAYLOAD_SPECIAL ? ep_mix64(h ^ 0x5bd1e9955bd1e995ULL) : 0;
		for (int k = 0; k < 4 && c + k < hidden; k++) {
			uint16_t b = (uint16_t)(h >> (16 * k));
			row[c + k] = payload_value(payload, b);
			if (payload == EP_PAYLOAD_SPECIAL)
				row[c + k] = special_value(row[c + k], b, (unsigned)(h2 >> (16 * k)) & 0x1ff);
		}
	}
}

void ep_gen_x_row(const struct ep_shape *s, uint64_t seed, const struct ep_routing *r, int rank,
		  int64_t token, void *row, float *scales)
{
	if (s->dtype != EP_DTYPE_FP8) {
		ep_gen_bf16_row(seed, r, EP_STREAM_X, rank, token, s->hidden, row);
		return;
	}
	if (r->loaded) { /* FP8 inputs are loaded cast, with their scales */
		const struct ep_loaded_rank *l = &r->loaded[rank];
		size_t H = (size_t)s->hidden, S = H / 128;
		int have = l->x && l->x_scales && token < l->num_tokens;
		for (size_t i = 0; i < H; i++)
			((uint8_t *)row)[i] = have ? ((const uint8_t *)l->x)[(size_t)token * H + i] : 0;
		for (size_t i = 0; i < S; i++)
			scales[i] = have ? l->x_scales[(size_t)token * S + i] : 0.0f;
		return;
	}
	uint16_t tmp[s->hidden];
	ep_gen_bf16_row(seed, r, EP_STREAM_X, rank, token, s->hidden, tmp);
	ep_fp8_cast_row(tmp, (size_t)s->hidden, 0, row, scales);
}

#define ROUTING_FILE_MAX ((size_t)1 << 30) /* bytes of text */

/* Parses one routing line (a NUL-terminated copy) into row[K]. 0, or
 * -EP_EUSAGE with err naming the file, line and the (quoted) entry. */
static int parse_routing_line(const char *path, int lineno, char *p, int num_topk,
			      int num_experts, int64_t *row, char *err, size_t errlen)
{
	char q[128], qp[256];
	int j = 0;
	for (char *save, *tok = strtok_r(p, " \t,\r", &save); tok; tok = strtok_r(NULL, " \t,\r", &save)) {
		char *end;
		errno = 0;
		long long e = strtoll(tok, &end, 10);
		if (errno || *end || e < -1 || e >= num_experts || j >= num_topk) {
			snprintf(err, errlen, "%s:%d: bad entry '%s' (want %d ids in [-1,%d))",
				 ep_quote(path, qp, sizeof(qp)), lineno, ep_quote(tok, q, sizeof(q)), num_topk,
				 num_experts);
			return -EP_EUSAGE;
		}
		row[j++] = e;
	}
	if (j != num_topk) {
		snprintf(err, errlen, "%s:%d: %d entries, want %d", ep_quote(path, qp, sizeof(qp)), lineno, j,
			 num_topk);
		return -EP_EUSAGE;
	}
	return 0;
}

int ep_load_routing_file(const char *path, int num_topk, int num_experts,
			 int64_t **idx, size_t *rows, char *err, size_t errlen)
{
	char *text, qp[256];
	size_t len, cap = 1024, n = 0;
	int rc = ep_text_file_read("routing file", path, ROUTING_FILE_MAX, &text, &len, err, errlen);
	if (rc)
		return rc;
	int64_t *v = malloc(sizeof(int64_t) * cap * (size_t)num_topk);
	int lineno = 0;
	char *next = len ? text : NULL;
	while (v && next) {
		char *line = next;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		lineno++;
		char *p = line + strspn(line, " \t\r");
		if (*p == '#' || *p == '\0')
			continue;
		if (n == cap) {
			int64_t *nv = realloc(v, sizeof(int64_t) * (cap *= 2) * (size_t)num_topk);
			if (!nv) {
				free(v);
				v = NULL;
				break;
			}
			v = nv;
		}
		if ((rc = parse_routing_line(path, lineno, p, num_topk, num_experts, v + n * (size_t)num_topk,
					     err, errlen)))
			goto out;
		n++;
	}
	if (!v) {
		snprintf(err, errlen, "out of memory reading '%s'", ep_quote(path, qp, sizeof(qp)));
		rc = -EP_ENOMEM;
	} else if (n == 0) {
		snprintf(err, errlen, "routing file '%s' has no rows", ep_quote(path, qp, sizeof(qp)));
		rc = -EP_EUSAGE;
	}
out:
	free(text);
	if (rc) {
		free(v);
		return rc;
	}
	*idx = v;
	*rows = n;
	return 0;
}
