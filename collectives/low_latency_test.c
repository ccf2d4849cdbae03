/* low_latency_test.c - unit tests of collectives/low_latency against reference/.
 *
 * Multi-process cases fork R rank processes over one shared mapping (sync
 * blocks + the collective's arena), run dispatch and combine as the bench
 * does (the expert step included), and check every rank's outputs with
 * reference/low_latency_ref (the worlds of tests/ll_world.h).
 * Each rank reports its wrong-element counts in shared memory; the case
 * then asserts on them, so tampering cases can prove that a check fails.
 * The same across nodes is in low_latency_net_test.c.
 */
#include "tests/harness.h"

#include <errno.h>
#include <sys/mman.h>

#include "collectives/error.h"
#include <math.h>

#include "collectives/low_latency.h"
#include "collectives/low_latency_kernels.h"
#include "tests/ll_world.h"
#include "collectives/numeric.h"
#include "reference/low_latency_ref.h"
#include "tests/simd_levels.h"

/* The sender's cast is bit for bit numeric.h's */

static void expect_same_cast(enum ep_simd level, const uint16_t *x, size_t hidden, int round_scale)
{
	uint8_t q1[hidden], q2[hidden];
	float s1[hidden / 128], s2[hidden / 128];
	ep_fp8_cast_row(x, hidden, round_scale, q1, s1);
	ep_ll_fp8_cast_row_at(level, x, hidden, round_scale, q2, s2);
	for (size_t b = 0; b < hidden / 128; b++)
		EP_ASSERT_FLOAT_BITS_EQ(s2[b], s1[b]);
	for (size_t i = 0; i < hidden; i++)
		if (q1[i] != q2[i])
			EP_FAIL("%s element %zu: x 0x%04x scale_inv %a: 0x%02x != 0x%02x", ep_simd_name(level), i, x[i],
				(double)s1[i / 128], q2[i], q1[i]);
}

EP_TEST_EACH_LEVEL(cast_row_matches_numeric_on_every_bf16)
{
	/* all 65536 patterns in blocks of similar magnitude (NaN, inf, zeros, subnormals) */
	uint16_t x[128];
	for (int rs = 0; rs < 2; rs++)
		for (uint32_t base = 0; base < 65536; base += 128) {
			for (int i = 0; i < 128; i++)
				x[i] = (uint16_t)(base + (uint32_t)i);
			expect_same_cast(level, x, 128, rs);
		}
}

EP_TEST_EACH_LEVEL(cast_row_matches_numeric_under_every_scale)
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
				expect_same_cast(level, x, 128, rs);
			}
}

EP_TEST_EACH_LEVEL(cast_row_matches_numeric_on_random_rows)
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
		expect_same_cast(level, x, 1024, r & 1);
	}
}

/* The encoder on every float that rounds: every mantissa of the binades
 * 2^-12 .. 2^9 (below 2^-10 all is zero, from 448 all saturates; the
 * subnormal steps, every tie, the normal/subnormal edge at 2^-6 and the
 * saturation edge at 448 lie inside), negatives at a stride (the sign is an
 * OR), then every binade outside at a stride, infinities, NaNs and a few
 * pinned patterns. Under a sanitizer the dense run is a sample. */
static void expect_e4m3_run(enum ep_simd level, uint32_t first, uint32_t count, uint32_t stride)
{
	enum { CHUNK = 4096 };
	static float in[CHUNK];
	static uint8_t out[CHUNK];
	for (uint32_t done = 0; done < count;) {
		uint32_t n = count - done < CHUNK ? count - done : CHUNK;
		for (uint32_t i = 0; i < n; i++)
			in[i] = ep_f32_from_bits(first + (done + i) * stride);
		ep_ll_e4m3_at(level, in, out, n);
		for (uint32_t i = 0; i < n; i++)
			if (out[i] != ep_f32_to_e4m3(in[i]))
				EP_FAIL("%s: 0x%08x (%a) encodes as 0x%02x, not 0x%02x", ep_simd_name(level),
					ep_f32_bits(in[i]), (double)in[i], out[i], ep_f32_to_e4m3(in[i]));
		done += n;
	}
}

EP_TEST_EACH_LEVEL(e4m3_encoder_on_every_rounding_float)
{
	uint32_t lo = (127u - 12u) << 23, hi = (127u + 10u) << 23; /* [2^-12, 2^10) */
	static const uint32_t pinned[] = {0x80000000u, 0x80000001u, 0x807fffffu, 0xc3e00000u, 0xc3e80000u, 0xff800000u,
					  0x7fc00000u, 0x7fffffffu, 0xffc00000u, 0xffffffffu};
	/* every one in the plain build, a sample under a sanitizer (simd_levels.h) */
	expect_e4m3_run(level, lo, (hi - lo) / EP_EXHAUSTIVE_STRIDE, EP_EXHAUSTIVE_STRIDE);
	expect_e4m3_run(level, 0x80000000u | lo, (hi - lo) / 7, 7);
	expect_e4m3_run(level, 0, lo / 101, 101);                       /* zero, subnormals, tiny */
	expect_e4m3_run(level, hi, (0x7f800000u - hi) / 103 + 1, 103); /* large, past infinity into NaNs */
	expect_e4m3_run(level, 0x7f800000u, 0x00800000u / 97, 97);     /* infinity, NaNs */
	expect_e4m3_run(level, 0xff800000u, 0x00800000u / 97, 97);
	for (size_t k = 0; k < sizeof(pinned) / sizeof(pinned[0]); k++) /* -0, negative subnormals, -448, NaNs */
		expect_e4m3_run(level, pinned[k], 1, 1);
}

/* Configuration checks and sizes */

/* The reduction kernel on crafted rows at hidden sizes around its 32-column
 * chunks: fusion decides every column (y0 = a, y1 = -a with equal weights
 * leaves fmaf's rounding error of w*a, which an unfused multiply-add would
 * lose; y2 = a tiny term), and the tail past the last multiple of 32 is
 * reduced like the rest. (Slot order: tests/mutants_test.sh.) */
EP_TEST_EACH_LEVEL(reduce_rows_tail_and_fusion)
{
	static const int sizes[] = {1, 31, 32, 33, 63, 200};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int H = sizes[k];
		uint16_t a[200], na[200], tiny[200], out[200];
		for (int c = 0; c < H; c++) {
			a[c] = (uint16_t)(0x4001 + (c % 126)); /* 2.0 .. 3.98, never a power of two */
			na[c] = (uint16_t)(a[c] | 0x8000);
			tiny[c] = (uint16_t)(0x3000 + c);      /* ~2^-31 */
		}
		const uint16_t *ys[3] = {a, na, tiny};
		float w = ep_f32_from_bits(0x3f2aaaab), ws[3] = {w, w, 0.75f}; /* w ~ 2/3, inexact products */
		ep_ll_reduce_rows_at(level, ys, ws, 3, H, out);
		for (int c = 0; c < H; c++) {
			float acc = 0.0f;
			for (int j = 0; j < 3; j++)
				acc = fmaf(ep_bf16_to_f32(ys[j][c]), ws[j], acc);
			float p = ep_bf16_to_f32(a[c]) * w, unfused = (p - p) + ep_bf16_to_f32(tiny[c]) * 0.75f;
			EP_ASSERT_UINT_EQ(out[c], ep_f32_to_bf16(acc));
			if (ep_f32_to_bf16(acc) == ep_f32_to_bf16(unfused))
				EP_FAIL("H %d column %d: this row cannot tell fused from unfused", H, c);
		}
	}
}

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
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 0, base + 4096, &wt, NULL), 0);
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

/* The hand-over from normal mode (ep_ll_clean): the arena written over
 * between rounds, as a buffer shared by both modes is */

EP_TEST(clean_after_another_user_of_the_arena)
{
	struct world w = small_world(4, EP_DTYPE_FP8);
	w.rounds = 3;
	w.scribble = 0x11;
	struct rank_out outs[4];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	for (int r = 0; r < 4; r++) {
		EP_ASSERT_INT_EQ(outs[r].rc, 0);
		EP_ASSERT_INT_EQ(outs[r].disp_wrong + outs[r].comb_wrong, 0);
	}
}

/* Lines left holding 0x11111111: every receive finds them far ahead. */
EP_TEST(skipped_clean_is_wrong_data)
{
	struct world w = small_world(4, EP_DTYPE_BF16);
	w.rounds = 2;
	w.scribble = 0x11;
	w.keep_signals = 1;
	w.timeout_s = 2;
	struct rank_out outs[4];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	for (int r = 0; r < 4; r++)
		EP_ASSERT_INT_EQ(outs[r].rc, -EP_EWRONGDATA);
}

/* Lines left holding 0xf0f0f0f0 read as behind: a named timeout, not a pass. */
EP_TEST(skipped_clean_behind_times_out)
{
	struct world w = small_world(3, EP_DTYPE_BF16);
	w.rounds = 2;
	w.scribble = 0xf0;
	w.keep_signals = 1;
	w.timeout_s = 0.5;
	struct rank_out outs[3];
	EP_ASSERT_INT_EQ(run_world(&w, outs), 0);
	for (int r = 0; r < 3; r++)
		EP_ASSERT_INT_EQ(outs[r].rc, -EP_ETIMEDOUT);
}

EP_TEST(clean_refuses_an_op_half_done)
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
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 0, base + 4096, &wt, NULL), 0);
	uint16_t x[4 * 256] = {0};
	int64_t idx[4] = {0, 1, -1, 1};
	struct ep_ll_dispatch_out o;
	EP_ASSERT_INT_EQ(ep_ll_dispatch_send(&ctx, x, idx, 4), 0);
	EP_ASSERT_INT_EQ(ep_ll_clean(&ctx, 0), -EINVAL);
	EP_ASSERT_INT_EQ(ep_ll_dispatch_recv(&ctx, &o), 0);
	EP_ASSERT_INT_EQ(ep_ll_clean(&ctx, 0), 0);
	EP_ASSERT_INT_EQ((int)ctx.disp_calls, 0);
	EP_ASSERT_INT_EQ(ep_ll_dispatch(&ctx, x, idx, 4, &o), 0); /* call 1 again */
	EP_ASSERT_INT_EQ(o.packed_recv_count[1], 2);
	ep_ll_fini(&ctx);
	munmap(base, total);
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
	int rc = ep_ll_init(&ctx, c, me, arena, &wt, NULL);
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
	EP_ASSERT_INT_EQ(ep_ll_init(&ctx, &c, 0, base + 4096, &wt, NULL), 0);
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
