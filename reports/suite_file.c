/* suite_file.c - the suite file parser (see suite_file.h). */
#define _GNU_SOURCE
#include "reports/suite_file.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/text_file.h"

#define MAX_DEPTH 8
#define MAX_SUITE_BYTES ((size_t)1 << 20)

struct loader {
	struct ep_suite *s;
	char *stack[MAX_DEPTH];   /* realpaths of the files being read: includes may not loop */
	int depth;
	char *err;
	size_t len;
};

/* "FILE:LINE: what", one printable line (whatever the file holds). */
static int bad(struct loader *l, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(struct loader *l, const char *file, int line, const char *fmt, ...)
{
	char f[256];
	va_list ap;
	int n = snprintf(l->err, l->len, "%s:%d: ", ep_quote(file, f, sizeof(f)), line);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < l->len)
		vsnprintf(l->err + n, l->len - (size_t)n, fmt, ap);
	va_end(ap);
	for (unsigned char *c = (unsigned char *)l->err; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	return -EP_EUSAGE;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* blame=rankN[:WHAT]: N a rank, WHAT a tensor or phase name; blame=link:
 * the culprit is a link (blame_rank -1). 0 or -1. */
static int parse_blame(const char *v, struct ep_suite_case *c)
{
	char *end;
	if (!strcmp(v, "link")) {
		c->blame_rank = -1;
		c->blame_what[0] = 0;
		snprintf(c->blame, sizeof(c->blame), "link");
		return 0;
	}
	if (strncmp(v, "rank", 4) || !isdigit((unsigned char)v[4]))
		return -1;
	errno = 0;
	long r = strtol(v + 4, &end, 10);
	if (errno || r > 1 << 20 || (*end && *end != ':'))
		return -1;
	const char *what = *end ? end + 1 : "";
	size_t n = strlen(what);
	if (*end && (n == 0 || n >= sizeof(c->blame_what) ||
		     strspn(what, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.") != n))
		return -1;
	c->blame_rank = (int)r;
	memcpy(c->blame_what, what, n + 1);
	snprintf(c->blame, sizeof(c->blame), "%s", v);
	return 0;
}

/* key=value words of a case, taken out of its words (a word with '=' that
 * follows an option is that option's value unless it is one of the keys).
 * 0 or an error. */
static int case_keys(struct loader *l, struct ep_suite_case *c, char **w, int *n)
{
	int k = 0;
	for (int i = 0; i < *n; i++) {
		char *eq = strchr(w[i], '='), *end;
		int known = !strncmp(w[i], "expect=", 7) || !strncmp(w[i], "blame=", 6) || !strncmp(w[i], "timeout=", 8);
		int value = i > 0 && !strncmp(w[i - 1], "--", 2) && !strchr(w[i - 1], '='); /* --parallel dp=2,tp=2 */
		if (!eq || w[i][0] == '-' || (!known && value)) {
			w[k++] = w[i];
			continue;
		}
		errno = 0;
		if (!strncmp(w[i], "expect=", 7)) {
			long v = strtol(eq + 1, &end, 10);
			if (errno || *end || end == eq + 1 || v < 0 || v > 5)
				return bad(l, c->file, c->line, "invalid '%s': want expect=0..5", w[i]);
			c->expect = (int)v;
		} else if (!strncmp(w[i], "blame=", 6)) {
			if (parse_blame(eq + 1, c))
				return bad(l, c->file, c->line, "invalid '%.80s': want blame=rankN, blame=rankN:WHAT or blame=link", w[i]);
		} else if (!strncmp(w[i], "timeout=", 8)) {
			c->timeout_s = strtod(eq + 1, &end);
			if (errno || *end || end == eq + 1 || !(c->timeout_s > 0) || c->timeout_s > 86400)
				return bad(l, c->file, c->line, "invalid '%s': want timeout=SECONDS", w[i]);
		} else {
			return bad(l, c->file, c->line, "unknown key '%.80s' (want expect=, blame= or timeout=)", w[i]);
		}
	}
	*n = k;
	if (c->blame[0] && !c->expect)
		return bad(l, c->file, c->line, "blame=%s needs the failure it blames (expect=1..5)", c->blame);
	return 0;
}

static int add_case(struct loader *l, const char *file, int line, char **w, int n)
{
	struct ep_suite *s = l->s;
	if (s->n >= EP_SUITE_MAX_CASES)
		return bad(l, file, line, "more than 4096 cases");
	struct ep_suite_case c = {.line = line};
	snprintf(c.file, sizeof(c.file), "%s", file);
	if (!valid_name(w[0]))
		return bad(l, file, line, "invalid case name '%.80s' (letters, digits, _ . -, up to 63)", w[0]);
	snprintf(c.name, sizeof(c.name), "%s", w[0]);
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->cases[i].name, c.name))
			return bad(l, file, line, "case name '%s' is used twice", c.name);
	n--, w++;
	int rc = case_keys(l, &c, w, &n);
	if (rc)
		return rc;
	if (n < 1)
		return bad(l, file, line, "case '%s' has no subcommand", c.name);
	c.argv = calloc((size_t)n + 1, sizeof(char *));
	struct ep_suite_case *nc = realloc(s->cases, sizeof(*nc) * (size_t)(s->n + 1));
	if (!c.argv || !nc) {
		free(c.argv);
		if (nc)
			s->cases = nc;
		return -EP_ENOMEM;
	}
	memcpy(c.argv, w, sizeof(char *) * (size_t)n);
	c.argc = n;
	s->cases = nc;
	s->cases[s->n++] = c;
	return 0;
}

static int load_file(struct loader *l, const char *path, const char *from, int from_line);

/* One line (NUL-terminated, comments gone): an include, a case or nothing. */
static int parse_line(struct loader *l, const char *path, int lineno, char *p)
{
	char *w[EP_SUITE_MAX_WORDS];
	int n = 0;
	for (char *save, *t = strtok_r(p, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save))
		if (n >= EP_SUITE_MAX_WORDS)
			return bad(l, path, lineno, "more than 128 words on a line");
		else
			w[n++] = t;
	if (!n)
		return 0;
	if (!strcmp(w[0], "include")) {
		char dir[PATH_MAX], inc[PATH_MAX + 8];
		if (n != 2)
			return bad(l, path, lineno, "want 'include FILE'");
		const char *slash = strrchr(path, '/');
		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
		snprintf(inc, sizeof(inc), "%s/%s", w[1][0] == '/' ? "" : dir, w[1]);
		return load_file(l, w[1][0] == '/' ? w[1] : inc, path, lineno);
	}
	return add_case(l, path, lineno, w, n);
}

static int parse_text(struct loader *l, const char *path, char *text)
{
	int lineno = 0, rc = 0;
	for (char *next = text; !rc && next;) {
		char *line = next;
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		rc = parse_line(l, path, lineno, line);
	}
	return rc;
}

static int load_file(struct loader *l, const char *path, const char *from, int from_line)
{
	char *text, real[PATH_MAX];
	size_t n;
	if (l->depth >= MAX_DEPTH)
		return bad(l, from, from_line, "includes nest deeper than 8 at '%s'", path);
	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	for (int i = 0; i < l->depth; i++)
		if (!strcmp(l->stack[i], real))
			return bad(l, from, from_line, "include loop: '%s' includes itself", path);
	int rc = ep_text_file_read("suite file", path, MAX_SUITE_BYTES, &text, &n, l->err, l->len);
	if (rc && from_line && rc != -EP_ENOMEM) {
		char why[512];
		snprintf(why, sizeof(why), "%s", l->err);
		return bad(l, from, from_line, "include: %s", why);
	}
	if (rc)
		return rc;
	char **nt = realloc(l->s->texts, sizeof(char *) * (size_t)(l->s->ntexts + 1));
	if (!nt || !(l->stack[l->depth] = strdup(real))) {
		free(text);
		if (nt)
			l->s->texts = nt;
		return -EP_ENOMEM;
	}
	l->s->texts = nt;
	l->s->texts[l->s->ntexts++] = text;
	l->depth++;
	rc = parse_text(l, path, text);
	free(l->stack[--l->depth]);
	return rc;
}

int ep_suite_load(const char *path, struct ep_suite *s, char *err, size_t len)
{
	struct loader l = {.s = s, .err = err, .len = len};
	memset(s, 0, sizeof(*s));
	int rc = load_file(&l, path, path, 0);
	if (!rc && !s->n)
		rc = bad(&l, path, 0, "no cases");
	if (rc)
		ep_suite_free(s);
	return rc;
}

void ep_suite_free(struct ep_suite *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->cases[i].argv);
	for (int i = 0; i < s->ntexts; i++)
		free(s->texts[i]);
	free(s->cases);
	free(s->texts);
	memset(s, 0, sizeof(*s));
}
