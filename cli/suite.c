/* suite.c - `epbench suite FILE`: every case of a suite as its own job, one verdict each, JUnit/TAP/JSON.
 *
 * Every case line is checked before anything runs (its subcommand and
 * options, reported with the suite file's line). Then each case runs as a
 * child epbench in its own process group with a deadline (--case-timeout,
 * or the case's timeout=), writing its JSON result; the runner never stops
 * at a failure. A case passes when it ends with its expected status
 * (expect=, 0 by default). One line per case (verdict, seconds, headline),
 * a summary, and the reports, rewritten after every case. The exit status
 * is the most severe of the failed cases' (collectives/error.h), a case
 * that exited 0 where a failure was expected counting as wrong data (1):
 * the check it tests did not fire.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster/env.h"
#include "cli/command.h"
#include "cli/supervise.h"
#include "cli/sweep.h"
#include "collectives/error.h"
#include "reports/atomic_file.h"
#include "reports/result_json.h"
#include "reports/suite_report.h"
#include "reports/text_file.h"

#define MAX_OUTPUT (256 * 1024)

struct suite_args {
	const char *file, *junit, *tap, *json, *filter;
	double case_timeout;
	int list;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench suite FILE [options]\n\n"
		     "Runs every case of a suite file (cases/*.suite) as its own job, never stopping at a failure.\n\noptions:\n"
		     "  --junit FILE        JUnit XML for CI servers\n"
		     "  --tap FILE          TAP 13\n"
		     "  --json FILE         a JSON summary; each case's own result goes to FILE.d/NAME.json\n"
		     "  --case-timeout S    a case's deadline, unless it says timeout= [600]\n"
		     "  --filter GLOB       only cases whose name matches\n"
		     "  --list              print the cases and stop\n");
}

static int bad_arg(const char *what, const char *v)
{
	char q[256];
	fprintf(stderr, "epbench suite: %s '%s' (see epbench suite --help)\n", what, ep_quote(v ? v : "", q, sizeof(q)));
	return -1;
}

/* 0, 1 for --help, -1 after the one line. */
static int parse(int argc, char **argv, struct suite_args *a)
{
	*a = (struct suite_args){.case_timeout = 600};
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (!strcmp(s, "--help") || !strcmp(s, "-h"))
			return usage(stdout), 1;
		if (!strcmp(s, "--list"))
			a->list = 1;
		else if ((!strcmp(s, "--junit") || !strcmp(s, "--tap") || !strcmp(s, "--json") || !strcmp(s, "--filter")) && v)
			*(s[2] == 'j' ? (s[3] == 'u' ? &a->junit : &a->json) : s[2] == 't' ? &a->tap : &a->filter) = argv[++i];
		else if (!strcmp(s, "--case-timeout") && v && (a->case_timeout = strtod(v, &end)) > 0 && !*end &&
			 a->case_timeout <= 86400)
			i++;
		else if (s[0] != '-' && !a->file)
			a->file = s;
		else
			return bad_arg(s[0] == '-' && v ? "invalid option or value" : "unexpected argument", s[0] == '-' && v ? v : s);
	}
	return a->file ? 0 : bad_arg("want a suite file", "");
}

static const char *env_get(const char *name)
{
	return getenv(name);
}

/* Every point's shape, as the run will check it (a node job with the nodes
 * and ranks per node it will resolve). 1 after a usage error in why. */
static int check_points(const struct ep_command *cmd, struct ep_options *o, char *why, size_t len)
{
	int fixed = 0, nodes = 0;
	struct ep_command chosen;
	cmd = ep_command_for(cmd, o, &chosen); /* the variant the case's command line runs */
	if (cmd->across_nodes && cmd->across_nodes(o)) {
		struct ep_cluster_cfg cfg;
		if (ep_cluster_resolve(o, env_get, &cfg, why, len))
			return 1;
		nodes = cfg.nodes, fixed = cfg.nodes * cfg.ranks_per_node;
		o->ranks_per_node = cfg.ranks_per_node;
	}
	return ep_sweep_check(cmd, o, fixed, nodes, 0, 0, why, len) == EP_EXIT_USAGE;
}

/* A case's subcommand and options, checked as a run would check them. */
static int validate(const struct ep_suite_case *c, char *err, size_t len)
{
	const struct ep_command *cmd = ep_command_find(c->argv[0]);
	struct ep_options o;
	char why[EP_TEXT_MAX];
	FILE *null = fopen("/dev/null", "w");
	int rc = 0;
	if (!cmd || cmd->main)
		rc = snprintf(why, sizeof(why), "'%s' is not a subcommand that runs points (intranode, low-latency, internode)",
			      c->argv[0]);
	else if (ep_options_parse(&cmd->options, c->argc, c->argv, &o, null, why, sizeof(why)))
		rc = 1;
	else {
		rc = check_points(cmd, &o, why, sizeof(why));
		ep_options_free(&o);
	}
	if (null)
		fclose(null);
	if (rc)
		snprintf(err, len, "%.200s:%d: case %s: %.200s", c->file, c->line, c->name, why);
	return rc ? -EP_EUSAGE : 0;
}

/* Reads up to MAX_OUTPUT bytes of path (the case's log). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = f ? malloc(MAX_OUTPUT + 1) : NULL;
	size_t n = buf ? fread(buf, 1, MAX_OUTPUT, f) : 0;
	if (f)
		fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

static pid_t running;

static void on_signal(int sig)
{
	ep_launcher_interrupt(sig);
	if (running > 0)
		kill(-running, sig);
}

/* Waits for the case's process group leader until the deadline; then the
 * group is stopped (TERM, KILL 2 s later). Returns its exit status. */
static int wait_case(pid_t pid, double timeout_s, int *timed_out)
{
	int64_t deadline = ep_now_ns() + (int64_t)(timeout_s * 1e9), killed = 0;
	for (;;) {
		int st;
		pid_t got = waitpid(pid, &st, WNOHANG);
		if (got == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : EP_EXIT_TIMEOUT;
		if (got < 0 && errno != EINTR)
			return EP_EXIT_ENV;
		int64_t now = ep_now_ns();
		if (!killed && now > deadline) {
			kill(-pid, SIGTERM);
			killed = now;
			*timed_out = 1;
		} else if (killed && now > killed + 2000000000LL) {
			kill(-pid, SIGKILL);
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Runs case c of the suite: self ARGS --json RESULT, output into log. */
static void run_case(const char *self, const struct ep_suite_case *c, double timeout_s, const char *log,
		     struct ep_case_result *r)
{
	char *argv[EP_SUITE_MAX_WORDS + 8];
	int n = 0, timed_out = 0;
	argv[n++] = (char *)self;
	for (int i = 0; i < c->argc; i++)
		argv[n++] = c->argv[i];
	argv[n++] = "--json", argv[n++] = r->result_path, argv[n++] = "--progress", argv[n++] = "off", argv[n] = NULL;
	int64_t t0 = ep_now_ns();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			dup2(fd, 1), dup2(fd, 2);
		execv(self, argv);
		_exit(127);
	}
	if (pid > 0)
		setpgid(pid, pid);
	running = pid;
	r->exit_code = pid < 0 ? EP_EXIT_ENV : wait_case(pid, timeout_s, &timed_out);
	running = 0;
	r->ran = 1;
	r->seconds = (double)(ep_now_ns() - t0) * 1e-9;
	r->output = slurp(log);
	if (timed_out)
		snprintf(r->failure, sizeof(r->failure), "the case ran past its deadline of %g s and was stopped", timeout_s);
}

/* The line of output that says why a case failed: its footer's point line, else an error. */
static void failure_line(struct ep_case_result *r)
{
	const char *keys[] = {"# point ", "epbench "};
	if (r->failure[0])
		return;
	for (int k = 0; k < 2 && r->output; k++)
		for (const char *l = r->output; *l;) {
			size_t n = strcspn(l, "\n");
			if (!strncmp(l, keys[k], strlen(keys[k]))) {
				snprintf(r->failure, sizeof(r->failure), "%.*s", (int)(n < 400 ? n : 400), l);
				return;
			}
			l += n + (l[n] == '\n');
		}
	snprintf(r->failure, sizeof(r->failure), "exit %d, want %d", r->exit_code, r->c->expect);
}

/* The case's headline figure from its JSON result. */
static void headline(struct ep_case_result *r)
{
	struct ep_doc d;
	char err[EP_TEXT_MAX];
	snprintf(r->headline, sizeof(r->headline), "%s", ep_verdict_name(r->exit_code));
	if (ep_doc_read(r->result_path, &d, err, sizeof(err)))
		return;
	if (d.npoints && d.points[0].nops)
		snprintf(r->headline, sizeof(r->headline), "%s %.1f us, %.3g GB/s%s", d.points[0].ops[0].name,
			 d.points[0].ops[0].median_us, d.points[0].ops[0].algbw_gbs, d.npoints > 1 ? " (first point)" : "");
	ep_doc_free(&d);
}

/* Whether line l (n bytes) names "rank N" (not rank N0...) and what. */
static int line_blames(const char *l, size_t n, int rank, const char *what)
{
	char want[32], line[EP_TEXT_MAX];
	snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), l);
	if (rank < 0) /* blame=link */
		return strstr(line, "likely: link") != NULL;
	snprintf(want, sizeof(want), "rank %d", rank);
	int named = 0;
	for (const char *p = line; (p = strstr(p, want)); p += strlen(want))
		named |= !isdigit((unsigned char)p[strlen(want)]);
	return named && (!*what || strstr(line, what));
}

/* A failure that came as expected must also name the place blame= says. */
static int blamed(const struct ep_case_result *r)
{
	const struct ep_suite_case *c = r->c;
	for (const char *l = r->output ? r->output : ""; *l;) {
		size_t n = strcspn(l, "\n");
		if (!strncmp(l, "# point ", 8) && line_blames(l, n, c->blame_rank, c->blame_what))
			return 1;
		l += n + (l[n] == '\n');
	}
	return 0;
}

static void judge(struct ep_case_result *r)
{
	const struct ep_suite_case *c = r->c;
	r->passed = r->exit_code == c->expect;
	headline(r);
	if (!r->passed) {
		failure_line(r);
	} else if (c->blame[0] && !blamed(r)) {
		r->passed = 0;
		if (c->blame_rank < 0)
			snprintf(r->failure, sizeof(r->failure), "exit %d as expected, but no '# point' line blames a link",
				 r->exit_code);
		else
			snprintf(r->failure, sizeof(r->failure), "exit %d as expected, but no '# point' line names rank %d%s%s",
				 r->exit_code, c->blame_rank, c->blame_what[0] ? " and " : "", c->blame_what);
	}
}

/* The suite's status: the most severe failed case's; a missed expected failure counts as 1. */
static int suite_status(const struct ep_case_result *r, int n)
{
	int code = EP_EXIT_OK;
	for (int i = 0; i < n; i++)
		if (r[i].ran && !r[i].passed)
			code = ep_exit_worse(code, r[i].exit_code ? r[i].exit_code : EP_EXIT_WRONG);
	return code;
}

static int write_reports(const struct suite_args *a, const char *name, const struct ep_case_result *r, int n,
			 double secs)
{
	int rc = ep_junit_write(a->junit, name, r, n, secs), one;
	if ((one = ep_tap_write(a->tap, r, n)) && !rc)
		rc = one;
	if ((one = ep_suite_json_write(a->json, name, r, n, secs, suite_status(r, n))) && !rc)
		rc = one;
	return rc;
}

/* The cases to run (--filter), each validated. Returns their count, or -1 after one line. */
static int select_cases(const struct suite_args *a, const struct ep_suite *s, const struct ep_suite_case **sel)
{
	char err[EP_TEXT_MAX];
	int n = 0;
	for (int i = 0; i < s->n; i++) {
		const struct ep_suite_case *c = &s->cases[i];
		if (a->filter && fnmatch(a->filter, c->name, 0))
			continue;
		if (c->expect != EP_EXIT_USAGE && validate(c, err, sizeof(err)))
			return fprintf(stderr, "epbench suite: %s\n", err), -1;
		sel[n++] = c;
	}
	return n;
}

static void command_line(const struct ep_suite_case *c, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "epbench");
	for (int i = 0; i < c->argc && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " %s", c->argv[i]);
}

/* Where case results go: FILE.d/ beside --json (kept), else a temporary folder. */
static int results_dir(const struct suite_args *a, char *dir, size_t len)
{
	if (a->json) {
		snprintf(dir, len, "%s.d", a->json);
		return ep_mkdir_p(dir);
	}
	snprintf(dir, len, "/tmp/epbench-suite.XXXXXX");
	return mkdtemp(dir) ? 0 : -errno;
}

static int run_all(const struct suite_args *a, const char *name, const struct ep_suite_case **sel, int n,
		   struct ep_case_result *r, const char *dir)
{
	char self[PATH_MAX], log[PATH_MAX + 128];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int64_t t0 = ep_now_ns();
	self[sl > 0 ? sl : 0] = 0;
	for (int i = 0; i < n; i++) {
		r[i].c = sel[i];
		command_line(sel[i], r[i].command_line, sizeof(r[i].command_line));
	}
	for (int i = 0; i < n && !ep_launcher_interrupted(); i++) {
		snprintf(r[i].result_path, sizeof(r[i].result_path), "%.500s/%s.json", dir, sel[i]->name);
		snprintf(log, sizeof(log), "%s/%s.log", dir, sel[i]->name);
		run_case(self, sel[i], sel[i]->timeout_s > 0 ? sel[i]->timeout_s : a->case_timeout, log, &r[i]);
		if (!a->json)
			unlink(log);
		judge(&r[i]);
		printf("%-4s %-32s %-22s %7.1f s  %s\n", r[i].passed ? "ok" : "FAIL", sel[i]->name,
		       r[i].passed ? (sel[i]->expect ? "expected failure" : "PASS") : ep_verdict_name(r[i].exit_code),
		       r[i].seconds, r[i].passed ? r[i].headline : r[i].failure);
		fflush(stdout);
		if (write_reports(a, name, r, n, (double)(ep_now_ns() - t0) * 1e-9))
			return fprintf(stderr, "epbench suite: writing a report failed\n"), EP_EXIT_ENV;
	}
	return 0;
}

static int suite_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct suite_args a;
	struct ep_suite s;
	char err[EP_TEXT_MAX], dir[PATH_MAX], name[128];
	(void)cmd;
	int rc = parse(argc, argv, &a), code;
	if (rc)
		return rc > 0 ? EP_EXIT_OK : EP_EXIT_USAGE;
	const char *outs[3] = {a.junit, a.tap, a.json};
	for (int i = 0; i < 3; i++)
		if (outs[i] && ep_output_path_check(i == 0 ? "--junit" : i == 1 ? "--tap" : "--json", outs[i], err, sizeof(err)))
			return fprintf(stderr, "epbench suite: %s\n", err), EP_EXIT_USAGE;
	if ((rc = ep_suite_load(a.file, &s, err, sizeof(err))))
		return fprintf(stderr, "epbench suite: %s\n", err), ep_error_exit_code(rc);
	const struct ep_suite_case **sel = calloc((size_t)s.n, sizeof(*sel));
	struct ep_case_result *r = calloc((size_t)s.n, sizeof(*r));
	int n = sel && r ? select_cases(&a, &s, sel) : -1;
	const char *base = strrchr(a.file, '/') ? strrchr(a.file, '/') + 1 : a.file;
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(base, "."), base);
	if (n < 0 || (a.list && n >= 0)) {
		for (int i = 0; a.list && i < n; i++) {
			command_line(sel[i], err, sizeof(err));
			printf("%-32s expect=%d  %s\n", sel[i]->name, sel[i]->expect, err);
		}
		code = n < 0 ? EP_EXIT_USAGE : EP_EXIT_OK;
	} else if ((rc = results_dir(&a, dir, sizeof(dir)))) {
		fprintf(stderr, "epbench suite: results folder: %s\n", ep_strerror(rc));
		code = EP_EXIT_ENV;
	} else {
		struct sigaction sa = {.sa_handler = on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		int64_t t0 = ep_now_ns();
		printf("# suite %s: %d case%s\n", a.file, n, n == 1 ? "" : "s");
		code = run_all(&a, name, sel, n, r, dir);
		int ran = 0, failed = 0;
		for (int i = 0; i < n; i++)
			ran += r[i].ran, failed += r[i].ran && !r[i].passed;
		printf("# suite %s: %d passed, %d failed, %d not run, in %.1f s\n", a.file, ran - failed, failed, n - ran,
		       (double)(ep_now_ns() - t0) * 1e-9);
		code = ep_exit_worse(code, suite_status(r, n));
		if (ep_launcher_interrupted())
			code = ep_exit_worse(code, EP_EXIT_TIMEOUT);
		for (int i = 0; !a.json && i < n; i++)
			unlink(r[i].result_path);
		if (!a.json)
			rmdir(dir);
	}
	for (int i = 0; r && i < s.n; i++)
		free(r[i].output);
	free(r);
	free(sel);
	ep_suite_free(&s);
	return code;
}

const struct ep_command ep_cmd_suite = {
	.name = "suite",
	.help = "run every case of a suite file, one verdict each; JUnit XML, TAP 13 and JSON for CI",
	.main = suite_main,
};
