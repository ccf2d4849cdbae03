/* state_block_test.c - the likely culprit of a stall, on hand-set control blocks. */
#include "cli/state_block.h"
#include "tests/harness.h"

#include <stdatomic.h>

static struct ep_sync *sync_of(int n)
{
	size_t bytes = (ep_sync_bytes(n) + 127) / 128 * 128; /* the control blocks are cache-line aligned */
	struct ep_sync *s = aligned_alloc(128, bytes);
	EP_ASSERT(s != NULL);
	memset(s, 0, bytes);
	ep_sync_init(s, n);
	for (int r = 0; r < n; r++)
		atomic_store(&s->ctl[r].phase, "dispatch.notify");
	return s;
}

EP_TEST(a_rank_everyone_waits_for)
{
	struct ep_sync *s = sync_of(4);
	char buf[320];
	atomic_store(&s->ctl[0].waiting_on, 2);
	atomic_store(&s->ctl[1].waiting_on, 2);
	atomic_store(&s->ctl[3].waiting_on, 2);
	atomic_store(&s->ctl[2].phase, "fault.hang");
	ep_state_culprit(s, NULL, 4, 0, buf, sizeof(buf));
	EP_ASSERT_STR_EQ(buf, "rank 2 (phase fault.hang) holds up ranks 0, 1, 3 and waits for no one");
	ep_state_culprit(s, NULL, 4, 8, buf, sizeof(buf)); /* node 2 of 4 ranks each: global ranks */
	EP_ASSERT_STR_EQ(buf, "rank 10 (phase fault.hang) holds up ranks 8, 9, 11 and waits for no one");
	free(s);
}

EP_TEST(two_ranks_waiting_for_each_other)
{
	struct ep_sync *s = sync_of(3);
	char buf[320];
	atomic_store(&s->ctl[0].waiting_on, 1);
	atomic_store(&s->ctl[1].waiting_on, 0);
	ep_state_culprit(s, NULL, 3, 0, buf, sizeof(buf));
	EP_ASSERT(strstr(buf, "ranks 0 and 1 wait for each other") != NULL);
	free(s);
}

EP_TEST(nobody_waits)
{
	struct ep_sync *s = sync_of(2);
	char buf[320] = "x";
	ep_state_culprit(s, NULL, 2, 0, buf, sizeof(buf));
	EP_ASSERT_STR_EQ(buf, "");
	free(s);
}

EP_TEST(a_rank_gone_first)
{
	struct ep_sync *s = sync_of(2);
	struct ep_child kids[2] = {{.pid = 1}, {.pid = 1, .done = 1, .status = SIGKILL}};
	char buf[320];
	atomic_store(&s->ctl[0].waiting_on, 1);
	ep_state_culprit(s, kids, 2, 0, buf, sizeof(buf));
	EP_ASSERT_STR_EQ(buf, "rank 1 is gone (killed by signal 9)");
	free(s);
}

EP_TEST(block_has_a_line_per_rank)
{
	struct ep_sync *s = sync_of(3);
	atomic_store(&s->ctl[1].waiting_on, 0);
	atomic_store(&s->ctl[1].op, 1);
	atomic_store(&s->ctl[1].iter, 17);
	const char *ops[] = {"dispatch", "combine"};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ep_state_block(f, s, NULL, 3, 0, "SIGUSR1; the run goes on", ops, 2, NULL);
	fclose(f);
	EP_ASSERT(strstr(text, "# state of 3 ranks (SIGUSR1; the run goes on):") != NULL);
	EP_ASSERT(strstr(text, "combine") != NULL && strstr(text, "    17") != NULL && strstr(text, "rank 0") != NULL);
	EP_ASSERT(strstr(text, "# likely: rank 0 (phase dispatch.notify) holds up rank 1 and waits for no one") != NULL);
	free(text);
	free(s);
}

EP_TEST_MAIN()
