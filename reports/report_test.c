/* report_test.c - the footer and the JSON report give one verdict, in the one severity order. */
#include "reports/report.h"
#include "reports/result_json.h"

#include "collectives/error.h"
#include "tests/harness.h"

/* The footer used to let a run error outrank wrong data while the JSON took
 * the first failed point: a sweep of [WRONG, TIMEOUT] said TIMEOUT on the
 * console and WRONG DATA in the file. Both now follow ep_exit_worse. */
EP_TEST(footer_and_json_agree_on_the_worst_point)
{
	struct ep_point pts[3] = {{2, 16, 256, {.exit_code = EP_EXIT_OK, .checked = 1}},
				  {2, 32, 256, {.exit_code = EP_EXIT_WRONG, .checked = 1, .wrong_rows = 1}},
				  {2, 64, 256, {.exit_code = EP_EXIT_TIMEOUT}}};
	snprintf(pts[2].res.message, sizeof(pts[2].res.message), "rank 1 died");
	struct ep_report_meta m = {.command = "intranode", .version = "t", .command_line = "x", .dtype = "bf16",
				   .routing = "uniform", .transport = "shm", .hostname = "h", .cpu_model = "c"};
	FILE *null = fopen("/dev/null", "w");
	EP_ASSERT_INT_EQ(ep_table_footer(null, pts, 3, 1, NULL), EP_EXIT_WRONG);
	EP_ASSERT_INT_EQ(ep_points_verdict(pts + 2, 1), EP_EXIT_TIMEOUT);
	/* a lost report makes a passing run fail with 3, never less than what it was */
	EP_ASSERT_INT_EQ(ep_table_footer(null, pts, 1, 1, "writing 'x' failed"), EP_EXIT_ENV);
	EP_ASSERT_INT_EQ(ep_table_footer(null, pts, 3, 1, "writing 'x' failed"), EP_EXIT_WRONG);
	fclose(null);
	char path[64];
	snprintf(path, sizeof(path), "/tmp/ep_report_test_%d.json", (int)getpid());
	EP_ASSERT_INT_EQ(ep_report_write_json(path, &m, pts, 3), 0);
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	unlink(path);
	const char *last = NULL;
	for (const char *p = strstr(buf, "\"verdict\""); p; p = strstr(p + 1, "\"verdict\""))
		last = p;
	EP_ASSERT(last && strstr(last, "WRONG DATA") != NULL);
}

EP_TEST(a_failed_report_write_is_reported_with_its_path)
{
	struct ep_point pt = {2, 16, 256, {.exit_code = EP_EXIT_OK}};
	struct ep_report_meta m = {.command = "intranode", .version = "t", .command_line = "x", .dtype = "bf16",
				   .routing = "uniform", .transport = "shm", .hostname = "h", .cpu_model = "c"};
	char err[256] = "";
	int rc = ep_report_write_all("/nonexistent/r.json", NULL, &m, &pt, 1, err, sizeof(err));
	EP_ASSERT(rc < 0);
	EP_ASSERT(strstr(err, "'/nonexistent/r.json'") != NULL);
}

EP_TEST_MAIN()
