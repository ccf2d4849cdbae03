/* npy.h - NumPy .npy (format 1.0) files for tensor dumps. */
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

/* Bytes per element; 0 for an unknown dtype. */
size_t ep_npy_itemsize(enum ep_npy_dtype dtype);

#endif
