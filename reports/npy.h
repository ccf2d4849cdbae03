/* npy.h - NumPy .npy files for tensor dumps: written as format 1.0, read as 1.0, 2.0 or 3.0. */
#ifndef EP_NPY_H
#define EP_NPY_H

#include <stddef.h>

/* Element types, with their .npy descr. Multi-byte types are written in
 * host byte order, which the descr states ('<' on every host we target). */
enum ep_npy_dtype {
	EP_NPY_BOOL, /* '|b1', one byte 0 or 1 */
	EP_NPY_U1,   /* '|u1' (fp8 and packed bytes as raw bits) */
	EP_NPY_I1,   /* '|i1' */
	EP_NPY_U2,   /* '<u2' (bf16 as raw bits) */
	EP_NPY_I4,   /* '<i4' */
	EP_NPY_I8,   /* '<i8' */
	EP_NPY_F4,   /* '<f4' */
};

/* Writing */

/*
 * Writes the ndim-dimensional array data (C order, shape[0..ndim-1], ndim
 * 0..4, any dim may be 0; shape may be NULL when ndim is 0, data when the
 * array is empty) to path, atomically through ep_write_file_atomicv(): the
 * header and data are not copied. The header is the magic "\x93NUMPY",
 * version 1.0, a little-endian uint16 length, then the dict
 * "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }" padded with
 * spaces and ended by '\n' so that the data starts at a multiple of 64.
 * Shapes read "()" at 0-D and "(n,)" at 1-D, as Python writes them.
 * Returns 0, -EINVAL for a bad dtype, ndim or NULL pointer, -EOVERFLOW if
 * the byte count does not fit a size_t, or -errno from the write.
 */
int ep_npy_write(const char *path, enum ep_npy_dtype dtype,
		 const size_t *shape, int ndim, const void *data);

/* One tensor of a rank's dump (--dump DIR): written when data is not NULL. */
struct ep_npy_item {
	const char *name;
	enum ep_npy_dtype d;
	size_t d0, d1;
	int nd;             /* 1 or 2 */
	const void *data;
};

/* Writes every item with data as DIR/rank<rank>/<name>.npy, the folder
 * made first. 0, -ENAMETOOLONG or -errno. */
int ep_npy_write_items(const char *dir, int rank, const struct ep_npy_item *t, int n);

/* Bytes per element; 0 for an unknown dtype. */
size_t ep_npy_itemsize(enum ep_npy_dtype dtype);

/* Reading */

#define EP_NPY_MAX_NDIM 4

struct ep_npy {
	enum ep_npy_dtype dtype;
	int ndim;
	size_t shape[EP_NPY_MAX_NDIM];
	size_t count;     /* elements */
	void *data;       /* count * itemsize bytes (malloc'ed, never NULL after success) */
};

/*
 * Parses a whole .npy file held in buf[len]: the magic, version 1.0, 2.0
 * or 3.0, a header dict with 'descr' (one of the dtypes above in
 * little-endian or byte-order-free spelling, '|u1' and '|i1' also as 'u1',
 * 'i1'; bool as '|b1' or '?'), 'fortran_order': False and a shape of at
 * most 4 dims, then exactly the data that shape needs (bool bytes must be 0
 * or 1). Returns 0, or -EP_EUSAGE with one line in err saying what is wrong
 * (not .npy, truncated, trailing bytes, Fortran order, an unsupported dtype
 * such as '<f2' or '>i4'), or -EP_ENOMEM.
 */
int ep_npy_parse(const void *buf, size_t len, const char *name, struct ep_npy *a, char *err, size_t errlen);

/* Reads path (a regular file of at most max_bytes) with ep_npy_parse. */
int ep_npy_read(const char *path, size_t max_bytes, struct ep_npy *a, char *err, size_t errlen);
void ep_npy_free(struct ep_npy *a);

/* The dtype's descr as written ("<u2"), or "?" */
const char *ep_npy_descr(enum ep_npy_dtype dtype);

#endif
