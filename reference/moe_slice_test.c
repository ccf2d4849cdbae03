/* moe_slice_test.c - attention-TP slices and the MoE-EP groups' views of the world's rows. */
#include "reference/moe_slice.h"

#include <string.h>

#include "tests/harness.h"

/* none: ceil(T_d/tp) rows, the last slices short or empty; zero: all c; replicate0: align(max, tp)/tp. */
EP_TEST(slices_follow_the_three_padding_rules)
{
	struct ep_slices s;
	EP_ASSERT_INT_EQ(ep_slices_init(&s, 8, 4, 1, 8, EP_SLICE_NONE, 10, 0, 1), 0);
	int want[4] = {3, 3, 3, 1};
	for (int i = 0; i < 4; i++) {
		EP_ASSERT_INT_EQ(ep_slice_len(&s, i), want[i]);
		EP_ASSERT_INT_EQ(ep_slice_first(&s, 4 + i), 3 * i);
	}
	EP_ASSERT_INT_EQ(ep_slices_gathered(&s, 1), 10);
	EP_ASSERT_INT_EQ(s.max_slice, 3);
	ep_slices_fini(&s);
	EP_ASSERT_INT_EQ(ep_slices_init(&s, 4, 4, 1, 4, EP_SLICE_NONE, 2, 0, 1), 0);
	EP_ASSERT_INT_EQ(ep_slice_len(&s, 2), 0); /* nothing left for members 2 and 3 */
	ep_slices_fini(&s);
	EP_ASSERT_INT_EQ(ep_slices_init(&s, 8, 4, 1, 8, EP_SLICE_ZERO, 10, 0, 1), 0);
	EP_ASSERT_INT_EQ(ep_slice_len(&s, 3), 3);
	EP_ASSERT_INT_EQ(ep_slices_gathered(&s, 0), 12);
	ep_slices_fini(&s);
	/* uneven T_d: replicate0 slices every group by align(max T_d, tp) / tp */
	EP_ASSERT_INT_EQ(ep_slices_init(&s, 8, 2, 1, 8, EP_SLICE_REPLICATE0, 9, 1, 5), 0);
	EP_ASSERT_INT_EQ(s.tokens[0], 9);
	for (int r = 0; r < 8; r++)
		EP_ASSERT_INT_EQ(ep_slice_len(&s, r), 5);
	ep_slices_fini(&s);
}

/* Group g of moe_tp = 2 on 4 ranks with tp = 2: EP rank q is world rank 2q + g. */
EP_TEST(group_view_rows_are_the_dp_groups_rows)
{
	struct ep_slices s;
	struct ep_group_arrays a;
	EP_ASSERT_INT_EQ(ep_slices_init(&s, 4, 2, 2, 2, EP_SLICE_NONE, 6, 0, 3), 0);
	EP_ASSERT_INT_EQ(ep_slices_group(&s, 1, &a), 0);
	EP_ASSERT_INT_EQ(a.world_rank[0], 1);
	EP_ASSERT_INT_EQ(a.world_rank[1], 3);
	EP_ASSERT_INT_EQ(a.first[1], 3); /* world 3: DP group 1, member 1 */
	EP_ASSERT_INT_EQ(a.x_key[1], 1);
	struct ep_routing r = {.payload = EP_PAYLOAD_WIDE, .group = &a.view}, plain = {.payload = EP_PAYLOAD_WIDE};
	uint16_t got[64], want[64];
	ep_gen_bf16_row(7, &r, EP_STREAM_X, 1, 2, 64, got);         /* EP rank 1, token 2 */
	struct ep_group_arrays b; /* world 2 = member 0 of DP group 1 holds the same T_d rows */
	EP_ASSERT_INT_EQ(ep_slices_group(&s, 0, &b), 0);
	struct ep_routing r0 = {.payload = EP_PAYLOAD_WIDE, .group = &b.view};
	ep_gen_bf16_row(7, &r0, EP_STREAM_X, 1, 2, 64, want); /* its row 2 */
	EP_ASSERT(memcmp(got, want, sizeof(got)) != 0);
	uint16_t w2[64];
	ep_gen_bf16_row(7, &plain, EP_STREAM_X, 0x40000000 + 1, 5, 64, w2);
	EP_ASSERT(memcmp(got, w2, sizeof(got)) == 0);
	for (int i = 0; i < 64; i++)
		EP_ASSERT(got[i] != 0);
	ep_group_arrays_fini(&a);
	ep_group_arrays_fini(&b);
	ep_slices_fini(&s);
}

EP_TEST_MAIN()
