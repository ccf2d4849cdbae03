/* ascend.c - Ascend's dispatch/combine through one shared arena (push: senders write the receivers' rows).
 *
 * Arena: counts [R][E + 2] | R areas, each { expand_x [C][row] | scales [C]
 * | assist [C][3] | landing [BS][K + S_n][2H] }, C the largest capacity,
 * every piece page aligned. counts row s is written by rank s alone before
 * dispatch's first barrier: its rows per routed expert, its T_r and a
 * "bad input" flag. Rows [0, n) of area d's expand_x, scales and assist are
 * written by the senders between dispatch's two barriers, each row by one
 * sender (rows are disjoint: the offsets all ranks derive from the same
 * counts). Landing slot (t, j) of rank s is written by the one rank that
 * holds (s, t, j)'s row, between combine's two barriers, and read by s
 * after the second. The first barrier of each op also says that every rank
 * is done reading what the op overwrites.
 *
 * Across nodes the arena holds counts and the areas of the node's P ranks
 * only, and each area adds net_counts [R][E + 2] (other nodes' counts
 * rows, put there by their ranks) and a staging area; landing has two
 * sets, one per combine parity. A row for another node's rank is written
 * into staging instead of the peer's area, then ascend_net.c puts each
 * block where the same row would land on one host. Each op's sends end
 * with one signal to every remote rank, and each op waits, after its node
 * barrier, for that signal from every remote rank (a remote rank's counts,
 * rows or slots have landed). Why nothing is overwritten early: a remote
 * rank's counts and rows for dispatch n + 1 come after it saw this rank's
 * counts of n + 1, sent once this rank is done with dispatch n (its
 * counts are read before it sends rows); its slots for combine n + 2 come
 * after this rank's rows of combine n + 1, sent after reducing combine n,
 * and combine n + 1 lands in the other set.
 */
#include "collectives/ascend.h"
#include "collectives/ascend_int.h"
#include "collectives/combine_kernels.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/ep.h"
#include "collectives/error.h"
#include "collectives/numeric.h"
#include "collectives/traffic.h"

/* 1/127 as Ascend's kernel spells it: the float with bits 0x3C010204. */
#define COMM_QUANT_INV127_BITS 0x3c010204u
#define COMM_QUANT_BLOCK 8

static size_t page(size_t v)
{
	return ep_align_up(v, EP_PAGE);
}

int ep_ascend_local_experts(const struct ep_ascend_params *p)
{
	int moe = p->num_ranks - p->shared_ranks;
	return moe > 0 ? p->num_experts / moe : 0;
}

size_t ep_ascend_row_bytes(const struct ep_ascend_params *p)
{
	return (size_t)p->hidden * (p->quant ? 1 : 2);
}

size_t ep_ascend_rank_capacity(const struct ep_ascend_params *p, int rank)
{
	size_t BS = (size_t)p->max_tokens, R = (size_t)p->num_ranks;
	if (rank < p->shared_ranks) {
		size_t rpse = (size_t)(p->shared_ranks / p->shared_experts);
		return BS * ((R + rpse - 1) / rpse); /* sources s with s % rpse == rank % rpse */
	}
	int L = ep_ascend_local_experts(p), K = p->num_topk;
	return BS * R * (size_t)(L < K ? L : K);
}

static size_t max_capacity(const struct ep_ascend_params *p)
{
	size_t c = ep_ascend_rank_capacity(p, p->num_ranks - 1);
	if (p->shared_ranks) {
		size_t s = ep_ascend_rank_capacity(p, 0);
		c = s > c ? s : c;
	}
	return c;
}

static size_t slots(const struct ep_ascend_params *p)
{
	return (size_t)(p->num_topk + p->shared_experts);
}

/* Ranks sharing a node's arena: P, or R on one host. */
static int node_ranks(const struct ep_ascend_params *p)
{
	int P = p->ranks_per_node;
	return P > 0 && P < p->num_ranks ? P : p->num_ranks;
}

static int across_nodes(const struct ep_ascend_params *p)
{
	return node_ranks(p) < p->num_ranks;
}

static size_t landing_bytes(const struct ep_ascend_params *p)
{
	return (size_t)p->max_tokens * slots(p) * 2 * (size_t)p->hidden;
}

/* Pieces of an area, in order. */
enum { AREA_X, AREA_SCALES, AREA_ASSIST, AREA_LANDING, AREA_NET_COUNTS, AREA_STAGE, AREA_END };
_Static_assert(AREA_END + 1 == sizeof(((struct ep_ascend *)0)->area_off) / sizeof(size_t), "ep_ascend.area_off");

/* Staging: the dispatch pieces (rows, scales, assist triples, counts row)
 * or, later, the combine rows; sizes of the first three in st[0..2]. */
static size_t stage_bytes(const struct ep_ascend_params *p, size_t cap, size_t st[3])
{
	size_t n = (size_t)p->max_tokens * slots(p);
	st[0] = ep_align_up(n * ep_ascend_row_bytes(p), 64);
	st[1] = ep_align_up(n * sizeof(float), 64);
	st[2] = ep_align_up(n * 3 * sizeof(int32_t), 64);
	size_t disp = st[0] + st[1] + st[2] + (size_t)(p->num_experts + 2) * sizeof(int32_t);
	size_t comb = cap * 2 * (size_t)p->hidden;
	return disp > comb ? disp : comb;
}

/* Offsets of an area's pieces; one function so sizing and binding agree. */
static size_t plan_area(const struct ep_ascend_params *p, size_t cap, size_t off[AREA_END + 1])
{
	int net = across_nodes(p);
	size_t st[3];
	off[AREA_X] = 0;
	off[AREA_SCALES] = page(cap * ep_ascend_row_bytes(p));
	off[AREA_ASSIST] = off[AREA_SCALES] + page(cap * sizeof(float));
	off[AREA_LANDING] = off[AREA_ASSIST] + page(cap * 3 * sizeof(int32_t));
	off[AREA_NET_COUNTS] = off[AREA_LANDING] + page(landing_bytes(p) * (net ? 2 : 1));
	off[AREA_STAGE] = off[AREA_NET_COUNTS] +
			  (net ? page((size_t)p->num_ranks * (size_t)(p->num_experts + 2) * sizeof(int32_t)) : 0);
	off[AREA_END] = off[AREA_STAGE] + (net ? page(stage_bytes(p, cap, st)) : 0);
	return off[AREA_END];
}

static size_t counts_bytes(const struct ep_ascend_params *p)
{
	return page((size_t)p->num_ranks * (size_t)(p->num_experts + 2) * sizeof(int32_t));
}

size_t ep_ascend_arena_bytes(const struct ep_ascend_params *p)
{
	size_t off[AREA_END + 1];
	return counts_bytes(p) + (size_t)node_ranks(p) * plan_area(p, max_capacity(p), off);
}

size_t ep_ascend_ctx_bytes(const struct ep_ascend_params *p)
{
	size_t R = (size_t)p->num_ranks, E = (size_t)p->num_experts, H = (size_t)p->hidden;
	size_t L = (size_t)ep_ascend_local_experts(p) + 1;
	return 8 * L + 4 * R * L + 8 * (E + 2) + 4 * (size_t)p->shared_experts + 9 * H + 256;
}

struct ascend_area ep_ascend_area(const struct ep_ascend *ctx, int rank)
{
	const size_t *off = ctx->area_off, *st = ctx->stage_off; /* the rows' hot path: no re-planning */
	uint8_t *b = (uint8_t *)ctx->areas + (size_t)(rank - ctx->node * ctx->P) * ctx->area_bytes;
	uint8_t *sb = b + off[AREA_STAGE];
	return (struct ascend_area){
		.base = b, .x = b + off[AREA_X], .scales = (float *)(b + off[AREA_SCALES]),
		.assist = (int32_t *)(b + off[AREA_ASSIST]), .landing = b + off[AREA_LANDING],
		.net_counts = (int32_t *)(b + off[AREA_NET_COUNTS]),
		.stage_x = sb, .stage_scales = (float *)(sb + st[0]), .stage_assist = (int32_t *)(sb + st[0] + st[1]),
		.stage_counts = (int32_t *)(sb + st[0] + st[1] + st[2]), .stage_rows = sb, .bytes = off[AREA_END],
	};
}

static struct ascend_area area_of(const struct ep_ascend *ctx, int rank)
{
	return ep_ascend_area(ctx, rank);
}

static int params_valid(const struct ep_ascend_params *p)
{
	int R = p->num_ranks, Sr = p->shared_ranks, Sn = p->shared_experts;
	if (R < 1 || p->max_tokens < 0 || p->hidden < 1 || p->num_topk < 1 || p->num_experts < 1)
		return 0;
	if (Sr < 0 || Sn < 0 || Sr >= R || (Sn == 0) != (Sr == 0) || (Sn && Sr % Sn))
		return 0;
	if (p->num_experts % (R - Sr) || (p->comm_quant && p->hidden % COMM_QUANT_BLOCK))
		return 0;
	if (p->ranks_per_node < 0 || R % node_ranks(p)) /* nodes of P ranks each */
		return 0;
	return 1;
}

int ep_ascend_init(struct ep_ascend *ctx, const struct ep_ascend_params *p, int rank, void *arena,
		   struct ep_waiter *w)
{
	memset(ctx, 0, sizeof(*ctx));
	if (!params_valid(p) || rank < 0 || rank >= p->num_ranks)
		return -EINVAL;
	size_t R = (size_t)p->num_ranks, E = (size_t)p->num_experts;
	size_t L = rank < p->shared_ranks ? 1 : (size_t)ep_ascend_local_experts(p);
	ctx->p = *p;
	ctx->rank = rank;
	ctx->waiter = w;
	ctx->capacity = max_capacity(p);
	ctx->P = node_ranks(p);
	ctx->node = rank / ctx->P;
	ctx->peer_stride = 1;
	ctx->area_bytes = plan_area(p, ctx->capacity, ctx->area_off);
	stage_bytes(p, ctx->capacity, ctx->stage_off);
	ctx->counts = arena;
	ctx->areas = (char *)arena + counts_bytes(p);
	ctx->expert_token_nums = calloc(L, sizeof(int64_t));
	ctx->ep_recv_counts = calloc(R * L, sizeof(int32_t));
	ctx->next_row = calloc(E + 2, sizeof(int32_t));
	ctx->stage_row = calloc(E + (size_t)p->shared_experts + 1, sizeof(int32_t));
	ctx->qrow = calloc((size_t)p->hidden, 1);
	ctx->frow = calloc((size_t)p->hidden, sizeof(float));
	ctx->acc = calloc((size_t)p->hidden, sizeof(float));
	ctx->sum_rows = calloc((size_t)p->num_topk + (size_t)p->shared_experts, sizeof(*ctx->sum_rows));
	ctx->sum_w = calloc((size_t)p->num_topk, sizeof(float));
	if (!ctx->expert_token_nums || !ctx->ep_recv_counts || !ctx->next_row || !ctx->stage_row || !ctx->qrow || !ctx->frow ||
	    !ctx->acc || !ctx->sum_rows || !ctx->sum_w) {
		ep_ascend_fini(ctx);
		return -ENOMEM;
	}
	return 0;
}

void ep_ascend_fini(struct ep_ascend *ctx)
{
	free(ctx->expert_token_nums);
	free(ctx->ep_recv_counts);
	free(ctx->next_row);
	free(ctx->stage_row);
	free(ctx->qrow);
	free(ctx->frow);
	free(ctx->acc);
	free(ctx->sum_rows);
	free(ctx->sum_w);
	memset(ctx, 0, sizeof(*ctx));
}

/* ---- dispatch ------------------------------------------------------------ */

/* Rank src's counts row: the node's table, or (another node's rank) this rank's copy. */
static int32_t *counts_row(const struct ep_ascend *ctx, int src)
{
	size_t at = (size_t)src * (size_t)(ctx->p.num_experts + 2);
	return ascend_is_local(ctx, src) ? ctx->counts + at : area_of(ctx, ctx->rank).net_counts + at;
}

/* This rank's counts: rows per routed expert, T_r, and 1 when an id is out
 * of range or repeated in a row (every rank then refuses the dispatch). */
static void publish_counts(struct ep_ascend *ctx, const struct ep_ascend_in *in)
{
	int E = ctx->p.num_experts, K = ctx->p.num_topk, bad = in->num_tokens > ctx->p.max_tokens;
	int32_t *c = counts_row(ctx, ctx->rank);
	memset(c, 0, sizeof(int32_t) * (size_t)(E + 2));
	for (int t = 0; t < in->num_tokens && !bad; t++) {
		const int64_t *row = in->expert_ids + (size_t)t * K;
		for (int j = 0; j < K; j++) {
			if (row[j] < 0)
				continue;
			bad |= row[j] >= E;
			for (int i = 0; i < j; i++)
				bad |= row[i] == row[j];
			if (!bad)
				c[row[j]]++;
		}
	}
	c[E] = bad ? 0 : in->num_tokens;
	c[E + 1] = bad;
	if (ctx->net)
		memcpy(area_of(ctx, ctx->rank).stage_counts, c, sizeof(int32_t) * (size_t)(E + 2));
}

/* Where this rank's first row for each destination lands: for routed
 * expert e (local el on rank d) the rows of (el' < el, any source) and of
 * (el, source < me) come first; on a shared rank those of the sources
 * before me in its replica class. next_row[E] is the shared position. */
static void first_rows(struct ep_ascend *ctx)
{
	const struct ep_ascend_params *p = &ctx->p;
	int R = p->num_ranks, E = p->num_experts, L = ep_ascend_local_experts(p), me = ctx->rank;
	for (int e = 0; e < E; e++) {
		int32_t n = 0;
		for (int el = e - e % L; el < e; el++)
			for (int s = 0; s < R; s++)
				n += counts_row(ctx, s)[el];
		for (int s = 0; s < me; s++)
			n += counts_row(ctx, s)[e];
		ctx->next_row[e] = n;
	}
	int32_t n = 0;
	int rpse = p->shared_experts ? p->shared_ranks / p->shared_experts : 1;
	for (int s = 0; s < me; s++)
		if (s % rpse == me % rpse)
			n += counts_row(ctx, s)[E];
	ctx->next_row[E] = n;
}

/* Ascend's dynamic quantisation of one row for one destination:
 * xf = x (* smoothing row), ds = 127 / amax, q = rint(xf * ds), scale = 1 / ds. */
static float quant_row(struct ep_ascend *ctx, const uint16_t *x, const float *smooth, int8_t *q)
{
	int H = ctx->p.hidden;
	float *xf = ctx->frow, amax = 0.0f;
	for (int c = 0; c < H; c++) {
		xf[c] = ep_bf16_to_f32(x[c]);
		if (smooth)
			xf[c] = xf[c] * smooth[c];
		float a = fabsf(xf[c]);
		amax = a > amax ? a : amax; /* a NaN never wins */
	}
	if (amax == 0.0f) {
		memset(q, 0, (size_t)H);
		return 0.0f;
	}
	float ds = 127.0f / amax;
	for (int c = 0; c < H; c++) {
		float v = rintf(xf[c] * ds);
		q[c] = (int8_t)(v != v ? 0 : v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
	}
	return 1.0f / ds;
}

/* Where one row goes: x rows, scales and assist triples, indexed by row. */
struct row_dst {
	uint8_t *x;
	float *scales;
	int32_t *assist;
};

/* Writes token t's row for `slot` (smoothing row srow) into row `row` of dst. */
static void put_row(struct ep_ascend *ctx, const struct ep_ascend_in *in, int t, int slot, int srow,
		    struct row_dst dst, int32_t row)
{
	const struct ep_ascend_params *p = &ctx->p;
	const uint16_t *x = in->x + (size_t)t * p->hidden;
	size_t rb = ep_ascend_row_bytes(p);
	if (p->quant) {
		const float *sm = in->smooth ? in->smooth + (size_t)srow * p->hidden : NULL;
		dst.scales[row] = quant_row(ctx, x, sm, (int8_t *)dst.x + (size_t)row * rb);
	} else {
		memcpy(dst.x + (size_t)row * rb, x, rb);
	}
	int32_t *info = dst.assist + (size_t)row * 3;
	info[0] = ctx->rank, info[1] = t, info[2] = slot;
}

/* Rank d's rows, or (another node's rank) this rank's staging. */
static struct row_dst dst_of(const struct ep_ascend *ctx, int d)
{
	struct ascend_area a = area_of(ctx, ascend_is_local(ctx, d) ? d : ctx->rank);
	if (ascend_is_local(ctx, d))
		return (struct row_dst){a.x, a.scales, a.assist};
	return (struct row_dst){a.stage_x, a.stage_scales, a.stage_assist};
}

/* Across nodes: staging rows per routed expert from the prefix of this
 * rank's counts, then T rows per shared expert. */
static void first_stage_rows(struct ep_ascend *ctx, int num_tokens)
{
	int E = ctx->p.num_experts;
	const int32_t *c = counts_row(ctx, ctx->rank);
	int32_t n = 0;
	for (int e = 0; e < E; e++) {
		ctx->stage_row[e] = n;
		n += c[e];
	}
	for (int j = 0; j < ctx->p.shared_experts; j++)
		ctx->stage_row[E + j] = n + j * num_tokens;
}

/* Row of destination d for next_row index i (it advances either way). */
static int32_t next_row_for(struct ep_ascend *ctx, int d, int i)
{
	int32_t row = ctx->next_row[i]++;
	return ascend_is_local(ctx, d) ? row : ctx->stage_row[i]++;
}

static void send_rows(struct ep_ascend *ctx, const struct ep_ascend_in *in)
{
	const struct ep_ascend_params *p = &ctx->p;
	int K = p->num_topk, E = p->num_experts, L = ep_ascend_local_experts(p), Sr = p->shared_ranks;
	int rpse = p->shared_experts ? Sr / p->shared_experts : 1;
	first_stage_rows(ctx, in->num_tokens);
	for (int t = 0; t < in->num_tokens; t++) {
		for (int j = 0; j < K; j++) {
			int64_t e = in->expert_ids[(size_t)t * K + j];
			int d = Sr + (int)e / L;
			if (e >= 0)
				put_row(ctx, in, t, j, p->shared_experts + (int)e, dst_of(ctx, d), next_row_for(ctx, d, (int)e));
		}
		for (int j = 0; j < p->shared_experts; j++) {
			int d = ctx->rank % rpse + j * rpse;
			int32_t row = ascend_is_local(ctx, d) ? ctx->next_row[E] : ctx->stage_row[E + j]++;
			put_row(ctx, in, t, K + j, j, dst_of(ctx, d), row);
		}
		ctx->next_row[E]++;
	}
}

/* This rank's receive figures from everyone's counts: rows, expert_token_nums, ep_recv_counts. */
static void recv_figures(struct ep_ascend *ctx)
{
	const struct ep_ascend_params *p = &ctx->p;
	int R = p->num_ranks, E = p->num_experts, me = ctx->rank;
	int shared = me < p->shared_ranks, L = shared ? 1 : ep_ascend_local_experts(p);
	int rpse = p->shared_experts ? p->shared_ranks / p->shared_experts : 1;
	int64_t total = 0;
	for (int el = 0; el < L; el++) {
		int64_t n = 0;
		for (int s = 0; s < R; s++) {
			int32_t c = shared ? (s % rpse == me % rpse ? counts_row(ctx, s)[E] : 0)
					   : counts_row(ctx, s)[(me - p->shared_ranks) * L + el];
			n += c;
			ctx->ep_recv_counts[el * R + s] = (int32_t)(total + n);
		}
		total += n;
		ctx->expert_token_nums[el] = p->counts_prefix ? total : n;
	}
	struct ascend_area a = area_of(ctx, me);
	ctx->out = (struct ep_ascend_out){
		.num_recv = (size_t)total,
		.capacity = ep_ascend_rank_capacity(p, me),
		.expand_x = a.x,
		.dynamic_scales = p->quant ? a.scales : NULL,
		.assist_info = a.assist,
		.expert_token_nums = ctx->expert_token_nums,
		.ep_recv_counts = ctx->ep_recv_counts,
		.num_local = L,
		.num_counts = R * L,
	};
}

/* Largest rows any rank receives, computed alike by every rank. */
static int capacity_exceeded(struct ep_ascend *ctx)
{
	const struct ep_ascend_params *p = &ctx->p;
	int R = p->num_ranks, E = p->num_experts, L = ep_ascend_local_experts(p);
	int rpse = p->shared_experts ? p->shared_ranks / p->shared_experts : 1;
	for (int d = 0; d < R; d++) {
		size_t n = 0;
		for (int s = 0; s < R; s++)
			if (d < p->shared_ranks)
				n += s % rpse == d % rpse ? (size_t)counts_row(ctx, s)[E] : 0;
			else
				for (int el = 0; el < L; el++)
					n += (size_t)counts_row(ctx, s)[(d - p->shared_ranks) * L + el];
		if (n > ep_ascend_rank_capacity(p, d))
			return 1;
	}
	return 0;
}

int ep_ascend_dispatch(struct ep_ascend *ctx, const struct ep_ascend_in *in, struct ep_ascend_out *out)
{
	const struct ep_ascend_params *p = &ctx->p;
	struct ep_waiter *w = ctx->waiter;
	int R = p->num_ranks, E = p->num_experts, rc;
	ep_traffic_begin(w->traffic, ctx->rank, "dispatch");
	ep_set_phase(w, "dispatch.notify");
	ep_ascend_net_start(ctx);
	ctx->have_handle = 0;
	publish_counts(ctx, in);
	/* counts are published; every rank is done with the last dispatch's rows */
	if ((rc = ep_ascend_net_counts(ctx)) || (rc = ep_barrier(w)) || (rc = ep_ascend_net_wait(ctx, 0)))
		return rc;
	for (int s = 0; s < R; s++)
		if (counts_row(ctx, s)[E + 1])
			return -EINVAL;
	if (capacity_exceeded(ctx))
		return -EP_ENOSPC;
	first_rows(ctx);
	recv_figures(ctx); /* the last read of the counts: remote ranks may send the next ones after our rows */
	ep_set_phase(w, "dispatch.send");
	send_rows(ctx, in);
	if ((rc = ep_ascend_net_send_rows(ctx, ctx->stage_row, in->num_tokens)))
		return rc;
	ep_set_phase(w, "dispatch.recv");
	if ((rc = ep_barrier(w)) || (rc = ep_ascend_net_wait(ctx, 1))) /* every row for this rank has landed */
		return rc;
	ctx->num_tokens = in->num_tokens;
	ctx->expert_ids = in->expert_ids;
	ctx->have_handle = 1;
	*out = ctx->out;
	ep_set_phase(w, "idle");
	return 0;
}

/* ---- combine ------------------------------------------------------------- */

size_t ep_ascend_landing_offset(const struct ep_ascend *ctx, int t, int slot)
{
	const size_t *off = ctx->area_off;
	size_t set = ctx->net ? (size_t)(ctx->combines & 1) * landing_bytes(&ctx->p) : 0;
	size_t i = (size_t)t * slots(&ctx->p) + (size_t)slot;
	return off[AREA_LANDING] + set + i * 2 * (size_t)ctx->p.hidden;
}

/* Slot (t, slot) of local rank src's current landing set. */
static uint8_t *landing_slot(const struct ep_ascend *ctx, int src, int t, int slot)
{
	return area_of(ctx, src).base + ep_ascend_landing_offset(ctx, t, slot);
}

/* comm_quant_mode 2 on the way out: per block of 8, s = blockmax * (1/127f),
 * q = rint(y / s) (through half, exact for |q| <= 127), the scale sent as bf16. */
static void comm_quant(const uint16_t *y, int H, int8_t *q, uint16_t *scales)
{
	const float inv127 = ep_f32_from_bits(COMM_QUANT_INV127_BITS);
	for (int b = 0; b < H; b += COMM_QUANT_BLOCK) {
		float m = 0.0f;
		for (int c = b; c < b + COMM_QUANT_BLOCK; c++) {
			float a = fabsf(ep_bf16_to_f32(y[c]));
			m = a > m ? a : m;
		}
		float s = m * inv127;
		for (int c = b; c < b + COMM_QUANT_BLOCK; c++) {
			float v = s == 0.0f ? 0.0f : rintf(ep_bf16_to_f32(y[c]) / s);
			q[c] = (int8_t)(v != v ? 0 : v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
		}
		scales[b / COMM_QUANT_BLOCK] = ep_f32_to_bf16(s);
	}
}

/* Every output row back to its source's slot, as assist_info says. A
 * triple outside the group's slots (assist_info damaged after dispatch) is
 * skipped: its slot keeps older bytes, which the check then reports. */
static int return_rows(struct ep_ascend *ctx, const uint16_t *y)
{
	const struct ep_ascend_params *p = &ctx->p;
	int H = p->hidden, rc;
	const int32_t *info = ctx->out.assist_info;
	uint8_t *stage = area_of(ctx, ctx->rank).stage_rows;
	for (size_t r = 0; r < ctx->out.num_recv; r++) {
		const int32_t *i = info + r * 3;
		if (i[0] < 0 || i[0] >= p->num_ranks || i[1] < 0 || i[1] >= p->max_tokens || i[2] < 0 ||
		    (size_t)i[2] >= slots(p))
			continue;
		int local = ascend_is_local(ctx, i[0]);
		uint8_t *dst = local ? landing_slot(ctx, i[0], i[1], i[2]) : stage + r * 2 * (size_t)H;
		const uint16_t *row = y + r * (size_t)H;
		if (p->comm_quant)
			comm_quant(row, H, (int8_t *)dst, (uint16_t *)(dst + H));
		else
			memcpy(dst, row, 2 * (size_t)H);
		if (!local && (rc = ep_ascend_net_put_slot(ctx, i[0], dst, i[1], i[2])))
			return rc;
	}
	return ep_ascend_net_signal(ctx);
}

/* One int8 slot (comm_quant) as the combine reads it: dequantised with its bf16 scale. */
static void slot_values(const struct ep_ascend *ctx, const uint8_t *slot, float *v)
{
	int H = ctx->p.hidden;
	const int8_t *q = (const int8_t *)slot;
	const uint16_t *sc = (const uint16_t *)(slot + H);
	for (int c = 0; c < H; c++)
		v[c] = ep_bf16_to_f32(ep_f32_to_bf16((float)q[c] * ep_bf16_to_f32(sc[c / COMM_QUANT_BLOCK])));
}

/* Token t's sum: acc = +0; per active routed slot acc = acc + (y * w) (two
 * roundings); per shared expert acc = acc + y; then shared_x; one rounding.
 * BF16 slots go through the vector kernel (combine_kernels.h, the same
 * bytes); int8 ones (comm_quant) are dequantised row by row here. */
static void reduce_token(struct ep_ascend *ctx, int t, const float *weights, const uint16_t *shared_x,
			 float *acc, uint16_t *out)
{
	const struct ep_ascend_params *p = &ctx->p;
	int H = p->hidden, K = p->num_topk, n = 0, nw = 0;
	const uint16_t *tail = shared_x ? shared_x + (size_t)t * H : NULL;
	for (int j = 0; j < K + p->shared_experts; j++) {
		if (j < K && ctx->expert_ids[(size_t)t * K + j] < 0)
			continue;
		if (j < K)
			ctx->sum_w[nw++] = weights[(size_t)t * K + j];
		ctx->sum_rows[n++] = (const uint16_t *)landing_slot(ctx, ctx->rank, t, j);
	}
	if (!p->comm_quant) {
		ep_bf16_weighted_sum_rows(ctx->sum_rows, ctx->sum_w, nw, n, tail, (size_t)H, out + (size_t)t * H);
		return;
	}
	float *v = ctx->frow;
	for (int c = 0; c < H; c++)
		acc[c] = 0.0f;
	for (int j = 0; j < n; j++) {
		slot_values(ctx, (const uint8_t *)ctx->sum_rows[j], v);
		/* Muls over the row, then Add: two loops, so the product is
		 * rounded and never fused with the sum */
		for (int c = 0; j < nw && c < H; c++)
			v[c] = v[c] * ctx->sum_w[j];
		for (int c = 0; c < H; c++)
			acc[c] = acc[c] + v[c];
	}
	for (int c = 0; tail && c < H; c++)
		acc[c] = acc[c] + ep_bf16_to_f32(tail[c]);
	ep_f32_row_to_bf16(acc, out + (size_t)t * H, (size_t)H);
}

int ep_ascend_combine(struct ep_ascend *ctx, const uint16_t *expand_y, const float *weights,
		      const uint16_t *shared_x, uint16_t *out)
{
	struct ep_waiter *w = ctx->waiter;
	int rc;
	if (!ctx->have_handle)
		return -EINVAL;
	ep_traffic_begin(w->traffic, ctx->rank, "combine");
	ep_ascend_net_start(ctx);
	ep_set_phase(w, "combine.notify");
	if ((rc = ep_barrier(w))) /* every source is done reading its last combine's slots */
		return rc;
	ep_set_phase(w, "combine.send");
	memset(ctx->net_bytes[1], 0, sizeof(ctx->net_bytes[1]));
	if ((rc = return_rows(ctx, expand_y)))
		return rc;
	ep_set_phase(w, "combine.recv");
	if ((rc = ep_barrier(w)) || (rc = ep_ascend_net_wait(ctx, 1))) /* every slot of this rank has landed */
		return rc;
	ep_set_phase(w, "combine.reduce");
	for (int t = 0; t < ctx->num_tokens; t++)
		reduce_token(ctx, t, weights, shared_x, ctx->acc, out);
	ctx->combines++;
	ep_set_phase(w, "idle");
	return 0;
}
