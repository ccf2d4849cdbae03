/* error.c - names, messages and exit statuses for ep_error codes. */
#define _GNU_SOURCE
#include "collectives/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct ep_error_info {
	int code;
	int exit_code;
	const char *name;
	const char *msg;
};

static const struct ep_error_info ep_errors[] = {
#define EP_ERROR_ROW(name, value, exit_code, msg) {value, exit_code, #name, msg},
	EP_ERROR_LIST(EP_ERROR_ROW)
#undef EP_ERROR_ROW
};

static const struct ep_error_info *find(int err)
{
	for (size_t i = 0; i < sizeof(ep_errors) / sizeof(ep_errors[0]); i++)
		if (ep_errors[i].code == -err)
			return &ep_errors[i];
	return NULL;
}

const char *ep_strerror(int err)
{
	const struct ep_error_info *e = find(err);
	if (e)
		return e->msg;
	return err < 0 ? strerror(-err) : "success";
}

const char *ep_errname(int err)
{
	const struct ep_error_info *e = find(err);
	if (e)
		return e->name;
	if (err >= 0)
		return "OK";
	const char *n = strerrorname_np(-err);
	return n ? n : "EUNKNOWN";
}

/* Rank of a status in EP_EXIT_SEVERITY: 0 is the most severe. */
static int severity_rank(int code)
{
	static const int order[] = EP_EXIT_SEVERITY;
	for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++)
		if (order[i] == code)
			return i;
	return 1; /* unknown: as severe as a lost rank */
}

int ep_exit_worse(int a, int b)
{
	return severity_rank(b) < severity_rank(a) ? b : a;
}

int ep_error_exit_code(int err)
{
	const struct ep_error_info *e = find(err);
	if (e)
		return e->exit_code;
	return err < 0 ? EP_EXIT_ENV : EP_EXIT_OK;
}

int ep_refuse(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}
