/* low_latency_test.c - unit tests of collectives/low_latency against reference/.
 *
 * Multi-process cases fork R rank processes over one shared mapping (sync
 * blocks + the collective's arena), run dispatch and combine as the bench
 * does (the expert step included), and check every rank's outputs with
 * reference/low_latency_ref. Each rank reports its wrong-element counts in
 * shared memory; the case then asserts on them, so tampering cases can
 * prove that a check fails.
 */
#include "tests/harness.h"

#include <errno.h>
#include <sys/mman.h>

#include "collectives/error.h"
#include "collectives/low_latency.h"
#include "collectives/numeric.h"
#include "reference/low_latency_ref.h"
#include "reference/transform.h"

/* The sender's cast is bit for bit numeric.h's */

static void expect_same_cast(const uint16_t *x, size_t hidden, int round_scale)
{
	uint8_t q1[hidden], q2[hidden];
	float s1[hidden / 128], s2[hidden / 128];
	ep_fp8_cast_row(x, hidden, round_scale, q1, s1);
	ep_ll_fp8_cast_row(x, hidden, round_scale, q2, s2);
	for (size_t b = 0; b < hidden / 128; b++)
		EP_ASSERT_FLOAT_BITS_EQ(s2[b], s1[b]);
	for (size_t i = 0; i < hidden; i++)
		if (q1[i] != q2[i])
			EP_FAIL("element %zu: x 0x%04x scale_inv %a: 0x%02x != 0x%02x", i, x[i],
				(double)s1[i / 128], q2[i], q1[i]);
}

EP_TEST(cast_row_matches_numeric_on_every_bf16)
{
	/* all 65536 patterns in blocks of similar magnitude (NaN, inf, zeros, subnormals) */
	uint16_t x[128];
	for (int rs = 0; rs < 2; rs++)
		for (uint32_t base = 0; base < 65536; base += 128) {
			for (int i = 0; i < 128; i++)
				x[i] = (uint16_t)(base + (uint32_t)i);
			expect_same_cast(x, 128, rs);
		}
}

EP_TEST(cast_row_matches_numeric_under_every_scale)
{
	/* every pattern next to a block maximum M: small values land in the E4M3
	 * subnormal range, ties and the saturation edge are crossed */
	static const uint16_t maxima[] = {0x3f80, 0x4000, 0x43e0, 0x3c00, 0x0400, 0x7f00, 0x4b3f, 0x3f81};
	uint16_t x[128];
	for (int rs = 0; rs < 2; rs++)
		for (size_t m = 0; m < sizeof(maxima) / sizeof(maxima[0]); m++)
			for (uint32_t p = 0; p < 65536; p += 127) {
				x[0] = maxima[m];
				for (int i = 1; i < 128; i++)
					x[i] = (uint16_t)(p + (uint32_t)i - 1);
				expect_same_cast(x, 128, rs);
			}
}

EP_TEST(cast_row_matches_numeric_on_random_rows)
{
	uint16_t x[1024];
	uint64_t h = 1;
	for (int r = 0; r < 2000; r++) {
		for (int i = 0; i < 1024; i++) {
			h = ep_mix64(h + 0x9e3779b97f4a7c15ULL);
			/* mostly finite values of moderate range, some raw patterns */
			x[i] = (h & 7) ? (uint16_t)((h >> 8 & 0x8000) | ((110 + (h >> 16) % 30) << 7) | (h >> 24 & 0x7f))
				       : (uint16_t)(h >> 32);
		}
		expect_same_cast(x, 1024, r & 1);
	}
}

/* Configuration checks and sizes */

EP_TEST(config_check_rejects_what_deepep_rejects)
{
	struct ep_ll_config ok = {.num_ranks = 4, .hidden = 512, .num_topk = 4, .num_experts = 16,
				  .max_tokens = 8, .dtype = EP_DTYPE_FP8, .round_scale = 1, .use_ue8m0 = 1};
	EP_ASSERT_INT_EQ(ep_ll_config_check(&ok), 0);
	struct ep_ll_config c = ok;
	c.num_experts = 18;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	c = ok, c.round_scale = 0;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	c = ok, c.hidden = 384;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	c = ok, c.use_ue8m0 = 0, c.hidden = 200;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	c = ok, c.dtype = EP_DTYPE_BF16;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	c = ok, c.dtype = EP_DTYPE_INT8, c.round_scale = c.use_ue8m0 = 0;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	c = ok, c.max_tokens = 0;
	EP_ASSERT_INT_EQ(ep_ll_config_check(&c), -EINVAL);
	EP_ASSERT_INT_EQ(ep_ll_arena_bytes(&c), 0);
	EP_ASSERT_INT_EQ(ep_ll_scale_cols(&ok), 1);
	ok.use_ue8m0 = 0;
	EP_ASSERT_INT_EQ(ep_ll_scale_cols(&ok), 4);
}

EP_TEST(arena_follows_the_layout)
{
	/* DeepEP's test shape: the combine area and the packed outputs dominate */
	struct ep_ll_config c = {.num_ranks = 8, .hidden = 7168, .num_topk = 8, .num_experts = 288,
				 .max_tokens = 128, .dtype = EP_DTYPE_BF16};
	size_t bf16 = ep_ll_arena_bytes(&c);
	size_t packed = (size_t)288 * 128 * 7168 * 2; /* [L][R*N][H] bf16, per rank */
	EP_ASSERT(bf16 > 8 * 2 * packed && bf16 < 8 * 2 * packed + 8 * (size_t)(8 << 20));
	c.dtype = EP_DTYPE_FP8;
	size_t fp8 = ep_ll_arena_bytes(&c);
	EP_ASSERT(fp8 > 8 * (packed + packed / 2) && fp8 < bf16);
	c.max_tokens = 256;
	EP_ASSERT(ep_ll_arena_bytes(&c) > 2 * fp8 - 8 * (size_t)(8 << 20));
}

/* Multi-process worlds */

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
};

struct rank_out {
	int rc;
	uint64_t disp_wrong, comb_wrong;
	char first[256];
};

/* The expert step of the bench: dequantise each valid packed row and apply
 * ep_expert_transform under its own local expert. */
static void apply_experts(const struct ep_ll *ctx, const struct ep_ll_dispatch_out *o, uint16_t *dst)
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
			ep_expert_transform(ctx->rank, e, (const uint16_t *)src, H, dst + ((size_t)e * RN + p) * H);
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
	apply_experts(ctx, &out, dst);
	for (int k = 0; k < (w->mode == BACK_TO_BACK ? 2 : 1); k++)
		if ((rc = do_combine(ctx, w->mode, w->zero_copy ? NULL : expert_out, idx, wt, combined)))
			return rc;
	ep_report_init(&rep, w->cfg.num_ranks, NULL);
	ep_ll_ref_check_combine(ref, combined, &rep);
	o->comb_wrong += rep.wrong_elems;
	note(o, &rep);
	return 0;
}

static int rank_body(const struct world *w, struct ep_sync *sync, void *arena, int me,
		     struct rank_out *o)
{
	const struct ep_ll_config *c = &w->cfg;
	struct ep_waiter wt;
	struct ep_ll ctx;
	struct ep_ll_ref ref;
	ep_waiter_init(&wt, sync, me, w->timeout_s > 0 ? w->timeout_s : 20, -1);
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
		ep_gen_bf16_row(w->seed, EP_STREAM_X, me, t, c->hidden, x + (size_t)t * H);
	if ((rc = ep_ll_init(&ctx, c, me, arena, &wt)))
		return rc;
	for (int r = 0; r < (w->rounds ? w->rounds : 1) && !rc; r++)
		rc = round_trip(w, &ctx, &ref, x, expert_out, combined, r == 0, o);
	ep_ll_fini(&ctx);
	ep_ll_ref_fini(&ref);
	free(x);
	free(combined);
	free(expert_out);
	return rc;
}

/* Forks the ranks of w over one fresh mapping; fills outs[R]. Returns 0
 * when every rank process exited normally. */
static int run_world(const struct world *w, struct rank_out *outs)
{
	int R = w->cfg.num_ranks;
	size_t sync_bytes = (ep_sync_bytes(R) + 4095) / 4096 * 4096;
	size_t out_bytes = (sizeof(struct rank_out) * (size_t)R + 4095) / 4096 * 4096;
	size_t total = sync_bytes + out_bytes + ep_ll_arena_bytes(&w->cfg);
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	struct ep_sync *sync = (struct ep_sync *)base;
	struct rank_out *shared = (struct rank_out *)(base + sync_bytes);
	ep_sync_init(sync, R);
	pid_t pids[R];
	for (int r = 0; r < R; r++) {
		pids[r] = fork();
		EP_ASSERT(pids[r] >= 0);
		if (pids[r] == 0) {
			shared[r].rc = rank_body(w, sync, base + sync_bytes + out_bytes, r, &shared[r]);
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
			EP_FAIL("rank %d: rc %s, %llu dispatch / %llu combine wrong; first: %s", r,
				ep_strerror(outs[r].rc), (unsigned long long)outs[r].disp_wrong,
				(unsigned long long)outs[r].comb_wrong, outs[r].first);
	}
}

EP_TEST(one_rank_bf16)
{
	struct world w = small_world(1, EP_DTYPE_BF16);
	expect_clean(&w);
}

EP_TEST(two_ranks_bf16_tokens_below_n)
{
	struct world w = small_world(2, EP_DTYPE_BF16);
	w.tokens = 5; /* N = 16 */
	expect_clean(&w);
}

EP_TEST(four_ranks_fp8)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	expect_clean(&w);
}

EP_TEST(four_ranks_fp8_round_scale)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	w.cfg.round_scale = 1;
	expect_clean(&w);
}

EP_TEST(three_ranks_fp8_ue8m0_zero_copy)
{
	struct world w = small_world(3, EP_DTYPE_FP8);
	w.cfg.round_scale = w.cfg.use_ue8m0 = 1;
	w.cfg.hidden = 1024;
	w.zero_copy = 1;
	expect_clean(&w);
}

EP_TEST(eight_ranks_uneven_tokens)
{
	struct world w = small_world(8, EP_DTYPE_BF16);
	w.uneven = 1;
	w.tokens = 16;
	expect_clean(&w);
}

EP_TEST(zero_tokens)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	w.tokens = 0;
	expect_clean(&w);
}

EP_TEST(every_entry_masked)
{
	struct world w = small_world(4, EP_DTYPE_BF16);
	w.routing.masked_ratio = 1.0;
	expect_clean(&w);
}

EP_TEST(one_hot_expert_fills_its_slots)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	w.routing.kind = EP_ROUTE_HOT;
	w.routing.hot_expert = 5;
	w.tokens = 16; /* = N: expert 5 receives R*N rows, its buffer's capacity */
	w.routing.masked_ratio = 0.2;
	expect_clean(&w);
}

EP_TEST(repeated_rounds_toggle_buffers)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	w.rounds = 5;
	expect_clean(&w);
}

EP_TEST(hook_split_phases)
{
	struct world w = small_world(4, EP_DTYPE_BF16);
	w.mode = HOOK;
	w.rounds = 3;
	expect_clean(&w);
}

EP_TEST(back_to_back_dispatches_and_combines)
{
	struct world w = small_world(4, EP_DTYPE_BF16);
	w.mode = BACK_TO_BACK;
	w.rounds = 3;
	w.zero_copy = 1;
	expect_clean(&w);
}

EP_TEST(more_ranks_than_cores)
{
	struct world w = small_world(12, EP_DTYPE_BF16);
	w.tokens = 6;
	w.rounds = 2;
	expect_clean(&w);
}

/* Combine's arithmetic: fused multiply-adds in top-k slot order. Random
 * inputs rarely tell orders apart after the final BF16 rounding, so these
 * values are built to: token 0 gets 2^24, 1, -2^24 in slot order (0 in that
 * order, 1 in expert or reverse order); token 1 gets
 * -(1 + 2^-7) (1 + 2^-23) then +(1 + 2^-7) (1 + 2^-23), which leaves
 * exactly 2^-30 when the second product is fused (0 when rounded first). */
static uint16_t crafted_y(int expert, int token)
{
	static const uint16_t y[3][2] = {{0x3f80, 0xbf81}, {0xcb80, 0x3f81}, {0x4b80, 0}};
	return y[expert][token];
}

EP_TEST(combine_fuses_in_slot_order)
{
	struct ep_ll_config c = {.num_ranks = 1, .hidden = 128, .num_topk = 3, .num_experts = 3,
				 .max_tokens = 2, .dtype = EP_DTYPE_BF16};
	size_t total = 4096 + ep_ll_arena_bytes(&c);
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)base, 1);
	struct ep_waiter wt;
	ep_waiter_init(&wt, (struct ep_sync *)base, 0, 1, -1);
	struct ep_ll ctx;
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 0, base + 4096, &wt), 0);
	int64_t idx[6] = {2, 0, 1, 0, 1, -1};
	float w1 = ep_f32_from_bits(0x3f800001); /* 1 + 2^-23 */
	float wts[6] = {1, 1, 1, w1, w1, 5};
	uint16_t x[2 * 128] = {0}, out[2 * 128], *buf;
	struct ep_ll_dispatch_out o;
	EP_ASSERT_INT_EQ(ep_ll_dispatch(&ctx, x, idx, 2, &o), 0);
	EP_ASSERT_INT_EQ(ep_ll_combine_buffer(&ctx, &buf), 0);
	for (int e = 0; e < 3; e++)
		for (int p = 0; p < o.packed_recv_count[e]; p++)
			for (int i = 0; i < 128; i++)
				buf[((size_t)e * 2 + (size_t)p) * 128 + (size_t)i] =
					crafted_y(e, o.packed_recv_src_info[e * 2 + p]);
	EP_ASSERT_INT_EQ(ep_ll_combine(&ctx, NULL, idx, wts, out), 0);
	for (int i = 0; i < 128; i++) {
		EP_ASSERT_UINT_EQ(out[i], 0x0000);
		EP_ASSERT_UINT_EQ(out[128 + i], 0x3080); /* bf16(2^-30) */
	}
	ep_ll_fini(&ctx);
}

/* The checks catch what they must */

static size_t packed_at(const struct ep_ll *ctx, int e, int p)
{
	return (size_t)e * ctx->cfg.num_ranks * ctx->cfg.max_tokens + (size_t)p;
}

/* Swaps row 0 of local experts 0 and 1, with its scales and src_info, as
 * a receiver that filed a row under the wrong expert would. */
static void swap_expert_rows(struct ep_ll *ctx, const struct ep_ll_ref *ref)
{
	(void)ref;
	const struct ep_ll_dispatch_out *o = &ctx->out;
	size_t row = ep_ll_row_bytes(&ctx->cfg), a = packed_at(ctx, 0, 0), b = packed_at(ctx, 1, 0);
	EP_ASSERT(o->packed_recv_count[0] > 0 && o->packed_recv_count[1] > 0);
	char tmp[row];
	char *x = o->packed_recv_x;
	memcpy(tmp, x + a * row, row);
	memcpy(x + a * row, x + b * row, row);
	memcpy(x + b * row, tmp, row);
	int32_t s = o->packed_recv_src_info[a];
	o->packed_recv_src_info[a] = o->packed_recv_src_info[b];
	o->packed_recv_src_info[b] = s;
}

EP_TEST(swapped_expert_rows_are_caught)
{
	struct world w = small_world(4, EP_DTYPE_BF16);
	w.tokens = 16;
	w.tamper = swap_expert_rows;
	w.tamper_rank = 2;
	struct rank_out outs[4];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	uint64_t comb = 0;
	for (int r = 0; r < 4; r++) {
		EP_ASSERT_INT_EQ(outs[r].rc, 0);
		EP_ASSERT(r == 2 ? outs[r].disp_wrong > 0 : outs[r].disp_wrong == 0);
		comb += outs[r].comb_wrong;
	}
	EP_ASSERT(strstr(outs[2].first, "packed_recv_x[0][0]") != NULL);
	EP_ASSERT(comb > 0); /* the tokens' owners get the wrong expert's output */
}

static void flip_one_bit(struct ep_ll *ctx, const struct ep_ll_ref *ref)
{
	(void)ref;
	EP_ASSERT(ctx->out.packed_recv_count[1] > 1);
	((uint8_t *)ctx->out.packed_recv_x)[packed_at(ctx, 1, 1) * ep_ll_row_bytes(&ctx->cfg) + 100] ^= 1;
}

EP_TEST(corrupted_byte_is_named)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	w.tokens = 16;
	w.tamper = flip_one_bit;
	w.tamper_rank = 1;
	struct rank_out outs[4];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	EP_ASSERT_INT_EQ(outs[1].disp_wrong, 1);
	char want[64];
	snprintf(want, sizeof(want), "packed_recv_x[1][1][100]: expected");
	if (!strstr(outs[1].first, want) || !strstr(outs[1].first, "(row from rank"))
		EP_FAIL("first mismatch \"%s\" does not name %s and the source", outs[1].first, want);
	for (int r = 0; r < 4; r++)
		EP_ASSERT_INT_EQ(outs[r].disp_wrong, r == 1 ? 1 : 0);
}

/* Failures end in errors, not hangs */

EP_TEST(silent_peer_times_out)
{
	struct world w = small_world(3, EP_DTYPE_BF16);
	w.silent_rank = 1;
	w.timeout_s = 0.3;
	struct rank_out outs[3];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	EP_ASSERT_INT_EQ(outs[0].rc, -EP_ETIMEDOUT);
	EP_ASSERT_INT_EQ(outs[2].rc, -EP_ETIMEDOUT);
}

static int overflow_rank(struct ep_sync *sync, void *arena, const struct ep_ll_config *c, int me)
{
	struct ep_waiter wt;
	struct ep_ll ctx;
	ep_waiter_init(&wt, sync, me, 5, -1);
	int rc = ep_ll_init(&ctx, c, me, arena, &wt);
	if (rc)
		return rc;
	/* N = 2 tokens, each naming expert 0 twice: 4 messages for 2 slots */
	int64_t idx[4] = {0, 0, 0, 0};
	uint16_t x[2 * 256] = {0};
	struct ep_ll_dispatch_out out;
	rc = ep_ll_dispatch(&ctx, x, idx, 2, &out);
	int32_t n = ctx.out.packed_recv_count[0];
	ep_ll_fini(&ctx);
	return rc == -EP_ENOSPC && (me != 0 || n == 2 * 2) ? 0 : -1;
}

EP_TEST(list_overflow_is_an_error_not_a_hang)
{
	struct ep_ll_config c = {.num_ranks = 2, .hidden = 256, .num_topk = 2, .num_experts = 2,
				 .max_tokens = 2, .dtype = EP_DTYPE_BF16};
	size_t total = 4096 + ep_ll_arena_bytes(&c);
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)base, 2);
	pid_t pids[2];
	for (int r = 0; r < 2; r++)
		if ((pids[r] = fork()) == 0)
			_exit(overflow_rank((struct ep_sync *)base, base + 4096, &c, r) ? 1 : 0);
	for (int r = 0; r < 2; r++) {
		int st;
		while (waitpid(pids[r], &st, 0) < 0)
			;
		EP_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

EP_TEST(calls_out_of_order_are_refused)
{
	struct ep_ll_config c = {.num_ranks = 1, .hidden = 256, .num_topk = 1, .num_experts = 2,
				 .max_tokens = 4, .dtype = EP_DTYPE_BF16};
	size_t total = 4096 + ep_ll_arena_bytes(&c);
	char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EP_ASSERT(base != MAP_FAILED);
	ep_sync_init((struct ep_sync *)base, 1);
	struct ep_waiter wt;
	ep_waiter_init(&wt, (struct ep_sync *)base, 0, 1, -1);
	struct ep_ll ctx;
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 0, base + 4096, &wt), 0);
	uint16_t x[5 * 256] = {0}, out[5 * 256];
	int64_t idx[5] = {0, 1, -1, 1, 0};
	float wts[5] = {1, 1, 1, 1, 1};
	struct ep_ll_dispatch_out o;
	EP_ASSERT_INT_EQ(ep_ll_combine(&ctx, x, idx, wts, out), -EINVAL);  /* no dispatch yet */
	EP_ASSERT_INT_EQ(ep_ll_dispatch_recv(&ctx, &o), -EINVAL);          /* nothing sent */
	EP_ASSERT_INT_EQ(ep_ll_dispatch_send(&ctx, x, idx, 5), -EINVAL);   /* T > N */
	EP_ASSERT_INT_EQ(ep_ll_dispatch_send(&ctx, x, idx, 4), 0);
	EP_ASSERT_INT_EQ(ep_ll_dispatch_send(&ctx, x, idx, 4), -EINVAL);   /* recv first */
	EP_ASSERT_INT_EQ(ep_ll_combine_send(&ctx, x), -EINVAL);            /* likewise */
	EP_ASSERT_INT_EQ(ep_ll_dispatch_recv(&ctx, &o), 0);
	/* tokens 0..3 chose experts 0, 1, -1, 1 */
	EP_ASSERT_INT_EQ(o.packed_recv_count[0], 1);
	EP_ASSERT_INT_EQ(o.packed_recv_count[1], 2);
	EP_ASSERT_INT_EQ(o.packed_recv_layout_range[1], 2); /* begin 0, count 2 */
	EP_ASSERT_INT_EQ(o.packed_recv_src_info[4 + 0], 1);
	EP_ASSERT_INT_EQ(o.packed_recv_src_info[4 + 1], 3);
	EP_ASSERT_INT_EQ(ep_ll_combine_send(&ctx, NULL), 0);
	uint16_t *buf;
	EP_ASSERT_INT_EQ(ep_ll_combine_buffer(&ctx, &buf), -EINVAL);       /* a combine is pending */
	EP_ASSERT_INT_EQ(ep_ll_combine_recv(&ctx, idx, wts, out), 0);
	EP_ASSERT_INT_EQ(ep_ll_combine_recv(&ctx, idx, wts, out), -EINVAL);
	ep_ll_fini(&ctx);
	ep_ll_fini(&ctx); /* twice is fine */
}

EP_TEST_MAIN()
