/* ab.c - `epbench ab BIN_A BIN_B -- SUBCOMMAND ...`: two builds run alternately, then compared.
 *
 * A one-off comparison of two runs measures the machine's mood as much as
 * the builds: on a shared host a median moves by 10-30% from run to run.
 * ab runs A and B alternately (A B A B ..., --rounds each), with the same
 * options, each round writing its JSON result into a private temporary
 * directory; it then pools every sample of every round per point and op and
 * prints compare's table of the pooled samples (reports/compare.h), so that
 * slow drift of the machine falls on both sides alike.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/command.h"
#include "cli/supervise.h"
#include "collectives/error.h"
#include "reports/compare.h"
#include "reports/text_file.h"

#define MAX_ROUNDS 100
#define MAX_ARGS 256

struct ab_args {
	int rounds;
	const char *bin[2];
	const char *json[2];   /* --json-a, --json-b */
	double max_regress, confidence;
	int nsub;
	char **sub;            /* SUBCOMMAND OPTIONS... */
};

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench ab [options] BIN_A BIN_B -- SUBCOMMAND [OPTIONS...]\n\n"
		     "Runs `BIN_A SUBCOMMAND OPTIONS` and `BIN_B SUBCOMMAND OPTIONS` alternately, pools every\n"
		     "sample of every round, and compares B against A (as epbench compare does).\n\noptions:\n"
		     "  --rounds N          rounds of each binary [5]\n"
		     "  --max-regress PCT   exit 5 when an op of B is slower than A by more than PCT, beyond noise\n"
		     "  --confidence C      confidence of the interval [0.95]\n"
		     "  --json-a FILE       write A's pooled result (every round's samples)\n"
		     "  --json-b FILE       write B's pooled result\n");
}

static int fail(const char *what, const char *value)
{
	char q[256];
	fprintf(stderr, "epbench ab: %s '%s'\n", what, ep_quote(value ? value : "", q, sizeof(q)));
	return -1;
}

/* One option with its value at argv[*i]; 0 or -1. */
static int option(struct ab_args *a, char **argv, int argc, int *i)
{
	const char *s = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	char *end = NULL;
	double x = v ? strtod(v, &end) : NAN;
	int num_ok = v && end != v && end && !*end && isfinite(x);
	(*i)++;
	if (!strcmp(s, "--rounds") && num_ok && x >= 1 && x <= MAX_ROUNDS && x == (int)x)
		a->rounds = (int)x;
	else if (!strcmp(s, "--max-regress") && num_ok && x >= 0 && x <= 1000)
		a->max_regress = x;
	else if (!strcmp(s, "--confidence") && num_ok && x > 0 && x < 1)
		a->confidence = x;
	else if ((!strcmp(s, "--json-a") || !strcmp(s, "--json-b")) && v && *v)
		a->json[s[7] == 'b'] = v;
	else if (!strcmp(s, "--rounds") || !strcmp(s, "--max-regress") || !strcmp(s, "--confidence"))
		return fprintf(stderr, "epbench ab: invalid %s '%s'%s\n", s, v ? v : "",
			       s[2] == 'r' ? ": want 1 to 100 rounds" : s[2] == 'm' ? ": want a percentage in [0, 1000]"
									: ": want a number in (0, 1)"), -1;
	else
		return fail("unexpected argument", s);
	return 0;
}

/* 0, 1 for --help, -1 after the one line. */
static int parse(int argc, char **argv, struct ab_args *a)
{
	*a = (struct ab_args){.rounds = 5, .max_regress = -1, .confidence = 0.95};
	int nbin = 0, i;
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return usage(stdout), 1;
		if (argv[i][0] == '-') {
			if (option(a, argv, argc, &i))
				return -1;
		} else if (nbin < 2) {
			a->bin[nbin++] = argv[i];
		} else {
			return fail("unexpected argument", argv[i]);
		}
	}
	if (nbin != 2)
		return fprintf(stderr, "epbench ab: want two binaries: epbench ab BIN_A BIN_B -- SUBCOMMAND [OPTIONS]\n"), -1;
	if (i >= argc - 1)
		return fprintf(stderr, "epbench ab: want '-- SUBCOMMAND [OPTIONS]' after the binaries\n"), -1;
	for (int b = 0; b < 2; b++)
		if (access(a->bin[b], X_OK))
			return fail(errno == ENOENT ? "no such binary" : "cannot run binary", a->bin[b]);
	a->sub = argv + i + 1;
	a->nsub = argc - i - 1;
	return a->nsub + 5 > MAX_ARGS ? fail("too many arguments after", "--") : 0;
}

static volatile pid_t running;

static void forward(int sig)
{
	ep_launcher_interrupt(sig);
	if (running > 0)
		kill(running, sig);
}

/* Runs bin with the subcommand, writing its JSON to json and its output to
 * log. Returns its exit status (4 when killed by a signal). */
static int run_one(const struct ab_args *a, const char *bin, const char *json, const char *log)
{
	char *argv[MAX_ARGS];
	int n = 0;
	argv[n++] = (char *)bin;
	for (int i = 0; i < a->nsub; i++)
		argv[n++] = a->sub[i];
	argv[n++] = "--json", argv[n++] = (char *)json, argv[n++] = "-q", argv[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			dup2(fd, 1), dup2(fd, 2);
		execv(bin, argv);
		_exit(127);
	}
	if (pid < 0)
		return EP_EXIT_ENV;
	running = pid;
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	running = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EP_EXIT_TIMEOUT;
}

/* Appends the samples of src's ops to dst's ops of the same point and name. */
static int pool_into(struct ep_doc *dst, const struct ep_doc *src)
{
	for (int i = 0; i < dst->npoints; i++) {
		struct ep_doc_point *p = &dst->points[i];
		const struct ep_doc_point *q = ep_doc_match(dst, i, src);
		for (int k = 0; q && k < p->nops; k++) {
			const struct ep_doc_op *o = ep_doc_op(q, p->ops[k].name);
			struct ep_doc_op *d = &p->ops[k];
			if (!o || !o->nsamples || !d->samples_us)
				continue;
			double *nv = realloc(d->samples_us, sizeof(double) * (size_t)(d->nsamples + o->nsamples));
			if (!nv)
				return -ENOMEM;
			memcpy(nv + d->nsamples, o->samples_us, sizeof(double) * (size_t)o->nsamples);
			d->samples_us = nv;
			d->nsamples += o->nsamples;
		}
	}
	return 0;
}

/* The result of every round of one side, pooled into the first round's. */
static int pool_side(const char *dir, char side, int rounds, struct ep_doc *pooled, char *err, size_t len)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%c1.json", dir, side);
	int rc = ep_doc_read(path, pooled, err, len);
	for (int r = 2; !rc && r <= rounds; r++) {
		struct ep_doc d;
		snprintf(path, sizeof(path), "%s/%c%d.json", dir, side, r);
		if (!(rc = ep_doc_read(path, &d, err, len))) {
			rc = pool_into(pooled, &d);
			ep_doc_free(&d);
		}
	}
	return rc;
}

/* The rounds, alternately; 0 or the status of a failed round (named). */
static int run_rounds(const struct ab_args *a, const char *dir)
{
	for (int r = 1; r <= a->rounds; r++) {
		double secs[2];
		for (int s = 0; s < 2; s++) {
			char json[600], log[600];
			snprintf(json, sizeof(json), "%s/%c%d.json", dir, "ab"[s], r);
			snprintf(log, sizeof(log), "%s/%c%d.log", dir, "ab"[s], r);
			int64_t t0 = ep_now_ns();
			int code = ep_launcher_interrupted() ? EP_EXIT_TIMEOUT : run_one(a, a->bin[s], json, log);
			secs[s] = (double)(ep_now_ns() - t0) * 1e-9;
			if (code) {
				fprintf(stderr, "epbench ab: round %d: %s exited with status %d (%s)\n", r, a->bin[s], code,
					ep_launcher_interrupted() ? "interrupted" : "its output follows");
				if (!ep_launcher_interrupted()) {
					char cmd[700];
					snprintf(cmd, sizeof(cmd), "tail -n 5 '%s' >&2", log);
					if (system(cmd)) { /* best effort: the status says enough */
					}
				}
				/* a round that failed its own way keeps its status; 5 (a limit) and others: a failed round */
				return code == EP_EXIT_WRONG || code == EP_EXIT_USAGE || code == EP_EXIT_ENV ? code : EP_EXIT_TIMEOUT;
			}
		}
		printf("# round %d of %d: A %.1f s, B %.1f s\n", r, a->rounds, secs[0], secs[1]);
		fflush(stdout);
	}
	return 0;
}

/* Pools, compares, writes the pooled results. Returns the exit status. */
static int report(const struct ab_args *a, const char *dir)
{
	struct ep_doc pa, pb;
	char err[EP_TEXT_MAX], base[600];
	int code = EP_EXIT_OK, rc;
	if ((rc = pool_side(dir, 'a', a->rounds, &pa, err, sizeof(err))))
		return fprintf(stderr, "epbench ab: A: %s\n", err), EP_EXIT_ENV;
	if ((rc = pool_side(dir, 'b', a->rounds, &pb, err, sizeof(err)))) {
		ep_doc_free(&pa);
		return fprintf(stderr, "epbench ab: B: %s\n", err), EP_EXIT_ENV;
	}
	snprintf(pa.path, sizeof(pa.path), "A=%s (%d rounds)", a->bin[0], a->rounds);
	snprintf(pb.path, sizeof(pb.path), "B=%s (%d rounds)", a->bin[1], a->rounds);
	if (ep_compare_comparable(&pa, &pb, err, sizeof(err))) {
		fprintf(stderr, "epbench ab: A and B did not run the same experiment: %s\n", err);
		code = EP_EXIT_USAGE;
	} else if (ep_compare_print(stdout, &pa, &pb, a->confidence, a->max_regress) > 0) {
		code = EP_EXIT_SLOW;
	}
	for (int s = 0; s < 2; s++) {
		snprintf(base, sizeof(base), "%s/%c1.json", dir, "ab"[s]);
		if (a->json[s] && (rc = ep_doc_write_samples(base, s ? &pb : &pa, a->json[s]))) {
			fprintf(stderr, "epbench ab: writing '%s' failed: %s\n", a->json[s], ep_strerror(rc));
			code = ep_exit_worse(code, EP_EXIT_ENV);
		}
	}
	ep_doc_free(&pa);
	ep_doc_free(&pb);
	return code;
}

static void remove_dir(const char *dir, int rounds)
{
	char path[600];
	for (int r = 1; r <= rounds; r++)
		for (int s = 0; s < 4; s++) {
			snprintf(path, sizeof(path), "%s/%c%d.%s", dir, "ab"[s % 2], r, s < 2 ? "json" : "log");
			unlink(path);
		}
	rmdir(dir);
}

static int ab_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct ab_args a;
	char dir[] = "/tmp/epbench-ab.XXXXXX", err[EP_TEXT_MAX];
	(void)cmd;
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc > 0 ? EP_EXIT_OK : EP_EXIT_USAGE;
	for (int s = 0; s < 2; s++)
		if (a.json[s] && ep_output_path_check(s ? "--json-b" : "--json-a", a.json[s], err, sizeof(err)))
			return fprintf(stderr, "epbench ab: %s\n", err), EP_EXIT_USAGE;
	if (!mkdtemp(dir))
		return fprintf(stderr, "epbench ab: temporary directory: %s\n", strerror(errno)), EP_EXIT_ENV;
	struct sigaction sa = {.sa_handler = forward};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("# ab: %d rounds of A=%s and B=%s, alternately\n", a.rounds, a.bin[0], a.bin[1]);
	int code = run_rounds(&a, dir);
	if (!code)
		code = report(&a, dir);
	remove_dir(dir, a.rounds);
	return code;
}

const struct ep_command ep_cmd_ab = {
	.name = "ab",
	.help = "run two builds alternately with the same options, pool the samples, compare them",
	.main = ab_main,
};
