/* ascend_ref_test.c - Ascend's reference on a hand-worked routing, its quantisation constants, and proof that its checks fail.
 *
 * Three EP ranks, rank 0 hosts the one shared expert (S_r = S_n = 1), ranks
 * 1 and 2 host routed experts {0, 1} and {2, 3}; two tokens each, top-2:
 *   rank 0: t0 -> {3, 0}   t1 -> {1, -1}
 *   rank 1: t0 -> {0, 1}   t1 -> {2, 0}
 *   rank 2: t0 -> {1, 3}   t1 -> {0, 2}
 */
#include "reference/ascend_ref.h"

#include <errno.h>

#include "collectives/numeric.h"
#include "tests/harness.h"

static const int64_t routing[] = {3, 0, 1, -1, 0, 1, 2, 0, 1, 3, 0, 2};

static void init(struct ep_ascend_ref *ref, struct ep_routing *r, int me, int quant, int prefix, int smooth)
{
	struct ep_ascend_params p = {.num_ranks = 3, .max_tokens = 2, .hidden = 64, .num_topk = 2, .num_experts = 4,
				     .shared_experts = 1, .shared_ranks = 1, .quant = quant, .counts_prefix = prefix};
	struct ep_shape s = {.num_ranks = 3, .num_tokens = 2, .hidden = 64, .num_topk = 2, .num_experts = 4,
			     .expert_alignment = 1, .dtype = quant ? EP_DTYPE_INT8 : EP_DTYPE_BF16, .with_topk = 1};
	*r = (struct ep_routing){.kind = EP_ROUTE_FILE, .file_idx = routing, .file_rows = 6,
				 .payload = EP_PAYLOAD_NARROW};
	struct ep_ascend_inputs in = {.seed = 5, .routing = r, .smooth = smooth};
	EP_ASSERT_INT_EQ(ep_ascend_ref_init(ref, &p, &s, &in, me), 0);
}

static void expect_rows(const struct ep_ascend_ref *ref, const int32_t *want, size_t n)
{
	EP_ASSERT_UINT_EQ(ref->num_recv, n);
	for (size_t i = 0; i < 3 * n; i++)
		EP_ASSERT_INT_EQ(ref->rows[i], want[i]);
}

/* Local expert, then source rank, then occurrence; triples (source, token, slot). */
EP_TEST(routed_rank_order_and_counts)
{
	struct ep_ascend_ref ref;
	struct ep_routing r;
	init(&ref, &r, 1, 0, 0, 0);
	const int32_t rows[] = {0, 0, 1, 1, 0, 0, 1, 1, 1, 2, 1, 0, /* expert 0 */
				0, 1, 0, 1, 0, 1, 2, 0, 0};       /* expert 1 */
	expect_rows(&ref, rows, 7);
	EP_ASSERT_INT_EQ(ref.num_local, 2);
	EP_ASSERT_INT_EQ(ref.expert_token_nums[0], 4);
	EP_ASSERT_INT_EQ(ref.expert_token_nums[1], 3);
	const int32_t counts[6] = {1, 3, 4, 5, 6, 7}; /* i = e_l * R + s, inclusive */
	EP_ASSERT_INT_EQ(ref.num_counts, 6);
	for (int i = 0; i < 6; i++)
		EP_ASSERT_INT_EQ(ref.ep_recv_counts[i], counts[i]);
	ep_ascend_ref_fini(&ref);
}

EP_TEST(prefix_counts_and_empty_blocks)
{
	struct ep_ascend_ref ref;
	struct ep_routing r;
	init(&ref, &r, 2, 0, 1, 0);
	const int32_t rows[] = {1, 1, 0, 2, 1, 1, /* expert 2 */ 0, 0, 0, 2, 0, 1 /* expert 3 */};
	expect_rows(&ref, rows, 4);
	EP_ASSERT_INT_EQ(ref.expert_token_nums[0], 2);
	EP_ASSERT_INT_EQ(ref.expert_token_nums[1], 4); /* type 0: inclusive prefix */
	const int32_t counts[6] = {0, 1, 2, 3, 3, 4};
	for (int i = 0; i < 6; i++)
		EP_ASSERT_INT_EQ(ref.ep_recv_counts[i], counts[i]);
	ep_ascend_ref_fini(&ref);
}

/* Every token of every source, slot K + j, counts per source. */
EP_TEST(shared_rank_order)
{
	struct ep_ascend_ref ref;
	struct ep_routing r;
	init(&ref, &r, 0, 0, 0, 0);
	const int32_t rows[] = {0, 0, 2, 0, 1, 2, 1, 0, 2, 1, 1, 2, 2, 0, 2, 2, 1, 2};
	expect_rows(&ref, rows, 6);
	EP_ASSERT_INT_EQ(ref.num_local, 1);
	EP_ASSERT_INT_EQ(ref.expert_token_nums[0], 6);
	EP_ASSERT_INT_EQ(ref.num_counts, 3);
	for (int s = 0; s < 3; s++)
		EP_ASSERT_INT_EQ(ref.ep_recv_counts[s], 2 * (s + 1));
	ep_ascend_ref_fini(&ref);
}

EP_TEST(duplicate_expert_refused)
{
	static const int64_t dup[] = {1, 1, 0, 2};
	struct ep_ascend_params p = {.num_ranks = 2, .max_tokens = 1, .hidden = 16, .num_topk = 2, .num_experts = 4};
	struct ep_shape s = {.num_ranks = 2, .num_tokens = 1, .hidden = 16, .num_topk = 2, .num_experts = 4};
	struct ep_routing r = {.kind = EP_ROUTE_FILE, .file_idx = dup, .file_rows = 2};
	struct ep_ascend_inputs in = {.seed = 1, .routing = &r};
	struct ep_ascend_ref ref;
	EP_ASSERT_INT_EQ(ep_ascend_ref_init(&ref, &p, &s, &in, 1), -EINVAL);
}

static uint16_t bf(float f)
{
	return ep_f32_to_bf16(f);
}

/* amax 2: ds = 63.5, so 1 -> 63.5 -> 64 (ties to even), 0.5 -> 31.75 -> 32. */
EP_TEST(quant_hand_worked)
{
	uint16_t x[8] = {bf(1), bf(-2), bf(0.5f), bf(0.25f), bf(-1), bf(0.0f), bf(1.5f), bf(0.75f)};
	int8_t q[8];
	const int8_t want[8] = {64, -127, 32, 16, -64, 0, 95, 48}; /* 95.25 -> 95, 47.625 -> 48 */
	float scale = ep_ascend_ref_quant(x, NULL, 8, q);
	for (int i = 0; i < 8; i++)
		EP_ASSERT_INT_EQ(q[i], want[i]);
	EP_ASSERT_FLOAT_BITS_EQ(scale, 1.0f / 63.5f);
	/* smoothing multiplies first: x * 2 has amax 4, the same q */
	float sm[8] = {2, 2, 2, 2, 2, 2, 2, 2};
	EP_ASSERT_FLOAT_BITS_EQ(ep_ascend_ref_quant(x, sm, 8, q), 1.0f / (127.0f / 4.0f));
	EP_ASSERT_INT_EQ(q[0], 64);
	uint16_t zero[8] = {0};
	EP_ASSERT_FLOAT_BITS_EQ(ep_ascend_ref_quant(zero, NULL, 8, q), 0.0f); /* the choice for amax 0 */
}

/* scale = 1/(127/amax) is not amax/127 for many rows: the check can tell. */
EP_TEST(scale_is_not_amax_over_127)
{
	int differ = 0, n = 4096;
	uint16_t x[16];
	int8_t q[16];
	for (int i = 0; i < n; i++) {
		for (int c = 0; c < 16; c++)
			x[c] = (uint16_t)(0x3c00 + (ep_mix64((uint64_t)i * 16 + (uint64_t)c) & 0x7ff));
		float amax = 0.0f;
		for (int c = 0; c < 16; c++)
			amax = fabsf(ep_bf16_to_f32(x[c])) > amax ? fabsf(ep_bf16_to_f32(x[c])) : amax;
		float scale = ep_ascend_ref_quant(x, NULL, 16, q);
		EP_ASSERT_FLOAT_BITS_EQ(scale, 1.0f / (127.0f / amax));
		differ += ep_f32_bits(scale) != ep_f32_bits(amax / 127.0f);
	}
	printf("  %d of %d rows: 1/(127/amax) != amax/127\n", differ, n);
	EP_ASSERT(differ > n / 10);
}

/* Outputs as a correct implementation makes them, from the expected rows. */
struct actual {
	int8_t x[7][64];
	float scales[7];
	int32_t info[7][3];
	int64_t nums[2];
	int32_t counts[6];
	struct ep_ascend_out out;
};

static void correct_outputs(const struct ep_ascend_ref *ref, struct actual *a)
{
	for (size_t m = 0; m < ref->num_recv; m++) {
		ep_ascend_ref_row(ref, m, a->x[m], &a->scales[m]);
		memcpy(a->info[m], ref->rows + 3 * m, sizeof(a->info[m]));
	}
	memcpy(a->nums, ref->expert_token_nums, sizeof(a->nums));
	memcpy(a->counts, ref->ep_recv_counts, sizeof(a->counts));
	a->out = (struct ep_ascend_out){.num_recv = ref->num_recv, .expand_x = a->x, .dynamic_scales = a->scales,
					.assist_info = &a->info[0][0], .expert_token_nums = a->nums,
					.ep_recv_counts = a->counts, .num_local = 2, .num_counts = 6};
}

/* A generated routing (4 ranks, 64 tokens, top-2 of 8, smoothing) and
 * rank 1's correct outputs, or with the mutant's scale = amax / 127
 * (DeepEP's int8 form) and rows otherwise right. */
static size_t big_outputs(struct ep_ascend_ref *ref, struct ep_routing *r, int mutant, int8_t *x, float *sc,
			  struct ep_ascend_out *out)
{
	struct ep_ascend_params p = {.num_ranks = 4, .max_tokens = 64, .hidden = 128, .num_topk = 2, .num_experts = 8,
				     .quant = 1};
	struct ep_shape s = {.num_ranks = 4, .num_tokens = 64, .hidden = 128, .num_topk = 2, .num_experts = 8,
			     .expert_alignment = 1, .dtype = EP_DTYPE_INT8, .with_topk = 1};
	*r = (struct ep_routing){.kind = EP_ROUTE_UNIFORM, .payload = EP_PAYLOAD_NARROW};
	struct ep_ascend_inputs in = {.seed = 9, .routing = r, .smooth = 1};
	EP_ASSERT_INT_EQ(ep_ascend_ref_init(ref, &p, &s, &in, 1), 0);
	EP_ASSERT(ref->num_recv <= 256);
	for (size_t m = 0; m < ref->num_recv; m++) {
		const int32_t *t = ref->rows + 3 * m;
		ep_ascend_ref_row(ref, m, x + m * 128, &sc[m]);
		uint16_t xr[128];
		ep_gen_bf16_row(9, r, EP_STREAM_X, t[0], t[1], 128, xr);
		const float *sm = ref->smooth + (size_t)(ep_ascend_ref_ids(ref, t[0])[(size_t)t[1] * 2 + t[2]]) * 128;
		float amax = 0.0f;
		for (int c = 0; c < 128; c++)
			amax = fabsf(ep_bf16_to_f32(xr[c]) * sm[c]) > amax ? fabsf(ep_bf16_to_f32(xr[c]) * sm[c]) : amax;
		if (mutant)
			sc[m] = amax / 127.0f;
	}
	*out = (struct ep_ascend_out){.num_recv = ref->num_recv, .expand_x = x, .dynamic_scales = sc,
				      .assist_info = ref->rows, .expert_token_nums = ref->expert_token_nums,
				      .ep_recv_counts = ref->ep_recv_counts, .num_local = ref->num_local,
				      .num_counts = ref->num_counts};
	return ref->num_recv;
}

EP_TEST(check_catches_amax_over_127)
{
	static int8_t x[256 * 128];
	static float sc[256];
	struct ep_ascend_ref ref;
	struct ep_routing r;
	struct ep_ascend_out out;
	struct ep_check_report rep;
	for (int mutant = 0; mutant < 2; mutant++) {
		size_t n = big_outputs(&ref, &r, mutant, x, sc, &out);
		ep_report_init(&rep, 4, NULL);
		ep_ascend_ref_check_dispatch(&ref, &out, &rep);
		ep_ascend_ref_fini(&ref);
		printf("  %s scales: %" PRIu64 " of %zu wrong\n", mutant ? "amax/127" : "1/(127/amax)", rep.wrong_elems, n);
		EP_ASSERT(mutant ? rep.wrong_elems > n / 10 : rep.wrong_elems == 0);
		EP_ASSERT_UINT_EQ(rep.handle_wrong_elems, 0);
		if (mutant)
			EP_ASSERT_STR_EQ(rep.first.tensor, "dynamic_scales");
	}
}

static int skip_counts(void *ctx, const char *tensor)
{
	(void)ctx;
	return !strcmp(tensor, "ep_recv_counts");
}

/* assist_info_for_combine and ep_recv_counts count as handles, expand_x as
 * data; the first wrong handle element is kept apart. */
EP_TEST(handles_counted_apart)
{
	struct ep_ascend_ref ref;
	struct ep_routing r;
	struct actual a;
	struct ep_check_report rep;
	init(&ref, &r, 1, 1, 0, 0);
	correct_outputs(&ref, &a);
	a.info[3][1] ^= 1;
	a.counts[5]++;
	a.x[2][7] ^= 4;
	ep_report_init(&rep, 3, NULL);
	ep_ascend_ref_check_dispatch(&ref, &a.out, &rep);
	EP_ASSERT_UINT_EQ(rep.wrong_elems, 3);
	EP_ASSERT_UINT_EQ(rep.handle_wrong_elems, 2);
	EP_ASSERT(rep.has_handle_first);
	EP_ASSERT_STR_EQ(rep.handle_first.tensor, "ep_recv_counts");
	EP_ASSERT_INT_EQ(rep.handle_first.col, 5);
	/* a skipped handle tensor (verify: absent) counts nowhere */
	struct ep_check_hooks hooks = {.skip = skip_counts};
	uint64_t all = rep.handle_checked_bytes;
	ep_report_init(&rep, 3, NULL);
	rep.hooks = &hooks;
	ep_ascend_ref_check_dispatch(&ref, &a.out, &rep);
	EP_ASSERT_UINT_EQ(rep.handle_wrong_elems, 1);
	EP_ASSERT_UINT_EQ(rep.handle_checked_bytes, all - 4 * (uint64_t)ref.num_counts);
	EP_ASSERT_STR_EQ(rep.handle_first.tensor, "assist_info_for_combine");
	EP_ASSERT_INT_EQ(rep.handle_first.row, 3);
	EP_ASSERT_INT_EQ(rep.handle_first.col, 1);
	ep_ascend_ref_fini(&ref);
}

/* Section 5.4 on one block: s = 8 * (1/127f as 0x3C010204), q = rint(y / s),
 * read back as bf16(q * bf16(s)); an all-zero block stays zero. */
EP_TEST(comm_quant_block)
{
	uint16_t y[16], out[16];
	for (int c = 0; c < 8; c++)
		y[c] = bf((float)(c + 1));
	memset(y + 8, 0, 16);
	ep_ascend_ref_comm_quant(y, 16, out);
	float s = 8.0f * ep_f32_from_bits(0x3c010204u), sb = ep_bf16_to_f32(bf(s));
	EP_ASSERT(fabsf(ep_f32_from_bits(0x3c010204u) - 1.0f / 127.0f) < 1e-9f);
	for (int c = 0; c < 8; c++) {
		float q = rintf((float)(c + 1) / s);
		EP_ASSERT_INT_EQ(out[c], bf(q * sb));
	}
	EP_ASSERT_INT_EQ(out[7], bf(127.0f * sb));
	for (int c = 8; c < 16; c++)
		EP_ASSERT_INT_EQ(out[c], 0);
}

EP_TEST_MAIN()
