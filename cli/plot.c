/* plot.c - `epbench plot FILE... -o OUT.svg|png`: draws results with gnuplot.
 *
 * One file: its sweep (or, with --kind links, an internode result's
 * node-pair heatmap). Two files: B against A (--kind sweep draws them on
 * one sweep plot instead). The script goes to gnuplot's standard input;
 * the picture is written beside OUT and renamed over it when gnuplot
 * succeeded, so a failed plot never leaves half a file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/command.h"
#include "collectives/error.h"
#include "reports/plot.h"
#include "reports/text_file.h"

#define MAX_FILES 16

struct plot_args {
	const char *files[MAX_FILES];
	int nfiles;
	const char *out, *kind, *op;
	enum ep_plot_y y;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench plot FILE... -o OUT.svg|OUT.png [options]\n\n"
		     "Draws results (--json files) with gnuplot: one file's sweep, or B against A.\n\noptions:\n"
		     "  -o, --output OUT    the picture: .svg or .png\n"
		     "  --y algbw|time      what a sweep shows [algbw]\n"
		     "  --kind auto|sweep|compare|links   [auto: sweep for one file, compare for two]\n"
		     "  --op OP             links: the op whose node pairs are drawn [the first]\n");
}

static int bad(const char *what, const char *v)
{
	char q[256];
	fprintf(stderr, "epbench plot: %s '%s' (see epbench plot --help)\n", what, ep_quote(v ? v : "", q, sizeof(q)));
	return -1;
}

/* 0, 1 for --help, -1 after the one line. */
static int parse(int argc, char **argv, struct plot_args *a)
{
	*a = (struct plot_args){.kind = "auto", .y = EP_PLOT_ALGBW};
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(s, "--help") || !strcmp(s, "-h"))
			return usage(stdout), 1;
		if ((!strcmp(s, "-o") || !strcmp(s, "--output")) && v)
			a->out = argv[++i];
		else if (!strcmp(s, "--y") && v && (!strcmp(v, "algbw") || !strcmp(v, "time")))
			a->y = !strcmp(argv[++i], "time") ? EP_PLOT_TIME : EP_PLOT_ALGBW;
		else if (!strcmp(s, "--kind") && v && strstr("|auto|sweep|compare|links|", v) && *v && !strchr(v, '|'))
			a->kind = argv[++i];
		else if (!strcmp(s, "--op") && v)
			a->op = argv[++i];
		else if (s[0] != '-' && a->nfiles < MAX_FILES)
			a->files[a->nfiles++] = s;
		else
			return bad(s[0] == '-' && v ? "invalid option or value" : "unexpected argument", s[0] == '-' && v ? v : s);
	}
	size_t n = a->out ? strlen(a->out) : 0;
	if (!a->out || n < 5 || (strcmp(a->out + n - 4, ".svg") && strcmp(a->out + n - 4, ".png")))
		return bad("want -o OUT.svg or OUT.png, not", a->out);
	if (!a->nfiles)
		return bad("want at least one result file", "");
	if (!strcmp(a->kind, "compare") && a->nfiles != 2)
		return bad("--kind compare wants two files, not", a->nfiles == 1 ? "one" : "more");
	return 0;
}

/* Runs gnuplot on script into tmp; 0, or an exit status after one line. */
static int run_gnuplot(const char *script, const char *tmp)
{
	void (*old)(int) = signal(SIGPIPE, SIG_IGN); /* a gnuplot that is missing or dies reads nothing */
	FILE *p = popen("gnuplot 2>&1", "w");
	if (!p) {
		signal(SIGPIPE, old);
		return fprintf(stderr, "epbench plot: cannot run gnuplot: %s\n", strerror(errno)), EP_EXIT_ENV;
	}
	fputs(script, p);
	int st = pclose(p);
	signal(SIGPIPE, old);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return fprintf(stderr, "epbench plot: gnuplot is not installed (apt-get install gnuplot-nox, or scripts/install-deps.sh)\n"),
		       EP_EXIT_ENV;
	if (!WIFEXITED(st) || WEXITSTATUS(st) || access(tmp, F_OK))
		return fprintf(stderr, "epbench plot: gnuplot failed (status %d)\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1),
		       EP_EXIT_ENV;
	return 0;
}

/* The script for the files, drawing into tmp. 0 or an exit status. */
static int make_script(const struct plot_args *a, struct ep_doc *docs, const char *tmp, char **text, size_t *len)
{
	char err[EP_TEXT_MAX];
	FILE *f = open_memstream(text, len);
	int rc = f ? 0 : -ENOMEM;
	const char *kind = strcmp(a->kind, "auto") ? a->kind : a->nfiles == 2 ? "compare" : "sweep";
	if (!rc && !strcmp(kind, "compare"))
		rc = ep_plot_compare(f, tmp, &docs[0], &docs[1], 0.95, err, sizeof(err));
	else if (!rc && !strcmp(kind, "links"))
		rc = ep_plot_links(f, tmp, &docs[0], a->op, err, sizeof(err));
	else if (!rc)
		rc = ep_plot_sweep(f, tmp, docs, a->nfiles, a->y, err, sizeof(err));
	if (f)
		fclose(f);
	if (rc)
		fprintf(stderr, "epbench plot: %s\n", rc == -ENOMEM ? "out of memory" : err);
	return rc ? ep_error_exit_code(rc) : 0;
}

static int plot_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct plot_args a;
	struct ep_doc docs[MAX_FILES];
	char err[EP_TEXT_MAX], tmp[4200];
	int rc = parse(argc, argv, &a), nread = 0, code = 0;
	(void)cmd;
	if (rc)
		return rc > 0 ? EP_EXIT_OK : EP_EXIT_USAGE;
	if (ep_output_path_check("-o", a.out, err, sizeof(err)))
		return fprintf(stderr, "epbench plot: %s\n", err), EP_EXIT_USAGE;
	for (; nread < a.nfiles && !code; nread++)
		if ((rc = ep_doc_read(a.files[nread], &docs[nread], err, sizeof(err))))
			code = ep_error_exit_code(rc), fprintf(stderr, "epbench plot: %s\n", err);
	if (code)
		nread--;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d%s", a.out, (int)getpid(), a.out + strlen(a.out) - 4);
	char *script = NULL;
	size_t len = 0;
	if (!code && !(code = make_script(&a, docs, tmp, &script, &len)) && !(code = run_gnuplot(script, tmp)) &&
	    rename(tmp, a.out))
		code = EP_EXIT_ENV, fprintf(stderr, "epbench plot: writing '%s' failed: %s\n", a.out, strerror(errno));
	unlink(tmp);
	free(script);
	for (int i = 0; i < nread; i++)
		ep_doc_free(&docs[i]);
	if (!code)
		printf("# plot: %s\n", a.out);
	return code;
}

const struct ep_command ep_cmd_plot = {
	.name = "plot",
	.help = "draw results with gnuplot: a sweep, B against A, or an internode node-pair heatmap",
	.main = plot_main,
};
