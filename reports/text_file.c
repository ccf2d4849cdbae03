/* text_file.c - bounded reads of users' text files, quoting, and report-path checks. */
#define _GNU_SOURCE
#include "reports/text_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collectives/error.h"

const char *ep_quote(const char *s, char *out, size_t len)
{
	size_t n = 0, shown = 0;
	if (!len)
		return out;
	for (const unsigned char *c = (const unsigned char *)s; *c && n + 8 < len; c++, shown++) {
		if (shown == 60) {
			n += (size_t)snprintf(out + n, len - n, "...");
			break;
		}
		if (*c == '\r' || *c == '\t' || *c == '\n')
			n += (size_t)snprintf(out + n, len - n, "\\%c", *c == '\r' ? 'r' : *c == '\t' ? 't' : 'n');
		else if (*c < 0x20 || *c > 0x7e || *c == '\\')
			n += (size_t)snprintf(out + n, len - n, *c == '\\' ? "\\\\" : "\\x%02x", *c);
		else
			out[n++] = (char)*c;
	}
	out[n < len ? n : len - 1] = 0;
	return out;
}

/* Refuses what is not a regular file or a pipe, naming what it is. */
static int check_kind(const char *what, const char *path, const struct stat *st, char *err,
		      size_t errlen)
{
	char q[256];
	if (S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "%s '%s' is a directory", what, ep_quote(path, q, sizeof(q)));
		return -EP_EUSAGE;
	}
	if (!S_ISREG(st->st_mode) && !S_ISFIFO(st->st_mode)) {
		snprintf(err, errlen, "%s '%s' is not a regular file or a pipe", what,
			 ep_quote(path, q, sizeof(q)));
		return -EP_EUSAGE;
	}
	return 0;
}

/* Reads at most max + 1 bytes of fd into a fresh buffer. 0 or -errno. */
static int read_bounded(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = max < 65536 ? max + 1 : 65536, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > max)
				break;
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb, cap = ncap;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

int ep_file_read(const char *what, const char *path, size_t max_bytes, char **data, size_t *len, char *err,
		 size_t errlen)
{
	char q[256];
	struct stat st;
	ep_quote(path, q, sizeof(q));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s '%s': %s", what, q, strerror(errno));
		return -EP_EUSAGE;
	}
	int rc = fstat(fd, &st) ? -errno : check_kind(what, path, &st, err, errlen);
	if (rc == 0 && S_ISFIFO(st.st_mode)) /* a pipe blocks until its writer is done */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (rc == 0)
		rc = read_bounded(fd, max_bytes, data, len);
	close(fd);
	if (rc == -EP_EUSAGE)
		return rc;
	if (rc) {
		snprintf(err, errlen, "cannot read %s '%s': %s", what, q, strerror(-rc));
		return rc == -ENOMEM ? -EP_ENOMEM : -EP_EUSAGE;
	}
	if (*len <= max_bytes)
		return 0;
	snprintf(err, errlen, "%s '%s' is larger than %zu bytes", what, q, max_bytes);
	free(*data);
	*data = NULL;
	return -EP_EUSAGE;
}

int ep_text_file_read(const char *what, const char *path, size_t max_bytes, char **text,
		      size_t *len, char *err, size_t errlen)
{
	char q[256];
	int rc = ep_file_read(what, path, max_bytes, text, len, err, errlen);
	if (rc || !memchr(*text, 0, *len))
		return rc;
	snprintf(err, errlen, "%s '%s' is not text (a NUL byte at offset %zu)", what, ep_quote(path, q, sizeof(q)),
		 (size_t)((char *)memchr(*text, 0, *len) - *text));
	free(*text);
	*text = NULL;
	return -EP_EUSAGE;
}

/* The directory part of path ("." when it has none), into dir. */
static void parent_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

int ep_output_path_check(const char *option, const char *path, char *err, size_t errlen)
{
	char q[256], qd[256], dir[PATH_MAX], probe[PATH_MAX + 32];
	struct stat st;
	ep_quote(path, q, sizeof(q));
	if (!path[0] || path[strlen(path) - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
		snprintf(err, errlen, "invalid %s '%s': want a file name%s", option, q,
			 path[0] ? ", not a directory" : "");
		return -EP_EUSAGE;
	}
	parent_of(path, dir, sizeof(dir));
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "invalid %s '%s': directory '%s' does not exist", option, q,
			 ep_quote(dir, qd, sizeof(qd)));
		return -EP_EUSAGE;
	}
	/* the writer's temp file goes beside path: make sure one can be created there */
	snprintf(probe, sizeof(probe), "%s.tmp.%d", path, (int)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "invalid %s '%s': cannot create a file there: %s", option, q,
			 strerror(errno));
		return -EP_EUSAGE;
	}
	close(fd);
	unlink(probe);
	return 0;
}

int ep_output_dir_check(const char *option, const char *path, char *err, size_t errlen)
{
	char q[256], qd[256], dir[PATH_MAX];
	struct stat st;
	ep_quote(path, q, sizeof(q));
	if (!path[0]) {
		snprintf(err, errlen, "invalid %s '': want a directory name", option);
		return -EP_EUSAGE;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	while (stat(dir, &st) != 0) { /* up to the nearest existing ancestor */
		char up[PATH_MAX];
		if (errno != ENOENT || strcmp(dir, ".") == 0 || strcmp(dir, "/") == 0)
			break;
		parent_of(dir, up, sizeof(up));
		snprintf(dir, sizeof(dir), "%s", up);
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "invalid %s '%s': '%s' is not a directory", option, q,
			 ep_quote(dir, qd, sizeof(qd)));
		return -EP_EUSAGE;
	}
	if (access(dir, W_OK | X_OK)) {
		snprintf(err, errlen, "invalid %s '%s': cannot write in '%s': %s", option, q,
			 ep_quote(dir, qd, sizeof(qd)), strerror(errno));
		return -EP_EUSAGE;
	}
	return 0;
}
