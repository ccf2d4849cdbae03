/* fault.c - the table of fault kinds and their parser (see fault.h). */
#include "cli/fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"

struct kind {
	const char *name;
	enum ep_fault_kind kind;
	int has_arg;           /* takes :ARG */
	long arg_max;
};

static const struct kind kinds[] = {
	{"corrupt", EP_FAULT_CORRUPT, 0, 0},
	{"die", EP_FAULT_DIE, 0, 0},
	{"hang", EP_FAULT_HANG, 0, 0},
	{"slow", EP_FAULT_SLOW, 1, 60 * 1000 * 1000L},
};
#define NKINDS (int)(sizeof(kinds) / sizeof(kinds[0]))

static int fail(const char *item, char *err, size_t len)
{
	snprintf(err, len, "invalid --fault '%s': want corrupt:RANK, die:RANK, hang:RANK or slow:RANK:US, each with an optional @ITER",
		 item);
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
		if (strcmp(item, kinds[k].name) != 0 || !arg != !kinds[k].has_arg)
			continue;
		if (parse_num(rank, 0, 4095, &r) || (arg && parse_num(arg, 1, kinds[k].arg_max, &a)))
			return fail(orig, err, len);
		fs->f[fs->n++] = (struct ep_fault){kinds[k].kind, (int)r, a, it};
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

const struct ep_fault *ep_faults_find(const struct ep_faults *fs, enum ep_fault_kind kind, int rank)
{
	for (int i = 0; i < fs->n; i++)
		if (fs->f[i].kind == kind && fs->f[i].rank == rank)
			return &fs->f[i];
	return NULL;
}

int ep_faults_at(const struct ep_faults *fs, enum ep_fault_kind kind, int rank, long it)
{
	for (int i = 0; i < fs->n; i++)
		if (fs->f[i].kind == kind && fs->f[i].rank == rank &&
		    (fs->f[i].iter >= 0 ? fs->f[i].iter == it : kind == EP_FAULT_SLOW || it == 0))
			return 1;
	return 0;
}

long ep_faults_max_check_iter(const struct ep_faults *fs)
{
	long m = -1;
	for (int i = 0; i < fs->n; i++)
		if (fs->f[i].kind == EP_FAULT_CORRUPT && fs->f[i].iter > m)
			m = fs->f[i].iter;
	return m;
}

int ep_faults_max_rank(const struct ep_faults *fs)
{
	int m = -1;
	for (int i = 0; i < fs->n; i++)
		m = fs->f[i].rank > m ? fs->f[i].rank : m;
	return m;
}

void ep_faults_text(const struct ep_faults *fs, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (int i = 0; i < fs->n && n < len; i++) {
		const char *name = "?";
		for (int k = 0; k < NKINDS; k++)
			if (kinds[k].kind == fs->f[i].kind)
				name = kinds[k].name;
		n += (size_t)snprintf(buf + n, len - n, fs->f[i].kind == EP_FAULT_SLOW ? "%s%s:%d:%ld" : "%s%s:%d",
				      i ? "," : "", name, fs->f[i].rank, fs->f[i].arg);
		if (fs->f[i].iter >= 0 && n < len)
			n += (size_t)snprintf(buf + n, len - n, "@%ld", fs->f[i].iter);
	}
}
