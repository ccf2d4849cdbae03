/* npy.c - .npy format 1.0 writer.
 *
 * The header is built in a small stack buffer (ndim <= 4 keeps it under 256
 * bytes, far from format 1.0's 64 KiB limit) and written together with the
 * caller's data as two iovecs, so a large tensor is never copied.
 */
#include "reports/npy.h"

#include "reports/atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
