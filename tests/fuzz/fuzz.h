/* fuzz.h - what the fuzz targets share: input bytes as a file path.
 *
 * Parsers of users' files take a path. A target puts the fuzzer's bytes in
 * an anonymous memory file (memfd) and hands the parser /proc/self/fd/N:
 * a regular file that never touches the disk or /dev/shm. Targets define
 * _GNU_SOURCE before any include (memfd_create).
 */
#ifndef EP_FUZZ_H
#define EP_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* The bytes as a file; returns its fd (close it) and the path in path. */
static inline int ep_fuzz_file(const uint8_t *data, size_t size, char *path, size_t len)
{
	int fd = memfd_create("ep_fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
