/* atomic_file.h - whole-file writes that readers see either complete or not at all. */
#ifndef EP_ATOMIC_FILE_H
#define EP_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/uio.h>

/* Writing */

/*
 * Writes data[0..len-1] to path atomically: the bytes go to a temp file in
 * the same directory (path + ".tmp.<pid>", created exclusively with mode
 * 0666 & ~umask), are fsync'ed, and the temp file is renamed over path.
 * Blocks on disk I/O. On any failure the temp file is removed and path is
 * untouched. Returns 0 or -errno (-EEXIST if the temp name is taken, e.g. by
 * another thread of this process writing the same path).
 */
int ep_write_file_atomic(const char *path, const void *data, size_t len);

/*
 * The same as ep_write_file_atomic() for the concatenation of iovcnt
 * buffers, so a header and a large payload need no joined copy.
 */
int ep_write_file_atomicv(const char *path, const struct iovec *iov,
			  int iovcnt);

/* Directories */

/*
 * Creates path and any missing parents with mode 0755 (minus umask), like
 * `mkdir -p`. Returns 0 if it exists already as a directory, -ENOTDIR if it
 * or a parent is something else, -ENOENT for "", or -errno from mkdir.
 */
int ep_mkdir_p(const char *path);

#endif
