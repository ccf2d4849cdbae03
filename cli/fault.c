/* fault.c - the table of fault kinds and their parser (see fault.h). */
#include "cli/fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"

enum arg_kind { ARG_NONE, ARG_NUM, ARG_NAME, ARG_LINK }; /* ARG_LINK: the target is A-B, two nodes */

struct kind {
	const char *name;
	enum ep_fault_kind kind;
	enum arg_kind arg;     /* what :ARG is */
	long arg_max;
	int needs_iter;        /* only meaningful with @ITER */
};

static const struct kind kinds[] = {
	{"corrupt", EP_FAULT_BITFLIP, ARG_NONE, 0, 0},
	{"bitflip", EP_FAULT_BITFLIP, ARG_NAME, 0, 0},
	{"permute", EP_FAULT_PERMUTE, ARG_NONE, 0, 0},
	{"drop", EP_FAULT_DROP, ARG_NONE, 0, 0},
	{"stale", EP_FAULT_STALE, ARG_NONE, 0, 0},
	{"die", EP_FAULT_DIE, ARG_NONE, 0, 0},
	{"hang", EP_FAULT_HANG, ARG_NONE, 0, 0},
	{"hang", EP_FAULT_HANG, ARG_NAME, 0, 0}, /* hang:R:OP, the op's name in .tensor */
	{"stall", EP_FAULT_HANG, ARG_NONE, 0, 1},
	{"slow", EP_FAULT_SLOW, ARG_NUM, 60 * 1000 * 1000L, 0},
	{"delay", EP_FAULT_SLOW, ARG_NUM, 60 * 1000 * 1000L, 1},
	{"replica", EP_FAULT_REPLICA, ARG_NONE, 0, 0},
	{"noclean", EP_FAULT_NOCLEAN, ARG_NONE, 0, 0},
	{"link-down", EP_FAULT_LINK_DOWN, ARG_LINK, 0, 0},
	{"qp-error", EP_FAULT_LINK_DOWN, ARG_LINK, 0, 0}, /* link-down by a queue-pair error: verbs only */
};
#define NKINDS (int)(sizeof(kinds) / sizeof(kinds[0]))

static int fail(const char *item, char *err, size_t len)
{
	snprintf(err, len, "invalid --fault '%s': want corrupt:R, bitflip:R:TENSOR, permute:R, drop:R, stale:R, "
		 "die:R, hang:R[:OP], stall:R@ITER, slow:R:US, delay:R:US@ITER, replica:R, noclean:R, link-down:A-B or qp-error:A-B (R a rank, A and B nodes; @ITER optional elsewhere)", item);
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	return -EP_EUSAGE;
}

static int parse_num(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* A tensor name: lower-case letters, digits and '_', as the checks name them. */
static int is_name(const char *s)
{
	if (!*s || strlen(s) >= EP_FAULT_TENSOR_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* link-down's target "A-B": two different nodes. */
static int parse_link(struct ep_faults *fs, const struct kind *d, char *target, long it, const char *orig, char *err,
		      size_t len)
{
	char *dash = strchr(target, '-');
	long a, b;
	if (!dash)
		return fail(orig, err, len);
	*dash++ = 0;
	if (parse_num(target, 0, 4095, &a) || parse_num(dash, 0, 4095, &b) || a == b)
		return fail(orig, err, len);
	fs->f[fs->n++] = (struct ep_fault){d->kind, (int)a, b, it, "", d->name};
	return 0;
}

/* One "kind:rank[:arg][@iter]" (NUL-terminated, modified). */
static int parse_one(struct ep_faults *fs, char *item, const char *orig, char *err, size_t len)
{
	char *rank = strchr(item, ':'), *arg = NULL, *at = strchr(item, '@');
	long r, a = 0, it = -1;
	if (!rank || fs->n >= EP_MAX_FAULTS)
		return fail(orig, err, len);
	if (at) {
		*at++ = 0;
		if (parse_num(at, 0, 1000000000L, &it))
			return fail(orig, err, len);
	}
	*rank++ = 0;
	if ((arg = strchr(rank, ':')))
		*arg++ = 0;
	for (int k = 0; k < NKINDS; k++) {
		const struct kind *d = &kinds[k];
		if (strcmp(item, d->name) != 0 || !arg != (d->arg == ARG_NONE || d->arg == ARG_LINK) ||
		    (d->needs_iter && it < 0))
			continue;
		if (d->arg == ARG_LINK)
			return parse_link(fs, d, rank, it, orig, err, len);
		if (parse_num(rank, 0, 4095, &r) || (d->arg == ARG_NUM && parse_num(arg, 1, d->arg_max, &a)) ||
		    (d->arg == ARG_NAME && !is_name(arg)))
			return fail(orig, err, len);
		struct ep_fault *f = &fs->f[fs->n++];
		*f = (struct ep_fault){d->kind, (int)r, a, it, "", d->name};
		if (d->arg == ARG_NAME)
			snprintf(f->tensor, sizeof(f->tensor), "%s", arg);
		return 0;
	}
	return fail(orig, err, len);
}

int ep_faults_parse(struct ep_faults *fs, const char *spec, char *err, size_t len)
{
	char *copy = strdup(spec);
	int rc = copy ? 0 : fail(spec, err, len);
	for (char *item = copy, *comma; !rc && item; item = comma) {
		if ((comma = strchr(item, ',')))
			*comma++ = 0;
		rc = parse_one(fs, item, spec, err, len);
	}
	free(copy);
	return rc;
}

int ep_fault_strikes(const struct ep_fault *f, int rank, long it)
{
	if (f->rank != rank || f->kind == EP_FAULT_LINK_DOWN) /* a link's target is two nodes */
		return 0;
	if (f->iter >= 0)
		return f->iter == it;
	return f->kind == EP_FAULT_SLOW || it == (f->kind == EP_FAULT_STALE ? 1 : 0);
}

int ep_faults_at(const struct ep_faults *fs, enum ep_fault_kind kind, int rank, long it)
{
	for (int i = 0; i < fs->n; i++)
		if (fs->f[i].kind == kind && ep_fault_strikes(&fs->f[i], rank, it))
			return 1;
	return 0;
}

int ep_faults_stop_in(const struct ep_faults *fs, enum ep_fault_kind kind, int rank, long it, const char *op,
		      int first)
{
	for (int i = 0; i < fs->n; i++) {
		const struct ep_fault *f = &fs->f[i];
		if (f->kind == kind && ep_fault_strikes(f, rank, it) &&
		    (f->tensor[0] ? op && !strcmp(f->tensor, op) : first))
			return 1;
	}
	return 0;
}

int ep_faults_has(const struct ep_faults *fs, enum ep_fault_kind kind)
{
	for (int i = 0; i < fs->n; i++)
		if (fs->f[i].kind == kind)
			return 1;
	return 0;
}

int ep_fault_is_data(const struct ep_fault *f)
{
	return f->kind >= EP_FAULT_BITFLIP && f->kind <= EP_FAULT_STALE;
}

int ep_faults_max_rank(const struct ep_faults *fs)
{
	int m = -1;
	for (int i = 0; i < fs->n; i++)
		if (fs->f[i].kind != EP_FAULT_LINK_DOWN)
			m = fs->f[i].rank > m ? fs->f[i].rank : m;
	return m;
}

int ep_faults_link_down(const struct ep_faults *fs, int node, long it, const char **name)
{
	for (int i = 0; i < fs->n; i++) {
		const struct ep_fault *f = &fs->f[i];
		if (f->kind == EP_FAULT_LINK_DOWN && it == (f->iter >= 0 ? f->iter : 0) &&
		    (f->rank == node || f->arg == node)) {
			if (name)
				*name = f->name;
			return f->rank == node ? (int)f->arg : f->rank;
		}
	}
	return -1;
}

int ep_faults_check_nodes(const struct ep_faults *fs, int nodes, char *err, size_t len)
{
	for (int i = 0; i < fs->n; i++) {
		const struct ep_fault *f = &fs->f[i];
		if (f->kind != EP_FAULT_LINK_DOWN || (nodes > 1 && f->rank < nodes && f->arg < nodes))
			continue;
		if (nodes <= 1)
			snprintf(err, len, "--fault %s:%d-%ld needs a run across nodes (internode)", f->name, f->rank, f->arg);
		else
			snprintf(err, len, "--fault %s:%d-%ld targets a node outside the job (nodes 0 to %d)", f->name, f->rank,
				 f->arg, nodes - 1);
		return -EP_EUSAGE;
	}
	return 0;
}

void ep_faults_text(const struct ep_faults *fs, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int i = 0; i < fs->n && n < len; i++) {
		const struct ep_fault *f = &fs->f[i];
		n += (size_t)snprintf(buf + n, len - n, "%s%s:%d", i ? "," : "", f->name ? f->name : "?", f->rank);
		if (n < len && f->kind == EP_FAULT_LINK_DOWN)
			n += (size_t)snprintf(buf + n, len - n, "-%ld", f->arg);
		if (n < len && f->kind == EP_FAULT_SLOW)
			n += (size_t)snprintf(buf + n, len - n, ":%ld", f->arg);
		if (n < len && f->tensor[0])
			n += (size_t)snprintf(buf + n, len - n, ":%s", f->tensor);
		if (n < len && f->iter >= 0)
			n += (size_t)snprintf(buf + n, len - n, "@%ld", f->iter);
	}
}
