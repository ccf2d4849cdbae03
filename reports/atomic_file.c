/* atomic_file.c - temp file + fsync + rename, and mkdir -p.
 *
 * The temp file lives beside the target so that rename() stays within one
 * filesystem and is atomic: a reader opening path sees the old file or the
 * new one, never a prefix. Every error path unlinks the temp file before it
 * returns, so a failed write leaves the directory as it found it.
 */
#define _GNU_SOURCE
#include "reports/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes all of buf, retrying after short writes and EINTR. 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Best-effort fsync of the directory holding path, so the rename itself
 * survives a crash. Its failure is not reported: path has already been
 * replaced, and the contract says a failed call leaves path untouched.
 */
static void sync_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

int ep_write_file_atomicv(const char *path, const struct iovec *iov,
			  int iovcnt)
{
	if (!path || !*path || iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;

	char *tmp;
	if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
		return -ENOMEM;

	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0) {
		rc = -errno;
		goto clean_name;
	}
	for (int i = 0; i < iovcnt && rc == 0; i++)
		rc = write_all(fd, iov[i].iov_base, iov[i].iov_len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	/* close() can report a deferred write error (NFS), so it counts. */
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		goto clean_tmp;
	sync_parent_dir(path);
	free(tmp);
	return 0;

clean_tmp:
	unlink(tmp);
clean_name:
	free(tmp);
	return rc;
}

int ep_write_file_atomic(const char *path, const void *data, size_t len)
{
	if (len > 0 && !data)
		return -EINVAL;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	return ep_write_file_atomicv(path, &iov, 1);
}

/* mkdir of one prefix; an existing directory (or a lost race) is success. */
static int mkdir_one(const char *dir)
{
	if (mkdir(dir, 0755) == 0)
		return 0;
	int err = errno;
	struct stat st;
	/* Checked on any error, not just EEXIST: mkdir on an existing
	 * directory may report EACCES or EROFS first on some filesystems. */
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	return -err;
}

int ep_mkdir_p(const char *path)
{
	if (!path)
		return -EINVAL;
	if (!*path)
		return -ENOENT;
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;

	/* Cut the copy at each '/' after a name (skipping the root and
	 * repeated slashes) and create that prefix, then the whole path. */
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		if (s[-1] != '/') {
			*s = '\0';
			rc = mkdir_one(p);
			*s = c;
			if (rc != 0)
				break;
		}
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}
