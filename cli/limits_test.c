/* limits_test.c - the profiles' rows fire on what they name, and HCCL_BUFFSIZE's parse. */
#include "cli/limits.h"
#include "collectives/error.h"
#include "tests/harness.h"

static const char *const *fake;
static const char *fake_env(const char *name)
{
	for (int i = 0; fake && fake[i]; i += 2)
		if (strcmp(fake[i], name) == 0)
			return fake[i + 1];
	return NULL;
}

/* The guide's single A2 node: 8 ranks of DeepSeek-V3's shape. */
static struct ep_limits_point a2_node(int tokens, int ll)
{
	return (struct ep_limits_point){.ranks = 8, .nodes = 1, .ranks_per_node = 8, .tokens = tokens, .hidden = 7168,
					.topk = 8, .experts = 256, .dtype = EP_DTYPE_BF16, .low_latency = ll};
}

static int check(int profile, int warn_only, struct ep_limits_point p, const char *const *env, char *err)
{
	fake = env;
	FILE *null = fopen("/dev/null", "w");
	int rc = ep_limits_check(profile, warn_only, &p, fake_env, null, err, 512);
	if (null)
		fclose(null);
	return rc;
}

EP_TEST(a2_guide_figures)
{
	char err[512];
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, a2_node(8000, 0), NULL, err), 0);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, a2_node(8001, 0), NULL, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "A2_DEEPEP.md") != NULL);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, a2_node(512, 1), NULL, err), 0);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, a2_node(513, 1), NULL, err), -EP_EUSAGE);
	struct ep_limits_point two = a2_node(4096, 0);
	two.ranks = 16, two.nodes = 2;
	static const char *const pair[] = {"HCCL_INTRA_PCIE_ENABLE", "1", "HCCL_INTRA_ROCE_ENABLE", "0", NULL};
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, two, pair, err), 0);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, two, NULL, err), -EP_EUSAGE);
	two.tokens = 4097;
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, two, pair, err), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 1, two, pair, err), 0); /* --warn-only */
}

EP_TEST(buffsize_shortfall)
{
	char err[512];
	static const char *const small[] = {"HCCL_BUFFSIZE", "899", NULL}, *const enough[] = {"HCCL_BUFFSIZE", "900", NULL};
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, a2_node(512, 1), small, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "1 MB short of the 900 MB") != NULL);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A2, 0, a2_node(512, 1), enough, err), 0);
}

EP_TEST(buffsize_parse)
{
	uint64_t mb = 0;
	static const char *const ok[] = {"HCCL_BUFFSIZE", "1024", NULL}, *const zero[] = {"HCCL_BUFFSIZE", "0", NULL},
				  *const junk[] = {"HCCL_BUFFSIZE", "1k", NULL}, *const neg[] = {"HCCL_BUFFSIZE", "-1", NULL};
	fake = ok;
	EP_ASSERT_INT_EQ(ep_hccl_buffsize(fake_env, &mb), 1);
	EP_ASSERT_UINT_EQ(mb, 1024);
	fake = zero;
	EP_ASSERT_INT_EQ(ep_hccl_buffsize(fake_env, &mb), -1);
	fake = junk;
	EP_ASSERT_INT_EQ(ep_hccl_buffsize(fake_env, &mb), -1);
	fake = neg;
	EP_ASSERT_INT_EQ(ep_hccl_buffsize(fake_env, &mb), -1);
	fake = NULL;
	EP_ASSERT_INT_EQ(ep_hccl_buffsize(fake_env, &mb), 0);
}

EP_TEST(a3_and_deepep_rows)
{
	char err[512];
	struct ep_limits_point p = a2_node(512, 1);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A3, 0, p, NULL, err), 0);
	p.hidden = 4096;
	EP_ASSERT_INT_EQ(check(EP_LIMITS_ASCEND_A3, 0, p, NULL, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "H = 7168") != NULL);
	p = a2_node(128, 1);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_DEEPEP, 0, p, NULL, err), 0);
	p.hidden = 1024;
	EP_ASSERT_INT_EQ(check(EP_LIMITS_DEEPEP, 0, p, NULL, err), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "SWITCH_HIDDEN") != NULL);
	EP_ASSERT_INT_EQ(check(EP_LIMITS_NONE, 1, p, NULL, err), -EP_EUSAGE); /* --warn-only needs a profile */
	EP_ASSERT_STR_EQ(ep_limits_name(EP_LIMITS_ASCEND_A2), "ascend-a2");
}

EP_TEST_MAIN()
