/* generalised_test.c - each warning of generalised.h fires on its shape and only there. */
#include <string.h>

#include "cli/command.h"
#include "cli/generalised.h"
#include "tests/harness.h"

/* The warnings of `COMMAND ARGS...` on W ranks, into buf; returns how many. */
static int warnings(const struct ep_command *cmd, int W, char *buf, size_t len, const char **args, int n)
{
	char *argv[32], err[256];
	struct ep_options o;
	argv[0] = (char *)cmd->name;
	for (int i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];
	FILE *null = fopen("/dev/null", "w");
	int rc = ep_options_parse(&cmd->options, n + 1, argv, &o, null, err, sizeof(err));
	fclose(null);
	EP_ASSERT_INT_EQ(rc, 0);
	int k = ep_generalised_warnings(&o, W, buf, len);
	ep_options_free(&o);
	return k;
}
#define ARGS(...) (const char *[]){__VA_ARGS__}, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))
#define WARN(W, buf, ...) warnings(&ep_cmd_intranode, W, buf, sizeof(buf), ARGS(__VA_ARGS__))
#define WARN_NODES(W, buf, ...) warnings(&ep_cmd_internode, W, buf, sizeof(buf), ARGS(__VA_ARGS__))

EP_TEST(ascend_inside_its_limits_warns_nothing)
{
	char buf[1024];
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "--ep-semantics", "ascend", "-k", "8", "--hidden", "7168"), 0);
	EP_ASSERT_STR_EQ(buf, "");
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "-k", "9", "--hidden", "256"), 0); /* DeepEP semantics: none */
}

EP_TEST(each_limit_past_ascends_is_one_line)
{
	char buf[1024];
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "--ep-semantics", "ascend", "-k", "9", "--hidden", "7168"), 1);
	EP_ASSERT(strstr(buf, "--num-topk 9: Ascend's dispatch takes K <= 8") != NULL);
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "--ep-semantics", "ascend", "--hidden", "7168,4096"), 1);
	EP_ASSERT(strstr(buf, "--hidden 4096: Ascend A3's dispatch takes H = 7168") != NULL);
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "--ep-semantics", "ascend", "--hidden", "7168", "-e", "16",
			      "--parallel", "dp=2,tp=4,moe_tp=4,moe_ep=2"), 2);
	EP_ASSERT(strstr(buf, "moe_tp=4: Ascend's MoE-TP stage takes tp_world_size 0, 1 or 2") != NULL);
	EP_ASSERT(strstr(buf, "\n8 local experts with MoE-TP: Ascend allows MoE-TP only with one local expert") != NULL);
	EP_ASSERT_INT_EQ(WARN(4, buf, "-r", "4", "--ep-semantics", "ascend", "--hidden", "7168", "-e", "2",
			      "--parallel", "dp=1,tp=4,moe_tp=2,moe_ep=2"), 0); /* Ascend's own MoE-TP: tp 2, one expert */
	EP_ASSERT_INT_EQ(WARN(4, buf, "-r", "4", "--ep-semantics", "ascend", "--hidden", "7168", "-e", "2",
			      "--parallel", "dp=1,tp=4,moe_tp=2,moe_ep=2", "--comm-quant", "int8"), 1);
	EP_ASSERT(strstr(buf, "--comm-quant int8 with moe_tp=2: Ascend's combine takes comm_quant_mode 2 only when "
			      "tp_world_size != 2") == buf);
	EP_ASSERT_INT_EQ(WARN(4, buf, "-r", "4", "--ep-semantics", "ascend", "--hidden", "7168", "-e", "1",
			      "--parallel", "dp=1,tp=4,moe_tp=4,moe_ep=1", "--comm-quant", "int8"), 1); /* moe_tp 4: only its line */
	EP_ASSERT(strstr(buf, "moe_tp=4: Ascend's MoE-TP stage") == buf);
}

EP_TEST(ascend_in_allgather_mode_is_one_line_instead_of_its_limits)
{
	char buf[1024];
	/* K 9, H 256 and moe_tp 4 are past Ascend's dispatch limits, but allgather mode calls no dispatch */
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "--ep-semantics", "ascend", "-k", "9", "--hidden", "256", "-e", "16",
			      "--parallel", "dp=2,tp=4,moe_tp=4,moe_ep=2", "--moe-comm", "allgather"), 1);
	EP_ASSERT(strstr(buf, "--ep-semantics ascend in allgather mode: the layer has no EP dispatch or combine, so "
			      "Ascend's semantics do not apply") == buf);
	EP_ASSERT_INT_EQ(WARN(8, buf, "-r", "8", "-k", "9", "--hidden", "256", "-e", "16", "--parallel",
			      "dp=2,tp=4,moe_tp=4,moe_ep=2", "--moe-comm", "allgather"), 0); /* DeepEP semantics: none */
}

EP_TEST(tp_groups_of_whole_nodes_warn_in_any_semantics)
{
	char buf[1024];
	EP_ASSERT_INT_EQ(WARN_NODES(8, buf, "--nodes", "4", "--ranks-per-node", "2", "--parallel", "dp=2,tp=4,moe_tp=4,moe_ep=2"), 1);
	EP_ASSERT(strstr(buf, "tp=4 spans 2 nodes of 2 ranks: MindIE allows tp and moe_tp at most the ranks of a node") != NULL);
	EP_ASSERT_INT_EQ(WARN_NODES(8, buf, "--nodes", "2", "--ranks-per-node", "4", "--parallel", "dp=2,tp=4,moe_tp=2,moe_ep=4"), 0);
	EP_ASSERT_INT_EQ(WARN_NODES(8, buf, "--nodes", "4", "--ranks-per-node", "2", "--parallel", "dp=1,tp=8,moe_tp=8,moe_ep=1"), 0);
}

EP_TEST_MAIN()
