/* json.h - a streaming JSON writer that builds a pretty-printed document in memory. */
#ifndef EP_JSON_H
#define EP_JSON_H

#include <stddef.h>

/*
 * Each call appends to one growing buffer; the document holds exactly one
 * top-level value. Misuse and allocation failure are sticky: the first one
 * is recorded, every later call does nothing, and ep_json_text() returns
 * NULL. Every function accepts the NULL that ep_json_new() returns on
 * ENOMEM, so a caller may check once, at the end. Not thread-safe.
 */
struct ep_json;

/* Lifetime */

/* A writer with an empty document; NULL on ENOMEM. */
struct ep_json *ep_json_new(void);
/* Frees the writer and its text; accepts NULL. */
void ep_json_free(struct ep_json *j);

/* Values: key is the member name inside an object and must be NULL inside
 * an array or at top level; anything else is misuse (-EINVAL). Keys and
 * strings are UTF-8, copied at once and not validated. */
void ep_json_begin_object(struct ep_json *j, const char *key);
/* Closes the innermost container, which must be an object. */
void ep_json_end_object(struct ep_json *j);
void ep_json_begin_array(struct ep_json *j, const char *key);
/* Closes the innermost container, which must be an array. */
void ep_json_end_array(struct ep_json *j);
/* NULL value -> null. Escapes '"', '\\' and control characters (\n, \t, \r,
 * \b, \f, else \u00XX); other bytes, UTF-8 included, pass through. */
void ep_json_string(struct ep_json *j, const char *key, const char *value);
void ep_json_int(struct ep_json *j, const char *key, long long v);
void ep_json_uint(struct ep_json *j, const char *key, unsigned long long v);
/* The shortest of %.15g, %.16g, %.17g that reads back as v exactly;
 * NaN and infinities, which JSON cannot express, become null. */
void ep_json_double(struct ep_json *j, const char *key, double v);
/* Nonzero -> true. */
void ep_json_bool(struct ep_json *j, const char *key, int v);
void ep_json_null(struct ep_json *j, const char *key);

/* Result */

/*
 * The complete document, NUL-terminated, pretty-printed with 2-space
 * indentation and ending in a newline; *len (if len is not NULL) gets its
 * length without the NUL. The text belongs to j and stays valid until the
 * next call on j. NULL (and *len = 0) if ep_json_error() is nonzero, or if
 * the document is incomplete: no value yet, or containers still open.
 */
const char *ep_json_text(const struct ep_json *j, size_t *len);
/* The first error recorded: 0, -EINVAL (misuse) or -ENOMEM; -ENOMEM for
 * NULL. An incomplete document is not an error, it just has no text yet. */
int ep_json_error(const struct ep_json *j);

/* Writes j's document to path atomically (ep_write_file_atomic) and frees
 * j. 0, -errno, or j's error. */
int ep_json_write_file(struct ep_json *j, const char *path);

#endif
