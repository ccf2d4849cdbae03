/* launcher_test.c - the launcher refuses what would not fit, and stops forking on a signal. */
#include "cli/launcher.h"

#include "cli/command.h"

#include "cli/hostinfo.h"
#include "collectives/error.h"
#include "tests/harness.h"

static void options(struct ep_options *o, const char *ranks, const char *experts)
{
	char *argv[] = {"intranode", "-r", (char *)ranks, "-e", (char *)experts, "-t", "1", "--hidden",
			"256", "-k", "1", "-n", "1", "-w", "0", NULL};
	char err[256];
	FILE *null = fopen("/dev/null", "w");
	EP_ASSERT_INT_EQ(ep_options_parse(&ep_cmd_intranode.options, 15, argv, o, null, err, sizeof(err)), 0);
	fclose(null);
}

/* -r 4096 -e 4096 once forked 2,300 ranks and filled a 24 GB host: the
 * estimate (arena + every rank's R x R state + per-process overhead)
 * refuses it before any fork, with the figure. */
EP_TEST(estimate_refuses_4096_ranks_with_the_figure)
{
	struct ep_hostinfo h;
	ep_hostinfo_read(&h);
	if ((double)h.mem_available > 700.0 * (1 << 30))
		EP_SKIP("this host has over 700 GiB available: 4096 such ranks would fit");
	struct ep_options o;
	options(&o, "4096", "4096");
	struct ep_run_cfg cfg;
	ep_options_run_cfg(&o, &cfg);
	struct ep_run run = {.cfg = &cfg, .routing = o.routing};
	ep_options_shape(&o, 4096, 1, 256, &run.shape);
	char msg[EP_TEXT_MAX];
	int rc = ep_launch_precheck(&ep_intranode_variant, &run, 4096, msg, sizeof(msg));
	EP_ASSERT_INT_EQ(rc, -EP_ENOMEM);
	EP_ASSERT_INT_EQ(ep_error_exit_code(rc), EP_EXIT_ENV);
	fprintf(stderr, "  %s\n", msg);
	EP_ASSERT(strstr(msg, "GiB") != NULL && strstr(msg, "4096 ranks x") != NULL);
	EP_ASSERT(strstr(msg, "lower") != NULL);
	/* 16 ranks of the same shape fit */
	ep_options_free(&o);
	options(&o, "16", "16");
	ep_options_run_cfg(&o, &cfg);
	run = (struct ep_run){.cfg = &cfg, .routing = o.routing};
	ep_options_shape(&o, 16, 1, 256, &run.shape);
	EP_ASSERT_INT_EQ(ep_launch_precheck(&ep_intranode_variant, &run, 16, msg, sizeof(msg)), 0);
	ep_options_free(&o);
}

/* The fork loop checked no signal: SIGTERM during 2,300 forks was ignored
 * until all were made. Now a pending stop forks nothing more. */
EP_TEST(signal_while_starting_stops_forking)
{
	struct ep_options o;
	options(&o, "64", "64");
	struct ep_run_cfg cfg;
	ep_options_run_cfg(&o, &cfg);
	struct ep_run run = {.cfg = &cfg, .routing = o.routing};
	ep_options_shape(&o, 64, 1, 256, &run.shape);
	struct ep_run_result res;
	ep_launcher_interrupt(SIGTERM);
	int code = ep_launch(&ep_intranode_variant, &run, NULL, &res);
	EP_ASSERT_INT_EQ(code, EP_EXIT_TIMEOUT);
	EP_ASSERT(strstr(res.message, "interrupted by signal 15 while starting rank 0") != NULL);
	EP_ASSERT(waitpid(-1, NULL, WNOHANG) < 0); /* no child was ever made */
	ep_run_result_free(&res);
	ep_options_free(&o);
}

EP_TEST_MAIN()
