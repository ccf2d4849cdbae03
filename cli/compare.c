/* compare.c - `epbench compare A.json B.json`: which ops got faster or slower, beyond noise. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "collectives/error.h"
#include "reports/atomic_file.h"
#include "reports/compare.h"
#include "reports/json.h"
#include "reports/text_file.h"

struct compare_args {
	const char *a, *b, *json;
	double max_regress;  /* < 0: no gate */
	double confidence;
	int force;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: epbench compare A.json B.json [options]\n\n"
		     "Matches the points of two results by shape and compares every op's median (of each\n"
		     "iteration's max over ranks), with a bootstrap interval of the difference.\n\noptions:\n"
		     "  --max-regress PCT   exit 5 when an op of B is slower than A by more than PCT and its\n"
		     "                      interval excludes zero [no gate]\n"
		     "  --confidence C      confidence of the interval [0.95]\n"
		     "  --json FILE         write the comparison as JSON (atomically)\n"
		     "  --force             compare results of different traffic, routing or check settings\n");
}

/* A number in [lo, hi] (strict bounds where open_lo / open_hi). 0, or -1 after the one line. */
static int number(const char *opt, const char *v, double lo, double hi, int open_lo, int open_hi, double *out)
{
	char *end = NULL, q[128];
	errno = 0;
	double x = v ? strtod(v, &end) : NAN;
	int ok = v && !errno && end != v && !*end && isfinite(x) && (open_lo ? x > lo : x >= lo) &&
		 (open_hi ? x < hi : x <= hi);
	if (!ok) {
		fprintf(stderr, "epbench compare: invalid %s '%s': want a number in %c%g, %g%c\n", opt,
			v ? ep_quote(v, q, sizeof(q)) : "", open_lo ? '(' : '[', lo, hi, open_hi ? ')' : ']');
		return -1;
	}
	*out = x;
	return 0;
}

/* 0, 1 for --help, or -1 after printing the one line. */
static int parse(int argc, char **argv, struct compare_args *a)
{
	*a = (struct compare_args){.max_regress = -1, .confidence = 0.95};
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char q[128];
		int rc = 0;
		if (!strcmp(s, "--help") || !strcmp(s, "-h"))
			return usage(stdout), 1;
		if (!strcmp(s, "--max-regress"))
			rc = number(s, v, 0, 1000, 0, 0, &a->max_regress), i++;
		else if (!strcmp(s, "--confidence"))
			rc = number(s, v, 0, 1, 1, 1, &a->confidence), i++;
		else if (!strcmp(s, "--json") && v && *v)
			a->json = argv[++i];
		else if (!strcmp(s, "--force"))
			a->force = 1;
		else if (s[0] != '-' && (!a->a || !a->b))
			*(a->a ? &a->b : &a->a) = s;
		else {
			fprintf(stderr, "epbench compare: unexpected argument '%s' (see epbench compare --help)\n",
				ep_quote(s, q, sizeof(q)));
			rc = -1;
		}
		if (rc)
			return -1;
	}
	if (!a->a || !a->b)
		return fprintf(stderr, "epbench compare: want two result files: epbench compare A.json B.json\n"), -1;
	return 0;
}

/* The comparison as JSON: a row per matched point and op. */
static int write_json(const char *path, const struct ep_doc *a, const struct ep_doc *b, const struct compare_args *ar)
{
	struct ep_json *j = ep_json_new();
	ep_json_begin_object(j, NULL);
	ep_json_string(j, "schema", "epbench-compare/1");
	ep_json_string(j, "a", a->path);
	ep_json_string(j, "b", b->path);
	ep_json_double(j, "confidence", ar->confidence);
	ep_json_double(j, "max_regress_pct", ar->max_regress);
	ep_json_begin_array(j, "rows");
	for (int i = 0; i < a->npoints; i++) {
		const struct ep_doc_point *pa = &a->points[i], *pb = ep_doc_match(a, i, b);
		struct ep_op_cmp c[EP_MAX_OPS];
		int n = pb ? ep_compare_points(pa, pb, ar->confidence, ar->max_regress, c) : 0;
		for (int k = 0; k < n; k++) {
			ep_json_begin_object(j, NULL);
			ep_json_int(j, "ranks", pa->ranks);
			ep_json_int(j, "tokens", pa->tokens);
			ep_json_int(j, "hidden", pa->hidden);
			ep_json_string(j, "op", c[k].op);
			ep_json_double(j, "median_a_us", c[k].median_a);
			ep_json_double(j, "median_b_us", c[k].median_b);
			ep_json_double(j, "delta_pct", c[k].delta_pct);
			if (c[k].have_interval) {
				ep_json_double(j, "interval_lo_pct", c[k].lo_pct);
				ep_json_double(j, "interval_hi_pct", c[k].hi_pct);
			}
			ep_json_string(j, "verdict", ep_verdict_word(c[k].verdict));
			ep_json_bool(j, "regressed", c[k].regressed);
			ep_json_end_object(j);
		}
	}
	ep_json_end_array(j);
	ep_json_end_object(j);
	return ep_json_write_file(j, path);
}

static int compare_main(const struct ep_command *cmd, int argc, char **argv)
{
	struct compare_args ar;
	struct ep_doc a, b;
	char err[EP_TEXT_MAX];
	int rc = parse(argc, argv, &ar);
	(void)cmd;
	if (rc)
		return rc > 0 ? EP_EXIT_OK : EP_EXIT_USAGE;
	if (ar.json && ep_output_path_check("--json", ar.json, err, sizeof(err)))
		return fprintf(stderr, "epbench compare: %s\n", err), EP_EXIT_USAGE;
	if ((rc = ep_doc_read(ar.a, &a, err, sizeof(err))))
		return fprintf(stderr, "epbench compare: %s\n", err), ep_error_exit_code(rc);
	if ((rc = ep_doc_read(ar.b, &b, err, sizeof(err)))) {
		ep_doc_free(&a);
		return fprintf(stderr, "epbench compare: %s\n", err), ep_error_exit_code(rc);
	}
	int code = EP_EXIT_OK;
	if (!ar.force && ep_compare_comparable(&a, &b, err, sizeof(err))) {
		fprintf(stderr, "epbench compare: not the same experiment: %s (--force compares anyway)\n", err);
		code = EP_EXIT_USAGE;
	} else if (ep_compare_print(stdout, &a, &b, ar.confidence, ar.max_regress) > 0) {
		code = EP_EXIT_SLOW;
	}
	if (code != EP_EXIT_USAGE && ar.json && (rc = write_json(ar.json, &a, &b, &ar))) {
		fprintf(stderr, "epbench compare: writing '%s' failed: %s\n", ar.json, ep_strerror(rc));
		code = ep_exit_worse(code, EP_EXIT_ENV);
	}
	ep_doc_free(&a);
	ep_doc_free(&b);
	return code;
}

const struct ep_command ep_cmd_compare = {
	.name = "compare",
	.help = "compare two results (--json files): medians, bootstrap intervals, verdicts; --max-regress gates",
	.main = compare_main,
};
