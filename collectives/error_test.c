/* error_test.c - codes, names, exit statuses and the one severity order. */
#include "collectives/error.h"

#include <errno.h>

#include "tests/harness.h"

EP_TEST(severity_order_is_wrong_timeout_env_usage_slow_pass)
{
	static const int order[] = EP_EXIT_SEVERITY;
	int n = (int)(sizeof(order) / sizeof(order[0]));
	EP_ASSERT_INT_EQ(n, 6);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			int want = i <= j ? order[i] : order[j];
			EP_ASSERT_INT_EQ(ep_exit_worse(order[i], order[j]), want);
		}
	EP_ASSERT_INT_EQ(ep_exit_worse(EP_EXIT_TIMEOUT, EP_EXIT_WRONG), EP_EXIT_WRONG);
	EP_ASSERT_INT_EQ(ep_exit_worse(EP_EXIT_SLOW, EP_EXIT_ENV), EP_EXIT_ENV);
	EP_ASSERT_INT_EQ(ep_exit_worse(EP_EXIT_OK, EP_EXIT_SLOW), EP_EXIT_SLOW);
	EP_ASSERT_INT_EQ(ep_exit_worse(EP_EXIT_ENV, 137), 137); /* unknown ranks with 4 */
	EP_ASSERT_INT_EQ(ep_exit_worse(EP_EXIT_WRONG, 137), EP_EXIT_WRONG);
}

EP_TEST(codes_map_to_exit_statuses)
{
	EP_ASSERT_INT_EQ(ep_error_exit_code(-EP_EWRONGDATA), EP_EXIT_WRONG);
	EP_ASSERT_INT_EQ(ep_error_exit_code(-EP_EUSAGE), EP_EXIT_USAGE);
	EP_ASSERT_INT_EQ(ep_error_exit_code(-EP_ENOMEM), EP_EXIT_ENV);
	EP_ASSERT_INT_EQ(ep_error_exit_code(-EP_ETIMEDOUT), EP_EXIT_TIMEOUT);
	EP_ASSERT_INT_EQ(ep_error_exit_code(-EADDRINUSE), EP_EXIT_ENV);
	EP_ASSERT_STR_EQ(ep_errname(-EP_ETIMEDOUT), "EP_ETIMEDOUT");
}

EP_TEST_MAIN()
