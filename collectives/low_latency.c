/* low_latency.c - decode-time dispatch/combine into per-expert buffers.
 *
 * Arena (a node's): P equal rank regions, each page aligned:
 *   signals   4 flags, one per 128-byte line: dispatch sent / received,
 *             combine sent / received (each raised by adding 1, so it
 *             counts the calls since the arena was mapped zero-filled
 *             or ep_ll_clean zeroed it)
 *   src_begin int32 [R][L]: first packed row of source s at local expert e
 *   send[2]   dispatch send areas, by dispatch call parity:
 *             counts int32 [E] | lists int32 [E][N] | rows [N][msg]
 *             msg = e4m3 [H] + float scale_inv [H/128] (FP8) or bf16 [H]
 *   combine   bf16 [L][R*N][H], the expert outputs at their packed rows
 *   outputs   packed_recv_x, scales, count, src_info, layout_range (only
 *             the owner touches them)
 *   across nodes only (R - P remote ranks; empty on one node):
 *   net_recv[2]  [R-P][block], by dispatch parity: one block per remote
 *                source: first int32 [L+1] (prefix of its counts for my
 *                experts) | lists int32 [n] | pad to 16 | msgs [n][wire_msg]
 *   net_crecv[2] [R-P][cblock], by combine parity: per remote owner, the
 *                rows of my tokens, expert by expert in list order
 *   net_stage    the blocks this rank sends, one per remote rank, packed
 * A remote rank q has slot q of those areas, less P when q is above the
 * receiving node's ranks. Who writes what: a rank writes only its own
 * region, and the transport writes its remote areas; peers of the node read
 * signals, src_begin, send areas and the combine area. See low_latency.h
 * for the reuse guards that make every read see a complete, current write.
 */
#include "collectives/low_latency.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "collectives/traffic.h"
#include "collectives/low_latency_int.h"
#include "collectives/numeric.h"
#include "collectives/stream_copy.h"


static int per_node(const struct ep_ll_config *cfg)
{
	return cfg->ranks_per_node > 0 ? cfg->ranks_per_node : cfg->num_ranks;
}

/* Offsets inside one rank region; one function so sizing and binding agree. */
struct rank_plan {
	size_t src_begin, send[2], combine;
	size_t recv_x, recv_scales, recv_count, src_info, layout_range;
	size_t net_recv[2], net_crecv[2], net_stage;
	size_t lists, rows, msg;  /* inside a send area: offsets, message stride */
	size_t block, cblock, wire_msg; /* remote slots, message stride on the wire */
	size_t bytes;             /* the whole region */
};

int ep_ll_scale_cols(const struct ep_ll_config *cfg)
{
	if (cfg->dtype != EP_DTYPE_FP8)
		return 0;
	return cfg->use_ue8m0 ? cfg->hidden / 512 : cfg->hidden / 128;
}

size_t ep_ll_row_bytes(const struct ep_ll_config *cfg)
{
	return cfg->dtype == EP_DTYPE_FP8 ? (size_t)cfg->hidden : 2 * (size_t)cfg->hidden;
}

static void plan_rank(const struct ep_ll_config *cfg, struct rank_plan *p)
{
	size_t R = (size_t)cfg->num_ranks, E = (size_t)cfg->num_experts, L = E / R;
	size_t H = (size_t)cfg->hidden, N = (size_t)cfg->max_tokens, RN = R * N;
	size_t K = (size_t)cfg->num_topk, remote = R - (size_t)per_node(cfg);
	size_t row = ep_ll_row_bytes(cfg);
	size_t wire_scales = cfg->dtype == EP_DTYPE_FP8 ? H / 128 * sizeof(float) : 0;
	size_t cap = N * (K < L ? K : L); /* messages one rank can send another */
	size_t off = ep_align_up(LL_NUM_SIGNALS * sizeof(struct ll_signal), EP_PAGE);
	p->lists = ep_align_up(E * sizeof(int32_t), LL_LINE);
	p->rows = ep_align_up(p->lists + E * N * sizeof(int32_t), EP_PAGE);
	p->msg = ep_align_up(row + wire_scales, 64);
	p->wire_msg = ep_align_up(row + wire_scales, 16);
	p->block = ep_align_up(ep_align_up((L + 1 + cap) * sizeof(int32_t), 16) + cap * p->wire_msg, 64);
	p->cblock = ep_align_up(cap * H * sizeof(uint16_t), 64);
	size_t stage = remote ? remote * ((L + 1) * sizeof(int32_t) + 16 + 64) + N * K * (4 + p->wire_msg) : 0;
	size_t send_bytes = ep_align_up(p->rows + N * p->msg, EP_PAGE);
	p->src_begin = off;      off = ep_align_up(off + R * L * sizeof(int32_t), EP_PAGE);
	p->send[0] = off;        off += send_bytes;
	p->send[1] = off;        off += send_bytes;
	p->combine = off;        off = ep_align_up(off + L * RN * H * sizeof(uint16_t), EP_PAGE);
	p->recv_x = off;         off = ep_align_up(off + L * RN * row, EP_PAGE);
	p->recv_scales = off;    off = ep_align_up(off + L * RN * (size_t)ep_ll_scale_cols(cfg) * 4, EP_PAGE);
	p->recv_count = off;     off = ep_align_up(off + L * sizeof(int32_t), EP_PAGE);
	p->src_info = off;       off = ep_align_up(off + L * RN * sizeof(int32_t), EP_PAGE);
	p->layout_range = off;   off = ep_align_up(off + L * R * sizeof(int64_t), EP_PAGE);
	p->net_recv[0] = off;    off = ep_align_up(off + remote * p->block, EP_PAGE);
	p->net_recv[1] = off;    off = ep_align_up(off + remote * p->block, EP_PAGE);
	p->net_crecv[0] = off;   off = ep_align_up(off + remote * p->cblock, EP_PAGE);
	p->net_crecv[1] = off;   off = ep_align_up(off + remote * p->cblock, EP_PAGE);
	p->net_stage = off;      off = ep_align_up(off + stage, EP_PAGE);
	p->bytes = off;
}

/* Bytes of the largest pieces of a node's ranks, in double so that absurd
 * shapes cannot wrap around: combine area, packed x, scales, src_info, and
 * the remote areas. */
static double arena_estimate(const struct ep_ll_config *c)
{
	double E = c->num_experts, N = c->max_tokens, H = c->hidden, K = c->num_topk;
	double remote = c->num_ranks - per_node(c);
	double local = E * N * (H * 2 + H * 2 + H / 32 + 4);
	double net = (2 * remote + 1) * N * K * (H * 2 + H / 32 + 8) + 2 * remote * N * K * H * 2;
	return (local + net) * per_node(c);
}

int ep_ll_config_check(const struct ep_ll_config *c)
{
	if (c->num_ranks < 1 || c->num_experts < 1 || c->num_experts % c->num_ranks ||
	    c->hidden < 1 || c->num_topk < 1 || c->max_tokens < 1)
		return -EINVAL;
	if (c->ranks_per_node < 0 || c->num_ranks % per_node(c) ||
	    c->num_ranks / per_node(c) > EP_LL_MAX_NODES)
		return -EINVAL;
	if (c->dtype != EP_DTYPE_BF16 && c->dtype != EP_DTYPE_FP8)
		return -EINVAL;
	if (c->dtype == EP_DTYPE_FP8 && c->hidden % 128)
		return -EINVAL;
	if ((c->round_scale || c->use_ue8m0) && c->dtype != EP_DTYPE_FP8)
		return -EINVAL;
	if (c->use_ue8m0 && (!c->round_scale || c->hidden % 512))
		return -EINVAL;
	if (arena_estimate(c) > 0x1p60)
		return -EOVERFLOW;
	return 0;
}

size_t ep_ll_rank_bytes(const struct ep_ll_config *cfg)
{
	size_t E = (size_t)cfg->num_experts, N = (size_t)cfg->max_tokens, K = (size_t)cfg->num_topk;
	return 8 * E + 4 * N * K + K * (sizeof(void *) + 4) + (size_t)cfg->hidden / 128 + 64;
}

size_t ep_ll_arena_bytes(const struct ep_ll_config *cfg)
{
	struct rank_plan p;
	int rc = ep_ll_config_check(cfg);
	if (rc == -EOVERFLOW)
		return SIZE_MAX;
	if (rc)
		return 0;
	plan_rank(cfg, &p);
	return p.bytes * (size_t)per_node(cfg);
}

/* The dispatch outputs in a rank region (only their owner writes them). */
static void outputs_of(const struct ep_ll_config *cfg, const struct rank_plan *p, char *region,
		       struct ep_ll_dispatch_out *out)
{
	*out = (struct ep_ll_dispatch_out){
		.packed_recv_x = region + p->recv_x,
		.packed_recv_x_scales = ep_ll_scale_cols(cfg) > 0 ? region + p->recv_scales : NULL,
		.packed_recv_count = (int32_t *)(region + p->recv_count),
		.packed_recv_src_info = (int32_t *)(region + p->src_info),
		.packed_recv_layout_range = (int64_t *)(region + p->layout_range),
	};
}

int ep_ll_init(struct ep_ll *ctx, const struct ep_ll_config *cfg, int rank, void *arena,
	       struct ep_waiter *w, struct ep_transport *net)
{
	return ep_ll_init_group(ctx, cfg, rank, arena, w, net, NULL);
}

int ep_ll_init_group(struct ep_ll *ctx, const struct ep_ll_config *cfg, int rank, void *arena,
		     struct ep_waiter *w, struct ep_transport *net, const struct ep_ll_group *grp)
{
	struct rank_plan p;
	memset(ctx, 0, sizeof(*ctx));
	int rc = ep_ll_config_check(cfg);
	if (rc)
		return rc;
	int P = per_node(cfg), stride = grp ? grp->stride : 1, base = grp ? grp->base : 0;
	if (rank < 0 || rank >= cfg->num_ranks || !arena || !w || stride < 1 || base < 0 || base >= stride ||
	    (P < cfg->num_ranks) != (net != NULL))
		return -EINVAL;
	ctx->stride = stride;
	ctx->base = base;
	ctx->waiter = w;
	if (w->rank != ll_waiter_rank(ctx, rank % P)) {
		memset(ctx, 0, sizeof(*ctx));
		return -EINVAL;
	}
	plan_rank(cfg, &p);
	ctx->cfg = *cfg;
	ctx->cfg.ranks_per_node = P;
	ctx->rank = rank;
	ctx->node = rank / P;
	ctx->local = rank % P;
	ctx->nodes = cfg->num_ranks / P;
	ctx->waiter = w;
	ctx->net = net;
	ctx->arena = arena;
	ctx->rank_bytes = p.bytes;
	ctx->off.src_begin = p.src_begin;
	ctx->off.send[0] = p.send[0];
	ctx->off.send[1] = p.send[1];
	ctx->off.combine = p.combine;
	ctx->off.lists = p.lists;
	ctx->off.rows = p.rows;
	ctx->off.msg = p.msg;
	memcpy(ctx->off.net_recv, p.net_recv, sizeof(p.net_recv));
	memcpy(ctx->off.net_crecv, p.net_crecv, sizeof(p.net_crecv));
	ctx->off.net_stage = p.net_stage;
	ctx->off.block = p.block;
	ctx->off.cblock = p.cblock;
	ctx->off.wire_msg = p.wire_msg;
	size_t E = (size_t)cfg->num_experts, N = (size_t)cfg->max_tokens, K = (size_t)cfg->num_topk;
	ctx->send_count = calloc(E, sizeof(int32_t));
	ctx->slot = calloc(N * K, sizeof(int32_t));
	ctx->rows = calloc(K, sizeof(*ctx->rows));
	ctx->weights = calloc(K, sizeof(float));
	ctx->net_first = calloc(E, sizeof(int32_t));
	if (!ctx->send_count || !ctx->slot || !ctx->rows || !ctx->weights ||
	    !ctx->net_first) {
		ep_ll_fini(ctx);
		return -ENOMEM;
	}
	char *me = ll_region(ctx, ctx->local);
	/* what the network touches: the remote areas (put targets, and the
	 * staging area, a put source) and the combine area (a put source) */
	if (net && ((rc = ep_transport_reg_mem(net, LL_NET_AREAS, me + p.net_recv[0], p.bytes - p.net_recv[0])) ||
		    (rc = ep_transport_reg_mem(net, LL_NET_COMBINE, me + p.combine, p.recv_x - p.combine)))) {
		ep_ll_fini(ctx);
		return rc;
	}
	outputs_of(cfg, &p, me, &ctx->out);
	return 0;
}

int ep_ll_outputs_view(const struct ep_ll_config *cfg, int rank, void *arena, struct ep_ll_dispatch_out *out)
{
	struct rank_plan p;
	if (ep_ll_config_check(cfg) || rank < 0 || rank >= cfg->num_ranks || !arena)
		return -EINVAL;
	plan_rank(cfg, &p);
	outputs_of(cfg, &p, (char *)arena + (size_t)(rank % per_node(cfg)) * p.bytes, out);
	return 0;
}

void ep_ll_fini(struct ep_ll *ctx)
{
	free(ctx->send_count);
	free(ctx->slot);
	free(ctx->rows);
	free(ctx->weights);
	free(ctx->net_first);
	memset(ctx, 0, sizeof(*ctx));
}

/* Waits */

/* Across nodes, a timeout message names global ranks (the node's sync
 * blocks count local ones): rewrites the one the wait left. */
void ep_ll_name_globally(struct ep_ll *ctx, int l)
{
	struct ep_waiter *w = ctx->waiter;
	struct ep_rank_ctl *me = &w->sync->ctl[w->rank];
	int world = ll_world(ctx, ctx->rank); /* the waiter's rank l is world rank world - w->rank + l */
	snprintf(me->message, sizeof(me->message),
		 "rank %d (node %d) timed out after %.1f s in phase %s waiting for rank %d of its node (in phase %s)",
		 world, ctx->node, (double)w->timeout_ns / 1e9, atomic_load(&me->phase),
		 l >= 0 ? world - w->rank + l : -1, l >= 0 ? atomic_load(&w->sync->ctl[l].phase) : "?");
}

/* A "sent" signal (dispatch or combine) more than one call ahead of this
 * rank's receive cannot happen: a sender's next send waits for its own
 * receive, which waits for this rank's next send. Signals are raised by
 * adding 1 to a line that starts at zero (as DeepEP's atomic adds onto its
 * zeroed receive counters), so a line that another user of the memory left
 * non-zero (normal mode, when the hand-over skipped ep_ll_clean) stays off
 * by what it held: reported here as wrong data, naming the line's rank. */
static int signal_sane(struct ep_ll *ctx, int l, int which, uint32_t target)
{
	uint32_t v = atomic_load(&ll_signal_of(ctx, l, which)->value);
	if ((int32_t)(v - target) <= 1)
		return 0;
	ep_sync_fail(ctx->waiter, -EP_EWRONGDATA,
		     "rank %d: low-latency %s: rank %d's signal reads %u, %u calls ahead of this rank's %u: the low-latency buffer holds another mode's data (not cleaned after normal mode used it; DeepEP: clean_low_latency_buffer)",
		     ll_world(ctx, ctx->rank), which == LL_SIG_DISP_SENT ? "dispatch" : "combine",
		     ll_world(ctx, ctx->node * ctx->cfg.ranks_per_node + l), v, v - target, target);
	return -EP_EWRONGDATA;
}

/* Waits until signal `which` of every rank of the node reached target, in
 * rank order starting after me (so waits spread over peers). */
static int wait_all(struct ep_ll *ctx, int which, uint32_t target)
{
	int P = ctx->cfg.ranks_per_node;
	int sent = which == LL_SIG_DISP_SENT || which == LL_SIG_COMB_SENT;
	for (int i = 1; i <= P; i++) {
		int l = (ctx->local + i) % P;
		int rc = ep_flag_wait_geq(ctx->waiter, ll_signal_of(ctx, l, which), target, ll_waiter_rank(ctx, l));
		if (rc) {
			if (ctx->net)
				ep_ll_name_globally(ctx, ll_waiter_rank(ctx, l));
			return rc;
		}
		if (sent && (rc = signal_sane(ctx, l, which, target)))
			return rc;
	}
	return 0;
}

int ep_ll_clean(struct ep_ll *ctx, int keep_signals)
{
	int rc;
	if (ctx->net || ctx->disp_pending || ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.clean");
	if ((rc = ep_barrier(ctx->waiter))) /* every rank is done with the arena */
		return rc;
	for (int which = 0; !keep_signals && which < LL_NUM_SIGNALS; which++) {
		struct ep_flag *f = ll_signal_of(ctx, ctx->local, which);
		atomic_store(&f->value, 0);
		atomic_store(&f->waiters, 0);
	}
	ctx->disp_calls = ctx->comb_calls = 0;
	ctx->have_handle = 0;
	ctx->num_tokens = 0;
	if ((rc = ep_barrier(ctx->waiter))) /* no rank signals before every line is clean */
		return rc;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

/* Traffic words (collectives/traffic.h): every transfer is a pull, so a
 * sender's words say what it published (expected = sent), and the
 * receiver counts what it pulled. Once per op and peer, never per row. */

/* Rows source s handed this rank in the last dispatch (its layout_range counts). */
static uint32_t rows_from(const struct ep_ll *ctx, int s)
{
	int R = ctx->cfg.num_ranks, L = ctx->cfg.num_experts / R;
	uint32_t n = 0;
	for (int e = 0; e < L; e++)
		n += (uint32_t)ctx->out.packed_recv_layout_range[(size_t)e * R + s];
	return n;
}

/* Messages this rank's last dispatch sent to rank q (its experts' lists). */
static uint32_t rows_to(const struct ep_ll *ctx, int q)
{
	int L = ctx->cfg.num_experts / ctx->cfg.num_ranks;
	uint32_t n = 0;
	for (int e = q * L; e < (q + 1) * L; e++)
		n += (uint32_t)ctx->send_count[e];
	return n;
}

/* This rank published rows for every rank (dispatch: its messages to each;
 * combine: the rows each token owner sent it). net: only the pairs over
 * the network (put once the sends returned), else those of its node. */
static void publish_pairs(struct ep_ll *ctx, int dispatch, int net, size_t row_bytes)
{
	struct ep_traffic *t = ctx->waiter->traffic;
	for (int q = 0; t && q < ctx->cfg.num_ranks; q++) {
		if ((ll_is_local(ctx, q) != 0) == (net != 0))
			continue;
		uint32_t rows = dispatch ? rows_to(ctx, q) : rows_from(ctx, q);
		ep_traffic_expect(t, ctx->op_seq, ctx->rank, q, rows, (uint32_t)row_bytes, net ? EP_HOP_NET : EP_HOP_SHM);
		ep_traffic_sent(t, ctx->op_seq, ctx->rank, q, rows);
	}
}

/* This rank pulled (or reduced) every source's rows of the op. */
static void pulled_pairs(struct ep_ll *ctx, int dispatch)
{
	for (int q = 0; ctx->waiter->traffic && q < ctx->cfg.num_ranks; q++)
		ep_traffic_arrived(ctx->waiter->traffic, ctx->op_seq, q, ctx->rank,
				   dispatch ? rows_from(ctx, q) : rows_to(ctx, q));
}

/* Dispatch */

/* Appends token t's valid slots to the expert lists; returns how many
 * slots it has (0: the token goes nowhere and need not be cast). */
static int list_token(struct ep_ll *ctx, struct ll_send_area *a, const int64_t *idx, int t)
{
	int K = ctx->cfg.num_topk, E = ctx->cfg.num_experts, N = ctx->cfg.max_tokens, n = 0;
	int32_t *slot = ctx->slot + (size_t)t * K;
	for (int j = 0; j < K; j++) {
		int64_t e = idx[j];
		slot[j] = -1;
		if (e < 0 || e >= E)
			continue;
		int32_t k = ctx->send_count[e];
		if (k >= N) { /* one expert named more than N times */
			ctx->overflow = 1;
			continue;
		}
		a->lists[(size_t)e * N + (size_t)k] = t;
		ctx->send_count[e] = k + 1;
		slot[j] = k;
		n++;
	}
	return n;
}

/* Token t into its message: the FP8 cast (payload, then scale_inv per
 * 128 channels) or the BF16 row as is. */
static void put_message(const struct ep_ll *ctx, const uint16_t *x, char *msg)
{
	size_t H = (size_t)ctx->cfg.hidden;
	if (ctx->cfg.dtype == EP_DTYPE_FP8)
		ep_ll_fp8_cast_row(x, H, ctx->cfg.round_scale, (uint8_t *)msg, (float *)(msg + H));
	else
		memcpy(msg, x, H * sizeof(uint16_t));
}

int ep_ll_dispatch_send(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx,
			int num_tokens)
{
	const struct ep_ll_config *c = &ctx->cfg;
	struct ep_waiter *w = ctx->waiter;
	int rc;
	if (num_tokens < 0 || num_tokens > c->max_tokens || ctx->disp_pending || ctx->comb_pending)
		return -EINVAL;
	uint32_t call = ++ctx->disp_calls;
	ctx->op_seq = ep_traffic_begin(w->traffic, ctx->rank, "ll.dispatch");
	ep_set_phase(w, "ll.dispatch.send");
	ep_ll_net_start(ctx, &ctx->last_dispatch);
	/* Reuse guard: area call % 2 was last read by call - 2 (see header). */
	if (call > 2 && (rc = wait_all(ctx, LL_SIG_DISP_RECVD, call - 2)))
		return rc;
	struct ll_send_area a = ll_send_area_of(ctx, ctx->local, call);
	memset(ctx->send_count, 0, sizeof(int32_t) * (size_t)c->num_experts);
	ctx->overflow = 0;
	for (int t = 0; t < num_tokens; t++)
		if (list_token(ctx, &a, topk_idx + (size_t)t * c->num_topk, t))
			put_message(ctx, x + (size_t)t * c->hidden, a.rows + (size_t)t * ctx->off.msg);
	memcpy(a.counts, ctx->send_count, sizeof(int32_t) * (size_t)c->num_experts);
	publish_pairs(ctx, 1, 0, ctx->off.msg);
	ep_flag_add(ll_signal_of(ctx, ctx->local, LL_SIG_DISP_SENT), 1); /* now call */
	ctx->num_tokens = num_tokens;
	ctx->disp_pending = 1;
	ctx->have_handle = 0;
	if (ctx->net && (rc = ep_ll_net_send_blocks(ctx, &a, call)))
		return rc;
	publish_pairs(ctx, 1, 1, ctx->off.msg);
	ctx->disp_target = ctx->net_sends;
	ep_set_phase(w, "idle");
	return ctx->overflow ? -EP_ENOSPC : 0;
}

int ep_ll_dispatch_wait(struct ep_ll *ctx)
{
	if (!ctx->disp_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.dispatch.wait");
	int rc = wait_all(ctx, LL_SIG_DISP_SENT, ctx->disp_calls);
	if (!rc)
		rc = ep_ll_net_wait(ctx, ctx->disp_target, &ctx->last_dispatch);
	ep_set_phase(ctx->waiter, "idle");
	return rc;
}

/* Source s's messages for local expert e in dispatch `call`. */
static struct ll_source source_of(const struct ep_ll *ctx, int e, int s, uint32_t call)
{
	int L = ctx->cfg.num_experts / ctx->cfg.num_ranks, N = ctx->cfg.max_tokens;
	size_t g = (size_t)ctx->rank * L + (size_t)e;
	if (!ll_is_local(ctx, s))
		return ep_ll_net_source(ctx, e, s, call);
	struct ll_send_area a = ll_send_area_of(ctx, s - ctx->node * ctx->cfg.ranks_per_node, call);
	return (struct ll_source){a.lists + g * (size_t)N, a.rows, ctx->off.msg, 1, a.counts[g]};
}

/* Canonical positions of local expert e: begin of each source, published
 * for the token owners' combine, and layout_range; returns the total. */
static int32_t layout_expert(struct ep_ll *ctx, int e, uint32_t call)
{
	int R = ctx->cfg.num_ranks, L = ctx->cfg.num_experts / R;
	int32_t *src_begin = (int32_t *)(ll_region(ctx, ctx->local) + ctx->off.src_begin);
	int64_t *range = ctx->out.packed_recv_layout_range + (size_t)e * R;
	int32_t begin = 0;
	for (int s = 0; s < R; s++) {
		int32_t n = source_of(ctx, e, s, call).n;
		src_begin[(size_t)s * L + e] = begin;
		range[s] = (int64_t)((uint64_t)(uint32_t)begin << 32 | (uint32_t)n);
		begin += n;
	}
	return begin;
}

/* Message i of a source (ll_source). */
static const char *source_msg(const struct ll_source *src, int32_t i)
{
	return src->rows + (size_t)(src->by_token ? src->list[i] : i) * src->stride;
}

/* Stores the scales of a source's rows, packed rows [begin, begin + n) of
 * expert e, column-major: float [e][b][pos], or UE8M0 words [e][w][pos].
 * Column by column: a column's n entries are adjacent, while one row's
 * columns lie R * N entries apart (4 KiB at 8 ranks x 128 tokens), so row
 * by row touched a line, and often a page, per scale. */
static void put_scales(struct ep_ll *ctx, int e, size_t begin, const struct ll_source *src)
{
	const struct ep_ll_config *c = &ctx->cfg;
	size_t RN = (size_t)c->num_ranks * c->max_tokens, S = (size_t)ep_ll_scale_cols(c), row = ep_ll_row_bytes(c);
	if (c->use_ue8m0) {
		uint32_t *dst = (uint32_t *)ctx->out.packed_recv_x_scales + (size_t)e * S * RN + begin;
		for (size_t k = 0; k < S; k++, dst += RN)
			for (int32_t i = 0; i < src->n; i++)
				ep_ue8m0_pack((const float *)(source_msg(src, i) + row) + 4 * k, 4, &dst[i]);
	} else {
		float *dst = (float *)ctx->out.packed_recv_x_scales + (size_t)e * S * RN + begin;
		for (size_t b = 0; b < S; b++, dst += RN)
			for (int32_t i = 0; i < src->n; i++)
				dst[i] = ((const float *)(source_msg(src, i) + row))[b];
	}
}

/* Copies source s's rows of local expert e to packed rows [begin, begin + n),
 * streamed when `stream` (stream_copy.h), then their scales (FP8). */
static void pull_rows(struct ep_ll *ctx, int e, int s, uint32_t call, int stream)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, N = c->max_tokens;
	size_t RN = (size_t)R * N, row = ep_ll_row_bytes(c);
	struct ll_source src = source_of(ctx, e, s, call);
	size_t begin = (size_t)((uint64_t)ctx->out.packed_recv_layout_range[(size_t)e * R + s] >> 32);
	char *dst = (char *)ctx->out.packed_recv_x + ((size_t)e * RN + begin) * row;
	int32_t *src_info = ctx->out.packed_recv_src_info + (size_t)e * RN + begin;
	for (int32_t i = 0; i < src.n; i++) {
		ep_copy_row(stream, dst + (size_t)i * row, source_msg(&src, i), row);
		src_info[i] = src.list[i];
	}
	if (c->dtype == EP_DTYPE_FP8)
		put_scales(ctx, e, begin, &src);
}

int ep_ll_dispatch_recv(struct ep_ll *ctx, struct ep_ll_dispatch_out *out)
{
	int R = ctx->cfg.num_ranks, L = ctx->cfg.num_experts / R, rc;
	if (!ctx->disp_pending)
		return -EINVAL;
	uint32_t call = ctx->disp_calls;
	ep_set_phase(ctx->waiter, "ll.dispatch.recv");
	if ((rc = wait_all(ctx, LL_SIG_DISP_SENT, call)) ||
	    (rc = ep_ll_net_wait(ctx, ctx->disp_target, &ctx->last_dispatch)))
		return rc;
	int32_t rows = 0;
	for (int e = 0; e < L; e++)
		rows += ctx->out.packed_recv_count[e] = layout_expert(ctx, e, call);
	int stream = ep_stream_worth((size_t)rows * ep_ll_row_bytes(&ctx->cfg), per_node(&ctx->cfg));
	for (int e = 0; e < L; e++)
		for (int s = 0; s < R; s++)
			pull_rows(ctx, e, s, call, stream);
	ep_copy_fence(stream);
	pulled_pairs(ctx, 1);
	ep_flag_add(ll_signal_of(ctx, ctx->local, LL_SIG_DISP_RECVD), 1); /* now call */
	ctx->disp_pending = 0;
	ctx->have_handle = 1;
	if (out)
		*out = ctx->out;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

int ep_ll_dispatch(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx, int num_tokens,
		   struct ep_ll_dispatch_out *out)
{
	int rc = ep_ll_dispatch_send(ctx, x, topk_idx, num_tokens);
	if (rc && rc != -EP_ENOSPC)
		return rc;
	int rc2 = ep_ll_dispatch_recv(ctx, out);
	return rc2 ? rc2 : rc;
}

/* Combine */

/* Reuse guard of the combine area: every rank of the node received the
 * last combine (remote ranks read copies, in their own areas). */
static int combine_guard(struct ep_ll *ctx)
{
	return ctx->comb_calls ? wait_all(ctx, LL_SIG_COMB_RECVD, ctx->comb_calls) : 0;
}

int ep_ll_combine_buffer(struct ep_ll *ctx, uint16_t **buf)
{
	if (ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.combine.buffer");
	int rc = combine_guard(ctx);
	ep_set_phase(ctx->waiter, "idle");
	if (rc)
		return rc;
	*buf = ll_combine_area(ctx, ctx->local);
	return 0;
}

/* Copies x's valid rows of every local expert into this rank's combine
 * area, leaving out those of its own tokens when `own` (ep_ll_combine
 * reads them from x). */
static void copy_combine_rows(struct ep_ll *ctx, const uint16_t *x, int own)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, L = c->num_experts / R;
	size_t RN = (size_t)R * c->max_tokens, H = (size_t)c->hidden, rows = 0, row = H * sizeof(uint16_t);
	for (int e = 0; e < L; e++)
		rows += (size_t)ctx->out.packed_recv_count[e];
	int stream = ep_stream_worth(rows * row, per_node(c));
	uint16_t *area = ll_combine_area(ctx, ctx->local);
	for (int e = 0; e < L; e++) { /* valid rows of an expert are contiguous */
		size_t n = (size_t)ctx->out.packed_recv_count[e], b = n, k = 0, at = (size_t)e * RN * H;
		if (own) { /* this rank's rows: [b, b + k), ordered by source */
			uint64_t range = (uint64_t)ctx->out.packed_recv_layout_range[(size_t)e * R + ctx->rank];
			b = (size_t)(range >> 32), k = (size_t)(uint32_t)range;
		}
		ep_copy_row(stream, area + at, x + at, b * row);
		ep_copy_row(stream, area + at + (b + k) * H, x + at + (b + k) * H, (n - b - k) * row);
	}
	ep_copy_fence(stream);
}

static int combine_send(struct ep_ll *ctx, const uint16_t *x, int own)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int rc;
	size_t H = (size_t)c->hidden;
	if (!ctx->have_handle || ctx->disp_pending || ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.combine.send");
	ep_ll_net_start(ctx, &ctx->last_combine);
	/* Zero copy writes nothing here: the caller's ep_ll_combine_buffer
	 * already waited for the readers of the area. */
	if (x && (rc = combine_guard(ctx)))
		return rc;
	uint32_t call = ++ctx->comb_calls;
	ctx->op_seq = ep_traffic_begin(ctx->waiter->traffic, ctx->rank, "ll.combine");
	if (x)
		copy_combine_rows(ctx, x, own);
	ctx->own_x = x && own ? x : NULL;
	publish_pairs(ctx, 0, 0, H * sizeof(uint16_t));
	ep_flag_add(ll_signal_of(ctx, ctx->local, LL_SIG_COMB_SENT), 1); /* now call */
	ctx->comb_pending = 1;
	if (ctx->net && (rc = ep_ll_net_send_combine(ctx, call)))
		return rc;
	publish_pairs(ctx, 0, 1, H * sizeof(uint16_t));
	ctx->comb_target = ctx->net_sends;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

int ep_ll_combine_send(struct ep_ll *ctx, const uint16_t *x)
{
	return combine_send(ctx, x, 0);
}

int ep_ll_combine_wait(struct ep_ll *ctx)
{
	if (!ctx->comb_pending)
		return -EINVAL;
	ep_set_phase(ctx->waiter, "ll.combine.wait");
	int rc = wait_all(ctx, LL_SIG_COMB_SENT, ctx->comb_calls);
	if (!rc)
		rc = ep_ll_net_wait(ctx, ctx->comb_target, &ctx->last_combine);
	ep_set_phase(ctx->waiter, "idle");
	return rc;
}

/* Where the output of global expert g for entry `slot` of its list lies:
 * the owner's combine area (same node) or this rank's copy (another node). */
static const uint16_t *expert_row(const struct ep_ll *ctx, int64_t g, int32_t slot)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int R = c->num_ranks, L = c->num_experts / R, o = (int)(g / L), e = (int)(g % L);
	size_t H = (size_t)c->hidden, RN = (size_t)R * c->max_tokens;
	if (!ll_is_local(ctx, o))
		return ep_ll_net_expert_row(ctx, g, slot);
	int l = o - ctx->node * c->ranks_per_node;
	const int32_t *begin = (const int32_t *)(ll_region(ctx, l) + ctx->off.src_begin);
	size_t pos = (size_t)begin[(size_t)ctx->rank * L + e] + (size_t)slot;
	const uint16_t *base = o == ctx->rank && ctx->own_x ? ctx->own_x : ll_combine_area(ctx, l);
	return base + ((size_t)e * RN + pos) * H;
}

/* out = bf16(fmaf over token t's slots in order), from +0.0f: gathers
 * where each slot's expert output lies, then reduces. */
static void reduce_token(struct ep_ll *ctx, int t, const int64_t *idx, const float *wt,
			 uint16_t *out)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int K = c->num_topk, n = 0;
	const int32_t *slot = ctx->slot + (size_t)t * K;
	for (int j = 0; j < K; j++) {
		if (slot[j] < 0 || idx[j] < 0 || idx[j] >= c->num_experts)
			continue; /* a -1 entry, or one dropped by an overflow */
		ctx->rows[n] = expert_row(ctx, idx[j], slot[j]);
		ctx->weights[n++] = wt[j];
	}
	ep_ll_reduce_rows(ctx->rows, ctx->weights, n, c->hidden, out);
}

int ep_ll_combine_recv(struct ep_ll *ctx, const int64_t *topk_idx, const float *topk_weights,
		       uint16_t *out)
{
	int K = ctx->cfg.num_topk, H = ctx->cfg.hidden, rc;
	if (!ctx->comb_pending)
		return -EINVAL;
	uint32_t call = ctx->comb_calls;
	ep_set_phase(ctx->waiter, "ll.combine.recv");
	if ((rc = wait_all(ctx, LL_SIG_COMB_SENT, call)) ||
	    (rc = ep_ll_net_wait(ctx, ctx->comb_target, &ctx->last_combine)))
		return rc;
	for (int t = 0; t < ctx->num_tokens; t++)
		reduce_token(ctx, t, topk_idx + (size_t)t * K, topk_weights + (size_t)t * K,
			     out + (size_t)t * H);
	pulled_pairs(ctx, 0);
	ep_flag_add(ll_signal_of(ctx, ctx->local, LL_SIG_COMB_RECVD), 1); /* now call */
	ctx->comb_pending = 0;
	ctx->own_x = NULL;
	ep_set_phase(ctx->waiter, "idle");
	return 0;
}

int ep_ll_combine(struct ep_ll *ctx, const uint16_t *x, const int64_t *topk_idx,
		  const float *topk_weights, uint16_t *out)
{
	int rc = combine_send(ctx, x, 1);
	return rc ? rc : ep_ll_combine_recv(ctx, topk_idx, topk_weights, out);
}
