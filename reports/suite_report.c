/* suite_report.c - JUnit XML, TAP 13 and JSON of a suite's results (see suite_report.h). */
#define _GNU_SOURCE
#include "reports/suite_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collectives/error.h"
#include "reports/atomic_file.h"
#include "reports/json.h"
#include "reports/report.h"

/* XML text: &, <, >, quotes escaped; control bytes other than tab and
 * newline (not allowed in XML 1.0) and bytes >= 0x80 written as '?'. */
static void xml_text(FILE *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; c && *c; c++) {
		if (*c == '&')
			fputs("&amp;", f);
		else if (*c == '<')
			fputs("&lt;", f);
		else if (*c == '>')
			fputs("&gt;", f);
		else if (*c == '"')
			fputs("&quot;", f);
		else if ((*c < 0x20 && *c != '\n' && *c != '\t') || *c >= 0x80)
			fputc('?', f);
		else
			fputc(*c, f);
	}
}

/* The text built in memory (open_memstream sets it at fclose), written atomically. */
static int finish(const char *path, FILE *f, char **text, size_t *len)
{
	if (fclose(f)) {
		free(*text);
		return -ENOMEM;
	}
	int rc = ep_write_file_atomic(path, *text, *len);
	free(*text);
	return rc;
}

static int counted(const struct ep_case_result *r, int n, int failed)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += r[i].ran && (failed ? !r[i].passed : 1);
	return k;
}

int ep_junit_write(const char *path, const char *suite, const struct ep_case_result *r, int n, double seconds)
{
	char *text = NULL, host[256] = "localhost", stamp[32];
	size_t len = 0;
	FILE *f = path ? open_memstream(&text, &len) : NULL;
	if (!path)
		return 0;
	if (!f)
		return -ENOMEM;
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now, &tm));
	gethostname(host, sizeof(host) - 1);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"");
	xml_text(f, suite);
	fprintf(f, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"%.3f\" timestamp=\"%s\" hostname=\"",
		counted(r, n, 0), counted(r, n, 1), n - counted(r, n, 0), seconds, stamp);
	xml_text(f, host);
	fprintf(f, "\">\n");
	for (int i = 0; i < n; i++) {
		fprintf(f, "  <testcase name=\"");
		xml_text(f, r[i].c->name);
		fprintf(f, "\" classname=\"epbench.");
		xml_text(f, suite);
		fprintf(f, "\" time=\"%.3f\">\n", r[i].seconds);
		if (!r[i].ran) {
			fprintf(f, "    <skipped/>\n");
		} else if (!r[i].passed) {
			fprintf(f, "    <failure type=\"%s (exit %d, want %d)\" message=\"", ep_verdict_name(r[i].exit_code),
				r[i].exit_code, r[i].c->expect);
			xml_text(f, r[i].failure);
			fprintf(f, "\">");
			xml_text(f, r[i].failure);
			fprintf(f, "</failure>\n");
		}
		fprintf(f, "    <system-out>");
		xml_text(f, r[i].command_line);
		fprintf(f, "\n");
		xml_text(f, r[i].output ? r[i].output : "");
		fprintf(f, "</system-out>\n  </testcase>\n");
	}
	fprintf(f, "</testsuite>\n");
	return finish(path, f, &text, &len);
}

/* A YAML scalar in double quotes. */
static void yaml_text(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f)
			fputc('?', f);
		else
			fputc(*c, f);
	fputc('"', f);
}

int ep_tap_write(const char *path, const struct ep_case_result *r, int n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = path ? open_memstream(&text, &len) : NULL;
	if (!path)
		return 0;
	if (!f)
		return -ENOMEM;
	fprintf(f, "TAP version 13\n1..%d\n", n);
	for (int i = 0; i < n; i++) {
		const struct ep_case_result *x = &r[i];
		if (!x->ran) {
			fprintf(f, "ok %d - %s # SKIP not run: the suite was stopped\n", i + 1, x->c->name);
			continue;
		}
		fprintf(f, "%s %d - %s\n  ---\n  exit: %d\n  expect: %d\n  duration_ms: %.0f\n  headline: ",
			x->passed ? "ok" : "not ok", i + 1, x->c->name, x->exit_code, x->c->expect, x->seconds * 1e3);
		yaml_text(f, x->headline);
		if (!x->passed) {
			fprintf(f, "\n  message: ");
			yaml_text(f, x->failure);
		}
		fprintf(f, "\n  command: ");
		yaml_text(f, x->command_line);
		fprintf(f, "\n  ...\n");
	}
	return finish(path, f, &text, &len);
}

/* result as a path relative to the summary's folder when it is below it. */
static const char *beside(const char *summary, const char *result)
{
	const char *slash = strrchr(summary, '/');
	size_t n = slash ? (size_t)(slash - summary) + 1 : 0;
	return !strncmp(summary, result, n) ? result + n : result;
}

int ep_suite_json_write(const char *path, const char *suite, const struct ep_case_result *r, int n, double seconds,
			int exit_code)
{
	if (!path)
		return 0;
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "schema", "epbench-suite/1");
	ep_json_string(j, "suite", suite);
	ep_json_int(j, "cases", n);
	ep_json_int(j, "passed", counted(r, n, 0) - counted(r, n, 1));
	ep_json_int(j, "failed", counted(r, n, 1));
	ep_json_int(j, "not_run", n - counted(r, n, 0));
	ep_json_double(j, "seconds", seconds);
	ep_json_int(j, "exit_code", exit_code);
	ep_json_begin_array(j, "results");
	for (int i = 0; i < n; i++) {
		ep_json_begin_object(j, NULL);
		ep_json_string(j, "name", r[i].c->name);
		ep_json_string(j, "file", r[i].c->file);
		ep_json_int(j, "line", r[i].c->line);
		ep_json_string(j, "command_line", r[i].command_line);
		ep_json_int(j, "expect", r[i].c->expect);
		ep_json_string(j, "blame", r[i].c->blame[0] ? r[i].c->blame : NULL);
		ep_json_bool(j, "ran", r[i].ran);
		if (r[i].ran) {
			ep_json_int(j, "exit_code", r[i].exit_code);
			ep_json_bool(j, "passed", r[i].passed);
			ep_json_double(j, "seconds", r[i].seconds);
			ep_json_string(j, "headline", r[i].headline);
			ep_json_string(j, "failure", r[i].passed ? NULL : r[i].failure);
			ep_json_string(j, "result", r[i].result_path[0] ? beside(path, r[i].result_path) : NULL);
		}
		ep_json_end_object(j);
	}
	ep_json_end_array(j);
	ep_json_end_object(j);
	return ep_json_write_file(j, path);
}
