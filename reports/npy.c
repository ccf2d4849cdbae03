/* npy.c - .npy files: a format 1.0 writer and a reader of 1.0 to 3.0.
 *
 * The header is built in a small stack buffer (ndim <= 4 keeps it under 256
 * bytes, far from format 1.0's 64 KiB limit) and written together with the
 * caller's data as two iovecs, so a large tensor is never copied.
 */
#include "reports/npy.h"

#include "reports/atomic_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectives/error.h"
#include "reports/text_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_ORDER ">"
#else
#define HOST_ORDER "<"
#endif

#define NPY_MAX_NDIM 4
#define NPY_ALIGN 64        /* numpy's ARRAY_ALIGN: data offset multiple */
#define NPY_PREFIX_LEN 10   /* magic (6) + version (2) + header length (2) */

static const struct {
	const char *descr;
	size_t size;
} dtypes[] = {
	[EP_NPY_BOOL] = {"|b1", 1},
	[EP_NPY_U1] = {"|u1", 1},
	[EP_NPY_I1] = {"|i1", 1},
	[EP_NPY_U2] = {HOST_ORDER "u2", 2},
	[EP_NPY_I4] = {HOST_ORDER "i4", 4},
	[EP_NPY_I8] = {HOST_ORDER "i8", 8},
	[EP_NPY_F4] = {HOST_ORDER "f4", 4},
};

size_t ep_npy_itemsize(enum ep_npy_dtype dtype)
{
	if ((unsigned)dtype >= sizeof(dtypes) / sizeof(dtypes[0]))
		return 0;
	return dtypes[dtype].size;
}

/* Python's repr of the shape tuple: "()", "(3,)", "(3, 4)". */
static void shape_repr(char *out, size_t cap, const size_t *shape, int ndim)
{
	size_t n = (size_t)snprintf(out, cap, "(");
	for (int i = 0; i < ndim; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%zu", i ? ", " : "",
				      shape[i]);
	snprintf(out + n, cap - n, "%s)", ndim == 1 ? "," : "");
}

int ep_npy_write(const char *path, enum ep_npy_dtype dtype,
		 const size_t *shape, int ndim, const void *data)
{
	size_t itemsize = ep_npy_itemsize(dtype);
	if (!path || !itemsize || ndim < 0 || ndim > NPY_MAX_NDIM ||
	    (ndim > 0 && !shape))
		return -EINVAL;

	/* An empty array has 0 bytes whatever its other dims, so look for a
	 * 0 before multiplying: (2^40, 2^40, 0) is valid and empty. */
	size_t count = 1;
	for (int i = 0; i < ndim; i++)
		if (shape[i] == 0)
			count = 0;
	for (int i = 0; i < ndim && count; i++)
		if (__builtin_mul_overflow(count, shape[i], &count))
			return -EOVERFLOW;
	size_t bytes;
	if (__builtin_mul_overflow(count, itemsize, &bytes))
		return -EOVERFLOW;
	if (bytes > 0 && !data)
		return -EINVAL;

	/* 4 dims of at most 20 digits: the shape takes at most 88 bytes, the
	 * dict 141, and with padding the header stays within 192. */
	char shape_text[96];
	shape_repr(shape_text, sizeof(shape_text), shape, ndim);
	char header[256];
	int dict_len = snprintf(header + NPY_PREFIX_LEN,
				sizeof(header) - NPY_PREFIX_LEN,
				"{'descr': '%s', 'fortran_order': False, "
				"'shape': %s, }",
				dtypes[dtype].descr, shape_text);
	size_t total = NPY_PREFIX_LEN + (size_t)dict_len + 1; /* + '\n' */
	size_t pad = (NPY_ALIGN - total % NPY_ALIGN) % NPY_ALIGN;
	total += pad;
	memset(header + NPY_PREFIX_LEN + dict_len, ' ', pad);
	header[total - 1] = '\n';

	size_t header_len = total - NPY_PREFIX_LEN;
	memcpy(header, "\x93NUMPY\x01\x00", 8);
	header[8] = (char)(header_len & 0xff);
	header[9] = (char)(header_len >> 8);

	struct iovec iov[2] = {
		{.iov_base = header, .iov_len = total},
		{.iov_base = (void *)data, .iov_len = bytes},
	};
	return ep_write_file_atomicv(path, iov, 2);
}

/* Reading */

const char *ep_npy_descr(enum ep_npy_dtype dtype)
{
	return ep_npy_itemsize(dtype) ? dtypes[dtype].descr : "?";
}

/* name is printable: callers pass it through ep_quote. */
static int bad(char *err, size_t len, const char *name, const char *why)
{
	snprintf(err, len, "'%s' %s", name, why);
	return -EP_EUSAGE;
}

/* The dtype a descr names: "<u2", "|u1", "u1", "?"..., or -1. */
static int descr_dtype(const char *d)
{
	static const struct { const char *spelling; enum ep_npy_dtype t; } names[] = {
		{"|b1", EP_NPY_BOOL}, {"?", EP_NPY_BOOL}, {"b1", EP_NPY_BOOL},
		{"|u1", EP_NPY_U1}, {"u1", EP_NPY_U1}, {"<u1", EP_NPY_U1},
		{"|i1", EP_NPY_I1}, {"i1", EP_NPY_I1}, {"<i1", EP_NPY_I1},
		{"<u2", EP_NPY_U2}, {"<i4", EP_NPY_I4}, {"<i8", EP_NPY_I8}, {"<f4", EP_NPY_F4},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(d, names[i].spelling))
			return (int)names[i].t;
	return -1;
}

/* The value of 'key' in the header dict (after "'key':" and blanks), or NULL. */
static const char *dict_value(const char *h, const char *key)
{
	char k[32];
	snprintf(k, sizeof(k), "'%s':", key);
	const char *p = strstr(h, k);
	if (!p) {
		snprintf(k, sizeof(k), "\"%s\":", key);
		p = strstr(h, k);
	}
	if (!p)
		return NULL;
	p += strlen(k);
	while (*p == ' ')
		p++;
	return p;
}

/* "(3, 4)" / "(3,)" / "()" into a. 0 or -1. */
static int parse_shape(const char *p, struct ep_npy *a)
{
	if (*p++ != '(')
		return -1;
	a->ndim = 0;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == ')')
			return 0;
		if (*p < '0' || *p > '9' || a->ndim == EP_NPY_MAX_NDIM)
			return -1;
		errno = 0;
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (errno || v > SIZE_MAX)
			return -1;
		a->shape[a->ndim++] = (size_t)v;
		p = end;
		while (*p == ' ' || *p == 'L')
			p++;
		if (*p == ',')
			p++;
		else if (*p != ')')
			return -1;
	}
}

/* The header dict (NUL-terminated copy in h) into a's dtype and shape. */
static int parse_header(const char *h, const char *name, struct ep_npy *a, char *err, size_t len)
{
	const char *d = dict_value(h, "descr"), *f = dict_value(h, "fortran_order"), *s = dict_value(h, "shape");
	char descr[16];
	if (!d || !f || !s || (*d != '\'' && *d != '"'))
		return bad(err, len, name, "has no 'descr', 'fortran_order' and 'shape' in its header");
	size_t n = strcspn(d + 1, "'\"");
	if (n >= sizeof(descr))
		return bad(err, len, name, "has an unsupported dtype");
	memcpy(descr, d + 1, n);
	descr[n] = 0;
	int t = descr_dtype(descr);
	if (t < 0) {
		char q[64];
		snprintf(err, len, "'%s' has dtype '%s' (want one of |b1 |u1 |i1 <u2 <i4 <i8 <f4)", name,
			 ep_quote(descr, q, sizeof(q)));
		return -EP_EUSAGE;
	}
	a->dtype = (enum ep_npy_dtype)t;
	if (strncmp(f, "False", 5))
		return bad(err, len, name, "is in Fortran order (want C order)");
	if (parse_shape(s, a))
		return bad(err, len, name, "has a malformed or more than 4-dimensional shape");
	return 0;
}

/* The element count of a's shape, or -1 when its bytes overflow. */
static int count_of(struct ep_npy *a)
{
	size_t count = 1, bytes;
	for (int i = 0; i < a->ndim; i++)
		if (__builtin_mul_overflow(count, a->shape[i], &count))
			return -1;
	a->count = count;
	return __builtin_mul_overflow(count, ep_npy_itemsize(a->dtype), &bytes) ? -1 : 0;
}

int ep_npy_parse(const void *buf, size_t len, const char *name, struct ep_npy *a, char *err, size_t errlen)
{
	const unsigned char *b = buf;
	memset(a, 0, sizeof(*a));
	if (len < NPY_PREFIX_LEN || memcmp(b, "\x93NUMPY", 6))
		return bad(err, errlen, name, "is not a .npy file (no \\x93NUMPY magic)");
	if (b[6] < 1 || b[6] > 3 || b[7] != 0)
		return bad(err, errlen, name, "has an unknown .npy version");
	size_t hl = b[6] == 1 ? (size_t)b[8] | (size_t)b[9] << 8
			      : (len < 12 ? SIZE_MAX : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24);
	size_t start = b[6] == 1 ? 10 : 12;
	if (hl > 65536 * 16 || hl > len - start)
		return bad(err, errlen, name, "is truncated in its header");
	char *h = malloc(hl + 1);
	if (!h)
		return -EP_ENOMEM;
	memcpy(h, b + start, hl);
	h[hl] = 0;
	int rc = parse_header(h, name, a, err, errlen);
	free(h);
	if (rc)
		return rc;
	size_t off = start + hl, isz = ep_npy_itemsize(a->dtype);
	if (count_of(a))
		return bad(err, errlen, name, "has a shape too large to hold");
	if (len - off != a->count * isz) {
		snprintf(err, errlen, "'%s' holds %zu data bytes, its shape needs %zu (%s)", name, len - off,
			 a->count * isz, len - off < a->count * isz ? "truncated" : "trailing bytes");
		return -EP_EUSAGE;
	}
	if (!(a->data = malloc(a->count * isz + 1)))
		return -EP_ENOMEM;
	memcpy(a->data, b + off, a->count * isz);
	for (size_t i = 0; a->dtype == EP_NPY_BOOL && i < a->count; i++)
		if (((unsigned char *)a->data)[i] > 1) {
			ep_npy_free(a);
			return bad(err, errlen, name, "has a bool that is neither 0 nor 1");
		}
	return 0;
}

int ep_npy_read(const char *path, size_t max_bytes, struct ep_npy *a, char *err, size_t errlen)
{
	char *buf = NULL, q[256];
	size_t len = 0;
	memset(a, 0, sizeof(*a));
	int rc = ep_file_read(".npy file", path, max_bytes, &buf, &len, err, errlen);
	if (rc)
		return rc;
	rc = ep_npy_parse(buf, len, ep_quote(path, q, sizeof(q)), a, err, errlen);
	free(buf);
	return rc;
}

void ep_npy_free(struct ep_npy *a)
{
	free(a->data);
	a->data = NULL;
}

int ep_npy_write_items(const char *dir, int rank, const struct ep_npy_item *t, int n)
{
	char path[4096];
	int rc, at = snprintf(path, sizeof(path), "%s/rank%d", dir, rank);
	if (at < 0 || (size_t)at >= sizeof(path) - 64)
		return -ENAMETOOLONG;
	if ((rc = ep_mkdir_p(path)))
		return rc;
	for (int i = 0; i < n; i++) {
		if (!t[i].data)
			continue;
		size_t shape[2] = {t[i].d0, t[i].d1};
		snprintf(path + at, sizeof(path) - (size_t)at, "/%s.npy", t[i].name);
		if ((rc = ep_npy_write(path, t[i].d, shape, t[i].nd, t[i].data)))
			return rc;
	}
	return 0;
}
