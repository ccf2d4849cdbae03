/* parallel_test.c - the process groups against section 1's formulas, on every valid configuration up to 32 ranks. */
#include <string.h>

#include "cli/mindie_config.h"
#include "cli/parallel.h"
#include "tests/harness.h"

/* Every group partitions the world, holds r, has the right size and the right stride. */
static void check_groups(const struct ep_parallel *p, int W)
{
	static const enum ep_par_group kinds[] = {EP_GROUP_ATTN_TP, EP_GROUP_ATTN_DP, EP_GROUP_MOE_TP, EP_GROUP_MOE_EP};
	const int *v = p->v;
	int m[64];
	for (int k = 0; k < 4; k++) {
		int size = k == 0 ? v[EP_PAR_TP] : k == 1 ? v[EP_PAR_DP] * v[EP_PAR_CP] : k == 2 ? v[EP_PAR_MOE_TP] : v[EP_PAR_MOE_EP];
		int stride = k == 1 ? v[EP_PAR_TP] : k == 3 ? v[EP_PAR_MOE_TP] : 1, count[64] = {0};
		for (int r = 0; r < W; r++) {
			int n = ep_parallel_group(p, kinds[k], r, m, 64), has = 0;
			EP_ASSERT_INT_EQ(n, size);
			for (int i = 0; i < n; i++) {
				has |= m[i] == r;
				if (i)
					EP_ASSERT_INT_EQ(m[i] - m[i - 1], stride);
				if (m[0] == r)
					count[m[i]]++;
			}
			EP_ASSERT(has);
		}
		for (int r = 0; r < W; r++) /* groups led by their first member cover each rank once */
			EP_ASSERT_INT_EQ(count[r], 1);
	}
	for (int r = 0; r < W; r++) { /* r = dp_rank*tp + atp_rank = ep_rank*moe_tp + mtp_rank */
		ep_parallel_group(p, EP_GROUP_MOE_EP, r, m, 64);
		EP_ASSERT_INT_EQ(m[r / v[EP_PAR_MOE_TP]], r);
	}
}

EP_TEST(every_valid_configuration_up_to_32_ranks)
{
	int tried = 0;
	for (int W = 1; W <= 32; W++)
		for (int tp = 1; tp <= W; tp++)
			for (int mtp = 1; mtp <= W; mtp++) {
				struct ep_parallel in = {0}, out;
				char err[256];
				in.v[EP_PAR_TP] = tp, in.v[EP_PAR_DP] = W / tp, in.v[EP_PAR_MOE_TP] = mtp, in.v[EP_PAR_MOE_EP] = W / mtp;
				if (W % tp || W % mtp || ep_parallel_resolve(&in, W, 0, &out, err, sizeof(err)))
					continue;
				check_groups(&out, W);
				tried++;
			}
	EP_ASSERT(tried > 100);
}

EP_TEST(a3_example_banner)
{
	struct ep_parallel in = {0}, out;
	char err[256], line[256];
	EP_ASSERT_INT_EQ(ep_parallel_parse(&in, "moe_ep=4,dp=2,moe_tp=4,tp=8", err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(ep_parallel_resolve(&in, 16, 8, &out, err, sizeof(err)), 0);
	ep_parallel_describe(&out, 8, line, sizeof(line));
	EP_ASSERT_STR_EQ(line, "attn_tp=[8..15] dp=1 moe_tp=[8..11] ep=2/{0,4,8,12}");
	EP_ASSERT(!ep_parallel_pure_ep(&out));
}

EP_TEST(mindie_keys_minus_one_unset)
{
	const char *t = "{\"BackendConfig\":{\"ModelDeployConfig\":{\"ModelConfig\":[{\"worldSize\":8,\"dp\":-1,\"tp\":-1,"
			"\"moe_tp\":1,\"moe_ep\":8,\"other\":[1,2],\"models\":{\"deepseekv2\":{\"ep_level\":2}}}]}},\"x\":{}}";
	struct ep_parallel in = {0}, out;
	char err[256];
	EP_ASSERT_INT_EQ(ep_mindie_config_parse(t, strlen(t), "test", &in, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(ep_parallel_resolve(&in, 8, 0, &out, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(out.v[EP_PAR_TP], 8); /* tp unset: the world */
	EP_ASSERT_INT_EQ(out.v[EP_PAR_DP], 1);
	EP_ASSERT_INT_EQ(out.moe_comm, EP_MOE_A2A);
	EP_ASSERT_INT_EQ(ep_parallel_resolve(&in, 4, 0, &out, err, sizeof(err)), -1); /* worldSize 8 */
}

EP_TEST_MAIN()
