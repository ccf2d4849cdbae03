/* reference_test.c - the reference on a hand-worked routing, and proof that its checks fail.
 *
 * Two ranks, two tokens each, top-2 of 4 experts (2 per rank):
 *   rank 0: t0 -> {1, 2} (ranks 0, 1)   t1 -> {0, -1} (rank 0)
 *   rank 1: t0 -> {3, 3} (rank 1)       t1 -> {2, 0}  (ranks 1, 0)
 * Rank 1 receives (0,t0), (1,t0), (1,t1); rank 0 receives (0,t0), (0,t1), (1,t1).
 */
#include "reference/reference.h"

#include "collectives/numeric.h"
#include "reference/transform.h"
#include "tests/harness.h"

static const int64_t routing[] = {1, 2, 0, -1, 3, 3, 2, 0};

static void init(struct ep_reference *ref, struct ep_routing *r, int me, int bias)
{
	struct ep_shape s = {.num_ranks = 2, .num_tokens = 2, .hidden = 64, .num_topk = 2,
			     .num_experts = 4, .expert_alignment = 1, .dtype = EP_DTYPE_BF16,
			     .with_topk = 1, .num_bias = bias};
	*r = (struct ep_routing){.kind = EP_ROUTE_FILE, .file_idx = routing, .file_rows = 4};
	EP_ASSERT_INT_EQ(ep_reference_init(ref, &s, r, 11, me), 0);
}

EP_TEST(hand_worked_layout_and_handle)
{
	struct ep_reference ref;
	struct ep_routing r;
	init(&ref, &r, 1, 0);
	EP_ASSERT_INT_EQ(ref.num_recv, 3);
	const int32_t rpm[4] = {2, 1, 3, 3};
	for (int i = 0; i < 4; i++)
		EP_ASSERT_INT_EQ(ref.rank_prefix_matrix[i], rpm[i]);
	const int32_t src_rank[3] = {0, 1, 1}, src_tok[3] = {0, 0, 1};
	for (int m = 0; m < 3; m++) {
		EP_ASSERT_INT_EQ(ref.row_src_rank[m], src_rank[m]);
		EP_ASSERT_INT_EQ(ref.row_src_token[m], src_tok[m]);
	}
	EP_ASSERT_INT_EQ(ref.num_recv_tokens_per_expert[0], 2); /* expert 2: (0,t0), (1,t1) */
	EP_ASSERT_INT_EQ(ref.num_recv_tokens_per_expert[1], 2); /* expert 3 twice in (1,t0) */
	EP_ASSERT_INT_EQ(ref.num_tokens_per_rank[0], 1);        /* rank 1's t1 */
	EP_ASSERT_INT_EQ(ref.num_tokens_per_rank[1], 2);
	EP_ASSERT_INT_EQ(ep_reference_max_recv(&ref), 3);
	ep_reference_fini(&ref);
}

/* Builds the correct dispatch output of rank 1 by hand from the generator. */
struct actual {
	uint16_t x[3][64];
	int64_t idx[3][2];
	float w[3][2];
	int32_t src[3];
	int32_t per_expert[2];
	int32_t rpm[4];
};

static void correct_rank1(const struct ep_reference *ref, struct actual *a, struct ep_dispatch_out *out)
{
	const int32_t src_rank[3] = {0, 1, 1}, src_tok[3] = {0, 0, 1};
	const int64_t idx[3][2] = {{-1, 0}, {1, 1}, {0, -1}};
	for (int m = 0; m < 3; m++) {
		ep_gen_bf16_row(11, &(struct ep_routing){.payload = EP_PAYLOAD_NARROW}, EP_STREAM_X, src_rank[m], src_tok[m], 64, a->x[m]);
		const float *w = ep_reference_topk_weights(ref, src_rank[m]) + src_tok[m] * 2;
		for (int j = 0; j < 2; j++) {
			a->idx[m][j] = idx[m][j];
			a->w[m][j] = idx[m][j] >= 0 ? w[j] : 0.0f;
		}
		a->src[m] = src_tok[m];
	}
	a->per_expert[0] = a->per_expert[1] = 2;
	const int32_t rpm[4] = {2, 1, 3, 3};
	memcpy(a->rpm, rpm, sizeof(rpm));
	*out = (struct ep_dispatch_out){3, a->x, NULL, &a->idx[0][0], &a->w[0][0], a->src,
					 a->per_expert, a->rpm};
}

EP_TEST(dispatch_check_passes_correct_and_catches_each_fault)
{
	struct ep_reference ref;
	struct ep_routing r;
	struct actual a;
	struct ep_dispatch_out out;
	struct ep_check_report rep;
	uint64_t by_src[2];
	init(&ref, &r, 1, 0);

	correct_rank1(&ref, &a, &out);
	ep_report_init(&rep, 2, by_src);
	ep_reference_check_dispatch(&ref, &out, 0, &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 0);
	EP_ASSERT(rep.checked_bytes >= 3 * 64 * 2);

	/* rows of one source swapped: both rows wrong, attributed to rank 1 */
	uint16_t tmp[64];
	memcpy(tmp, a.x[1], sizeof(tmp));
	memcpy(a.x[1], a.x[2], sizeof(tmp));
	memcpy(a.x[2], tmp, sizeof(tmp));
	ep_report_init(&rep, 2, by_src);
	ep_reference_check_dispatch(&ref, &out, 0, &rep);
	EP_ASSERT(rep.wrong_rows >= 2);
	EP_ASSERT_INT_EQ(by_src[1], rep.wrong_rows);
	EP_ASSERT_STR_EQ(rep.first.tensor, "recv_x");
	EP_ASSERT_INT_EQ(rep.first.row, 1);
	EP_ASSERT_INT_EQ(rep.first.src_rank, 1);
	EP_ASSERT_INT_EQ(rep.first.src_token, 0);

	/* a global id where a local one belongs */
	correct_rank1(&ref, &a, &out);
	a.idx[1][0] = 3;
	ep_report_init(&rep, 2, by_src);
	ep_reference_check_dispatch(&ref, &out, 0, &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 1);
	EP_ASSERT_STR_EQ(rep.first.tensor, "recv_topk_idx");

	/* a masked slot whose weight is not zero */
	correct_rank1(&ref, &a, &out);
	a.w[0][0] = 0.5f;
	ep_report_init(&rep, 2, by_src);
	ep_reference_check_dispatch(&ref, &out, 0, &rep);
	EP_ASSERT_STR_EQ(rep.first.tensor, "recv_topk_weights");

	/* -0.0 is not +0.0: byte equality */
	correct_rank1(&ref, &a, &out);
	a.w[0][0] = -0.0f;
	ep_report_init(&rep, 2, by_src);
	ep_reference_check_dispatch(&ref, &out, 0, &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 1);

	/* wrong row count: reported, nothing else compared */
	correct_rank1(&ref, &a, &out);
	out.num_recv = 2;
	ep_report_init(&rep, 2, by_src);
	ep_reference_check_dispatch(&ref, &out, 0, &rep);
	EP_ASSERT_STR_EQ(rep.first.tensor, "num_recv_tokens");
	ep_reference_fini(&ref);
}

EP_TEST(combine_expected_value_for_token0_of_rank0)
{
	struct ep_reference ref;
	struct ep_routing r;
	init(&ref, &r, 0, 0);
	/* t0 of rank 0 goes to rank 0 (local expert 1) then rank 1 (local expert 0);
	 * t1 only to rank 0 (local expert 0). Sum from +0 in rank order, one rounding. */
	uint16_t x[2][64], y0[64], y1[64], got[2][64];
	float gw[2][2];
	const float *w = ep_reference_topk_weights(&ref, 0);
	for (int t = 0; t < 2; t++)
		ep_gen_bf16_row(11, &(struct ep_routing){.payload = EP_PAYLOAD_NARROW}, EP_STREAM_X, 0, t, 64, x[t]);
	ep_expert_transform(EP_PAYLOAD_NARROW, 0, 1, x[0], 64, y0);
	ep_expert_transform(EP_PAYLOAD_NARROW, 1, 0, x[0], 64, y1);
	for (int c = 0; c < 64; c++) {
		float acc = 0.0f;
		acc += ep_bf16_to_f32(y0[c]);
		acc += ep_bf16_to_f32(y1[c]);
		got[0][c] = ep_f32_to_bf16(acc);
	}
	gw[0][0] = 0.0f + ep_expert_weight(0, 1, w[0]) + 0.0f;
	gw[0][1] = 0.0f + 0.0f + ep_expert_weight(1, 0, w[1]);
	ep_expert_transform(EP_PAYLOAD_NARROW, 0, 0, x[1], 64, y0);
	for (int c = 0; c < 64; c++)
		got[1][c] = ep_f32_to_bf16(0.0f + ep_bf16_to_f32(y0[c]));
	gw[1][0] = ep_expert_weight(0, 0, w[2]);
	gw[1][1] = 0.0f;

	struct ep_check_report rep;
	ep_report_init(&rep, 2, NULL);
	ep_reference_check_combine(&ref, &got[0][0], &gw[0][0], &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 0);

	got[1][7] ^= 1;
	ep_report_init(&rep, 2, NULL);
	ep_reference_check_combine(&ref, &got[0][0], &gw[0][0], &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 1);
	EP_ASSERT_STR_EQ(rep.first.tensor, "combined_x");
	EP_ASSERT_INT_EQ(rep.first.row, 1);
	EP_ASSERT_INT_EQ(rep.first.col, 7);
	ep_reference_fini(&ref);
}

EP_TEST(combine_starts_from_positive_zero)
{
	/* A token that goes nowhere combines to +0 (bf16 0x0000), never -0. */
	struct ep_reference ref;
	struct ep_routing r;
	static const int64_t masked[] = {-1, -1, -1, -1, -1, -1, -1, -1};
	struct ep_shape s = {.num_ranks = 2, .num_tokens = 2, .hidden = 64, .num_topk = 2,
			     .num_experts = 4, .expert_alignment = 1, .with_topk = 1};
	r = (struct ep_routing){.kind = EP_ROUTE_FILE, .file_idx = masked, .file_rows = 4};
	EP_ASSERT_INT_EQ(ep_reference_init(&ref, &s, &r, 1, 0), 0);
	uint16_t got[2][64];
	float gw[2][2] = {{0}};
	memset(got, 0, sizeof(got));
	struct ep_check_report rep;
	ep_report_init(&rep, 2, NULL);
	ep_reference_check_combine(&ref, &got[0][0], &gw[0][0], &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 0);
	got[0][0] = 0x8000; /* -0 */
	ep_report_init(&rep, 2, NULL);
	ep_reference_check_combine(&ref, &got[0][0], &gw[0][0], &rep);
	EP_ASSERT_INT_EQ(rep.wrong_elems, 1);
	ep_reference_fini(&ref);
}

EP_TEST(transform_depends_on_rank_and_expert)
{
	uint16_t x[64], a[64], b[64], c[64];
	ep_gen_bf16_row(3, &(struct ep_routing){.payload = EP_PAYLOAD_NARROW}, EP_STREAM_X, 0, 0, 64, x);
	ep_expert_transform(EP_PAYLOAD_NARROW, 0, 0, x, 64, a);
	ep_expert_transform(EP_PAYLOAD_NARROW, 1, 0, x, 64, b);
	ep_expert_transform(EP_PAYLOAD_NARROW, 0, 1, x, 64, c);
	EP_ASSERT(memcmp(a, b, sizeof(a)) != 0);
	EP_ASSERT(memcmp(a, c, sizeof(a)) != 0);
	EP_ASSERT(memcmp(a, x, sizeof(a)) != 0);
}

EP_TEST_MAIN()
