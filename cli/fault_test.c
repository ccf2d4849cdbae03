/* fault_test.c - the fault table's link-down kind (its target of two nodes, when it strikes, its checks) and hang:R:OP. */
#include "cli/fault.h"
#include "collectives/error.h"
#include "tests/harness.h"

EP_TEST(link_down_parses_two_nodes)
{
	struct ep_faults fs = {0};
	char err[512], text[128];
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "link-down:0-1@3", err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(fs.n, 1);
	EP_ASSERT_INT_EQ(fs.f[0].kind, EP_FAULT_LINK_DOWN);
	EP_ASSERT_INT_EQ(fs.f[0].rank, 0);
	EP_ASSERT_INT_EQ((int)fs.f[0].arg, 1);
	ep_faults_text(&fs, text, sizeof(text));
	EP_ASSERT_STR_EQ(text, "link-down:0-1@3");
	EP_ASSERT_INT_EQ(ep_faults_max_rank(&fs), -1); /* its numbers are nodes */
	EP_ASSERT_INT_EQ(ep_fault_strikes(&fs.f[0], 0, 3), 0);
}

EP_TEST(link_down_strikes_both_ends_once)
{
	struct ep_faults fs = {0};
	char err[512];
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "link-down:2-0", err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(ep_faults_link_down(&fs, 2, 0, NULL), 0);
	EP_ASSERT_INT_EQ(ep_faults_link_down(&fs, 0, 0, NULL), 2);
	EP_ASSERT_INT_EQ(ep_faults_link_down(&fs, 1, 0, NULL), -1);
	EP_ASSERT_INT_EQ(ep_faults_link_down(&fs, 2, 1, NULL), -1);
}

EP_TEST(link_down_bad_targets)
{
	struct ep_faults fs = {0};
	char err[512];
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "link-down:1-1", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "link-down:A-B") != NULL);
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "link-down:1", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "link-down:0-1:5", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "link-down:0-3", err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(ep_faults_check_nodes(&fs, 4, err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(ep_faults_check_nodes(&fs, 2, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "outside the job (nodes 0 to 1)") != NULL);
	EP_ASSERT_INT_EQ(ep_faults_check_nodes(&fs, 1, err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "needs a run across nodes") != NULL);
}

EP_TEST(hang_in_a_named_op)
{
	struct ep_faults fs = {0};
	char err[512], text[128];
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "hang:1:attn_tp_gather,hang:3", err, sizeof(err)), 0);
	EP_ASSERT_INT_EQ(fs.n, 2);
	EP_ASSERT_INT_EQ(fs.f[0].kind, EP_FAULT_HANG);
	ep_faults_text(&fs, text, sizeof(text));
	EP_ASSERT_STR_EQ(text, "hang:1:attn_tp_gather,hang:3");
	/* the named one strikes in its op only, first timed or not; the plain one in the first op timed */
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_HANG, 1, 0, "dispatch", 1), 0);
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_HANG, 1, 0, "attn_tp_gather", 0), 1);
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_HANG, 1, 1, "attn_tp_gather", 0), 0);
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_HANG, 1, 0, NULL, 1), 0); /* a soak pass */
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_HANG, 3, 0, "dispatch", 1), 1);
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_HANG, 3, 0, "attn_tp_gather", 0), 0);
	EP_ASSERT_INT_EQ(ep_faults_stop_in(&fs, EP_FAULT_DIE, 3, 0, "dispatch", 1), 0);
	EP_ASSERT_INT_EQ(ep_faults_parse(&fs, "hang:1:Attn", err, sizeof(err)), -EP_EUSAGE);
	EP_ASSERT(strstr(err, "hang:R[:OP]") != NULL);
}

EP_TEST_MAIN()
