/* json.c - streaming JSON writer into a growable buffer.
 *
 * The writer keeps a stack with one frame per open container: its kind and
 * how many members it has so far, which decides the comma and whether the
 * closing bracket goes on its own line ("[]" and "{}" stay empty). The
 * layout matches Python's json.dumps(indent=2): one member per line,
 * "key": value, and a newline after the top-level value. The buffer is
 * always NUL-terminated so that ep_json_text() can hand it out as is.
 */
#include "reports/json.h"

#include "reports/atomic_file.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct frame {
	int is_object;
	size_t count; /* members written so far */
};

struct ep_json {
	char *buf;           /* the text, NUL-terminated */
	size_t len;          /* bytes of text, without the NUL */
	size_t cap;          /* bytes allocated for buf */
	struct frame *stack; /* open containers, outermost first */
	size_t depth;        /* frames in use */
	size_t stack_cap;    /* frames allocated */
	int done;            /* the top-level value is complete */
	int err;             /* first error: 0, -EINVAL or -ENOMEM */
};

struct ep_json *ep_json_new(void)
{
	struct ep_json *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->cap = 256;
	j->buf = malloc(j->cap);
	if (!j->buf) {
		free(j);
		return NULL;
	}
	j->buf[0] = '\0';
	return j;
}

void ep_json_free(struct ep_json *j)
{
	if (!j)
		return;
	free(j->stack);
	free(j->buf);
	free(j);
}

static void fail(struct ep_json *j, int err)
{
	if (!j->err)
		j->err = err;
}

/* Room for n more bytes plus the NUL; 0, or -1 with j->err set. */
static int reserve(struct ep_json *j, size_t n)
{
	if (j->err)
		return -1;
	if (n < j->cap - j->len)
		return 0;
	size_t cap = j->cap;
	while (n >= cap - j->len) {
		if (cap > SIZE_MAX / 2) {
			fail(j, -ENOMEM);
			return -1;
		}
		cap *= 2;
	}
	char *buf = realloc(j->buf, cap);
	if (!buf) {
		fail(j, -ENOMEM);
		return -1;
	}
	j->buf = buf;
	j->cap = cap;
	return 0;
}

static void put_mem(struct ep_json *j, const char *s, size_t n)
{
	if (reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void put(struct ep_json *j, const char *s)
{
	put_mem(j, s, strlen(s));
}

static void put_indent(struct ep_json *j, size_t level)
{
	size_t n = 2 * level;
	if (reserve(j, n))
		return;
	memset(j->buf + j->len, ' ', n);
	j->len += n;
	j->buf[j->len] = '\0';
}

/* s as a quoted JSON string; unescaped runs are copied in one piece. */
static void put_string(struct ep_json *j, const char *s)
{
	put_mem(j, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		switch (c) {
		case '"': strcpy(esc, "\\\""); break;
		case '\\': strcpy(esc, "\\\\"); break;
		case '\n': strcpy(esc, "\\n"); break;
		case '\t': strcpy(esc, "\\t"); break;
		case '\r': strcpy(esc, "\\r"); break;
		case '\b': strcpy(esc, "\\b"); break;
		case '\f': strcpy(esc, "\\f"); break;
		default:
			if (c >= 0x20)
				continue;
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		}
		put_mem(j, run, (size_t)(s - run));
		put(j, esc);
		run = s + 1;
	}
	put_mem(j, run, (size_t)(s - run));
	put_mem(j, "\"", 1);
}

/*
 * Everything that goes before a value: the checks on key, the comma, the
 * newline and indentation, and "key": inside an object. Returns 0 if the
 * value may follow, -1 after misuse or an earlier error.
 */
static int begin_value(struct ep_json *j, const char *key)
{
	if (!j || j->err)
		return -1;
	if (j->depth == 0) {
		if (key || j->done) {
			fail(j, -EINVAL);
			return -1;
		}
		return 0;
	}
	struct frame *f = &j->stack[j->depth - 1];
	if (f->is_object != (key != NULL)) {
		fail(j, -EINVAL);
		return -1;
	}
	if (f->count++ > 0)
		put_mem(j, ",", 1);
	put_mem(j, "\n", 1);
	put_indent(j, j->depth);
	if (key) {
		put_string(j, key);
		put_mem(j, ": ", 2);
	}
	return j->err ? -1 : 0;
}

/* After a complete value: at top level the document is done. */
static void end_value(struct ep_json *j)
{
	if (j->depth == 0) {
		j->done = 1;
		put_mem(j, "\n", 1);
	}
}

static void begin_container(struct ep_json *j, const char *key, int is_object)
{
	if (begin_value(j, key))
		return;
	if (j->depth == j->stack_cap) {
		size_t cap = j->stack_cap ? 2 * j->stack_cap : 8;
		struct frame *st = realloc(j->stack, cap * sizeof(*st));
		if (!st) {
			fail(j, -ENOMEM);
			return;
		}
		j->stack = st;
		j->stack_cap = cap;
	}
	j->stack[j->depth++] = (struct frame){.is_object = is_object};
	put_mem(j, is_object ? "{" : "[", 1);
}

static void end_container(struct ep_json *j, int is_object)
{
	if (!j || j->err)
		return;
	if (j->depth == 0 || j->stack[j->depth - 1].is_object != is_object) {
		fail(j, -EINVAL);
		return;
	}
	size_t count = j->stack[--j->depth].count;
	if (count > 0) {
		put_mem(j, "\n", 1);
		put_indent(j, j->depth);
	}
	put_mem(j, is_object ? "}" : "]", 1);
	end_value(j);
}

/* A scalar whose text is already formatted. */
static void scalar(struct ep_json *j, const char *key, const char *text)
{
	if (begin_value(j, key))
		return;
	put(j, text);
	end_value(j);
}

void ep_json_begin_object(struct ep_json *j, const char *key)
{
	begin_container(j, key, 1);
}

void ep_json_end_object(struct ep_json *j)
{
	end_container(j, 1);
}

void ep_json_begin_array(struct ep_json *j, const char *key)
{
	begin_container(j, key, 0);
}

void ep_json_end_array(struct ep_json *j)
{
	end_container(j, 0);
}

void ep_json_string(struct ep_json *j, const char *key, const char *value)
{
	if (!value) {
		ep_json_null(j, key);
		return;
	}
	if (begin_value(j, key))
		return;
	put_string(j, value);
	end_value(j);
}

void ep_json_int(struct ep_json *j, const char *key, long long v)
{
	char text[32];
	snprintf(text, sizeof(text), "%lld", v);
	scalar(j, key, text);
}

void ep_json_uint(struct ep_json *j, const char *key, unsigned long long v)
{
	char text[32];
	snprintf(text, sizeof(text), "%llu", v);
	scalar(j, key, text);
}

void ep_json_double(struct ep_json *j, const char *key, double v)
{
	if (!isfinite(v)) {
		scalar(j, key, "null");
		return;
	}
	/* 17 significant digits always read back exactly; fewer usually do
	 * and read better (0.1, not 0.10000000000000001). */
	char text[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(text, sizeof(text), "%.*g", prec, v);
		if (strtod(text, NULL) == v)
			break;
	}
	/* A locale with a decimal comma would make this invalid JSON; printf
	 * and strtod agree on it, so the round trip above still held. */
	for (char *c = text; *c; c++)
		if (*c == ',')
			*c = '.';
	scalar(j, key, text);
}

void ep_json_bool(struct ep_json *j, const char *key, int v)
{
	scalar(j, key, v ? "true" : "false");
}

void ep_json_null(struct ep_json *j, const char *key)
{
	scalar(j, key, "null");
}

const char *ep_json_text(const struct ep_json *j, size_t *len)
{
	if (len)
		*len = 0;
	if (!j || j->err || j->depth > 0 || !j->done)
		return NULL;
	if (len)
		*len = j->len;
	return j->buf;
}

int ep_json_error(const struct ep_json *j)
{
	return j ? j->err : -ENOMEM;
}

int ep_json_write_file(struct ep_json *j, const char *path)
{
	size_t len;
	const char *text = ep_json_text(j, &len);
	int rc = text ? ep_write_file_atomic(path, text, len) : ep_json_error(j);
	ep_json_free(j);
	return rc;
}
