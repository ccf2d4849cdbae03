/* ll_world.h - test worlds of low-latency ranks, shared by low_latency_test.c and low_latency_net_test.c.
 *
 * A world forks R rank processes over one shared mapping, per node its sync
 * blocks and arena (one node unless cfg.ranks_per_node < R), runs rounds of
 * dispatch and combine as the bench does (the expert step included), and
 * checks every rank's outputs with reference/low_latency_ref. Each rank
 * reports its wrong-element counts in shared memory; a case asserts on them,
 * so tampering cases can prove that a check fails. Across nodes the ranks of
 * different nodes are joined by the TCP transport over loopback (each rank
 * publishes its address on a shared board). Test code only: every function
 * here is used by both test files.
 */
#ifndef EP_TESTS_LL_WORLD_H
#define EP_TESTS_LL_WORLD_H

#include "tests/harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "collectives/error.h"
#include "collectives/low_latency.h"
#include "collectives/numeric.h"
#include "reference/low_latency_ref.h"
#include "reference/transform.h"

enum mode { PLAIN, HOOK, BACK_TO_BACK };

struct world {
	struct ep_ll_config cfg;
	int tokens, uneven;         /* T before uneven */
	struct ep_routing routing;
	uint64_t seed;
	int zero_copy;
	int rounds;
	enum mode mode;
	double timeout_s;
	/* optional tampering on one rank after its first dispatch */
	void (*tamper)(struct ep_ll *ctx, const struct ep_ll_ref *ref);
	int tamper_rank;
	int silent_rank;            /* this rank never calls (deadline cases), -1: none */
	/* between rounds, every rank fills its region with this byte (as
	 * normal mode writes over a shared arena) before ep_ll_clean; 0: no */
	int scribble;
	int keep_signals;           /* ... and the clean leaves the signal lines (a skipped clean) */
};

struct rank_out {
	int rc;
	uint64_t disp_wrong, comb_wrong;
	char first[256];
	char net_error[EP_TRANSPORT_ERROR_MAX];
};

/* Where the ranks of a multi-node world meet (shared, before fork). */
struct board {
	_Atomic int published;
	struct ep_transport_addr addr[64];
};

/* The expert step of the bench: dequantise each valid packed row and apply
 * ep_expert_transform under its own local expert. */
static void apply_experts(const struct ep_ll *ctx, enum ep_payload payload, const struct ep_ll_dispatch_out *o,
			  uint16_t *dst)
{
	const struct ep_ll_config *c = &ctx->cfg;
	int L = c->num_experts / c->num_ranks, H = c->hidden, S = ep_ll_scale_cols(c);
	size_t RN = (size_t)c->num_ranks * c->max_tokens, row = ep_ll_row_bytes(c);
	uint16_t deq[H];
	float sc[H / 128 + 1];
	for (int e = 0; e < L; e++)
		for (size_t p = 0; p < (size_t)o->packed_recv_count[e]; p++) {
			const char *src = (const char *)o->packed_recv_x + ((size_t)e * RN + p) * row;
			if (c->dtype == EP_DTYPE_FP8) {
				for (int b = 0; b < H / 128; b++)
					sc[b] = c->use_ue8m0
						? ep_ue8m0_to_f32((uint8_t)(((const uint32_t *)o->packed_recv_x_scales)
							[((size_t)e * S + (size_t)b / 4) * RN + p] >> (8 * (b % 4))))
						: ((const float *)o->packed_recv_x_scales)[((size_t)e * S + (size_t)b) * RN + p];
				ep_fp8_dequant_row((const uint8_t *)src, sc, (size_t)H, deq);
				src = (const char *)deq;
			}
			ep_expert_transform(payload, ctx->rank, e, (const uint16_t *)src, H, dst + ((size_t)e * RN + p) * H);
		}
}

static int do_dispatch(struct ep_ll *ctx, enum mode m, const uint16_t *x, const int64_t *idx, int T,
		       struct ep_ll_dispatch_out *out)
{
	if (m != HOOK)
		return ep_ll_dispatch(ctx, x, idx, T, out);
	int rc = ep_ll_dispatch_send(ctx, x, idx, T);
	if (!rc)
		rc = ep_ll_dispatch_wait(ctx);
	return rc ? rc : ep_ll_dispatch_recv(ctx, out);
}

static int do_combine(struct ep_ll *ctx, enum mode m, const uint16_t *x, const int64_t *idx,
		      const float *w, uint16_t *out)
{
	if (m != HOOK)
		return ep_ll_combine(ctx, x, idx, w, out);
	int rc = ep_ll_combine_send(ctx, x);
	if (!rc)
		rc = ep_ll_combine_wait(ctx);
	return rc ? rc : ep_ll_combine_recv(ctx, idx, w, out);
}

static void note(struct rank_out *o, const struct ep_check_report *rep)
{
	if (rep->has_first && !o->first[0])
		ep_mismatch_format(&rep->first, o->first, sizeof(o->first));
}

/* One round: dispatch (twice when BACK_TO_BACK), check, experts, combine
 * (twice likewise), check. Returns 0 or the first error. */
static int round_trip(const struct world *w, struct ep_ll *ctx, struct ep_ll_ref *ref,
		      const uint16_t *x, uint16_t *expert_out, uint16_t *combined, int first,
		      struct rank_out *o)
{
	int me = ctx->rank, T = ep_ll_ref_tokens(ref, me), rc;
	const int64_t *idx = ep_ll_ref_topk_idx(ref, me);
	const float *wt = ep_ll_ref_topk_weights(ref, me);
	struct ep_ll_dispatch_out out;
	for (int k = 0; k < (w->mode == BACK_TO_BACK ? 2 : 1); k++)
		if ((rc = do_dispatch(ctx, w->mode, x, idx, T, &out)))
			return rc;
	if (first && w->tamper && me == w->tamper_rank)
		w->tamper(ctx, ref);
	struct ep_check_report rep;
	ep_report_init(&rep, w->cfg.num_ranks, NULL);
	ep_ll_ref_check_dispatch(ref, &out, &rep);
	o->disp_wrong += rep.wrong_elems;
	note(o, &rep);
	uint16_t *dst = expert_out;
	if (w->zero_copy && (rc = ep_ll_combine_buffer(ctx, &dst)))
		return rc;
	apply_experts(ctx, ref->payload, &out, dst);
	for (int k = 0; k < (w->mode == BACK_TO_BACK ? 2 : 1); k++)
		if ((rc = do_combine(ctx, w->mode, w->zero_copy ? NULL : expert_out, idx, wt, combined)))
			return rc;
	ep_report_init(&rep, w->cfg.num_ranks, NULL);
	ep_ll_ref_check_combine(ref, combined, &rep);
	o->comb_wrong += rep.wrong_elems;
	note(o, &rep);
	return 0;
}

static int ranks_per_node(const struct world *w)
{
	return w->cfg.ranks_per_node ? w->cfg.ranks_per_node : w->cfg.num_ranks;
}

/* Across nodes: once every rank's address is on the board, connects this
 * rank's endpoint to the ranks of the other nodes. */
static int join(const struct world *w, struct ep_ll *ctx, struct ep_transport *net, struct board *b)
{
	int R = w->cfg.num_ranks, peers[64];
	atomic_fetch_add(&b->published, 1);
	for (int i = 0; atomic_load(&b->published) < R; i++) {
		if (i > 20000)
			return -EP_ETIMEDOUT;
		usleep(1000);
	}
	int n = ep_ll_peers(ctx, peers);
	EP_ASSERT_INT_EQ(n, R - ranks_per_node(w));
	return ep_transport_connect(net, peers, n, b->addr);
}

static int rank_body(const struct world *w, struct ep_sync *sync, void *arena, int me,
		     struct rank_out *o, struct board *b)
{
	const struct ep_ll_config *c = &w->cfg;
	struct ep_waiter wt;
	struct ep_ll ctx;
	struct ep_ll_ref ref;
	struct ep_transport net = {0};
	double timeout = w->timeout_s > 0 ? w->timeout_s : 20;
	ep_waiter_init(&wt, sync, me % ranks_per_node(w), timeout, -1);
	if (me == w->silent_rank)
		return 0;
	int rc = ep_ll_ref_init(&ref, c, w->tokens, &w->routing, w->seed, w->uneven, me);
	if (rc)
		return rc;
	int T = ep_ll_ref_tokens(&ref, me);
	size_t H = (size_t)c->hidden, RN = (size_t)c->num_ranks * c->max_tokens;
	uint16_t *x = calloc((size_t)T * H + 1, 2);
	uint16_t *combined = calloc((size_t)T * H + 1, 2);
	uint16_t *expert_out = calloc((size_t)c->num_experts / c->num_ranks * RN * H + 1, 2);
	if (!x || !combined || !expert_out)
		return -ENOMEM;
	for (int t = 0; t < T; t++)
		ep_gen_bf16_row(w->seed, &w->routing, EP_STREAM_X, me, t, c->hidden, x + (size_t)t * H);
	if (b) {
		struct ep_transport_cfg tc = {.rank = me, .num_ranks = c->num_ranks,
					      .ranks_per_node = ranks_per_node(w), .host = "127.0.0.1",
					      .timeout_s = timeout, .job_id = 77};
		if ((rc = ep_transport_init(&net, &ep_transport_tcp, &tc, &b->addr[me])))
			return rc;
	}
	if ((rc = ep_ll_init(&ctx, c, me, arena, &wt, b ? &net : NULL)) ||
	    (b && (rc = join(w, &ctx, &net, b)))) {
		snprintf(o->net_error, sizeof(o->net_error), "%s", net.error);
		return rc;
	}
	for (int r = 0; r < (w->rounds ? w->rounds : 1) && !rc; r++) {
		if (r > 0 && w->scribble && !(rc = ep_barrier(&wt))) {
			memset(ctx.arena + (size_t)ctx.local * ctx.rank_bytes, w->scribble, ctx.rank_bytes);
			rc = ep_ll_clean(&ctx, w->keep_signals);
		}
		if (!rc)
			rc = round_trip(w, &ctx, &ref, x, expert_out, combined, r == 0, o);
	}
	if (b) {
		snprintf(o->net_error, sizeof(o->net_error), "%s", net.error);
		ep_transport_fini(&net);
	}
	ep_ll_fini(&ctx);
	ep_ll_ref_fini(&ref);
	free(x);
	free(combined);
	free(expert_out);
	return rc;
}

/* Forks the ranks of w over one fresh mapping (per node: sync blocks and
 * arena); fills outs[R]. Returns 0 when every rank process exited normally. */
static int run_world(const struct world *w, struct rank_out *outs)
{
	int R = w->cfg.num_ranks, P = ranks_per_node(w), nodes = R / P;
	size_t out_bytes = (sizeof(struct rank_out) * (size_t)R + sizeof(struct board) + 4095) / 4096 * 4096;
	size_t sync_bytes = (ep_sync_bytes(P) + 4095) / 4096 * 4096;
	size_t node_bytes = sync_bytes + ep_ll_arena_bytes(&w->cfg);
	size_t total = out_bytes + (size_t)nodes * node_bytes;
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	struct rank_out *shared = (struct rank_out *)base;
	struct board *board = (struct board *)(shared + R);
	for (int n = 0; n < nodes; n++)
		ep_sync_init((struct ep_sync *)(base + out_bytes + (size_t)n * node_bytes), P);
	pid_t pids[R];
	for (int r = 0; r < R; r++) {
		pids[r] = fork();
		EP_ASSERT(pids[r] >= 0);
		if (pids[r] == 0) {
			char *node = base + out_bytes + (size_t)(r / P) * node_bytes;
			shared[r].rc = rank_body(w, (struct ep_sync *)node, node + sync_bytes, r, &shared[r],
						 nodes > 1 ? board : NULL);
			_exit(0);
		}
	}
	int ok = 1;
	for (int r = 0; r < R; r++) {
		int st;
		while (waitpid(pids[r], &st, 0) < 0)
			;
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	memcpy(outs, shared, sizeof(struct rank_out) * (size_t)R);
	munmap(base, total);
	return ok ? 0 : -1;
}

static struct world small_world(int R, enum ep_dtype d)
{
	return (struct world){
		.cfg = {.num_ranks = R, .hidden = d == EP_DTYPE_FP8 ? 512 : 256, .num_topk = 3,
			.num_experts = 4 * R, .max_tokens = 16, .dtype = d},
		.tokens = 11, .seed = 7, .rounds = 1, .silent_rank = -1, .tamper_rank = -1,
	};
}

/* Runs w and asserts that every rank passed with no wrong byte. */
static void expect_clean(const struct world *w)
{
	struct rank_out outs[w->cfg.num_ranks];
	EP_ASSERT_INT_EQ(run_world(w, outs), 0);
	for (int r = 0; r < w->cfg.num_ranks; r++) {
		if (outs[r].rc || outs[r].disp_wrong || outs[r].comb_wrong)
			EP_FAIL("rank %d: rc %s, %llu dispatch / %llu combine wrong; first: %s; transport: %s", r,
				ep_strerror(outs[r].rc), (unsigned long long)outs[r].disp_wrong,
				(unsigned long long)outs[r].comb_wrong, outs[r].first, outs[r].net_error);
	}
}

/* Row p of local expert e in the packed [L][R*N] layout. */
static size_t packed_at(const struct ep_ll *ctx, int e, int p)
{
	return (size_t)e * ctx->cfg.num_ranks * ctx->cfg.max_tokens + (size_t)p;
}

#endif
