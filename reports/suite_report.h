/* suite_report.h - a suite's results for CI servers: JUnit XML, TAP 13 and JSON.
 *
 * JUnit: one <testsuite> with a <testcase> per case (classname
 * "epbench.SUITE", time in seconds), a <failure> carrying the case's first
 * mismatch report or error line when it did not meet its expectation, and
 * <system-out> with the case's table. It follows the structure of Jenkins'
 * JUnit schema (junit-4.xsd); tests/junit.xsd checks it. TAP 13: "ok N -
 * NAME" lines with a YAML block per case. JSON: the summary, each case
 * linked to its own epbench result file (a path relative to the summary's
 * folder, FILE.d/NAME.json). All three are written atomically
 * and rewritten after every case, so an interrupted suite keeps what ran.
 */
#ifndef EP_SUITE_REPORT_H
#define EP_SUITE_REPORT_H

#include <stddef.h>

#include "reports/results.h"
#include "reports/suite_file.h"

struct ep_case_result {
	const struct ep_suite_case *c;
	int ran;                    /* 0: not run (the suite was stopped first) */
	int exit_code;
	int passed;                 /* met its expectation */
	double seconds;
	char command_line[1024];
	char headline[200];         /* "dispatch 12.3 us, 4.56 GB/s" or the verdict */
	char failure[EP_TEXT_MAX];  /* why it did not meet its expectation, one line */
	char *output;               /* the case's table and messages (malloc'ed), or NULL */
	char result_path[600];      /* its epbench JSON, or "" */
};

/* 0 or -errno. suite: the suite's name; path NULL: nothing written. */
int ep_junit_write(const char *path, const char *suite, const struct ep_case_result *r, int n, double seconds);
int ep_tap_write(const char *path, const struct ep_case_result *r, int n);
int ep_suite_json_write(const char *path, const char *suite, const struct ep_case_result *r, int n, double seconds,
			int exit_code);

#endif
